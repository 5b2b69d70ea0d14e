#include "router/model_extract.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "http/headers.h"

namespace ls::router {

namespace {
bool is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
// The first byte in [p, end) that ends a run of plain string content: '"', '\\' or a control
// character (< 0x20), else end. A prompt of agents' size is hundreds of kilobytes of string,
// so it is scanned 16 bytes at a time with SSE2 (every x86-64 has it), then 8 at a time: per
// word, the bytes equal to '"' or '\\' or below 0x20 get their high bit set. Borrows can mark
// bytes above a real match, never below it, so the lowest mark is the first match
// (little-endian: the lowest bits are the first byte).
const char* string_run_end(const char* p, const char* end) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i control_max = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, control_max), v); // v <= 0x1F
        const __m128i stops = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
        if (const int mask = _mm_movemask_epi8(stops))
            return p + std::countr_zero(static_cast<unsigned>(mask));
        p += 16;
    }
#endif
    if constexpr (std::endian::native == std::endian::little) {
        constexpr uint64_t kOnes = 0x0101010101010101ull;
        constexpr uint64_t kHighs = 0x8080808080808080ull;
        while (end - p >= 8) {
            uint64_t v;
            memcpy(&v, p, 8);
            const uint64_t quote = v ^ (kOnes * '"');
            const uint64_t backslash = v ^ (kOnes * '\\');
            const uint64_t marks = ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) |
                                   ((v - kOnes * 0x20) & ~v);
            if (const uint64_t hit = marks & kHighs) return p + (std::countr_zero(hit) >> 3);
            p += 8;
        }
    }
    for (; p < end; ++p) {
        const unsigned char c = static_cast<unsigned char>(*p);
        if (c == '"' || c == '\\' || c < 0x20) break;
    }
    return p;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}
} // namespace

// ------------------------------------------------------------------ JSON

JsonModelScanner::JsonModelScanner() {
    stack_.reserve(16);
}

void JsonModelScanner::fail(const char* what) {
    if (s_ == S::Error) return;
    s_ = S::Error;
    error_ = std::string("invalid JSON at byte ") + std::to_string(offset_) + ": " + what;
}

void JsonModelScanner::push(char container) {
    if (stack_.size() >= 512) {
        fail("nesting too deep");
        return;
    }
    stack_.push_back(container);
}

void JsonModelScanner::after_value() {
    if (stack_.empty()) {
        s_ = S::Done;
        return;
    }
    // A member of the top-level object just ended.
    if (stack_.size() == 1 && stack_[0] == '{' && (key_is_model_ || key_is_stream_)) {
        if (key_is_model_ && !ref_.found) {
            if (!capture_done_string_) {
                fail("\"model\" must be a string");
                return;
            }
            if (overlong_) {
                fail("\"model\" is too long");
                return;
            }
            ref_.found = true;
            ref_.model = captured_;
            ref_.value_begin = value_start_;
            ref_.value_end = offset_ + 1;
        }
        key_is_model_ = key_is_stream_ = false;
    }
    capture_done_string_ = false;
    s_ = S::AfterValue;
}

