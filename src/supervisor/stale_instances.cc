#include "supervisor/stale_instances.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <unistd.h>

#include "util/text_file.h"

namespace ls::supervisor {

namespace {
std::optional<pid_t> parse_pid(std::string_view digits) {
    if (digits.empty() || digits.size() > 9) return std::nullopt;
    pid_t pid = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        pid = pid * 10 + (c - '0');
    }
    return pid > 0 ? std::optional<pid_t>(pid) : std::nullopt;
}
constexpr std::string_view kScopeOwner = "(llama-swap pid ";
} // namespace

std::optional<pid_t> cgroup_owner_pid(std::string_view name) {
    if (!name.starts_with("llama-swap-")) return std::nullopt;
    const size_t last = name.rfind('-');
    if (last == std::string_view::npos || last < 11 || !parse_pid(name.substr(last + 1)))
        return std::nullopt;
    const size_t before = name.rfind('-', last - 1);
    if (before == std::string_view::npos || before < 11) return std::nullopt;
    return parse_pid(name.substr(before + 1, last - before - 1));
}

std::optional<pid_t> scope_owner_pid(std::string_view description) {
    const size_t at = description.rfind(kScopeOwner);
    if (at == std::string_view::npos || !description.ends_with(")")) return std::nullopt;
    const size_t from = at + kScopeOwner.size();
    return parse_pid(description.substr(from, description.size() - 1 - from));
}

std::string scope_description(const std::string& model_id) {
    return "llama-swap model " + model_id + " " + std::string(kScopeOwner) +
           std::to_string(getpid()) + ")";
}

bool owner_is_alive(pid_t pid) {
    if (pid == getpid()) return true;
    if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
    // A recycled pid is another program: /proc/PID/comm says which.
    std::string comm = read_text_file("/proc/" + std::to_string(pid) + "/comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    return comm == "llama-swap";
}

} // namespace ls::supervisor
