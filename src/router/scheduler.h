// Admission, queueing and swapping. Requests wait in one queue, by priority and then arrival
// (routing.scheduler.settings.fifo); pump() grants what can run and starts at most the swaps
// the router allows (groups, or the matrix solver):
//  - a cold model is started once however many requests wait for it (single-flight);
//  - a model with requests in flight is never stopped to make room: it drains first, and new
//    requests for it queue behind the swap instead of starving it (collation: all waiting
//    requests of a model are served together once it is ready);
//  - a request whose model needs a swap lets the busy running models keep taking requests of
//    their own (collation: A A B B rather than A B A B) for at most maxWait, or until maxSkips
//    swaps for other models went ahead of it; then it is overdue: it goes first, and the
//    models in its way drain (the starvation bound the original lacks);
//  - every wait is bounded (queueTimeout → 503 + Retry-After); concurrencyLimit → 429.
#pragma once

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "logs/log_hub.h"
#include "proxy/resolver.h"
#include "readiness/notify_socket.h"
#include "router/swap_plan.h"
#include "supervisor/group_guard.h"
#include "supervisor/model_process.h"
#include "util/ev.h"

namespace ls::router {

struct Rejection {
    int status = 503;
    std::string message;
    std::string code;
    int retry_after_s = 0; // 0: no Retry-After header
};

class Scheduler;

// A request waiting for its model. Callbacks may come synchronously from request().
class Waiter {
public:
    virtual void on_granted(supervisor::ModelProcess& process) = 0;
    virtual void on_rejected(const Rejection& why) = 0;

protected:
    ~Waiter() = default;

private:
    friend class Scheduler;
    bool queued_ = false;
    std::list<struct QueueEntry>::iterator pos_;
};

struct QueueEntry {
    Waiter* waiter;
    std::string model;
    double enqueued;
    double deadline;
    int priority = 0; // routing.scheduler.settings.fifo.priority of the model
    int skips = 0;    // swaps for other models that went ahead of it (maxSkips)
};

class Scheduler : public supervisor::ProcessObserver {
public:
    Scheduler(struct ev_loop* loop, supervisor::GroupGuard* guard, logs::LogHub* hub = nullptr);
    ~Scheduler() override;
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Creates processes for the models of `cfg` (first call) or applies a reloaded config:
    // unchanged models keep running and serving; a model whose command line (cmd, cmdStop,
    // proxy, checkEndpoint, env) changed drains, stops and restarts with the new settings on
    // its next request; a removed model drains and stops; other settings apply at once.
    void apply_config(const config::Config& cfg);

    // Asks to run a request on `model_id` (a resolved id). Exactly one of on_granted /
    // on_rejected follows, unless cancel() comes first.
    void request(const std::string& model_id, Waiter* waiter);
    // The waiter is gone (client disconnected): forget it.
    void cancel(Waiter* waiter);
    // A granted request finished.
    void release(const std::string& model_id);

    // Stops one model now (grace unloadTimeout, then SIGKILL): an explicit unload is the
    // user's decision, so it does not wait for in-flight requests (a wedged upstream must be
    // killable). Requests queued for it are answered 503.
    void unload(const std::string& model_id, const char* reason);
    // The same for every model (API unload / shutdown).
    void unload_all(const char* reason);
    bool all_stopped() const;
    void set_shutting_down() { shutting_down_ = true; }

    struct ModelView {
        const supervisor::ModelProcess* process;
        int in_flight;
        int queued;
    };
    std::vector<ModelView> models() const;
    const supervisor::ModelProcess* process(const std::string& id) const;
    size_t queue_length() const { return queue_.size(); }

    // Called on every model state change (e.g. for sd_notify STATUS later).
    std::function<void()> on_change;
    // Each transition of a model, and each model stopped to make room (metrics).
    std::function<void(const supervisor::ModelProcess&, supervisor::ProcessState from,
                       supervisor::ProcessState to)>
        on_transition;
    std::function<void()> on_swap;

private:
    struct Slot {
        std::unique_ptr<supervisor::ModelProcess> process;
        int in_flight = 0;
        int queued = 0;
        // When the current drain began: requests queued before it still join the model
        // (collation, bounded: later arrivals wait behind the swap).
        double drain_since = 0;
        // Set by a reload: restart with this config once drained (or retire when removed).
        std::unique_ptr<config::ModelConfig> pending_config;
        bool removed = false;
        double last_used = 0;
        std::unique_ptr<TimerWatcher> ttl;
        Scheduler* owner = nullptr;
    };

    void on_process_state(supervisor::ModelProcess& p, supervisor::ProcessState from,
                          supervisor::ProcessState to) override;
    void on_process_output(supervisor::ModelProcess& p, std::string_view line) override;
    void on_process_wedged(supervisor::ModelProcess& p) override;
    void pump();
    void grant(std::list<QueueEntry>::iterator it, Slot& slot);
    void reject(std::list<QueueEntry>::iterator it, const Rejection& why);
    void reject_model_waiters(const std::string& model, const Rejection& why);
    void arm_overdue_timer();
    static void on_overdue(struct ev_loop*, ev_timer*, int);
    void arm_ttl(Slot& slot);
    void arm_queue_timer();
    static void on_ttl(struct ev_loop*, ev_timer*, int);
    static void on_queue_timeout(struct ev_loop*, ev_timer*, int);
    static void on_maintenance(struct ev_loop*, ev_timer*, int);
    static void on_stale_cgroups(struct ev_loop*, ev_timer*, int);
    static void on_notify(void* self, pid_t sender, std::string_view message);
    void apply_pending_configs();
    supervisor::ProcessSettings process_settings() const;
    Slot* slot(const std::string& id);

    struct ev_loop* loop_;
    supervisor::GroupGuard* guard_;
    logs::LogHub* hub_;
    supervisor::PortAllocator ports_;
    config::Config cfg_;
    RoutingPolicy policy_{cfg_}; // reads cfg_, which apply_config replaces in place
    std::map<std::string, std::unique_ptr<Slot>> slots_;
    std::list<QueueEntry> queue_;
    TimerWatcher queue_timer_;
    TimerWatcher overdue_timer_; // the next queued request to become overdue
    readiness::NotifySocket notify_;
    supervisor::CgroupManager cgroups_;
    supervisor::ScopeBackend scopes_;
    proxy::Resolver resolver_;
    bool scope_tried_ = false;
    // Replacing or removing a process object happens here, outside its own callbacks.
    TimerWatcher maintenance_;
    TimerWatcher stale_cgroups_; // removing what an earlier instance left (busy at first)
    int stale_cgroup_tries_ = 0;
    bool pumping_ = false;
    bool drains_recorded_ = false; // a pass set some slot's drain_since (ended once nothing waits)
    bool pump_again_ = false;
    bool shutting_down_ = false;
};

} // namespace ls::router
