#include "daemon.h"

#include <sys/stat.h>

#include "api/model_api.h"
#include "api/profiles.h"
#include "sd/listen.h"
#include "util/log.h"
#include "util/log_time.h"
#include "util/text_file.h"

namespace ls {

// hooks.on_startup.preload: loads the listed models one after the other, as if a request
// had asked for each (so group rules apply: without coexisting groups they swap each other).
class Daemon::Preloader final : public router::Waiter {
public:
    Preloader(router::Scheduler& s, std::vector<std::string> models)
        : scheduler_(s), models_(std::move(models)) {}
    ~Preloader() { scheduler_.cancel(this); }
    void next() {
        if (index_ >= models_.size()) return;
        current_ = models_[index_++];
        LOG_INFO("preloading model %s", current_.c_str());
        scheduler_.request(current_, this);
    }
    void on_granted(supervisor::ModelProcess& p) override {
        LOG_INFO("preloaded model %s in %.2f s", p.id().c_str(), p.load_seconds());
        scheduler_.release(current_);
        next();
    }
    void on_rejected(const router::Rejection& why) override {
        LOG_WARN("preloading model %s failed: %s", current_.c_str(), why.message.c_str());
        next();
    }

private:
    router::Scheduler& scheduler_;
    std::vector<std::string> models_;
    size_t index_ = 0;
    std::string current_;
};

Daemon::Daemon(struct ev_loop* loop, config::Config cfg, supervisor::GroupGuard* guard)
    : loop_(loop), cfg_(std::move(cfg)), guard_(guard), reaper_(loop), events_(loop, log_hub_),
      scheduler_(loop, guard, &log_hub_), pool_(loop), peer_resolver_(loop),
      server_(loop, cfg_.server, *this, reaper_), started_at_(time(nullptr)), perf_(loop),
      sigterm_(loop, SIGTERM, &on_terminate, this), sigint_(loop, SIGINT, &on_terminate, this),
      sighup_(loop, SIGHUP, &on_hangup, this),
      shutdown_deadline_(loop, &on_shutdown_deadline, this),
      config_settle_(loop, &on_config_settled, this), status_timer_(loop, &on_status_timer, this),
      watchdog_(loop, &on_watchdog, this) {
    // Everything the daemon logs also lands in the "proxy" log ring and its live streams.
    set_log_sink([](LogLevel, std::string_view line,
                    void* hub) { static_cast<logs::LogHub*>(hub)->proxy_line(line); },
                 &log_hub_);
    apply_log_settings();
    scheduler_.apply_config(cfg_);
    scheduler_.on_transition = [this](const supervisor::ModelProcess& p, supervisor::ProcessState,
                                      supervisor::ProcessState to) {
        if (to == supervisor::ProcessState::Starting) metrics_.on_model_start(p.id());
        if (to == supervisor::ProcessState::Ready)
            metrics_.on_model_ready(p.id(), p.load_seconds());
        // Its idle keep-alive connections (and their pool entry) go with the upstream.
        if (to == supervisor::ProcessState::Stopped || to == supervisor::ProcessState::Failed)
            pool_.drop(p.pool_key());
    };
    scheduler_.on_swap = [this] { metrics_.on_swap(); };
    activity_.set_capacity(cfg_.metrics_max_in_memory);
    captures_.set_capacity(static_cast<size_t>(cfg_.capture_buffer_mb * 1024 * 1024));
    perf_.configure(!cfg_.performance_disabled, cfg_.performance_every_s);
    scheduler_.on_change = [this] {
        update_status();
        events_.set_model_status(api::model_status_json(cfg_, scheduler_));
        check_pending_unloads();
        if (shutting_down_) maybe_finish_shutdown();
    };
    events_.set_ui_config(api::ui_config_json(cfg_));
    build_peers();
    check_model_tls();
    active_profile_ = cfg_.default_profile;
    if (!active_profile_.empty())
        LOG_INFO("active profile: \"%s\" (defaultProfile)", active_profile_.c_str());
    events_.set_profile(api::active_profile_json(active_profile_),
                        api::model_status_json(cfg_, scheduler_));
}

Daemon::~Daemon() {
    set_log_sink(nullptr, nullptr);
    preloader_.reset();
    if (watching_) ev_stat_stop(loop_, &config_stat_);
    if (watching_dir_) {
        ev_ref(loop_);
        ev_timer_stop(loop_, &config_dir_poll_);
    }
    server_.close_all();
    reaper_.run_now();
}

void Daemon::enable_tls(std::string cert_file, std::string key_file,
                        std::shared_ptr<tls::Context> ctx) {
    tls_cert_ = std::move(cert_file);
    tls_key_ = std::move(key_file);
    tls_ = std::move(ctx);
}

Result<void> Daemon::add_listener(sd::ListenSocket sock) {
    const bool tls = tls_ && sock.name != "http";
    LOG_INFO("listening on %s%s", sock.name.c_str(), tls ? " (TLS)" : "");
    if (sd::reachable_from_other_hosts(sock.fd.get())) exposed_listeners_.push_back(sock.name);
    return server_.add_listener(std::move(sock.fd), sock.name, tls ? tls_ : nullptr);
}

void Daemon::reload_tls() {
    if (!tls_) return;
    auto ctx = tls::Context::server(tls_cert_, tls_key_);
    if (!ctx) {
        LOG_ERROR("TLS certificate not reloaded, keeping the running one: %s",
                  ctx.error().message.c_str());
        return;
    }
    tls_ = std::move(ctx.value());
    server_.set_tls_context(tls_);
    LOG_INFO("TLS certificate reloaded from %s", tls_cert_.c_str());
}

void Daemon::apply_log_settings() {
    LogLevel level;
    if (parse_log_level(cfg_.log_level, level)) set_log_level(level);
    LogTimeFormat time_format;
    if (parse_log_time_format(cfg_.log_time_format, time_format)) set_log_time_format(time_format);
    const std::string& out = cfg_.log_to_stdout;
    set_stderr_outputs(out == "proxy" || out == "both", out == "upstream" || out == "both");
}

void Daemon::start_preload() {
    if (cfg_.preload.empty()) return;
    preloader_.reset(); // a reload restarts the list; models already running are granted at once
    preloader_ = std::make_unique<Preloader>(scheduler_, cfg_.preload);
    preloader_->next();
}

int Daemon::run() {
    events_.set_model_status(api::model_status_json(cfg_, scheduler_));
    sd::notify_ready();
    update_status();
    start_watchdog();
    start_preload();
    advise_first_run();
    ev_run(loop_, 0);
    return exit_status_;
}

// ------------------------------------------------------------------ signals and shutdown

void Daemon::on_terminate(struct ev_loop*, ev_signal* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    if (self->shutting_down_) {
        // A second signal: stop waiting for clients.
        LOG_WARN("second termination signal, closing all connections");
        self->forced_ = true;
        self->server_.close_all();
        self->scheduler_.unload_all("forced shutdown");
        return;
    }
    self->begin_shutdown(w->signum == SIGINT ? "SIGINT" : "SIGTERM");
}

void Daemon::on_hangup(struct ev_loop*, ev_signal* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    self->reload_tls(); // certificates renewed on disk (certbot, ...): new connections use them
    self->reload("SIGHUP");
}

void Daemon::enable_reload(config::ConfigSources sources, bool watch, bool strict) {
    sources_ = std::move(sources);
    strict_ = strict;
    if (!sources_.dir.empty()) dir_loaded_ = scan_config_dir();
    if (!watch) return;
    if (!sources_.file.empty()) {
        ev_stat_init(&config_stat_, &on_config_changed, sources_.file.c_str(), 2.0);
        config_stat_.data = this;
        ev_stat_start(loop_, &config_stat_);
        ev_unref(loop_); // watching alone must not keep the loop alive
        watching_ = true;
    }
    if (!sources_.dir.empty()) {
        dir_scan_ = scan_config_dir();
        ev_timer_init(&config_dir_poll_, &on_config_dir_poll, 2.0, 2.0);
        config_dir_poll_.data = this;
        ev_timer_start(loop_, &config_dir_poll_);
        ev_unref(loop_);
        watching_dir_ = true;
    }
}

void Daemon::on_config_changed(struct ev_loop*, ev_stat* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    // Reload once the sources have been quiet for a moment: a half-written or truncated file
    // (size 0, or gone while an editor replaces it) must not be taken as the new config.
    self->config_settle_.start(0.5);
}

std::vector<Daemon::DirFile> Daemon::scan_config_dir() const {
    std::vector<DirFile> out;
    auto files = config::list_config_dir(sources_.dir);
    if (!files) return out; // gone or unreadable: like an empty directory
    for (auto& path : files.value()) {
        struct stat st;
        if (stat(path.c_str(), &st) != 0) continue;
        out.push_back(DirFile{std::move(path), static_cast<long long>(st.st_size),
                              st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                              static_cast<unsigned long long>(st.st_ino)});
    }
    return out;
}

void Daemon::on_config_dir_poll(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    auto scan = self->scan_config_dir();
    if (scan == self->dir_scan_) return;
    self->dir_scan_ = std::move(scan);
    // Like the original, a directory left without any file does not reload.
    if (!self->dir_scan_.empty()) self->config_settle_.start(0.5);
}

/* Whether the sources look complete: the file exists and is not empty (an editor truncates
 * it, or replaces it in several steps), the directory has a file unless the file is the only
 * source, and no file of the directory that had content when the configuration was last read
 * is empty now. The write that completes a rewrite changes them again, which starts another
 * settle; a file really left empty is taken as such at the next change. */
bool Daemon::sources_settled() {
    struct stat st;
    if (!sources_.file.empty() && (stat(sources_.file.c_str(), &st) != 0 || st.st_size == 0))
        return false;
    if (sources_.dir.empty()) return true;
    auto scan = scan_config_dir();
    if (scan.empty() && sources_.file.empty()) return false;
    for (const DirFile& f : scan) {
        if (f.size != 0) continue;
        for (const DirFile& before : dir_loaded_) {
            if (before.path == f.path && before.size != 0) {
                LOG_INFO("%s is empty, not reloading until it changes again", f.path.c_str());
                dir_loaded_ = std::move(scan);
                return false;
            }
        }
    }
    return true;
}

void Daemon::on_config_settled(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    if (!self->sources_settled()) return;
    self->reload("configuration changed");
}

void Daemon::advise_first_run() const {
    const std::string file = sources_.file.empty() ? "the configuration" : sources_.file;
    if (cfg_.models.empty() && cfg_.peers.empty())
        LOG_WARN("no models are configured: every model request gets 404. Add them to %s "
                 "(every key: man llama-swap.yaml; an example: "
                 "/usr/share/doc/llama-swap/examples/config.example.yaml), then run "
                 "systemctl reload llama-swap",
                 file.c_str());
    if (cfg_.api_keys.empty() && !exposed_listeners_.empty())
        LOG_WARN("no apiKeys: anyone who can reach %s can use every model and read the logs. "
                 "Set apiKeys in %s, firewall the port, or listen on 127.0.0.1 only",
                 exposed_listeners_.front().c_str(), file.c_str());
}

namespace {
// True when YAML text holds nothing but blanks, comments and document markers.
bool yaml_is_empty(const std::string& text) {
    size_t i = 0;
    while (i < text.size()) {
        size_t end = text.find('\n', i);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + i, end - i);
        while (!line.empty() && isspace(static_cast<unsigned char>(line.front())))
            line.remove_prefix(1);
        while (!line.empty() && isspace(static_cast<unsigned char>(line.back())))
            line.remove_suffix(1);
        if (!line.empty() && line.front() != '#' && line != "---" && line != "...") return false;
        i = end + 1;
    }
    return true;
}
} // namespace

