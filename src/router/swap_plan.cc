#include "router/swap_plan.h"

#include <algorithm>
#include <set>

#include "router/matrix.h"

namespace ls::router {

using supervisor::ProcessState;

namespace {
bool running(ProcessState st) {
    return st == ProcessState::Starting || st == ProcessState::Ready ||
           st == ProcessState::Stopping;
}

// Busy: a start under way, or requests of its own in flight or queued.
bool busy(const ModelLoad& m) {
    return m.state == ProcessState::Starting || m.in_flight > 0 || m.queued > 0;
}

// A request for `model` queued before `t` or in the same loop iteration (it still joins the
// model's drain).
bool waits_from_before(const std::vector<QueuedRequest>& queue, const std::string& model,
                       double t) {
    return std::any_of(queue.begin(), queue.end(),
                       [&](const QueuedRequest& r) { return r.model == model && r.enqueued <= t; });
}
} // namespace

std::vector<std::string> RoutingPolicy::evictions(const std::string& target,
                                                  const ModelLoads& models) const {
    std::vector<std::string> up;
    for (const auto& [id, m] : models)
        if (id != target && running(m.state)) up.push_back(id);
    if (cfg_.routing.router == config::RouterKind::Matrix) {
        const config::MatrixConfig& mc = cfg_.routing.matrix;
        if (!mc.program) return up;
        return matrix::solve(*mc.program, target, up,
                             [&mc](const std::string& m) { return mc.cost_of(m); })
            .evict;
    }
    std::vector<std::string> out;
    const config::GroupConfig* gt = cfg_.group_of(target);
    for (const auto& id : up) {
        const config::GroupConfig* go = cfg_.group_of(id);
        bool evict;
        if (!gt || !go)
            evict = true;
        else if (gt == go)
            evict = gt->swap;
        else // the original's rule: a non-exclusive target never unloads other groups
            evict = gt->exclusive && !go->persistent;
        if (evict) out.push_back(id);
    }
    return out;
}

bool RoutingPolicy::conflicts(const std::string& a, const std::string& b) const {
    if (cfg_.routing.router == config::RouterKind::Matrix) {
        const auto& program = cfg_.routing.matrix.program;
        return !program || !matrix::can_contain_all(*program, {a, b});
    }
    auto evicts = [&](const std::string& target, const std::string& other) {
        const config::GroupConfig* gt = cfg_.group_of(target);
        const config::GroupConfig* go = cfg_.group_of(other);
        if (!gt || !go) return true;
        if (gt == go) return gt->swap;
        return gt->exclusive && !go->persistent;
    };
    return evicts(a, b) || evicts(b, a);
}

size_t queue_position(const std::vector<int>& priorities, int priority) {
    for (size_t i = 0; i < priorities.size(); ++i)
        if (priorities[i] < priority) return i;
    return priorities.size();
}

bool is_overdue(const QueuedRequest& r, const config::SchedulerConfig& sc, double now) {
    if (sc.max_wait_s <= 0) return true; // no collation: room is made at once
    if (now - r.enqueued >= sc.max_wait_s - 1e-3) return true;
    return sc.max_skips > 0 && r.skips >= sc.max_skips;
}

double next_overdue_at(const std::vector<QueuedRequest>& queue, const config::SchedulerConfig& sc,
                       double now) {
    double next = 0;
    if (sc.max_wait_s <= 0) return 0;
    for (const auto& r : queue)
        if (!is_overdue(r, sc, now) && (next == 0 || r.enqueued + sc.max_wait_s < next))
            next = r.enqueued + sc.max_wait_s;
    return next;
}

PassDecision plan_pass(const std::vector<QueuedRequest>& queue, const ModelLoads& models,
                       const RoutingPolicy& policy, const config::SchedulerConfig& sc, double now) {
    PassDecision d;
    std::map<std::string, double> drain = {};
    for (const auto& [id, m] : models) drain[id] = m.drain_since;
    std::set<std::string> victims; // draining for a waiting request, this pass
    std::set<std::string> claimed; // models that earlier requests wait for
    std::vector<size_t> order;     // overdue requests first, then the queue's order
    for (size_t i = 0; i < queue.size(); ++i)
        if (is_overdue(queue[i], sc, now)) order.push_back(i);
    const size_t n_overdue = order.size();
    for (size_t i = 0; i < queue.size(); ++i)
        if (!is_overdue(queue[i], sc, now)) order.push_back(i);

    auto finish = [&](PassDecision::Then then, size_t request) {
        d.then = then;
        d.request = request;
        for (auto& [id, since] : drain)
            if (victims.count(id)) {
                if (since == 0) since = now;
            } else if (then == PassDecision::Then::nothing) {
                since = 0; // a drain that no request asks for any more is over
            }
        d.drain_since = std::move(drain);
        return d;
    };

    for (size_t k = 0; k < order.size(); ++k) {
        const QueuedRequest& r = queue[order[k]];
        auto mit = models.find(r.model);
        if (mit == models.end()) continue;
        const ModelLoad& m = mit->second;
        const bool draining = m.reloading || victims.count(r.model);
        // A draining model still takes the requests queued before its drain began.
        const double since = drain[r.model] != 0 ? drain[r.model] : now;
        const bool joins_drain = victims.count(r.model) && !m.reloading && r.enqueued <= since;
        if (m.state == ProcessState::Ready && (!draining || joins_drain))
            return finish(PassDecision::Then::grant, order[k]);
        if (!claimed.insert(r.model).second) continue; // this model is handled already
        if (m.state != ProcessState::Stopped && m.state != ProcessState::Failed)
            continue; // starting: single-flight
        if (m.reloading) {
            d.replace_reloaded = true; // the process object is replaced first
            continue;
        }
        bool blocked = false;
        for (const auto& other : claimed)
            if (other != r.model && policy.conflicts(r.model, other)) blocked = true;
        if (blocked) continue; // an earlier request's model goes first
        const std::vector<std::string> in_the_way = policy.evictions(r.model, models);
        const bool overdue = k < n_overdue;
        if (!overdue && std::any_of(in_the_way.begin(), in_the_way.end(),
                                    [&](const auto& id) { return busy(models.at(id)); }))
            continue; // collation: busy models keep serving their own traffic for now
        bool can_start = true;
        for (const auto& id : in_the_way) {
            victims.insert(id);
            if (drain[id] == 0) drain[id] = now;
            can_start = false;
            const ModelLoad& v = models.at(id);
            if (v.state == ProcessState::Stopping || v.in_flight > 0) continue; // wait for it
            // Its own earlier requests first (also while it is still loading for them).
            if ((v.state == ProcessState::Ready || v.state == ProcessState::Starting) &&
                waits_from_before(queue, id, drain[id]))
                continue;
            if (std::none_of(d.stop.begin(), d.stop.end(),
                             [&](const PassDecision::Stop& s) { return s.model == id; }))
                d.stop.push_back({id, r.model});
        }
        if (can_start) return finish(PassDecision::Then::start, order[k]);
    }
    return finish(PassDecision::Then::nothing, 0);
}

} // namespace ls::router
