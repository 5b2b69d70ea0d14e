#include "supervisor/cgroup.h"

#include "util/text_file.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sd/libsystemd.h"
#include "supervisor/stale_instances.h"

namespace ls::supervisor {

namespace {
Result<void> write_file(const std::string& path, const std::string& value) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return make_error("cannot open " + path + ": " + strerror(errno), errno);
    ssize_t n = ::write(fd, value.data(), value.size());
    int err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(value.size()))
        return make_error("cannot write '" + value + "' to " + path + ": " + strerror(err), err);
    return {};
}

// A model id as one path component: unusual characters become '_'.
std::string escape_id(const std::string& id) {
    std::string out;
    for (char c : id)
        out.push_back(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_');
    return out;
}

} // namespace

// ---------------------------------------------------------------- ModelCgroup

ModelCgroup::~ModelCgroup() {
    (void)remove();
}

bool ModelCgroup::remove() {
    // One level per hierarchy. A busy directory means a process escaped the group kill: kill
    // it; the caller retries later (never sleep on the loop).
    bool all = true;
    for (auto it = dirs_.rbegin(); it != dirs_.rend();) {
        if (::rmdir(it->c_str()) == 0 || errno == ENOENT) {
            it = std::vector<std::string>::reverse_iterator(dirs_.erase(std::next(it).base()));
            continue;
        }
        if (errno == EBUSY) kill_all();
        all = false;
        ++it;
    }
    return all;
}

Result<void> ModelCgroup::add_process(pid_t pid) {
    const std::string p = std::to_string(pid);
    for (const auto& f : procs_files_)
        if (auto r = write_file(f, p); !r) return r;
    return {};
}

void ModelCgroup::kill_all() {
    if (!kill_dir_.empty() && write_file(kill_dir_ + "/cgroup.kill", "1")) return;
    for (const auto& f : procs_files_) {
        for (long long pid : numbers_in(read_text_file(f)))
            if (pid > 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
    }
}

uint64_t ModelCgroup::memory_current() const {
    if (memory_dir_.empty()) return 0;
    return cgroup_memory_bytes(memory_dir_);
}

uint64_t ModelCgroup::oom_kills() const {
    if (memory_dir_.empty()) return 0;
    return cgroup_oom_kills(memory_dir_);
}

// ---------------------------------------------------------------- CgroupManager

const char* CgroupManager::layout_name(Layout l) {
    switch (l) {
    case Layout::None:
        return "none";
    case Layout::V2:
        return "cgroup v2";
    case Layout::Hybrid:
        return "cgroup v1/v2 hybrid";
    case Layout::V1:
        return "cgroup v1";
    }
    return "?";
}

CgroupManager::CgroupManager(std::string root) : root_(std::move(root)) {
    if (path_exists(root_ + "/cgroup.controllers"))
        layout_ = Layout::V2;
    else if (path_exists(root_ + "/memory") && path_exists(root_ + "/unified/cgroup.controllers"))
        layout_ = Layout::Hybrid;
    else if (path_exists(root_ + "/memory"))
        layout_ = Layout::V1;
    own_ = parse_proc_cgroup(read_text_file("/proc/self/cgroup"));
}

std::string CgroupManager::own_path(const std::string& controller) const {
    const std::string* path = cgroup_path_of(own_, controller);
    return !path || *path == "/" ? "" : *path;
}

bool CgroupManager::warned_once() {
    const bool first = !warned_;
    warned_ = true;
    return first;
}

Result<void> CgroupManager::prepare_v2() {
    if (v2_prepared_) return {};
    const std::string base = root_ + own_path("");
    // No internal processes: controllers can be handed to children only when our own cgroup
    // holds no process. Under systemd (Delegate=yes) we move ourselves into a "supervisor" leaf.
    const std::string wanted = "+memory +cpu +cpuset +pids";
    if (!write_file(base + "/cgroup.subtree_control", wanted)) {
        if (own_path("").empty()) return make_error("cannot enable controllers in the root cgroup");
        // Moving every process of our cgroup is only ours to do in our own delegated unit
        // (Delegate=yes), never in, say, the login session of the shell that started us.
        // (systemd sets INVOCATION_ID in every unit it runs: without it, libsystemd, which is
        // loaded only when needed, has nothing to tell.)
        char* unit = nullptr;
        const sd::Systemd* lib = getenv("INVOCATION_ID") ? sd::systemd() : nullptr;
        const bool own_unit =
            lib && lib->sd_pid_get_unit(getpid(), &unit) >= 0 && unit &&
            own_path("").size() > strlen(unit) &&
            own_path("").compare(own_path("").size() - strlen(unit), strlen(unit), unit) == 0;
        free(unit);
        if (!own_unit)
            return make_error("controllers cannot be delegated here (not running in our own unit "
                              "with Delegate=yes)");
        const std::string leaf = base + "/supervisor";
        if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST)
            return make_error("cannot create " + leaf + ": " + strerror(errno), errno);
        for (long long pid : numbers_in(read_text_file(base + "/cgroup.procs")))
            (void)write_file(leaf + "/cgroup.procs", std::to_string(pid));
        if (auto r = write_file(base + "/cgroup.subtree_control", wanted); !r) return r;
    }
    v2_prepared_ = true;
    return {};
}

