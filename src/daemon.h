// The daemon: owns the loop's long-lived objects (server, scheduler, upstream pool), routes
// requests, and runs the shutdown sequence. main.cc only parses the command line.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/events.h"
#include "api/routes.h"
#include "config/config.h"
#include "http/connection.h"
#include "http/server.h"
#include "logs/log_hub.h"
#include "metrics/activity.h"
#include "metrics/captures.h"
#include "metrics/prometheus.h"
#include "perf/sampler.h"
#include "proxy/exchange_observer.h"
#include "proxy/proxy_exchange.h"
#include "proxy/upstream_pool.h"
#include "router/model_extract.h"
#include "router/scheduler.h"
#include "router/selector_pick.h"
#include "sd/listen.h"
#include "supervisor/group_guard.h"
#include "util/ev.h"
#include "util/reaper.h"

namespace ls {

class Daemon final : public http::Application, public proxy::ExchangeObserver {
public:
    Daemon(struct ev_loop* loop, config::Config cfg, supervisor::GroupGuard* guard);

    // Reload on SIGHUP, and when `watch` also when a source changes: the file through ev_stat
    // (inotify where the file system has it, else a stat every 2 s, which also works on bind
    // mounts and ConfigMaps), the directory by a scan every 2 s of its *.yaml / *.yml files
    // (names, sizes, modification times). With `strict`, a reloaded configuration with
    // warnings is refused like a broken one.
    void enable_reload(config::ConfigSources sources, bool watch, bool strict = false);
    // Reads every source again; a broken configuration is reported and the running one stays.
    void reload(const char* why);
    ~Daemon() override;

    // HTTPS: listeners added from now on speak TLS (a socket-activated one named "http" by
    // its FileDescriptorName= stays plain); SIGHUP reads the files again.
    void enable_tls(std::string cert_file, std::string key_file, std::shared_ptr<tls::Context> ctx);
    Result<void> add_listener(sd::ListenSocket sock);
    // Runs the loop until shutdown completes; returns the exit status.
    int run();

    bool on_request_head(http::Connection& conn, http::Request& req) override;
    // Every proxied request: live events, the activity log and the metrics.
    void on_exchange_start(const proxy::ExchangeInfo& info) override;
    void on_exchange_response(const proxy::ExchangeInfo& info, int status,
                              const http::HeaderList& headers) override;
    void on_exchange_progress(const proxy::ExchangeInfo& info, uint64_t bytes) override;
    void on_exchange_end(const proxy::ExchangeInfo& info,
                         const proxy::ExchangeResult& result) override;
    void on_request(http::Connection& conn, http::Request& req) override;
    bool dispatch_early(http::Connection& conn, http::Request& req) override;
    static void log_early_dispatch(const http::Request& req);

private:
    static void on_terminate(struct ev_loop*, ev_signal*, int);
    static void on_hangup(struct ev_loop*, ev_signal*, int);
    void reload_tls();
    static void on_shutdown_deadline(struct ev_loop*, ev_timer*, int);
    static void on_config_changed(struct ev_loop*, ev_stat*, int);
    static void on_config_settled(struct ev_loop*, ev_timer*, int);
    static void on_config_dir_poll(struct ev_loop*, ev_timer*, int);
    // What a scan of the config directory saw of one file.
    struct DirFile {
        std::string path;
        long long size = 0;
        long long mtime_ns = 0;
        unsigned long long inode = 0;
        bool operator==(const DirFile&) const = default;
    };
    std::vector<DirFile> scan_config_dir() const;
    // False while a source looks caught in the middle of a rewrite (an editor saving it).
    bool sources_settled();
    static void on_status_timer(struct ev_loop*, ev_timer*, int);
    static void on_watchdog(struct ev_loop*, ev_timer*, int);
    void start_watchdog();
    void begin_shutdown(const char* why);
    void maybe_finish_shutdown();
    void update_status();
    bool admit(http::Connection& conn, const http::Request& req, const api::RouteMatch& route);
    // match_route for the request's own path, matched once per request: its head, its end
    // and the proxy all ask.
    const api::RouteMatch& route_of(const http::Request& req);
    void serve_model_request(http::Connection& conn, http::Request& req);
    // The connection's body scanner, or null. on_request_head sets the only body observers
    // there are, scanners all: a static cast (a dynamic_cast per request cost 200 instructions).
    static router::BodyScanner* body_scanner(http::Connection& conn) {
        return static_cast<router::BodyScanner*>(conn.body_observer());
    }
    // The name a model request is routed by: the active profile's pin for the requested
    // name, then a selector's pick. False when it answered the request itself (a disabled
    // pin: 404; a selector with no target: 503). A spillover reservation lands in `hold`.
    bool route_virtual_name(http::Connection& conn, std::string& name, std::shared_ptr<void>& hold);
    const config::ProfileConfig* active_profile() const;
    // PUT /api/profiles/active; a change is published (profileChanged, then modelStatus).
    void set_active_profile(const std::string& name, const char* why);
    // Answers a model request that goes no further, and counts it in /metrics (model "" when
    // the request named none of ours).
    void refuse_model_request(http::Connection& conn, int status, const std::string& message,
                              const char* code, const std::string& model_id = "");
    // /comfyui/<path>: the comfyui_auto model's own paths; only /comfyui/ may start it.
    void serve_comfyui(http::Connection& conn, http::Request& req, std::string_view rest);
    // GET /props without ?model= (llama.cpp router-mode clients): the one running model's.
    void serve_props_of_running(http::Connection& conn, http::Request& req);
    // `rest`: the path after "/upstream/" (or "/logs/stream/"; empty for /logs/stream).
    void serve_upstream_passthrough(http::Connection& conn, http::Request& req,
                                    std::string_view rest);
    // Hands the request to a ProxyExchange for `model` (credentials stripped when ours).
    // (opt by reference: moved once, into the exchange; it carries a dozen strings)
    void start_proxy(http::Connection& conn, http::Request& req, const std::string& id,
                     proxy::ProxyOptions&& opt);
    // The body (or query) a model request goes upstream with: `model_field` instead of the
    // requested name, and the filters applied. False when it answered the request itself.
    bool rewrite_model_request(http::Connection& conn, http::Request& req,
                               const router::ModelRef& ref, router::BodyScanner* scanner,
                               const config::Filters& filters, const std::string& name,
                               const std::string& model_field, const std::string& id,
                               proxy::ProxyOptions& opt);
    // Each peer's connection target (its TLS context made once), rebuilt on reload; null
    // (with the reason in peer_errors_) when it cannot be used.
    void build_peers();
    void check_model_tls(); // logs, at load, an https:// model's TLS setup that cannot work
    void start_unload(http::Connection& conn, std::vector<std::string> models, bool json_reply);
    void check_pending_unloads();
    void serve_log_stream(http::Connection& conn, http::Request& req, std::string_view rest);

