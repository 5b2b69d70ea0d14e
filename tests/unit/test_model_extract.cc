// Streaming extraction of `model` from JSON, multipart and URL-encoded bodies
// (src/router/model_extract.h). Every body is fed whole, byte by byte and in random chunk sizes:
// results must not depend on how the bytes arrive.
#include <criterion/criterion.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "router/model_extract.h"

using ls::router::BodyScanner;
using ls::router::FormModelScanner;
using ls::router::JsonModelScanner;
using ls::router::ModelRef;
using ls::router::multipart_boundary;
using ls::router::MultipartModelScanner;

namespace {

struct Outcome {
    bool ok = false;
    std::string error;
    ModelRef ref;
};

enum class Feed { Whole, Bytes, Random };

void feed(BodyScanner& s, const std::string& body, Feed mode, uint32_t seed, size_t max_chunk) {
    switch (mode) {
    case Feed::Whole:
        s.on_body(body.data(), body.size());
        break;
    case Feed::Bytes:
        for (size_t i = 0; i < body.size(); ++i) s.on_body(body.data() + i, 1);
        break;
    case Feed::Random: {
        std::mt19937 rng(seed);
        std::uniform_int_distribution<size_t> dist(0, max_chunk);
        size_t pos = 0;
        while (pos < body.size()) {
            size_t n = dist(rng); // 0-length calls must be harmless too
            if (n > body.size() - pos) n = body.size() - pos;
            s.on_body(body.data() + pos, n);
            pos += n;
        }
        break;
    }
    }
}

Outcome run_json(const std::string& body, Feed mode, uint32_t seed = 1, size_t max_chunk = 7) {
    JsonModelScanner s;
    feed(s, body, mode, seed, max_chunk);
    Outcome o;
    o.ok = s.finish(o.error);
    o.ref = s.result();
    return o;
}

Outcome run_multipart(const std::string& boundary, const std::string& body, Feed mode,
                      uint32_t seed = 1, size_t max_chunk = 7) {
    MultipartModelScanner s(boundary);
    feed(s, body, mode, seed, max_chunk);
    Outcome o;
    o.ok = s.finish(o.error);
    o.ref = s.result();
    return o;
}

void expect_same(const Outcome& a, const Outcome& b, const char* what) {
    cr_assert_eq(a.ok, b.ok, "%s: ok differs (%d vs %d)", what, a.ok, b.ok);
    cr_assert_eq(a.ref.found, b.ref.found, "%s: found differs", what);
    cr_assert_eq(a.ref.stream, b.ref.stream, "%s: stream differs", what);
    cr_assert_eq(a.ref.value_begin, b.ref.value_begin, "%s: value_begin %zu vs %zu", what,
                 a.ref.value_begin, b.ref.value_begin);
    cr_assert_eq(a.ref.value_end, b.ref.value_end, "%s: value_end %zu vs %zu", what,
                 a.ref.value_end, b.ref.value_end);
    cr_assert(a.ref.model == b.ref.model, "%s: model '%s' vs '%s'", what, a.ref.model.c_str(),
              b.ref.model.c_str());
    cr_assert_eq(a.error.empty(), b.error.empty(), "%s: error '%s' vs '%s'", what, a.error.c_str(),
                 b.error.c_str());
}

// Scans `body` every way and checks the outcomes agree; returns the whole-body outcome.
Outcome scan_json(const std::string& body, size_t max_chunk = 7) {
    Outcome whole = run_json(body, Feed::Whole);
    expect_same(whole, run_json(body, Feed::Bytes), "json byte by byte");
    for (uint32_t seed = 1; seed <= 4; ++seed)
        expect_same(whole, run_json(body, Feed::Random, seed, max_chunk), "json random chunks");
    return whole;
}

Outcome scan_multipart(const std::string& boundary, const std::string& body, size_t max_chunk = 7) {
    Outcome whole = run_multipart(boundary, body, Feed::Whole);
    expect_same(whole, run_multipart(boundary, body, Feed::Bytes), "multipart byte by byte");
    for (uint32_t seed = 1; seed <= 4; ++seed)
        expect_same(whole, run_multipart(boundary, body, Feed::Random, seed, max_chunk),
                    "multipart random chunks");
    return whole;
}

void expect_json_model(const std::string& body, const std::string& model,
                       const std::string& raw_token, bool stream = false) {
    Outcome o = scan_json(body);
    cr_assert(o.ok, "%s: finish failed: %s", body.c_str(), o.error.c_str());
    cr_assert(o.ref.found, "%s: model not found", body.c_str());
    cr_assert(o.ref.model == model, "%s: model '%s', expected '%s'", body.c_str(),
              o.ref.model.c_str(), model.c_str());
    cr_assert_leq(o.ref.value_begin, o.ref.value_end);
    cr_assert_leq(o.ref.value_end, body.size());
    std::string span = body.substr(o.ref.value_begin, o.ref.value_end - o.ref.value_begin);
    cr_assert(span == raw_token, "%s: span '%s', expected '%s'", body.c_str(), span.c_str(),
              raw_token.c_str());
    cr_assert_eq(o.ref.stream, stream, "%s: stream", body.c_str());
}

void expect_json_no_model(const std::string& body, bool stream = false) {
    Outcome o = scan_json(body);
    cr_assert(o.ok, "%s: finish failed: %s", body.c_str(), o.error.c_str());
    cr_assert_not(o.ref.found, "%s: unexpected model '%s'", body.c_str(), o.ref.model.c_str());
    cr_assert_eq(o.ref.stream, stream, "%s: stream", body.c_str());
}

void expect_json_invalid(const std::string& body) {
    Outcome o = scan_json(body);
    cr_assert_not(o.ok, "'%s' should be rejected", body.c_str());
    cr_assert_not(o.error.empty(), "'%s': no error message", body.c_str());
}

} // namespace

