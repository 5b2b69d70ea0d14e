#include "daemon.h"

#include <ctime>

#include "api/model_api.h"
#include "api/routes.h"
#include "http/error_body.h"
#include "proxy/proxy_exchange.h"
#include "router/model_extract.h"
#include "util/log.h"

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

} // namespace

Daemon::Daemon(struct ev_loop* loop, config::Config cfg, supervisor::GroupGuard* guard)
    : loop_(loop), cfg_(std::move(cfg)), guard_(guard), reaper_(loop), scheduler_(loop, guard),
      pool_(loop), server_(loop, cfg_.server, *this, reaper_), started_at_(time(nullptr)),
      sigterm_(loop, SIGTERM, &on_terminate, this), sigint_(loop, SIGINT, &on_terminate, this),
      sighup_(loop, SIGHUP, &on_hangup, this), shutdown_deadline_(loop, &on_shutdown_deadline, this) {
    scheduler_.apply_config(cfg_);
    scheduler_.on_change = [this] {
        update_status();
        if (shutting_down_) maybe_finish_shutdown();
    };
}

Daemon::~Daemon() {
    server_.close_all();
    reaper_.run_now();
}

Result<void> Daemon::add_listener(sd::ListenSocket sock) {
    LOG_INFO("listening on %s", sock.name.c_str());
    return server_.add_listener(std::move(sock.fd), sock.name);
}

int Daemon::run() {
    sd::notify_ready();
    update_status();
    ev_run(loop_, 0);
    return exit_status_;
}

// ------------------------------------------------------------------ requests

bool Daemon::on_request_head(http::Connection& conn, http::Request& req) {
    const api::RouteMatch route = api::match_route(req.method_name, req.path);
    if (!req.has_body) return true; // answered in on_request, keeping the connection
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
    if (route.kind == api::RouteKind::ModelJson) {
        std::string error;
        auto scanner = scanner_for(req, error);
        if (!scanner) {
            conn.respond_error(400, error, "bad_request");
            return false;
        }
        // The scanner sees the body as it arrives, so a huge file part never needs a second pass.
        conn.set_body_observer(std::move(scanner));
    }
    return true;
}

void Daemon::on_request(http::Connection& conn, http::Request& req) {
    const api::RouteMatch route = api::match_route(req.method_name, req.path);
    if (route.kind == api::RouteKind::NotFound) {
        conn.respond_error(404, "no route for " + req.method_name + " " + req.path, "not_found");
        return;
    }
    if (!route.method_allowed) {
        http::HeaderList h;
        h.add("Allow", route.allow);
        conn.respond_error(405, "method " + req.method_name + " is not allowed for " + req.path,
                           "method_not_allowed", &h);
        return;
    }
    http::HeaderList json;
    json.add("Content-Type", "application/json");
    switch (route.kind) {
    case api::RouteKind::Health: {
        http::HeaderList text;
        text.add("Content-Type", "text/plain; charset=utf-8");
        conn.respond(200, text, "OK");
        return;
    }
    case api::RouteKind::ListModels: conn.respond(200, json, api::models_json(cfg_, started_at_)); return;
    case api::RouteKind::Running: conn.respond(200, json, api::running_json(scheduler_)); return;
    case api::RouteKind::ModelJson: serve_model_request(conn, req); return;
    case api::RouteKind::NotFound: break;
    }
}

void Daemon::serve_model_request(http::Connection& conn, http::Request& req) {
    auto* scanner = dynamic_cast<router::BodyScanner*>(conn.body_observer());
    router::ModelRef ref;
    if (scanner) {
        std::string error;
        if (!scanner->finish(error)) {
            conn.respond_error(400, error, "invalid_request_body");
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
        conn.respond_error(400, "missing 'model' in the request (JSON body, multipart field or ?model=)",
                           "missing_model");
        return;
    }
    const config::ModelConfig* model = cfg_.resolve(ref.model);
    if (!model) {
        conn.respond_error(404, "model '" + ref.model + "' not found", "model_not_found");
        return;
    }
    proxy::BodyRewrite rewrite;
    if (!model->use_model_name.empty() && scanner && ref.value_end > ref.value_begin) {
        rewrite.active = true;
        rewrite.begin = ref.value_begin;
        rewrite.end = ref.value_end;
        const bool json = dynamic_cast<router::JsonModelScanner*>(scanner) != nullptr;
        rewrite.replacement = json ? "\"" + http::json_escape(model->use_model_name) + "\"" : model->use_model_name;
    }
    auto exchange = std::make_unique<proxy::ProxyExchange>(loop_, conn, req, scheduler_, pool_, model->id,
                                                           std::move(rewrite));
    proxy::ProxyExchange* x = exchange.get();
    conn.attach_exchange(std::move(exchange));
    x->begin();
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

void Daemon::on_hangup(struct ev_loop*, ev_signal*, int) {
    LOG_WARN("SIGHUP: configuration reload is not implemented yet, ignoring");
}

void Daemon::begin_shutdown(const char* why) {
    shutting_down_ = true;
    LOG_INFO("%s: shutting down (waiting up to %.0f s for in-flight requests)", why, cfg_.server.shutdown_timeout_s);
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
        LOG_WARN("shutdown timeout: closing %zu remaining connections", self->server_.connection_count());
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
    std::string running;
    int n = 0;
    std::string loading;
    for (const auto& v : scheduler_.models()) {
        auto st = v.process->state();
        if (st == supervisor::ProcessState::Ready) {
            running += (n++ ? ", " : "") + v.process->id();
        } else if (st == supervisor::ProcessState::Starting) {
            loading = v.process->id();
        }
    }
    std::string status = std::to_string(n) + " running" + (n ? ": " + running : "");
    if (!loading.empty()) status += "; loading " + loading;
    sd::notify_status(status);
}

} // namespace ls
