// Metrics: UsageScanner (JSON bodies and SSE, any chunking), the ActivityLog ring and its JSON
// listing, Prometheus label escaping, histogram buckets, the build and process_* figures, the
// first-byte histogram and failure causes, and the host and GPU gauges.
#include <criterion/criterion.h>

#include <cjson/cJSON.h>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <ev.h>

#include "build_config.h"
#include "metrics/activity.h"
#include "metrics/prometheus.h"
#include "metrics/usage.h"

using namespace ls::metrics;

namespace {
Usage scan(const std::string& text, bool sse) {
    UsageScanner s(sse);
    s.feed(text.data(), text.size());
    s.finish();
    return s.usage();
}

Usage scan_chunks(const std::string& text, bool sse, std::mt19937& rng, size_t max_chunk) {
    UsageScanner s(sse);
    size_t i = 0;
    while (i < text.size()) {
        size_t n = std::uniform_int_distribution<size_t>(1, max_chunk)(rng);
        if (n > text.size() - i) n = text.size() - i;
        s.feed(text.data() + i, n, i + n == text.size()); // as the proxy says the last piece
        i += n;
    }
    s.finish();
    return s.usage();
}

void assert_same(const Usage& a, const Usage& b) {
    cr_assert_eq(a.prompt_tokens, b.prompt_tokens);
    cr_assert_eq(a.generated_tokens, b.generated_tokens);
    cr_assert_eq(a.cached_tokens, b.cached_tokens);
    cr_assert_float_eq(a.prompt_per_second, b.prompt_per_second, 1e-9);
    cr_assert_float_eq(a.tokens_per_second, b.tokens_per_second, 1e-9);
}

void assert_unknown(const Usage& u) {
    cr_assert_eq(u.prompt_tokens, -1);
    cr_assert_eq(u.generated_tokens, -1);
    cr_assert_eq(u.cached_tokens, -1);
    cr_assert_float_eq(u.prompt_per_second, -1, 1e-9);
    cr_assert_float_eq(u.tokens_per_second, -1, 1e-9);
}

const std::string kOpenAiSse =
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\r\n\r\n"
    ": keep-alive comment mentioning usage\n\n"
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
    "\"completion_tokens\":22,\"total_tokens\":33,"
    "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n"
    "data: [DONE]\n\n";

const std::string kAnthropicSse =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":"
    "25,\"output_tokens\":1,\"cache_read_input_tokens\":3}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":"
    "\"x\"}}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    "\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";
} // namespace

// ------------------------------------------------------------------ UsageScanner: JSON

Test(usage, json_chat_usage) {
    Usage u = scan("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
                   "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,"
                   "\"total_tokens\":46}}",
                   false);
    cr_assert_eq(u.prompt_tokens, 12);
    cr_assert_eq(u.generated_tokens, 34);
    cr_assert_eq(u.cached_tokens, -1);
    cr_assert_float_eq(u.prompt_per_second, -1, 1e-9);
    cr_assert_float_eq(u.tokens_per_second, -1, 1e-9);
}

// The client is charged `usage`; llama.cpp's timings.prompt_n leaves out the prompt tokens
// served from its cache (1 of a 29-token prompt sent again), so `usage` wins the counts and
// timings give the cache and the speeds.
Test(usage, json_usage_counts_win_timings_give_cache_and_speeds) {
    Usage u = scan("{\"usage\":{\"prompt_tokens\":29,\"completion_tokens\":34},"
                   "\"timings\":{\"prompt_n\":1,\"predicted_n\":34,\"cache_n\":28,"
                   "\"prompt_per_second\":123.5,\"predicted_per_second\":45.25}}",
                   false);
    cr_assert_eq(u.prompt_tokens, 29);
    cr_assert_eq(u.generated_tokens, 34);
    cr_assert_eq(u.cached_tokens, 28);
    cr_assert_float_eq(u.prompt_per_second, 123.5, 1e-9);
    cr_assert_float_eq(u.tokens_per_second, 45.25, 1e-9);
    // Key order does not matter: timings before usage do not win either.
    Usage v = scan("{\"timings\":{\"prompt_n\":1,\"predicted_n\":30,\"cache_n\":28},"
                   "\"usage\":{\"prompt_tokens\":29,\"completion_tokens\":30}}",
                   false);
    cr_assert_eq(v.prompt_tokens, 29);
    cr_assert_eq(v.generated_tokens, 30);
    cr_assert_eq(v.cached_tokens, 28);
}

Test(usage, json_timings_alone_count_the_cached_prompt_too) {
    Usage u = scan("{\"timings\":{\"prompt_n\":1,\"predicted_n\":5,\"cache_n\":28}}", false);
    cr_assert_eq(u.prompt_tokens, 29);
    cr_assert_eq(u.generated_tokens, 5);
    cr_assert_eq(u.cached_tokens, 28);
    // Older servers: no cache_n.
    Usage old = scan("{\"timings\":{\"prompt_n\":7,\"predicted_n\":5}}", false);
    cr_assert_eq(old.prompt_tokens, 7);
    cr_assert_eq(old.cached_tokens, -1);
}

Test(usage, json_responses_api) {
    Usage u = scan("{\"response\":{\"usage\":{\"input_tokens\":5,\"output_tokens\":7,"
                   "\"input_tokens_details\":{\"cached_tokens\":2}}}}",
                   false);
    cr_assert_eq(u.prompt_tokens, 5);
    cr_assert_eq(u.generated_tokens, 7);
    cr_assert_eq(u.cached_tokens, 2);
}

Test(usage, json_anthropic_message) {
    Usage u = scan("{\"type\":\"message\",\"usage\":{\"input_tokens\":8,\"output_tokens\":9,"
                   "\"cache_read_input_tokens\":6}}",
                   false);
    cr_assert_eq(u.prompt_tokens, 8);
    cr_assert_eq(u.generated_tokens, 9);
    cr_assert_eq(u.cached_tokens, 6);
}