std::string Daemon::emptied_source() const {
    if (!sources_.file.empty()) {
        auto text = read_text_file(sources_.file, 16 << 20);
        if (yaml_is_empty(text)) return sources_.file;
    }
    // A file of the directory that had content at the last load and is empty now.
    for (const DirFile& f : scan_config_dir()) {
        for (const DirFile& before : dir_loaded_)
            if (before.path == f.path && before.size != 0 &&
                yaml_is_empty(read_text_file(f.path, 16 << 20)))
                return f.path;
    }
    return {};
}

void Daemon::reload(const char* why) {
    if (shutting_down_ || (sources_.file.empty() && sources_.dir.empty())) return;
    sd::notify_reloading();
    const std::string what = sources_.dir.empty()    ? sources_.file
                             : sources_.file.empty() ? sources_.dir
                                                     : sources_.file + " + " + sources_.dir;
    LOG_INFO("%s: reloading %s", why, what.c_str());
    if (const std::string empty = emptied_source(); !empty.empty()) {
        // An editor truncates and rewrites in place: what it has not written yet must not
        // unload every model. A configuration without models says `models: {}`.
        LOG_ERROR("reload failed, keeping the running configuration: %s is empty (being "
                  "rewritten?); a configuration without models says \"models: {}\"",
                  empty.c_str());
        sd::notify_ready();
        return;
    }
    if (!sources_.dir.empty()) dir_loaded_ = scan_config_dir();
    const size_t models_before = cfg_.models.size();
    auto cfg = config::load_config_sources(sources_);
    if (!cfg) {
        LOG_ERROR("reload failed, keeping the running configuration: %s",
                  cfg.error().message.c_str());
        sd::notify_ready();
        return;
    }
    for (const auto& w : cfg->warnings) LOG_WARN("%s", w.render().c_str());
    if (strict_ && !cfg->warnings.empty()) {
        LOG_ERROR("reload failed, keeping the running configuration: %zu warning(s), which "
                  "--strict makes errors",
                  cfg->warnings.size());
        sd::notify_ready();
        return;
    }
    cfg_ = std::move(cfg.value());
    spillover_.clear(); // the selectors' reservations start afresh, as the original's
    events_.set_ui_config(api::ui_config_json(cfg_));
    build_peers();
    check_model_tls();
    // The profile goes back to defaultProfile (the original's: none).
    set_active_profile(cfg_.default_profile, "configuration reloaded");
    apply_log_settings();
    activity_.set_capacity(cfg_.metrics_max_in_memory);
    captures_.set_capacity(static_cast<size_t>(cfg_.capture_buffer_mb * 1024 * 1024));
    perf_.configure(!cfg_.performance_disabled, cfg_.performance_every_s);
    server_.set_limits(cfg_.server);
    scheduler_.apply_config(cfg_);
    LOG_INFO("configuration reloaded (%zu models)", cfg_.models.size());
    if (models_before > 0 && cfg_.models.empty())
        LOG_WARN("the new configuration has no models: the %zu it had are stopped once their "
                 "requests are done",
                 models_before);
    advise_first_run();
    start_preload();
    events_.set_model_status(api::model_status_json(cfg_, scheduler_));
    sd::notify_ready();
    update_status();
}

