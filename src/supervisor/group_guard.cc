#include "supervisor/group_guard.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

namespace ls::supervisor {

namespace {
constexpr int kMaxGroups = 1024;

struct Message {
    char op; // '+' watch, '-' forget
    pid_t pgid;
};

// The guard's whole life: no allocation, no stdio, only system calls.
[[noreturn]] void guard_main(int fd, double grace_s) {
    // Terminal signals meant for the daemon's group must not take the guard down early.
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "llama-swap-guard");
    // Hold nothing of the daemon's (listening sockets, client connections) but the pipe.
    if (fd != 3) {
        dup2(fd, 3);
        fd = 3;
    }
    syscall(SYS_close_range, 4U, ~0U, 0U);

    pid_t groups[kMaxGroups];
    int count = 0;
    Message m;
    for (;;) {
        ssize_t r = read(fd, &m, sizeof m);
        if (r < 0 && errno == EINTR) continue;
        if (r != static_cast<ssize_t>(sizeof m)) break; // EOF: the daemon is gone
        if (m.op == '+' && count < kMaxGroups) {
            groups[count++] = m.pgid;
        } else if (m.op == '-') {
            for (int i = 0; i < count; ++i)
                if (groups[i] == m.pgid) {
                    groups[i] = groups[--count];
                    break;
                }
        }
    }
    for (int i = 0; i < count; ++i) kill(-groups[i], SIGTERM);
    struct timespec tick = {0, 50 * 1000 * 1000};
    for (double waited = 0; waited < grace_s; waited += 0.05) {
        bool alive = false;
        for (int i = 0; i < count; ++i)
            if (kill(-groups[i], 0) == 0) alive = true;
        if (!alive) break;
        nanosleep(&tick, nullptr);
    }
    for (int i = 0; i < count; ++i) kill(-groups[i], SIGKILL);
    _exit(0);
}
} // namespace

GroupGuard::~GroupGuard() {
    // Normal exit: the daemon stopped every upstream itself; closing the pipe lets the guard
    // exit (and it cleans up any group still registered).
    pipe_.reset();
    if (pid_ > 0) {
        int status;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
    }
}

Result<void> GroupGuard::start(double grace_s) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return make_error(std::string("pipe: ") + strerror(errno), errno);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return make_error(std::string("fork: ") + strerror(errno), errno);
    }
    if (pid == 0) {
        close(fds[1]);
        guard_main(fds[0], grace_s);
    }
    close(fds[0]);
    pipe_.reset(fds[1]);
    pid_ = pid;
    return {};
}

void GroupGuard::send(char op, pid_t pgid) {
    if (!pipe_.valid()) return;
    Message m{op, pgid};
    // Small atomic writes to a pipe; the guard drains it continuously.
    ssize_t n;
    do n = ::write(pipe_.get(), &m, sizeof m);
    while (n < 0 && errno == EINTR);
}

void GroupGuard::watch(pid_t pgid) {
    send('+', pgid);
}
void GroupGuard::forget(pid_t pgid) {
    send('-', pgid);
}

} // namespace ls::supervisor
