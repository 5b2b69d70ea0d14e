// The scheduler's decisions as pure functions of what it knows (the queue, each model's state
// and load, the time): which request to grant, which model to start, which running models to
// stop to make room for it. No processes, no clock, no I/O, so the rules are unit-tested with
// no sleeps; router::Scheduler applies the decisions.
//
// Rules (one pass over the queue, overdue requests first, then the queue's order):
//  - a ready model that is not draining takes its next request (a draining one only takes
//    the requests that came before its drain began: collation instead of ping-pong);
//  - a stopped model is started once (single-flight), unless an earlier request waits for a
//    model it cannot run beside (conflicts), or the models in its way are busy and the request
//    is not overdue yet (collation: they keep taking their own requests, A A B B);
//  - the models in the way drain: they take no new requests, finish what is in flight, and
//    are stopped; the start follows once they are gone.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "supervisor/process_state.h"

namespace ls::router {

// What the planner sees of one model.
struct ModelLoad {
    supervisor::ProcessState state = supervisor::ProcessState::Stopped;
    int in_flight = 0;
    int queued = 0;
    bool reloading = false; // changed or removed by a reload: drains, then is replaced
    double drain_since = 0; // when it began to drain for a waiting request (0: it does not)
};
using ModelLoads = std::map<std::string, ModelLoad>;

// A queued request, in queue order (priority, then arrival).
struct QueuedRequest {
    std::string model;
    double enqueued = 0;
    int priority = 0;
    int skips = 0; // starts of other models that went ahead of it
};

// Which models may run together: the group rules or the matrix solver, from the config.
class RoutingPolicy {
public:
    explicit RoutingPolicy(const config::Config& cfg) : cfg_(cfg) {}
    // The running models (starting, ready or stopping) that must stop for `target`.
    std::vector<std::string> evictions(const std::string& target, const ModelLoads& models) const;
    // Would starting one of the two stop the other?
    bool conflicts(const std::string& a, const std::string& b) const;

private:
    const config::Config& cfg_;
};

// Where a request of `priority` goes: in front of the first request of a strictly lower one.
size_t queue_position(const std::vector<int>& priorities, int priority);

// Past the collation window: it goes first, and the models in its way drain now.
bool is_overdue(const QueuedRequest& r, const config::SchedulerConfig& sc, double now);
// When the first request not overdue yet becomes overdue; 0: none will by time.
double next_overdue_at(const std::vector<QueuedRequest>& queue, const config::SchedulerConfig& sc,
                       double now);

struct PassDecision {
    enum class Then { nothing, grant, start };
    Then then = Then::nothing;
    size_t request = 0; // grant / start: its index in the queue
    struct Stop {
        std::string model;
        std::string for_model; // the model it makes room for (logs)
    };
    std::vector<Stop> stop;                    // models to stop now, to make room
    std::map<std::string, double> drain_since; // every model's drain start after the pass
    bool replace_reloaded = false; // a reloaded model waits to be replaced (maintenance)
};

// One pass over the queue.
PassDecision plan_pass(const std::vector<QueuedRequest>& queue, const ModelLoads& models,
                       const RoutingPolicy& policy, const config::SchedulerConfig& sc, double now);

} // namespace ls::router
