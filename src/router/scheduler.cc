#include "router/scheduler.h"

#include <algorithm>
#include <set>
#include <unistd.h>

#include "util/log.h"

namespace ls::router {

using supervisor::ModelProcess;
using supervisor::ProcessState;

Scheduler::Scheduler(struct ev_loop* loop, supervisor::GroupGuard* guard, logs::LogHub* hub)
    : loop_(loop), guard_(guard), hub_(hub), ports_(5800),
      queue_timer_(loop, &on_queue_timeout, this), overdue_timer_(loop, &on_overdue, this),
      notify_(loop, &on_notify, this), scopes_(loop), resolver_(loop),
      maintenance_(loop, &on_maintenance, this), stale_cgroups_(loop, &on_stale_cgroups, this) {
    if (auto r = notify_.open(); !r)
        LOG_WARN("upstream readiness via sd_notify is unavailable: %s", r.error().message.c_str());
}

void Scheduler::on_notify(void* p, pid_t sender, std::string_view message) {
    auto* self = static_cast<Scheduler*>(p);
    // The sender is the upstream itself or a process of its group (a wrapper's child).
    const pid_t group = getpgid(sender);
    for (auto& [id, s] : self->slots_) {
        const pid_t pid = s->process->pid();
        if (pid > 0 && (pid == sender || pid == group)) {
            s->process->on_notify(message);
            return;
        }
    }
    LOG_DEBUG("sd_notify message from unknown pid %d ignored", sender);
}

Scheduler::~Scheduler() {
    // Waiters are owned by connections that are already gone at this point. Processes go
    // before the notify socket, cgroup manager and bus connection they use.
    queue_.clear();
    slots_.clear();
}

Scheduler::Slot* Scheduler::slot(const std::string& id) {
    auto it = slots_.find(id);
    return it == slots_.end() ? nullptr : it->second.get();
}

namespace {
constexpr double kWedgedStopGrace = 5; // seconds of SIGTERM before SIGKILL for a wedged model
constexpr double kStaleCgroupRetry = 0.1;
constexpr int kStaleCgroupTries = 50;

// Settings that only take effect when the process is started again.
bool needs_restart(const config::ModelConfig& a, const config::ModelConfig& b) {
    const config::ResourceLimits &la = a.limits, &lb = b.limits;
    const bool limits_changed =
        la.memory_max != lb.memory_max || la.memory_high != lb.memory_high ||
        la.cpu_quota_percent != lb.cpu_quota_percent || la.allowed_cpus != lb.allowed_cpus ||
        la.gpus != lb.gpus || la.gpus_set != lb.gpus_set;
    return a.cmd != b.cmd || a.cmd_stop != b.cmd_stop || a.proxy != b.proxy ||
           a.check_endpoint != b.check_endpoint || a.env != b.env ||
           a.ready_pattern != b.ready_pattern || a.backend != b.backend || limits_changed;
}
} // namespace

supervisor::ProcessSettings Scheduler::process_settings() const {
    supervisor::ProcessSettings settings;
    settings.health_check_timeout_s = cfg_.health_check_timeout_s;
    settings.notify_socket = notify_.address();
    if (cgroups_.layout() != supervisor::CgroupManager::Layout::None)
        settings.cgroups = const_cast<supervisor::CgroupManager*>(&cgroups_);
    settings.scopes = const_cast<supervisor::ScopeBackend*>(&scopes_);
    settings.resolver = const_cast<proxy::Resolver*>(&resolver_);
    settings.backend = cfg_.backend;
    return settings;
}

void Scheduler::apply_config(const config::Config& cfg) {
    const bool first = slots_.empty();
    cfg_ = cfg;
    // The scope backend is tried once, when some model may use it.
    bool wants_scope = cfg.backend != config::Backend::Fork;
    for (const auto& [id, m] : cfg.models)
        wants_scope |= m.backend.value_or(cfg.backend) != config::Backend::Fork;
    if (wants_scope && !scope_tried_) {
        scope_tried_ = true;
        if (auto r = scopes_.connect(); r) {
            LOG_INFO("scope backend: models run in transient units via %s",
                     scopes_.address().c_str());
            for (const std::string& what : scopes_.clean_stale())
                LOG_WARN("cleaned up after an earlier llama-swap: scope %s", what.c_str());
        } else
            LOG_INFO("scope backend unavailable (%s): using the fork backend (%s)",
                     r.error().message.c_str(),
                     supervisor::CgroupManager::layout_name(cgroups_.layout()));
    }
    if (first) {
        for (const std::string& what : cgroups_.clean_stale())
            LOG_WARN("cleaned up after an earlier llama-swap: cgroup %s", what.c_str());
        if (cgroups_.remove_stale_busy() > 0) stale_cgroups_.start(kStaleCgroupRetry);
    }
    ports_.set_start(cfg.start_port);
    // The original hands ports out in id order; keep that as the preferred port.
    int port_index = 0;
    for (const auto& [id, model] : cfg.models) {
        const int preferred = model.uses_port ? cfg.start_port + port_index++ : 0;
        if (Slot* s = slot(id)) {
            s->removed = false;
            s->pending_config.reset();
            if (needs_restart(s->process->config(), model)) {
                if (!first)
                    LOG_INFO("model %s: settings changed, restarting it once drained", id.c_str());
                s->pending_config = std::make_unique<config::ModelConfig>(model);
            } else {
                s->process->update_config(model, process_settings());
                if (s->in_flight == 0 && s->queued == 0) arm_ttl(*s); // a new ttl counts from now
            }
            continue;
        }
        auto s = std::make_unique<Slot>();
        s->owner = this;
        s->process = std::make_unique<ModelProcess>(loop_, model, process_settings(), preferred,
                                                    ports_, guard_, *this);
        s->ttl = std::make_unique<TimerWatcher>(loop_, &on_ttl, s.get());
        slots_.emplace(id, std::move(s));
    }
    for (auto& [id, s] : slots_) {
        if (cfg.models.count(id)) continue;
        LOG_INFO("model %s: removed from the configuration, stopping it once drained", id.c_str());
        s->removed = true;
        reject_model_waiters(id, {404, "model '" + id + "' was removed from the configuration",
                                  "model_not_found", 0});
    }
    maintenance_.start(0);
    pump();
}

void Scheduler::on_maintenance(struct ev_loop*, ev_timer* w, int) {
    static_cast<Scheduler*>(w->data)->apply_pending_configs();
}

void Scheduler::apply_pending_configs() {
    bool changed = false;
    for (auto it = slots_.begin(); it != slots_.end();) {
        Slot& s = *it->second;
        const bool waiting = s.removed || s.pending_config;
        if (!waiting) {
            ++it;
            continue;
        }
        const ProcessState st = s.process->state();
        if (supervisor::is_active(st)) {
            // Drain first: no request in flight is ever cut by a reload.
            if (s.in_flight == 0 && st != ProcessState::Stopping)
                s.process->stop(s.process->config().unload_timeout_s,
                                s.removed ? "removed from the configuration"
                                          : "configuration changed");
            ++it;
            continue;
        }
        if (s.in_flight > 0) { // a request still holds the old process object (e.g. after /unload)
            ++it;
            continue;
        }
        if (s.removed) {
            if (s.in_flight == 0 && s.queued == 0) {
                it = slots_.erase(it);
                changed = true;
                continue;
            }
        } else {
            const int preferred = s.process->port() > 0 ? s.process->port() : 0;
            s.process = std::make_unique<ModelProcess>(loop_, *s.pending_config, process_settings(),
                                                       preferred, ports_, guard_, *this);
            s.pending_config.reset();
            changed = true;
        }
        ++it;
    }
    if (changed) pump();
}

void Scheduler::request(const std::string& model_id, Waiter* waiter) {
    Slot* s = slot(model_id);
    if (!s) {
        waiter->on_rejected(
            {404, "model '" + model_id + "' is not configured", "model_not_found", 0});
        return;
    }
    if (shutting_down_) {
        waiter->on_rejected({503, "llama-swap is shutting down", "shutting_down", 5});
        return;
    }
    const int limit = s->process->config().concurrency_limit;
    if (s->in_flight + s->queued >= limit) {
        waiter->on_rejected({429,
                             "too many requests for model '" + model_id + "' (concurrencyLimit " +
                                 std::to_string(limit) + ")",
                             "concurrency_limit", 1});
        return;
    }
    s->ttl->stop();
    // Fast path: nothing waits and the model is ready — no queue entry, no pump.
    if (queue_.empty() && s->process->state() == ProcessState::Ready && !s->pending_config &&
        !s->removed && !pumping_) {
        s->in_flight++;
        waiter->on_granted(*s->process);
        return;
    }
    const double timeout =
        cfg_.queue_timeout_s > 0 ? cfg_.queue_timeout_s : cfg_.health_check_timeout_s;
    // Higher priority first, arrival order within a priority: in front of the first entry of
    // a strictly lower priority.
    const int priority = cfg_.routing.scheduler.priority_of(model_id);
    std::vector<int> priorities;
    for (const auto& e : queue_) priorities.push_back(e.priority);
    auto at = std::next(queue_.begin(),
                        static_cast<std::ptrdiff_t>(queue_position(priorities, priority)));
    waiter->pos_ = queue_.insert(
        at, QueueEntry{waiter, model_id, ev_now(loop_), ev_now(loop_) + timeout, priority, 0});
    waiter->queued_ = true;
    s->queued++;
    arm_queue_timer();
    pump();
}

void Scheduler::cancel(Waiter* waiter) {
    if (!waiter->queued_) return;
    auto it = waiter->pos_;
    if (Slot* s = slot(it->model)) {
        s->queued--;
        if (s->queued == 0 && s->in_flight == 0) arm_ttl(*s);
    }
    waiter->queued_ = false;
    queue_.erase(it);
    arm_queue_timer();
    pump(); // a swap this waiter held up may no longer be wanted, or others may now fit
}

void Scheduler::release(const std::string& model_id) {
    Slot* s = slot(model_id);
    if (!s || s->in_flight == 0) return;
    s->in_flight--;
    s->last_used = ev_now(loop_);
    if (s->in_flight == 0) {
        arm_ttl(*s);
        if (s->pending_config || s->removed) maintenance_.start(0);
        pump(); // a swap may have been waiting for this model to drain
    }
}

void Scheduler::arm_ttl(Slot& s) {
    const int ttl = s.process->config().ttl_s;
    if (ttl > 0 && s.in_flight == 0 && s.queued == 0 && s.process->state() == ProcessState::Ready)
        s.ttl->start(ttl);
    else
        s.ttl->stop();
}

void Scheduler::on_ttl(struct ev_loop*, ev_timer* w, int) {
    auto* s = static_cast<Slot*>(w->data);
    if (s->in_flight > 0 || s->queued > 0 || s->process->state() != ProcessState::Ready) return;
    LOG_INFO("model %s: idle for %d s (ttl), unloading", s->process->id().c_str(),
             s->process->config().ttl_s);
    s->process->stop(s->process->config().unload_timeout_s, "ttl expired");
}

void Scheduler::arm_queue_timer() {
    if (queue_.empty()) {
        queue_timer_.stop();
        return;
    }
    // Priorities reorder the queue, so the earliest deadline may be anywhere in it (the
    // queue is bounded by the models' concurrencyLimit).
    double first = queue_.front().deadline;
    for (const auto& e : queue_) first = std::min(first, e.deadline);
    const double left = first - ev_now(loop_);
    queue_timer_.start(left > 0.001 ? left : 0.001);
}

void Scheduler::on_queue_timeout(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<Scheduler*>(w->data);
    const double now = ev_now(self->loop_);
    const double timeout = self->cfg_.queue_timeout_s > 0 ? self->cfg_.queue_timeout_s
                                                          : self->cfg_.health_check_timeout_s;
    for (auto it = self->queue_.begin(); it != self->queue_.end();) {
        auto next = std::next(it);
        if (it->deadline <= now + 0.0005) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "timed out after %.0f s waiting for model '%s' to become ready", timeout,
                     it->model.c_str());
            self->reject(it, {503, msg, "model_wait_timeout", 5});
        }
        it = next;
    }
    self->arm_queue_timer();
    self->pump();
}

