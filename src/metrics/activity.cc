#include "metrics/activity.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "http/error_body.h"
#include "http/request.h"
#include "http/status.h"
#include "util/json.h"

namespace ls::metrics {

void ActivityLog::set_capacity(size_t capacity) {
    capacity_ = capacity;
    while (records_.size() > capacity_) records_.pop_front();
}

void ActivityRecord::reset() {
    // Field by field (a fresh record assigned over it would move every string twice); the
    // size check makes a new field fail the build until it is reset here too.
    static_assert(sizeof(ActivityRecord) == 4 * sizeof(std::string) + sizeof(TokenMetrics) +
                                                sizeof(metadata) + 4 * sizeof(uint64_t),
                  "a new ActivityRecord field must be reset here");
    id = 0;
    timestamp = 0;
    model.clear();
    req_path.clear();
    resp_content_type.clear();
    resp_status_code = 0;
    tokens = TokenMetrics();
    duration_ms = 0;
    error_msg.clear();
    metadata.clear();
}

ActivityRecord* ActivityLog::start_record() {
    if (capacity_ == 0) return nullptr;
    if (records_.size() >= capacity_) {
        ActivityRecord oldest = std::move(records_.front());
        while (records_.size() >= capacity_) records_.pop_front();
        records_.push_back(std::move(oldest));
    } else {
        records_.emplace_back();
    }
    ActivityRecord& r = records_.back();
    r.reset();
    r.id = next_id_++;
    return &r;
}

uint64_t ActivityLog::add(ActivityRecord record) {
    ActivityRecord* slot = start_record();
    if (!slot) return 0;
    record.id = slot->id;
    *slot = std::move(record);
    return slot->id;
}

const ActivityRecord* ActivityLog::find(uint64_t id) const {
    // Ids ascend along the ring.
    auto it = std::lower_bound(records_.begin(), records_.end(), id,
                               [](const ActivityRecord& r, uint64_t v) { return r.id < v; });
    return it != records_.end() && it->id == id ? &*it : nullptr;
}

std::string json_number(double v) {
    if (!std::isfinite(v)) return "0";
    char buf[40];
    if (v == std::floor(v) && std::fabs(v) < 1e15) {
        snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, nullptr) != v) snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

std::string format_rfc3339(long unix_seconds) {
    const time_t t = unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::optional<long> parse_rfc3339(std::string_view s) {
    auto digits = [&](size_t at, size_t n, int& out) {
        if (at + n > s.size()) return false;
        out = 0;
        for (size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, sec;
    if (!digits(0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
        !digits(8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2, h) || s[13] != ':' ||
        !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, sec))
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return std::nullopt;
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        size_t j = i + 1;
        while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
        if (j == i + 1) return std::nullopt;
        i = j;
    }
    long offset = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!digits(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
            !digits(i + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset = (oh * 3600L + om * 60L) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    struct tm tm = {};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return static_cast<long>(timegm(&tm)) - offset;
}

std::string failed_error_message(int status, std::string_view body) {
    constexpr size_t kMaxLen = 500;
    JsonPtr doc(cJSON_ParseWithLength(body.data(), body.size()));
    if (doc) {
        const cJSON* err = cJSON_GetObjectItemCaseSensitive(doc.get(), "error");
        const cJSON* candidates[] = {
            cJSON_IsObject(err) ? cJSON_GetObjectItemCaseSensitive(err, "message") : nullptr,
            err,
            cJSON_GetObjectItemCaseSensitive(doc.get(), "message"),
            cJSON_GetObjectItemCaseSensitive(doc.get(), "detail"),
        };
        for (const cJSON* c : candidates) {
            if (!cJSON_IsString(c)) continue;
            std::string_view v = http::trim(c->valuestring);
            if (v.empty()) continue;
            std::string msg(v.substr(0, kMaxLen));
            if (v.size() > kMaxLen) msg += "...";
            return msg;
        }
    }
    const char* text = http::status_text(status);
    if (std::string_view(text) != "Unknown") return std::to_string(status) + " " + text;
    return "HTTP " + std::to_string(status);
}

namespace {
bool parse_int(const std::string& raw, long long& out) {
    if (raw.empty()) return false;
    char* end = nullptr;
    errno = 0;
    out = strtoll(raw.c_str(), &end, 10);
    return errno == 0 && end == raw.c_str() + raw.size();
}

std::string trimmed(const std::string& s) {
    return std::string(http::trim(s));
}

constexpr std::string_view kSortKeys[] = {
    "id",      "time",   "model",     "req_path", "resp_status_code", "resp_content_type",
    "cached",  "prompt", "generated", "drafted",  "prompt_speed",     "gen_speed",
    "duration"};

// The sort key's value of a record, for comparing (strings separately).
double sort_number(const ActivityRecord& r, std::string_view key) {
    if (key == "time") return static_cast<double>(r.timestamp);
    if (key == "resp_status_code") return r.resp_status_code;
    if (key == "cached") return static_cast<double>(r.tokens.cache_tokens);
    if (key == "prompt") return static_cast<double>(r.tokens.input_tokens);
    if (key == "generated") return static_cast<double>(r.tokens.output_tokens);
    if (key == "drafted") return static_cast<double>(r.tokens.draft_tokens);
    if (key == "prompt_speed") return r.tokens.prompt_per_second;
    if (key == "gen_speed") return r.tokens.tokens_per_second;
    if (key == "duration") return static_cast<double>(r.duration_ms);
    return static_cast<double>(r.id);
}

const std::string* sort_text(const ActivityRecord& r, std::string_view key) {
    if (key == "model") return &r.model;
    if (key == "req_path") return &r.req_path;
    if (key == "resp_content_type") return &r.resp_content_type;
    return nullptr;
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    if (sorted.size() == 1) return sorted[0];
    const double rank = p / 100 * static_cast<double>(sorted.size() - 1);
    const size_t lower = static_cast<size_t>(std::floor(rank));
    const size_t upper = static_cast<size_t>(std::ceil(rank));
    return sorted[lower] + (rank - static_cast<double>(lower)) * (sorted[upper] - sorted[lower]);
}
} // namespace

std::optional<ActivityLog::Query> ActivityLog::parse_query(std::string_view query,
                                                           std::string& error) {
    Query q;
    auto param = [&](const char* name) {
        std::string v;
        http::query_param(query, name, v);
        return trimmed(v);
    };
    for (std::string_view pair : [&] {
             std::vector<std::string_view> parts;
             size_t at = 0;
             while (at <= query.size()) {
                 const size_t amp = query.find('&', at);
                 parts.push_back(
                     query.substr(at, amp == std::string_view::npos ? query.npos : amp - at));
                 if (amp == std::string_view::npos) break;
                 at = amp + 1;
             }
             return parts;
         }()) {
        const size_t eq = pair.find('=');
        if (http::percent_decode(pair.substr(0, eq)) != "model" || eq == std::string_view::npos)
            continue;
        const std::string model = trimmed(http::percent_decode(pair.substr(eq + 1)));
        if (!model.empty()) q.models.push_back(model);
    }
    for (const char* name : {"start", "end"}) {
        const std::string raw = param(name);
        if (raw.empty()) continue;
        const auto t = parse_rfc3339(raw);
        if (!t) {
            error = std::string("invalid '") + name + "' timestamp, use RFC3339 format";
            return std::nullopt;
        }
        (std::string_view(name) == "start" ? q.start : q.end) = *t;
    }
    if (q.start && q.end && q.start > q.end) {
        error = "start must be before end";
        return std::nullopt;
    }
    for (const char* name : {"min_id", "max_id"}) {
        const std::string raw = param(name);
        if (raw.empty()) continue;
        long long v;
        if (!parse_int(raw, v) || v < 1) {
            error = std::string(name) + " must be >= 1";
            return std::nullopt;
        }
        (std::string_view(name) == "min_id" ? q.min_id : q.max_id) = static_cast<uint64_t>(v);
    }
    if (q.min_id && q.max_id && q.min_id > q.max_id) {
        error = "min_id must be <= max_id";
        return std::nullopt;
    }
    if (const std::string raw = param("limit"); !raw.empty()) {
        long long v;
        if (!parse_int(raw, v)) {
            error = "invalid limit";
            return std::nullopt;
        }
        if (v < 1 || v > 999) {
            error = "limit must be between 1 and 999";
            return std::nullopt;
        }
        q.limit = static_cast<int>(v);
    }
    if (const std::string raw = param("page"); !raw.empty()) {
        long long v;
        if (!parse_int(raw, v) || v < 1 || v > 1000000000) {
            error = "page must be >= 1";
            return std::nullopt;
        }
        q.page = static_cast<int>(v);
    }
    if (const std::string raw = param("sort"); !raw.empty()) {
        if (std::find(std::begin(kSortKeys), std::end(kSortKeys), raw) == std::end(kSortKeys)) {
            error = "invalid sort column";
            return std::nullopt;
        }
        q.sort = raw;
    }
    if (std::string raw = param("order"); !raw.empty()) {
        for (char& c : raw) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
        if (raw != "asc" && raw != "desc") {
            error = "order must be asc or desc";
            return std::nullopt;
        }
        q.ascending = raw == "asc";
    }
    return q;
}

std::string ActivityLog::record_json(const ActivityRecord& r, bool has_capture) {
    const TokenMetrics& t = r.tokens;
    std::string out = "{\"id\":" + std::to_string(r.id) + ",\"timestamp\":\"" +
                      format_rfc3339(r.timestamp) + "\",\"model\":\"" + http::json_escape(r.model) +
                      "\",\"req_path\":\"" + http::json_escape(r.req_path) +
                      "\",\"resp_content_type\":\"" + http::json_escape(r.resp_content_type) +
                      "\",\"resp_status_code\":" + std::to_string(r.resp_status_code) +
                      ",\"tokens\":{\"cache_tokens\":" + std::to_string(t.cache_tokens) +
                      ",\"draft_tokens\":" + std::to_string(t.draft_tokens) +
                      ",\"draft_acc_tokens\":" + std::to_string(t.draft_acc_tokens) +
                      ",\"input_tokens\":" + std::to_string(t.input_tokens) +
                      ",\"output_tokens\":" + std::to_string(t.output_tokens) +
                      ",\"prompt_per_second\":" + json_number(t.prompt_per_second) +
                      ",\"tokens_per_second\":" + json_number(t.tokens_per_second) +
                      "},\"duration_ms\":" + std::to_string(r.duration_ms) +
                      ",\"has_capture\":" + (has_capture ? "true" : "false");
    if (!r.error_msg.empty()) out += ",\"error_msg\":\"" + http::json_escape(r.error_msg) + "\"";
    if (!r.metadata.empty()) {
        out += ",\"metadata\":{";
        bool first = true;
        for (const auto& [k, v] : r.metadata) {
            out += first ? "\"" : ",\"";
            out += http::json_escape(k) + "\":\"" + http::json_escape(v) + "\"";
            first = false;
        }
        out += "}";
    }
    out += "}";
    return out;
}

std::string ActivityLog::json(const Query& q, const HasCapture& has_capture) const {
    const int limit = std::clamp(q.limit, 1, 999);
    const int page = std::max(q.page, 1);
    std::vector<const ActivityRecord*> matching;
    for (const ActivityRecord& r : records_) {
        if (!q.models.empty() &&
            std::find(q.models.begin(), q.models.end(), r.model) == q.models.end())
            continue;
        if ((q.start && r.timestamp < q.start) || (q.end && r.timestamp > q.end)) continue;
        if ((q.min_id && r.id < q.min_id) || (q.max_id && r.id > q.max_id)) continue;
        matching.push_back(&r);
    }
    const std::string_view key = q.sort;
    const bool asc = q.ascending;
    std::stable_sort(matching.begin(), matching.end(),
                     [&](const ActivityRecord* a, const ActivityRecord* b) {
                         int c = 0;
                         if (const std::string* ta = sort_text(*a, key)) {
                             c = ta->compare(*sort_text(*b, key));
                         } else {
                             const double na = sort_number(*a, key), nb = sort_number(*b, key);
                             c = na < nb ? -1 : na > nb ? 1 : 0;
                         }
                         if (c == 0) c = a->id < b->id ? -1 : a->id > b->id ? 1 : 0;
                         return asc ? c < 0 : c > 0;
                     });
    const size_t total = matching.size();
    const size_t first = static_cast<size_t>(page - 1) * static_cast<size_t>(limit);
    std::string out = "{\"data\":[";
    for (size_t i = first; i < total && i < first + static_cast<size_t>(limit); ++i) {
        if (i > first) out += ",";
        out += record_json(*matching[i], has_capture && has_capture(matching[i]->id));
    }
    const size_t pages = (total + static_cast<size_t>(limit) - 1) / static_cast<size_t>(limit);
    out += "],\"page\":" + std::to_string(page) + ",\"limit\":" + std::to_string(limit) +
           ",\"total\":" + std::to_string(total) + ",\"total_pages\":" + std::to_string(pages) +
           "}\n";
    return out;
}

std::string histogram_json(std::vector<double> values) {
    if (values.empty()) return "null";
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const double lo = sorted.front(), hi = sorted.back();
    const std::string pct = ",\"p50\":" + json_number(percentile(sorted, 50)) +
                            ",\"p95\":" + json_number(percentile(sorted, 95)) +
                            ",\"p99\":" + json_number(percentile(sorted, 99)) + "}";
    if (lo == hi)
        return "{\"bins\":[" + std::to_string(values.size()) + "],\"min\":" + json_number(lo) +
               ",\"max\":" + json_number(hi) + ",\"binSize\":0" + pct;
    int sturges = 1; // ceil(log2(n)) + 1
    while ((size_t{1} << (sturges - 1)) < values.size()) ++sturges;
    const int count = std::min(20, std::max(5, sturges));
    const double size = (hi - lo) / count;
    std::vector<long> bins(static_cast<size_t>(count), 0);
    for (double v : values)
        bins[static_cast<size_t>(
            std::min(static_cast<int>(std::floor((v - lo) / size)), count - 1))]++;
    std::string out = "{\"bins\":[";
    for (size_t i = 0; i < bins.size(); ++i) out += (i ? "," : "") + std::to_string(bins[i]);
    out += "],\"min\":" + json_number(lo) + ",\"max\":" + json_number(hi) +
           ",\"binSize\":" + json_number(size) + pct;
    return out;
}

std::string ActivityLog::stats_json(const std::string& model) const {
    long long requests = 0, input = 0, output = 0, cached = 0;
    std::vector<double> prompt, gen;
    for (const ActivityRecord& r : records_) {
        if (!model.empty() && r.model != model) continue;
        ++requests;
        input += r.tokens.input_tokens;
        output += r.tokens.output_tokens;
        if (r.tokens.cache_tokens > 0) cached += r.tokens.cache_tokens;
        if (r.tokens.prompt_per_second > 0) prompt.push_back(r.tokens.prompt_per_second);
        if (r.tokens.tokens_per_second > 0) gen.push_back(r.tokens.tokens_per_second);
    }
    return "{\"total_requests\":" + std::to_string(requests) +
           ",\"total_input_tokens\":" + std::to_string(input) +
           ",\"total_output_tokens\":" + std::to_string(output) +
           ",\"total_cache_tokens\":" + std::to_string(cached) +
           ",\"prompt_histogram\":" + histogram_json(std::move(prompt)) +
           ",\"gen_histogram\":" + histogram_json(std::move(gen)) + "}\n";
}

} // namespace ls::metrics
