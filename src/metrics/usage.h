// Token counts and speeds of a response, read from what passes through the proxy without
// holding it: OpenAI `usage` (also `response.usage` of the Responses API and Anthropic's
// `message.usage`/`usage`), and llama.cpp `timings`, in JSON bodies and SSE events alike.
// Only text that mentions "usage" or "timings" is ever parsed.
#pragma once

#include <string>
#include <string_view>

namespace ls::metrics {

// What a response says it cost. Prompt and generated tokens are what the client was charged
// (`usage`); llama.cpp's `timings` fill them only when there is no `usage`, since its
// prompt_n leaves out the tokens served from the prompt cache (cache_n).
struct Usage {
    long long prompt_tokens = -1; // -1: unknown
    long long generated_tokens = -1;
    long long cached_tokens = -1; // of prompt_tokens, read from the prompt cache
    double prompt_per_second = -1;
    double tokens_per_second = -1;
    long long draft_tokens = -1; // speculative decoding (llama.cpp timings draft_n)
    long long draft_accepted = -1;
    // Where the counts came from: `usage` is never overwritten by `timings`.
    bool counts_from_usage = false;
};

class UsageScanner {
public:
    explicit UsageScanner(bool sse) : sse_(sse) {}
    // `last`: these bytes end the body. A JSON body that comes whole in one piece is read
    // where it is, not kept first.
    void feed(const char* data, size_t len, bool last = false);
    void finish();
    const Usage& usage() const { return usage_; }

    static constexpr size_t kMaxKept = 256 * 1024; // larger JSON bodies are not parsed

private:
    void consider(std::string_view json_text);
    bool sse_;
    bool overflow_ = false;
    bool done_ = false;   // JSON: read already (a body in one piece)
    std::string pending_; // SSE: the current partial line; JSON: the body so far
    Usage usage_;
};

// Fills `u` from one parsed JSON document (exposed for tests).
void extract_usage(std::string_view json_text, Usage& u);

} // namespace ls::metrics
