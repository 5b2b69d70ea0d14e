#include "daemon.h"

#include <algorithm>
#include <ctime>
#include <sys/stat.h>

#include "api/auth.h"
#include "api/log_stream.h"
#include "api/model_api.h"
#include "api/model_load.h"
#include "api/routes.h"
#include "api/ui_assets.h"
#include "http/error_body.h"
#include "proxy/proxy_exchange.h"
#include "router/json_filters.h"
#include "router/model_extract.h"
#include "util/log.h"
#include "util/text_file.h"

namespace ls {

namespace {
std::unique_ptr<router::BodyScanner> scanner_for(const http::Request& req, std::string& error) {
    const std::string* ct = req.headers.find("content-type");
    if (ct && ct->find("multipart/") != std::string::npos) {
        std::string boundary = router::multipart_boundary(*ct);
        if (boundary.empty()) {
            error = "multipart request without a valid boundary parameter";
            return nullptr;
        }
        return std::make_unique<router::MultipartModelScanner>(boundary);
    }
    return std::make_unique<router::JsonModelScanner>();
}

// The longest model id or alias that prefixes `rest` at a path-segment boundary.
const config::ModelConfig* match_model_prefix(const config::Config& cfg, std::string_view rest,
                                              size_t& matched_len) {
    const config::ModelConfig* best = nullptr;
    matched_len = 0;
    auto consider = [&](const std::string& name, const config::ModelConfig* m) {
        if (name.size() <= matched_len || rest.compare(0, name.size(), name) != 0) return;
        if (rest.size() > name.size() && rest[name.size()] != '/') return;
        best = m;
        matched_len = name.size();
    };
    for (const auto& [id, m] : cfg.models) consider(id, &m);
    for (const auto& [alias, id] : cfg.aliases) consider(alias, cfg.resolve(id));
    return best;
}

// The original's default upstream.ignorePaths: static assets never trigger a model load.
bool is_ignored_upstream_path(std::string_view path) {
    static constexpr std::string_view kExt[] = {".js",  ".json", ".css", ".png", ".gif",
                                                ".jpg", ".jpeg", ".ico", ".txt"};
    for (auto ext : kExt)
        if (path.size() >= ext.size() &&
            path.compare(path.size() - ext.size(), ext.size(), ext) == 0)
            return true;
    return false;
}
} // namespace

// An unload request: answered once every named model has stopped.
class Daemon::UnloadExchange final : public http::Exchange {
public:
    UnloadExchange(Daemon& d, http::Connection& c, std::vector<std::string> models, bool json)
        : daemon_(d), conn_(&c), models_(std::move(models)), json_(json) {}
    ~UnloadExchange() override { detach(); }
    void on_client_gone() override {
        conn_ = nullptr;
        detach();
    }
    // True when answered (and no longer pending).
    bool try_finish() {
        for (const auto& id : models_) {
            const auto* p = daemon_.scheduler_.process(id);
            if (p && supervisor::is_active(p->state())) return false;
        }
        if (conn_) {
            http::HeaderList h;
            h.add("Content-Type", json_ ? "application/json" : "text/plain; charset=utf-8");
            http::Connection* c = conn_;
            conn_ = nullptr;
            c->respond(200, h, json_ ? "{\"msg\":\"ok\"}\n" : "OK");
        }
        return true;
    }

private:
    void detach() {
        auto& v = daemon_.pending_unloads_;
        for (auto it = v.begin(); it != v.end(); ++it)
            if (*it == this) {
                v.erase(it);
                break;
            }
    }
    Daemon& daemon_;
    http::Connection* conn_;
    std::vector<std::string> models_;
    bool json_;
};

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
      scheduler_(loop, guard, &log_hub_), pool_(loop), server_(loop, cfg_.server, *this, reaper_),
      started_at_(time(nullptr)), sigterm_(loop, SIGTERM, &on_terminate, this),
      sigint_(loop, SIGINT, &on_terminate, this), sighup_(loop, SIGHUP, &on_hangup, this),
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
    scheduler_.on_change = [this] {
        update_status();
        events_.set_model_status(api::model_status_json(cfg_, scheduler_));
        check_pending_unloads();
        if (shutting_down_) maybe_finish_shutdown();
    };
}

Daemon::~Daemon() {
    set_log_sink(nullptr, nullptr);
    preloader_.reset();
    if (watching_) ev_stat_stop(loop_, &config_stat_);
    server_.close_all();
    reaper_.run_now();
}

