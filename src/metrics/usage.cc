#include "metrics/usage.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ls::metrics {

namespace {
bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t skip_space(std::string_view text, size_t i) {
    while (i < text.size() && is_space(text[i])) ++i;
    return i;
}

// One past the string that opens at text[i] ('"'), or npos. Quotes are found with memchr
// (a completion's text can be long); one after an odd run of backslashes is escaped.
size_t string_end(std::string_view text, size_t i) {
    for (++i; i < text.size();) {
        const void* q = memchr(text.data() + i, '"', text.size() - i);
        if (!q) break;
        const size_t at = static_cast<size_t>(static_cast<const char*>(q) - text.data());
        size_t backslashes = 0;
        while (at - backslashes > i && text[at - backslashes - 1] == '\\') ++backslashes;
        if (backslashes % 2 == 0) return at + 1;
        i = at + 1;
    }
    return std::string_view::npos;
}

// One past the JSON value that starts at text[i], or npos: strings and nested containers
// are skipped whole, so nothing inside them is taken for a key.
size_t value_end(std::string_view text, size_t i) {
    if (i >= text.size()) return std::string_view::npos;
    if (text[i] == '"') return string_end(text, i);
    if (text[i] != '{' && text[i] != '[') {
        while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' &&
               !is_space(text[i]))
            ++i;
        return i;
    }
    int depth = 0;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"') {
            i = string_end(text, i);
            if (i == std::string_view::npos) return i;
            --i;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return std::string_view::npos;
}

// The members of an object ("{...}"), read in one pass: a usage or timings object has a
// dozen, and each of them is looked up (rescanning the object per key cost more than the
// rest of a request). Members past kMax, and everything after malformed text, are absent.
struct Members {
    static constexpr size_t kMax = 48;
    // Plain spans, left uninitialised past n: string_views would be zeroed, all 96 of them,
    // for every object read.
    struct Span {
        const char* data;
        size_t size;
        std::string_view view() const { return {data, size}; }
    };
    Span name[kMax];
    Span value[kMax];
    size_t n = 0;
    size_t end = std::string_view::npos; // one past the closing brace; npos: not reached

    std::string_view get(std::string_view key) const {
        for (size_t k = 0; k < n; ++k)
            if (name[k].view() == key) return value[k].view();
        return {};
    }
};

// `object` starts at its '{' and may go on past its end (Members::end says where that is).
Members members_of(std::string_view object) {
    Members m;
    size_t i = skip_space(object, 1);
    if (i < object.size() && object[i] == '}') m.end = i + 1;
    while (i < object.size() && object[i] == '"' && m.n < Members::kMax) {
        const size_t key_end = string_end(object, i);
        if (key_end == std::string_view::npos) break;
        const std::string_view name = object.substr(i + 1, key_end - i - 2);
        i = skip_space(object, key_end);
        if (i >= object.size() || object[i] != ':') break;
        i = skip_space(object, i + 1);
        const size_t end = value_end(object, i);
        if (end == std::string_view::npos) break;
        m.name[m.n] = {name.data(), name.size()};
        m.value[m.n++] = {object.data() + i, end - i};
        i = skip_space(object, end);
        if (i < object.size() && object[i] == '}') m.end = i + 1;
        if (i >= object.size() || object[i] != ',') break;
        i = skip_space(object, i + 1);
    }
    return m;
}

// A JSON number member as a double; -1 when absent, not a number or negative.
double number(const Members& object, std::string_view key) {
    const std::string_view v = object.get(key);
    if (v.empty() || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) return -1;
    // Counts are plain digits: read them here (exact below 2^53, which 15 digits are).
    if (v.size() <= 15 &&
        std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        double out = 0;
        for (char c : v) out = out * 10 + (c - '0');
        return out;
    }
    // strtod on a bounded copy (the daemon keeps the C locale); std::from_chars<double>
    // would link libm in, a third of a megabyte of resident memory for two calls.
    char buf[48];
    if (v.size() >= sizeof buf) return -1;
    memcpy(buf, v.data(), v.size());
    buf[v.size()] = '\0';
    char* end = nullptr;
    const double out = strtod(buf, &end);
    // 1e999 is inf and -nan is NaN: neither is a count or a speed.
    return end == buf + v.size() && std::isfinite(out) ? out : -1;
}

