// Finds the requested `model` in a request body while the body streams in, without holding
// the body: a validating incremental JSON scanner (top-level "model" and "stream") and an
// incremental multipart/form-data scanner (the `model` field, which may come after a huge
// file part), and one for URL-encoded forms. Both record the byte span of the value so useModelName
// can replace it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/connection.h"

namespace ls::router {

struct ModelRef {
    bool found = false;
    std::string model;
    // Byte span [begin, end) of the value in the body: for JSON the whole string token with
    // its quotes, for multipart the field content.
    size_t value_begin = 0;
    size_t value_end = 0;
    bool stream = false; // JSON "stream": true
};

class BodyScanner : public http::BodyObserver {
public:
    // Called once the whole body has been seen. Returns false with `error` set when the body
    // is malformed.
    virtual bool finish(std::string& error) = 0;
    virtual const ModelRef& result() const = 0;
    // How the body is written (a URL-encoded body that is JSON counts as JSON).
    enum class Kind { Json, Multipart, Form };
    virtual Kind kind() const = 0;
};

// Streaming RFC 8259 validator that extracts top-level "model" (a string) and "stream".
class JsonModelScanner : public BodyScanner {
public:
    JsonModelScanner();
    void on_body(const char* data, size_t len) override;
    void on_body_skipped(size_t n) override; // an error: a document cannot be checked in part
    bool finish(std::string& error) override;
    const ModelRef& result() const override { return ref_; }
    Kind kind() const override { return Kind::Json; }

private:
    void fail(const char* what);
    [[gnu::always_inline]] inline bool step(char c);
    void push(char container);
    void after_value();

    enum class S : uint8_t {
        Value,           // expecting a value
        ValueOrArrayEnd, // after '['
        ObjKeyOrEnd,     // after '{'
        ObjKey,          // after ',' in an object
        Colon,
        AfterValue, // expecting ',' or a closing bracket (or end at depth 0)
        String,
        StringEscape,
        StringHex,
        Number,
        Literal,
        Done,
        Error,
    };
    S s_ = S::Value;
    std::string stack_; // '{' or '['
    bool string_is_key_ = false;
    int hex_left_ = 0;
    unsigned code_point_ = 0;
    unsigned high_surrogate_ = 0; // first half of a \uD83D\uDE00 pair
    bool overlong_ = false;       // the captured string hit kMaxCapture
    size_t bom_seen_ = 0;         // bytes of a leading UTF-8 byte order mark skipped so far
    static constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};
    bool capture_done_string_ = false; // the value that just ended was a string
    std::string literal_;
    const char* literal_want_ = nullptr;
    int number_state_ = 0;
    size_t offset_ = 0;
    std::string error_;
    // Tracking of the top-level "model"/"stream" members.
    std::string key_;      // current top-level key (bounded)
    bool capture_ = false; // capturing the current string's content
    std::string captured_;
    bool key_is_model_ = false;
    bool key_is_stream_ = false;
    size_t value_start_ = 0;
    ModelRef ref_;
    static constexpr size_t kMaxCapture = 1024;
};

// Streaming multipart/form-data scanner for the `model` field.
class MultipartModelScanner : public BodyScanner {
public:
    explicit MultipartModelScanner(std::string boundary);
    void on_body(const char* data, size_t len) override;
    // The skipped bytes are taken as part content: what follows is searched for the next
    // delimiter (the closing one, at the body's end), so finish() still checks the end.
    void on_body_skipped(size_t n) override;
    bool finish(std::string& error) override;
    const ModelRef& result() const override { return ref_; }
    Kind kind() const override { return Kind::Multipart; }

private:
    void on_delimiter(size_t delim_begin);
    void on_headers_done();
    enum class S : uint8_t { Preamble, AfterDelimiter, Headers, Content, Epilogue, Error };
    S s_ = S::Preamble;
    std::string delim_; // "\r\n--" + boundary
    std::vector<size_t> fail_;
    size_t match_ = 2; // the body starts with "--boundary": pretend "\r\n" was seen
    size_t offset_ = 0;
    std::string after_delim_;
    std::string headers_;
    size_t content_begin_ = 0;
    bool part_is_model_ = false;
    std::string captured_;
    std::string error_;
    ModelRef ref_;
};

// Streaming application/x-www-form-urlencoded scanner for the first `model` field; the span
// is the raw (still encoded) value.
// `curl -d '{"model":…}'` sends JSON labelled as a form: a body whose first non-blank byte
// is '{' or '[' is scanned as JSON instead.
class FormModelScanner : public BodyScanner {
public:
    void on_body(const char* data, size_t len) override;
    void on_body_skipped(size_t n) override; // an error, as for JSON
    bool finish(std::string& error) override;
    const ModelRef& result() const override { return json_ ? json_->result() : ref_; }
    Kind kind() const override { return json_ ? Kind::Json : Kind::Form; }

private:
    void scan_form(const char* data, size_t len);
    void end_pair();
    bool skipped_ = false;
    std::unique_ptr<JsonModelScanner> json_;
    bool sniffed_ = false;  // the first non-blank byte has been seen
    size_t leading_ws_ = 0; // blanks before it
    bool in_value_ = false;
    bool key_too_long_ = false;
    std::string key_;   // raw, bounded
    std::string value_; // raw, only for the model field, bounded
    size_t value_begin_ = 0;
    size_t offset_ = 0;
    bool overlong_ = false;
    ModelRef ref_;
    static constexpr size_t kMaxKey = 64;
    static constexpr size_t kMaxValue = 3 * 1024; // 1 KiB of percent-encoded bytes
};

// Boundary parameter of a multipart/form-data Content-Type, or empty.
std::string multipart_boundary(std::string_view content_type);

// The scanner for a request's body by its Content-Type (multipart, URL-encoded form, else
// JSON); null with
// `error` set for a multipart type without a boundary.
std::unique_ptr<BodyScanner> body_scanner_for(const http::Request& req, std::string& error);

} // namespace ls::router