Result<void> Daemon::add_listener(sd::ListenSocket sock) {
    LOG_INFO("listening on %s", sock.name.c_str());
    return server_.add_listener(std::move(sock.fd), sock.name);
}

void Daemon::apply_log_settings() {
    LogLevel level;
    if (parse_log_level(cfg_.log_level, level)) set_log_level(level);
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
    ev_run(loop_, 0);
    return exit_status_;
}

// ------------------------------------------------------------------ requests

// Answers what is decided by the head alone: CORS preflight, authentication, unknown route,
// wrong method. Returns false when it responded.
bool Daemon::admit(http::Connection& conn, const http::Request& req, const api::RouteMatch& route) {
    if (req.method_name == "OPTIONS") {
        // CORS preflight, as the original: allow any origin, echo the requested headers.
        http::HeaderList h;
        h.add("Access-Control-Allow-Origin", "*");
        h.add("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
        std::string allowed = "Content-Type, Authorization, X-API-Key";
        if (const std::string* want = req.headers.find("access-control-request-headers")) {
            std::string clean;
            for (char c : *want)
                if (isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ',' ||
                    c == ' ')
                    clean += c;
            if (!clean.empty()) allowed = clean;
        }
        h.add("Access-Control-Allow-Headers", allowed);
        h.add("Access-Control-Max-Age", "86400");
        conn.respond(204, h, "");
        return false;
    }
    if (route.kind == api::RouteKind::Logs && route.method_allowed) {
        const std::string* accept = req.headers.find("accept");
        if (accept && accept->find("text/html") != std::string::npos) {
            // A browser opening /logs gets the UI's log page, as in the original (before the
            // key check: the UI asks for the key itself, and the redirect reveals nothing).
            http::HeaderList h;
            h.add("Location", "ui/#/logs");
            conn.respond(302, h, "");
            return false;
        }
    }
    if (!api::route_is_public(req.path) && !api::request_authorized(req.headers, cfg_.api_keys)) {
        http::HeaderList h;
        h.add("WWW-Authenticate", "Basic realm=\"llama-swap\"");
        conn.respond_error(401,
                           "a valid API key is required (Authorization: Bearer KEY, or x-api-key)",
                           "unauthorized", &h);
        return false;
    }
    if (route.kind == api::RouteKind::NotFound) {
        conn.respond_error(404, "no route for " + req.method_name + " " + req.path, "not_found");
        return false;
    }
    if (!route.method_allowed) {
        http::HeaderList h;
        h.add("Allow", route.allow);
        conn.respond_error(405, "method " + req.method_name + " is not allowed for " + req.path,
                           "method_not_allowed", &h);
        return false;
    }
    return true;
}

bool Daemon::on_request_head(http::Connection& conn, http::Request& req) {
    // Requests without a body are answered in on_request, which keeps the connection open;
    // with a body, refusing now saves reading (and spooling) it.
    if (!req.has_body) return true;
    const api::RouteMatch route = api::match_route(req.method_name, req.path);
    if (!admit(conn, req, route)) return false;
    if (route.kind == api::RouteKind::ModelJson) {
        std::string error;
        auto scanner = scanner_for(req, error);
        if (!scanner) {
            refuse_model_request(conn, 400, error, "bad_request");
            return false;
        }
        // The scanner sees the body as it arrives, so a huge file part never needs a second pass.
        conn.set_body_observer(std::move(scanner));
    }
    return true;
}

void Daemon::on_request(http::Connection& conn, http::Request& req) {
    const api::RouteMatch route = api::match_route(req.method_name, req.path);
    if (!req.has_body && !admit(conn, req, route)) return;
    // Built only by the routes that answer JSON here: the proxied path allocates nothing.
    auto respond_json = [&conn](std::string body) {
        http::HeaderList h;
        h.add("Content-Type", "application/json");
        conn.respond(200, h, body);
    };
    switch (route.kind) {
    case api::RouteKind::Health: {
        http::HeaderList text;
        text.add("Content-Type", "text/plain; charset=utf-8");
        conn.respond(200, text, "OK");
        return;
    }
    case api::RouteKind::ListModels:
        respond_json(api::models_json(cfg_, scheduler_, started_at_));
        return;
    case api::RouteKind::Running:
        respond_json(api::running_json(scheduler_, pool_));
        return;
    case api::RouteKind::ModelJson:
        serve_model_request(conn, req);
        return;
    case api::RouteKind::Upstream:
        serve_upstream_passthrough(conn, req, route.rest);
        return;
    case api::RouteKind::Logs: {
        http::HeaderList text;
        text.add("Content-Type", "text/plain; charset=utf-8");
        conn.respond(200, text, log_hub_.combined_history());
        return;
    }
    case api::RouteKind::LogStream:
        serve_log_stream(conn, req, route.rest);
        return;
    case api::RouteKind::Events:
        events_.open_stream(conn);
        return;
    case api::RouteKind::Metrics: {
        http::HeaderList h;
        h.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        conn.respond(200, h, metrics_.render(scheduler_));
        return;
    }
    case api::RouteKind::Activity:
        respond_json(activity_.json(activity_query(req.query)));
        return;
    case api::RouteKind::Unload: {
        std::vector<std::string> all;
        for (const auto& [id, m] : cfg_.models) all.push_back(id);
        start_unload(conn, std::move(all), req.path != "/unload");
        return;
    }
    case api::RouteKind::UnloadModel: {
        const std::string name = http::percent_decode(route.rest);
        const config::ModelConfig* m = cfg_.resolve(name);
        if (!m) {
            conn.respond_error(404, "model '" + name + "' not found", "model_not_found");
            return;
        }
        start_unload(conn, {m->id}, false);
        return;
    }
    case api::RouteKind::LoadModel: {
        const std::string name = http::percent_decode(route.rest);
        const config::ModelConfig* m = cfg_.resolve(name);
        if (!m) {
            conn.respond_error(404, "model '" + name + "' not found", "model_not_found");
            return;
        }
        api::LoadExchange::start(scheduler_, conn, m->id);
        return;
    }
    case api::RouteKind::Root: {
        http::HeaderList h;
        h.add("Location", "ui/");
        conn.respond(302, h, "");
        return;
    }
    case api::RouteKind::Ui:
        api::serve_ui(conn, req);
        return;
    case api::RouteKind::NotFound:
        break;
    }
}

metrics::ActivityLog::Query Daemon::activity_query(std::string_view query) const {
    metrics::ActivityLog::Query q;
    std::string v;
    if (http::query_param(query, "limit", v)) q.limit = atoi(v.c_str());
    if (http::query_param(query, "page", v)) q.page = atoi(v.c_str());
    // ?model= may repeat; an alias names its model
    for (std::string_view pair : split(query, '&')) {
        if (pair.rfind("model=", 0) != 0) continue;
        const std::string name = http::percent_decode(pair.substr(6));
        const config::ModelConfig* m = cfg_.resolve(name);
        q.models.push_back(m ? m->id : name);
    }
    return q;
}

void Daemon::on_exchange_start(const proxy::ExchangeInfo& info) {
    events_.on_exchange_start(info);
}

void Daemon::on_exchange_end(const proxy::ExchangeInfo& info, const proxy::ExchangeResult& r) {
    events_.on_exchange_end(info, r);
    metrics::ActivityRecord rec;
    rec.id = info.id;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rec.timestamp = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9 -
                    (r.ended_at - info.started_at); // when the request arrived
    rec.model = std::string(info.model);
    rec.method = std::string(info.method);
    rec.path = std::string(info.path);
    rec.status = r.status;
    rec.duration_ms = (r.ended_at - info.started_at) * 1000;
    rec.wait_ms = r.granted_at > 0 ? (r.granted_at - info.started_at) * 1000 : rec.duration_ms;
    rec.upstream_ms = r.granted_at > 0 ? (r.ended_at - r.granted_at) * 1000 : 0;
    rec.bytes = r.bytes;
    rec.outcome = r.outcome;
    rec.usage = r.usage;
    metrics_.on_request(rec.model, rec.status, rec.duration_ms / 1000, rec.usage, rec.outcome);
    activity_.add(std::move(rec));
}

void Daemon::refuse_model_request(http::Connection& conn, int status, const std::string& message,
                                  const char* code, const std::string& model_id) {
    metrics_.on_refused(model_id, status);
    conn.respond_error(status, message, code);
}

void Daemon::serve_model_request(http::Connection& conn, http::Request& req) {
    auto* scanner = dynamic_cast<router::BodyScanner*>(conn.body_observer());
    router::ModelRef ref;
    if (scanner) {
        std::string error;
        if (!scanner->finish(error)) {
            refuse_model_request(conn, 400, error, "invalid_request_body");
            return;
        }
        ref = scanner->result();
    }
    if (!ref.found) {
        std::string from_query;
        if (http::query_param(req.query, "model", from_query) && !from_query.empty()) {
            ref = router::ModelRef{};
            ref.found = true;
            ref.model = from_query;
            scanner = nullptr; // nothing to rewrite in the body
        }
    }
    if (!ref.found || ref.model.empty()) {
        refuse_model_request(
            conn, 400, "missing 'model' in the request (JSON body, multipart field or ?model=)",
            "missing_model");
        return;
    }
    const config::ModelConfig* model = cfg_.resolve(ref.model);
    if (!model) {
        refuse_model_request(conn, 404, "model '" + ref.model + "' not found", "model_not_found");
        return;
    }
    proxy::ProxyOptions opt;
    opt.loading_state = req.path == "/v1/chat/completions" && ref.stream &&
                        model->send_loading_state.value_or(cfg_.send_loading_state);
    const bool json_body = dynamic_cast<router::JsonModelScanner*>(scanner) != nullptr;
    if (json_body && !model->filters.empty()) {
        // Filters need the parsed document: the body is rewritten as a whole.
        constexpr size_t kMaxFilteredBody = 64 * 1024 * 1024;
        if (req.body.size() > kMaxFilteredBody) {
            refuse_model_request(conn, 413,
                                 "request body too large for the model's filters (limit 64 MiB)",
                                 "body_too_large", model->id);
            return;
        }
        std::string spooled; // read back only when the body is not in memory
        if (req.body.spooled()) {
            spooled.resize(req.body.size());
            auto got = req.body.read_at(0, spooled.data(), spooled.size());
            if (!got || *got != spooled.size()) {
                refuse_model_request(conn, 500, "cannot read the spooled request body",
                                     "internal_error", model->id);
                return;
            }
        }
        auto filtered = router::apply_json_filters(
            req.body.spooled() ? std::string_view(spooled) : req.body.memory(), model->filters,
            ref.model, model->use_model_name);
        if (!filtered) {
            refuse_model_request(conn, 400, filtered.error().message, "invalid_request_body",
                                 model->id);
            return;
        }
        opt.rewrite.active = true;
        opt.rewrite.begin = 0;
        opt.rewrite.end = req.body.size();
        opt.rewrite.replacement = std::move(filtered.value());
    } else if (!model->use_model_name.empty() && scanner && ref.value_end > ref.value_begin) {
        proxy::BodyRewrite& rewrite = opt.rewrite;
        rewrite.active = true;
        rewrite.begin = ref.value_begin;
        rewrite.end = ref.value_end;
        rewrite.replacement = json_body ? "\"" + http::json_escape(model->use_model_name) + "\""
                                        : model->use_model_name;
    }
    start_proxy(conn, req, *model, std::move(opt));
}

void Daemon::start_proxy(http::Connection& conn, http::Request& req,
                         const config::ModelConfig& model, proxy::ProxyOptions opt) {
    opt.strip_credentials = !cfg_.api_keys.empty();
    opt.observer = this;
    req.log_model = model.id;
    auto exchange = std::make_unique<proxy::ProxyExchange>(loop_, conn, req, scheduler_, pool_,
                                                           model.id, std::move(opt));
    proxy::ProxyExchange* x = exchange.get();
    conn.attach_exchange(std::move(exchange));
    x->begin();
}

void Daemon::serve_upstream_passthrough(http::Connection& conn, http::Request& req,
                                        std::string_view rest) {
    size_t matched = 0;
    const config::ModelConfig* model = match_model_prefix(cfg_, rest, matched);
    if (!model) {
        conn.respond_error(404, "no model matches " + req.path, "model_not_found");
        return;
    }
    if (matched == rest.size()) {
        // "/upstream/m" → "/upstream/m/": relative links of the upstream's own UI then work.
        http::HeaderList h;
        h.add("Location", req.path + "/" + (req.query.empty() ? "" : "?" + req.query));
        const bool safe = req.method_name == "GET" || req.method_name == "HEAD";
        conn.respond(safe ? 301 : 308, h, "");
        return;
    }
    const std::string_view sub_path = rest.substr(matched);
    const auto* p = scheduler_.process(model->id);
    if (is_ignored_upstream_path(sub_path) &&
        (!p || p->state() != supervisor::ProcessState::Ready)) {
        conn.respond_error(409,
                           "model '" + model->id + "' is not running; " + std::string(sub_path) +
                               " does not start it",
                           "model_not_ready");
        return;
    }
    proxy::ProxyOptions opt;
    opt.target = std::string(sub_path);
    if (!req.query.empty()) opt.target += "?" + req.query;
    start_proxy(conn, req, *model, std::move(opt));
}

void Daemon::serve_log_stream(http::Connection& conn, http::Request& req, std::string_view rest) {
    using Filter = api::LogStreamExchange::Filter;
    Filter filter = Filter::All;
    std::string model;
    if (!rest.empty()) { // "/logs/stream/<which>"
        const std::string which = http::percent_decode(rest);
        if (which == "proxy") {
            filter = Filter::Proxy;
        } else if (which == "upstream") {
            filter = Filter::Upstream;
        } else if (const config::ModelConfig* m = cfg_.resolve(which)) {
            filter = Filter::Model;
            model = m->id;
        } else {
            conn.respond_error(
                400, "invalid logger '" + which + "'. Use 'proxy', 'upstream' or a model's ID",
                "bad_request");
            return;
        }
    }
    std::string ignored;
    const bool history = !http::query_param(req.query, "no-history", ignored);
    auto x = std::make_unique<api::LogStreamExchange>(log_hub_, conn, filter, model);
    api::LogStreamExchange* raw = x.get();
    conn.attach_exchange(std::move(x));
    raw->start(history);
}

void Daemon::start_unload(http::Connection& conn, std::vector<std::string> models,
                          bool json_reply) {
    for (const auto& id : models) scheduler_.unload(id, "unload requested");
    auto x = std::make_unique<UnloadExchange>(*this, conn, std::move(models), json_reply);
    UnloadExchange* raw = x.get();
    conn.attach_exchange(std::move(x));
    if (!raw->try_finish()) pending_unloads_.push_back(raw);
}

void Daemon::check_pending_unloads() {
    // try_finish() may respond, which can start the next pipelined request: iterate a copy.
    std::vector<UnloadExchange*> pending = pending_unloads_;
    for (UnloadExchange* x : pending) {
        if (std::find(pending_unloads_.begin(), pending_unloads_.end(), x) ==
            pending_unloads_.end())
            continue;
        if (x->try_finish()) {
            auto& v = pending_unloads_;
            v.erase(std::remove(v.begin(), v.end(), x), v.end());
        }
    }
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
    static_cast<Daemon*>(w->data)->reload("SIGHUP");
}

void Daemon::enable_reload(std::string config_path, bool watch) {
    config_path_ = std::move(config_path);
    if (!watch) return;
    ev_stat_init(&config_stat_, &on_config_changed, config_path_.c_str(), 2.0);
    config_stat_.data = this;
    ev_stat_start(loop_, &config_stat_);
    ev_unref(loop_); // watching alone must not keep the loop alive
    watching_ = true;
}

void Daemon::on_config_changed(struct ev_loop*, ev_stat* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    // Reload once the file has been quiet for a moment: a half-written or truncated file
    // (size 0, or gone while an editor replaces it) must not be taken as the new config.
    self->config_settle_.start(0.5);
}

void Daemon::on_config_settled(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<Daemon*>(w->data);
    struct stat st;
    if (stat(self->config_path_.c_str(), &st) != 0 || st.st_size == 0) return;
    self->reload("config file changed");
}

void Daemon::reload(const char* why) {
    if (shutting_down_ || config_path_.empty()) return;
    sd::notify_reloading();
    LOG_INFO("%s: reloading %s", why, config_path_.c_str());
    auto cfg = config::load_config(config_path_);
    if (!cfg) {
        LOG_ERROR("reload failed, keeping the running configuration: %s",
                  cfg.error().message.c_str());
        sd::notify_ready();
        return;
    }
    for (const auto& w : cfg->warnings) LOG_WARN("%s", w.render().c_str());
    cfg_ = std::move(cfg.value());
    apply_log_settings();
    activity_.set_capacity(cfg_.metrics_max_in_memory);
    server_.set_limits(cfg_.server);
    scheduler_.apply_config(cfg_);
    LOG_INFO("configuration reloaded (%zu models)", cfg_.models.size());
    start_preload();
    events_.set_model_status(api::model_status_json(cfg_, scheduler_));
    sd::notify_ready();
    update_status();
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