// Consumes one character; returns false when the character must be looked at again (it
// ended a number or literal).
inline bool JsonModelScanner::step(char c) {
    switch (s_) {
    case S::Value:
    case S::ValueOrArrayEnd:
        if (is_ws(c)) return true;
        if (c == ']' && s_ == S::ValueOrArrayEnd) {
            stack_.pop_back();
            after_value();
            return true;
        }
        if (stack_.empty() && c != '{') {
            fail("the request body must be a JSON object");
            return true;
        }
        if (stack_.size() == 1 && stack_[0] == '{') value_start_ = offset_;
        if (c == '{' || c == '[') {
            push(c);
            if (s_ != S::Error) s_ = c == '{' ? S::ObjKeyOrEnd : S::ValueOrArrayEnd;
        } else if (c == '"') {
            string_is_key_ = false;
            capture_ = stack_.size() == 1 && key_is_model_;
            captured_.clear();
            overlong_ = false;
            s_ = S::String;
        } else if (c == '-' || is_digit(c)) {
            number_state_ = c == '-' ? 0 : (c == '0' ? 1 : 2);
            s_ = S::Number;
        } else if (c == 't' || c == 'f' || c == 'n') {
            literal_want_ = c == 't' ? "true" : (c == 'f' ? "false" : "null");
            literal_.assign(1, c);
            s_ = S::Literal;
        } else {
            fail("unexpected character");
        }
        return true;
    case S::ObjKeyOrEnd:
    case S::ObjKey:
        if (is_ws(c)) return true;
        if (c == '}' && s_ == S::ObjKeyOrEnd) {
            stack_.pop_back();
            after_value();
            return true;
        }
        if (c != '"') {
            fail("expected a string key");
            return true;
        }
        string_is_key_ = true;
        capture_ = stack_.size() == 1;
        captured_.clear();
        overlong_ = false;
        s_ = S::String;
        return true;
    case S::Colon:
        if (is_ws(c)) return true;
        if (c != ':')
            fail("expected ':'");
        else
            s_ = S::Value;
        return true;
    case S::AfterValue:
        if (is_ws(c)) return true;
        if (c == ',') {
            s_ = stack_.back() == '{' ? S::ObjKey : S::Value;
        } else if ((c == '}' && stack_.back() == '{') || (c == ']' && stack_.back() == '[')) {
            stack_.pop_back();
            after_value();
        } else {
            fail("expected ',' or a closing bracket");
        }
        return true;
    case S::String:
        if (c == '"') {
            if (string_is_key_) {
                if (stack_.size() == 1) {
                    // (as views: a size check first, no strlen per key)
                    key_is_model_ = std::string_view(captured_) == "model";
                    key_is_stream_ = std::string_view(captured_) == "stream";
                }
                s_ = S::Colon;
            } else {
                capture_done_string_ = true;
                after_value();
            }
            capture_ = false;
        } else if (c == '\\') {
            s_ = S::StringEscape;
            return true;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            fail("control character in string");
        } else if (capture_) {
            if (captured_.size() < kMaxCapture)
                captured_.push_back(c);
            else
                overlong_ = true;
        }
        return true;
    case S::StringEscape: {
        const char* simple = strchr("\"\\/bfnrt", c);
        if (c == 'u') {
            hex_left_ = 4;
            code_point_ = 0;
            s_ = S::StringHex;
            return true;
        }
        if (c == '\0' || !simple) {
            fail("invalid escape");
            return true;
        }
        if (capture_ && captured_.size() < kMaxCapture) {
            static constexpr char kDecoded[] = "\"\\/\b\f\n\r\t";
            captured_.push_back(kDecoded[simple - "\"\\/bfnrt"]);
        }
        s_ = S::String;
        return true;
    }
    case S::StringHex: {
        int v = hex_digit(c);
        if (v < 0) {
            fail("invalid \\u escape");
            return true;
        }
        code_point_ = code_point_ * 16 + static_cast<unsigned>(v);
        if (--hex_left_ == 0) {
            unsigned cp = code_point_;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                high_surrogate_ = cp; // wait for the low half
            } else {
                if (cp >= 0xDC00 && cp <= 0xDFFF && high_surrogate_)
                    cp = 0x10000 + ((high_surrogate_ - 0xD800) << 10) + (cp - 0xDC00);
                high_surrogate_ = 0;
                if (capture_ && captured_.size() < kMaxCapture) append_utf8(captured_, cp);
            }
            s_ = S::String;
        }
        return true;
    }
    case S::Number: {
        // 0:'-' 1:leading 0 2:int digits 3:'.' 4:frac 5:e 6:e sign 7:exp digits
        const int st = number_state_;
        if (is_digit(c)) {
            if (st == 0)
                number_state_ = c == '0' ? 1 : 2;
            else if (st == 1)
                fail("leading zero in number");
            else if (st == 3)
                number_state_ = 4;
            else if (st == 5 || st == 6)
                number_state_ = 7;
            return true;
        }
        if (c == '.' && (st == 1 || st == 2)) {
            number_state_ = 3;
            return true;
        }
        if ((c == 'e' || c == 'E') && (st == 1 || st == 2 || st == 4)) {
            number_state_ = 5;
            return true;
        }
        if ((c == '+' || c == '-') && st == 5) {
            number_state_ = 6;
            return true;
        }
        if (st == 1 || st == 2 || st == 4 || st == 7) {
            offset_--; // the value ended on the previous byte
            after_value();
            offset_++;
            return false;
        }
        fail("malformed number");
        return true;
    }
    case S::Literal: {
        const size_t n = literal_.size();
        if (literal_want_[n] == '\0') {
            if (key_is_stream_ && stack_.size() == 1)
                ref_.stream = std::string_view(literal_) == "true";
            offset_--;
            after_value();
            offset_++;
            return false;
        }
        if (c != literal_want_[n])
            fail("invalid literal");
        else
            literal_.push_back(c);
        return true;
    }
    case S::Done:
        if (!is_ws(c)) fail("unexpected data after the JSON value");
        return true;
    case S::Error:
        return true;
    }
    return true;
}