void Daemon::check_model_tls() {
    // An https:// model makes its TLS context when it starts; one that cannot be made (no
    // libssl.so.3, an unreadable tls.caFile) is said now, at load, not first at a request.
    for (const auto& [id, m] : cfg_.models) {
        if (!m.proxy.starts_with("https://")) continue;
        if (auto ctx = tls::Context::client(m.tls); !ctx)
            LOG_ERROR("model %s: %s; starting it will fail (502 model_start_failed)", id.c_str(),
                      ctx.error().message.c_str());
    }
}

void Daemon::build_peers() {
    peers_.clear();
    peer_errors_.clear();
    for (const auto& [id, p] : cfg_.peers) {
        auto target = std::make_shared<proxy::PeerTarget>();
        target->id = id;
        target->timeouts = p.timeouts;
        target->api_key = p.api_key;
        auto addr = proxy::parse_upstream_url(p.proxy, false); // names: looked up per request
        std::string error = addr ? "" : addr.error().message;
        if (addr) {
            target->address = std::move(addr.value());
            if (target->address.tls) {
                auto ctx = tls::Context::client(p.tls);
                if (ctx)
                    target->tls = std::move(ctx.value());
                else
                    error = ctx.error().message;
            }
        }
        if (!error.empty()) {
            LOG_ERROR("peer %s: %s; its models answer 502", id.c_str(), error.c_str());
            peer_errors_[id] = error;
            peers_[id] = nullptr;
            continue;
        }
        peers_[id] = std::move(target);
    }
}

