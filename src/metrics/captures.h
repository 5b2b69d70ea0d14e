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
// A body over kInlineBody is not copied: the capture keeps the string it was given (an
// agent's 128 KiB prompt would cost a copy per request). The store holds at most its
// capacity in bytes, counting both; a capture that does not fit before the ring's end starts
// at its beginning, so up to one capture's worth of the ring may stand unused.
class CaptureStore {
public:
    static constexpr size_t kInlineBody = 16 * 1024;
    explicit CaptureStore(size_t capacity_bytes = 0) : capacity_(capacity_bytes) {}
    ~CaptureStore();
    CaptureStore(const CaptureStore&) = delete;
    CaptureStore& operator=(const CaptureStore&) = delete;
    // Keeps the newest captures that fit the new capacity; 0 drops everything.
    void set_capacity(size_t capacity_bytes);
    size_t capacity() const { return capacity_; }
    bool enabled() const { return capacity_ > 0; }
    // Keeps it (large bodies moved out of it), evicting the oldest as needed; false (nothing
    // kept) when disabled, when it alone is larger than the store, or when its id is not
    // above the newest's.
    bool add(Capture c);
    bool has(uint64_t id) const { return locate(id) != nullptr; }
    std::optional<CaptureView> find(uint64_t id) const;
    size_t size() const { return index_.size(); }
    size_t used() const { return used_; } // bytes of the captures held
    void clear();

private:
    struct Entry {
        uint64_t id;
        size_t offset; // in the ring
        size_t length; // in the ring
        size_t bytes;  // counted against the capacity: the ring's and the large bodies'
        std::string large_req_body, large_resp_body; // over kInlineBody, kept as given
    };
    const Entry* locate(uint64_t id) const;
    // An entry with `ring_bytes` of room after the newest capture (or at the ring's start),
    // the oldest evicted until it and `bytes` in all fit; nullptr when that cannot be had.
    Entry* append(uint64_t id, size_t ring_bytes, size_t bytes);
    void evict_oldest();
    void unmap();

    size_t capacity_;
    char* ring_ = nullptr; // capacity_ bytes once mapped
    size_t tail_ = 0;      // where the next capture goes
    size_t used_ = 0;
    std::deque<Entry> index_; // oldest first; ids ascend
};

// The original's JSON: {"id","req_path","req_headers","req_body","resp_headers","resp_body"},
// bodies base64 (Go's []byte), absent parts null.
std::string capture_json(const CaptureView& c);
std::string base64_encode(std::string_view in);

} // namespace ls::metrics