void JsonModelScanner::on_body(const char* data, size_t len) {
    // A UTF-8 byte order mark before the document (some Windows clients send one) is skipped.
    while (bom_seen_ < 3 && offset_ == bom_seen_ && len > 0 && s_ == S::Value && stack_.empty() &&
           static_cast<unsigned char>(*data) == kBom[bom_seen_]) {
        ++bom_seen_;
        ++data;
        --len;
        ++offset_;
    }
    if (bom_seen_ > 0 && bom_seen_ < 3 && len > 0) fail("invalid byte order mark");
    for (size_t i = 0; i < len && s_ != S::Error;) {
        // Fast path: the bulk of a body is string content (messages, images), and the
        // strings kept (top-level keys, the model) are taken a run at a time too.
        if (s_ == S::String) {
            const size_t j = static_cast<size_t>(string_run_end(data + i, data + len) - data);
            if (capture_) {
                const size_t room = kMaxCapture - std::min(captured_.size(), kMaxCapture);
                const size_t n = std::min(j - i, room);
                captured_.append(data + i, n);
                if (n < j - i) overlong_ = true;
            }
            offset_ += j - i;
            i = j;
            if (i == len) break;
        }
        if (step(data[i])) {
            ++i;
            ++offset_;
        }
    }
}

void JsonModelScanner::on_body_skipped(size_t n) {
    offset_ += n;
    if (s_ != S::Error) fail("a JSON body cannot be checked in part");
}

bool JsonModelScanner::finish(std::string& error) {
    if (bom_seen_ > 0 && bom_seen_ < 3) fail("invalid byte order mark");
    // A number or literal may end at the end of input.
    if (s_ == S::Number || s_ == S::Literal) step(' ');
    if (s_ == S::Error) {
        error = error_;
        return false;
    }
    if (s_ != S::Done) {
        error = offset_ == 0 ? "the request body is empty (a JSON object was expected)"
                             : "invalid JSON: unexpected end of the request body";
        return false;
    }
    return true;
}

// ------------------------------------------------------------------ multipart

std::string multipart_boundary(std::string_view ct) {
    size_t semi = ct.find(';');
    std::string_view type = ct.substr(0, semi);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    if (!http::iequals(type, "multipart/form-data") || semi == std::string_view::npos) return {};
    std::string_view params = ct.substr(semi + 1);
    while (!params.empty()) {
        size_t next = params.find(';');
        std::string_view p = params.substr(0, next);
        while (!p.empty() && p.front() == ' ') p.remove_prefix(1);
        size_t eq = p.find('=');
        if (eq != std::string_view::npos && http::iequals(p.substr(0, eq), "boundary")) {
            std::string_view v = p.substr(eq + 1);
            while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            if (v.empty() || v.size() > 70) return {};
            return std::string(v);
        }
        if (next == std::string_view::npos) break;
        params.remove_prefix(next + 1);
    }
    return {};
}

MultipartModelScanner::MultipartModelScanner(std::string boundary) : delim_("\r\n--" + boundary) {
    // KMP failure function of the delimiter.
    fail_.assign(delim_.size(), 0);
    for (size_t i = 1, k = 0; i < delim_.size(); ++i) {
        while (k > 0 && delim_[i] != delim_[k]) k = fail_[k - 1];
        if (delim_[i] == delim_[k]) ++k;
        fail_[i] = k;
    }
}