// ------------------------------------------------------------------ JSON

Test(json_scanner, simple_model_span) {
    expect_json_model(R"({"model":"llama-3","messages":[]})", "llama-3", R"("llama-3")");
}

Test(json_scanner, model_after_other_members_with_whitespace) {
    expect_json_model("{ \"a\" : 1 ,\n\t\"b\":[1,2,{\"c\":null}],\r\n \"model\" :  \"qwen:7b\" , "
                      "\"z\": false }",
                      "qwen:7b", R"("qwen:7b")");
}

Test(json_scanner, model_last_member) {
    expect_json_model(R"({"messages":[{"role":"user","content":"hi"}],"model":"m"})", "m",
                      R"("m")");
}

Test(json_scanner, empty_model_string) {
    expect_json_model(R"({"model":""})", "", R"("")");
}

Test(json_scanner, escapes_in_model) {
    // \" \\ \/ and \u00e9 decode; the span covers the raw token as written.
    const std::string body = R"({"model":"a\"b\u00e9c\\d\/e\u20ac"})";
    expect_json_model(body,
                      "a\"b\xc3\xa9"
                      "c\\d/e\xe2\x82\xac",
                      R"("a\"b\u00e9c\\d\/e\u20ac")");
}

// Regression (src/router/model_extract.cc, S::StringHex): a UTF-16 surrogate pair is decoded as two
// separate 3-byte sequences (CESU-8) instead of one 4-byte UTF-8 character, so a model whose
// name has a non-BMP character never matches when the client escapes it (json.dumps does).
Test(json_scanner, surrogate_pair_decodes_to_utf8) {
    expect_json_model(R"({"model":"m\ud83d\ude00"})", "m\xf0\x9f\x98\x80", R"("m\ud83d\ude00")");
}

Test(json_scanner, simple_escapes_decode) {
    expect_json_model(R"({"model":"\b\f\n\r\t"})", "\b\f\n\r\t", R"("\b\f\n\r\t")");
}

Test(json_scanner, escaped_key_is_model) {
    // "mod\u0065l" is the key "model" in JSON terms.
    expect_json_model(R"({"mod\u0065l":"x"})", "x", R"("x")");
}

Test(json_scanner, utf8_model_passes_through) {
    expect_json_model("{\"model\":\"mod\xc3\xa8le\"}", "mod\xc3\xa8le", "\"mod\xc3\xa8le\"");
}

Test(json_scanner, nested_model_ignored) {
    expect_json_no_model(R"({"messages":[{"model":"inner"}],"opts":{"model":"deep"}})");
    expect_json_no_model(R"({"a":{"b":{"model":"deeper","stream":true}}})");
    expect_json_no_model(R"({"list":["model","stream",true]})");
}

Test(json_scanner, top_level_model_after_nested_one) {
    expect_json_model(R"({"o":{"model":"deep"},"model":"top"})", "top", R"("top")");
    expect_json_model(R"({"o":[{"model":"deep"}],"model":"top","p":{"model":"x"}})", "top",
                      R"("top")");
}

Test(json_scanner, model_as_a_value_is_not_a_key) {
    expect_json_no_model(R"({"name":"model","x":"model"})");
}

Test(json_scanner, no_model) {
    expect_json_no_model(R"({"messages":[]})");
}

Test(json_scanner, empty_object) {
    expect_json_no_model("{}");
}

Test(json_scanner, stream_true_detected) {
    expect_json_model(R"({"model":"m","stream":true})", "m", R"("m")", true);
    expect_json_model(R"({"stream" : true , "model":"m"})", "m", R"("m")", true);
    expect_json_no_model(R"({"stream":true})", true);
}