Test(usage, json_infill_array_uses_last) {
    Usage u = scan("[{\"content\":\"a\",\"timings\":{\"prompt_n\":1,\"predicted_n\":2}},"
                   "{\"content\":\"b\",\"timings\":{\"prompt_n\":3,\"predicted_n\":4,"
                   "\"predicted_per_second\":9.5}}]",
                   false);
    cr_assert_eq(u.prompt_tokens, 3);
    cr_assert_eq(u.generated_tokens, 4);
    cr_assert_float_eq(u.tokens_per_second, 9.5, 1e-9);
}

Test(usage, json_without_usage_is_unknown) {
    assert_unknown(scan("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}]}", false));
    assert_unknown(scan("", false));
    assert_unknown(scan("not json at all, usage", false));
    assert_unknown(scan("{\"usage\":\"a string\",\"timings\":[1,2]}", false));
    assert_unknown(scan(kOpenAiSse, false)); // SSE text read as JSON: not a document
}

Test(usage, only_real_usage_objects_count) {
    // Keys inside strings (escaped quotes included) are text, not counters.
    Usage u = scan("{\"choices\":[{\"message\":{\"content\":\"say \\\"usage\\\": "
                   "{\\\"prompt_tokens\\\": 99} \\\\\"}}],"
                   "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}",
                   false);
    cr_assert_eq(u.prompt_tokens, 3);
    cr_assert_eq(u.generated_tokens, 4);
    // A wrapper's usage (Responses API) with strings and arrays around it.
    u = scan("{\"response\":{\"output\":[{\"content\":[{\"text\":\"}{]\"}]}],"
             "\"usage\" : {\"input_tokens\":7,\"output_tokens\":8,"
             "\"input_tokens_details\":{\"cached_tokens\":5}}}}",
             false);
    cr_assert_eq(u.prompt_tokens, 7);
    cr_assert_eq(u.generated_tokens, 8);
    cr_assert_eq(u.cached_tokens, 5);
    // A key that ends in an escaped quote and "usage" (the key `x "usage`): the bytes
    // `"usage"` and an object after them, but their quote is escaped; a run of escaped
    // backslashes before a real key is not.
    u = scan("{\"a\":\"y\\\\\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6},"
             "\"x \\\"usage\":{\"prompt_tokens\":9}}",
             false);
    cr_assert_eq(u.prompt_tokens, 5);
    cr_assert_eq(u.generated_tokens, 6);
    // A "timings" key inside the usage object found first is not read as llama.cpp's.
    u = scan("{\"usage\":{\"prompt_tokens\":1,\"x\":{\"timings\":{\"prompt_n\":50}}},"
             "\"timings\":{\"predicted_per_second\":2.5}}",
             false);
    cr_assert_eq(u.prompt_tokens, 1);
    cr_assert(u.tokens_per_second == 2.5);
    // A document cut inside its usage object tells nothing.
    assert_unknown(scan("{\"usage\":{\"prompt_tokens\":3,\"completion_tok", false));
}

Test(usage, json_chunked_same_as_whole) {
    const std::string body =
        "{\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34},"
        "\"timings\":{\"prompt_n\":10,\"predicted_n\":30,\"prompt_per_second\":1.5}}";
    std::mt19937 rng(7);
    Usage whole = scan(body, false);
    for (int i = 0; i < 20; ++i) assert_same(scan_chunks(body, false, rng, 5), whole);
}

Test(usage, json_in_one_last_piece_is_read_in_place) {
    // The proxy marks a Content-Length body's last piece: a body in one piece is read where
    // it is (not kept first), with the same result, and read once.
    const std::string body =
        "{\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,"
        "\"prompt_tokens_details\":{\"cached_tokens\":5}},"
        "\"timings\":{\"prompt_n\":10,\"predicted_n\":30,\"prompt_per_second\":1.5}}";
    UsageScanner s(false);
    s.feed(body.data(), body.size(), true);
    s.feed("garbage after the end", 21); // (llhttp passes nothing after the last piece)
    s.finish();
    assert_same(s.usage(), scan(body, false));
    cr_assert_eq(s.usage().cached_tokens, 5);
    // Over the limit, one piece or not, nothing is read.
    std::string big = "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"pad\":\"";
    big.append(UsageScanner::kMaxKept, 'x');
    big += "\"}";
    UsageScanner t(false);
    t.feed(big.data(), big.size(), true);
    t.finish();
    assert_unknown(t.usage());
}

Test(usage, json_larger_than_kept_is_ignored) {
    std::string body = "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"pad\":\"";
    body.append(UsageScanner::kMaxKept, 'x');
    body += "\"}";
    assert_unknown(scan(body, false));
    std::mt19937 rng(1);
    assert_unknown(scan_chunks(body, false, rng, 70000));
    // Exactly at the limit is still parsed.
    std::string fit = "{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"pad\":\"";
    fit.append(UsageScanner::kMaxKept - fit.size() - 2, 'x');
    fit += "\"}";
    cr_assert_eq(fit.size(), UsageScanner::kMaxKept);
    cr_assert_eq(scan(fit, false).generated_tokens, 2);
}

// ------------------------------------------------------------------ UsageScanner: SSE

Test(usage, sse_openai_final_usage_chunk) {
    Usage u = scan(kOpenAiSse, true);
    cr_assert_eq(u.prompt_tokens, 11);
    cr_assert_eq(u.generated_tokens, 22);
    cr_assert_eq(u.cached_tokens, 4);
}

Test(usage, sse_llama_timings_in_last_chunk) {
    const std::string s =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4},"
        "\"timings\":{\"prompt_n\":2,\"predicted_n\":4,\"cache_n\":1,"
        "\"prompt_per_second\":50,\"predicted_per_second\":20}}\n\n"
        "data: [DONE]\n\n";
    Usage u = scan(s, true);
    cr_assert_eq(u.prompt_tokens, 3);
    cr_assert_eq(u.generated_tokens, 4);
    cr_assert_eq(u.cached_tokens, 1);
    cr_assert_float_eq(u.prompt_per_second, 50, 1e-9);
    cr_assert_float_eq(u.tokens_per_second, 20, 1e-9);
}

