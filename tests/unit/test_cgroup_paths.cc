// /proc/PID/cgroup lines: the v2 line, v1 controller lists, the named systemd hierarchy.
#include <criterion/criterion.h>

#include "supervisor/cgroup.h"

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