std::vector<std::string> CgroupManager::clean_stale() {
    std::vector<std::string> parents;
    if (layout_ == Layout::V2) {
        parents.push_back(root_ + own_path(""));
    } else if (layout_ != Layout::None) {
        for (const char* c : {"memory", "pids", "cpu", "cpuset", "devices"})
            parents.push_back(root_ + "/" + c + own_path(c));
        if (layout_ == Layout::Hybrid) parents.push_back(root_ + "/unified" + own_path(""));
    }
    std::vector<std::string> cleaned;
    for (const std::string& parent : parents) {
        DIR* d = ::opendir(parent.c_str());
        if (!d) continue;
        std::vector<std::pair<std::string, pid_t>> stale;
        while (const dirent* e = ::readdir(d)) {
            auto owner = cgroup_owner_pid(e->d_name);
            if (e->d_type == DT_DIR && owner && !owner_is_alive(*owner))
                stale.emplace_back(parent + "/" + e->d_name, *owner);
        }
        ::closedir(d);
        for (const auto& [dir, owner] : stale) {
            const std::vector<long long> pids = numbers_in(read_text_file(dir + "/cgroup.procs"));
            if (!path_exists(dir + "/cgroup.kill") || !write_file(dir + "/cgroup.kill", "1"))
                for (long long pid : pids)
                    if (pid > 0) ::kill(static_cast<pid_t>(pid), SIGKILL);
            // The killed need a moment to leave: a busy directory is removed later (never
            // wait here: the daemon is starting).
            if (::rmdir(dir.c_str()) != 0 && errno == EBUSY) stale_busy_.push_back(dir);
            cleaned.push_back(dir + " (left by llama-swap pid " + std::to_string(owner) + ", " +
                              std::to_string(pids.size()) + " process" +
                              (pids.size() == 1 ? "" : "es") + " killed)");
        }
    }
    return cleaned;
}

size_t CgroupManager::remove_stale_busy() {
    std::vector<std::string> left;
    for (const std::string& dir : stale_busy_)
        if (::rmdir(dir.c_str()) != 0 && errno == EBUSY) left.push_back(dir);
    stale_busy_.swap(left);
    return stale_busy_.size();
}