void Daemon::set_active_profile(const std::string& name, const char* why) {
    if (name == active_profile_) return;
    active_profile_ = name;
    LOG_INFO("active profile changed to \"%s\" (%s)", name.c_str(), why);
    events_.set_profile(api::active_profile_json(active_profile_),
                        api::model_status_json(cfg_, scheduler_));
}

void Daemon::begin_shutdown(const char* why) {
    shutting_down_ = true;
    LOG_INFO("%s: shutting down (waiting up to %.0f s for in-flight requests)", why,
             cfg_.server.shutdown_timeout_s);
    sd::notify_stopping();
    scheduler_.set_shutting_down();
    shutdown_deadline_.start(cfg_.server.shutdown_timeout_s);
    server_.begin_shutdown([this] {
        server_drained_ = true;
        scheduler_.unload_all("shutdown");
        maybe_finish_shutdown();
    });
}

void Daemon::on_shutdown_deadline(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    if (!self->forced_) {
        LOG_WARN("shutdown timeout: closing %zu remaining connections",
                 self->server_.connection_count());
        self->forced_ = true;
        self->server_.close_all();
        self->server_drained_ = true;
        self->scheduler_.unload_all("shutdown timeout");
        // The upstreams get their unload grace, then SIGKILL; never wait forever.
        self->shutdown_deadline_.start(15);
        self->maybe_finish_shutdown();
        return;
    }
    LOG_ERROR("upstreams did not stop in time, exiting anyway");
    self->exit_status_ = 1;
    ev_break(self->loop_, EVBREAK_ALL);
}