void Scheduler::arm_overdue_timer() {
    std::vector<QueuedRequest> queue;
    for (const auto& e : queue_) queue.push_back({e.model, e.enqueued, e.priority, e.skips});
    const double now = ev_now(loop_);
    const double next = next_overdue_at(queue, cfg_.routing.scheduler, now);
    if (next == 0)
        overdue_timer_.stop();
    else
        overdue_timer_.start(std::max(0.001, next - now));
}

void Scheduler::on_overdue(struct ev_loop*, ev_timer* w, int) {
    static_cast<Scheduler*>(w->data)->pump();
}

void Scheduler::grant(std::list<QueueEntry>::iterator it, Slot& s) {
    Waiter* w = it->waiter;
    w->queued_ = false;
    s.queued--;
    s.in_flight++;
    s.ttl->stop();
    queue_.erase(it);
    arm_queue_timer();
    w->on_granted(*s.process);
}

void Scheduler::reject(std::list<QueueEntry>::iterator it, const Rejection& why) {
    Waiter* w = it->waiter;
    w->queued_ = false;
    if (Slot* s = slot(it->model)) s->queued--;
    queue_.erase(it);
    w->on_rejected(why);
}

void Scheduler::reject_model_waiters(const std::string& model, const Rejection& why) {
    for (auto it = queue_.begin(); it != queue_.end();) {
        auto next = std::next(it);
        if (it->model == model) reject(it, why);
        it = next;
    }
    arm_queue_timer();
}

