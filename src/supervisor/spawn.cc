#include "supervisor/spawn.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char** environ;

namespace ls::supervisor {

namespace {
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

[[noreturn]] void child_fail(int status_fd, int err) {
    ssize_t w = ::write(status_fd, &err, sizeof err);
    (void)w;
    _exit(127);
}

// Runs in the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const SpawnRequest& req, char* const* argv, char* const* envp,
                             int status_fd, int hold_fd, int hold_write_fd, pid_t parent) {
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);

    if (req.own_process_group && setpgid(0, 0) != 0) child_fail(status_fd, errno);
    // The upstream must not outlive the daemon, even when the daemon is SIGKILLed.
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) child_fail(status_fd, errno);
    if (getppid() != parent) _exit(1); // the daemon died before prctl took effect

    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0) child_fail(status_fd, errno);
    if (req.output_fd >= 0) {
        if (dup2(req.output_fd, STDOUT_FILENO) < 0 || dup2(req.output_fd, STDERR_FILENO) < 0)
            child_fail(status_fd, errno);
    }
    // Whatever the daemon holds (listeners, client sockets) must not leak into the upstream.
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

    if (hold_fd >= 0) {
        ::close(hold_write_fd); // else our own copy would keep the pipe open forever
        char go;
        ssize_t n;
        do n = ::read(hold_fd, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1) _exit(1); // the daemon went away before releasing us
    }
    execvpe(argv[0], argv, envp);
    child_fail(status_fd, errno);
}
} // namespace

Result<Spawned> spawn_process(const SpawnRequest& req) {
    if (req.argv.empty() || req.argv[0].empty()) return make_error("empty command");

    // Everything the child needs is prepared before fork: no allocation after it.
    std::vector<char*> argv;
    for (const auto& a : req.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    // The inherited environment, then req.env on top; for a name given twice the last wins
    // (the daemon's own NOTIFY_SOCKET and CUDA_VISIBLE_DEVICES come after the model's `env`).
    auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
    auto set_later = [&](std::string_view name, size_t from) {
        for (size_t i = from; i < req.env.size(); ++i)
            if (name_of(req.env[i]) == name) return true;
        return false;
    };
    // What systemd told the daemon about itself is not true of a model: its watchdog, its
    // sockets and its journal stream (a model's output is a pipe to us).
    auto daemon_only = [](std::string_view name) {
        return name == "WATCHDOG_USEC" || name == "WATCHDOG_PID" || name == "JOURNAL_STREAM" ||
               name == "LISTEN_FDS" || name == "LISTEN_PID" || name == "LISTEN_FDNAMES" ||
               name == "NOTIFY_SOCKET";
    };
    std::vector<std::string> env_storage;
    for (char** e = environ; *e; ++e)
        if (!daemon_only(name_of(*e)) && !set_later(name_of(*e), 0)) env_storage.emplace_back(*e);
    for (size_t i = 0; i < req.env.size(); ++i)
        if (!set_later(name_of(req.env[i]), i + 1)) env_storage.push_back(req.env[i]);
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);

    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) != 0)
        return make_error(std::string("pipe: ") + strerror(errno), errno);
    UniqueFd status_read(status_pipe[0]);
    UniqueFd status_write(status_pipe[1]);

    UniqueFd hold_read, hold_write;
    if (req.hold) {
        int hold[2];
        if (pipe2(hold, O_CLOEXEC) != 0)
            return make_error(std::string("pipe: ") + strerror(errno), errno);
        hold_read.reset(hold[0]);
        hold_write.reset(hold[1]);
    }

    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return make_error(std::string("fork: ") + strerror(errno), errno);
    if (pid == 0)
        exec_child(req, argv.data(), envp.data(), status_write.get(), hold_read.get(),
                   hold_write.get(), parent);

    // Also set the group from the parent: whichever runs first, the group exists before
    // anyone signals it.
    if (req.own_process_group) (void)setpgid(pid, pid);
    status_write.reset();
    fcntl(status_read.get(), F_SETFL, fcntl(status_read.get(), F_GETFL) | O_NONBLOCK);
    return Spawned{pid, std::move(status_read), std::move(hold_write)};
}

int read_exec_status(int fd) {
    int err = 0;
    for (;;) {
        ssize_t n = ::read(fd, &err, sizeof err);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return -1;
        if (n == static_cast<ssize_t>(sizeof err)) return err;
        return 0; // EOF: exec succeeded (the pipe was closed on exec)
    }
}

} // namespace ls::supervisor
