// Who wants to know about proxied requests (live events, activity records, metrics): told
// when a request is admitted, when its response head and bytes pass, and when it ends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/headers.h"
#include "http/packed_headers.h"
#include "metrics/usage.h"

namespace ls::proxy {

class ProxyExchange;

// Views into the exchange's own request and model id: valid until on_exchange_end returns.
struct ExchangeInfo {
    uint64_t id = 0;
    std::string_view model;
    std::string_view method;
    std::string_view path;
    double started_at = 0; // ev_now()
    // The path the route dispatches by: the client's path for a model route, the path after
    // /upstream/<model> for a passthrough.
    std::string_view route_path;
    // As the original: shown in flight (model routes; /upstream to a model route's path) and
    // recorded in the activity log (POST to a model route's path, directly or via /upstream).
    bool in_flight = false;
    bool metered = false;
    std::string_view selector; // the selector the request came through, if any
    std::string_view client;   // the client's address ("ip:port")
    const http::HeaderList* req_headers = nullptr;
    ProxyExchange* exchange = nullptr; // for a cancel
};

struct ExchangeResult {
    int status = 0;        // what the client got; 0: nothing (client gone first)
    uint64_t bytes = 0;    // response body bytes relayed
    double granted_at = 0; // when the model was ready for it (0: never)
    double ended_at = 0;
    metrics::Usage usage; // from the response's usage/timings, -1 where unknown
    // How it ended: "completed" (the upstream's whole response reached the client),
    // "client_closed" (the client left first), "upstream_failed" (cut mid-response, or no
    // response: the 502/504 is ours), "refused" (answered by the scheduler: 429, 503) or
    // "cancelled" (POST /api/inflight/<id>/cancel).
    const char* outcome = "completed";
    // When the first body byte of the upstream's 2xx response reached the client (0: none).
    double first_byte_at = 0;
    // Why the upstream side failed it (null: it did not): start_failed, resolve_failed,
    // connect_failed, connect_timeout, tls_failed, send_failed, response_timeout, no_response
    // (closed before a response head), bad_response, cut_mid_stream.
    const char* failure = nullptr;
    std::string content_type; // of the response the client got
    std::string error_body;   // a non-200 response's body (its first 16 KiB), or our message
    // For a capture (ProxyOptions::capture_limit): the request's headers and body as the
    // client sent them (nullopt: not kept, or a spooled body longer than the limit), the
    // response head the client got, and a 200 response's whole body (nullopt: not kept, or
    // longer than the limit).
    // (mutable: an observer may take them rather than copy them)
    mutable http::PackedHeaders capture_req_headers;
    mutable std::optional<std::string> capture_req_body;
    mutable http::PackedHeaders capture_headers;
    mutable std::optional<std::string> capture_body;
};

class ExchangeObserver {
public:
    virtual ~ExchangeObserver() = default;
    virtual void on_exchange_start(const ExchangeInfo& info) = 0;
    // The response head the client gets (after the hop-by-hop headers are gone): the
    // exchange's own list, valid until it ends.
    virtual void on_exchange_response(const ExchangeInfo&, int /*status*/,
                                      const http::HeaderList& /*headers*/) {}
    // Body bytes relayed so far.
    virtual void on_exchange_progress(const ExchangeInfo&, uint64_t /*bytes*/) {}
    virtual void on_exchange_end(const ExchangeInfo& info, const ExchangeResult& result) = 0;
};

} // namespace ls::proxy
