// Which model a GPU process belongs to: its cgroup (the model's fork-backend cgroup or scope
// unit) or its process group (the model's process leads one). The owner is read on the
// sampler's thread (fill_owner); memory_of() runs on the loop against the latest sample.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "perf/sample.h"

namespace ls::gpu {

// Fills p.pgid and p.cgroups from <proc_root>/<pid>/stat and /cgroup; left empty when gone.
void fill_owner(perf::GpuProcess& p, const std::string& proc_root = "/proc");

// The process group field of a /proc/PID/stat text, 0 when unparsable.
pid_t parse_stat_pgid(std::string_view stat);

// True when `proc_path` (as /proc/PID/cgroup lists it, relative to its hierarchy's root) is the
// cgroup directory `dir` (an absolute path under /sys/fs/cgroup) or one below it.
bool cgroup_dir_holds(std::string_view dir, std::string_view proc_path);

// GPU memory the processes of one model use: those whose pid or process group is the model's
// pid, or whose cgroup is one of the model's directories. `found` says whether any matched.
std::uint64_t memory_of(const perf::Sample& s, pid_t model_pid,
                        const std::vector<std::string>& cgroup_dirs, bool* found = nullptr);

} // namespace ls::gpu
