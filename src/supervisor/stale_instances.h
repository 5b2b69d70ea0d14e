// What an earlier instance of the daemon left behind: its fork-backend cgroups
// (llama-swap-<id>-<daemon pid>-<n> beside ours) and its scope units (their Description names
// the daemon's pid). An instance that is gone (its pid dead, or now another program) cannot
// stop its models any more; a daemon that starts stops them, so a crashed daemon restarted at
// once finds its GPUs free. A live instance's models are never touched.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace ls::supervisor {

// The daemon pid in a fork-backend cgroup name, "llama-swap-<id>-<pid>-<n>".
std::optional<pid_t> cgroup_owner_pid(std::string_view name);
// The daemon pid in a scope's Description, "llama-swap model <id> (llama-swap pid <pid>)".
std::optional<pid_t> scope_owner_pid(std::string_view description);
std::string scope_description(const std::string& model_id); // with our own pid
// Whether the daemon `pid` (us included) still runs: then its models are its own.
bool owner_is_alive(pid_t pid);

} // namespace ls::supervisor