// Counts beyond 2^53 (where doubles stop being exact) are not believed: converting a double
// outside long long's range is undefined, and prompt_n + cache_n must not overflow.
long long integer(const Members& object, std::string_view key) {
    const double v = number(object, key);
    return v < 0 || v > 9007199254740992.0 ? -1 : static_cast<long long>(v);
}

bool is_object(std::string_view v) {
    return v.size() >= 2 && v.front() == '{' && v.back() == '}';
}

void take(long long v, long long& into) {
    if (v >= 0) into = v;
}
void take(double v, double& into) {
    if (v >= 0) into = v;
}

void from_usage(const Members& usage, Usage& u) {
    long long p = integer(usage, "prompt_tokens");
    if (p < 0) p = integer(usage, "input_tokens");
    long long g = integer(usage, "completion_tokens");
    if (g < 0) g = integer(usage, "output_tokens");
    take(p, u.prompt_tokens);
    take(g, u.generated_tokens);
    if (p >= 0 || g >= 0) u.counts_from_usage = true;
    long long cached = integer(usage, "cache_read_input_tokens");
    for (std::string_view details : {"prompt_tokens_details", "input_tokens_details"}) {
        const std::string_view d = usage.get(details);
        if (cached < 0 && is_object(d)) cached = integer(members_of(d), "cached_tokens");
    }
    take(cached, u.cached_tokens);
}

void from_timings(std::string_view timings_text, Usage& u) {
    const Members t = members_of(timings_text);
    // prompt_n counts only what was not in the prompt cache: the total is prompt_n + cache_n.
    const long long prompt_n = integer(t, "prompt_n");
    const long long cache_n = integer(t, "cache_n");
    if (!u.counts_from_usage) {
        take(prompt_n >= 0 && cache_n > 0 ? prompt_n + cache_n : prompt_n, u.prompt_tokens);
        take(integer(t, "predicted_n"), u.generated_tokens);
    }
    take(cache_n, u.cached_tokens);
    take(number(t, "prompt_per_second"), u.prompt_per_second);
    take(number(t, "predicted_per_second"), u.tokens_per_second);
    const long long draft_n = integer(t, "draft_n");
    const long long draft_accepted = integer(t, "draft_n_accepted");
    if (draft_n >= 0 && draft_accepted >= 0) {
        u.draft_tokens = draft_n;
        u.draft_accepted = draft_accepted;
    }
}

// Where `"usage": {...}` and `"timings": {...}` objects are in a JSON text; only these small
// objects are then read, never the whole response (a chat answer, or megabytes of embedding
// numbers), and nothing is allocated. A usage object is read as it is found (its members
// walk tells where it ends); the timings after all of them (they defer to usage's counts). No walk
// over every string of the text either: the keys are found as bytes. In valid JSON the bytes
// `"usage"` can occur inside a string only as `\"usage"`, its first quote escaped (a quote that
// ends a string is followed by `:`, `,` or a bracket, never by a letter), so a match whose quote
// follows an even run of backslashes is a key.
struct ObjectSpans {
    static constexpr size_t kMax = 8;
    std::string_view timings[kMax];
    size_t n_usage = 0, n_timings = 0;
};

constexpr std::string_view kUsageKey = "\"usage\"", kTimingsKey = "\"timings\"";

// The next '"' followed by 'u' or 't' at or after `from`, or npos: 16 positions at a time
// with SSE2 (every x86-64 has it), as the response passes once per event.
size_t next_quote_u_or_t(std::string_view text, size_t from) {
    const char* p = text.data();
    const size_t n = text.size();
    size_t i = from;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), u = _mm_set1_epi8('u'), t = _mm_set1_epi8('t');
    for (; i + 17 <= n; i += 16) {
        const __m128i here = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
        const __m128i hit =
            _mm_and_si128(_mm_cmpeq_epi8(here, quote),
                          _mm_or_si128(_mm_cmpeq_epi8(next, u), _mm_cmpeq_epi8(next, t)));
        if (const int mask = _mm_movemask_epi8(hit)) return i + __builtin_ctz(mask);
    }
#endif
    for (; i + 1 < n; ++i)
        if (p[i] == '"' && (p[i + 1] == 'u' || p[i + 1] == 't')) return i;
    return std::string_view::npos;
}