Test(usage, sse_timings_per_token_then_usage) {
    // timings_per_token: every chunk has timings, the last one usage too.
    const std::string s =
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],"
        "\"timings\":{\"prompt_n\":1,\"cache_n\":28,\"predicted_n\":1}}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}],"
        "\"timings\":{\"prompt_n\":1,\"cache_n\":28,\"predicted_n\":2}}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":29,\"completion_tokens\":2,"
        "\"prompt_tokens_details\":{\"cached_tokens\":28}},"
        "\"timings\":{\"prompt_n\":1,\"cache_n\":28,\"predicted_n\":2,"
        "\"predicted_per_second\":20}}\n\n"
        "data: [DONE]\n\n";
    Usage u = scan(s, true);
    cr_assert_eq(u.prompt_tokens, 29);
    cr_assert_eq(u.generated_tokens, 2);
    cr_assert_eq(u.cached_tokens, 28);
    cr_assert_float_eq(u.tokens_per_second, 20, 1e-9);
}

Test(usage, sse_anthropic_start_and_delta) {
    Usage u = scan(kAnthropicSse, true);
    cr_assert_eq(u.prompt_tokens, 25);
    cr_assert_eq(u.generated_tokens, 15); // message_delta's final count replaces the 1
    cr_assert_eq(u.cached_tokens, 3);
}

Test(usage, sse_data_without_space) {
    Usage u = scan("data:{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n", true);
    cr_assert_eq(u.prompt_tokens, 1);
    cr_assert_eq(u.generated_tokens, 2);
}

Test(usage, sse_byte_by_byte_and_random_chunks) {
    for (const std::string* s : {&kOpenAiSse, &kAnthropicSse}) {
        Usage whole = scan(*s, true);
        cr_assert_neq(whole.prompt_tokens, -1);
        UsageScanner bytes(true);
        for (char c : *s) bytes.feed(&c, 1);
        bytes.finish();
        assert_same(bytes.usage(), whole);
        std::mt19937 rng(42);
        for (int i = 0; i < 50; ++i) assert_same(scan_chunks(*s, true, rng, 17), whole);
    }
}

Test(usage, sse_line_split_across_feeds) {
    UsageScanner s(true);
    const std::string a = "data: {\"usage\":{\"prompt_tok";
    const std::string b = "ens\":7,\"completion_tokens\":";
    const std::string c = "8}}\n\ndata: [DONE]\n\n";
    s.feed(a.data(), a.size());
    cr_assert_eq(s.usage().prompt_tokens, -1);
    s.feed(b.data(), b.size());
    cr_assert_eq(s.usage().prompt_tokens, -1);
    s.feed(c.data(), c.size());
    cr_assert_eq(s.usage().prompt_tokens, 7);
    cr_assert_eq(s.usage().generated_tokens, 8);
    s.finish();
    cr_assert_eq(s.usage().generated_tokens, 8);
}

Test(usage, sse_overlong_line_skipped_next_line_read) {
    std::string s = "data: {\"usage\":{\"prompt_tokens\":99},\"pad\":\"";
    s.append(UsageScanner::kMaxKept + 10, 'y');
    s += "\"}\n\ndata: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n";
    std::mt19937 rng(3);
    Usage u = scan_chunks(s, true, rng, 40000);
    cr_assert_eq(u.prompt_tokens, 3);
    cr_assert_eq(u.generated_tokens, 4);
}

Test(usage, sse_without_usage_is_unknown) {
    assert_unknown(scan("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n"
                        "data: [DONE]\n\n",
                        true));
    assert_unknown(scan("", true));
    assert_unknown(scan("event: ping\ndata: usage\n\n", true));
}

Test(usage, extract_usage_direct) {
    Usage u;
    extract_usage("{\"usage\":{\"prompt_tokens\":4}}", u);
    cr_assert_eq(u.prompt_tokens, 4);
    cr_assert_eq(u.generated_tokens, -1);
    extract_usage("{\"usage\":{\"completion_tokens\":6}}", u); // accumulates
    cr_assert_eq(u.prompt_tokens, 4);
    cr_assert_eq(u.generated_tokens, 6);
}

// Found by tests/fuzz/fuzz_usage_scanner: a count too large for a long long (or NaN, or
// inf) was converted anyway, which is undefined behaviour; prompt_n + cache_n could overflow.
// Such numbers are now unknown, like any other count that cannot be believed.
Test(usage, absurd_numbers_are_unknown) {
    assert_unknown(scan("{\"usage\":{\"prompt_tokens\":5.07778e+45,\"completion_tokens\":1e999},"
                        "\"timings\":{\"prompt_per_second\":1e999,\"predicted_per_second\":-nan}}",
                        false));
    assert_unknown(scan("data: {\"timings\":{\"prompt_n\":-nan,\"predicted_n\":"
                        "9223372036854775807,\"cache_n\":1e300}}\n",
                        true));
    Usage u =
        scan("{\"timings\":{\"prompt_n\":9007199254740992,\"cache_n\":9007199254740992}}", false);
    cr_assert_eq(u.prompt_tokens, 2 * 9007199254740992LL); // no overflow at the largest counts
    cr_assert_eq(u.cached_tokens, 9007199254740992LL);
}

// ------------------------------------------------------------------ ActivityLog

namespace {
ActivityRecord rec(uint64_t id, const std::string& model) {
    ActivityRecord r;
    r.id = id; // add() numbers records itself
    r.timestamp = 1700000000 + static_cast<long>(id);
    r.model = model;
    r.req_path = "/v1/chat/completions";
    r.resp_content_type = "application/json";
    r.resp_status_code = 200;
    r.duration_ms = 12;
    return r;
}

struct Parsed {
    cJSON* root;
    explicit Parsed(const std::string& s) : root(cJSON_Parse(s.c_str())) {
        cr_assert_not_null(root, "invalid JSON: %s", s.c_str());
    }
    ~Parsed() { cJSON_Delete(root); }
    double num(const char* k) const {
        const cJSON* v = cJSON_GetObjectItemCaseSensitive(root, k);
        cr_assert(cJSON_IsNumber(v), "%s missing", k);
        return v->valuedouble;
    }
    const cJSON* data() const { return cJSON_GetObjectItemCaseSensitive(root, "data"); }
    std::vector<int> ids() const {
        std::vector<int> out;
        const cJSON* d = data();
        cr_assert(cJSON_IsArray(d));
        for (const cJSON* e = d->child; e; e = e->next)
            out.push_back(static_cast<int>(cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble));
        return out;
    }
};

std::string listing(const ActivityLog& log, int limit, int page,
                    std::vector<std::string> models = {}) {
    ActivityLog::Query q;
    q.limit = limit;
    q.page = page;
    q.models = std::move(models);
    return log.json(q);
}
} // namespace

