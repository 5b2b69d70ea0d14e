// The request capture store (captureBuffer): bounded in bytes, oldest evicted, the original's
// per-route masks and JSON layout.
#include <criterion/criterion.h>

#include <string>

#include "metrics/captures.h"

using namespace ls::metrics;

namespace {
Capture make(uint64_t id, size_t body_bytes) {
    Capture c;
    c.id = id;
    c.req_path = "/v1/chat/completions";
    c.req_body = std::string(body_bytes, 'x');
    return c;
}
} // namespace

Test(captures, disabled_keeps_nothing) {
    CaptureStore s(0);
    cr_assert(!s.enabled());
    cr_assert(!s.add(make(1, 10)));
    cr_assert(!s.has(1));
    cr_assert_eq(s.size(), 0u);
}

Test(captures, oldest_evicted_within_the_byte_bound) {
    const size_t one = make(1, 1000).bytes();
    CaptureStore s(one * 3);
    for (uint64_t id = 1; id <= 5; ++id) cr_assert(s.add(make(id, 1000)));
    cr_assert_eq(s.size(), 3u);
    cr_assert_eq(s.used(), one * 3);
    cr_assert(!s.has(1) && !s.has(2));
    cr_assert(s.has(3) && s.has(4) && s.has(5));
    cr_assert_eq(s.find(4)->req_body->size(), 1000u);
    cr_assert(!s.find(99));
    // One larger than the whole store is refused and evicts nothing.
    cr_assert(!s.add(make(6, one * 4)));
    cr_assert_eq(s.size(), 3u);
    // The ring now holds 4, 5, 3 in that order. A bigger one does not fit after 5: it takes
    // the ring's start, evicting the oldest as far as it reaches (3 at the end, then 4, 5).
    cr_assert(s.add(make(7, 1000 + one / 2)));
    cr_assert(!s.has(3) && !s.has(4) && !s.has(5) && s.has(7));
    cr_assert_eq(s.find(7)->req_body->size(), 1000u + one / 2);
    // The next goes right after it, evicting nothing.
    cr_assert(s.add(make(8, 1000)));
    cr_assert(s.has(7) && s.has(8));
    cr_assert(s.used() <= s.capacity());
    // Shrinking keeps the newest that fit; 0 empties it.
    s.set_capacity(one * 2);
    cr_assert(!s.has(7) && s.has(8));
    s.set_capacity(0);
    cr_assert_eq(s.size(), 0u);
    cr_assert_eq(s.used(), 0u);
}

// Mixed sizes through many wraps: every capture held reads back byte for byte, ids ascend,
// the bound holds, and the newest is always there.
Test(captures, ring_wraps_and_reads_back_exactly) {
    CaptureStore s(64 * 1024);
    uint32_t seed = 12345;
    auto next = [&seed] { return seed = seed * 1103515245u + 12345u; };
    auto body_of = [](uint64_t id, size_t n) {
        std::string b(n, '\0');
        for (size_t i = 0; i < n; ++i) b[i] = static_cast<char>((id * 131 + i * 7) & 0xff);
        return b;
    };
    for (uint64_t id = 1; id <= 2000; ++id) {
        Capture c;
        c.id = id;
        c.req_path = "/v1/path/" + std::to_string(id);
        const size_t n = next() % 9000;
        c.req_body = body_of(id, n);
        if (id % 3) {
            ls::http::HeaderList h;
            h.add("X-Id", std::to_string(id));
            c.resp_headers = CaptureHeaders(h);
        }
        if (id % 5 == 0) c.resp_body = std::string(id % 7, 'r');
        cr_assert(s.add(c), "capture %llu", static_cast<unsigned long long>(id));
        cr_assert(s.has(id));
        cr_assert(s.used() <= s.capacity());
        if (id % 97 == 0 || id > 1990) {
            size_t held = 0;
            for (uint64_t k = 1; k <= id; ++k) {
                const auto v = s.find(k);
                if (!v) continue;
                ++held;
                cr_assert_eq(v->id, k);
                cr_assert(v->req_path == "/v1/path/" + std::to_string(k));
                cr_assert(*v->req_body == body_of(k, v->req_body->size()));
                cr_assert_eq(v->resp_headers.has_value(), k % 3 != 0);
                if (v->resp_headers)
                    cr_assert(*CaptureHeaders::unpack(*v->resp_headers).find("x-id") ==
                              std::to_string(k));
                cr_assert_eq(v->resp_body.has_value(), k % 5 == 0);
                cr_assert(!v->req_headers);
            }
            cr_assert_eq(held, s.size());
        }
    }
    // Ids must ascend: an older id is refused rather than breaking the lookup.
    Capture old;
    old.id = 5;
    cr_assert(!s.add(old));
    // Growing keeps everything.
    const size_t before = s.size();
    s.set_capacity(1024 * 1024);
    cr_assert_eq(s.size(), before);
    cr_assert(s.has(2000));
}

