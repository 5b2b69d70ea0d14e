// How a ProxyExchange ends: a clean finish (the connection back to the pool), an upstream
// failure (retried on a fresh connection, re-queued after a refused connect, or answered: a
// JSON error, or a cut response once relaying), a cancel through the API, or the client
// going away.
#include <cerrno>
#include <cstring>

#include "proxy/proxy_exchange.h"
#include "util/log.h"

namespace ls::proxy {

namespace {
// After a refused connect to a model: up to kRequeues pauses for its death to be seen.
constexpr double kRequeueDelay = 0.1;
constexpr int kRequeues = 5;
} // namespace

void ProxyExchange::take_request_body(bool move) {
    if (!capture_body_from_request_) return;
    capture_body_from_request_ = false;
    // The connection may have gone on to its next request since (a failure answered, then a
    // pipelined request): that request's body is not this one's, and the capture gets none.
    if (req_.id != info_.id || req_.body.spooled()) return;
    capture_req_body_ = move ? req_.body.take_memory() : std::string(req_.body.memory());
}

void ProxyExchange::finish_ok() {
    state_ = State::Done;
    // Sent and answered: the request's body is not needed again, so a capture takes it.
    take_request_body(true);
    if (wrap_upstream_error_ && client_) {
        std::string ev = "data: " + upstream_error_ + "\n\ndata: [DONE]\n\n";
        client_->write_body(ev.data(), ev.size());
    }
    // A clean, keep-alive response leaves a reusable connection (unless more bytes followed,
    // or it answered before it had our whole request).
    if (upstream_keep_alive_ && message_complete_ && seg_index_ == segments_.size())
        pool_.put(std::move(sock_), timeouts_.idle_conn_s);
    close_upstream();
    release_model();
    if (client_) {
        http::Connection* c = client_;
        client_ = nullptr;
        c->end_response(); // may defer our deletion
    }
}

void ProxyExchange::upstream_failed(const std::string& what, int err, int status,
                                    const char* code) {
    std::string wedged_detail;
    if (process_ && !process_->wedged().empty()) {
        // The liveness check cut this request, or the wedged process's stop closed its
        // connection: say why, whatever the socket reported.
        reused_ = false;
        failure_ = "upstream_stalled";
        status = 504;
        code = "upstream_stalled";
        wedged_detail =
            "the upstream stopped answering (it " + process_->wedged() + "); it is being restarted";
    }
    // (Not after a stale pooled connection: the request may have reached the upstream; nor
    // for a model being stopped on purpose.)
    if (process_ && state_ == State::Connecting && err == ECONNREFUSED && requeues_ < kRequeues &&
        client_ && !retried_stale_ && process_->state() == supervisor::ProcessState::Ready) {
        // The model's process is dying or died an instant ago (kill -9, a crash) and is not
        // reaped yet: its port refuses. Nothing was sent: ask the scheduler again a moment
        // later, once the death is seen, and it starts the model afresh for this request.
        LOG_INFO("model %s: connection refused by pid %d; waiting for the model again",
                 model_.c_str(), process_->pid());
        ++requeues_;
        close_upstream();
        release_model();
        granted_ = released_ = false;
        state_ = State::Waiting;
        timeout_.start(kRequeueDelay);
        return;
    }
    // (Nor once body bytes came straight from the client's socket: they are not kept.)
    const bool retryable =
        reused_ && !got_response_bytes_ && state_ != State::Relaying && uploaded_from_client_ == 0;
    if (retryable && client_ && sock_) {
        // A pooled connection the upstream had already closed: try once on a fresh one, in
        // the same connection slot.
        LOG_DEBUG("model %s: stale pooled upstream connection, reconnecting", model_.c_str());
        retried_stale_ = true;
        open_connection();
        return;
    }
    close_upstream();
    // The cause by where it broke (timeouts and malformed heads have named theirs already);
    // no_response: the upstream closed or reset the connection before a response head.
    if (!failure_)
        failure_ = state_ == State::Relaying      ? "cut_mid_stream"
                   : state_ == State::Connecting  ? "connect_failed"
                   : state_ == State::Handshaking ? "tls_failed"
                   : state_ == State::Sending     ? "send_failed"
                                                  : "no_response";
    const std::string detail = !wedged_detail.empty() ? wedged_detail
                               : err                  ? what + ": " + strerror(err)
                                                      : what;
    release_model();
    if (!client_) return;
    if (state_ == State::Relaying) {
        LOG_WARN("model %s: %s mid-response, aborting the client response", model_.c_str(),
                 detail.c_str());
        state_ = State::Done;
        outcome_ = "upstream_failed";
        http::Connection* c = client_;
        client_ = nullptr;
        c->abort_response();
        return;
    }
    state_ = State::Done;
    outcome_ = "upstream_failed";
    LOG_WARN("%s: %s", subject().c_str(), detail.c_str());
    fail_client(status, subject() + ": " + detail, code);
}

void ProxyExchange::close_upstream() {
    stop_splice();
    timeout_.stop();
    sock_.reset(); // the watcher stops before the fd closes (member order)
}

void ProxyExchange::on_client_writable() {
    if (splicing_) return; // the splice has its own watcher on the client's socket
    if (!paused_for_client_) return;
    paused_for_client_ = false;
    last_heard_ = ev_now(loop_); // its silence while we did not read was ours
    update_upstream_io();
    // Bytes TLS has decrypted already would wait for a socket event that may never come.
    if (sock_ && sock_->tls && sock_->tls->pending() > 0)
        state_ == State::Tunnel ? tunnel_read() : read_response();
}

void ProxyExchange::cancel() {
    if (state_ == State::Done || !client_) return;
    LOG_INFO("%s: %s cancelled through the API", subject().c_str(), req_.path.c_str());
    scheduler_.cancel(this);
    if (state_ == State::WaitingConnection) pool_.cancel(this);
    const State was = state_;
    state_ = State::Done;
    outcome_ = "cancelled";
    loading_tick_.stop();
    close_upstream();
    release_model();
    http::Connection* c = client_;
    if (was == State::Relaying || was == State::Tunnel) {
        client_ = nullptr;
        was == State::Tunnel ? c->end_tunnel() : c->abort_response();
        return;
    }
    fail_client(502, "request cancelled: " + subject() + " " + req_.path, "request_cancelled");
}

void ProxyExchange::on_client_gone() {
    // The client disconnected: cancel the upstream request by closing its connection.
    client_ = nullptr;
    scheduler_.cancel(this);
    if (state_ == State::WaitingConnection) pool_.cancel(this);
    if (state_ != State::Done) outcome_ = "client_closed";
    if (state_ != State::Done && state_ != State::Waiting && state_ != State::WaitingConnection &&
        state_ != State::Tunnel)
        LOG_INFO("model %s: client went away, cancelling the upstream request", model_.c_str());
    state_ = State::Done;
    close_upstream();
    release_model();
}

} // namespace ls::proxy