Test(activity, capacity_bound_and_newest_first) {
    ActivityLog log(3);
    for (uint64_t i = 1; i <= 5; ++i) log.add(rec(i, "m"));
    cr_assert_eq(log.size(), 3);
    Parsed p(listing(log, 25, 1));
    cr_assert_eq(p.ids(), (std::vector<int>{5, 4, 3}));
    cr_assert_eq(p.num("total"), 3);
    cr_assert_eq(p.num("total_pages"), 1);
    cr_assert_eq(p.num("page"), 1);
    cr_assert_eq(p.num("limit"), 25);
}

// Records filled in place: a full ring hands back its oldest, reset (nothing of the old
// record shows through), with the next id.
Test(activity, start_record_recycles_the_oldest_reset) {
    ActivityLog log(2);
    for (int i = 0; i < 2; ++i) {
        ActivityRecord* r = log.start_record();
        cr_assert_not_null(r);
        r->model = "a-long-model-name-past-the-small-string-buffer";
        r->error_msg = "failed";
        r->resp_status_code = 500;
        r->tokens.input_tokens = 9;
        r->metadata["selector"] = "s";
    }
    ActivityRecord* r = log.start_record();
    cr_assert_eq(r->id, 3u);
    cr_assert(r->model.empty() && r->error_msg.empty() && r->metadata.empty());
    cr_assert(r->model.capacity() >= 40); // the oldest's room, reused
    cr_assert_eq(r->resp_status_code, 0);
    cr_assert_eq(r->tokens.input_tokens, 0);
    cr_assert_eq(r->tokens.cache_tokens, -1);
    cr_assert_eq(log.size(), 2u);
    cr_assert_null(log.find(1));
    cr_assert_not_null(log.find(2));
    cr_assert_eq(log.find(3), r);
    ActivityLog none(0);
    cr_assert_null(none.start_record());
}

Test(activity, set_capacity_shrinks_and_zero_disables) {
    ActivityLog log(10);
    for (uint64_t i = 1; i <= 6; ++i) log.add(rec(i, "m"));
    log.set_capacity(2);
    cr_assert_eq(log.size(), 2);
    cr_assert_eq(Parsed(listing(log, 25, 1)).ids(), (std::vector<int>{6, 5}));
    log.set_capacity(0);
    cr_assert_eq(log.size(), 0);
    log.add(rec(7, "m"));
    cr_assert_eq(log.size(), 0);
    Parsed p(listing(log, 25, 1));
    cr_assert_eq(p.ids().size(), 0);
    cr_assert_eq(p.num("total"), 0);
    cr_assert_eq(p.num("total_pages"), 0);
}

Test(activity, default_capacity_1000) {
    ActivityLog log;
    for (uint64_t i = 1; i <= 1005; ++i) log.add(rec(i, "m"));
    cr_assert_eq(log.size(), 1000);
}

Test(activity, paging) {
    ActivityLog log(100);
    for (uint64_t i = 1; i <= 7; ++i) log.add(rec(i, "m"));
    Parsed p1(listing(log, 3, 1));
    cr_assert_eq(p1.ids(), (std::vector<int>{7, 6, 5}));
    cr_assert_eq(p1.num("total"), 7);
    cr_assert_eq(p1.num("total_pages"), 3);
    cr_assert_eq(Parsed(listing(log, 3, 2)).ids(), (std::vector<int>{4, 3, 2}));
    cr_assert_eq(Parsed(listing(log, 3, 3)).ids(), (std::vector<int>{1}));
    Parsed p4(listing(log, 3, 4)); // past the end: empty, totals still right
    cr_assert_eq(p4.ids().size(), 0);
    cr_assert_eq(p4.num("total"), 7);
    cr_assert_eq(p4.num("page"), 4);
    Parsed p0(listing(log, 3, 0)); // page < 1 reads as 1
    cr_assert_eq(p0.num("page"), 1);
    cr_assert_eq(p0.ids(), (std::vector<int>{7, 6, 5}));
    cr_assert_eq(Parsed(listing(log, 3, -5)).num("page"), 1);
}

Test(activity, limit_clamped) {
    ActivityLog log(2000);
    for (uint64_t i = 1; i <= 1200; ++i) log.add(rec(i, "m"));
    Parsed big(listing(log, 5000, 1));
    cr_assert_eq(big.num("limit"), 999);
    cr_assert_eq(big.ids().size(), 999);
    cr_assert_eq(big.num("total_pages"), 2);
    Parsed zero(listing(log, 0, 1));
    cr_assert_eq(zero.num("limit"), 1);
    cr_assert_eq(zero.ids(), (std::vector<int>{1200}));
    cr_assert_eq(zero.num("total_pages"), 1200);
    cr_assert_eq(Parsed(listing(log, -3, 1)).num("limit"), 1);
    cr_assert_eq(Parsed(listing(log, 999, 1)).num("limit"), 999);
}

Test(activity, model_filter) {
    ActivityLog log(100);
    log.add(rec(1, "a"));
    log.add(rec(2, "b"));
    log.add(rec(3, "a"));
    log.add(rec(4, "c"));
    log.add(rec(5, "b"));
    Parsed a(listing(log, 25, 1, {"a"}));
    cr_assert_eq(a.ids(), (std::vector<int>{3, 1}));
    cr_assert_eq(a.num("total"), 2);
    cr_assert_eq(Parsed(listing(log, 25, 1, {"b", "c"})).ids(), (std::vector<int>{5, 4, 2}));
    Parsed none(listing(log, 25, 1, {"zzz"}));
    cr_assert_eq(none.ids().size(), 0);
    cr_assert_eq(none.num("total"), 0);
    Parsed paged(listing(log, 1, 2, {"a", "b"}));
    cr_assert_eq(paged.ids(), (std::vector<int>{3}));
    cr_assert_eq(paged.num("total"), 4);
    cr_assert_eq(paged.num("total_pages"), 4);
}

const cJSON* member(const cJSON* o, const char* k) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, k);
    cr_assert_not_null(v, "%s missing", k);
    return v;
}

