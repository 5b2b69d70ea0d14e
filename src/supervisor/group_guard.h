// The group guard: a tiny helper process forked at startup that knows the process group and
// cgroup of every running upstream. When the daemon dies in any way (even SIGKILL) the guard's
// pipe reaches EOF and it kills those groups and cgroups with SIGKILL at once: a crashed
// daemon that systemd restarts must find the GPUs free, and nothing is left to ask politely.
// PR_SET_PDEATHSIG alone only reaches the direct child, not the grandchildren an upstream
// forks (workers, container runtimes). The daemon watches the guard in turn: a guard that
// dies is replaced at once and told everything the old one knew.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <sys/types.h>

#include "util/ev.h"
#include "util/result.h"
#include "util/unique_fd.h"

namespace ls::supervisor {

class GroupGuard {
public:
    GroupGuard() = default;
    ~GroupGuard();
    GroupGuard(const GroupGuard&) = delete;
    GroupGuard& operator=(const GroupGuard&) = delete;

    // Forks the guard. Call early, before the event loop and any threads exist (a
    // replacement is forked later: the guard's code only makes system calls).
    Result<void> start();
    // Watches the guard from the loop and replaces it when it dies.
    void attach(struct ev_loop* loop);
    bool running() const { return pipe_.valid(); }
    void watch(pid_t pgid);
    void forget(pid_t pgid);
    // A model's cgroup directory: on the daemon's death everything in it is killed and the
    // directory removed (processes that left the process group included).
    void watch_cgroup(const std::string& dir);
    void forget_cgroup(const std::string& dir);
    pid_t pid() const { return pid_; }

private:
    static void on_exit(struct ev_loop*, ev_child*, int);
    void send(char op, pid_t pgid, const std::string& path);
    UniqueFd pipe_;
    pid_t pid_ = -1;
    // What the guard watches, to tell a replacement.
    std::set<pid_t> groups_;
    std::set<std::string> cgroups_;
    std::unique_ptr<ChildWatcher> child_;
    int replaced_ = 0;
    static constexpr int kMaxReplacements = 100; // a guard that cannot live: stop trying
};

} // namespace ls::supervisor