Test(json_scanner, stream_false_or_other) {
    expect_json_model(R"({"model":"m","stream":false})", "m", R"("m")", false);
    expect_json_no_model(R"({"stream":null})", false);
    expect_json_no_model(R"({"stream":"true"})", false);
    expect_json_no_model(R"({"stream":1})", false);
    expect_json_no_model(R"({"o":{"stream":true}})", false);
    expect_json_no_model(R"({"stream":{"x":true}})", false);
    expect_json_no_model(R"({"stream":[true]})", false);
}

Test(json_scanner, numbers_and_literals_at_chunk_ends) {
    // Each value ends right before a delimiter; split byte by byte the scanner sees the end of
    // the token only in the next chunk.
    expect_json_model(R"({"a":0,"b":-0,"c":12345,"d":-1.5e+10,"e":2E-3,"f":0.25,"g":true,)"
                      R"("h":false,"i":null,"j":[1,22,333],"model":"m","k":1e5})",
                      "m", R"("m")");
    expect_json_no_model(R"({"n":1})");
    expect_json_no_model(R"({"t":true})");
    expect_json_no_model(R"({"l":[null]})");
}

Test(json_scanner, whitespace_after_value_is_fine) {
    expect_json_model("  \n{\"model\":\"m\"}\r\n\t ", "m", R"("m")");
}

Test(json_scanner, non_string_model_is_an_error) {
    for (const char* body :
         {R"({"model":123})", R"({"model":null})", R"({"model":true})", R"({"model":{"a":"b"}})",
          R"({"model":["x"]})", R"({"model":-1.5})", R"({"model":false,"x":1})"}) {
        Outcome o = scan_json(body);
        cr_assert_not(o.ok, "%s should be rejected", body);
        cr_assert(o.error.find("model") != std::string::npos, "%s: error '%s' names no model", body,
                  o.error.c_str());
    }
}

