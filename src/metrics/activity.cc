#include "metrics/activity.h"

#include <algorithm>
#include <cstdio>

#include "http/error_body.h"

namespace ls::metrics {

void ActivityLog::set_capacity(size_t capacity) {
    capacity_ = capacity;
    while (records_.size() > capacity_) records_.pop_front();
}

void ActivityLog::add(ActivityRecord record) {
    if (capacity_ == 0) return;
    records_.push_back(std::move(record));
    while (records_.size() > capacity_) records_.pop_front();
}

namespace {
void add_number(std::string& out, const char* key, double v, bool integral) {
    char buf[64];
    if (v < 0)
        snprintf(buf, sizeof buf, ",\"%s\":-1", key);
    else if (integral)
        snprintf(buf, sizeof buf, ",\"%s\":%.0f", key, v);
    else
        snprintf(buf, sizeof buf, ",\"%s\":%.3f", key, v);
    out += buf;
}
} // namespace

std::string ActivityLog::record_json(const ActivityRecord& r) {
    std::string out = "{\"id\":" + std::to_string(r.id);
    char ts[48];
    snprintf(ts, sizeof ts, ",\"timestamp\":%.3f", r.timestamp);
    out += ts;
    out += ",\"model\":\"" + http::json_escape(r.model) + "\",\"method\":\"" +
           http::json_escape(r.method) + "\",\"path\":\"" + http::json_escape(r.path) +
           "\",\"status\":" + std::to_string(r.status) + ",\"outcome\":\"" + r.outcome + "\"";
    add_number(out, "duration_ms", r.duration_ms, false);
    add_number(out, "wait_ms", r.wait_ms, false);
    add_number(out, "upstream_ms", r.upstream_ms, false);
    add_number(out, "bytes", static_cast<double>(r.bytes), true);
    add_number(out, "prompt_tokens", static_cast<double>(r.usage.prompt_tokens), true);
    add_number(out, "generated_tokens", static_cast<double>(r.usage.generated_tokens), true);
    add_number(out, "cached_tokens", static_cast<double>(r.usage.cached_tokens), true);
    add_number(out, "prompt_per_second", r.usage.prompt_per_second, false);
    add_number(out, "tokens_per_second", r.usage.tokens_per_second, false);
    out += "}";
    return out;
}

std::string ActivityLog::json(const Query& q) const {
    const int limit = std::clamp(q.limit, 1, 999);
    const int page = std::max(q.page, 1);
    std::vector<const ActivityRecord*> matching;
    for (auto it = records_.rbegin(); it != records_.rend(); ++it) // newest first
        if (q.models.empty() ||
            std::find(q.models.begin(), q.models.end(), it->model) != q.models.end())
            matching.push_back(&*it);
    const size_t total = matching.size();
    const size_t first = static_cast<size_t>(page - 1) * static_cast<size_t>(limit);
    std::string out = "{\"data\":[";
    for (size_t i = first; i < total && i < first + static_cast<size_t>(limit); ++i) {
        if (i > first) out += ",";
        out += record_json(*matching[i]);
    }
    const size_t pages = (total + static_cast<size_t>(limit) - 1) / static_cast<size_t>(limit);
    out += "],\"page\":" + std::to_string(page) + ",\"limit\":" + std::to_string(limit) +
           ",\"total\":" + std::to_string(total) + ",\"total_pages\":" + std::to_string(pages) +
           "}\n";
    return out;
}

} // namespace ls::metrics
