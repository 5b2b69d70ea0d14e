// Model requests: the model named by a request (JSON body, multipart field, ?model=, or the
// /upstream/<model>/ prefix), its filters and useModelName, and the proxy exchange that
// serves it; every exchange's end goes to the live events, the activity log and /metrics.
#include "daemon.h"

#include <ctime>

#include "api/events.h"
#include "api/routes.h"
#include "http/error_body.h"
#include "proxy/proxy_exchange.h"
#include "router/json_filters.h"
#include "router/model_extract.h"
#include "util/log.h"
#include "util/regex_list.h"
#include "util/text_file.h"

namespace ls {

namespace {
// What /upstream/<name>/<path> names: the longest model id, alias or peer model name that
// prefixes the path at a segment boundary, compared percent-decoded ("author%2Fmodel" is
// "author/model"), with the length of the raw text it took.
struct PathTarget {
    const config::ModelConfig* model = nullptr;
    std::optional<config::PeerRoute> peer;
    size_t raw_len = 0;
    bool found() const { return model || peer; }
};

PathTarget match_path_target(const config::Config& cfg, std::string_view raw) {
    std::string decoded;
    std::vector<size_t> raw_at; // raw_at[i]: raw length consumed by the first i decoded bytes
    raw_at.push_back(0);
    for (size_t i = 0; i < raw.size();) {
        auto hex = [](char c) {
            return c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : -1;
        };
        if (raw[i] == '%' && i + 2 < raw.size() && hex(raw[i + 1]) >= 0 && hex(raw[i + 2]) >= 0) {
            decoded.push_back(static_cast<char>(hex(raw[i + 1]) * 16 + hex(raw[i + 2])));
            i += 3;
        } else {
            decoded.push_back(raw[i]);
            i += 1;
        }
        raw_at.push_back(i);
    }
    PathTarget best;
    size_t best_len = 0;
    auto fits = [&](const std::string& name) {
        return name.size() > best_len && decoded.compare(0, name.size(), name) == 0 &&
               (decoded.size() == name.size() || decoded[name.size()] == '/');
    };
    auto take = [&](const std::string& name, const config::ModelConfig* m,
                    std::optional<config::PeerRoute> p) {
        best = PathTarget{m, std::move(p), raw_at[name.size()]};
        best_len = name.size();
    };
    for (const auto& [id, m] : cfg.models)
        if (fits(id)) take(id, &m, std::nullopt);
    for (const auto& [alias, id] : cfg.aliases)
        if (fits(alias)) take(alias, cfg.resolve(id), std::nullopt);
    for (const auto& [pid, p] : cfg.peers)
        for (const auto& m : p.models) {
            const std::string fqn = pid + "/" + m;
            if (fits(fqn)) take(fqn, nullptr, config::PeerRoute{&p, m});
            // A bare name one peer alone has, when no local model or alias holds it.
            if (fits(m) && !cfg.resolve(m)) {
                auto route = cfg.resolve_peer(m);
                if (route && route->peer == &p) take(m, nullptr, route);
            }
        }
    return best;
}

// The upstream request-target with one query parameter set to `value` (added when absent).
std::string with_query_param(const http::Request& req, std::string_view key,
                             const std::string& value) {
    std::string query;
    bool set = false;
    for (std::string_view pair : split(req.query, '&')) {
        if (pair.empty()) continue;
        const std::string_view k = pair.substr(0, pair.find('='));
        query += query.empty() ? "" : "&";
        if (k == key && !set) {
            query += std::string(key) + "=" + http::percent_encode(value);
            set = true;
        } else {
            query += pair;
        }
    }
    if (!set)
        query += (query.empty() ? "" : "&") + std::string(key) + "=" + http::percent_encode(value);
    return std::string(api::upstream_path(req.path)) + "?" + query;
}
} // namespace

void Daemon::on_exchange_start(const proxy::ExchangeInfo& info) {
    if (info.in_flight) events_.on_exchange_start(info);
}

void Daemon::on_exchange_response(const proxy::ExchangeInfo& info, int status,
                                  const http::HeaderList& headers) {
    if (info.in_flight) events_.on_exchange_response(info, status, headers);
}

void Daemon::on_exchange_progress(const proxy::ExchangeInfo& info, uint64_t bytes) {
    if (info.in_flight) events_.on_exchange_progress(info, bytes);
}

void Daemon::on_exchange_end(const proxy::ExchangeInfo& info, const proxy::ExchangeResult& r) {
    if (info.in_flight) events_.on_exchange_end(info, r);
    const double duration_s = r.ended_at - info.started_at;
    metrics_.on_request(info.model, r.status, duration_s, r.usage, r.outcome);
    metrics_.on_upstream_result(
        info.model, r.first_byte_at > 0 ? r.first_byte_at - info.started_at : -1, r.failure);
    if (!info.metered) return;
    // The original's activity row.
    metrics::ActivityRecord* slot = activity_.start_record(); // filled in place
    if (!slot) return;
    metrics::ActivityRecord& rec = *slot;
    rec.timestamp = static_cast<long>(time(nullptr));
    rec.model.assign(info.model);
    // The path the upstream got (the original strips /v and /audioapi before its record).
    const std::string_view upstream_path = api::upstream_path(info.route_path);
    rec.req_path.assign(info.path.starts_with("/upstream/") ? info.route_path : upstream_path);
    rec.resp_content_type.assign(r.content_type);
    // A response cut short still says the status its head had; none at all: 502, ours.
    rec.resp_status_code = r.status ? r.status : 502;
    rec.duration_ms = static_cast<long long>(duration_s * 1000);
    const metrics::Usage& u = r.usage;
    rec.tokens.input_tokens = std::max(u.prompt_tokens, 0LL);
    rec.tokens.output_tokens = std::max(u.generated_tokens, 0LL);
    rec.tokens.cache_tokens = u.cached_tokens;
    rec.tokens.draft_tokens = u.draft_tokens;
    rec.tokens.draft_acc_tokens = u.draft_accepted;
    rec.tokens.prompt_per_second = u.prompt_per_second;
    rec.tokens.tokens_per_second = u.tokens_per_second;
    if (rec.resp_status_code != 200)
        rec.error_msg = metrics::failed_error_message(rec.resp_status_code, r.error_body);
    else if (std::string_view(r.outcome) != "completed")
        rec.error_msg = std::string("response not completed: ") + r.outcome;
    if (!info.selector.empty()) rec.metadata["selector"] = std::string(info.selector);
    const bool ok = rec.resp_status_code == 200;
    const uint64_t id = rec.id;
    if (id && captures_.enabled()) {
        // The original's capture: a failed request keeps no response body.
        const unsigned fields = metrics::capture_fields_for(upstream_path) &
                                (ok ? metrics::kCaptureAll : ~unsigned(metrics::kCaptureRespBody));
        metrics::Capture c;
        c.id = id;
        c.req_path = std::string(info.path);
        // A body the proxy did not keep (longer than the store) means no capture at all.
        bool keep = true;
        auto take_body = [&keep](bool wanted, auto& from, auto& to) {
            if (!wanted) return;
            if (from)
                to = std::move(from);
            else
                keep = false;
        };
        if (fields & metrics::kCaptureReqHeaders) c.req_headers = std::move(r.capture_req_headers);
        if (fields & metrics::kCaptureRespHeaders) c.resp_headers = std::move(r.capture_headers);
        take_body(fields & metrics::kCaptureReqBody, r.capture_req_body, c.req_body);
        take_body(fields & metrics::kCaptureRespBody, r.capture_body, c.resp_body);
        if (keep) captures_.add(std::move(c));
    }
    if (id && events_.has_streams())
        events_.publish("activity", "{\"id\":" + std::to_string(id) + "}");
}

void Daemon::refuse_model_request(http::Connection& conn, int status, const std::string& message,
                                  const char* code, const std::string& model_id) {
    metrics_.on_refused(model_id, status);
    conn.respond_error(status, message, code);
}

void Daemon::serve_model_request(http::Connection& conn, http::Request& req) {
    router::BodyScanner* scanner = body_scanner(conn);
    router::ModelRef ref;
    if (scanner) {
        // A body still arriving (dispatch_early) is judged whole by the exchange, before its
        // last byte goes upstream (ProxyOptions::body_check).
        std::string error;
        if (req.body_complete && !scanner->finish(error)) {
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
    if (!ref.found && req.path == "/props") {
        serve_props_of_running(conn, req);
        return;
    }
    if (!ref.found || ref.model.empty()) {
        refuse_model_request(
            conn, 400, "missing 'model' in the request (JSON body, multipart field or ?model=)",
            "missing_model");
        return;
    }
    std::string name = ref.model; // as routed: pins and selectors may change it
    std::shared_ptr<void> hold;
    if (!route_virtual_name(conn, name, hold)) return;
    // A local model (ids and aliases win), else a peer's.
    const config::ModelConfig* model = cfg_.resolve(name);
    std::optional<config::PeerRoute> peer;
    if (!model) peer = cfg_.resolve_peer(name);
    if (!model && !peer) {
        std::string message = "model '" + name + "' not found";
        if (auto several = cfg_.peers_offering(name); !several.empty()) {
            message = "model '" + name + "' is offered by several peers; name one of:";
            for (const auto& fqn : several) message += " " + fqn;
        }
        refuse_model_request(conn, 404, message, "model_not_found");
        return;
    }
    // The upstream sees the name the request was routed to: useModelName wins, and a peer
    // gets its own name for the model.
    const std::string model_field = peer                             ? peer->model
                                    : !model->use_model_name.empty() ? model->use_model_name
                                                                     : name;
    const std::string id = peer ? peer->fqn() : model->id;
    const config::Filters& filters = peer ? peer->peer->filters : model->filters;
    proxy::ProxyOptions opt;
    opt.hold = std::move(hold);
    if (const std::string_view path = api::upstream_path(req.path); path.size() != req.path.size())
        opt.target = std::string(path) + (req.query.empty() ? "" : "?" + req.query);
    if (peer) {
        auto it = peers_.find(peer->peer->id);
        if (it == peers_.end() || !it->second) {
            refuse_model_request(conn, 502,
                                 "peer '" + peer->peer->id +
                                     "' is not usable: " + peer_errors_[peer->peer->id],
                                 "upstream_unreachable", id);
            return;
        }
        opt.peer = it->second;
        opt.resolver = &peer_resolver_;
    } else {
        opt.loading_state = req.path == "/v1/chat/completions" && ref.stream &&
                            model->send_loading_state.value_or(cfg_.send_loading_state);
    }
    if (!rewrite_model_request(conn, req, ref, scanner, filters, name, model_field, id, opt))
        return;
    if (!req.body_complete && scanner)
        opt.body_check = [scanner](std::string& error) { return scanner->finish(error); };
    start_proxy(conn, req, id, std::move(opt));
}

bool Daemon::rewrite_model_request(http::Connection& conn, http::Request& req,
                                   const router::ModelRef& ref, router::BodyScanner* scanner,
                                   const config::Filters& filters, const std::string& name,
                                   const std::string& model_field, const std::string& id,
                                   proxy::ProxyOptions& opt) {
    const bool renamed = model_field != ref.model;
    using Kind = router::BodyScanner::Kind;
    const bool json_body = scanner && scanner->kind() == Kind::Json;
    if (json_body && !filters.empty()) {
        // Filters need the parsed document: the body is rewritten as a whole.
        constexpr size_t kMaxFilteredBody = 64 * 1024 * 1024;
        if (req.body.size() > kMaxFilteredBody) {
            refuse_model_request(conn, 413,
                                 "request body too large for the model's filters (limit 64 MiB)",
                                 "body_too_large", id);
            return false;
        }
        std::string spooled; // read back only when the body is not in memory
        if (req.body.spooled()) {
            spooled.resize(req.body.size());
            auto got = req.body.read_at(0, spooled.data(), spooled.size());
            if (!got || *got != spooled.size()) {
                refuse_model_request(conn, 500, "cannot read the spooled request body",
                                     "internal_error", id);
                return false;
            }
        }
        auto filtered = router::apply_json_filters(
            req.body.spooled() ? std::string_view(spooled) : req.body.memory(), filters, name,
            renamed ? model_field : std::string());
        if (!filtered) {
            refuse_model_request(conn, 400, filtered.error().message, "invalid_request_body", id);
            return false;
        }
        opt.rewrite.active = true;
        opt.rewrite.begin = 0;
        opt.rewrite.end = req.body.size();
        opt.rewrite.replacement = std::move(filtered.value());
    } else if (renamed && scanner && ref.value_end > ref.value_begin) {
        proxy::BodyRewrite& rewrite = opt.rewrite;
        rewrite.active = true;
        rewrite.begin = ref.value_begin;
        rewrite.end = ref.value_end;
        rewrite.replacement = json_body ? "\"" + http::json_escape(model_field) + "\""
                              : scanner->kind() == Kind::Form ? http::percent_encode(model_field)
                                                              : model_field;
    } else if (renamed && !scanner) { // ?model= in the query
        opt.target = with_query_param(req, "model", model_field);
    }
    return true;
}

const config::ProfileConfig* Daemon::active_profile() const {
    auto it = cfg_.profiles.find(active_profile_);
    return it == cfg_.profiles.end() ? nullptr : &it->second;
}

bool Daemon::route_virtual_name(http::Connection& conn, std::string& name,
                                std::shared_ptr<void>& hold) {
    if (const config::ProfileConfig* p = active_profile()) {
        if (auto it = p->pins.find(name); it != p->pins.end()) {
            if (it->second.empty()) {
                refuse_model_request(conn, 404,
                                     "model '" + name + "' is disabled by the active profile '" +
                                         p->id + "'",
                                     "model_not_found");
                return false;
            }
            name = it->second;
        }
    }
    const config::SelectorConfig* sel = cfg_.selector(name);
    if (!sel) return true;
    auto& counters = spillover_[sel->id];
    if (!counters) counters = std::make_shared<router::SpilloverCounters>();
    auto pick = router::pick_target(
        *sel,
        [this](const std::string& id) {
            const auto* p = scheduler_.process(id);
            return p ? p->state() : supervisor::ProcessState::Stopped;
        },
        *counters);
    if (!pick) {
        refuse_model_request(conn, 503, pick.error().message, "no_selector_target");
        return false;
    }
    LOG_DEBUG("selector: id=%s target=%s", sel->id.c_str(), sel->targets[*pick].c_str());
    if (sel->strategy == config::SelectorStrategy::Spillover)
        hold = std::make_shared<router::SpilloverReservation>(counters, sel->models[*pick]);
    name = sel->targets[*pick];
    return true;
}

void Daemon::start_proxy(http::Connection& conn, http::Request& req, const std::string& id,
                         proxy::ProxyOptions&& opt) {
    opt.strip_credentials = !cfg_.api_keys.empty();
    opt.observer = this;
    req.log_model = id;
    opt.client = conn.peer();
    // The original's in-flight list and activity log: model routes, and /upstream/<model>/
    // to a model route's path; the log only POSTs. /comfyui/ is neither.
    const bool passthrough = req.path.starts_with("/upstream/");
    if (passthrough) opt.route_path = opt.target.substr(0, opt.target.find('?'));
    const api::RouteMatch route =
        passthrough ? api::match_route(req.method_name, opt.route_path) : route_of(req);
    const bool model_route = route.kind == api::RouteKind::ModelJson;
    opt.in_flight = model_route && (route.method_allowed || !passthrough);
    opt.metered = model_route && req.method_name == "POST";
    if (opt.metered && captures_.enabled()) {
        opt.capture_limit = captures_.capacity();
        const unsigned fields = metrics::capture_fields_for(
            api::upstream_path(opt.route_path.empty() ? std::string_view(req.path)
                                                      : std::string_view(opt.route_path)));
        opt.capture_req_body = fields & metrics::kCaptureReqBody;
        opt.capture_body = fields & metrics::kCaptureRespBody;
    }
    if (req.upgrade && !opt.peer) {
        // compat.ignoreWebsockets: a WebSocket never starts the model and is not counted
        // (in flight, TTL, spillover); other upgrades are ordinary requests.
        const config::ModelConfig* m = cfg_.resolve(id);
        const std::string* upgrade = req.headers.find("Upgrade");
        if (m && m->ignore_websockets && upgrade && http::header_has_token(*upgrade, "websocket")) {
            opt.unscheduled = true;
            opt.hold.reset();
            opt.observer = nullptr; // nor shown in flight, as in the original
        }
    }
    auto exchange = std::make_unique<proxy::ProxyExchange>(loop_, conn, req, scheduler_, pool_, id,
                                                           std::move(opt));
    proxy::ProxyExchange* x = exchange.get();
    conn.attach_exchange(std::move(exchange));
    x->begin();
}

void Daemon::serve_props_of_running(http::Connection& conn, http::Request& req) {
    std::vector<std::string> ready;
    for (const auto& [id, m] : cfg_.models) {
        const auto* p = scheduler_.process(id);
        if (p && p->state() == supervisor::ProcessState::Ready) ready.push_back(id);
    }
    if (ready.size() != 1) {
        std::string message = "no model is running; name one with /props?model=ID";
        if (!ready.empty()) {
            message = "several models are running (";
            for (size_t i = 0; i < ready.size(); ++i) message += (i ? ", " : "") + ready[i];
            message += "); name one with /props?model=ID";
        }
        refuse_model_request(conn, 400, message, "missing_model");
        return;
    }
    start_proxy(conn, req, ready.front(), {});
}

void Daemon::serve_comfyui(http::Connection& conn, http::Request& req, std::string_view rest) {
    if (req.path == "/comfyui") {
        http::HeaderList h;
        h.add("Location", "comfyui/" + (req.query.empty() ? "" : "?" + req.query));
        const bool safe = req.method_name == "GET" || req.method_name == "HEAD";
        conn.respond(safe ? 301 : 308, h, "");
        return;
    }
    const std::string id = config::kComfyUiModelId;
    if (!cfg_.models.contains(id)) {
        conn.respond_error(404, "local model " + id + " not found", "model_not_found");
        return;
    }
    const std::string sub_path = "/" + std::string(rest);
    // Only the root may start it: once unloaded, a browser tab's stale asset and API
    // requests must not load it again.
    const auto* p = scheduler_.process(id);
    if (sub_path != "/" && (!p || p->state() != supervisor::ProcessState::Ready)) {
        conn.respond_error(409, "model " + id + " is not loaded; only /comfyui/ can start it",
                           "model_not_ready");
        return;
    }
    proxy::ProxyOptions opt;
    opt.target = sub_path + (req.query.empty() ? "" : "?" + req.query);
    start_proxy(conn, req, id, std::move(opt));
}

void Daemon::serve_upstream_passthrough(http::Connection& conn, http::Request& req,
                                        std::string_view rest) {
    // The active profile's pins apply to the path (the longest one that prefixes it at a
    // segment boundary); the body is left as it is. Selectors do not work here.
    std::string pinned;
    if (const config::ProfileConfig* p = active_profile()) {
        size_t best = 0;
        const std::string* target = nullptr;
        for (const auto& [pin, to] : p->pins)
            if (pin.size() > best && rest.compare(0, pin.size(), pin) == 0 &&
                (rest.size() == pin.size() || rest[pin.size()] == '/')) {
                best = pin.size();
                target = &to;
            }
        if (target) {
            if (target->empty()) {
                conn.respond_error(404,
                                   "model '" + std::string(rest.substr(0, best)) +
                                       "' is disabled by the active profile '" + p->id + "'",
                                   "model_not_found");
                return;
            }
            pinned = *target + std::string(rest.substr(best));
            rest = pinned;
        }
    }
    const PathTarget target = match_path_target(cfg_, rest);
    if (!target.found()) {
        conn.respond_error(404, "no model matches " + req.path, "model_not_found");
        return;
    }
    const size_t matched = target.raw_len;
    if (matched == rest.size()) {
        // "/upstream/m" → "/upstream/m/": relative links of the upstream's own UI then work.
        http::HeaderList h;
        h.add("Location", req.path + "/" + (req.query.empty() ? "" : "?" + req.query));
        const bool safe = req.method_name == "GET" || req.method_name == "HEAD";
        conn.respond(safe ? 301 : 308, h, "");
        return;
    }
    const std::string_view sub_path = rest.substr(matched);
    if (target.peer) { // a peer's own paths, untouched, with its key
        auto it = peers_.find(target.peer->peer->id);
        if (it == peers_.end() || !it->second) {
            conn.respond_error(502,
                               "peer '" + target.peer->peer->id +
                                   "' is not usable: " + peer_errors_[target.peer->peer->id],
                               "upstream_unreachable");
            return;
        }
        proxy::ProxyOptions opt;
        opt.peer = it->second;
        opt.resolver = &peer_resolver_;
        opt.target = std::string(sub_path) + (req.query.empty() ? "" : "?" + req.query);
        start_proxy(conn, req, target.peer->fqn(), std::move(opt));
        return;
    }
    const config::ModelConfig* model = target.model;
    const auto* p = scheduler_.process(model->id);
    if ((!p || p->state() != supervisor::ProcessState::Ready) && cfg_.ignore_path_res &&
        cfg_.ignore_path_res->matches(sub_path)) {
        conn.respond_error(409,
                           "model '" + model->id + "' is not running; " + std::string(sub_path) +
                               " matches upstream.ignorePaths, which never start a model",
                           "model_not_ready");
        return;
    }
    proxy::ProxyOptions opt;
    opt.target = std::string(sub_path);
    if (!req.query.empty()) opt.target += "?" + req.query;
    start_proxy(conn, req, model->id, std::move(opt));
}

} // namespace ls
