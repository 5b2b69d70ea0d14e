// Who wants to know about proxied requests (live events now; activity records and metrics
// later): told when a request is admitted and when it ends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ls::proxy {

// Views into the exchange's own request and model id: valid until on_exchange_end returns.
struct ExchangeInfo {
    uint64_t id = 0;
    std::string_view model;
    std::string_view method;
    std::string_view path;
    double started_at = 0; // ev_now()
};

class ExchangeObserver {
public:
    virtual ~ExchangeObserver() = default;
    virtual void on_exchange_start(const ExchangeInfo& info) = 0;
    // status 0: no response was sent (client gone); bytes: response body bytes relayed.
    virtual void on_exchange_end(const ExchangeInfo& info, int status, uint64_t bytes) = 0;
};

} // namespace ls::proxy
