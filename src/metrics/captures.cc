#include "metrics/captures.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <utility>

#include "http/error_body.h"
#include "http/header_display.h"
#include "util/log.h"

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
// What precedes each capture's bytes in the ring: its id, which parts it has, their lengths.
// The parts follow in this order (large bodies excepted: they stay in the entry):
// req_path, req_headers, req_body, resp_headers, resp_body.
struct RecordHead {
    uint64_t id;
    uint64_t present; // bit i: part i is there (the path always is)
    uint64_t large;   // bit i: part i is a body kept in the entry, not in the ring
    uint64_t length[5];
};
constexpr size_t kParts = 5;
constexpr size_t kReqBody = 2, kRespBody = 4;
constexpr size_t kAlign = alignof(RecordHead);

size_t record_bytes(size_t payload) {
    return (sizeof(RecordHead) + payload + kAlign - 1) / kAlign * kAlign;
}

// The parts of `c` in the ring's order, and where each goes.
struct Layout {
    std::string_view data[kParts];
    bool present[kParts];
    bool large[kParts];
    size_t ring_bytes; // the record in the ring
    size_t bytes;      // and the large bodies
};
Layout layout_of(const Capture& c) {
    auto headers = [](const std::optional<CaptureHeaders>& h) {
        return h ? h->data() : std::string_view();
    };
    auto body = [](const std::optional<std::string>& b) {
        return b ? std::string_view(*b) : std::string_view();
    };
    Layout l{{c.req_path, headers(c.req_headers), body(c.req_body), headers(c.resp_headers),
              body(c.resp_body)},
             {true, c.req_headers.has_value(), c.req_body.has_value(), c.resp_headers.has_value(),
              c.resp_body.has_value()},
             {},
             0,
             0};
    size_t inline_bytes = 0, large_bytes = 0;
    for (size_t i = 0; i < kParts; ++i) {
        l.large[i] =
            (i == kReqBody || i == kRespBody) && l.data[i].size() > CaptureStore::kInlineBody;
        (l.large[i] ? large_bytes : inline_bytes) += l.data[i].size();
    }
    l.ring_bytes = record_bytes(inline_bytes);
    l.bytes = l.ring_bytes + large_bytes;
    return l;
}
} // namespace

size_t Capture::bytes() const {
    return layout_of(*this).bytes;
}

CaptureStore::~CaptureStore() {
    unmap();
}

void CaptureStore::unmap() {
    if (ring_) munmap(ring_, capacity_);
    ring_ = nullptr;
}

void CaptureStore::clear() {
    index_.clear();
    used_ = 0;
    tail_ = 0;
}

void CaptureStore::evict_oldest() {
    used_ -= index_.front().bytes;
    index_.pop_front();
}

CaptureStore::Entry* CaptureStore::append(uint64_t id, size_t ring_bytes, size_t bytes) {
    if (ring_bytes == 0 || ring_bytes > bytes || bytes > capacity_) return nullptr;
    if (!ring_) {
        // Reserved, not committed: pages become resident as captures reach them.
        void* p = mmap(nullptr, capacity_, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            LOG_WARN("captures: cannot map a %zu-byte store: %s; requests are not captured",
                     capacity_, std::strerror(errno));
            capacity_ = 0;
            return nullptr;
        }
        ring_ = static_cast<char*>(p);
    }
    // Within the byte budget (large bodies count too)...
    while (!index_.empty() && used_ + bytes > capacity_) evict_oldest();
    // ...and in the ring: the region claimed lies right after the newest capture (on a wrap:
    // the rest of the ring and its start), where the oldest are: evict in order until the
    // oldest lies elsewhere.
    const bool wrap = tail_ + ring_bytes > capacity_;
    size_t at = wrap ? 0 : tail_;
    while (!index_.empty()) {
        const Entry& old = index_.front();
        const bool overlaps = wrap ? old.offset >= tail_ || old.offset < ring_bytes
                                   : old.offset < at + ring_bytes && old.offset + old.length > at;
        if (!overlaps) break;
        evict_oldest();
    }
    if (index_.empty()) at = 0; // nothing left: start over at the beginning
    Entry& e = index_.emplace_back();
    e.id = id;
    e.offset = at;
    e.length = ring_bytes;
    e.bytes = bytes;
    used_ += bytes;
    tail_ = e.offset + ring_bytes;
    return &e;
}

