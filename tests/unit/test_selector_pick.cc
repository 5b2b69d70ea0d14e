// Selector strategies (src/router/selector_pick.h): the original's selector tests
// (internal/server/selector_test.go, the local cases) as pure functions.
#include <criterion/criterion.h>

#include <map>
#include <string>

#include "router/selector_pick.h"

using namespace ls::router;
using ls::config::SelectorConfig;
using ls::config::SelectorStrategy;
using ls::supervisor::ProcessState;

namespace {
SelectorConfig selector(SelectorStrategy strategy, std::vector<std::string> targets,
                        int spillover = 1) {
    SelectorConfig s;
    s.id = "pool";
    s.strategy = strategy;
    s.targets = targets;
    s.models = targets;
    s.spillover = spillover;
    return s;
}

StateOf states(std::map<std::string, ProcessState> m) {
    return [m](const std::string& id) {
        auto it = m.find(id);
        return it == m.end() ? ProcessState::Stopped : it->second;
    };
}

std::string pick(const SelectorConfig& s, const StateOf& st, SpilloverCounters& c) {
    auto r = pick_target(s, st, c);
    cr_assert(r.ok(), "%s", r.ok() ? "" : r.error().message.c_str());
    return s.targets[*r];
}
} // namespace

Test(selector_pick, pin_always_takes_the_first) {
    SpilloverCounters c;
    auto s = selector(SelectorStrategy::Pin, {"first", "second"});
    cr_assert_str_eq(pick(s, states({{"second", ProcessState::Ready}}), c).c_str(), "first");
}

Test(selector_pick, warm_prefers_ready_then_starting_then_the_first) {
    SpilloverCounters c;
    auto s = selector(SelectorStrategy::Warm, {"a", "b", "c"});
    cr_assert_str_eq(
        pick(s, states({{"a", ProcessState::Starting}, {"c", ProcessState::Ready}}), c).c_str(),
        "c");
    cr_assert_str_eq(pick(s,
                          states({{"a", ProcessState::Starting},
                                  {"b", ProcessState::Ready},
                                  {"c", ProcessState::Ready}}),
                          c)
                         .c_str(),
                     "b");
    cr_assert_str_eq(
        pick(s, states({{"a", ProcessState::Starting}, {"b", ProcessState::Starting}}), c).c_str(),
        "a");
    cr_assert_str_eq(pick(s, states({}), c).c_str(), "a");
    cr_assert_str_eq(pick(s, states({{"a", ProcessState::Stopping}}), c).c_str(), "a",
                     "stopping is neither ready nor starting: a cold start of the first");
}

Test(selector_pick, spillover_fills_then_spills_over) {
    SpilloverCounters c;
    auto s = selector(SelectorStrategy::Spillover, {"a", "b", "c"}, 2);
    const auto none = states({});
    cr_assert_str_eq(pick(s, none, c).c_str(), "a");
    cr_assert_str_eq(pick(s, none, c).c_str(), "a");
    cr_assert_str_eq(pick(s, none, c).c_str(), "b", "a holds 2: the next one starts");
    release(c, "a");
    const auto all_ready = states(
        {{"a", ProcessState::Ready}, {"b", ProcessState::Ready}, {"c", ProcessState::Ready}});
    cr_assert_str_eq(pick(s, all_ready, c).c_str(), "c", "c is ready and the least busy");
}

Test(selector_pick, spillover_shares_when_every_target_is_full) {
    SpilloverCounters c;
    auto s = selector(SelectorStrategy::Spillover, {"a", "b"}, 1);
    const auto ready = states({{"a", ProcessState::Ready}, {"b", ProcessState::Ready}});
    cr_assert_str_eq(pick(s, ready, c).c_str(), "a");
    cr_assert_str_eq(pick(s, ready, c).c_str(), "b");
    const std::string third = pick(s, ready, c);
    const std::string fourth = pick(s, ready, c);
    cr_assert_neq(third, fourth, "round robin among the least busy");
    cr_assert_eq(c.in_flight["a"], 2);
    cr_assert_eq(c.in_flight["b"], 2);
}

Test(selector_pick, spillover_with_every_target_stopping_fails) {
    SpilloverCounters c;
    auto s = selector(SelectorStrategy::Spillover, {"a", "b"});
    auto r =
        pick_target(s, states({{"a", ProcessState::Stopping}, {"b", ProcessState::Stopping}}), c);
    cr_assert_not(r.ok());
    cr_assert_str_eq(r.error().message.c_str(),
                     "selector \"pool\" has no available spillover targets");
}

Test(selector_pick, a_reservation_releases_itself) {
    auto c = std::make_shared<SpilloverCounters>();
    auto s = selector(SelectorStrategy::Spillover, {"a", "b"});
    {
        auto r = pick_target(s, states({}), *c);
        SpilloverReservation hold(c, s.models[*r]);
        cr_assert_eq(c->in_flight["a"], 1);
    }
    cr_assert_eq(c->in_flight.count("a"), 0u);
}
