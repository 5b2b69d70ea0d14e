// Per-model cgroups for the fork backend, on pure cgroup v2 and on v1/v2 hybrids.
//  v2:     memory.max, memory.high, cpu.max, cpuset.cpus; cgroup.kill on stop. Device fencing
//          needs BPF on v2 and is left to the scope backend (DeviceAllow=).
//  hybrid: v1 memory.limit_in_bytes (+ soft limit for memoryHigh), cpu.cfs_quota_us,
//          cpuset.cpus, devices.deny for the GPUs a model must not see; the unified hierarchy
//          (no controllers) still gives cgroup.kill.
// A model's cgroups are created before its process execs (it waits on a pipe), and removed
// after it stopped. Without permission to create cgroups we say so once and run unfenced.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "config/config.h"
#include "util/result.h"

namespace ls::supervisor {

// One line of /proc/PID/cgroup, "ID:controllers:path": the controllers are empty on the v2
// line and "name=systemd" on v1's named systemd hierarchy.
struct ProcCgroup {
    std::string controllers;
    std::string path;
};
std::vector<ProcCgroup> parse_proc_cgroup(std::string_view text);
// The path in the hierarchy holding `controller` ("" = the v2 line), or nullptr.
const std::string* cgroup_path_of(const std::vector<ProcCgroup>& lines,
                                  std::string_view controller);
// The memory cgroup directory these lines name (v1 memory, else v2 with memory.current),
// "" when there is none.
std::string memory_cgroup_dir(const std::vector<ProcCgroup>& lines);

class ModelCgroup {
public:
    ~ModelCgroup(); // removes the directories (the processes must be gone)
    // Removes the directories; false when some are still busy (try again a bit later).
    bool remove();
    ModelCgroup(const ModelCgroup&) = delete;
    ModelCgroup& operator=(const ModelCgroup&) = delete;

    Result<void> add_process(pid_t pid);
    // Kills everything in the cgroup (cgroup.kill where available, else each pid).
    void kill_all();
    // Memory in use by the model's processes; 0 when unknown.
    uint64_t memory_current() const;
    // Number of OOM kills the kernel did in this cgroup.
    uint64_t oom_kills() const;
    const std::string& name() const { return name_; }
    // The directories, for diagnostics and tests.
    const std::vector<std::string>& paths() const { return dirs_; }

private:
    friend class CgroupManager;
    ModelCgroup() = default;
    std::string name_;
    std::vector<std::string> dirs_;        // every directory we created (all hierarchies)
    std::string memory_dir_;               // v1 memory or v2 dir
    std::string kill_dir_;                 // a v2 dir with cgroup.kill, or empty
    std::vector<std::string> procs_files_; // where to add a pid
};

class CgroupManager {
public:
    enum class Layout { None, V2, Hybrid, V1 };
    // Looks at /sys/fs/cgroup and our own cgroup (/proc/self/cgroup). `root` is for tests.
    explicit CgroupManager(std::string root = "/sys/fs/cgroup");
    Layout layout() const { return layout_; }
    static const char* layout_name(Layout l);

    // Creates the cgroups for one model start. Errors mean "run unfenced" (logged once by the
    // caller through warned_once()).
    Result<std::unique_ptr<ModelCgroup>> create(const std::string& model_id,
                                                const config::ResourceLimits& limits);
    bool warned_once();
    // Kills and removes the model cgroups an instance that is gone left beside ours (see
    // stale_instances.h); one line per cgroup removed, for the log.
    std::vector<std::string> clean_stale();
    // Tries again to remove the stale cgroups that were still busy; how many are left.
    size_t remove_stale_busy();

private:
    std::string own_path(const std::string& controller) const; // our cgroup in that hierarchy
    Result<void> prepare_v2();
    std::string root_;
    Layout layout_ = Layout::None;
    std::vector<ProcCgroup> own_; // /proc/self/cgroup
    bool v2_prepared_ = false;
    bool warned_ = false;
    unsigned counter_ = 0;
    std::vector<std::string> stale_busy_; // see clean_stale()
};

// Character device numbers of the GPU nodes a model must not see: every /dev/nvidia<N>
// (N not in `gpus`). `dev_dir` is /dev; tests point it at their own nodes.
std::vector<dev_t> gpu_devices_to_deny(const std::vector<int>& gpus, const std::string& dev_dir);

} // namespace ls::supervisor
