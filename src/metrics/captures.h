// Request captures, as the original's /api/captures/<id>: for a metered request, the request
// headers (sensitive ones redacted) and body and the response headers and body, kept under
// its activity id in a store bounded in bytes (`captureBuffer` MB; the oldest go first, 0:
// none kept). Routes with large binary payloads (audio, images) keep only some parts.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/headers.h"

namespace ls::metrics {

// What a route's capture keeps (the original's masks).
enum CaptureFields : unsigned {
    kCaptureReqHeaders = 1,
    kCaptureReqBody = 2,
    kCaptureRespHeaders = 4,
    kCaptureRespBody = 8,
    kCaptureAll = 15,
};
// By the path the upstream gets ("/v1/audio/speech"); others keep everything.
unsigned capture_fields_for(std::string_view path);

// As received: names canonical, secrets redacted and the map sorted only when a capture is
// read (http::header_map), not on every request.
using CaptureHeaders = http::HeaderList;

struct Capture {
    uint64_t id = 0;
    std::string req_path;
    std::optional<CaptureHeaders> req_headers; // nullopt: JSON null
    std::optional<std::string> req_body;
    std::optional<CaptureHeaders> resp_headers;
    std::optional<std::string> resp_body;
    size_t bytes() const; // what it counts against the store's size
};

class CaptureStore {
public:
    explicit CaptureStore(size_t capacity_bytes = 0) : capacity_(capacity_bytes) {}
    // Shrinking evicts the oldest; 0 drops everything.
    void set_capacity(size_t capacity_bytes);
    size_t capacity() const { return capacity_; }
    bool enabled() const { return capacity_ > 0; }
    // Keeps it, evicting the oldest as needed; false (nothing kept) when disabled or when it
    // alone is larger than the store.
    bool add(Capture c);
    bool has(uint64_t id) const { return find(id) != nullptr; }
    const Capture* find(uint64_t id) const;
    size_t size() const { return items_.size(); }
    size_t used() const { return used_; }
    void clear();

private:
    size_t capacity_;
    size_t used_ = 0;
    std::deque<Capture> items_; // oldest first; ids ascend
};

// The original's JSON: {"id","req_path","req_headers","req_body","resp_headers","resp_body"},
// bodies base64 (Go's []byte), absent parts null.
std::string capture_json(const Capture& c);
std::string base64_encode(std::string_view in);

} // namespace ls::metrics
