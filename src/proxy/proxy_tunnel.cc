// ProxyExchange after a 101: the two-way byte tunnel of an upgraded (WebSocket) connection,
// with back-pressure each way; it holds the model until either side closes.
#include "proxy/proxy_exchange.h"

#include <cerrno>

#include "util/log.h"

namespace ls::proxy {

// ------------------------------------------------------------------ tunnel (after 101)

void ProxyExchange::start_tunnel(const http::HeaderList& upstream_headers, const char* early,
                                 size_t len) {
    state_ = State::Tunnel;
    timeout_.stop();
    status_ = 101;
    http::HeaderList out;
    for (const auto& h : upstream_headers.items())
        if (!http::is_hop_by_hop(h.name, upstream_headers)) out.add(h.name, h.value);
    if (const std::string* u = upstream_headers.find("upgrade")) out.add("Upgrade", *u);
    out.add("Connection", "Upgrade");
    LOG_DEBUG("%s: %s switched protocols, tunnelling", subject().c_str(), req_.path.c_str());
    client_->start_tunnel(out); // may pass early client bytes to on_tunnel_data
    if (state_ != State::Tunnel || !client_) return;
    if (len > 0) {
        relayed_ += len;
        if (!client_->write_tunnel(early, len)) return;
        if (client_->output_congested()) paused_for_client_ = true;
    }
    update_upstream_io();
}

bool ProxyExchange::on_tunnel_data(const char* data, size_t len) {
    if (state_ != State::Tunnel || !sock_) return true; // ending: the connection discards
    if (to_upstream_off_ == to_upstream_.size()) {
        to_upstream_.clear();
        to_upstream_off_ = 0;
    }
    to_upstream_.append(data, len);
    tunnel_send();
    if (state_ == State::Tunnel && to_upstream_.size() - to_upstream_off_ >= kTunnelHighWatermark) {
        client_input_paused_ = true;
        return false;
    }
    return true;
}

void ProxyExchange::tunnel_send() {
    while (to_upstream_off_ < to_upstream_.size()) {
        const iovec v{to_upstream_.data() + to_upstream_off_,
                      to_upstream_.size() - to_upstream_off_};
        const ssize_t n = upstream_send(&v, 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            end_tunnel("cannot send to the upstream");
            return;
        }
        to_upstream_off_ += static_cast<size_t>(n);
    }
    const size_t pending = to_upstream_.size() - to_upstream_off_;
    if (pending == 0) {
        to_upstream_.clear();
        to_upstream_off_ = 0;
    }
    if (client_input_paused_ && pending < kTunnelHighWatermark / 4 && client_) {
        client_input_paused_ = false;
        client_->resume_tunnel_input();
    }
    update_upstream_io();
}

void ProxyExchange::tunnel_read() {
    char buf[kReadChunk];
    for (;;) {
        const ssize_t n = upstream_recv(buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                update_upstream_io();
                return;
            }
            end_tunnel("the upstream connection failed");
            return;
        }
        if (n == 0) {
            end_tunnel(nullptr); // the upstream closed: a normal end
            return;
        }
        relayed_ += static_cast<uint64_t>(n);
        if (!client_ || !client_->write_tunnel(buf, static_cast<size_t>(n))) return;
        if (client_->output_congested()) {
            paused_for_client_ = true;
            update_upstream_io();
            return;
        }
        if (static_cast<size_t>(n) < sizeof buf && !sock_->tls) return;
    }
}

void ProxyExchange::end_tunnel(const char* why) {
    if (why) LOG_INFO("%s: WebSocket tunnel ended: %s", subject().c_str(), why);
    state_ = State::Done;
    close_upstream();
    release_model();
    if (client_) {
        http::Connection* c = client_;
        client_ = nullptr;
        c->end_tunnel(); // flushes what the upstream sent, then closes; may defer our deletion
    }
}

void ProxyExchange::on_shutdown() {
    // Tunnels never end by themselves: they end with the daemon.
    if (state_ == State::Tunnel) end_tunnel("the daemon is shutting down");
}

} // namespace ls::proxy
