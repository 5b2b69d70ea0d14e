// The model process life cycle table (src/supervisor/process_state.h).
#include <criterion/criterion.h>

#include <set>
#include <utility>

#include "supervisor/process_state.h"

using ls::supervisor::is_active;
using ls::supervisor::ProcessState;
using ls::supervisor::to_string;
using ls::supervisor::transition_allowed;

namespace {
constexpr ProcessState kAll[] = {ProcessState::Stopped, ProcessState::Starting, ProcessState::Ready,
                                 ProcessState::Stopping, ProcessState::Failed};
} // namespace

Test(process_state, transition_table_is_exactly_the_documented_edges) {
    using S = ProcessState;
    const std::set<std::pair<S, S>> allowed = {
        {S::Stopped, S::Starting},  // start
        {S::Failed, S::Starting},   // start again
        {S::Failed, S::Stopped},    // an explicit unload clears the failure
        {S::Starting, S::Ready},    // ready
        {S::Starting, S::Stopping}, // stop or health-check timeout
        {S::Starting, S::Failed},   // exit while starting
        {S::Ready, S::Stopping},    // stop (swap, TTL, unload)
        {S::Ready, S::Failed},      // exit while ready
        {S::Stopping, S::Stopped},  // reaped
        {S::Stopping, S::Failed},   // reaped, unclean
    };
    int checked = 0;
    for (S from : kAll) {
        for (S to : kAll) {
            const bool want = allowed.count({from, to}) > 0;
            cr_assert_eq(transition_allowed(from, to), want, "%s -> %s: expected %s",
                         to_string(from), to_string(to), want ? "allowed" : "refused");
            ++checked;
        }
    }
    cr_assert_eq(checked, 25);
}

Test(process_state, no_self_transitions) {
    for (ProcessState s : kAll)
        cr_assert_not(transition_allowed(s, s), "%s -> itself", to_string(s));
}

Test(process_state, stopped_only_without_a_live_process) {
    // A running process must pass through stopping (TERM, grace, KILL) to reach stopped;
    // failed has nothing left to stop.
    for (ProcessState s : kAll)
        cr_assert_eq(transition_allowed(s, ProcessState::Stopped),
                     s == ProcessState::Stopping || s == ProcessState::Failed, "%s -> stopped",
                     to_string(s));
}

Test(process_state, usable_at_compile_time) {
    static_assert(transition_allowed(ProcessState::Stopped, ProcessState::Starting));
    static_assert(!transition_allowed(ProcessState::Stopped, ProcessState::Ready));
    static_assert(is_active(ProcessState::Ready));
    static_assert(to_string(ProcessState::Failed)[0] == 'f');
}

Test(process_state, to_string_names) {
    cr_assert_str_eq(to_string(ProcessState::Stopped), "stopped");
    cr_assert_str_eq(to_string(ProcessState::Starting), "starting");
    cr_assert_str_eq(to_string(ProcessState::Ready), "ready");
    cr_assert_str_eq(to_string(ProcessState::Stopping), "stopping");
    cr_assert_str_eq(to_string(ProcessState::Failed), "failed");
    cr_assert_str_eq(to_string(static_cast<ProcessState>(200)), "?");
}

Test(process_state, is_active) {
    cr_assert_not(is_active(ProcessState::Stopped));
    cr_assert(is_active(ProcessState::Starting));
    cr_assert(is_active(ProcessState::Ready));
    cr_assert(is_active(ProcessState::Stopping));
    cr_assert_not(is_active(ProcessState::Failed));
}

Test(process_state, every_reachable_state_reachable_from_stopped) {
    // Walk the graph from Stopped: every state is reachable and Stopped is reachable again.
    std::set<ProcessState> seen = {ProcessState::Stopped};
    bool grew = true;
    while (grew) {
        grew = false;
        for (ProcessState from : kAll) {
            if (!seen.count(from)) continue;
            for (ProcessState to : kAll)
                if (transition_allowed(from, to) && seen.insert(to).second) grew = true;
        }
    }
    cr_assert_eq(seen.size(), 5u);
}
