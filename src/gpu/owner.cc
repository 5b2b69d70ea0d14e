#include "gpu/owner.h"

#include <cstdio>

#include "supervisor/cgroup.h"
#include "util/text_file.h"

namespace ls::gpu {

pid_t parse_stat_pgid(std::string_view stat) {
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    size_t close = stat.rfind(')');
    if (close == std::string_view::npos) return 0;
    std::string rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (std::sscanf(rest.c_str(), " %c %ld %ld", &state, &ppid, &pgrp) != 3) return 0;
    return static_cast<pid_t>(pgrp);
}

void fill_owner(perf::GpuProcess& p, const std::string& proc_root) {
    const std::string dir = proc_root + "/" + std::to_string(p.pid);
    p.pgid = parse_stat_pgid(read_text_file(dir + "/stat"));
    for (auto& line : supervisor::parse_proc_cgroup(read_text_file(dir + "/cgroup")))
        if (!line.path.empty() && line.path != "/") p.cgroups.push_back(std::move(line.path));
}

bool cgroup_dir_holds(std::string_view dir, std::string_view proc_path) {
    while (!dir.empty() && dir.back() == '/') dir.remove_suffix(1);
    // The hierarchy's mount point is unknown here: try the path and each of its parents as the
    // tail of `dir` ("/a/b/c" in ".../a/b" holds when `dir` ends with "/a/b").
    std::string_view q = proc_path;
    while (q.size() > 1) {
        if (dir.size() >= q.size() && dir.substr(dir.size() - q.size()) == q) return true;
        size_t slash = q.rfind('/');
        if (slash == std::string_view::npos || slash == 0) break;
        q = q.substr(0, slash);
    }
    return false;
}

std::uint64_t memory_of(const perf::Sample& s, pid_t model_pid,
                        const std::vector<std::string>& cgroup_dirs, bool* found) {
    std::uint64_t total = 0;
    bool any = false;
    for (const auto& p : s.gpu_processes) {
        bool mine = model_pid > 0 && (p.pid == model_pid || p.pgid == model_pid);
        for (size_t i = 0; !mine && i < cgroup_dirs.size(); ++i)
            for (const auto& cg : p.cgroups)
                if (!cgroup_dirs[i].empty() && cgroup_dir_holds(cgroup_dirs[i], cg)) {
                    mine = true;
                    break;
                }
        if (mine) {
            total += p.used_bytes;
            any = true;
        }
    }
    if (found) *found = any;
    return total;
}

} // namespace ls::gpu
