// Who wants to know about proxied requests (live events, activity records, metrics): told
// when a request is admitted and when it ends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/usage.h"

namespace ls::proxy {

// Views into the exchange's own request and model id: valid until on_exchange_end returns.
struct ExchangeInfo {
    uint64_t id = 0;
    std::string_view model;
    std::string_view method;
    std::string_view path;
    double started_at = 0; // ev_now()
};

struct ExchangeResult {
    int status = 0;        // what the client got; 0: nothing (client gone first)
    uint64_t bytes = 0;    // response body bytes relayed
    double granted_at = 0; // when the model was ready for it (0: never)
    double ended_at = 0;
    metrics::Usage usage; // from the response's usage/timings, -1 where unknown
    // How it ended: "completed" (the upstream's whole response reached the client),
    // "client_closed" (the client left first), "upstream_failed" (cut mid-response, or no
    // response: the 502/504 is ours) or "refused" (answered by the scheduler: 429, 503).
    const char* outcome = "completed";
};

class ExchangeObserver {
public:
    virtual ~ExchangeObserver() = default;
    virtual void on_exchange_start(const ExchangeInfo& info) = 0;
    virtual void on_exchange_end(const ExchangeInfo& info, const ExchangeResult& result) = 0;
};

} // namespace ls::proxy
