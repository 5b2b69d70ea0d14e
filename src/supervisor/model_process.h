// One model's upstream process and its state machine (see process_state.h): spawn, readiness
// (HTTP probe of checkEndpoint, first at once then every few ms), output capture, stop with
// cmdStop or SIGTERM to the group, then SIGKILL after the grace period; reaped by the loop.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "config/config.h"
#include "logs/line_ring.h"
#include "proxy/resolver.h"
#include "proxy/upstream_address.h"
#include "proxy/upstream_pool.h"
#include "readiness/health_probe.h"
#include "supervisor/cgroup.h"
#include "supervisor/group_guard.h"
#include "supervisor/liveness_check.h"
#include "supervisor/oom_watch.h"
#include "supervisor/port_allocator.h"
#include "supervisor/process_state.h"
#include "supervisor/scope_backend.h"
#include "tls/tls.h"
#include "util/ev.h"
#include "util/unique_fd.h"

namespace ls::supervisor {

class ModelProcess;

class ProcessObserver {
public:
    virtual ~ProcessObserver() = default;
    virtual void on_process_state(ModelProcess& process, ProcessState from, ProcessState to) = 0;
    // One line of the upstream's stdout/stderr (without the newline).
    virtual void on_process_output(ModelProcess&, std::string_view) {}
    // A liveness check found the Ready upstream wedged (ModelProcess::wedged() says why).
    virtual void on_process_wedged(ModelProcess&) {}
};

struct ProcessSettings {
    double health_check_timeout_s = 120;
    double probe_interval_s = 0.015;        // between readiness probes
    double probe_timeout_s = 2;             // one probe's own limit
    double failed_start_grace_s = 5;        // stop grace after a failed readiness check
    std::string notify_socket;              // NOTIFY_SOCKET given to the upstream ("" = none)
    class CgroupManager* cgroups = nullptr; // fork backend fences; null: none
    class ScopeBackend* scopes = nullptr;   // null or disconnected: no scope backend
    proxy::Resolver* resolver = nullptr;    // host names in `proxy`; null: blocking lookup
    config::Backend backend = config::Backend::Auto; // the global default
};

class ModelProcess {
public:
    ModelProcess(struct ev_loop* loop, config::ModelConfig cfg, ProcessSettings settings,
                 int preferred_port, PortAllocator& ports, GroupGuard* guard,
                 ProcessObserver& observer);
    ~ModelProcess();
    ModelProcess(const ModelProcess&) = delete;
    ModelProcess& operator=(const ModelProcess&) = delete;

    const std::string& id() const { return cfg_.id; }
    const config::ModelConfig& config() const { return cfg_; }
    ProcessState state() const { return state_; }
    pid_t pid() const { return pid_; }
    int port() const { return port_; }
    const proxy::UpstreamAddress& upstream() const { return upstream_; }
    // Identity of this process's upstream for connection pooling (address and pid).
    const std::string& pool_key() const { return pool_key_; }
    const std::string& failure() const { return failure_; }
    double state_since() const { return state_since_; }
    double load_seconds() const { return ready_at_ > started_at_ ? ready_at_ - started_at_ : 0; }
    std::string recent_output(size_t lines) const { return output_.tail(lines); }
    const std::string& cmd_text() const { return cmd_text_; }
    // https:// upstreams: the TLS context requests and probes use (null for http://).
    const std::shared_ptr<tls::Context>& tls_context() const { return tls_ctx_; }
    // How many connections the proxy may hold to this upstream (`upstreamConnections`).
    proxy::ConnectionPolicy connection_policy() const;
    // llama-server's HTTP thread count from its start-up line ("http threads: N"), or 0.
    int http_threads() const { return http_threads_; }
    // The model's cgroup (fork backend) and what it uses now; empty/0 when unfenced.
    std::string cgroup_name() const;
    uint64_t memory_current() const;
    // The transient scope unit holding the model (scope backend), or "".
    const std::string& unit() const { return unit_; }
    // The cgroup directories holding the model's processes (its fork-backend cgroups or its
    // scope's memory cgroup); empty when unfenced.
    std::vector<std::string> cgroup_dirs() const;

