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
    cr_assert(s.used() <= s.capacity());
    cr_assert(!s.has(1) && !s.has(2));
    cr_assert(s.has(3) && s.has(4) && s.has(5));
    cr_assert_eq(s.find(4)->req_body->size(), 1000u);
    cr_assert_null(s.find(99));
    // One larger than the whole store is refused and evicts nothing.
    cr_assert(!s.add(make(6, one * 4)));
    cr_assert_eq(s.size(), 3u);
    // A bigger one evicts as many as it needs.
    cr_assert(s.add(make(7, 2000)));
    cr_assert(!s.has(3) && !s.has(4) && s.has(5) && s.has(7));
    // Shrinking evicts the oldest; 0 empties it.
    s.set_capacity(one + 1000);
    cr_assert(!s.has(5) && s.has(7));
    s.set_capacity(0);
    cr_assert_eq(s.size(), 0u);
    cr_assert_eq(s.used(), 0u);
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
    c.req_headers.emplace();
    c.req_headers->add("x-a", "q\"");
    c.req_headers->add("authorization", "Bearer secret");
    c.req_headers->add("Host", "h");
    c.req_headers->add("X-A", "second");
    c.req_body = std::string("{\"model\":\"m\"}");
    c.resp_body = std::string("");
    const std::string json = capture_json(c);
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