Test(json_scanner, truncated) {
    for (const char* body :
         {"{", R"({"model")", R"({"model":)", R"({"model":"x)", R"({"model":"x")",
          R"({"model":"x",)", R"({"a":1)", R"({"a":tr)", R"({"a":[1,2)", R"({"a":"\u00)",
          R"({"a":"\)", R"({"a":-)", R"({"a":1.)", R"({"a":1e)"})
        expect_json_invalid(body);
}

Test(json_scanner, trailing_garbage) {
    expect_json_invalid(R"({"model":"x"} x)");
    expect_json_invalid(R"({"model":"x"}{})");
    expect_json_invalid(R"({"model":"x"}})");
    expect_json_invalid(R"({"model":"x"},)");
}

Test(json_scanner, bad_literals) {
    expect_json_invalid(R"({"stream":tru})");
    expect_json_invalid(R"({"stream":truex})");
    expect_json_invalid(R"({"stream":True})");
    expect_json_invalid(R"({"a":nul})");
    expect_json_invalid(R"({"a":fals})");
    expect_json_invalid(R"({"a":undefined})");
}

Test(json_scanner, bad_numbers) {
    expect_json_invalid(R"({"a":01})");
    expect_json_invalid(R"({"a":-01})");
    expect_json_invalid(R"({"a":00})");
    expect_json_invalid(R"({"a":+1})");
    expect_json_invalid(R"({"a":.5})");
    expect_json_invalid(R"({"a":1.})");
    expect_json_invalid(R"({"a":1.e5})");
    expect_json_invalid(R"({"a":1e})");
    expect_json_invalid(R"({"a":1e+})");
    expect_json_invalid(R"({"a":-})");
    expect_json_invalid(R"({"a":1-2})");
}

Test(json_scanner, leading_zero_message) {
    Outcome o = scan_json(R"({"a":01})");
    cr_assert_not(o.ok);
    cr_assert(o.error.find("leading zero") != std::string::npos, "error: %s", o.error.c_str());
}

Test(json_scanner, control_char_in_string) {
    expect_json_invalid("{\"model\":\"a\nb\"}");
    static const char kNul[] = "{\"model\":\"a\0b\"}";
    expect_json_invalid(std::string(kNul, sizeof kNul - 1));
    expect_json_invalid("{\"k\x01\":1}");
    expect_json_invalid("{\"a\":\"tab\there\"}");
}

Test(json_scanner, bad_escapes) {
    expect_json_invalid(R"({"a":"\x"})");
    expect_json_invalid(R"({"a":"\u12G4"})");
    expect_json_invalid(R"({"a":"\U0041"})");
    expect_json_invalid(R"({"a":"\'"})");
}

Test(json_scanner, structural_errors) {
    expect_json_invalid(R"({"a":1,})");
    expect_json_invalid(R"({"a":[1,]})");
    expect_json_invalid(R"({"a" 1})");
    expect_json_invalid(R"({"a":1 "b":2})");
    expect_json_invalid(R"({a:1})");
    expect_json_invalid(R"({'a':1})");
    expect_json_invalid(R"({"a":1])");
    expect_json_invalid(R"({"a":[1}})");
    expect_json_invalid(R"({,})");
    expect_json_invalid(R"({"a":})");
}

Test(json_scanner, top_level_must_be_an_object) {
    for (const char* body : {R"(["model","x"])", R"("model")", "42", "true", "null", "[]"}) {
        Outcome o = scan_json(body);
        cr_assert_not(o.ok, "%s should be rejected", body);
        cr_assert(o.error.find("object") != std::string::npos, "%s: error '%s'", body,
                  o.error.c_str());
    }
}

Test(json_scanner, empty_body) {
    Outcome o = scan_json("");
    cr_assert_not(o.ok);
    cr_assert(o.error.find("empty") != std::string::npos, "error: %s", o.error.c_str());
    expect_json_invalid("   \n");
}

Test(json_scanner, error_message_has_offset) {
    Outcome o = scan_json(R"({"a":1,"b":x})");
    cr_assert_not(o.ok);
    cr_assert(o.error.find("invalid JSON at byte 11") != std::string::npos, "error: %s",
              o.error.c_str());
}

// Regression: a failed push() ("nesting too deep") used to be overwritten by the next state,
// so scanning went on with the bracket dropped from the stack.
Test(json_scanner, deep_nesting_reports_too_deep) {
    std::string body = "{\"a\":";
    for (int i = 0; i < 2000; ++i) body += '[';
    for (int i = 0; i < 2000; ++i) body += ']';
    body += "}";
    Outcome o = run_json(body, Feed::Whole);
    cr_assert_not(o.ok);
    cr_assert(o.error.find("deep") != std::string::npos, "error: %s", o.error.c_str());
}

// Regression (same cause): unbalanced brackets past the depth limit were accepted as valid
// JSON, and a "model" after them extracted from a body that is not JSON at all.
Test(json_scanner, unbalanced_deep_nesting_rejected) {
    const std::string body =
        "{\"a\":" + std::string(600, '[') + std::string(511, ']') + ",\"model\":\"m\"}";
    Outcome o = run_json(body, Feed::Whole);
    cr_assert_not(o.ok, "600 '[' closed by 511 ']' was accepted (model '%s')", o.ref.model.c_str());
}

Test(json_scanner, moderate_nesting_is_fine) {
    std::string ok_body = "{\"a\":";
    for (int i = 0; i < 100; ++i) ok_body += "[{\"model\":\"no\",\"x\":";
    ok_body += "1";
    for (int i = 0; i < 100; ++i) ok_body += "}]";
    ok_body += ",\"model\":\"yes\"}";
    expect_json_model(ok_body, "yes", R"("yes")");
}

Test(json_scanner, utf8_bom_is_skipped) {
    // Some Windows clients start the body with a byte order mark; the span still counts it.
    const std::string body = "\xEF\xBB\xBF{\"model\":\"m\"}";
    Outcome o = scan_json(body);
    cr_assert(o.ok, "error: %s", o.error.c_str());
    cr_assert(o.ref.model == "m");
    cr_assert(body.substr(o.ref.value_begin, o.ref.value_end - o.ref.value_begin) == "\"m\"");
}

Test(json_scanner, partial_bom_is_invalid) {
    for (const std::string& body : {std::string("\xEF{\"model\":\"m\"}"), std::string("\xEF\xBB{}"),
                                    std::string("\xEF\xBB")}) {
        Outcome o = scan_json(body);
        cr_assert_not(o.ok, "accepted a partial byte order mark (%zu bytes)", body.size());
    }
}

Test(json_scanner, big_body_model_at_the_end) {
    // ~1 MB of base64-ish text (an image data URL) before the model.
    static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::mt19937 rng(42);
    std::string blob;
    blob.reserve(1 << 20);
    for (size_t i = 0; i < (1u << 20); ++i) blob.push_back(kB64[rng() % 64]);
    std::string body = R"({"messages":[{"role":"user","content":[{"type":"image_url",)"
                       R"("image_url":{"url":"data:image/png;base64,)" +
                       blob + R"("}}]}],"stream":true,"model":"vision-model"})";
    Outcome whole = run_json(body, Feed::Whole);
    cr_assert(whole.ok, "error: %s", whole.error.c_str());
    cr_assert(whole.ref.found);
    cr_assert(whole.ref.model == "vision-model");
    cr_assert(whole.ref.stream);
    cr_assert_eq(whole.ref.value_end, body.size() - 1);
    std::string span =
        body.substr(whole.ref.value_begin, whole.ref.value_end - whole.ref.value_begin);
    cr_assert(span == "\"vision-model\"", "span %s", span.c_str());
    expect_same(whole, run_json(body, Feed::Bytes), "big json byte by byte");
    for (uint32_t seed = 1; seed <= 3; ++seed)
        expect_same(whole, run_json(body, Feed::Random, seed, 70000), "big json random chunks");
}