Test(activity, record_json_fields_as_the_original) {
    ActivityRecord r = rec(42, "we\"ird\\m\n");
    r.resp_status_code = 502;
    r.tokens.input_tokens = 11;
    r.tokens.output_tokens = 22;
    r.tokens.cache_tokens = 0;
    r.tokens.prompt_per_second = 100.5;
    r.error_msg = "boom";
    r.metadata["selector"] = "fast";
    Parsed p(ActivityLog::record_json(r, true));
    const cJSON* root = p.root;
    cr_assert_eq(p.num("id"), 42);
    cr_assert_str_eq(member(root, "timestamp")->valuestring, "2023-11-14T22:14:02Z");
    cr_assert_str_eq(member(root, "model")->valuestring, "we\"ird\\m\n");
    cr_assert_str_eq(member(root, "req_path")->valuestring, "/v1/chat/completions");
    cr_assert_str_eq(member(root, "resp_content_type")->valuestring, "application/json");
    cr_assert_eq(p.num("resp_status_code"), 502);
    cr_assert_eq(p.num("duration_ms"), 12);
    cr_assert(cJSON_IsTrue(member(root, "has_capture")));
    cr_assert_str_eq(member(root, "error_msg")->valuestring, "boom");
    cr_assert_str_eq(member(member(root, "metadata"), "selector")->valuestring, "fast");
    const cJSON* t = member(root, "tokens");
    cr_assert_eq(member(t, "input_tokens")->valuedouble, 11);
    cr_assert_eq(member(t, "output_tokens")->valuedouble, 22);
    cr_assert_eq(member(t, "cache_tokens")->valuedouble, 0);
    cr_assert_eq(member(t, "draft_tokens")->valuedouble, -1);
    cr_assert_eq(member(t, "draft_acc_tokens")->valuedouble, -1);
    cr_assert_float_eq(member(t, "prompt_per_second")->valuedouble, 100.5, 1e-9);
    cr_assert_eq(member(t, "tokens_per_second")->valuedouble, -1);
    cr_assert_eq(cJSON_GetArraySize(t), 7);
    // error_msg and metadata are left out when empty, as the original's omitempty
    Parsed q(ActivityLog::record_json(rec(1, "m"), false));
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(q.root, "error_msg"));
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(q.root, "metadata"));
    cr_assert(cJSON_IsFalse(member(q.root, "has_capture")));
    cr_assert_eq(cJSON_GetArraySize(q.root), 9);
}

Test(activity, query_messages_as_the_original) {
    struct Case {
        const char* query;
        const char* error;
    } cases[] = {
        {"limit=x", "invalid limit"},
        {"limit=0", "limit must be between 1 and 999"},
        {"limit=1000", "limit must be between 1 and 999"},
        {"page=0", "page must be >= 1"},
        {"page=abc", "page must be >= 1"},
        {"min_id=0", "min_id must be >= 1"},
        {"max_id=-2", "max_id must be >= 1"},
        {"min_id=5&max_id=4", "min_id must be <= max_id"},
        {"start=yesterday", "invalid 'start' timestamp, use RFC3339 format"},
        {"end=2026-01-01", "invalid 'end' timestamp, use RFC3339 format"},
        {"start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", "start must be before end"},
        {"sort=prompt_tokens", "invalid sort column"},
        {"order=up", "order must be asc or desc"},
    };
    for (const Case& c : cases) {
        std::string error;
        cr_assert(!ActivityLog::parse_query(c.query, error), "%s accepted", c.query);
        cr_assert_str_eq(error.c_str(), c.error, "%s", c.query);
    }
    std::string error;
    auto q = ActivityLog::parse_query(
        "model=a&model=%20b%20&model=&limit=5&page=2&sort=gen_speed&order=ASC&min_id=3&"
        "start=2026-01-01T01:00:00%2B01:00",
        error);
    cr_assert(q.has_value(), "%s", error.c_str());
    cr_assert_eq(q->models, (std::vector<std::string>{"a", "b"}));
    cr_assert_eq(q->limit, 5);
    cr_assert_eq(q->page, 2);
    cr_assert_eq(q->sort, "gen_speed");
    cr_assert(q->ascending);
    cr_assert_eq(q->min_id, 3u);
    cr_assert_eq(q->start, 1767225600); // 2026-01-01T00:00:00Z
}

Test(activity, sort_and_id_bounds) {
    ActivityLog log(100);
    for (int i = 1; i <= 5; ++i) {
        ActivityRecord r = rec(0, i % 2 ? "b" : "a");
        r.tokens.tokens_per_second = (i * 7) % 5; // 2 4 1 3 0
        log.add(r);
    }
    ActivityLog::Query q;
    q.sort = "gen_speed";
    cr_assert_eq(Parsed(log.json(q)).ids(), (std::vector<int>{2, 4, 1, 3, 5}));
    q.ascending = true;
    cr_assert_eq(Parsed(log.json(q)).ids(), (std::vector<int>{5, 3, 1, 4, 2}));
    q.sort = "model"; // ties by id, in the same direction
    cr_assert_eq(Parsed(log.json(q)).ids(), (std::vector<int>{2, 4, 1, 3, 5}));
    ActivityLog::Query bounds;
    bounds.min_id = 2;
    bounds.max_id = 4;
    cr_assert_eq(Parsed(log.json(bounds)).ids(), (std::vector<int>{4, 3, 2}));
    cr_assert_not_null(log.find(3));
    cr_assert_null(log.find(9));
}

