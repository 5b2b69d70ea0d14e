#include "api/events.h"

#include <algorithm>

#include "http/error_body.h"

namespace ls::api {

EventBus::EventBus(struct ev_loop* loop, logs::LogHub& hub)
    : loop_(loop), hub_(hub), heartbeat_(loop, &on_heartbeat, this) {}

EventBus::~EventBus() {
    hub_.unsubscribe(this);
    for (EventStreamExchange* s : std::vector<EventStreamExchange*>(streams_)) s->on_client_gone();
}

std::string EventBus::frame(const char* type, const std::string& data_json) {
    // The original double-encodes: `data` is a JSON string holding JSON.
    std::string out = "event:message\ndata:{\"type\":\"";
    out += type;
    out += "\",\"data\":\"";
    out += http::json_escape(data_json);
    out += "\"}\n\n";
    return out;
}

void EventBus::open_stream(http::Connection& conn) {
    auto x = std::make_unique<EventStreamExchange>(*this, conn);
    EventStreamExchange* s = x.get();
    conn.attach_exchange(std::move(x));
    conn.start_stream("text/event-stream");
    std::string burst = frame("modelStatus", model_status_);
    burst += frame("uiConfig", ui_config_);
    burst += frame("profileChanged", profile_);
    std::string snapshot = "{\"operation\":\"snapshot\",\"entries\":[";
    bool first = true;
    for (const auto& [id, info] : inflight_) {
        snapshot += first ? "" : ",";
        snapshot += inflight_json("upsert", info);
        first = false;
    }
    snapshot += "]}";
    burst += frame("inflight", snapshot);
    s->send(burst);
    if (streams_.empty()) {
        hub_.subscribe(this);
        heartbeat_.start(15, 15);
    }
    streams_.push_back(s);
}

void EventBus::detach(EventStreamExchange* s) {
    streams_.erase(std::remove(streams_.begin(), streams_.end(), s), streams_.end());
    if (streams_.empty()) {
        hub_.unsubscribe(this); // no reader: no per-line work
        heartbeat_.stop();
    }
}

void EventBus::publish(const char* type, const std::string& data_json) {
    if (streams_.empty()) return;
    const std::string f = frame(type, data_json);
    for (EventStreamExchange* s : std::vector<EventStreamExchange*>(streams_)) s->send(f);
}

void EventBus::set_model_status(std::string json) {
    if (json == model_status_) return;
    model_status_ = std::move(json);
    publish("modelStatus", model_status_);
}

void EventBus::set_profile(std::string active_json, std::string model_status) {
    profile_ = std::move(active_json);
    model_status_ = std::move(model_status);
    publish("profileChanged", profile_);
    publish("modelStatus", model_status_);
}

void EventBus::on_log_line(logs::Source source, const std::string&, std::string_view line) {
    std::string data = "{\"source\":\"";
    data += source == logs::Source::Proxy ? "proxy" : "upstream";
    data += "\",\"data\":\"";
    data += http::json_escape(line);
    data += "\\n\"}";
    publish("logData", data);
}

std::string EventBus::inflight_json(const char* operation, const proxy::ExchangeInfo& info) const {
    char buf[96];
    snprintf(buf, sizeof buf, "\",\"elapsed_ms\":%.0f,\"timestamp\":%.3f}",
             (ev_now(loop_) - info.started_at) * 1000, info.started_at);
    return std::string("{\"operation\":\"") + operation + "\",\"id\":" + std::to_string(info.id) +
           ",\"model\":\"" + http::json_escape(info.model) + "\",\"method\":\"" +
           http::json_escape(info.method) + "\",\"req_path\":\"" + http::json_escape(info.path) +
           buf;
}

void EventBus::on_exchange_start(const proxy::ExchangeInfo& info) {
    inflight_[info.id] = info;
    if (!streams_.empty()) publish("inflight", inflight_json("upsert", info)); // no JSON for nobody
}

void EventBus::on_exchange_end(const proxy::ExchangeInfo& info, const proxy::ExchangeResult&) {
    inflight_.erase(info.id);
    if (!streams_.empty()) publish("inflight", inflight_json("remove", info));
}

void EventBus::on_heartbeat(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<EventBus*>(w->data);
    static const std::string kBeat = ": heartbeat\n\n";
    for (EventStreamExchange* s : std::vector<EventStreamExchange*>(self->streams_)) s->send(kBeat);
}

void EventStreamExchange::send(const std::string& frame) {
    if (!conn_) return;
    // A reader that does not keep up misses events rather than growing our memory.
    if (conn_->output_pending() > kMaxPending) return;
    conn_->write_body(frame.data(), frame.size());
}

void EventStreamExchange::on_client_gone() {
    conn_ = nullptr;
    bus_.detach(this);
}

void EventStreamExchange::on_shutdown() {
    bus_.detach(this);
    if (!conn_) return;
    http::Connection* c = conn_;
    conn_ = nullptr;
    c->end_response();
}

} // namespace ls::api
