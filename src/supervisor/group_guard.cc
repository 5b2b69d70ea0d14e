#include "supervisor/group_guard.h"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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
constexpr int kMaxCgroups = 256;
constexpr int kMaxPath = 512;

// One message: a fixed header, then `len` bytes of cgroup directory for the cgroup ops.
// Writes of up to PIPE_BUF bytes to a pipe are atomic, so messages never interleave.
struct Message {
    char op; // '+'/'-' watch/forget a process group; 'C'/'c' watch/forget a cgroup dir
    pid_t pgid;
    uint16_t len;
};

bool read_full(int fd, void* buf, size_t len) {
    char* p = static_cast<char*>(buf);
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r;
        len -= static_cast<size_t>(r);
    }
    return true;
}

// path/suffix into `out`; false (and nothing to act on) when it would not fit.
template <size_t N>
bool join_path(char (&out)[N], const char* path, const char* suffix) {
    const int n = snprintf(out, N, "%s/%s", path, suffix);
    return n > 0 && static_cast<size_t>(n) < N;
}

void write_str(const char* path, const char* suffix, const char* value) {
    char file[kMaxPath + 32];
    if (!join_path(file, path, suffix)) return;
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t w = write(fd, value, strlen(value));
    (void)w;
    close(fd);
}

// Kills everything in a cgroup (cgroup.kill where the kernel has it, else pid by pid).
void kill_cgroup(const char* path) {
    char file[kMaxPath + 32];
    if (!join_path(file, path, "cgroup.kill")) return;
    if (access(file, F_OK) == 0) {
        write_str(path, "cgroup.kill", "1");
        return;
    }
    if (!join_path(file, path, "cgroup.procs")) return;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = '\0';
    for (char* p = buf; *p;) {
        char* end = nullptr;
        long pid = strtol(p, &end, 10);
        if (end == p) break;
        if (pid > 0) kill(static_cast<pid_t>(pid), SIGKILL);
        p = end;
    }
}

// The guard's whole life: no allocation, no stdio, only system calls.
[[noreturn]] void guard_main(int fd) {
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

    static pid_t groups[kMaxGroups];
    static char cgroups[kMaxCgroups][kMaxPath];
    int count = 0, cg_count = 0;
    Message m;
    char path[kMaxPath];
    for (;;) {
        if (!read_full(fd, &m, sizeof m)) break; // EOF: the daemon is gone
        if (m.len >= kMaxPath || (m.len > 0 && !read_full(fd, path, m.len))) break;
        path[m.len] = '\0';
        if (m.op == '+' && count < kMaxGroups) {
            groups[count++] = m.pgid;
        } else if (m.op == '-') {
            for (int i = 0; i < count; ++i)
                if (groups[i] == m.pgid) {
                    groups[i] = groups[--count];
                    break;
                }
        } else if (m.op == 'C' && cg_count < kMaxCgroups) {
            memcpy(cgroups[cg_count++], path, m.len + 1u);
        } else if (m.op == 'c') {
            for (int i = 0; i < cg_count; ++i)
                if (strcmp(cgroups[i], path) == 0) {
                    memcpy(cgroups[i], cgroups[--cg_count], kMaxPath);
                    break;
                }
        }
    }
    // The daemon is gone (a normal exit stopped every upstream first and left nothing here):
    // no grace period, whatever the upstreams do with SIGTERM.
    for (int i = 0; i < count; ++i) kill(-groups[i], SIGKILL);
    struct timespec tick = {0, 50 * 1000 * 1000};
    // Processes that left their group (setsid) are still in the model's cgroup: kill them
    // there, then remove the cgroups once empty.
    for (int i = 0; i < cg_count; ++i) kill_cgroup(cgroups[i]);
    for (int attempt = 0; attempt < 40 && cg_count > 0; ++attempt) {
        int left = 0;
        for (int i = 0; i < cg_count; ++i)
            if (rmdir(cgroups[i]) != 0 && errno == EBUSY)
                memcpy(cgroups[left++], cgroups[i], kMaxPath);
        cg_count = left;
        if (cg_count > 0) nanosleep(&tick, nullptr);
    }
    _exit(0);
}
} // namespace

GroupGuard::~GroupGuard() {
    // Normal exit: the daemon stopped every upstream itself; closing the pipe lets the guard
    // exit (and it cleans up any group still registered).
    child_.reset();
    pipe_.reset();
    if (pid_ > 0) {
        int status;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
    }
}

Result<void> GroupGuard::start() {
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
        guard_main(fds[0]);
    }
    close(fds[0]);
    pipe_.reset(fds[1]);
    pid_ = pid;
    for (pid_t g : groups_) send('+', g, {});
    for (const auto& dir : cgroups_) send('C', 0, dir);
    if (child_) child_->start(pid_);
    return {};
}

void GroupGuard::attach(struct ev_loop* loop) {
    child_ = std::make_unique<ChildWatcher>(loop, &on_exit, this);
    if (pid_ > 0) child_->start(pid_);
}

void GroupGuard::on_exit(struct ev_loop*, ev_child* w, int) {
    auto* self = static_cast<GroupGuard*>(w->data);
    const int status = self->child_->status();
    self->child_->stop();
    self->pipe_.reset();
    self->pid_ = -1;
    if (++self->replaced_ > kMaxReplacements) {
        LOG_ERROR("the process-group guard died again (%s %d): not replaced any more; "
                  "upstreams may outlive a crash of the daemon",
                  WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        return;
    }
    LOG_ERROR("the process-group guard died (%s %d): starting a new one for %zu process "
              "group(s) and %zu cgroup(s)",
              WIFSIGNALED(status) ? "signal" : "status",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), self->groups_.size(),
              self->cgroups_.size());
    if (auto r = self->start(); !r)
        LOG_ERROR("cannot start a new process-group guard: %s", r.error().message.c_str());
}

void GroupGuard::send(char op, pid_t pgid, const std::string& path) {
    if (!pipe_.valid() || path.size() >= kMaxPath) return;
    char buf[sizeof(Message) + kMaxPath];
    Message m{op, pgid, static_cast<uint16_t>(path.size())};
    memcpy(buf, &m, sizeof m);
    memcpy(buf + sizeof m, path.data(), path.size());
    // One write of less than PIPE_BUF: atomic; the guard drains the pipe continuously.
    ssize_t n;
    do n = ::write(pipe_.get(), buf, sizeof m + path.size());
    while (n < 0 && errno == EINTR);
}

void GroupGuard::watch(pid_t pgid) {
    groups_.insert(pgid);
    send('+', pgid, {});
}
void GroupGuard::forget(pid_t pgid) {
    groups_.erase(pgid);
    send('-', pgid, {});
}
void GroupGuard::watch_cgroup(const std::string& dir) {
    cgroups_.insert(dir);
    send('C', 0, dir);
}
void GroupGuard::forget_cgroup(const std::string& dir) {
    cgroups_.erase(dir);
    send('c', 0, dir);
}

} // namespace ls::supervisor
