// ProxyExchange's zero-copy relay: after the head (and whatever body bytes came with it,
// relayed as usual), a Content-Length body that nothing needs to see moves upstream socket →
// pipe → client socket by splice(2), never through our memory. Back-pressure is the pipe: it
// is refilled only once the client took everything in it. The cut semantics stay: an
// upstream that ends early aborts the client's response (a short body, never a clean end).
#include <cerrno>
#include <fcntl.h>

#include "proxy/proxy_exchange.h"
#include "util/log.h"

namespace ls::proxy {

bool ProxyExchange::splice_allowed(int status) const {
    if (SplicePipe::disabled()) return false;
    if (status < 200 || status >= 300 || loading_stream_ || capture_body_ || keep_error_body_)
        return false;
    if (!sock_ || sock_->tls || !client_ || client_->splice_target() < 0) return false;
    if (usage_) {
        // Token counts are in JSON and SSE bodies: those go through the usage scanner.
        const std::string* ct = resp_headers_.find("content-type");
        if (!ct || ct->find("json") != std::string::npos ||
            ct->find("event-stream") != std::string::npos)
            return false;
    }
    return true;
}

void ProxyExchange::start_splice() {
    splice_wanted_ = false;
    if (!pipe_.valid()) pipe_ = SplicePipe::take(); // (an upload's, empty, is used again)
    if (!pipe_.valid()) return;                     // no pipe to be had: the ordinary relay goes on
    splice_left_ = splice_total_ - relayed_;
    splicing_ = true;
    splice_step();
}

void ProxyExchange::on_client_io(struct ev_loop*, ev_io* w, int) {
    auto* self = static_cast<ProxyExchange*>(w->data);
    if (self->state_ == State::Sending)
        self->send_more(); // an upload: the client's body bytes came (proxy_upload.cc)
    else
        self->splice_step();
}

void ProxyExchange::splice_step() {
    const int cfd = client_ ? client_->splice_target() : -1;
    if (cfd < 0) { // the client went away meanwhile (its own callback cleans up)
        stop_splice();
        return;
    }
    // Both directions in one pass, so the upstream fills the pipe while the client drains
    // it; until neither moves a byte.
    for (bool moved = true; moved;) {
        moved = false;
        // The head (and the body bytes parsed with it) leave first.
        if (pipe_.held > 0 && client_->output_pending() == 0) {
            ssize_t n = splice(pipe_.read_end(), nullptr, cfd, nullptr, pipe_.held,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                moved = true;
                pipe_.held -= static_cast<size_t>(n);
                relayed_ += static_cast<uint64_t>(n);
                SplicePipe::spliced_total += static_cast<uint64_t>(n);
                client_->spliced(static_cast<size_t>(n), pipe_.held > 0);
                if (first_byte_at_ == 0) first_byte_at_ = ev_now(loop_);
                if (opt_.observer) opt_.observer->on_exchange_progress(info_, relayed_);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                LOG_DEBUG("model %s: splice to the client: %s", model_.c_str(), strerror(errno));
                client_->close(); // as if it had closed: on_client_gone ends the exchange
                return;
            }
        }
        if (splice_left_ == 0 && pipe_.held == 0) {
            message_complete_ = true;
            finish_ok();
            return;
        }
        if (splice_left_ > 0 && pipe_.held < pipe_.capacity()) {
            const size_t room = pipe_.capacity() - pipe_.held;
            ssize_t n = splice(ufd(), nullptr, pipe_.write_end(), nullptr,
                               static_cast<size_t>(std::min<uint64_t>(splice_left_, room)),
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n > 0) {
                moved = true;
                splice_left_ -= static_cast<uint64_t>(n);
                pipe_.held += static_cast<size_t>(n);
                last_heard_ = ev_now(loop_);
            } else if (n == 0) {
                upstream_failed("the upstream closed the connection", 0);
                return;
            } else if (errno != EAGAIN && errno != EINTR) {
                upstream_failed("the upstream connection failed", errno);
                return;
            }
        }
    }
    // Wait for whichever side can move bytes next. A full pipe is the client's doing: the
    // upstream's silence meanwhile is not its own (see on_silence).
    const bool full = pipe_.held >= pipe_.capacity();
    if (paused_for_client_ && !full) last_heard_ = ev_now(loop_);
    paused_for_client_ = full;
    client_->spliced(0, pipe_.held > 0);
    watch(splice_left_ > 0 && !full ? EV_READ : 0);
    if (pipe_.held > 0)
        client_io_.set(cfd, EV_WRITE);
    else
        client_io_.stop();
}

void ProxyExchange::stop_splice() {
    client_io_.stop();
    if (!splicing_) return;
    splicing_ = false;
    if (client_) client_->spliced(0, false);
    SplicePipe done = std::move(pipe_); // back to the pool when empty, else closed
    pipe_.held = 0;
}

} // namespace ls::proxy
