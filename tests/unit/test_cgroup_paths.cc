// /proc/PID/cgroup lines: the v2 line, v1 controller lists, the named systemd hierarchy.
#include <criterion/criterion.h>

#include <string>
#include <unistd.h>

#include "supervisor/cgroup.h"
#include "supervisor/stale_instances.h"

using namespace ls::supervisor;

namespace {
const char* kHybrid = "12:pids:/system.slice/x.service\n"
                      "5:cpu,cpuacct:/system.slice/x.service\n"
                      "4:memory:/system.slice/x.service/m\n"
                      "1:name=systemd:/system.slice/x.service\n"
                      "0::/system.slice/x.service/unified\n";
}

Test(proc_cgroup, parse_and_look_up) {
    const auto lines = parse_proc_cgroup(kHybrid);
    cr_assert_eq(lines.size(), 5u);
    cr_assert_str_eq(lines[1].controllers.c_str(), "cpu,cpuacct");
    cr_assert_str_eq(cgroup_path_of(lines, "cpuacct")->c_str(), "/system.slice/x.service");
    cr_assert_str_eq(cgroup_path_of(lines, "memory")->c_str(), "/system.slice/x.service/m");
    cr_assert_str_eq(cgroup_path_of(lines, "name=systemd")->c_str(), "/system.slice/x.service");
    cr_assert_str_eq(cgroup_path_of(lines, "")->c_str(), "/system.slice/x.service/unified");
    cr_assert_null(cgroup_path_of(lines, "devices"));
}

Test(proc_cgroup, pure_v2_and_garbage) {
    auto lines = parse_proc_cgroup("0::/user.slice\n");
    cr_assert_str_eq(cgroup_path_of(lines, "")->c_str(), "/user.slice");
    cr_assert_null(cgroup_path_of(lines, "memory"));
    lines = parse_proc_cgroup("no colons\n3:only-one\n\n");
    cr_assert_eq(lines.size(), 0u);
    cr_assert_null(cgroup_path_of(lines, ""));
    // A path may itself hold ':' (everything after the second colon).
    lines = parse_proc_cgroup("0::/a:b\n");
    cr_assert_str_eq(cgroup_path_of(lines, "")->c_str(), "/a:b");
}

// What an earlier instance left is found by the owner's pid in the names we give.
Test(stale_instances, cgroup_names_give_their_daemon_pid) {
    cr_assert_eq(ls::supervisor::cgroup_owner_pid("llama-swap-qwen-1234-7").value_or(0), 1234);
    // Model ids may hold '-' and digits: the pid is the second number from the end.
    cr_assert_eq(ls::supervisor::cgroup_owner_pid("llama-swap-a-2-b-99-3").value_or(0), 99);
    cr_assert(!ls::supervisor::cgroup_owner_pid("llama-swap-qwen-7"));
    cr_assert(!ls::supervisor::cgroup_owner_pid("llama-swap-qwen-x-7"));
    cr_assert(!ls::supervisor::cgroup_owner_pid("supervisor"));
    cr_assert(!ls::supervisor::cgroup_owner_pid("other-qwen-1234-7"));
    cr_assert(!ls::supervisor::cgroup_owner_pid("llama-swap-0-1"));
}

Test(stale_instances, scope_descriptions_round_trip) {
    const std::string d = ls::supervisor::scope_description("m (x)");
    cr_assert_eq(ls::supervisor::scope_owner_pid(d).value_or(0), getpid());
    cr_assert(!ls::supervisor::scope_owner_pid("llama-swap model m")); // an older instance's
    cr_assert(!ls::supervisor::scope_owner_pid("llama-swap model m (llama-swap pid )"));
    cr_assert(!ls::supervisor::scope_owner_pid("llama-swap model m (llama-swap pid 12x)"));
}

Test(stale_instances, only_a_dead_owner_is_stale) {
    cr_assert(ls::supervisor::owner_is_alive(getpid()));
    // pid 1 runs, but is not llama-swap: a recycled pid does not protect a leftover.
    cr_assert(!ls::supervisor::owner_is_alive(1));
}
