// The scheduler's decisions as pure functions (src/router/swap_plan.h): the original's group
// and matrix router tests, the FIFO priority order, and our collation with its starvation
// bound, driven through simulated time (no sleeps, no processes).
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "config_test_util.h"
#include "router/swap_plan.h"

using namespace ls::router;
using ls::config::Config;
using ls::supervisor::ProcessState;
namespace ct = ls::config::test;

namespace {
// A small world the planner decides about: models with states and loads, a queue, a clock.
struct World {
    Config cfg;
    RoutingPolicy policy{cfg};
    ModelLoads models;
    std::vector<QueuedRequest> queue;
    double now = 100;
    std::vector<std::string> log; // "grant a", "start b", "stop a"

    explicit World(const char* yaml) : cfg(ct::load_ok(yaml)) {
        for (const auto& [id, m] : cfg.models) models[id] = {};
    }
    void ready(const std::string& id) { models[id].state = ProcessState::Ready; }
    void request(const std::string& id) {
        const int prio = cfg.routing.scheduler.priority_of(id);
        std::vector<int> priorities;
        for (const auto& r : queue) priorities.push_back(r.priority);
        queue.insert(queue.begin() + static_cast<long>(queue_position(priorities, prio)),
                     QueuedRequest{id, now, prio, 0});
        models[id].queued++;
    }
    // Plans and applies passes until nothing more happens now; returns this step's log.
    std::vector<std::string> step() {
        std::vector<std::string> out;
        for (int guard = 0; guard < 100; ++guard) {
            PassDecision d = plan_pass(queue, models, policy, cfg.routing.scheduler, now);
            for (auto& [id, since] : d.drain_since) models[id].drain_since = since;
            for (const auto& s : d.stop) {
                models[s.model].state = ProcessState::Stopping;
                out.push_back("stop " + s.model);
            }
            if (d.then == PassDecision::Then::nothing) break;
            QueuedRequest r = queue[d.request];
            if (d.then == PassDecision::Then::grant) {
                queue.erase(queue.begin() + static_cast<long>(d.request));
                models[r.model].queued--;
                models[r.model].in_flight++;
                out.push_back("grant " + r.model);
            } else {
                for (auto& e : queue)
                    if (e.model != r.model && e.enqueued < r.enqueued) ++e.skips;
                models[r.model].state = ProcessState::Starting;
                out.push_back("start " + r.model);
            }
        }
        log.insert(log.end(), out.begin(), out.end());
        return out;
    }
    // The outside world: a start finished, a stop finished, a request finished.
    void started(const std::string& id) { models[id].state = ProcessState::Ready; }
    void stopped(const std::string& id) { models[id].state = ProcessState::Stopped; }
    void done(const std::string& id) { models[id].in_flight--; }
};

void expect(const std::vector<std::string>& got, const std::vector<std::string>& want) {
    std::string g, w;
    for (const auto& s : got) g += "[" + s + "]";
    for (const auto& s : want) w += "[" + s + "]";
    cr_assert_str_eq(g.c_str(), w.c_str());
}

const char* kTwo = R"(
models:
  a: {cmd: "a ${PORT}"}
  b: {cmd: "b ${PORT}"}
  c: {cmd: "c ${PORT}"}
)";

std::string two_with(const char* rest) {
    return std::string(kTwo) + rest;
}
} // namespace

// ---- the original's group router tests (internal/router/group_test.go) ----

Test(group_router, non_swap_group_does_not_stop) {
    World w(two_with("groups: {g: {swap: false, exclusive: false, members: [a, b]}}\n").c_str());
    w.ready("a");
    w.request("b");
    expect(w.step(), {"start b"});
}

Test(group_router, cross_group_exclusive_stops_once) {
    World w(two_with("groups: {g1: {members: [a]}, g2: {members: [b]}}\n").c_str());
    w.ready("a");
    w.request("b");
    expect(w.step(), {"stop a"});
    w.stopped("a");
    expect(w.step(), {"start b"});
    w.started("b");
    expect(w.step(), {"grant b"});
}

Test(group_router, non_exclusive_groups_start_in_parallel) {
    World w(two_with("groups: {g1: {exclusive: false, members: [a]}, "
                     "g2: {exclusive: false, members: [b]}}\n")
                .c_str());
    w.request("a");
    w.request("b");
    expect(w.step(), {"start a", "start b"});
}

Test(group_router, same_group_swap_serialises) {
    World w(two_with("groups: {g: {exclusive: false, members: [a, b]}}\n").c_str());
    w.request("a");
    expect(w.step(), {"start a"});
    w.request("b");
    expect(w.step(), {}); // a is loading for its request: b waits
    w.started("a");
    expect(w.step(), {"grant a"}); // a serves the request it was started for
    w.done("a");
    expect(w.step(), {"stop a"}); // then makes room, once
    w.stopped("a");
    expect(w.step(), {"start b"});
}

