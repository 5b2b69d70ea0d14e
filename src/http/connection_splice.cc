// Connection's body splicing. Two ways a request body skips the daemon's memory:
// - Into the spool: a spooled Content-Length body moves socket → pipe → spool file
//   (splice(2): one copy, the kernel's, into the page cache); the body scanner reads the
//   bytes where they now lie (a mapping of the page cache) instead of from a copy of ours,
//   or, once the request was taken early (its model known), only the body's end.
// - Past it, upstream: a request taken early whose exchange splices the rest of the body
//   from the socket itself (proxy_upload.cc); the connection holds back meanwhile.
// Either way the body's last kBodyTail bytes are read and parsed as usual, so the request
// ends as any other, and llhttp's count of the body (content_length) is kept in step.
#include <algorithm>
#include <cerrno>
#include <fcntl.h>

#include "http/connection.h"
#include "util/log.h"

namespace ls::http {

bool Connection::body_splice_eligible() const {
    return !closed() && !tls_ && state_ == State::ReadingBody && req_.content_length > 0 &&
           !req_.body_complete && req_.body.spooled() && !stop_parsing_ && !SplicePipe::disabled();
}

bool Connection::body_splice_possible() const {
    return dispatched_early_ && exchange_ && body_splice_eligible();
}

uint64_t Connection::body_splice_room() const {
    // In ReadingBody nothing waits in in_ but a pause: every byte read so far is parsed.
    if (!body_splice_eligible() || parser_paused_ || in_off_ != in_.size()) return 0;
    const uint64_t left = parser_.content_length; // llhttp: body bytes still to come
    return left > kBodyTail ? left - kBodyTail : 0;
}

int Connection::body_splice_source(uint64_t& max) const {
    max = body_splice_possible() ? body_splice_room() : 0;
    return max > 0 ? fd_.get() : -1;
}

void Connection::hold_body_input(bool hold) {
    if (body_held_ == hold) return;
    body_held_ = hold;
    update_io();
}

void Connection::body_spliced(size_t n) {
    last_progress_ = ev_now(loop_);
    if (n == 0) return;
    // llhttp counts the body down in content_length: the spliced bytes are past it.
    parser_.content_length -= n;
    if (auto r = req_.body.skip(n); !r) {
        LOG_WARN("request %llu: %s", static_cast<unsigned long long>(req_.id),
                 r.error().message.c_str());
        close();
        return;
    }
    if (observer_) observer_->on_body_skipped(n);
}

Connection::SpliceRead Connection::splice_body_into_spool() {
    const uint64_t room = body_splice_room();
    if (room == 0) return SpliceRead::NotApplicable;
    if (!body_pipe_.valid()) body_pipe_ = SplicePipe::take();
    if (!body_pipe_.valid()) return SpliceRead::NotApplicable; // no pipe: read as usual
    const size_t want = static_cast<size_t>(std::min<uint64_t>(room, body_pipe_.capacity()));
    const ssize_t n = ::splice(fd_.get(), nullptr, body_pipe_.write_end(), nullptr, want,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return SpliceRead::WouldBlock;
    if (n <= 0) { // the client is gone before its body's end
        close();
        return SpliceRead::Ended;
    }
    body_pipe_.held = static_cast<size_t>(n);
    const size_t at = req_.body.size();
    if (auto r = req_.body.append_from_pipe(body_pipe_.read_end(), body_pipe_.held); !r) {
        LOG_ERROR("request %llu: %s", static_cast<unsigned long long>(req_.id),
                  r.error().message.c_str());
        reject(503, r.error().message, "spool_failed");
        return SpliceRead::Ended;
    }
    body_pipe_.held = 0;
    SplicePipe::spliced_total += static_cast<uint64_t>(n);
    parser_.content_length -= static_cast<uint64_t>(n); // as if llhttp had read them
    last_progress_ = ev_now(loop_);
    if (observer_ && dispatched_early_) {
        // Its model is known: the scanner is left only the body's end to check (the tail).
        observer_->on_body_skipped(static_cast<size_t>(n));
    } else if (observer_) {
        const SpoolView view(req_.body.fd(), at, static_cast<size_t>(n));
        if (view.valid()) {
            observer_->on_body(view.data(), static_cast<size_t>(n));
        } else { // (no mapping to be had: read back into our memory, as before)
            static char piece[64 * 1024];
            for (size_t off = 0; off < static_cast<size_t>(n);) {
                auto got = req_.body.read_at(at + off, piece,
                                             std::min(sizeof piece, static_cast<size_t>(n) - off));
                if (!got || got.value() == 0) {
                    reject(503, "cannot read the spooled request body", "spool_failed");
                    return SpliceRead::Ended;
                }
                observer_->on_body(piece, got.value());
                off += got.value();
            }
        }
    }
    body_progress();
    return closed() ? SpliceRead::Ended : SpliceRead::Moved;
}

} // namespace ls::http
