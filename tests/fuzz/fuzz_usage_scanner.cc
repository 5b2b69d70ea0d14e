// libFuzzer harness: the usage scanner (src/metrics/usage.h) that reads token counts and
// speeds from responses passing through the proxy, as SSE streams and as JSON bodies.
//
// Input: byte 0 picks SSE (odd) or a JSON body (even), byte 1 seeds how the response is split
// into chunks; the rest is the response body.
//
// Properties: no sanitizer report (UBSan included: counts come from an upstream's text);
// the result does not depend on how the response is split; a JSON body gives what
// extract_usage() gives for the whole text; no count or speed is negative but -1 (unknown),
// and no speed is infinite.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "fuzz_common.h"
#include "metrics/usage.h"

using ls::metrics::Usage;
using ls::metrics::UsageScanner;

namespace {

Usage scan(bool sse, std::string_view body, uint32_t seed) {
    UsageScanner s(sse);
    fuzz::Splitter split(seed);
    for (std::string_view chunk : split.split(body)) s.feed(chunk.data(), chunk.size());
    s.finish();
    return s.usage();
}

bool same_double(double a, double b) {
    return (std::isnan(a) && std::isnan(b)) || a == b;
}

bool same(const Usage& a, const Usage& b) {
    return a.prompt_tokens == b.prompt_tokens && a.generated_tokens == b.generated_tokens &&
           a.cached_tokens == b.cached_tokens &&
           same_double(a.prompt_per_second, b.prompt_per_second) &&
           same_double(a.tokens_per_second, b.tokens_per_second) &&
           a.draft_tokens == b.draft_tokens && a.draft_accepted == b.draft_accepted &&
           a.counts_from_usage == b.counts_from_usage;
}

void check_values(const Usage& u) {
    for (long long v :
         {u.prompt_tokens, u.generated_tokens, u.cached_tokens, u.draft_tokens, u.draft_accepted})
        FUZZ_CHECK(v >= -1);
    for (double v : {u.prompt_per_second, u.tokens_per_second})
        FUZZ_CHECK(v == -1 || (v >= 0 && std::isfinite(v))); // NaN fails both
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const bool sse = (data[0] & 1) != 0;
    const uint32_t seed = data[1];
    const std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);

    const Usage whole = scan(sse, body, 0);
    const Usage split = scan(sse, body, 0x10000 | seed);
    FUZZ_CHECK(same(whole, split));
    check_values(whole);
    if (!sse) {
        Usage direct;
        if (body.find("usage") != std::string_view::npos ||
            body.find("timings") != std::string_view::npos)
            ls::metrics::extract_usage(body, direct);
        FUZZ_CHECK(same(whole, direct));
    }
    return 0;
}
