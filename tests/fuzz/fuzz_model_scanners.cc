// libFuzzer harness: the streaming `model` scanners of request bodies
// (src/router/model_extract.h): JSON, multipart/form-data and URL-encoded forms, and the choice
// among them by Content-Type.
//
// Input: byte 0 picks the scanner (low two bits: 0 JSON, 1 multipart, 2 form, 3 by the
// Content-Type on the first line), byte 1 seeds how the body is split into chunks. For
// multipart the first line is the boundary, for 3 the Content-Type; the rest is the body.
//
// Properties: no sanitizer report; the result (accepted or not, the error, the model, its
// byte span, `stream`, the kind) does not depend on how the body is split; a found model's
// span lies in the body and is what the scanner says (JSON: a quoted string token; multipart:
// exactly the model); a body the JSON scanner accepts is JSON for cJSON too, with the same
// top-level "model".
#include <cjson/cJSON.h>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "http/request.h"
#include "router/model_extract.h"

using ls::router::BodyScanner;
using ls::router::ModelRef;

namespace {

struct Outcome {
    bool made = false; // body_scanner_for gave a scanner
    bool ok = false;
    std::string error;
    ModelRef ref;
    BodyScanner::Kind kind = BodyScanner::Kind::Json;
};

std::unique_ptr<BodyScanner> make(int mode, const std::string& line) {
    switch (mode) {
    case 0:
        return std::make_unique<ls::router::JsonModelScanner>();
    case 1:
        if (line.empty() || line.size() > 70) return nullptr; // what multipart_boundary allows
        return std::make_unique<ls::router::MultipartModelScanner>(line);
    case 2:
        return std::make_unique<ls::router::FormModelScanner>();
    default: {
        ls::http::Request req;
        req.headers.add("Content-Type", line);
        std::string error;
        auto s = ls::router::body_scanner_for(req, error);
        FUZZ_CHECK(s || !error.empty());
        return s;
    }
    }
}

Outcome scan(int mode, const std::string& line, std::string_view body, uint32_t seed) {
    Outcome o;
    auto s = make(mode, line);
    if (!s) return o;
    o.made = true;
    fuzz::Splitter split(seed);
    for (std::string_view chunk : split.split(body)) s->on_body(chunk.data(), chunk.size());
    o.ok = s->finish(o.error);
    o.ref = s->result();
    o.kind = s->kind();
    FUZZ_CHECK(o.ok || !o.error.empty());
    return o;
}

bool same(const Outcome& a, const Outcome& b) {
    return a.made == b.made && a.ok == b.ok && a.error == b.error && a.kind == b.kind &&
           a.ref.found == b.ref.found && a.ref.model == b.ref.model &&
           a.ref.value_begin == b.ref.value_begin && a.ref.value_end == b.ref.value_end &&
           a.ref.stream == b.ref.stream;
}

// What cJSON makes of a body the scanner accepted (not compared: \u escapes, which cJSON
// decodes differently for lone surrogates, and a leading byte order mark, which cJSON refuses).
void check_against_cjson(std::string_view body, const Outcome& o) {
    if (body.find("\\u") != std::string_view::npos) return;
    if (body.size() >= 1 && static_cast<unsigned char>(body[0]) == 0xEF) return;
    std::string text(body);
    const char* end = nullptr;
    cJSON* doc = cJSON_ParseWithLengthOpts(text.c_str(), text.size() + 1, &end, 1);
    FUZZ_CHECK(doc != nullptr); // accepted by the scanner, so valid JSON
    FUZZ_CHECK(cJSON_IsObject(doc));
    const cJSON* model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    FUZZ_CHECK((model != nullptr) == o.ref.found);
    if (model) {
        FUZZ_CHECK(cJSON_IsString(model));
        FUZZ_CHECK(o.ref.model == model->valuestring);
    }
    cJSON_Delete(doc);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const int mode = data[0] & 3;
    const uint32_t seed = data[1];
    std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
    std::string line;
    if (mode == 1 || mode == 3) {
        const size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) return 0;
        line = std::string(rest.substr(0, nl));
        rest.remove_prefix(nl + 1);
    }

    const Outcome whole = scan(mode, line, rest, 0);
    const Outcome bytes = scan(mode, line, rest, 0x10000 | seed); // never 0: split
    FUZZ_CHECK(same(whole, bytes));
    if (!whole.made || !whole.ok) return 0;

    const ModelRef& r = whole.ref;
    if (r.found) {
        FUZZ_CHECK(r.value_begin <= r.value_end);
        FUZZ_CHECK(r.value_end <= rest.size());
        const std::string_view span = rest.substr(r.value_begin, r.value_end - r.value_begin);
        switch (whole.kind) {
        case BodyScanner::Kind::Json:
            FUZZ_CHECK(span.size() >= 2 && span.front() == '"' && span.back() == '"');
            break;
        case BodyScanner::Kind::Multipart:
            FUZZ_CHECK(span == r.model);
            break;
        case BodyScanner::Kind::Form:
            FUZZ_CHECK(span.find('&') == std::string_view::npos);
            break;
        }
    }
    if (whole.kind == BodyScanner::Kind::Json) {
        // A form body that turned out to be JSON may start with blanks cJSON skips as well.
        check_against_cjson(rest, whole);
    }
    return 0;
}
