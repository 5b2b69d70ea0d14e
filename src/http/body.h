// A request body of bounded RAM: kept in memory up to a threshold, then spooled to an
// unlinked temporary file (O_TMPFILE in the spool directory, else a memfd), so a 500 MB
// upload never becomes a 500 MB heap buffer. Sending it upstream can then use sendfile().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "util/result.h"
#include "util/unique_fd.h"

namespace ls::http {

// Spooled bytes seen where they lie, in the page cache (a read-only mapping), not copied out.
class SpoolView {
public:
    SpoolView(int fd, size_t offset, size_t len);
    ~SpoolView();
    SpoolView(const SpoolView&) = delete;
    SpoolView& operator=(const SpoolView&) = delete;
    bool valid() const { return map_ != nullptr; }
    const char* data() const { return static_cast<const char*>(map_) + skew_; }

private:
    void* map_ = nullptr;
    size_t skew_ = 0; // the offset's distance past its page boundary
    size_t map_len_ = 0;
};

class Body {
public:
    Body() = default;
    // `spool_dir` must outlive the body (it is the server's configuration).
    Body(size_t memory_limit, const std::string* spool_dir)
        : memory_limit_(memory_limit), spool_dir_(spool_dir) {}
    Body(Body&&) = default;
    Body& operator=(Body&&) = default;

    Result<void> append(const char* data, size_t len);
    // A body of `length` bytes is coming (Content-Length): room for it is made at once when
    // it will stay in memory, instead of growing (and copying) the buffer as it arrives.
    void expect(uint64_t length) {
        if (!file_.valid() && length <= memory_limit_) mem_.reserve(static_cast<size_t>(length));
    }
    size_t size() const { return size_; }
    bool spooled() const { return file_.valid(); }
    // In-memory bytes (only when !spooled()).
    std::string_view memory() const { return mem_; }
    // Hands the in-memory bytes over (a capture keeps them once the exchange is done);
    // size() still tells how long the body was.
    std::string take_memory() {
        std::string out = std::move(mem_);
        mem_.clear();
        return out;
    }
    // The spool file (only when spooled()).
    int fd() const { return file_.get(); }
    // Moves `n` bytes from a pipe into the spool (splice(2): the kernel's one copy, into
    // the page cache), after what is there. Only when spooled().
    Result<void> append_from_pipe(int pipe_read_end, size_t n);
    // `n` bytes of a spooled body went elsewhere (spliced straight to an upstream): they count
    // in size() but are not kept; what is appended next lands at its own offset.
    Result<void> skip(size_t n);
    // Copies up to `len` bytes at `offset` into `out` (works for both storages); an error
    // for bytes that were skipped.
    Result<size_t> read_at(size_t offset, char* out, size_t len) const;
    void clear();

private:
    Result<void> spill();

    size_t memory_limit_ = 1024 * 1024;
    const std::string* spool_dir_ = nullptr; // null: /var/tmp
    std::string mem_;
    UniqueFd file_;
    size_t size_ = 0;
    size_t skipped_begin_ = 0; // [begin, end): from the first skipped byte to the last
    size_t skipped_end_ = 0;
};

} // namespace ls::http
