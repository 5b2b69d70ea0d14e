// Activity records: one per proxied request (model, path, status, where the time went, tokens
// and speeds), kept in a bounded ring (`metricsMaxInMemory`, default 1000) and listed by
// GET /api/metrics/activity with paging and a model filter.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "proxy/exchange_observer.h"

namespace ls::metrics {

struct ActivityRecord {
    uint64_t id = 0;
    double timestamp = 0; // unix seconds when the request arrived
    std::string model;
    std::string method;
    std::string path;
    int status = 0;
    double duration_ms = 0; // whole request
    double wait_ms = 0;     // queueing and model load before the upstream got it
    double upstream_ms = 0; // from then to the end
    uint64_t bytes = 0;
    Usage usage;
    const char* outcome = "completed"; // a static string: see proxy::ExchangeResult
};

class ActivityLog {
public:
    explicit ActivityLog(size_t capacity = 1000) : capacity_(capacity) {}
    void set_capacity(size_t capacity);
    void add(ActivityRecord record);
    size_t size() const { return records_.size(); }

    struct Query {
        std::vector<std::string> models; // empty: all
        int limit = 25;                  // 1..999
        int page = 1;                    // 1-based, newest first
    };
    // {"data":[…],"page":P,"limit":L,"total":T,"total_pages":N}
    std::string json(const Query& q) const;
    static std::string record_json(const ActivityRecord& r);

private:
    size_t capacity_;
    std::deque<ActivityRecord> records_;
};

} // namespace ls::metrics
