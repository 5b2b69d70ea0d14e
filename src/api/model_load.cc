#include "api/model_load.h"

#include <cstdio>
#include <memory>

#include "http/error_body.h"
#include "supervisor/model_process.h"

namespace ls::api {

LoadExchange::LoadExchange(router::Scheduler& scheduler, http::Connection& conn,
                           std::string model_id)
    : scheduler_(scheduler), conn_(&conn), model_id_(std::move(model_id)) {}

LoadExchange::~LoadExchange() {
    scheduler_.cancel(this); // nothing when no longer queued
}

void LoadExchange::start(router::Scheduler& scheduler, http::Connection& conn,
                         const std::string& model_id) {
    auto x = std::make_unique<LoadExchange>(scheduler, conn, model_id);
    LoadExchange* self = x.get();
    conn.attach_exchange(std::move(x)); // before request(): the grant may come at once
    scheduler.request(model_id, self);
}

void LoadExchange::on_granted(supervisor::ModelProcess& process) {
    // Nothing is sent upstream: the grant is given back at once, so the ttl starts now.
    scheduler_.release(model_id_);
    if (!conn_) return;
    http::HeaderList h;
    h.add("Content-Type", "application/json");
    char body[64];
    snprintf(body, sizeof body, "\",\"load_seconds\":%.3f}\n", process.load_seconds());
    http::Connection* c = conn_;
    conn_ = nullptr;
    c->respond(200, h, "{\"msg\":\"ok\",\"model\":\"" + http::json_escape(model_id_) + body);
}

void LoadExchange::on_rejected(const router::Rejection& why) {
    if (!conn_) return;
    http::Connection* c = conn_;
    conn_ = nullptr;
    c->respond_retryable_error(why.status, why.message, why.code, why.retry_after_s);
}

void LoadExchange::on_client_gone() {
    conn_ = nullptr;
    scheduler_.cancel(this);
}

} // namespace ls::api