void MultipartModelScanner::on_delimiter(size_t delim_begin) {
    if (s_ == S::Content && part_is_model_ && !ref_.found) {
        const size_t len = delim_begin - content_begin_;
        if (len > 1024) {
            s_ = S::Error;
            error_ = "the multipart field 'model' is too long";
            return;
        }
        ref_.found = true;
        ref_.model = captured_.substr(0, len);
        ref_.value_begin = content_begin_;
        ref_.value_end = delim_begin;
    }
    s_ = S::AfterDelimiter;
    after_delim_.clear();
}

void MultipartModelScanner::on_headers_done() {
    // Only a field without a filename named exactly "model" counts.
    part_is_model_ = false;
    size_t pos = 0;
    while (pos < headers_.size()) {
        size_t eol = headers_.find("\r\n", pos);
        if (eol == std::string::npos) eol = headers_.size();
        std::string_view line(headers_.data() + pos, eol - pos);
        pos = eol + 2;
        size_t colon = line.find(':');
        if (colon == std::string_view::npos ||
            !http::iequals(line.substr(0, colon), "content-disposition"))
            continue;
        std::string_view v = line.substr(colon + 1);
        const bool named_model = v.find("name=\"model\"") != std::string_view::npos ||
                                 v.find("name=model") != std::string_view::npos;
        const bool is_file = v.find("filename") != std::string_view::npos;
        if (named_model && !is_file) {
            // "name=\"model\"" must not be the tail of e.g. name="xmodel".
            size_t at = v.find("name=");
            while (at != std::string_view::npos && at > 0 && v[at - 1] != ' ' && v[at - 1] != ';')
                at = v.find("name=", at + 1);
            part_is_model_ = at != std::string_view::npos &&
                             (v.substr(at, 12) == "name=\"model\"" ||
                              (v.substr(at, 10) == "name=model" &&
                               (at + 10 == v.size() || v[at + 10] == ';' || v[at + 10] == ' ')));
        }
    }
    captured_.clear();
    content_begin_ = offset_ + 1;
    s_ = S::Content;
}

void MultipartModelScanner::on_body(const char* data, size_t len) {
    for (size_t i = 0; i < len; ++i, ++offset_) {
        if (s_ == S::Error || s_ == S::Epilogue) {
            offset_ += len - i;
            return;
        }
        const char c = data[i];
        // Fast path: inside content with no partial match, jump to the next '\r'.
        if (match_ == 0 && s_ == S::Content && !part_is_model_) {
            const void* cr = memchr(data + i, '\r', len - i);
            size_t skip =
                cr ? static_cast<size_t>(static_cast<const char*>(cr) - (data + i)) : len - i;
            if (skip > 0) {
                i += skip - 1;
                offset_ += skip - 1;
                continue;
            }
        }
        if (s_ == S::Content || s_ == S::Preamble) {
            if (s_ == S::Content && part_is_model_ && captured_.size() <= 1024 + delim_.size())
                captured_.push_back(c);
            while (match_ > 0 && c != delim_[match_]) match_ = fail_[match_ - 1];
            if (c == delim_[match_]) ++match_;
            if (match_ == delim_.size()) {
                match_ = 0;
                on_delimiter(offset_ + 1 - delim_.size());
            }
            continue;
        }
        if (s_ == S::AfterDelimiter) {
            after_delim_.push_back(c);
            if (after_delim_ == "--") {
                s_ = S::Epilogue;
            } else if (after_delim_.size() >= 2 &&
                       after_delim_.compare(after_delim_.size() - 2, 2, "\r\n") == 0) {
                s_ = S::Headers;
                headers_.clear();
            } else if (after_delim_.size() > 64) {
                s_ = S::Error;
                error_ = "malformed multipart body: bad delimiter line";
            }
            continue;
        }
        if (s_ == S::Headers) {
            headers_.push_back(c);
            if (headers_.size() == 2 && headers_ == "\r\n") {
                headers_.clear();
                on_headers_done();
            } else if (headers_.size() >= 4 &&
                       headers_.compare(headers_.size() - 4, 4, "\r\n\r\n") == 0) {
                headers_.resize(headers_.size() - 4);
                on_headers_done();
            } else if (headers_.size() > 16 * 1024) {
                s_ = S::Error;
                error_ = "malformed multipart body: part headers too long";
            }
        }
    }
}

