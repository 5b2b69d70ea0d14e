// Activity records, as the original's /api/metrics/activity rows: one per metered request
// (a POST to a model route, directly or through /upstream/<model>/), with the model, path,
// status, content type, duration, tokens and speeds, and the error message of a failed one.
// Kept in a bounded ring (`metricsMaxInMemory`, default 1000); listed with the original's
// filters, sorting and paging, and summed up by /api/metrics/stats.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ls::metrics {

struct TokenMetrics {
    long long cache_tokens = -1; // -1: not reported
    long long draft_tokens = -1;
    long long draft_acc_tokens = -1;
    long long input_tokens = 0;
    long long output_tokens = 0;
    double prompt_per_second = -1;
    double tokens_per_second = -1;
};

struct ActivityRecord {
    uint64_t id = 0;    // given by ActivityLog::add: 1, 2, 3, … for the daemon's run
    long timestamp = 0; // unix seconds when the request ended (the original's ts_created)
    std::string model;
    std::string req_path;
    std::string resp_content_type;
    int resp_status_code = 0;
    TokenMetrics tokens;
    long long duration_ms = 0;
    std::string error_msg; // "" for none
    std::map<std::string, std::string> metadata;
    // As a new record, but its strings keep their room.
    void reset();
};

// A non-200 response's description, as the original's: the body's error message (error.message,
// error, message or detail; cut at 500 bytes), else "<status> <reason>".
std::string failed_error_message(int status, std::string_view body);

class ActivityLog {
public:
    explicit ActivityLog(size_t capacity = 1000) : capacity_(capacity) {}
    void set_capacity(size_t capacity);
    // Stores the record with the next id and returns that id (0 when nothing is kept).
    uint64_t add(ActivityRecord record);
    // The next record, reset, its id given, for the caller to fill in place; nullptr when
    // nothing is kept. Once the ring is full it is the oldest's storage: no frees of memory
    // long out of the cache, and no allocations for the usual model, path and content type.
    ActivityRecord* start_record();
    size_t size() const { return records_.size(); }
    const ActivityRecord* find(uint64_t id) const;

    struct Query {
        std::vector<std::string> models; // empty: all
        long start = 0, end = 0;         // inclusive unix-second bounds; 0: unbounded
        uint64_t min_id = 0, max_id = 0; // inclusive; 0: unbounded
        int limit = 25;                  // 1..999
        int page = 1;                    // 1-based
        std::string sort = "id";         // the original's sort keys
        bool ascending = false;
    };
    // The original's parameters (model repeated, start, end, min_id, max_id, limit, page,
    // sort, order) and messages; nullopt with `error` set when one is wrong.
    static std::optional<Query> parse_query(std::string_view query, std::string& error);

    using HasCapture = std::function<bool(uint64_t)>;
    // {"data":[…],"page":P,"limit":L,"total":T,"total_pages":N}
    std::string json(const Query& q, const HasCapture& has_capture = {}) const;
    // {"total_requests":…,"total_input_tokens":…,"total_output_tokens":…,
    //  "total_cache_tokens":…,"prompt_histogram":{…}|null,"gen_histogram":{…}|null}
    std::string stats_json(const std::string& model) const;
    static std::string record_json(const ActivityRecord& r, bool has_capture);

private:
    size_t capacity_;
    uint64_t next_id_ = 1;
    std::deque<ActivityRecord> records_;
};

// Histogram of speeds as the original's: Sturges' bin count held to 5..20 equal bins from
// min to max (one bin when all are equal), and linearly interpolated p50/p95/p99. "null"
// for no values.
std::string histogram_json(std::vector<double> values);
// A JSON number as Go writes a float64: integral values without a point.
std::string json_number(double v);
// RFC 3339 ("2026-01-02T15:04:05Z", "…+02:00", fractions allowed) to unix seconds.
std::optional<long> parse_rfc3339(std::string_view s);
std::string format_rfc3339(long unix_seconds); // UTC, "Z"

} // namespace ls::metrics
