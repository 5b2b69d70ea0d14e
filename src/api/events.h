// GET /api/events: the original's server-sent event stream for web UIs. Frames are
// `event:message\ndata:{"type":T,"data":"<JSON as a string>"}\n\n` with types modelStatus,
// profileChanged, logData and inflight; a comment heartbeat every 15 s keeps proxies from
// closing it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "http/connection.h"
#include "logs/log_hub.h"
#include "proxy/exchange_observer.h"
#include "util/ev.h"

namespace ls::api {

class EventStreamExchange;

class EventBus final : public logs::LogSubscriber, public proxy::ExchangeObserver {
public:
    EventBus(struct ev_loop* loop, logs::LogHub& hub);
    ~EventBus() override;
    EventBus(const EventBus&) = delete;
    EventBus& operator=(const EventBus&) = delete;

    // Starts an event stream on `conn` (sends the initial burst).
    void open_stream(http::Connection& conn);
    void publish(const char* type, const std::string& data_json);
    // The current model list, sent on every change and to each new stream.
    void set_model_status(std::string json);
    // The active profile changed: `profileChanged` ({"active":...}), then the model list
    // again, as the original sends them; each new stream gets the current one too.
    void set_profile(std::string active_json, std::string model_status);
    // `uiConfig` ({"activity":{"session_id":[...]}}), sent to each new stream.
    void set_ui_config(std::string json) { ui_config_ = std::move(json); }

    void on_log_line(logs::Source source, const std::string& model, std::string_view line) override;
    void on_exchange_start(const proxy::ExchangeInfo& info) override;
    void on_exchange_end(const proxy::ExchangeInfo& info,
                         const proxy::ExchangeResult& result) override;

    static std::string frame(const char* type, const std::string& data_json);

private:
    friend class EventStreamExchange;
    static void on_heartbeat(struct ev_loop*, ev_timer*, int);
    void detach(EventStreamExchange* s);
    std::string inflight_json(const char* operation, const proxy::ExchangeInfo& info) const;

    struct ev_loop* loop_;
    logs::LogHub& hub_;
    std::vector<EventStreamExchange*> streams_;
    std::map<uint64_t, proxy::ExchangeInfo> inflight_;
    std::string model_status_ = "[]";
    std::string profile_ = "{\"active\":null}";
    std::string ui_config_ = "{}";
    TimerWatcher heartbeat_;
};

class EventStreamExchange final : public http::Exchange {
public:
    EventStreamExchange(EventBus& bus, http::Connection& conn) : bus_(bus), conn_(&conn) {}
    ~EventStreamExchange() override { bus_.detach(this); }
    void send(const std::string& frame);
    void on_client_gone() override;
    void on_shutdown() override;

    static constexpr size_t kMaxPending = 256 * 1024;

private:
    EventBus& bus_;
    http::Connection* conn_;
};

} // namespace ls::api
