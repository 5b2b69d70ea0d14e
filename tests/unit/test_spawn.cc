// fork+exec of upstream commands (src/supervisor/spawn.h).
#include <criterion/criterion.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "supervisor/spawn.h"
#include "util/unique_fd.h"

using ls::UniqueFd;
using ls::supervisor::read_exec_status;
using ls::supervisor::spawn_process;
using ls::supervisor::Spawned;
using ls::supervisor::SpawnRequest;

TestSuite(spawn, .timeout = 30);

namespace {

struct OutputPipe {
    UniqueFd read_end;
    UniqueFd write_end;
    OutputPipe() {
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        read_end.reset(p[0]);
        write_end.reset(p[1]);
    }
};

Spawned spawn_ok(const SpawnRequest& req) {
    auto r = spawn_process(req);
    cr_assert(r.ok(), "spawn: %s", r.ok() ? "" : r.error().message.c_str());
    Spawned s = std::move(r).value();
    cr_assert_gt(s.pid, 0);
    cr_assert(s.exec_status.valid());
    return s;
}

// Waits (bounded by poll()'s own blocking, not by a clock we check) for the exec verdict.
int await_exec_status(int fd) {
    for (int i = 0; i < 1000; ++i) {
        pollfd p{fd, POLLIN, 0};
        int n = poll(&p, 1, 10000);
        if (n < 0 && errno == EINTR) continue;
        cr_assert_eq(n, 1, "the exec-status pipe never became readable");
        int v = read_exec_status(fd);
        if (v >= 0) return v;
    }
    cr_assert_fail("no exec verdict");
    return -1;
}

std::string read_until_eof(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        cr_assert_geq(n, 0, "read: %s", strerror(errno));
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
    }
}

int wait_exit(pid_t pid) {
    int status = 0;
    pid_t r;
    do r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    cr_assert_eq(r, pid, "waitpid: %s", strerror(errno));
    return status;
}

// Runs `script` with sh and returns its output (stdout and stderr).
std::string run_sh(const std::string& script, std::vector<std::string> env = {},
                   int* exit_code = nullptr) {
    OutputPipe out;
    SpawnRequest req;
    req.argv = {"/bin/sh", "-c", script};
    req.env = std::move(env);
    req.output_fd = out.write_end.get();
    Spawned s = spawn_ok(req);
    out.write_end.reset(); // only the child holds the write end now
    std::string text = read_until_eof(out.read_end.get());
    int status = wait_exit(s.pid);
    cr_assert(WIFEXITED(status));
    if (exit_code) *exit_code = WEXITSTATUS(status);
    cr_assert_eq(await_exec_status(s.exec_status.get()), 0);
    return text;
}

} // namespace

Test(spawn, output_captured_and_exit_status) {
    OutputPipe out;
    SpawnRequest req;
    req.argv = {"/bin/sh", "-c", "echo hi; echo err >&2; exit 3"};
    req.output_fd = out.write_end.get();
    Spawned s = spawn_ok(req);
    out.write_end.reset();

    cr_assert_eq(await_exec_status(s.exec_status.get()), 0, "exec succeeded");
    std::string text = read_until_eof(out.read_end.get());
    cr_assert_str_eq(text.c_str(), "hi\nerr\n");
    int status = wait_exit(s.pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 3);
}

Test(spawn, nonexistent_program_reports_enoent) {
    SpawnRequest req;
    req.argv = {"/nonexistent/ls-unit-no-such-program", "--flag"};
    Spawned s = spawn_ok(req);
    cr_assert_eq(await_exec_status(s.exec_status.get()), ENOENT);
    int status = wait_exit(s.pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 127);
}

Test(spawn, nonexistent_program_in_path_reports_enoent) {
    SpawnRequest req;
    req.argv = {"ls-unit-no-such-program-in-path"};
    Spawned s = spawn_ok(req);
    cr_assert_eq(await_exec_status(s.exec_status.get()), ENOENT);
    wait_exit(s.pid);
}

Test(spawn, not_executable_reports_eacces) {
    char path[] = "/tmp/ls-unit-noexec-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    chmod(path, 0600);
    SpawnRequest req;
    req.argv = {path};
    Spawned s = spawn_ok(req);
    int err = await_exec_status(s.exec_status.get());
    wait_exit(s.pid);
    unlink(path);
    cr_assert_eq(err, EACCES, "errno %d (%s)", err, strerror(err));
}

Test(spawn, early_exec_status_is_pending_or_success) {
    // Before the child has exec'd, the pipe may be empty: -1. After: 0. Never anything else
    // for a program that exists.
    SpawnRequest req;
    req.argv = {"/bin/true"};
    Spawned s = spawn_ok(req);
    int early = read_exec_status(s.exec_status.get());
    cr_assert(early == -1 || early == 0, "early verdict %d", early);
    cr_assert_eq(await_exec_status(s.exec_status.get()), 0);
    wait_exit(s.pid);
}