Test(activity, stats_and_histograms) {
    ActivityLog log(100);
    Parsed empty(log.stats_json(""));
    cr_assert_eq(empty.num("total_requests"), 0);
    cr_assert(cJSON_IsNull(member(empty.root, "prompt_histogram")));
    cr_assert(cJSON_IsNull(member(empty.root, "gen_histogram")));
    for (int i = 1; i <= 10; ++i) {
        ActivityRecord r = rec(0, i <= 8 ? "a" : "b");
        r.tokens.input_tokens = 10;
        r.tokens.output_tokens = i;
        r.tokens.cache_tokens = i == 1 ? -1 : 2;
        r.tokens.tokens_per_second = i * 10; // 10..100
        r.tokens.prompt_per_second = i <= 8 ? 50 : -1;
        log.add(r);
    }
    Parsed all(log.stats_json(""));
    cr_assert_eq(all.num("total_requests"), 10);
    cr_assert_eq(all.num("total_input_tokens"), 100);
    cr_assert_eq(all.num("total_output_tokens"), 55);
    cr_assert_eq(all.num("total_cache_tokens"), 18); // the unknown -1 is not summed
    const cJSON* gen = member(all.root, "gen_histogram");
    // 10 values: ceil(log2 10) + 1 = 5 bins of 18 from 10 to 100
    cr_assert_eq(cJSON_GetArraySize(member(gen, "bins")), 5);
    cr_assert_eq(member(gen, "min")->valuedouble, 10);
    cr_assert_eq(member(gen, "max")->valuedouble, 100);
    cr_assert_float_eq(member(gen, "binSize")->valuedouble, 18, 1e-9);
    int sum = 0;
    for (const cJSON* b = member(gen, "bins")->child; b; b = b->next) sum += b->valueint;
    cr_assert_eq(sum, 10);
    cr_assert_float_eq(member(gen, "p50")->valuedouble, 55, 1e-9); // linear interpolation
    cr_assert_float_eq(member(gen, "p95")->valuedouble, 95.5, 1e-9);
    cr_assert_float_eq(member(gen, "p99")->valuedouble, 99.1, 1e-9);
    const cJSON* prompt = member(all.root, "prompt_histogram"); // all equal: one bin
    cr_assert_eq(cJSON_GetArraySize(member(prompt, "bins")), 1);
    cr_assert_eq(member(prompt, "bins")->child->valueint, 8);
    cr_assert_eq(member(prompt, "binSize")->valuedouble, 0);
    Parsed b(log.stats_json("b"));
    cr_assert_eq(b.num("total_requests"), 2);
    cr_assert(cJSON_IsNull(member(b.root, "prompt_histogram")));
}

Test(activity, failed_error_message) {
    cr_assert_eq(failed_error_message(500, "{\"error\":{\"message\":\" bad \"}}"), "bad");
    cr_assert_eq(failed_error_message(400, "{\"error\":\"plain\"}"), "plain");
    cr_assert_eq(failed_error_message(400, "{\"message\":\"m\"}"), "m");
    cr_assert_eq(failed_error_message(422, "{\"detail\":\"d\"}"), "d");
    cr_assert_eq(failed_error_message(503, "not json"), "503 Service Unavailable");
    cr_assert_eq(failed_error_message(599, ""), "HTTP 599");
    const std::string long_msg(600, 'x');
    cr_assert_eq(failed_error_message(500, "{\"error\":\"" + long_msg + "\"}"),
                 std::string(500, 'x') + "...");
}

Test(activity, rfc3339) {
    cr_assert_eq(parse_rfc3339("2026-01-01T00:00:00Z").value_or(0), 1767225600);
    cr_assert_eq(parse_rfc3339("2026-01-01T00:00:00.5-00:30").value_or(0), 1767227400);
    cr_assert(!parse_rfc3339("2026-01-01 00:00:00Z"));
    cr_assert(!parse_rfc3339("2026-01-01T00:00:00"));
    cr_assert_eq(format_rfc3339(1767225600), "2026-01-01T00:00:00Z");
}

// ------------------------------------------------------------------ Prometheus

Test(prometheus, label_escaping) {
    cr_assert(prometheus_label("plain-model_1.gguf") == std::string("plain-model_1.gguf"));
    cr_assert(prometheus_label("a\"b") == std::string("a\\\"b"));
    cr_assert(prometheus_label("a\\b") == std::string("a\\\\b"));
    cr_assert(prometheus_label("a\nb") == std::string("a\\nb"));
    cr_assert(prometheus_label("\\\"\n") == std::string("\\\\\\\"\\n"));
    cr_assert(prometheus_label("") == std::string(""));
    cr_assert(prometheus_label("\xc3\xa9") == std::string("\xc3\xa9"));
}

namespace {
// value of the sample line starting with `prefix` (name{labels}) in `text`, or -1
double sample_value(const std::string& text, const std::string& prefix) {
    size_t pos = 0;
    while ((pos = text.find(prefix, pos)) != std::string::npos) {
        if (pos == 0 || text[pos - 1] == '\n') {
            size_t eol = text.find('\n', pos);
            std::string line = text.substr(pos, eol - pos);
            if (line.size() > prefix.size() && line[prefix.size()] == ' ')
                return strtod(line.c_str() + prefix.size() + 1, nullptr);
        }
        ++pos;
    }
    return -1;
}
} // namespace

Test(prometheus, histogram_buckets_cumulative) {
    Histogram h;
    for (double v : {0.01, 0.05, 0.3, 0.7, 3.0, 7.0, 1000.0}) h.observe(v);
    std::string out;
    h.render(out, "x_seconds", "model=\"m\"");
    const std::string b = "x_seconds_bucket{model=\"m\",le=\"";
    cr_assert_eq(sample_value(out, b + "0.05\"}"), 2, "%s", out.c_str()); // 0.05 inclusive
    cr_assert_eq(sample_value(out, b + "0.1\"}"), 2);
    cr_assert_eq(sample_value(out, b + "0.25\"}"), 2);
    cr_assert_eq(sample_value(out, b + "0.5\"}"), 3);
    cr_assert_eq(sample_value(out, b + "1\"}"), 4);
    cr_assert_eq(sample_value(out, b + "2.5\"}"), 4);
    cr_assert_eq(sample_value(out, b + "5\"}"), 5);
    cr_assert_eq(sample_value(out, b + "10\"}"), 6);
    cr_assert_eq(sample_value(out, b + "300\"}"), 6);
    cr_assert_eq(sample_value(out, b + "+Inf\"}"), 7);
    cr_assert_eq(sample_value(out, "x_seconds_count{model=\"m\"}"), 7);
    cr_assert_float_eq(sample_value(out, "x_seconds_sum{model=\"m\"}"), 1011.06, 1e-9);
    // every bucket line is cumulative (non-decreasing), in order, ending at +Inf
    double prev = 0;
    int buckets = 0;
    size_t pos = 0;
    while ((pos = out.find(b, pos)) != std::string::npos) {
        size_t eol = out.find('\n', pos);
        std::string line = out.substr(pos, eol - pos);
        double v = strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
        cr_assert_geq(v, prev, "%s", out.c_str());
        prev = v;
        ++buckets;
        pos = eol;
    }
    cr_assert_eq(buckets, static_cast<int>(Histogram::kBounds.size()) + 1);
    cr_assert_eq(prev, 7);
}

