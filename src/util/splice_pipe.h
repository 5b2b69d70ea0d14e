// A pipe for splice(2): bytes move socket → pipe → socket (or file) inside the kernel, never
// through our memory. Pipes are kept for reuse (a pipe is two descriptors and a system call
// to make; an empty one holds no memory), a few per process.
#pragma once

#include <cstddef>
#include <cstdint>

#include "util/unique_fd.h"

namespace ls {

class SplicePipe {
public:
    // A pipe from the pool or a new one; invalid() when none can be made (EMFILE, ...).
    static SplicePipe take();
    // LLAMA_SWAP_NO_SPLICE (any value): every body is copied, both ways, to measure the
    // zero-copy paths or rule them out.
    static bool disabled();
    SplicePipe() = default;
    SplicePipe(SplicePipe&&) = default;
    SplicePipe& operator=(SplicePipe&&) = default;
    ~SplicePipe(); // an empty pipe goes back to the pool

    bool valid() const { return read_.valid(); }
    int read_end() const { return read_.get(); }
    int write_end() const { return write_.get(); }
    size_t capacity() const { return capacity_; }
    // Bytes in the pipe, as the owner counts them (spliced in, not yet out).
    size_t held = 0;
    // Body bytes that went through a pipe since start, to a socket or into the spool
    // (llamaswap_spliced_bytes_total).
    static uint64_t spliced_total;

private:
    UniqueFd read_;
    UniqueFd write_;
    size_t capacity_ = 0;
};

} // namespace ls