void Scheduler::pump() {
    if (pumping_) {
        pump_again_ = true;
        return;
    }
    pumping_ = true;
    do {
        pump_again_ = false;
        if (queue_.empty()) {
            // Nothing waits: no grant, start or stop to plan (plan_pass would only end the
            // drains nobody asks for any more). Every release pumps: with many models
            // configured, planning over (or even visiting) all of them per request would cost
            // more than the request, so the drains are ended only when a pass recorded some.
            if (drains_recorded_)
                for (auto& [id, s] : slots_) s->drain_since = 0;
            drains_recorded_ = false;
            break;
        }
        const double now = ev_now(loop_);
        std::vector<std::list<QueueEntry>::iterator> entries;
        std::vector<QueuedRequest> queue;
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
            entries.push_back(it);
            queue.push_back({it->model, it->enqueued, it->priority, it->skips});
        }
        ModelLoads loads;
        for (const auto& [id, s] : slots_)
            loads[id] = {s->process->state(), s->in_flight, s->queued,
                         s->pending_config != nullptr || s->removed, s->drain_since};
        const PassDecision d = plan_pass(queue, loads, policy_, cfg_.routing.scheduler, now);
        for (const auto& [id, since] : d.drain_since) {
            if (Slot* s = slot(id)) s->drain_since = since;
            drains_recorded_ |= since != 0;
        }
        if (d.replace_reloaded) maintenance_.start(0);
        for (const auto& stop : d.stop) {
            Slot* victim = slot(stop.model);
            LOG_EVENT(LogLevel::Info, (LogFields{.model = stop.model, .event = "swap"}),
                      "swap: stopping %s to make room for %s", stop.model.c_str(),
                      stop.for_model.c_str());
            if (on_swap) on_swap();
            victim->process->stop(victim->process->config().unload_timeout_s, "swapping");
        }
        if (d.then == PassDecision::Then::nothing) break;
        const auto it = entries[d.request];
        Slot* s = slot(it->model);
        if (d.then == PassDecision::Then::grant) {
            grant(it, *s);
        } else {
            // Older requests for other models that this start passes count it (maxSkips).
            for (auto& e : queue_)
                if (e.model != it->model && e.enqueued < it->enqueued) ++e.skips;
            s->process->start(); // may fail synchronously and reject waiters
        }
        pump_again_ = true; // callbacks may have changed the queue: plan again
    } while (pump_again_);
    pumping_ = false;
    arm_overdue_timer();
}