void Daemon::maybe_finish_shutdown() {
    if (!server_drained_ || !scheduler_.all_stopped()) return;
    LOG_INFO("all upstreams stopped, exiting");
    ev_break(loop_, EVBREAK_ALL);
}

void Daemon::update_status() {
    // STATUS= as `systemctl status` shows it: "2 running: a, b; loading qwen (3.1 s)".
    std::string running;
    int n = 0;
    std::string loading;
    const double now = ev_now(loop_);
    for (const auto& v : scheduler_.models()) {
        auto st = v.process->state();
        if (st == supervisor::ProcessState::Ready) {
            running += (n++ ? ", " : "") + v.process->id();
        } else if (st == supervisor::ProcessState::Starting) {
            char buf[64];
            snprintf(buf, sizeof buf, " (%.1f s)", now - v.process->state_since());
            loading += (loading.empty() ? "" : ", ") + v.process->id() + buf;
        }
    }
    std::string status = std::to_string(n) + " running" + (n ? ": " + running : "");
    if (!loading.empty()) status += "; loading " + loading;
    if (status != last_status_) {
        last_status_ = status;
        sd::notify_status(status);
    }
    // While something loads, refresh the elapsed time once a second.
    if (loading.empty())
        status_timer_.stop();
    else if (!status_timer_.active())
        status_timer_.start(1, 1);
}

void Daemon::on_status_timer(struct ev_loop*, ev_timer* w, int) {
    static_cast<Daemon*>(w->data)->update_status();
}

void Daemon::on_watchdog(struct ev_loop*, ev_timer*, int) {
    // Fired by the loop itself: a loop stuck in a callback stops the pings, and systemd acts.
    sd::notify_watchdog();
}

void Daemon::start_watchdog() {
    const uint64_t usec = sd::watchdog_usec();
    if (usec == 0) return;
    const double interval = static_cast<double>(usec) / 2e6;
    LOG_INFO("watchdog enabled: pinging every %.1f s", interval);
    watchdog_.start(0, interval);
}

} // namespace ls