// Bodies over kInlineBody stay the strings they came in (an agent's long prompt is not
// copied per request), count against the capacity all the same, and survive a resize.
Test(captures, large_bodies_kept_as_given_and_counted) {
    const size_t big = CaptureStore::kInlineBody + 1;
    CaptureStore s(big * 5);
    const char* first_data = nullptr;
    for (uint64_t id = 1; id <= 12; ++id) {
        Capture c;
        c.id = id;
        c.req_path = "/v1/chat/completions";
        c.req_body = std::string(big, static_cast<char>('a' + id));
        c.resp_body = std::string(id % 2 ? big : 10, static_cast<char>('A' + id));
        const char* data = c.req_body->data();
        if (id == 12) first_data = data;
        const size_t bytes = c.bytes();
        cr_assert(bytes > 2 * big - (id % 2 ? 0 : big));
        cr_assert(s.add(std::move(c)));
        cr_assert(s.used() <= s.capacity());
        if (id == 12) cr_assert_eq(s.find(12)->req_body->data(), first_data, "copied");
    }
    cr_assert(s.has(12) && !s.has(1));
    for (uint64_t id = 1; id <= 12; ++id) {
        const auto v = s.find(id);
        if (!v) continue;
        cr_assert(*v->req_body == std::string(big, static_cast<char>('a' + id)));
        cr_assert(*v->resp_body == std::string(id % 2 ? big : 10, static_cast<char>('A' + id)));
    }
    // Larger than the whole store: refused.
    Capture huge;
    huge.id = 13;
    huge.req_body = std::string(big * 6, 'h');
    cr_assert(!s.add(std::move(huge)));
    // Growing keeps them, shrinking keeps the newest that fit.
    const size_t held = s.size();
    s.set_capacity(big * 50);
    cr_assert_eq(s.size(), held);
    cr_assert(*s.find(12)->req_body == std::string(big, 'a' + 12));
    s.set_capacity(big * 2 + 4096);
    cr_assert(s.has(12) && s.size() == 1);
    cr_assert(*s.find(12)->resp_body == std::string(10, 'A' + 12));
}

Test(captures, masks_as_the_original) {
    cr_assert_eq(capture_fields_for("/v1/chat/completions"), kCaptureAll);
    cr_assert_eq(capture_fields_for("/v1/embeddings"), kCaptureAll);
    cr_assert_eq(capture_fields_for("/v1/audio/speech"),
                 kCaptureReqHeaders | kCaptureReqBody | kCaptureRespHeaders);
    cr_assert_eq(capture_fields_for("/v1/audio/transcriptions"),
                 kCaptureReqHeaders | kCaptureRespHeaders | kCaptureRespBody);
    cr_assert_eq(capture_fields_for("/v1/audio/voices"),
                 kCaptureReqHeaders | kCaptureRespHeaders | kCaptureRespBody);
    cr_assert_eq(capture_fields_for("/v1/images/generations"),
                 kCaptureReqHeaders | kCaptureReqBody | kCaptureRespHeaders);
    cr_assert_eq(capture_fields_for("/v1/images/edits"), kCaptureReqHeaders | kCaptureRespHeaders);
    cr_assert_eq(capture_fields_for("/sdapi/v1/txt2img"),
                 kCaptureReqHeaders | kCaptureReqBody | kCaptureRespHeaders);
    cr_assert_eq(capture_fields_for("/sdapi/v1/img2img"), kCaptureReqHeaders | kCaptureRespHeaders);
}

Test(captures, json_layout_with_base64_bodies) {
    Capture c;
    c.id = 7;
    c.req_path = "/v1/chat/completions";
    // As received: shown canonical, sorted, the first of each name, secrets redacted, no Host.
    ls::http::HeaderList h;
    h.add("x-a", "q\"");
    h.add("authorization", "Bearer secret");
    h.add("Host", "h");
    h.add("X-A", "second");
    c.req_headers = ls::http::PackedHeaders(h);
    c.req_body = std::string("{\"model\":\"m\"}");
    c.resp_body = std::string("");
    CaptureStore s(4096);
    cr_assert(s.add(c));
    const std::string json = capture_json(*s.find(7));
    cr_assert_str_eq(json.c_str(),
                     "{\"id\":7,\"req_path\":\"/v1/chat/completions\",\"req_headers\":"
                     "{\"Authorization\":\"[REDACTED]\",\"X-A\":\"q\\\"\"},\"req_body\":"
                     "\"eyJtb2RlbCI6Im0ifQ==\",\"resp_headers\":null,\"resp_body\":\"\"}");
}

Test(captures, base64) {
    cr_assert(base64_encode("") == "");
    cr_assert(base64_encode("f") == "Zg==");
    cr_assert(base64_encode("fo") == "Zm8=");
    cr_assert(base64_encode("foo") == "Zm9v");
    cr_assert(base64_encode("foobar") == "Zm9vYmFy");
    cr_assert(base64_encode(std::string("\xff\x00\xfe", 3)) == "/wD+");
}
