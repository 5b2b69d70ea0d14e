// The route switch: what is decided by the head alone (CORS, API keys, unknown routes and
// methods), then one handler per route; the non-model routes are answered here or by their
// api/ module.
#include "daemon.h"

#include <algorithm>

#include "api/auth.h"
#include "api/log_stream.h"
#include "api/model_api.h"
#include "api/model_load.h"
#include "api/profiles.h"
#include "api/routes.h"
#include "api/ui_assets.h"
#include "build_config.h"
#include "http/error_body.h"
#include "router/model_extract.h"
#include "util/log.h"
#include "util/text_file.h"

namespace ls {

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

const api::RouteMatch& Daemon::route_of(const http::Request& req) {
    RouteMemo& m = route_memo_;
    if (m.request_id != req.id || m.path != req.path.data() || m.path_size != req.path.size()) {
        m.match = api::match_route(req.method_name, req.path);
        m.request_id = req.id;
        m.path = req.path.data();
        m.path_size = req.path.size();
    }
    return m.match;
}

bool Daemon::on_request_head(http::Connection& conn, http::Request& req) {
    // Requests without a body are answered in on_request, which keeps the connection open;
    // with a body, refusing now saves reading (and spooling) it.
    if (!req.has_body) return true;
    const api::RouteMatch route = route_of(req);
    if (!admit(conn, req, route)) return false;
    if (route.kind == api::RouteKind::ModelJson) {
        std::string error;
        auto scanner = router::body_scanner_for(req, error);
        if (!scanner) {
            refuse_model_request(conn, 400, error, "bad_request");
            return false;
        }
        // The scanner sees the body as it arrives, so a huge file part never needs a second pass.
        conn.set_body_observer(std::move(scanner));
    }
    return true;
}

bool Daemon::dispatch_early(http::Connection& conn, http::Request& req) {
    // A large body that nothing needs to read whole: the model can start, and the body go
    // upstream, while the rest arrives. A /upstream/<model>/ passthrough (its body is left
    // as it is), or a multipart upload (audio, images) whose model field came before its
    // file. Not JSON: filters read the whole document.
    const api::RouteMatch route = route_of(req);
    if (route.kind == api::RouteKind::Upstream) {
        log_early_dispatch(req);
        serve_upstream_passthrough(conn, req, route.rest);
        return true;
    }
    if (route.kind != api::RouteKind::ModelJson) return false;
    router::BodyScanner* scanner = body_scanner(conn);
    if (!scanner || scanner->kind() != router::BodyScanner::Kind::Multipart) return false;
    if (const router::ModelRef& ref = scanner->result(); !ref.found || ref.model.empty())
        return false;
    log_early_dispatch(req);
    serve_model_request(conn, req);
    return true;
}

void Daemon::log_early_dispatch(const http::Request& req) {
    LOG_DEBUG("request %llu: %s taken while its body arrives (%zu of %llu bytes in)",
              static_cast<unsigned long long>(req.id), req.path.c_str(), req.body.size(),
              static_cast<unsigned long long>(req.content_length));
}

void Daemon::on_request(http::Connection& conn, http::Request& req) {
    const api::RouteMatch route = route_of(req);
    if (!req.has_body && !admit(conn, req, route)) return;
    // Built only by the routes that answer JSON here: the proxied path allocates nothing.
    auto respond_json = [&conn](std::string body) {
        http::HeaderList h;
        h.add("Content-Type", "application/json");
        conn.respond(200, h, body);
    };
    switch (route.kind) {
    case api::RouteKind::Health: {
        req.quiet = req.path == "/wol-health"; // polled by wake-on-LAN proxies: not logged
        http::HeaderList text;
        text.add("Content-Type", "text/plain; charset=utf-8");
        conn.respond(200, text, "OK");
        return;
    }
    case api::RouteKind::ListModels:
        respond_json(api::models_json(cfg_, scheduler_, started_at_, active_profile()));
        return;
    case api::RouteKind::Running:
        respond_json(api::running_json(scheduler_, pool_, perf_.latest()));
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
        req.debug_log = true; // scraped every few seconds: logged at debug level only
        http::HeaderList h;
        h.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        conn.respond(200, h, metrics_.render(scheduler_, perf_.latest()));
        return;
    }
    case api::RouteKind::Activity: {
        std::string error;
        auto q = metrics::ActivityLog::parse_query(req.query, error);
        if (!q) {
            conn.respond_error(400, error, "bad_request");
            return;
        }
        for (std::string& name : q->models) // an alias names its model
            if (const config::ModelConfig* m = cfg_.resolve(name)) name = m->id;
        respond_json(activity_.json(*q, [this](uint64_t id) { return captures_.has(id); }));
        return;
    }
    case api::RouteKind::ActivityStats: {
        std::string model;
        http::query_param(req.query, "model", model);
        model = std::string(http::trim(model));
        if (const config::ModelConfig* m = model.empty() ? nullptr : cfg_.resolve(model))
            model = m->id;
        respond_json(activity_.stats_json(model));
        return;
    }
    case api::RouteKind::Version:
        // As the original's map: its keys in order.
        respond_json(std::string("{\"build_date\":\"") + http::json_escape(LS_BUILD_DATE) +
                     "\",\"commit\":\"" + http::json_escape(LS_COMMIT) + "\",\"version\":\"" +
                     http::json_escape(LS_VERSION) + "\"}\n");
        return;
    case api::RouteKind::Inflight:
        respond_json(events_.inflight_snapshot() + "\n");
        return;
    case api::RouteKind::Capture: {
        // As the original's: a decimal integer (Go's Atoi), else 400.
        const std::string id = http::percent_decode(route.rest);
        std::string_view digits = id;
        if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) digits.remove_prefix(1);
        const bool numeric =
            !digits.empty() && digits.size() <= 18 &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!numeric) {
            conn.respond_error(400, "invalid capture ID", "bad_request");
            return;
        }
        const long long n = std::stoll(id);
        const std::optional<metrics::CaptureView> c =
            n > 0 ? captures_.find(static_cast<uint64_t>(n)) : std::nullopt;
        if (!c) {
            conn.respond_error(404, "capture not found", "not_found");
            return;
        }
        respond_json(metrics::capture_json(*c) + "\n");
        return;
    }
    case api::RouteKind::Cancel: {
        const std::string_view rest = route.rest;
        const size_t slash = rest.find('/');
        const std::string id = slash == std::string_view::npos
                                   ? std::string()
                                   : http::percent_decode(rest.substr(0, slash));
        if (slash == std::string_view::npos || rest.substr(slash) != "/cancel") {
            conn.respond_error(404, "no route for " + req.method_name + " " + req.path,
                               "not_found");
            return;
        }
        if (id.empty() || !events_.cancel(id)) {
            conn.respond_error(404, "inflight request not found", "not_found");
            return;
        }
        respond_json("{\"msg\":\"ok\"}\n");
        return;
    }
    case api::RouteKind::Performance: {
        req.quiet = true; // polled by the UI: not in the request log, as the original
        if (!perf_.enabled()) {
            http::HeaderList h;
            h.add("Content-Type", "application/json");
            conn.respond(503, h, "{\"enabled\":false}\n");
            return;
        }
        std::int64_t after = INT64_MIN;
        std::string text;
        if (http::query_param(req.query, "after", text) && !text.empty() &&
            !perf::parse_rfc3339_ms(text, after)) {
            conn.respond_error(400, "invalid 'after' timestamp, use RFC3339 format", "bad_request");
            return;
        }
        respond_json(perf_.performance_json(after));
        return;
    }
    case api::RouteKind::Hardware:
        if (perf_.hardware_json().empty()) {
            conn.respond_error(503, "hardware detection unavailable", "unavailable");
            return;
        }
        respond_json(perf_.hardware_json());
        return;
    case api::RouteKind::Profiles:
        respond_json(api::profiles_json(cfg_, active_profile_));
        return;
    case api::RouteKind::ProfileActive: {
        constexpr size_t kMaxChoice = 64 * 1024; // {"name": "..."}
        if (req.body.spooled() || req.body.size() > kMaxChoice) {
            conn.respond_error(413, "a profile request is a small JSON object", "body_too_large");
            return;
        }
        const api::ProfileChoice choice = api::parse_profile_choice(req.body.memory(), cfg_);
        if (choice.status != 200) {
            conn.respond_error(choice.status, choice.message,
                               choice.status == 404 ? "not_found" : "bad_request");
            return;
        }
        set_active_profile(choice.name, "requested through the API");
        respond_json(api::active_profile_json(active_profile_) + "\n");
        return;
    }
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
    case api::RouteKind::Root:
    case api::RouteKind::UpstreamIndex: { // both relative to "/": the UI's model list
        http::HeaderList h;
        h.add("Location", "ui/");
        conn.respond(302, h, "");
        return;
    }
    case api::RouteKind::ComfyUi:
        serve_comfyui(conn, req, route.rest);
        return;
    case api::RouteKind::Ui:
        api::serve_ui(conn, req);
        return;
    case api::RouteKind::NotFound:
        break;
    }
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

} // namespace ls