void Scheduler::on_process_state(ModelProcess& p, ProcessState from, ProcessState to) {
    Slot* s = slot(p.id());
    if (to == ProcessState::Failed &&
        (from == ProcessState::Starting || from == ProcessState::Stopping) && s && s->queued > 0) {
        reject_model_waiters(p.id(), {502, "model '" + p.id() + "' failed to start: " + p.failure(),
                                      "model_start_failed", 0});
    }
    if (s && (to == ProcessState::Stopped || to == ProcessState::Failed)) s->ttl->stop();
    if (s && to == ProcessState::Ready) arm_ttl(*s);
    if (s && (s->pending_config || s->removed)) maintenance_.start(0);
    if (on_transition) on_transition(p, from, to);
    if (on_change) on_change();
    pump();
}

void Scheduler::on_process_output(ModelProcess& p, std::string_view line) {
    if (hub_) hub_->upstream_line(p.id(), line);
    // Upstream output is not the daemon's own log: it shows on stderr only at debug level.
    log_upstream_line(p.id(), p.pid(), line);
}

void Scheduler::on_stale_cgroups(struct ev_loop*, ev_timer* w, int) {
    // What an earlier instance left, killed at start: its cgroups go once their processes
    // are gone (a few tries, then they are left to whoever looks).
    auto* self = static_cast<Scheduler*>(w->data);
    const size_t left = self->cgroups_.remove_stale_busy();
    if (left == 0) return;
    if (++self->stale_cgroup_tries_ < kStaleCgroupTries) {
        self->stale_cgroups_.start(kStaleCgroupRetry);
        return;
    }
    LOG_WARN("%zu cgroup(s) an earlier llama-swap left are still busy; not removed", left);
}