    // Stopped/Failed → Starting. The observer hears the outcome (Ready or Failed).
    void start();
    // An sd_notify datagram from this upstream (or a process of its group).
    void on_notify(std::string_view message);
    // Starting/Ready → Stopping → Stopped. A shorter grace replaces a longer one.
    void stop(double grace_s, const char* reason);
    // A request whose upstream was silent for `timeouts.silence` asks whether the model still
    // works (see liveness_check.h); `waiter` hears the answer unless it forgets first.
    void check_liveness(LivenessWaiter* waiter);
    void forget_liveness(LivenessWaiter* waiter) { liveness_.forget(waiter); }
    // Why a liveness check found this run of the process wedged; empty while it is not.
    const std::string& wedged() const { return wedged_; }
    // Replaces settings that do not need a restart (ttl, limits, names).
    void update_config(const config::ModelConfig& cfg, const ProcessSettings& settings) {
        cfg_ = cfg;
        settings_ = settings; // a running start keeps its deadline; the next start uses these
    }

private:
    static void on_exec_status(struct ev_loop*, ev_io*, int);
    static void on_output(struct ev_loop*, ev_io*, int);
    static void on_child(struct ev_loop*, ev_child*, int);
    static void on_stop_child(struct ev_loop*, ev_child*, int);
    static void on_deadline(struct ev_loop*, ev_timer*, int);
    static void on_retry(struct ev_loop*, ev_timer*, int);
    static void on_kill(struct ev_loop*, ev_timer*, int);
    static void on_cgroup_cleanup(struct ev_loop*, ev_timer*, int);
    static void on_scope_wait(struct ev_loop*, ev_timer*, int);
    static void on_relaunch(struct ev_loop*, ev_timer*, int);
    void release_held_child();
    void launch(); // one attempt of a start: port, spawn, readiness
    // An exit while starting that another port may cure: true when a new attempt is due.
    bool retry_on_another_port(const std::string& how);
    static void on_probe_result(void* self, int status);
    static void on_liveness_verdict(void* self, bool alive, const std::string& why);

    void set_state(ProcessState to);
    void fail_start(std::string message); // while Starting: record and stop
    void begin_readiness();
    void drain_output();
    void on_output_line(const std::string& line);
    void handle_exit(int status);
    void cleanup_after_exit();
    void run_stop_command();
    void become_ready(const char* how);
    void on_scope_created(const std::string& error);
    void on_resolved(Result<proxy::ResolvedAddress> result);
    uint64_t scope_oom_kills() const;

    struct ev_loop* loop_;
    config::ModelConfig cfg_;
    ProcessSettings settings_;
    int preferred_port_;
    PortAllocator& ports_;
    GroupGuard* guard_;
    ProcessObserver& observer_;

    ProcessState state_ = ProcessState::Stopped;
    double state_since_ = 0;
    double started_at_ = 0;
    double ready_at_ = 0;
    pid_t pid_ = -1;
    pid_t stop_pid_ = -1;
    int port_ = 0;
    int exited_port_ = 0; // port_ of the process that just exited
    int http_threads_ = 0;
    int attempt_ = 1;
    bool bind_failure_seen_ = false; // its output said it could not bind
    static constexpr int kMaxBindAttempts = 3;
    static constexpr int kMaxEarlyExitAttempts = 2;
    static constexpr double kRelaunchDelay = 0.05;
    std::string cmd_text_;
    std::string check_path_;
    proxy::UpstreamAddress upstream_;
    std::shared_ptr<tls::Context> tls_ctx_;
    // The proxy host's name lookup, while it runs (the process starts meanwhile); readiness
    // that comes before its answer waits for it.
    std::unique_ptr<proxy::Resolver::Lookup> lookup_;
    bool readiness_waits_for_lookup_ = false;
    const char* ready_waits_for_lookup_ = nullptr; // how it became ready
    std::string pool_key_;
    std::string failure_;
    std::string pending_failure_; // set while Stopping after a failed start

    UniqueFd exec_status_;
    UniqueFd output_read_;
    UniqueFd output_write_; // kept for cmdStop's output
    std::string partial_line_;
    logs::LineRing output_;

    IoWatcher exec_io_;
    IoWatcher output_io_;
    ChildWatcher child_;
    ChildWatcher stop_child_;
    TimerWatcher deadline_;
    TimerWatcher retry_;
    TimerWatcher kill_timer_;
    readiness::HealthProbe probe_;
    LivenessCheck liveness_;
    std::string wedged_;
    double kill_at_ = 0;
    std::unique_ptr<struct ReadyPattern> ready_pattern_; // compiled readyPattern
    std::unique_ptr<ModelCgroup> cgroup_;
    std::vector<std::unique_ptr<ModelCgroup>> stale_cgroups_; // still busy: removal retried
    TimerWatcher cgroup_cleanup_;
    std::string unit_;                               // scope backend: our unit
    std::string unit_memory_dir_;                    // its memory cgroup directory
    std::unique_ptr<ScopeBackend::Call> scope_call_; // pending StartTransientUnit
    UniqueFd release_;                               // held child: write to let it exec
    TimerWatcher scope_wait_;                        // until the child is in the scope's cgroup
    TimerWatcher relaunch_;                          // the next attempt of a start
    int scope_wait_ticks_ = 0;
    OomWatch oom_watch_; // scope backend: OOM kills seen as they happen
    int cgroup_retries_ = 0;
};

} // namespace ls::supervisor