// The next unescaped `"usage"` or `"timings"` at or after `from` (npos: none), and which.
size_t next_key(std::string_view text, size_t from, bool& usage) {
    for (size_t at; (at = next_quote_u_or_t(text, from)) != std::string_view::npos; from = at + 1) {
        const std::string_view rest = text.substr(at);
        usage = rest.starts_with(kUsageKey);
        if (!usage && !rest.starts_with(kTimingsKey)) continue;
        size_t backslashes = 0;
        while (at > backslashes && text[at - backslashes - 1] == '\\') ++backslashes;
        if (backslashes % 2 == 0) return at;
    }
    return std::string_view::npos;
}

ObjectSpans find_objects(std::string_view text, Usage& u) {
    ObjectSpans spans;
    bool usage = false;
    for (size_t at = next_key(text, 0, usage); at != std::string_view::npos;) {
        size_t resume = at + (usage ? kUsageKey : kTimingsKey).size();
        size_t k = skip_space(text, resume);
        if (k < text.size() && text[k] == ':') {
            k = skip_space(text, k + 1);
            if (k < text.size() && text[k] == '{') {
                size_t object_end = std::string_view::npos;
                if (usage) {
                    const Members m = members_of(text.substr(k));
                    // (past Members::kMax members the walk stops short of the end)
                    object_end = m.end != std::string_view::npos ? k + m.end : value_end(text, k);
                    if (object_end == std::string_view::npos) break; // cut short: tells nothing
                    if (spans.n_usage < ObjectSpans::kMax) {
                        ++spans.n_usage;
                        from_usage(m, u);
                    }
                } else {
                    object_end = value_end(text, k);
                    if (object_end == std::string_view::npos) break;
                    if (spans.n_timings < ObjectSpans::kMax)
                        spans.timings[spans.n_timings++] = text.substr(k, object_end - k);
                }
                resume = object_end; // inside: only counters
            }
        }
        at = next_key(text, resume, usage);
    }
    return spans;
}
} // namespace

void extract_usage(std::string_view json_text, Usage& u) {
    // A JSON document is an object or an array (SSE text, say, is not).
    const size_t first = skip_space(json_text, 0);
    if (first >= json_text.size() || (json_text[first] != '{' && json_text[first] != '[')) return;
    // `usage` of the document and of its wrappers (Responses API `response`, Anthropic
    // `message`), then llama.cpp's `timings` for the speeds (and the counts without usage).
    const ObjectSpans spans = find_objects(json_text.substr(first), u);
    for (size_t i = 0; i < spans.n_timings; ++i) from_timings(spans.timings[i], u);
}

void UsageScanner::consider(std::string_view text) {
    // One string-aware pass finds the objects (a text that mentions neither costs the same).
    extract_usage(text, usage_);
}

void UsageScanner::feed(const char* data, size_t len, bool last) {
    if (!sse_) {
        if (overflow_ || done_) return;
        if (last && pending_.empty() && len <= kMaxKept) {
            consider(std::string_view(data, len));
            done_ = true;
            return;
        }
        if (pending_.size() + len > kMaxKept) {
            overflow_ = true;
            std::string().swap(pending_);
            return;
        }
        pending_.append(data, len);
        return;
    }
    std::string_view in(data, len);
    while (!in.empty()) {
        const size_t nl = in.find('\n');
        if (nl == std::string_view::npos) {
            if (pending_.size() + in.size() <= kMaxKept)
                pending_.append(in);
            else
                overflow_ = true; // an absurd line: skip it
            return;
        }
        std::string_view line;
        if (pending_.empty() && !overflow_) {
            line = in.substr(0, nl);
        } else {
            if (!overflow_) pending_.append(in.substr(0, nl));
            line = overflow_ ? std::string_view() : std::string_view(pending_);
        }
        if (line.substr(0, 5) == "data:") {
            std::string_view payload = line.substr(5);
            while (!payload.empty() && payload.front() == ' ') payload.remove_prefix(1);
            if (payload != "[DONE]") consider(payload);
        }
        pending_.clear();
        overflow_ = false;
        in.remove_prefix(nl + 1);
    }
}

void UsageScanner::finish() {
    if (!sse_ && !overflow_ && !done_) consider(pending_);
    std::string().swap(pending_);
}

} // namespace ls::metrics