    class UnloadExchange;
    friend class UnloadExchange;
    class Preloader;
    std::unique_ptr<Preloader> preloader_;
    void start_preload();
    void apply_log_settings();

    struct ev_loop* loop_;
    config::Config cfg_;
    supervisor::GroupGuard* guard_;
    Reaper reaper_;
    logs::LogHub log_hub_;
    api::EventBus events_;
    metrics::ActivityLog activity_;
    metrics::CaptureStore captures_; // `captureBuffer`, keyed by activity id
    metrics::MetricsRegistry metrics_;
    router::Scheduler scheduler_;
    proxy::UpstreamPool pool_;
    // Before the server: its exchanges hold lookups and targets of these.
    proxy::Resolver peer_resolver_;
    std::map<std::string, std::shared_ptr<const proxy::PeerTarget>> peers_;
    std::map<std::string, std::string> peer_errors_;
    http::Server server_;
    long started_at_;
    // The host and GPU sampler (`performance`): /api/performance, /api/hardware, /running's
    // gpuMemoryBytes; perf_.latest() is the newest sample (perf/sample.h).
    perf::Sampler perf_;

    std::vector<UnloadExchange*> pending_unloads_;
    std::string active_profile_; // "" for none; defaultProfile at start and after a reload
    // Spillover selectors' reservations by selector id (a reload starts them afresh).
    std::map<std::string, std::shared_ptr<router::SpilloverCounters>> spillover_;

    SignalWatcher sigterm_;
    SignalWatcher sigint_;
    SignalWatcher sighup_;
    TimerWatcher shutdown_deadline_;
    config::ConfigSources sources_;
    std::string tls_cert_, tls_key_;
    // Listeners other machines can reach: without apiKeys, every start says so.
    std::vector<std::string> exposed_listeners_;
    // The warnings a first run needs: no models yet, or an open port without apiKeys.
    void advise_first_run() const;
    std::shared_ptr<tls::Context> tls_; // the listeners' (null: plain HTTP)
    bool strict_ = false;
    ev_stat config_stat_{};
    bool watching_ = false;
    ev_timer config_dir_poll_{};
    bool watching_dir_ = false;
    std::vector<DirFile> dir_scan_;   // the last scan of the poll
    std::vector<DirFile> dir_loaded_; // the scan when the configuration was last read
    // The source a reload must not take: the --config file with no YAML in it, or a file
    // of the directory that had content at the last load and has none now ("" when none).
    std::string emptied_source() const;
    TimerWatcher config_settle_; // debounce: editors write files in several steps
    TimerWatcher status_timer_;
    TimerWatcher watchdog_;
    std::string last_status_;
    struct RouteMemo {
        uint64_t request_id = 0;
        const char* path = nullptr;
        size_t path_size = 0;
        api::RouteMatch match;
    } route_memo_;
    bool shutting_down_ = false;
    bool server_drained_ = false;
    bool forced_ = false;
    int exit_status_ = 0;
};

} // namespace ls
