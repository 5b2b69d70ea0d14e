// Request captures, as the original's /api/captures/<id>: for a metered request, the request
// headers (sensitive ones redacted) and body and the response headers and body, kept under
// its activity id in a store bounded in bytes (`captureBuffer` MB; the oldest go first, 0:
// none kept). Routes with large binary payloads (audio, images) keep only some parts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "http/packed_headers.h"

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

// As received, packed: names canonical, secrets redacted and the map sorted only when a
// capture is read (http::header_map), not on every request.
using CaptureHeaders = http::PackedHeaders;

// A capture as the daemon assembles it at the end of an exchange.
struct Capture {
    uint64_t id = 0;
    std::string req_path;
    std::optional<CaptureHeaders> req_headers; // nullopt: JSON null
    std::optional<std::string> req_body;
    std::optional<CaptureHeaders> resp_headers;
    std::optional<std::string> resp_body;
    size_t bytes() const; // what it takes in the store
};

// A capture as the store holds it: views into the store, valid until its next add,
// set_capacity or clear.
struct CaptureView {
    uint64_t id = 0;
    std::string_view req_path;
    // nullopt: JSON null. Headers in PackedHeaders' layout (CaptureStore::unpack_headers).
    std::optional<std::string_view> req_headers, req_body, resp_headers, resp_body;
};

// One byte ring, mapped at the first capture and touched only as far as it is written: a
// capture costs one copy in and nothing to evict (the oldest are overwritten), where one heap
// block per part made every eviction a round of frees over memory long out of the cache.
// Bounded by the ring: a capture that does not fit before the ring's end starts at its
// beginning, so the store may hold up to one capture's worth less than its capacity.
class CaptureStore {
public:
    explicit CaptureStore(size_t capacity_bytes = 0) : capacity_(capacity_bytes) {}
    ~CaptureStore();
    CaptureStore(const CaptureStore&) = delete;
    CaptureStore& operator=(const CaptureStore&) = delete;
    // Keeps the newest captures that fit the new capacity; 0 drops everything.
    void set_capacity(size_t capacity_bytes);
    size_t capacity() const { return capacity_; }
    bool enabled() const { return capacity_ > 0; }
    // Keeps it, evicting the oldest as needed; false (nothing kept) when disabled or when it
    // alone is larger than the store.
    bool add(const Capture& c);
    bool has(uint64_t id) const { return locate(id) != nullptr; }
    std::optional<CaptureView> find(uint64_t id) const;
    size_t size() const { return index_.size(); }
    size_t used() const { return used_; } // bytes of the captures held
    void clear();

private:
    struct Entry {
        uint64_t id;
        size_t offset; // in the ring
        size_t length;
    };
    const Entry* locate(uint64_t id) const;
    CaptureView view(const Entry& e) const;
    // Room for `n` bytes after the newest capture (or at the ring's start), the oldest evicted
    // from it and the entry recorded; nullptr when it cannot be had.
    char* append(uint64_t id, size_t n);
    void unmap();

    size_t capacity_;
    char* ring_ = nullptr; // capacity_ bytes once mapped
    size_t mapped_ = 0;
    size_t tail_ = 0; // where the next capture goes
    size_t used_ = 0;
    std::deque<Entry> index_; // oldest first; ids ascend
};

// The original's JSON: {"id","req_path","req_headers","req_body","resp_headers","resp_body"},
// bodies base64 (Go's []byte), absent parts null.
std::string capture_json(const CaptureView& c);
std::string base64_encode(std::string_view in);

} // namespace ls::metrics