bool CaptureStore::add(Capture c) {
    if (!index_.empty() && c.id <= index_.back().id) return false; // ids ascend (find)
    const Layout l = layout_of(c);
    Entry* e = append(c.id, l.ring_bytes, l.bytes);
    if (!e) return false;
    RecordHead head{};
    head.id = c.id;
    for (size_t i = 0; i < kParts; ++i) {
        head.length[i] = l.data[i].size();
        if (l.present[i]) head.present |= uint64_t(1) << i;
        if (l.large[i]) head.large |= uint64_t(1) << i;
    }
    char* out = ring_ + e->offset;
    std::memcpy(out, &head, sizeof head);
    out += sizeof head;
    for (size_t i = 0; i < kParts; ++i) {
        if (l.large[i] || l.data[i].empty()) continue;
        std::memcpy(out, l.data[i].data(), l.data[i].size());
        out += l.data[i].size();
    }
    if (l.large[kReqBody]) e->large_req_body = std::move(*c.req_body);
    if (l.large[kRespBody]) e->large_resp_body = std::move(*c.resp_body);
    return true;
}

void CaptureStore::set_capacity(size_t capacity_bytes) {
    if (capacity_bytes == capacity_) return;
    // A new ring with the newest captures that fit, copied over oldest first (the oldest go
    // again if it is smaller).
    CaptureStore next(capacity_bytes);
    for (Entry& e : index_) {
        if (Entry* n = next.append(e.id, e.length, e.bytes)) {
            std::memcpy(next.ring_ + n->offset, ring_ + e.offset, e.length);
            n->large_req_body = std::move(e.large_req_body);
            n->large_resp_body = std::move(e.large_resp_body);
        }
    }
    unmap();
    capacity_ = next.capacity_;
    ring_ = std::exchange(next.ring_, nullptr);
    tail_ = next.tail_;
    used_ = next.used_;
    index_ = std::move(next.index_);
}

const CaptureStore::Entry* CaptureStore::locate(uint64_t id) const {
    auto it = std::lower_bound(index_.begin(), index_.end(), id,
                               [](const Entry& e, uint64_t v) { return e.id < v; });
    return it != index_.end() && it->id == id ? &*it : nullptr;
}

std::optional<CaptureView> CaptureStore::find(uint64_t id) const {
    const Entry* e = locate(id);
    if (!e) return std::nullopt;
    RecordHead head;
    std::memcpy(&head, ring_ + e->offset, sizeof head);
    const char* at = ring_ + e->offset + sizeof head;
    std::string_view part[kParts];
    for (size_t i = 0; i < kParts; ++i) {
        if (head.large & (uint64_t(1) << i)) {
            part[i] = i == kReqBody ? e->large_req_body : e->large_resp_body;
            continue;
        }
        part[i] = std::string_view(at, head.length[i]);
        at += head.length[i];
    }
    auto opt = [&](size_t i) -> std::optional<std::string_view> {
        if (!(head.present & (uint64_t(1) << i))) return std::nullopt;
        return part[i];
    };
    CaptureView v;
    v.id = head.id;
    v.req_path = part[0];
    v.req_headers = opt(1);
    v.req_body = opt(kReqBody);
    v.resp_headers = opt(3);
    v.resp_body = opt(kRespBody);
    return v;
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
std::string headers_json(const std::optional<std::string_view>& packed) {
    return packed ? http::header_map_json(http::header_map(CaptureHeaders::unpack(*packed)))
                  : "null";
}
std::string body_json(const std::optional<std::string_view>& b) {
    return b ? "\"" + base64_encode(*b) + "\"" : "null";
}
} // namespace

std::string capture_json(const CaptureView& c) {
    return "{\"id\":" + std::to_string(c.id) + ",\"req_path\":\"" + http::json_escape(c.req_path) +
           "\",\"req_headers\":" + headers_json(c.req_headers) +
           ",\"req_body\":" + body_json(c.req_body) +
           ",\"resp_headers\":" + headers_json(c.resp_headers) +
           ",\"resp_body\":" + body_json(c.resp_body) + "}";
}

} // namespace ls::metrics