Test(json_scanner, first_top_level_model_wins) {
    expect_json_model(R"({"model":"a","model":"b"})", "a", R"("a")");
}

// ------------------------------------------------------------------ multipart

namespace {

const std::string kBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

std::string part(const std::string& disposition, const std::string& content,
                 const std::string& extra_headers = "") {
    return "--" + kBoundary + "\r\nContent-Disposition: " + disposition + "\r\n" + extra_headers +
           "\r\n" + content + "\r\n";
}

std::string closing() {
    return "--" + kBoundary + "--\r\n";
}

// Binary-ish data rich in '\r', '\n', '-' and prefixes of the delimiter, but never the whole
// delimiter "\r\n--" + boundary.
std::string file_data(size_t size, uint32_t seed) {
    const std::string delim = "\r\n--" + kBoundary;
    std::mt19937 rng(seed);
    std::string out;
    out.reserve(size + delim.size());
    // Things a careless scanner would take for a boundary.
    out += "--" + kBoundary + "\r\n"; // no CRLF before: content, not a delimiter
    out += "x--" + kBoundary + "--\r\n";
    out += "\r\n-" + kBoundary;
    out += "\r\n--" + kBoundary.substr(0, kBoundary.size() - 1) + "X";
    out += "\r\r\n\r\n-\r\n--\r\n--" + kBoundary.substr(0, 10);
    while (out.size() < size) {
        switch (rng() % 8) {
        case 0:
            out += "\r\n";
            break;
        case 1:
            out += "\r\n--";
            break;
        case 2:
            out += delim.substr(0, rng() % (delim.size() - 1));
            break;
        case 3:
            out += '\r';
            break;
        default:
            out.push_back(static_cast<char>(rng() & 0xff));
            break;
        }
    }
    out.resize(size);
    cr_assert_eq(out.find(delim), std::string::npos, "test data contains the delimiter");
    return out;
}

void expect_multipart_model(const std::string& body, const std::string& model,
                            size_t max_chunk = 7) {
    Outcome o = scan_multipart(kBoundary, body, max_chunk);
    cr_assert(o.ok, "finish failed: %s", o.error.c_str());
    cr_assert(o.ref.found, "model not found");
    cr_assert(o.ref.model == model, "model '%s', expected '%s'", o.ref.model.c_str(),
              model.c_str());
    cr_assert_leq(o.ref.value_begin, o.ref.value_end);
    cr_assert_leq(o.ref.value_end, body.size());
    std::string span = body.substr(o.ref.value_begin, o.ref.value_end - o.ref.value_begin);
    cr_assert(span == model, "span '%s', expected '%s'", span.c_str(), model.c_str());
}

void expect_multipart_no_model(const std::string& body) {
    Outcome o = scan_multipart(kBoundary, body);
    cr_assert(o.ok, "finish failed: %s", o.error.c_str());
    cr_assert_not(o.ref.found, "unexpected model '%s'", o.ref.model.c_str());
}

} // namespace

Test(multipart_scanner, model_only) {
    expect_multipart_model(part("form-data; name=\"model\"", "whisper-1") + closing(), "whisper-1");
}

Test(multipart_scanner, model_after_large_file_part) {
    const std::string data = file_data(1 << 20, 7);
    const std::string body = part("form-data; name=\"file\"; filename=\"audio.wav\"", data,
                                  "Content-Type: application/octet-stream\r\n") +
                             part("form-data; name=\"response_format\"", "json") +
                             part("form-data; name=\"model\"", "whisper-large-v3") + closing();
    Outcome whole = run_multipart(kBoundary, body, Feed::Whole);
    cr_assert(whole.ok, "error: %s", whole.error.c_str());
    cr_assert(whole.ref.found);
    cr_assert(whole.ref.model == "whisper-large-v3", "model '%s'", whole.ref.model.c_str());
    std::string span =
        body.substr(whole.ref.value_begin, whole.ref.value_end - whole.ref.value_begin);
    cr_assert(span == "whisper-large-v3", "span '%s'", span.c_str());
    expect_same(whole, run_multipart(kBoundary, body, Feed::Bytes), "multipart bytes");
    for (uint32_t seed = 1; seed <= 4; ++seed) {
        expect_same(whole, run_multipart(kBoundary, body, Feed::Random, seed, 5000),
                    "multipart random chunks");
        expect_same(whole, run_multipart(kBoundary, body, Feed::Random, seed, 60),
                    "multipart small random chunks");
    }
}