void Scheduler::on_process_wedged(ModelProcess& p) {
    // Its requests in flight end (their exchanges heard the verdict or see the process go);
    // the ones queued for it stay queued and start it afresh once it has stopped. A wedged
    // process rarely honours SIGTERM: a short grace.
    Slot* s = slot(p.id());
    if (s) s->ttl->stop();
    p.stop(std::min(p.config().unload_timeout_s, kWedgedStopGrace), "wedged");
}

void Scheduler::unload(const std::string& model_id, const char* reason) {
    Slot* s = slot(model_id);
    if (!s) return;
    reject_model_waiters(model_id,
                         {503, "model '" + model_id + "' was unloaded", "model_unloaded", 1});
    s->ttl->stop();
    s->process->stop(s->process->config().unload_timeout_s, reason);
}

void Scheduler::unload_all(const char* reason) {
    const bool shutdown = shutting_down_;
    while (!queue_.empty()) {
        auto it = queue_.begin();
        if (shutdown)
            reject(it, {503, "llama-swap is shutting down", "shutting_down", 5});
        else
            reject(it, {503, "model '" + it->model + "' was unloaded", "model_unloaded", 1});
    }
    for (auto& [id, s] : slots_) {
        s->ttl->stop();
        s->process->stop(s->process->config().unload_timeout_s, reason);
    }
    arm_queue_timer();
}

bool Scheduler::all_stopped() const {
    for (const auto& [id, s] : slots_)
        if (supervisor::is_active(s->process->state())) return false;
    return true;
}

std::vector<Scheduler::ModelView> Scheduler::models() const {
    std::vector<ModelView> out;
    for (const auto& [id, s] : slots_) out.push_back({s->process.get(), s->in_flight, s->queued});
    return out;
}

const ModelProcess* Scheduler::process(const std::string& id) const {
    auto it = slots_.find(id);
    return it == slots_.end() ? nullptr : it->second->process.get();
}

} // namespace ls::router