Test(prometheus, empty_histogram) {
    Histogram h;
    std::string out;
    h.render(out, "y", "model=\"m\"");
    cr_assert_eq(sample_value(out, "y_bucket{model=\"m\",le=\"+Inf\"}"), 0, "%s", out.c_str());
    cr_assert_eq(sample_value(out, "y_count{model=\"m\"}"), 0);
    cr_assert_eq(sample_value(out, "y_sum{model=\"m\"}"), 0);
}

Test(prometheus, proc_stat_parsed_around_an_awkward_comm) {
    // comm with spaces and parentheses; utime 250, stime 50, starttime 1000 ticks, vsize
    // 123456789 bytes, rss 300 pages.
    const std::string stat = "4242 (llama swap) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 "
                             "50 0 0 20 0 3 0 1000 123456789 300 18446744073709551615 1 1 0";
    ProcessStats p;
    cr_assert(parse_proc_stat(stat, 100, 4096, 1700000000, p));
    cr_assert_float_eq(p.cpu_seconds, 3.0, 1e-9);
    cr_assert_float_eq(p.start_time_seconds, 1700000010.0, 1e-6);
    cr_assert_float_eq(p.virtual_bytes, 123456789.0, 1e-3);
    cr_assert_float_eq(p.resident_bytes, 300.0 * 4096, 1e-3);
    ProcessStats q;
    cr_assert_not(parse_proc_stat("4242 (truncated) S 1 2 3", 100, 4096, 1700000000, q));
    cr_assert_not(parse_proc_stat("", 100, 4096, 1700000000, q));
    cr_assert_eq(q.cpu_seconds, -1);
    ProcessStats no_boot; // boot time unknown: no start time rather than a wrong one
    cr_assert(parse_proc_stat(stat, 100, 4096, 0, no_boot));
    cr_assert_eq(no_boot.start_time_seconds, -1);
}