Test(multipart_scanner, boundary_like_text_in_small_file_part) {
    // Small enough to check byte by byte and in tiny chunks.
    const std::string body =
        part("form-data; name=\"file\"; filename=\"a.bin\"", file_data(4096, 3)) +
        part("form-data; name=\"model\"", "m1") + closing();
    expect_multipart_model(body, "m1");
}

Test(multipart_scanner, model_field_first) {
    const std::string body = part("form-data; name=\"model\"", "tts-1") +
                             part("form-data; name=\"file\"; filename=\"x\"", file_data(8192, 5)) +
                             closing();
    expect_multipart_model(body, "tts-1", 300);
}

// The zero-copy upload splices a body's middle past the scanner (on_body_skipped) and feeds
// it the last bytes: the end is still checked.
Outcome scan_with_a_skip(const std::string& body, size_t skip_at, size_t skipped) {
    MultipartModelScanner s(kBoundary);
    s.on_body(body.data(), skip_at);
    s.on_body_skipped(skipped);
    s.on_body(body.data() + skip_at + skipped, body.size() - skip_at - skipped);
    Outcome o;
    o.ok = s.finish(o.error);
    o.ref = s.result();
    return o;
}

Test(multipart_scanner, skipped_middle_still_checks_the_end) {
    const std::string file = file_data(100000, 7);
    const std::string start = part("form-data; name=\"model\"", "whisper") +
                              part("form-data; name=\"file\"; filename=\"x\"", "");
    const std::string good = part("form-data; name=\"model\"", "whisper") +
                             part("form-data; name=\"file\"; filename=\"x\"", file) + closing();
    // Skips starting in the file's content, in a part's headers (the file part's), or
    // cutting a delimiter: the closing one at the end is what decides.
    for (size_t at : {start.size() - 10, start.size() + 5, start.size() + 50000}) {
        Outcome o = scan_with_a_skip(good, at, good.size() - at - 200);
        cr_assert(o.ok, "skip at %zu: %s", at, o.error.c_str());
        cr_assert(o.ref.model == "whisper");
    }
    // Without the closing delimiter, the end is refused as for a body read whole.
    const std::string broken = good.substr(0, good.size() - closing().size()) + "\r\n-- no --\r\n";
    Outcome o = scan_with_a_skip(broken, start.size() + 5, 90000);
    cr_assert_not(o.ok);
    cr_assert(o.error.find("closing boundary") != std::string::npos, "%s", o.error.c_str());
    // JSON and URL-encoded bodies cannot be checked in part: a skip is an error.
    JsonModelScanner j;
    j.on_body("{\"model\":\"m\",", 14);
    j.on_body_skipped(100);
    j.on_body("\"x\":1}", 6);
    std::string error;
    cr_assert_not(j.finish(error));
    FormModelScanner f;
    f.on_body("model=m&x=", 10);
    f.on_body_skipped(100);
    cr_assert_not(f.finish(error));
}

Test(multipart_scanner, preamble_and_epilogue) {
    const std::string body = "This is the preamble.\r\nIt is ignored.\r\n" +
                             part("form-data; name=\"model\"", "m") + closing() + "epilogue --" +
                             kBoundary + " ignored\r\n";
    expect_multipart_model(body, "m");
}

Test(multipart_scanner, unquoted_name_and_header_case) {
    const std::string body = "--" + kBoundary +
                             "\r\ncontent-disposition: form-data; name=model\r\n"
                             "Content-Type: text/plain\r\n\r\nmy-model\r\n" +
                             closing();
    expect_multipart_model(body, "my-model");
}

Test(multipart_scanner, model_with_spaces_and_dashes) {
    expect_multipart_model(part("form-data; name=\"model\"", "a b--c\r-d") + closing(),
                           "a b--c\r-d");
}

Test(multipart_scanner, empty_model_value) {
    expect_multipart_model(part("form-data; name=\"model\"", "") + closing(), "");
}

Test(multipart_scanner, xmodel_field_ignored) {
    expect_multipart_no_model(part("form-data; name=\"xmodel\"", "nope") +
                              part("form-data; name=\"model2\"", "nope") +
                              part("form-data; name=model_name", "nope") + closing());
    expect_multipart_model(part("form-data; name=\"xmodel\"", "nope") +
                               part("form-data; name=\"model\"", "yes") + closing(),
                           "yes");
}

Test(multipart_scanner, file_named_model_ignored) {
    expect_multipart_no_model(part("form-data; name=\"model\"; filename=\"model.bin\"", "nope") +
                              closing());
    expect_multipart_model(part("form-data; name=\"model\"; filename=\"model.bin\"", "nope") +
                               part("form-data; name=\"model\"", "real") + closing(),
                           "real");
}

