#include "metrics/usage.h"

#include <cjson/cJSON.h>
#include <cstring>
#include <memory>

namespace ls::metrics {

namespace {
struct JsonDeleter {
    void operator()(cJSON* j) const { cJSON_Delete(j); }
};

bool mentions(std::string_view text, std::string_view word) {
    return text.find(word) != std::string_view::npos;
}

long long integer(const cJSON* obj, const char* key) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? static_cast<long long>(v->valuedouble) : -1;
}

double number(const cJSON* obj, const char* key) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

void take(long long v, long long& into) {
    if (v >= 0) into = v;
}
void take(double v, double& into) {
    if (v >= 0) into = v;
}

void from_usage(const cJSON* usage, Usage& u) {
    if (!cJSON_IsObject(usage)) return;
    long long p = integer(usage, "prompt_tokens");
    if (p < 0) p = integer(usage, "input_tokens");
    long long g = integer(usage, "completion_tokens");
    if (g < 0) g = integer(usage, "output_tokens");
    take(p, u.prompt_tokens);
    take(g, u.generated_tokens);
    long long cached = integer(usage, "cache_read_input_tokens");
    for (const char* details : {"prompt_tokens_details", "input_tokens_details"}) {
        const cJSON* d = cJSON_GetObjectItemCaseSensitive(usage, details);
        if (cached < 0 && cJSON_IsObject(d)) cached = integer(d, "cached_tokens");
    }
    take(cached, u.cached_tokens);
}

void from_timings(const cJSON* t, Usage& u) {
    if (!cJSON_IsObject(t)) return;
    // llama.cpp's own counts win over `usage`: they are what the server measured.
    take(integer(t, "prompt_n"), u.prompt_tokens);
    take(integer(t, "predicted_n"), u.generated_tokens);
    take(integer(t, "cache_n"), u.cached_tokens);
    take(number(t, "prompt_per_second"), u.prompt_per_second);
    take(number(t, "predicted_per_second"), u.tokens_per_second);
}

void from_document(const cJSON* root, Usage& u) {
    if (cJSON_IsArray(root)) { // /infill answers a list: the last element has the timings
        const cJSON* last = nullptr;
        for (const cJSON* it = root->child; it; it = it->next) last = it;
        if (last) from_document(last, u);
        return;
    }
    if (!cJSON_IsObject(root)) return;
    from_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), u);
    for (const char* wrapper : {"response", "message"}) { // Responses API, Anthropic
        const cJSON* w = cJSON_GetObjectItemCaseSensitive(root, wrapper);
        if (cJSON_IsObject(w)) from_usage(cJSON_GetObjectItemCaseSensitive(w, "usage"), u);
    }
    from_timings(cJSON_GetObjectItemCaseSensitive(root, "timings"), u);
}
} // namespace

void extract_usage(std::string_view json_text, Usage& u) {
    std::unique_ptr<cJSON, JsonDeleter> root(
        cJSON_ParseWithLength(json_text.data(), json_text.size()));
    if (root) from_document(root.get(), u);
}

void UsageScanner::consider(std::string_view text) {
    if (mentions(text, "usage") || mentions(text, "timings")) extract_usage(text, usage_);
}

void UsageScanner::feed(const char* data, size_t len) {
    if (!sse_) {
        if (overflow_) return;
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
    if (!sse_ && !overflow_) consider(pending_);
    std::string().swap(pending_);
}

} // namespace ls::metrics