Test(group_router, persistent_not_evicted) {
    World w(two_with("groups: {persist: {exclusive: false, persistent: true, members: [a]}, "
                     "other: {members: [b]}}\n")
                .c_str());
    w.ready("a");
    w.request("b");
    expect(w.step(), {"start b"});
}

Test(group_router, non_exclusive_does_not_unload_exclusive) {
    World w(
        two_with("groups: {g1: {members: [a]}, g2: {exclusive: false, members: [b]}}\n").c_str());
    w.ready("a");
    w.request("b");
    expect(w.step(), {"start b"});
}

// ---- the original's matrix router tests (internal/router/matrix_test.go) ----

Test(matrix_router, swap_evicts_conflicting) {
    World w(two_with("matrix: {sets: {s_a: a, s_b: b}}\n").c_str());
    w.ready("a");
    w.request("b");
    expect(w.step(), {"stop a"});
    w.stopped("a");
    expect(w.step(), {"start b"});
}

Test(matrix_router, coexisting_set_keeps_both) {
    World w(two_with("matrix: {sets: {s_ab: \"a & b\"}}\n").c_str());
    w.ready("a");
    w.request("b");
    expect(w.step(), {"start b"});
}

Test(matrix_router, coexisting_set_starts_in_parallel) {
    World w(two_with("matrix: {sets: {s_ab: \"a & b\"}}\n").c_str());
    w.request("a");
    w.request("b");
    expect(w.step(), {"start a", "start b"});
}

Test(matrix_router, incompatible_requests_queue) {
    World w(two_with("matrix: {sets: {s_a: a, s_b: b}}\n").c_str());
    w.request("a");
    expect(w.step(), {"start a"});
    w.request("b");
    expect(w.step(), {}); // a's start is under way: b waits for it
    w.started("a");
    expect(w.step(), {"grant a"});
    w.done("a");
    expect(w.step(), {"stop a"});
    w.stopped("a");
    expect(w.step(), {"start b"});
}

Test(matrix_router, evict_costs_pick_the_cheaper_victim) {
    World w(two_with("matrix:\n  evict_costs: {b: 10, c: 1}\n"
                     "  sets: {a_with_c: \"a & c\", a_with_b: \"a & b\"}\n")
                .c_str());
    w.ready("b");
    w.ready("c");
    w.request("a");
    expect(w.step(), {"stop c"});
}

Test(matrix_router, a_model_in_no_set_runs_alone) {
    World w(two_with("matrix: {sets: {s_ab: \"a & b\"}}\n").c_str());
    w.ready("a");
    w.ready("b");
    w.request("c");
    expect(w.step(), {"stop a", "stop b"});
}

// ---- FIFO priority (internal/router/scheduler/fifo_test.go) ----

Test(fifo, priority_queue_order) {
    World w(R"(
models:
  A: {cmd: "a ${PORT}"}
  B: {cmd: "b ${PORT}"}
  C: {cmd: "c ${PORT}"}
  D: {cmd: "d ${PORT}"}
  z: {cmd: "z ${PORT}"}
routing:
  scheduler:
    settings:
      fifo:
        priority: {A: 10, B: 5, C: 5, D: 1}
)");
    for (const char* m : {"B", "D", "C", "A"}) w.request(m);
    std::string order;
    for (const auto& r : w.queue) order += r.model;
    cr_assert_str_eq(order.c_str(), "ABCD");
}

Test(fifo, higher_priority_model_goes_first) {
    World w(two_with("routing: {scheduler: {settings: {fifo: {priority: {c: 5}}}}}\n").c_str());
    w.ready("a");
    w.models["a"].in_flight = 1; // busy
    w.request("b");
    w.request("c");
    expect(w.step(), {});
    w.done("a");
    expect(w.step(), {"stop a"});
    w.stopped("a");
    expect(w.step(), {"start c"}); // c's priority puts it before b, which came first
}

// ---- collation and the starvation bound (ours; the original's #612 / #790) ----

namespace {
const char* kBound = R"(
models:
  a: {cmd: "a ${PORT}"}
  b: {cmd: "b ${PORT}"}
  c: {cmd: "c ${PORT}"}
routing:
  scheduler: {settings: {fifo: {maxWait: 10, maxSkips: 2}}}
)";
} // namespace

