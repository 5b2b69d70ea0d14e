// GET /api/events: the original's server-sent event stream for web UIs. Frames are
// `event:message\ndata:{"type":T,"data":"<JSON as a string>"}\n\n` with types logData,
// modelStatus, uiConfig, profileChanged, activity ({"id":N}) and inflight (a snapshot, then
// upserts {"operation":"upsert","request":{…}} and removals {"operation":"remove","id":…});
// a new stream first gets the proxy and upstream log history, then the current state. A
// comment heartbeat every 15 s keeps proxies from closing it. The in-flight list is also
// GET /api/inflight, and POST /api/inflight/<id>/cancel cancels one.
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
    // Whether any event stream is open (an event for nobody need not be built).
    bool has_streams() const { return !streams_.empty(); }
    // The current model list, sent on every change and to each new stream.
    void set_model_status(std::string json);
    // The active profile changed: `profileChanged` ({"active":...}), then the model list
    // again, as the original sends them; each new stream gets the current one too.
    void set_profile(std::string active_json, std::string model_status);
    // `uiConfig` ({"activity":{"session_id":[...]}}), sent to each new stream.
    void set_ui_config(std::string json) { ui_config_ = std::move(json); }

    void on_log_line(logs::Source source, const std::string& model, std::string_view line) override;
    void on_exchange_start(const proxy::ExchangeInfo& info) override;
    void on_exchange_response(const proxy::ExchangeInfo& info, int status,
                              const http::HeaderList& headers) override;
    void on_exchange_progress(const proxy::ExchangeInfo& info, uint64_t bytes) override;
    void on_exchange_end(const proxy::ExchangeInfo& info,
                         const proxy::ExchangeResult& result) override;

    // {"operation":"snapshot","requests":[…]}, oldest first.
    std::string inflight_snapshot() const;
    // Cancels the in-flight request `id`; false when there is none.
    bool cancel(const std::string& id);

    static std::string frame(const char* type, const std::string& data_json);

private:
    friend class EventStreamExchange;
    static void on_heartbeat(struct ev_loop*, ev_timer*, int);
    static void on_progress_tick(struct ev_loop*, ev_timer*, int);
    void detach(EventStreamExchange* s);
    // One in-flight request as the original's InflightRequestEntry.
    struct Inflight {
        std::string id;
        double wall_start = 0; // unix time
        double started_at = 0; // ev_now()
        // Views into the exchange (see ExchangeInfo), valid as long as the entry: it goes when
        // the exchange ends. The client's address is worked out only when shown.
        std::string_view model, req_path, method, client;
        // Turned into the original's header maps only when someone looks (most requests end
        // unseen): the exchange's own lists, valid until it ends (and the entry with it).
        const http::HeaderList* req_headers = nullptr;
        const http::HeaderList* resp_headers = nullptr;
        uint64_t resp_bytes = 0;
        double last_emitted = 0;
        bool pending = false; // bytes not yet sent in an upsert (at most one per 250 ms)
        proxy::ProxyExchange* exchange = nullptr;
    };
    std::string entry_json(const Inflight& e) const;
    void publish_upsert(Inflight& e);

    struct ev_loop* loop_;
    logs::LogHub& hub_;
    std::vector<EventStreamExchange*> streams_;
    std::map<uint64_t, Inflight> inflight_;
    std::string model_status_ = "[]";
    std::string profile_ = "{\"active\":null}";
    std::string ui_config_ = "{}";
    TimerWatcher heartbeat_;
    TimerWatcher progress_tick_;
    static constexpr double kProgressInterval = 0.25; // the original's upsert rate per request
};

// The client's address: the first of X-Forwarded-For, else X-Real-IP, else the peer's host.
std::string client_ip(const http::HeaderList& headers, std::string_view peer);
// RFC 3339 with fractional seconds (trailing zeros dropped), UTC.
std::string format_time_nano(double unix_time);

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
