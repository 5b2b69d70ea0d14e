// Which target a selector sends a request to (the original's pin, warm and spillover
// strategies), as a pure function of the targets' states and the selector's own counters.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config/config.h"
#include "supervisor/process_state.h"
#include "util/result.h"

namespace ls::router {

// A spillover selector's reservations: requests sent through it to each model (by model id)
// that have not finished yet, and the round-robin counter for ties. Lives until a reload.
struct SpilloverCounters {
    std::map<std::string, int> in_flight;
    unsigned round_robin = 0;
};

using StateOf = std::function<supervisor::ProcessState(const std::string& model_id)>;

// The index in sel.targets to use. Spillover reserves it in `counters` (release() when the
// request is done); an error (503) when no target can take it.
Result<size_t> pick_target(const config::SelectorConfig& sel, const StateOf& state_of,
                           SpilloverCounters& counters);
void release(SpilloverCounters& counters, const std::string& model_id);

// A reservation held for the length of a request; releases itself.
class SpilloverReservation {
public:
    SpilloverReservation(std::shared_ptr<SpilloverCounters> counters, std::string model_id)
        : counters_(std::move(counters)), model_(std::move(model_id)) {}
    ~SpilloverReservation() {
        if (counters_) release(*counters_, model_);
    }
    SpilloverReservation(const SpilloverReservation&) = delete;
    SpilloverReservation& operator=(const SpilloverReservation&) = delete;

private:
    std::shared_ptr<SpilloverCounters> counters_;
    std::string model_;
};

} // namespace ls::router
