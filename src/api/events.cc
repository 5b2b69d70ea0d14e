#include "api/events.h"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "http/error_body.h"
#include "http/header_display.h"
#include "metrics/activity.h"
#include "proxy/proxy_exchange.h"

namespace ls::api {

EventBus::EventBus(struct ev_loop* loop, logs::LogHub& hub)
    : loop_(loop), hub_(hub), heartbeat_(loop, &on_heartbeat, this),
      progress_tick_(loop, &on_progress_tick, this) {}

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
    // As the original: the log histories, then the models, uiConfig, the profile and what
    // is in flight.
    auto log_data = [](const char* source, const std::string& text) {
        return frame("logData", std::string("{\"source\":\"") + source + "\",\"data\":\"" +
                                    http::json_escape(text) + "\"}");
    };
    std::string burst = log_data("proxy", hub_.proxy_history());
    burst += log_data("upstream", hub_.upstream_history());
    burst += frame("modelStatus", model_status_);
    burst += frame("uiConfig", ui_config_);
    burst += frame("profileChanged", profile_);
    burst += frame("inflight", inflight_snapshot());
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

std::string format_time_nano(double unix_time) {
    const time_t secs = static_cast<time_t>(unix_time);
    long nanos = static_cast<long>((unix_time - static_cast<double>(secs)) * 1e9);
    nanos = std::clamp(nanos, 0L, 999999999L);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[48];
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    if (nanos > 0) {
        char frac[16];
        snprintf(frac, sizeof frac, ".%09ld", nanos);
        size_t len = strlen(frac);
        while (frac[len - 1] == '0') frac[--len] = '\0';
        snprintf(buf + n, sizeof buf - n, "%s", frac);
        n += len;
    }
    snprintf(buf + n, sizeof buf - n, "Z");
    return buf;
}

std::string client_ip(const http::HeaderList& headers, std::string_view peer) {
    if (const std::string* xff = headers.find("x-forwarded-for"); xff && !xff->empty())
        return std::string(http::trim(std::string_view(*xff).substr(0, xff->find(','))));
    if (const std::string* xr = headers.find("x-real-ip"); xr && !xr->empty())
        return std::string(http::trim(*xr));
    // "ip:port" or "[v6]:port"
    const size_t colon = peer.rfind(':');
    if (colon == std::string_view::npos) return std::string(peer);
    std::string_view host = peer.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    return std::string(host);
}

namespace {
std::string headers_json(const http::HeaderList* headers) {
    return headers ? http::header_map_json(http::header_map(*headers)) : "{}";
}
} // namespace

std::string EventBus::entry_json(const Inflight& e) const {
    const double elapsed = std::max(0.0, ev_now(loop_) - e.started_at);
    return "{\"id\":\"" + http::json_escape(e.id) + "\",\"timestamp\":\"" +
           format_time_nano(e.wall_start) + "\",\"model\":\"" + http::json_escape(e.model) +
           "\",\"req_path\":\"" + http::json_escape(e.req_path) + "\",\"method\":\"" +
           http::json_escape(e.method) + "\",\"req_headers\":" + headers_json(e.req_headers) +
           ",\"remote_ip\":\"" +
           http::json_escape(e.req_headers ? client_ip(*e.req_headers, e.client) : "") +
           "\",\"resp_headers\":" + headers_json(e.resp_headers) +
           ",\"resp_bytes\":" + std::to_string(e.resp_bytes) +
           ",\"elapsed_ms\":" + std::to_string(static_cast<long long>(elapsed * 1000)) + "}";
}

std::string EventBus::inflight_snapshot() const {
    std::vector<const Inflight*> all;
    for (const auto& [id, e] : inflight_) all.push_back(&e);
    std::stable_sort(all.begin(), all.end(), [](const Inflight* a, const Inflight* b) {
        return a->wall_start < b->wall_start;
    });
    std::string out = "{\"operation\":\"snapshot\",\"requests\":[";
    for (size_t i = 0; i < all.size(); ++i) out += (i ? "," : "") + entry_json(*all[i]);
    return out + "]}";
}

void EventBus::publish_upsert(Inflight& e) {
    e.last_emitted = ev_now(loop_);
    e.pending = false;
    if (!streams_.empty()) // no JSON for nobody
        publish("inflight", "{\"operation\":\"upsert\",\"request\":" + entry_json(e) + "}");
}

bool EventBus::cancel(const std::string& id) {
    for (auto& [key, e] : inflight_)
        if (e.id == id && e.exchange) {
            proxy::ProxyExchange* x = e.exchange;
            x->cancel(); // its end removes the entry
            return true;
        }
    return false;
}

void EventBus::on_exchange_start(const proxy::ExchangeInfo& info) {
    Inflight e;
    e.id = std::to_string(info.id);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    e.started_at = info.started_at;
    e.wall_start = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9 -
                   std::max(0.0, ev_now(loop_) - info.started_at);
    e.model = info.model;
    e.req_path = info.route_path;
    e.method = info.method;
    e.client = info.client;
    e.req_headers = info.req_headers;
    e.exchange = info.exchange;
    auto [it, added] = inflight_.insert_or_assign(info.id, std::move(e));
    publish_upsert(it->second);
}

void EventBus::on_exchange_response(const proxy::ExchangeInfo& info, int,
                                    const http::HeaderList& headers) {
    auto it = inflight_.find(info.id);
    if (it == inflight_.end()) return;
    it->second.resp_headers = &headers;
    publish_upsert(it->second);
}

void EventBus::on_exchange_progress(const proxy::ExchangeInfo& info, uint64_t bytes) {
    auto it = inflight_.find(info.id);
    if (it == inflight_.end()) return;
    Inflight& e = it->second;
    e.resp_bytes = bytes;
    if (streams_.empty() || e.pending) return;
    if (ev_now(loop_) - e.last_emitted >= kProgressInterval) {
        publish_upsert(e);
        return;
    }
    e.pending = true; // sent by the tick
    if (!progress_tick_.active())
        progress_tick_.start(kProgressInterval / 2, kProgressInterval / 2);
}

void EventBus::on_progress_tick(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<EventBus*>(w->data);
    bool waiting = false;
    for (auto& [id, e] : self->inflight_) {
        if (!e.pending) continue;
        if (ev_now(self->loop_) - e.last_emitted >= kProgressInterval)
            self->publish_upsert(e);
        else
            waiting = true;
    }
    if (!waiting) self->progress_tick_.stop();
}

void EventBus::on_exchange_end(const proxy::ExchangeInfo& info, const proxy::ExchangeResult&) {
    auto it = inflight_.find(info.id);
    if (it == inflight_.end()) return;
    const std::string id = it->second.id;
    inflight_.erase(it);
    if (!streams_.empty())
        publish("inflight", "{\"operation\":\"remove\",\"id\":\"" + http::json_escape(id) + "\"}");
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