Test(multipart_scanner, first_model_field_wins) {
    expect_multipart_model(part("form-data; name=\"model\"", "first") +
                               part("form-data; name=\"model\"", "second") + closing(),
                           "first");
}

Test(multipart_scanner, missing_closing_boundary) {
    for (const std::string& body :
         {part("form-data; name=\"model\"", "m"),
          part("form-data; name=\"model\"", "m") + "--" + kBoundary,
          part("form-data; name=\"model\"", "m") + "--" + kBoundary + "-",
          part("form-data; name=\"file\"; filename=\"f\"", "data").substr(0, 80),
          std::string("no boundary at all"), std::string()}) {
        Outcome o = scan_multipart(kBoundary, body);
        cr_assert_not(o.ok, "body of %zu bytes should be rejected", body.size());
        cr_assert(o.error.find("closing boundary") != std::string::npos, "error: %s",
                  o.error.c_str());
    }
}

Test(multipart_scanner, model_too_long) {
    Outcome o = scan_multipart(
        kBoundary, part("form-data; name=\"model\"", std::string(5000, 'm')) + closing());
    cr_assert_not(o.ok);
    cr_assert(o.error.find("too long") != std::string::npos, "error: %s", o.error.c_str());
}

Test(multipart_scanner, part_headers_too_long) {
    const std::string body =
        "--" + kBoundary + "\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\nx\r\n" + closing();
    Outcome o = scan_multipart(kBoundary, body, 500);
    cr_assert_not(o.ok);
    cr_assert_not(o.error.empty());
}

// ------------------------------------------------------------------ multipart_boundary

namespace {
void expect_boundary(const char* content_type, const char* want) {
    std::string got = multipart_boundary(content_type);
    cr_assert_str_eq(got.c_str(), want, "Content-Type: %s", content_type);
}
} // namespace

Test(multipart_boundary, unquoted) {
    expect_boundary("multipart/form-data; boundary=abc123", "abc123");
    expect_boundary("multipart/form-data;boundary=abc", "abc");
    expect_boundary("multipart/form-data ; boundary=abc", "abc");
    expect_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
                    "----WebKitFormBoundary7MA4YWxkTrZu0gW");
}

Test(multipart_boundary, quoted) {
    expect_boundary("multipart/form-data; boundary=\"a b:c\"", "a b:c");
    expect_boundary("multipart/form-data; boundary=\"simple\"; charset=utf-8", "simple");
}

Test(multipart_boundary, among_other_parameters_and_case) {
    expect_boundary("Multipart/Form-Data; charset=utf-8; BOUNDARY=xyz", "xyz");
    expect_boundary("MULTIPART/FORM-DATA; Boundary=q", "q");
}

Test(multipart_boundary, missing) {
    expect_boundary("multipart/form-data", "");
    expect_boundary("multipart/form-data;", "");
    expect_boundary("multipart/form-data; charset=utf-8", "");
    expect_boundary("multipart/form-data; boundary=", "");
    expect_boundary("multipart/form-data; boundary=\"\"", "");
}

Test(multipart_boundary, too_long) {
    std::string ct = "multipart/form-data; boundary=" + std::string(71, 'b');
    std::string got = multipart_boundary(ct);
    cr_assert(got.empty());
    ct = "multipart/form-data; boundary=" + std::string(70, 'b');
    got = multipart_boundary(ct);
    cr_assert_eq(got.size(), 70u);
}

Test(multipart_boundary, not_multipart_form_data) {
    expect_boundary("application/json; boundary=abc", "");
    expect_boundary("multipart/mixed; boundary=abc", "");
    expect_boundary("text/plain", "");
    expect_boundary("", "");
    expect_boundary("multipart/form-datax; boundary=abc", "");
}

// ------------------------------------------------------------------ URL-encoded forms

namespace {
Outcome run_form(const std::string& body, Feed mode) {
    ls::router::FormModelScanner s;
    feed(s, body, mode, 3, 5);
    Outcome o;
    o.ok = s.finish(o.error);
    o.ref = s.result();
    return o;
}

void expect_form(const std::string& body, const char* model, const char* raw_value) {
    for (Feed mode : {Feed::Whole, Feed::Bytes, Feed::Random}) {
        Outcome o = run_form(body, mode);
        cr_assert(o.ok, "%s: %s", body.c_str(), o.error.c_str());
        cr_assert(o.ref.found, "%s", body.c_str());
        cr_assert_str_eq(o.ref.model.c_str(), model, "%s", body.c_str());
        const std::string span =
            body.substr(o.ref.value_begin, o.ref.value_end - o.ref.value_begin);
        cr_assert_str_eq(span.c_str(), raw_value, "%s", body.c_str());
    }
}
} // namespace

