// The group guard: a tiny helper process forked at startup that knows the process group of
// every running upstream. When the daemon dies in any way (even SIGKILL) the guard's pipe
// reaches EOF and it terminates those groups: SIGTERM, a grace period, then SIGKILL.
// PR_SET_PDEATHSIG alone only reaches the direct child, not the grandchildren an upstream
// forks (workers, container runtimes).
#pragma once

#include <string>
#include <sys/types.h>

#include "util/result.h"
#include "util/unique_fd.h"

namespace ls::supervisor {

class GroupGuard {
public:
    GroupGuard() = default;
    ~GroupGuard();
    GroupGuard(const GroupGuard&) = delete;
    GroupGuard& operator=(const GroupGuard&) = delete;

    // Forks the guard. Call early, before the event loop and any threads exist.
    Result<void> start(double grace_s);
    bool running() const { return pipe_.valid(); }
    void watch(pid_t pgid);
    void forget(pid_t pgid);
    // A model's cgroup directory: on the daemon's death everything in it is killed and the
    // directory removed (processes that left the process group included).
    void watch_cgroup(const std::string& dir);
    void forget_cgroup(const std::string& dir);
    pid_t pid() const { return pid_; }

private:
    void send(char op, pid_t pgid, const std::string& path);
    UniqueFd pipe_;
    pid_t pid_ = -1;
};

} // namespace ls::supervisor