Test(collation, busy_model_keeps_its_own_traffic_then_swaps_once) {
    // A B A B while a is busy: a takes its second request too (A A B B), then b once.
    World w(kBound);
    w.ready("a");
    w.models["a"].in_flight = 1;
    w.request("b");
    expect(w.step(), {});
    w.request("a");
    expect(w.step(), {"grant a"});
    w.request("b");
    expect(w.step(), {});
    w.done("a");
    expect(w.step(), {});
    w.done("a");
    expect(w.step(), {"stop a"}); // idle now: room is made at once, not after maxWait
    w.stopped("a");
    expect(w.step(), {"start b"});
    w.started("b");
    expect(w.step(), {"grant b", "grant b"});
}

Test(collation, endless_traffic_cannot_starve_a_waiting_model) {
    // The pattern that starves the original: a always has a request in flight and another
    // arriving, b waits. Within maxWait b is served.
    World w(kBound);
    w.ready("a");
    w.models["a"].in_flight = 1;
    w.request("b");
    bool b_started = false;
    for (int tick = 0; tick < 30 && !b_started; ++tick) {
        w.now += 1;
        w.request("a"); // the next one arrives before the last one ends
        w.step();
        if (w.models["a"].in_flight > 1) w.done("a"); // one ends
        if (w.models["a"].state == ProcessState::Stopping) w.stopped("a");
        for (const auto& e : w.step()) b_started = b_started || e == "start b";
        if (w.models["a"].in_flight > 0 && w.models["a"].drain_since > 0) w.done("a");
    }
    cr_assert(b_started, "b never started under a's endless traffic");
    cr_assert_leq(w.now, 100 + 10 + 2, "b started at %.0f s, maxWait is 10 s", w.now - 100);
    cr_assert_geq(w.now, 100 + 10, "a's traffic was not collated: b went before maxWait");
}

Test(collation, an_overdue_request_drains_the_busy_model) {
    World w(kBound);
    w.ready("a");
    w.models["a"].in_flight = 1;
    w.request("b");
    w.now += 10;          // maxWait
    expect(w.step(), {}); // a drains: it finishes its request first
    cr_assert_gt(w.models["a"].drain_since, 0);
    w.now += 0.5;
    w.request("a"); // after the drain began: waits behind b
    expect(w.step(), {});
    w.done("a");
    expect(w.step(), {"stop a"});
    w.stopped("a");
    expect(w.step(), {"start b"});
    w.started("b");
    expect(w.step(), {"grant b"}); // a's request now waits its turn (b is busy)
    w.done("b");
    expect(w.step(), {"stop b"}); // b idle: a's request goes at once
}

Test(collation, requests_from_before_the_drain_still_join) {
    World w(kBound);
    w.ready("a");
    w.models["a"].in_flight = 1;
    w.request("a"); // queued while a is busy (say it is at its concurrency)
    w.models["a"].queued = 1;
    w.now += 1;
    w.request("b");
    w.now += 10;
    expect(w.step(), {"grant a"}); // queued before b's drain: served with a's batch
}

Test(collation, max_wait_zero_makes_room_at_once) {
    World w(two_with("routing: {scheduler: {settings: {fifo: {maxWait: 0}}}}\n").c_str());
    w.ready("a");
    w.models["a"].in_flight = 1;
    w.request("b");
    expect(w.step(), {});
    cr_assert_gt(w.models["a"].drain_since, 0, "a drains at once");
    w.now += 0.1;
    w.request("a");
    expect(w.step(), {}); // a's new request waits behind b
}

Test(collation, max_skips_bounds_priority_overtaking) {
    // c has a low priority; two swaps for higher-priority models may go ahead, not a third.
    World w(R"(
models:
  a: {cmd: "a ${PORT}"}
  b: {cmd: "b ${PORT}"}
  c: {cmd: "c ${PORT}"}
routing:
  scheduler: {settings: {fifo: {maxWait: 1000, maxSkips: 2, priority: {a: 5, b: 5}}}}
)");
    w.request("c");
    w.now += 1;
    w.request("a"); // goes before c
    expect(w.step(), {"start a"});
    cr_assert_eq(w.queue.back().skips, 1);
    w.started("a");
    expect(w.step(), {"grant a"});
    w.done("a");
    w.now += 1;
    w.request("b");
    expect(w.step(), {"stop a"});
    w.stopped("a");
    expect(w.step(), {"start b"}); // the second skip
    w.started("b");
    expect(w.step(), {"grant b"});
    w.done("b");
    w.now += 1;
    w.request("a"); // a third higher-priority swap would pass c again: c goes first
    expect(w.step(), {"stop b"});
    w.stopped("b");
    expect(w.step(), {"start c"});
}

Test(collation, next_overdue_time) {
    World w(kBound);
    cr_assert_eq(next_overdue_at(w.queue, w.cfg.routing.scheduler, w.now), 0);
    w.request("b");
    w.now += 3;
    w.request("c");
    cr_assert_float_eq(next_overdue_at(w.queue, w.cfg.routing.scheduler, w.now), 110, 1e-9);
}
