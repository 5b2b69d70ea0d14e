// ProxyExchange's zero-copy upload. A request taken while its body arrives (a multipart upload
// whose model field came first, a /upstream passthrough) goes upstream once its model is ready
// and a connection is open: first what the spool holds (sendfile), then, caught up, the rest
// moves client socket → pipe → upstream socket by splice(2), never through our memory. The
// body's last bytes (http::Connection::kBodyTail) are read and parsed as usual, so a body
// scanner checks the end (a multipart body's closing delimiter), and the very last byte leaves
// only once that check passed: an upstream never gets a whole request we would refuse, and a
// client that stops mid-body leaves it a cut one. Back-pressure is the pipe; the client's
// stall is timed out by its connection, the upstream's by its silence.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/sendfile.h>

#include "proxy/proxy_exchange.h"
#include "util/log.h"

namespace ls::proxy {

bool ProxyExchange::upload_splice_possible() const {
    return !tls_ && client_ && client_->body_splice_possible();
}

int ProxyExchange::upload_source(size_t sent, uint64_t& max) const {
    max = 0;
    // Only once the upstream has (or the pipe holds) every byte read so far.
    if (tls_ || !client_ || sent + pipe_.held != req_.body.size()) return -1;
    return client_->body_splice_source(max);
}

bool ProxyExchange::send_arriving_body(const Segment& seg) {
    const uint64_t content_length = req_.content_length;
    const size_t seg_end = seg.offset + seg.length;
    // What the spool holds for this segment; the body's last byte waits for its check.
    auto sendable = [&] {
        return std::min<uint64_t>(
            {req_.body.size(), body_checked_ ? content_length : content_length - 1, seg_end});
    };
    for (bool moved = true; moved;) {
        moved = false;
        const size_t pos = seg.offset + seg_done_; // the next byte the upstream gets
        ssize_t n = 0;
        if (pipe_.held > 0) { // spliced from the client: these are the next bytes
            n = splice(pipe_.read_end(), nullptr, ufd(), nullptr,
                       std::min(pipe_.held, seg_end - pos), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                pipe_.held -= static_cast<size_t>(n);
                SplicePipe::spliced_total += static_cast<uint64_t>(n);
            }
        } else if (pos < sendable()) { // read before the splice began, or the body's tail
            off_t off = static_cast<off_t>(pos);
            n = ::sendfile(ufd(), req_.body.fd(), &off, sendable() - pos);
            if (n == 0) {
                upstream_failed("the spooled request body is shorter than it was", EIO);
                return false;
            }
        }
        if (n > 0) {
            seg_done_ += static_cast<size_t>(n);
            last_heard_ = ev_now(loop_);
            moved = true;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            upstream_failed("cannot send the request upstream", errno);
            return false;
        }
        if (seg_done_ == seg.length) {
            client_io_.stop();
            if (client_) client_->hold_body_input(false);
            return true;
        }
        // Caught up with what was read: the next bytes come from the client's socket.
        uint64_t max = 0;
        const int cfd = seg_end == content_length ? upload_source(seg.offset + seg_done_, max) : -1;
        if (cfd < 0) break; // the tail (the connection reads it), or no splice
        if (!pipe_.valid()) pipe_ = SplicePipe::take();
        if (!pipe_.valid() || pipe_.held >= pipe_.capacity()) break; // (no pipe: read it all)
        client_->hold_body_input(true);
        n = splice(cfd, nullptr, pipe_.write_end(), nullptr,
                   static_cast<size_t>(std::min<uint64_t>(max, pipe_.capacity() - pipe_.held)),
                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            pipe_.held += static_cast<size_t>(n);
            uploaded_from_client_ += static_cast<uint64_t>(n);
            client_->body_spliced(static_cast<size_t>(n));
            if (!client_) return false; // it could not keep count: gone
            moved = true;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            // The client closed or broke its connection before its body's end: the
            // upstream gets a cut request (on_client_gone closes it).
            LOG_DEBUG("request %llu: the client's body ended early: %s",
                      static_cast<unsigned long long>(req_.id),
                      n == 0 ? "end of stream" : strerror(errno));
            client_->close();
            return false;
        }
    }
    // Wait for whichever side can move bytes next.
    const size_t pos = seg.offset + seg_done_;
    const bool upstream_blocked = pipe_.held > 0 || pos < sendable();
    uint64_t max = 0;
    const int cfd = seg_end == content_length ? upload_source(pos, max) : -1;
    const bool hold = cfd >= 0 && pipe_.valid();
    if (hold && pipe_.held < pipe_.capacity())
        client_io_.set(cfd, EV_READ);
    else
        client_io_.stop();
    if (client_) {
        // Splicing, the connection leaves the socket to us; else it reads the body (the tail,
        // or all of it when no pipe could be had) and on_request_body brings us back.
        client_->hold_body_input(hold);
        // Holding the client back for the upstream is no stall of the client's.
        if (hold && upstream_blocked) client_->body_spliced(0);
    }
    // Reading too: an upstream may answer before the body's end (e.g. 413).
    watch(upstream_blocked ? EV_WRITE | EV_READ : EV_READ);
    return false;
}

void ProxyExchange::end_upload() {
    if (!uploading_) return;
    uploading_ = false;
    client_io_.stop();
    // Request bytes still in the pipe are no use now: with them it closes, not pooled.
    if (pipe_.held > 0) SplicePipe gone = std::move(pipe_);
    pipe_.held = 0;
}

} // namespace ls::proxy
