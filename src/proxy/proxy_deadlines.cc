// ProxyExchange's deadlines: the connect, TLS handshake and response-head timeouts, and the
// upstream's silence (timeouts.silence), checked lazily and answered by its model's liveness
// check, which tells a slow upstream from a wedged one.
#include <cstdio>

#include "proxy/proxy_exchange.h"

namespace ls::proxy {

void ProxyExchange::on_timeout(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ProxyExchange*>(w->data);
    if (self->state_ == State::Waiting) { // the pause after a refused connect (upstream_failed)
        self->scheduler_.request(self->model_, self);
        return;
    }
    if (self->state_ == State::Connecting || self->state_ == State::Handshaking) {
        self->reused_ = false; // a connect that hangs is not a stale pooled connection
        self->failure_ = self->state_ == State::Connecting ? "connect_timeout" : "tls_failed";
        self->upstream_failed(
            self->state_ == State::Connecting ? "timed out connecting to the upstream"
                                              : "timed out in the TLS handshake with the upstream",
            0, self->state_ == State::Connecting ? 502 : 504,
            self->state_ == State::Connecting ? "upstream_unreachable" : "upstream_timeout");
        return;
    }
    if (self->state_ == State::ReadingHead || self->state_ == State::Sending) {
        char what[96];
        snprintf(what, sizeof what, "no response head from the upstream within %.0f s",
                 self->timeouts_.response_header_s);
        self->reused_ = false; // a slow upstream, not a stale pooled connection: no retry
        self->failure_ = "response_timeout";
        self->upstream_failed(what, 0, 504, "upstream_timeout");
    }
}

void ProxyExchange::watch_silence() {
    if (!process_ || timeouts_.silence_s <= 0 || silence_.active()) return;
    last_heard_ = ev_now(loop_);
    silence_.start(timeouts_.silence_s);
}

void ProxyExchange::on_silence(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ProxyExchange*>(w->data);
    if (self->state_ != State::Sending && self->state_ != State::ReadingHead &&
        self->state_ != State::Relaying)
        return;
    const double limit = self->timeouts_.silence_s;
    const double now = ev_now(self->loop_);
    if (self->paused_for_client_) self->last_heard_ = now; // we hold it back, not it us
    const double quiet = now - self->last_heard_;
    if (quiet < limit) { // bytes came meanwhile: sleep until the silence could be complete
        self->silence_.start(limit - quiet);
        return;
    }
    self->silence_.start(limit); // still silent then: ask again
    if (self->process_) self->process_->check_liveness(self);
}

void ProxyExchange::on_liveness(bool alive) {
    if (alive ||
        (state_ != State::Sending && state_ != State::ReadingHead && state_ != State::Relaying))
        return;
    reused_ = false; // a wedged upstream, not a stale pooled connection: no retry
    upstream_failed("the upstream stopped answering", 0, 504, "upstream_stalled");
}

} // namespace ls::proxy
