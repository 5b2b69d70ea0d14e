#include "metrics/captures.h"

#include <algorithm>

#include "http/error_body.h"
#include "http/header_display.h"

namespace ls::metrics {

unsigned capture_fields_for(std::string_view path) {
    // Large binary payloads: keep the readable side only.
    struct Mask {
        std::string_view path;
        unsigned fields;
    };
    static constexpr Mask kMasks[] = {
        {"/v1/audio/speech", kCaptureReqHeaders | kCaptureReqBody | kCaptureRespHeaders},
        {"/v1/audio/voices", kCaptureReqHeaders | kCaptureRespHeaders | kCaptureRespBody},
        {"/v1/audio/transcriptions", kCaptureReqHeaders | kCaptureRespHeaders | kCaptureRespBody},
        {"/v1/images/generations", kCaptureReqHeaders | kCaptureReqBody | kCaptureRespHeaders},
        {"/v1/images/edits", kCaptureReqHeaders | kCaptureRespHeaders},
        {"/sdapi/v1/txt2img", kCaptureReqHeaders | kCaptureReqBody | kCaptureRespHeaders},
        {"/sdapi/v1/img2img", kCaptureReqHeaders | kCaptureRespHeaders},
    };
    for (const Mask& m : kMasks)
        if (m.path == path) return m.fields;
    return kCaptureAll;
}

namespace {
size_t headers_bytes(const std::optional<CaptureHeaders>& h) {
    size_t n = 0;
    if (h)
        for (const auto& f : h->items()) n += f.name.size() + f.value.size() + sizeof f;
    return n;
}
} // namespace

size_t Capture::bytes() const {
    return sizeof(Capture) + req_path.size() + headers_bytes(req_headers) +
           headers_bytes(resp_headers) + (req_body ? req_body->size() : 0) +
           (resp_body ? resp_body->size() : 0);
}

void CaptureStore::set_capacity(size_t capacity_bytes) {
    capacity_ = capacity_bytes;
    while (!items_.empty() && used_ > capacity_) {
        used_ -= items_.front().bytes();
        items_.pop_front();
    }
}

bool CaptureStore::add(Capture c) {
    const size_t n = c.bytes();
    if (capacity_ == 0 || n > capacity_) return false;
    while (!items_.empty() && used_ + n > capacity_) {
        used_ -= items_.front().bytes();
        items_.pop_front();
    }
    used_ += n;
    items_.push_back(std::move(c));
    return true;
}

const Capture* CaptureStore::find(uint64_t id) const {
    auto it = std::lower_bound(items_.begin(), items_.end(), id,
                               [](const Capture& c, uint64_t v) { return c.id < v; });
    return it != items_.end() && it->id == id ? &*it : nullptr;
}

void CaptureStore::clear() {
    items_.clear();
    used_ = 0;
}

std::string base64_encode(std::string_view in) {
    static constexpr char kAlphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16 |
                           static_cast<unsigned char>(in[i + 1]) << 8 |
                           static_cast<unsigned char>(in[i + 2]);
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

namespace {
std::string headers_json(const std::optional<CaptureHeaders>& h) {
    return h ? http::header_map_json(http::header_map(*h)) : "null";
}
std::string body_json(const std::optional<std::string>& b) {
    return b ? "\"" + base64_encode(*b) + "\"" : "null";
}
} // namespace

std::string capture_json(const Capture& c) {
    return "{\"id\":" + std::to_string(c.id) + ",\"req_path\":\"" + http::json_escape(c.req_path) +
           "\",\"req_headers\":" + headers_json(c.req_headers) +
           ",\"req_body\":" + body_json(c.req_body) +
           ",\"resp_headers\":" + headers_json(c.resp_headers) +
           ",\"resp_body\":" + body_json(c.resp_body) + "}";
}

} // namespace ls::metrics