Test(spawn, own_process_group) {
    SpawnRequest req;
    // Lives until killed: stdin is /dev/null, so `exec sleep` is the simplest long-lived child.
    req.argv = {"/bin/sh", "-c", "exec sleep 1000"};
    Spawned s = spawn_ok(req);
    cr_assert_eq(getpgid(s.pid), s.pid, "the child leads its own process group");
    cr_assert_neq(getpgid(s.pid), getpgid(0));
    cr_assert_eq(await_exec_status(s.exec_status.get()), 0);
    // The whole group can be signalled.
    cr_assert_eq(kill(-s.pid, SIGKILL), 0);
    int status = wait_exit(s.pid);
    cr_assert(WIFSIGNALED(status));
    cr_assert_eq(WTERMSIG(status), SIGKILL);
}

Test(spawn, group_kill_reaches_grandchildren) {
    OutputPipe out;
    SpawnRequest req;
    // The grandchild keeps the output pipe open; only a group kill lets read() see EOF.
    req.argv = {"/bin/sh", "-c", "sleep 1000 & echo started; wait"};
    req.output_fd = out.write_end.get();
    Spawned s = spawn_ok(req);
    out.write_end.reset();
    char buf[16];
    ssize_t n = read(out.read_end.get(), buf, sizeof buf);
    cr_assert_gt(n, 0);
    cr_assert_eq(kill(-s.pid, SIGKILL), 0);
    wait_exit(s.pid);
    std::string rest = read_until_eof(out.read_end.get()); // EOF: the grandchild is gone too
    (void)rest;
}

Test(spawn, without_own_process_group) {
    SpawnRequest req;
    req.argv = {"/bin/sh", "-c", "exec sleep 1000"};
    req.own_process_group = false;
    Spawned s = spawn_ok(req);
    cr_assert_eq(await_exec_status(s.exec_status.get()), 0);
    cr_assert_eq(getpgid(s.pid), getpgid(0));
    kill(s.pid, SIGKILL);
    wait_exit(s.pid);
}

Test(spawn, env_overrides_inherited) {
    cr_assert_eq(setenv("LS_UNIT_FOO", "inherited", 1), 0);
    cr_assert_eq(setenv("LS_UNIT_KEEP", "kept", 1), 0);
    std::string text = run_sh("echo \"$LS_UNIT_FOO|$LS_UNIT_KEEP|$LS_UNIT_NEW\"",
                              {"LS_UNIT_FOO=override", "LS_UNIT_NEW=new value"});
    cr_assert_str_eq(text.c_str(), "override|kept|new value\n");
}

Test(spawn, env_prefix_names_not_confused) {
    // Overriding FOO must not drop FOOBAR, and FOOBAR=... must not override FOO.
    cr_assert_eq(setenv("LS_UNIT_A", "a-inherited", 1), 0);
    cr_assert_eq(setenv("LS_UNIT_AB", "ab-inherited", 1), 0);
    std::string text = run_sh("echo \"$LS_UNIT_A|$LS_UNIT_AB\"", {"LS_UNIT_A=a-new"});
    cr_assert_str_eq(text.c_str(), "a-new|ab-inherited\n");
    text = run_sh("echo \"$LS_UNIT_A|$LS_UNIT_AB\"", {"LS_UNIT_AB=ab-new"});
    cr_assert_str_eq(text.c_str(), "a-inherited|ab-new\n");
}

Test(spawn, env_duplicate_entries_not_doubled) {
    cr_assert_eq(setenv("LS_UNIT_DUP", "old", 1), 0);
    std::string text = run_sh("env | grep -c '^LS_UNIT_DUP='", {"LS_UNIT_DUP=new"});
    cr_assert_str_eq(text.c_str(), "1\n");
}

Test(spawn, daemon_only_env_not_inherited) {
    // systemd's facts about the daemon (watchdog, sockets, journal stream, notify socket)
    // are false for a model; a NOTIFY_SOCKET the daemon sets for the model still arrives.
    for (const char* name : {"WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS",
                             "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"})
        cr_assert_eq(setenv(name, "from-systemd", 1), 0);
    std::string text =
        run_sh("env | grep -c from-systemd; echo \"$NOTIFY_SOCKET\"", {"NOTIFY_SOCKET=/run/ours"});
    for (const char* name : {"WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "LISTEN_FDS",
                             "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"})
        unsetenv(name);
    cr_assert_str_eq(text.c_str(), "0\n/run/ours\n");
}

Test(spawn, stdin_is_dev_null) {
    std::string text = run_sh("cat; echo done");
    cr_assert_str_eq(text.c_str(), "done\n");
}

Test(spawn, daemon_fds_not_inherited) {
    // A descriptor opened without O_CLOEXEC in the parent must not reach the child.
    int fd = open("/dev/null", O_RDONLY);
    cr_assert_geq(fd, 3);
    std::string script = "if [ -e /proc/self/fd/" + std::to_string(fd) +
                         " ]; then echo leaked; else echo closed; fi";
    std::string text = run_sh(script);
    close(fd);
    cr_assert_str_eq(text.c_str(), "closed\n");
}

Test(spawn, exit_code_passthrough) {
    int code = -1;
    run_sh("exit 0", {}, &code);
    cr_assert_eq(code, 0);
    run_sh("exit 42", {}, &code);
    cr_assert_eq(code, 42);
}

Test(spawn, empty_command_rejected) {
    SpawnRequest req;
    auto r = spawn_process(req);
    cr_assert_not(r.ok());
    req.argv = {""};
    r = spawn_process(req);
    cr_assert_not(r.ok());
}
