#include "http/body.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ls::http {

namespace {
// At `offset`, not the file position: skipped bytes then cost no system call (see skip()).
Result<void> write_all(int fd, const char* data, size_t len, size_t offset) {
    while (len > 0) {
        ssize_t n = ::pwrite(fd, data, len, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            return make_error(std::string("cannot spool request body: ") + strerror(errno), errno);
        }
        data += n;
        len -= static_cast<size_t>(n);
        offset += static_cast<size_t>(n);
    }
    return {};
}
} // namespace

Result<void> Body::spill() {
    // Disk-backed first: a memfd lives in RAM, which is what spooling tries to avoid.
    const char* dir = spool_dir_ ? spool_dir_->c_str() : "/var/tmp";
    int fd = ::open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) fd = memfd_create("llama-swap-body", MFD_CLOEXEC);
    if (fd < 0)
        return make_error(std::string("cannot create spool file: ") + strerror(errno), errno);
    file_.reset(fd);
    auto r = write_all(fd, mem_.data(), mem_.size(), 0);
    std::string().swap(mem_);
    return r;
}

Result<void> Body::append(const char* data, size_t len) {
    if (!file_.valid() && mem_.size() + len > memory_limit_) {
        if (auto r = spill(); !r) return r;
    }
    const size_t at = size_;
    size_ += len;
    if (file_.valid()) return write_all(file_.get(), data, len, at);
    mem_.append(data, len);
    return {};
}

Result<void> Body::append_from_pipe(int pipe_read_end, size_t n) {
    if (!file_.valid()) return make_error("cannot splice into a body in memory", EINVAL);
    while (n > 0) {
        loff_t at = static_cast<loff_t>(size_);
        ssize_t moved = ::splice(pipe_read_end, nullptr, file_.get(), &at, n, SPLICE_F_MOVE);
        if (moved < 0 && errno == EINTR) continue;
        if (moved < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
            // A file system that takes no splice: through our memory after all.
            static char piece[64 * 1024];
            moved = ::read(pipe_read_end, piece, std::min(n, sizeof piece));
            if (moved > 0) {
                if (auto r = write_all(file_.get(), piece, static_cast<size_t>(moved), size_); !r)
                    return r;
            }
        }
        if (moved <= 0)
            return make_error(std::string("cannot spool request body: ") +
                                  (moved < 0 ? strerror(errno) : "the pipe ran dry"),
                              moved < 0 ? errno : EIO);
        size_ += static_cast<size_t>(moved);
        n -= static_cast<size_t>(moved);
    }
    return {};
}

SpoolView::SpoolView(int fd, size_t offset, size_t len) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    skew_ = offset % page;
    map_len_ = skew_ + len;
    // Not MAP_POPULATE: measured, faulting the pages in (16 at a time) cost less.
    void* m =
        ::mmap(nullptr, map_len_, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset - skew_));
    if (m != MAP_FAILED) map_ = m;
}

SpoolView::~SpoolView() {
    if (map_) ::munmap(map_, map_len_);
}

Result<void> Body::skip(size_t n) {
    if (!file_.valid()) return make_error("cannot skip bytes of a body in memory", EINVAL);
    // The next append lands past them: a hole in the file, no disk space.
    if (skipped_end_ == 0) skipped_begin_ = size_; // later runs widen the span (read_at refuses it)
    size_ += n;
    skipped_end_ = size_;
    return {};
}

Result<size_t> Body::read_at(size_t offset, char* out, size_t len) const {
    if (offset >= size_) return size_t{0};
    if (len > size_ - offset) len = size_ - offset;
    if (offset < skipped_end_ && offset + len > skipped_begin_)
        return make_error("the request body's bytes were passed on without being kept", ESPIPE);
    if (!file_.valid()) {
        memcpy(out, mem_.data() + offset, len);
        return len;
    }
    for (;;) {
        ssize_t n = ::pread(file_.get(), out, len, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0)
            return make_error(std::string("cannot read spooled body: ") + strerror(errno), errno);
        return static_cast<size_t>(n);
    }
}

void Body::clear() {
    std::string().swap(mem_);
    file_.reset();
    size_ = 0;
    skipped_begin_ = skipped_end_ = 0;
}

} // namespace ls::http
