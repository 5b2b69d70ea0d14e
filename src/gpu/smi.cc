#include "gpu/smi.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ls::gpu {

const char* const kNvidiaSmiQuery = "--query-gpu=index,name,uuid,temperature.gpu,utilization.gpu,"
                                    "memory.used,memory.total,fan.speed,power.draw";

namespace {
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

// A number, or `unknown` for "[N/A]", "[Not Supported]", "N/A" and anything else unparsable.
double number(std::string_view s, double unknown) {
    std::string t(trim(s));
    if (t.empty()) return unknown;
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(t.c_str(), &end);
    if (end == t.c_str() || errno != 0) return unknown;
    return v;
}
} // namespace

std::vector<perf::GpuSample> parse_nvidia_smi_csv(std::string_view text, std::int64_t unix_ms) {
    std::vector<perf::GpuSample> out;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (trim(line).empty()) continue;
        std::vector<std::string_view> f;
        while (true) {
            size_t c = line.find(',');
            f.push_back(trim(line.substr(0, c)));
            if (c == std::string_view::npos) break;
            line.remove_prefix(c + 1);
        }
        if (f.size() < 9) continue;
        perf::GpuSample g;
        g.unix_ms = unix_ms;
        g.source = "nvidia-smi";
        g.index = static_cast<int>(number(f[0], 0));
        g.name = std::string(f[1]);
        g.uuid = std::string(f[2]);
        g.temp_c = static_cast<int>(number(f[3], -1));
        g.gpu_util_pct = number(f[4], -1);
        const double used_mib = number(f[5], 0), total_mib = number(f[6], 0);
        g.mem_used_bytes = static_cast<std::uint64_t>(used_mib < 0 ? 0 : used_mib) << 20;
        g.mem_total_bytes = static_cast<std::uint64_t>(total_mib < 0 ? 0 : total_mib) << 20;
        if (g.mem_total_bytes > 0)
            g.mem_util_pct = 100.0 * double(g.mem_used_bytes) / double(g.mem_total_bytes);
        g.fan_speed_pct = number(f[7], -1);
        g.power_draw_w = number(f[8], -1);
        out.push_back(std::move(g));
    }
    return out;
}

bool run_nvidia_smi(std::int64_t unix_ms, std::vector<perf::GpuSample>& out, std::string& why) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        why = "pipe failed";
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    char arg0[] = "nvidia-smi", fmt[] = "--format=csv,noheader,nounits";
    std::string query = kNvidiaSmiQuery;
    char* argv[] = {arg0, query.data(), fmt, nullptr};
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, "nvidia-smi", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        why = "nvidia-smi not started: " + std::string(strerror(rc));
        return false;
    }
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool timed_out = false;
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        if (left <= 0 || text.size() > (1u << 20)) {
            timed_out = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        int n = poll(&p, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        char buf[4096];
        ssize_t got = ::read(fds[0], buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        text.append(buf, static_cast<size_t>(got));
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    // The event loop's SIGCHLD handling may reap it first (ECHILD): the output is what counts.
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {}
    if (timed_out) {
        why = "nvidia-smi did not answer within 10 s";
        return false;
    }
    if (w == pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        why = "nvidia-smi failed";
        return false;
    }
    out = parse_nvidia_smi_csv(text, unix_ms);
    if (out.empty()) {
        why = "nvidia-smi listed no GPU";
        return false;
    }
    return true;
}

} // namespace ls::gpu