Test(form_scanner, finds_the_first_model_field_anywhere) {
    expect_form("model=m", "m", "m");
    expect_form("prompt=a+cat&model=qwen&steps=4", "qwen", "qwen");
    expect_form("x=1&model=first&model=second", "first", "first");
    expect_form("modelx=no&xmodel=no&model=yes", "yes", "yes");
}

Test(form_scanner, decodes_plus_and_percent_escapes) {
    expect_form("model=author%2Fmodel%3Aq4&x=y", "author/model:q4", "author%2Fmodel%3Aq4");
    expect_form("a=b&model=two+words", "two words", "two+words");
    expect_form("model=", "", "");
}

Test(form_scanner, absent_and_broken) {
    for (const char* body : {"", "a=b&c=d", "model", "&&&", "modelmodel=x"}) {
        Outcome o = run_form(body, Feed::Bytes);
        cr_assert(o.ok, "%s", body);
        cr_assert_not(o.ref.found, "%s", body);
    }
    Outcome o = run_form("model=bad%zz", Feed::Random);
    cr_assert_not(o.ok);
    cr_assert_str_eq(o.error.c_str(), "form field 'model' has a broken percent-escape");
    o = run_form("model=" + std::string(4000, 'x'), Feed::Whole);
    cr_assert_not(o.ok);
    cr_assert_str_eq(o.error.c_str(), "form field 'model' is too long");
}

Test(form_scanner, chosen_by_content_type) {
    ls::http::Request req;
    std::string error;
    req.headers.add("Content-Type", "Application/X-WWW-Form-Urlencoded; charset=utf-8");
    cr_assert(dynamic_cast<ls::router::FormModelScanner*>(
        ls::router::body_scanner_for(req, error).get()));
    ls::http::Request json;
    json.headers.add("Content-Type", "application/json");
    cr_assert(dynamic_cast<JsonModelScanner*>(ls::router::body_scanner_for(json, error).get()));
}

Test(form_scanner, json_labelled_as_a_form_is_scanned_as_json) {
    // curl -d '{"model":"m"}' without -H 'Content-Type: application/json'
    const std::string body = "  \n{\"stream\": true, \"model\": \"qwen\"}";
    for (Feed mode : {Feed::Whole, Feed::Bytes, Feed::Random}) {
        ls::router::FormModelScanner s;
        feed(s, body, mode, 5, 4);
        std::string error;
        cr_assert(s.finish(error), "%s", error.c_str());
        cr_assert(s.kind() == BodyScanner::Kind::Json);
        cr_assert(s.result().found);
        cr_assert_str_eq(s.result().model.c_str(), "qwen");
        cr_assert(s.result().stream);
        const std::string span =
            body.substr(s.result().value_begin, s.result().value_end - s.result().value_begin);
        cr_assert_str_eq(span.c_str(), "\"qwen\"");
    }
    ls::router::FormModelScanner form;
    form.on_body("model=m", 7);
    std::string error;
    cr_assert(form.finish(error));
    cr_assert(form.kind() == BodyScanner::Kind::Form);
}

// String content is skipped 16 and 8 bytes at a time (string_run_end): a quote, a backslash or a
// control character must be seen at every offset from a word's start, and bytes next to them
// (' ', '!', '#', '[', ']', DEL, UTF-8) must not be taken for one. Byte by byte, the scanner
// takes the one-byte path, so scan_json compares the two.
Test(json_scanner, string_run_stops_at_every_offset) {
    const std::string near_misses = " !#[]\x7f\xc3\xa9\xff";
    for (size_t k = 0; k <= 40; ++k) {
        const std::string pad(k, 'a');
        for (char miss : near_misses) {
            const std::string plain = pad + miss + pad;
            expect_json_model("{\"model\":\"" + plain + "\"}", plain, "\"" + plain + "\"");
        }
        const std::string quoted = pad + "\\\"" + pad;
        expect_json_model("{\"model\":\"" + quoted + "\"}", pad + "\"" + pad, "\"" + quoted + "\"");
        const std::string backslash = pad + "\\\\" + pad;
        expect_json_model("{\"model\":\"" + backslash + "\"}", pad + "\\" + pad,
                          "\"" + backslash + "\"");
        // The same stops in a string that is skipped, not kept.
        const std::string content = "{\"messages\":[{\"content\":\"" + pad + "\\\"" + pad + "\\n" +
                                    pad + "\"}],\"model\":\"m\"}";
        expect_json_model(content, "m", "\"m\"");
        for (char control : {'\x01', '\x1f', '\n', '\t'}) {
            expect_json_invalid("{\"model\":\"" + pad + control + pad + "\"}");
            expect_json_invalid("{\"messages\":\"" + pad + control + pad + "\",\"model\":\"m\"}");
        }
        // The string's end itself, at every offset.
        expect_json_model("{\"model\":\"" + pad + "\",\"x\":1}", pad, "\"" + pad + "\"");
    }
}