Test(prometheus, process_metrics_of_this_process) {
    const ProcessStats p = read_process_stats();
    cr_assert_gt(p.cpu_seconds, -1);
    cr_assert_gt(p.start_time_seconds, 1e9);
    cr_assert_gt(p.resident_bytes, 0);
    cr_assert_geq(p.virtual_bytes, p.resident_bytes);
    cr_assert_geq(p.open_fds, 3); // stdin, stdout, stderr at least
    cr_assert(p.max_fds < 0 || p.max_fds >= p.open_fds);
    std::string out;
    render_process_stats(out, p);
    for (const char* name :
         {"process_cpu_seconds_total", "process_start_time_seconds",
          "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds"}) {
        cr_assert(out.find(std::string("# TYPE ") + name + " ") != std::string::npos, "%s: %s",
                  name, out.c_str());
        cr_assert_geq(sample_value(out, name), 0, "%s", name);
    }
    cr_assert(out.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
    ProcessStats unknown; // every figure unknown: nothing at all, not -1
    std::string none;
    render_process_stats(none, unknown);
    cr_assert(none.empty(), "%s", none.c_str());
}

namespace {
struct Loop {
    struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
    ~Loop() { ev_loop_destroy(loop); }
};
} // namespace

Test(prometheus, build_info_first_byte_and_failure_causes) {
    Loop l;
    ls::router::Scheduler scheduler(l.loop, nullptr);
    MetricsRegistry reg;
    reg.on_upstream_result("m", 0.02, nullptr);
    reg.on_upstream_result("m", 0.7, nullptr);
    reg.on_upstream_result("m", -1, "cut_mid_stream");
    reg.on_upstream_result("m", 0.03, "cut_mid_stream"); // began, then broke off
    reg.on_upstream_result("m", -1, "start_failed");
    reg.on_upstream_result("peer/x", -1, "connect_failed");
    reg.on_upstream_result("n", -1, nullptr); // nothing to count: no series
    const std::string out = reg.render(scheduler);
    cr_assert(out.find(std::string("llamaswap_build_info{version=\"") + LS_VERSION + "\",") !=
                  std::string::npos,
              "%s", out.c_str());
    cr_assert(out.find("# TYPE llamaswap_time_to_first_token_seconds histogram\n") !=
              std::string::npos);
    const std::string b = "llamaswap_time_to_first_token_seconds_bucket{model=\"m\",le=\"";
    cr_assert_eq(sample_value(out, b + "0.01\"}"), 0, "%s", out.c_str());
    cr_assert_eq(sample_value(out, b + "0.025\"}"), 1);
    cr_assert_eq(sample_value(out, b + "0.05\"}"), 2);
    cr_assert_eq(sample_value(out, b + "1\"}"), 3);
    cr_assert_eq(sample_value(out, "llamaswap_time_to_first_token_seconds_count{model=\"m\"}"), 3);
    cr_assert(out.find("# TYPE llamaswap_upstream_failures_total counter\n") != std::string::npos);
    const std::string f = "llamaswap_upstream_failures_total{model=\"";
    cr_assert_eq(sample_value(out, f + "m\",cause=\"cut_mid_stream\"}"), 2, "%s", out.c_str());
    cr_assert_eq(sample_value(out, f + "m\",cause=\"start_failed\"}"), 1);
    cr_assert_eq(sample_value(out, f + "peer/x\",cause=\"connect_failed\"}"), 1);
    cr_assert(out.find("model=\"n\"") == std::string::npos, "%s", out.c_str());
    // without a sample, no host or GPU families
    cr_assert(out.find("llamaswap_memory_total_bytes") == std::string::npos);
    cr_assert(out.find("llamaswap_gpu_") == std::string::npos);
    cr_assert(out.find("# TYPE process_open_fds gauge\n") != std::string::npos);
}

namespace {
ls::perf::Sample perf_sample() {
    ls::perf::Sample s;
    s.sys.cpu_util_per_core = {12.5, 100};
    s.sys.mem_total_bytes = 64ull << 30;
    s.sys.mem_used_bytes = 10ull << 30;
    s.sys.mem_free_bytes = 50ull << 30;
    s.sys.swap_total_bytes = 8ull << 30;
    s.sys.swap_used_bytes = 1ull << 20;
    s.sys.load_avg_1 = 1.5;
    s.sys.load_avg_5 = 0.75;
    s.sys.load_avg_15 = 0.25;
    s.sys.net_io = {{"eth0", 1000, 2000}, {"we\"ird", 1, 2}};
    ls::perf::GpuSample nv;
    nv.index = 0;
    nv.name = "NVIDIA H200";
    nv.uuid = "GPU-1234";
    nv.source = "nvml";
    nv.temp_c = 41;
    nv.gpu_util_pct = 87;
    nv.mem_util_pct = 50;
    nv.mem_used_bytes = 70ull << 30;
    nv.mem_total_bytes = 140ull << 30;
    nv.power_draw_w = 312.5; // vram temperature and fan unknown (-1)
    ls::perf::GpuSample amd;
    amd.index = 1;
    amd.name = "AMD Radeon";
    amd.source = "sysfs";
    amd.temp_c = 55;
    amd.vram_temp_c = 60;
    amd.fan_speed_pct = 30; // no memory figures (0 of 0): left out
    s.gpus = {nv, amd};
    return s;
}
} // namespace

Test(prometheus, host_and_gpu_gauges_as_the_original_names_them) {
    std::string out;
    render_perf(out, perf_sample());
    cr_assert_eq(sample_value(out, "llamaswap_cpu_util_percent{core=\"0\"}"), 12.5, "%s",
                 out.c_str());
    cr_assert_eq(sample_value(out, "llamaswap_cpu_util_percent{core=\"1\"}"), 100);
    cr_assert_eq(sample_value(out, "llamaswap_memory_total_bytes"), 64.0 * (1ull << 30));
    cr_assert_eq(sample_value(out, "llamaswap_memory_used_bytes"), 10.0 * (1ull << 30));
    cr_assert_eq(sample_value(out, "llamaswap_memory_free_bytes"), 50.0 * (1ull << 30));
    cr_assert_eq(sample_value(out, "llamaswap_swap_total_bytes"), 8.0 * (1ull << 30));
    cr_assert_eq(sample_value(out, "llamaswap_swap_used_bytes"), 1 << 20);
    cr_assert_eq(sample_value(out, "llamaswap_load_average{interval=\"1m\"}"), 1.5);
    cr_assert_eq(sample_value(out, "llamaswap_load_average{interval=\"5m\"}"), 0.75);
    cr_assert_eq(sample_value(out, "llamaswap_load_average{interval=\"15m\"}"), 0.25);
    cr_assert(out.find("# TYPE llamaswap_network_bytes_total counter\n") != std::string::npos);
    cr_assert_eq(
        sample_value(out, "llamaswap_network_bytes_total{interface=\"eth0\",direction=\"recv\"}"),
        1000);
    cr_assert_eq(
        sample_value(out, "llamaswap_network_bytes_total{interface=\"eth0\",direction=\"sent\"}"),
        2000);
    cr_assert_eq(sample_value(out, "llamaswap_network_bytes_total{interface=\"we\\\"ird\","
                                   "direction=\"sent\"}"),
                 2);
    const std::string nv = "{id=\"0\",name=\"NVIDIA H200\",uuid=\"GPU-1234\"}";
    const std::string amd = "{id=\"1\",name=\"AMD Radeon\"}"; // no uuid: no uuid label
    cr_assert_eq(sample_value(out, "llamaswap_gpu_temperature_celsius" + nv), 41, "%s",
                 out.c_str());
    cr_assert_eq(sample_value(out, "llamaswap_gpu_temperature_celsius" + amd), 55);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_vram_temperature_celsius" + nv), -1); // absent
    cr_assert_eq(sample_value(out, "llamaswap_gpu_vram_temperature_celsius" + amd), 60);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_util_percent" + nv), 87);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_util_percent" + amd), -1);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_memory_util_percent" + nv), 50);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_memory_used_bytes" + nv), 70.0 * (1ull << 30));
    cr_assert_eq(sample_value(out, "llamaswap_gpu_memory_total_bytes" + nv), 140.0 * (1ull << 30));
    cr_assert_eq(sample_value(out, "llamaswap_gpu_memory_used_bytes" + amd), -1);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_memory_total_bytes" + amd), -1);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_fan_speed_percent" + nv), -1);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_fan_speed_percent" + amd), 30);
    cr_assert_eq(sample_value(out, "llamaswap_gpu_power_draw_watts" + nv), 312.5);
    for (const char* g :
         {"temperature_celsius", "vram_temperature_celsius", "util_percent", "memory_util_percent",
          "memory_used_bytes", "memory_total_bytes", "fan_speed_percent", "power_draw_watts"})
        cr_assert(out.find(std::string("# TYPE llamaswap_gpu_") + g + " gauge\n") !=
                      std::string::npos,
                  "%s", g);
    // No GPU: the GPU families are declared all the same, without series.
    ls::perf::Sample bare = perf_sample();
    bare.gpus.clear();
    std::string host;
    render_perf(host, bare);
    cr_assert(host.find("# TYPE llamaswap_gpu_util_percent gauge\n") != std::string::npos);
    cr_assert(host.find("llamaswap_gpu_util_percent{") == std::string::npos, "%s", host.c_str());
}

Test(prometheus, model_gpu_memory_with_a_sample) {
    Loop l;
    ls::router::Scheduler scheduler(l.loop, nullptr);
    MetricsRegistry reg;
    const ls::perf::Sample s = perf_sample();
    const std::string out = reg.render(scheduler, &s);
    cr_assert(out.find("# TYPE llamaswap_model_gpu_memory_bytes gauge\n") != std::string::npos,
              "%s", out.c_str());
    cr_assert(out.find("# TYPE llamaswap_gpu_power_draw_watts gauge\n") != std::string::npos);
    cr_assert_eq(sample_value(out, "llamaswap_memory_total_bytes"), 64.0 * (1ull << 30));
}