void MultipartModelScanner::on_body_skipped(size_t n) {
    offset_ += n;
    if (s_ == S::Error || s_ == S::Epilogue) return;
    // Whatever part was open, the skipped bytes ended inside some part's content; a
    // delimiter cut by the skip is not one we can see, so matching starts afresh.
    s_ = S::Content;
    part_is_model_ = false;
    match_ = 0;
}

bool MultipartModelScanner::finish(std::string& error) {
    if (s_ == S::Error) {
        error = error_;
        return false;
    }
    if (s_ != S::Epilogue) {
        error = "malformed multipart body: missing the closing boundary";
        return false;
    }
    return true;
}

// ------------------------------------------------------------------ URL-encoded forms

namespace {
// '+' is a space and %XX a byte; false on a broken escape.
bool form_decode(std::string_view raw, std::string& out) {
    out.clear();
    for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '+') {
            out += ' ';
        } else if (raw[i] == '%') {
            if (i + 2 >= raw.size() || !isxdigit(static_cast<unsigned char>(raw[i + 1])) ||
                !isxdigit(static_cast<unsigned char>(raw[i + 2])))
                return false;
            out += static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += raw[i];
        }
    }
    return true;
}
} // namespace

void FormModelScanner::on_body(const char* data, size_t len) {
    size_t skip = 0;
    if (!sniffed_) {
        while (skip < len && isspace(static_cast<unsigned char>(data[skip]))) ++skip;
        leading_ws_ += skip;
        if (skip < len) {
            sniffed_ = true;
            if (data[skip] == '{' || data[skip] == '[') {
                json_ = std::make_unique<JsonModelScanner>();
                const std::string blanks(leading_ws_, ' '); // the same offsets
                json_->on_body(blanks.data(), blanks.size());
            }
        }
    }
    if (json_)
        json_->on_body(data + skip, len - skip);
    else
        scan_form(data, len);
}

void FormModelScanner::scan_form(const char* data, size_t len) {
    for (size_t i = 0; i < len; ++i, ++offset_) {
        const char c = data[i];
        if (c == '&') {
            end_pair();
        } else if (!in_value_) {
            if (c == '=') {
                in_value_ = true;
                value_begin_ = offset_ + 1;
            } else if (key_.size() < kMaxKey) {
                key_ += c;
            } else {
                key_too_long_ = true;
            }
        } else if (!ref_.found && !key_too_long_ && (key_ == "model")) {
            if (value_.size() < kMaxValue)
                value_ += c;
            else
                overlong_ = true;
        }
    }
}

void FormModelScanner::end_pair() {
    if (!ref_.found && !key_too_long_ && key_ == "model" && in_value_) {
        ref_.found = true;
        ref_.value_begin = value_begin_;
        ref_.value_end = offset_;
        ref_.model = value_; // decoded in finish()
    }
    key_.clear();
    value_.clear();
    in_value_ = false;
    key_too_long_ = false;
}

void FormModelScanner::on_body_skipped(size_t n) {
    if (json_) {
        json_->on_body_skipped(n);
        return;
    }
    offset_ += n;
    skipped_ = true;
}

bool FormModelScanner::finish(std::string& error) {
    if (json_) return json_->finish(error);
    if (skipped_) {
        error = "a URL-encoded body cannot be checked in part";
        return false;
    }
    if (!ref_.found) end_pair();
    if (!ref_.found) return true;
    if (overlong_) {
        error = "form field 'model' is too long";
        return false;
    }
    std::string decoded;
    if (!form_decode(ref_.model, decoded)) {
        error = "form field 'model' has a broken percent-escape";
        return false;
    }
    ref_.model = std::move(decoded);
    return true;
}

std::unique_ptr<BodyScanner> body_scanner_for(const http::Request& req, std::string& error) {
    const std::string* ct = req.headers.find("content-type");
    if (ct && ct->find("multipart/") != std::string::npos) {
        std::string boundary = multipart_boundary(*ct);
        if (boundary.empty()) {
            error = "multipart request without a valid boundary parameter";
            return nullptr;
        }
        return std::make_unique<MultipartModelScanner>(boundary);
    }
    if (ct && http::header_has_token(std::string_view(*ct).substr(0, ct->find(';')),
                                     "application/x-www-form-urlencoded"))
        return std::make_unique<FormModelScanner>();
    return std::make_unique<JsonModelScanner>();
}

} // namespace ls::router
