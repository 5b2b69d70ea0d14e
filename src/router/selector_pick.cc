#include "router/selector_pick.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "router/matrix.h"

namespace ls::router {

using supervisor::ProcessState;

namespace {
// warm: the first ready target, else the first starting one, else a cold start of the first.
size_t pick_warm(const config::SelectorConfig& sel, const StateOf& state_of) {
    for (ProcessState wanted : {ProcessState::Ready, ProcessState::Starting})
        for (size_t i = 0; i < sel.models.size(); ++i)
            if (state_of(sel.models[i]) == wanted) return i;
    return 0;
}

// spillover: fill the active targets (running, or with reservations) up to `spillover`
// requests each, least busy first and round robin among equals; then cold-start the next.
Result<size_t> pick_spillover(const config::SelectorConfig& sel, const StateOf& state_of,
                              SpilloverCounters& c) {
    std::vector<size_t> active, cold;
    for (size_t i = 0; i < sel.models.size(); ++i) {
        const ProcessState st = state_of(sel.models[i]);
        if (st == ProcessState::Stopping) continue; // on its way out: neither
        const int reserved = c.in_flight.count(sel.models[i]) ? c.in_flight.at(sel.models[i]) : 0;
        if (st == ProcessState::Ready || st == ProcessState::Starting || reserved > 0)
            active.push_back(i);
        else
            cold.push_back(i);
    }
    auto load = [&](size_t i) {
        auto it = c.in_flight.find(sel.models[i]);
        return it == c.in_flight.end() ? 0 : it->second;
    };
    auto least_busy = [&]() {
        int least = load(active[0]);
        for (size_t i : active) least = std::min(least, load(i));
        std::vector<size_t> tied;
        for (size_t i : active)
            if (load(i) == least) tied.push_back(i);
        return tied[c.round_robin++ % tied.size()];
    };
    std::optional<size_t> pick;
    if (active.empty()) {
        if (cold.empty())
            return make_error("selector " + matrix::go_quote(sel.id) +
                              " has no available spillover targets");
        pick = cold[0];
    } else {
        int least = load(active[0]);
        for (size_t i : active) least = std::min(least, load(i));
        if (least < sel.spillover)
            pick = least_busy();
        else if (!cold.empty())
            pick = cold[0]; // spill over: start the next one
        else
            pick = least_busy(); // every target is full: share the load
    }
    ++c.in_flight[sel.models[*pick]];
    return *pick;
}
} // namespace

Result<size_t> pick_target(const config::SelectorConfig& sel, const StateOf& state_of,
                           SpilloverCounters& counters) {
    switch (sel.strategy) {
    case config::SelectorStrategy::Pin:
        return size_t{0};
    case config::SelectorStrategy::Warm:
        return pick_warm(sel, state_of);
    case config::SelectorStrategy::Spillover:
        return pick_spillover(sel, state_of, counters);
    }
    return size_t{0};
}

void release(SpilloverCounters& counters, const std::string& model_id) {
    auto it = counters.in_flight.find(model_id);
    if (it != counters.in_flight.end() && --it->second <= 0) counters.in_flight.erase(it);
}

} // namespace ls::router