Result<std::unique_ptr<ModelCgroup>> CgroupManager::create(const std::string& model_id,
                                                           const config::ResourceLimits& limits) {
    if (layout_ == Layout::None) return make_error("no cgroup file system found");
    std::unique_ptr<ModelCgroup> cg(new ModelCgroup());
    cg->name_ = "llama-swap-" + escape_id(model_id) + "-" + std::to_string(getpid()) + "-" +
                std::to_string(++counter_);

    auto make_dir = [&](const std::string& dir) -> Result<void> {
        if (::mkdir(dir.c_str(), 0755) != 0)
            return make_error("cannot create cgroup " + dir + ": " + strerror(errno), errno);
        cg->dirs_.push_back(dir);
        return {};
    };

    if (layout_ == Layout::V2) {
        if (auto r = prepare_v2(); !r) return r.error();
        const std::string dir = root_ + own_path("") + "/" + cg->name_;
        if (auto r = make_dir(dir); !r) return r.error();
        cg->memory_dir_ = dir;
        cg->kill_dir_ = dir;
        cg->procs_files_.push_back(dir + "/cgroup.procs");
        if (limits.memory_max)
            if (auto r = write_file(dir + "/memory.max", std::to_string(limits.memory_max)); !r)
                return r.error();
        if (limits.memory_high)
            if (auto r = write_file(dir + "/memory.high", std::to_string(limits.memory_high)); !r)
                return r.error();
        if (limits.cpu_quota_percent)
            if (auto r = write_file(dir + "/cpu.max",
                                    std::to_string(limits.cpu_quota_percent * 1000) + " 100000");
                !r)
                return r.error();
        if (!limits.allowed_cpus.empty())
            if (auto r = write_file(dir + "/cpuset.cpus", limits.allowed_cpus); !r)
                return r.error();
        return cg;
    }

    // v1 (and the v1 half of a hybrid): one directory per controller we use.
    const std::string mem = root_ + "/memory" + own_path("memory") + "/" + cg->name_;
    if (auto r = make_dir(mem); !r) return r.error();
    cg->memory_dir_ = mem;
    cg->procs_files_.push_back(mem + "/cgroup.procs");
    if (limits.memory_max)
        if (auto r = write_file(mem + "/memory.limit_in_bytes", std::to_string(limits.memory_max));
            !r)
            return r.error();
    if (limits.memory_high)
        if (auto r =
                write_file(mem + "/memory.soft_limit_in_bytes", std::to_string(limits.memory_high));
            !r)
            return r.error();
    if (path_exists(root_ + "/pids")) {
        const std::string dir = root_ + "/pids" + own_path("pids") + "/" + cg->name_;
        if (make_dir(dir)) cg->procs_files_.push_back(dir + "/cgroup.procs");
    }
    if (limits.cpu_quota_percent && path_exists(root_ + "/cpu")) {
        const std::string dir = root_ + "/cpu" + own_path("cpu") + "/" + cg->name_;
        if (auto r = make_dir(dir); !r) return r.error();
        cg->procs_files_.push_back(dir + "/cgroup.procs");
        if (auto r = write_file(dir + "/cpu.cfs_period_us", "100000"); !r) return r.error();
        if (auto r = write_file(dir + "/cpu.cfs_quota_us",
                                std::to_string(limits.cpu_quota_percent * 1000));
            !r)
            return r.error();
    }
    if (!limits.allowed_cpus.empty() && path_exists(root_ + "/cpuset")) {
        const std::string parent = root_ + "/cpuset" + own_path("cpuset");
        const std::string dir = parent + "/" + cg->name_;
        if (auto r = make_dir(dir); !r) return r.error();
        std::string mems = read_text_file(parent + "/cpuset.mems");
        while (!mems.empty() && mems.back() == '\n') mems.pop_back();
        if (auto r = write_file(dir + "/cpuset.mems", mems); !r) return r.error();
        if (auto r = write_file(dir + "/cpuset.cpus", limits.allowed_cpus); !r) return r.error();
        cg->procs_files_.push_back(dir + "/cgroup.procs");
    }
    if (limits.gpus_set && path_exists(root_ + "/devices")) {
        const std::string dir = root_ + "/devices" + own_path("devices") + "/" + cg->name_;
        if (auto r = make_dir(dir); !r) return r.error();
        const char* dev_dir =
            getenv("LLAMA_SWAP_DEVICE_DIR"); // tests point this at their own nodes
        for (dev_t d : gpu_devices_to_deny(limits.gpus, dev_dir ? dev_dir : "/dev")) {
            const std::string rule =
                "c " + std::to_string(major(d)) + ":" + std::to_string(minor(d)) + " rwm";
            if (auto r = write_file(dir + "/devices.deny", rule); !r) return r.error();
        }
        cg->procs_files_.push_back(dir + "/cgroup.procs");
    }
    if (layout_ == Layout::Hybrid) {
        // The unified hierarchy has no controllers here but gives cgroup.kill and membership.
        const std::string dir = root_ + "/unified" + own_path("") + "/" + cg->name_;
        if (make_dir(dir)) {
            cg->procs_files_.push_back(dir + "/cgroup.procs");
            if (path_exists(dir + "/cgroup.kill")) cg->kill_dir_ = dir;
        }
    }
    return cg;
}

std::vector<dev_t> gpu_devices_to_deny(const std::vector<int>& gpus, const std::string& dev_dir) {
    std::vector<dev_t> out;
    DIR* d = opendir(dev_dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        const char* name = e->d_name;
        if (strncmp(name, "nvidia", 6) != 0 || !isdigit(static_cast<unsigned char>(name[6])))
            continue;
        char* end = nullptr;
        long index = strtol(name + 6, &end, 10);
        if (*end != '\0') continue; // nvidiactl, nvidia-uvm, nvidia-modeset: shared, allowed
        bool allowed = false;
        for (int g : gpus) allowed |= g == index;
        if (allowed) continue;
        struct stat st;
        if (::stat((dev_dir + "/" + name).c_str(), &st) == 0 && S_ISCHR(st.st_mode))
            out.push_back(st.st_rdev);
    }
    closedir(d);
    return out;
}

// ---------------------------------------------------------------- /proc/PID/cgroup

std::vector<ProcCgroup> parse_proc_cgroup(std::string_view text) {
    std::vector<ProcCgroup> out;
    for (std::string_view line : split(text, '\n')) {
        const size_t a = line.find(':');
        const size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
        if (b == std::string_view::npos) continue;
        out.push_back(
            {std::string(line.substr(a + 1, b - a - 1)), std::string(line.substr(b + 1))});
    }
    return out;
}

const std::string* cgroup_path_of(const std::vector<ProcCgroup>& lines,
                                  std::string_view controller) {
    for (const auto& l : lines) {
        if (controller.empty() && l.controllers.empty()) return &l.path; // the v2 line
        for (std::string_view c : split(l.controllers, ','))
            if (c == controller) return &l.path;
    }
    return nullptr;
}

std::string memory_cgroup_dir(const std::vector<ProcCgroup>& lines) {
    if (const std::string* v1 = cgroup_path_of(lines, "memory");
        v1 && path_exists("/sys/fs/cgroup/memory" + *v1))
        return "/sys/fs/cgroup/memory" + *v1;
    if (const std::string* v2 = cgroup_path_of(lines, "");
        v2 && path_exists("/sys/fs/cgroup" + *v2 + "/memory.current"))
        return "/sys/fs/cgroup" + *v2;
    return "";
}

} // namespace ls::supervisor
