#include "proxy/proxy_exchange.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/error_body.h"
#include "util/log.h"

namespace ls::proxy {

using namespace std::literals;

namespace {
constexpr size_t kSmallRead = 4096; // below this a read may have been one small segment
} // namespace

const llhttp_settings_t ProxyExchange::kSettings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_field = &ProxyExchange::cb_header_field;
    s.on_header_value = &ProxyExchange::cb_header_value;
    s.on_headers_complete = &ProxyExchange::cb_headers_complete;
    s.on_body = &ProxyExchange::cb_body;
    s.on_message_complete = &ProxyExchange::cb_message_complete;
    return s;
}();

ProxyExchange::ProxyExchange(struct ev_loop* loop, http::Connection& client, http::Request& req,
                             router::Scheduler& scheduler, UpstreamPool& pool, std::string model_id,
                             ProxyOptions&& options)
    : loop_(loop), client_(&client), req_(req), scheduler_(scheduler), pool_(pool),
      model_(std::move(model_id)), opt_(std::move(options)), timeout_(loop, &on_timeout, this),
      silence_(loop, &on_silence, this), loading_tick_(loop, &on_loading_tick, this),
      client_io_(loop, &on_client_io, this) {
    resp_headers_.reserve_typical();
}

namespace {
#if defined(__SANITIZE_ADDRESS__) // (gcc; clang says it with __has_feature)
#define LS_ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LS_ADDRESS_SANITIZER 1
#endif
#endif
#if defined(LS_ADDRESS_SANITIZER)
constexpr size_t kKeptExchanges = 0; // AddressSanitizer sees every use after free
#else
constexpr size_t kKeptExchanges = 16;
#endif
struct FreeExchange {
    FreeExchange* next;
};
thread_local FreeExchange* free_exchanges = nullptr;
thread_local size_t free_exchange_count = 0;
} // namespace

void* ProxyExchange::operator new(size_t size) {
    if (size == sizeof(ProxyExchange) && free_exchanges) {
        FreeExchange* block = free_exchanges;
        free_exchanges = block->next;
        --free_exchange_count;
        return block;
    }
    return ::operator new(size);
}

void ProxyExchange::operator delete(void* p, size_t size) {
    if (size == sizeof(ProxyExchange) && free_exchange_count < kKeptExchanges) {
        auto* block = static_cast<FreeExchange*>(p);
        block->next = free_exchanges;
        free_exchanges = block;
        ++free_exchange_count;
        return;
    }
    ::operator delete(p, size);
}

ProxyExchange::~ProxyExchange() {
    scheduler_.cancel(this);
    if (state_ == State::WaitingConnection) pool_.cancel(this);
    release_model();
    report_end();
}

void ProxyExchange::report_end() {
    if (reported_) return;
    reported_ = true;
    take_request_body(false); // an ending other than finish_ok: copied, if still there
    if (started_ && opt_.observer) {
        ExchangeResult r;
        r.status = status_;
        r.bytes = relayed_;
        r.granted_at = granted_at_;
        r.ended_at = ev_now(loop_);
        r.outcome = outcome_;
        r.failure = failure_;
        r.first_byte_at = first_byte_at_;
        r.content_type = std::move(content_type_);
        r.error_body = std::move(error_body_);
        r.capture_req_headers = std::move(capture_req_headers_);
        r.capture_req_body = std::move(capture_req_body_);
        if (capture_head_) r.capture_headers = http::PackedHeaders(resp_headers_);
        r.capture_body = std::move(capture_body_);
        if (usage_) {
            usage_->finish();
            r.usage = usage_->usage();
        }
        opt_.observer->on_exchange_end(info_, r);
    }
}

void ProxyExchange::begin() {
    info_.id = req_.id;
    info_.model = model_;
    info_.method = req_.method_name;
    info_.path = req_.path;
    info_.started_at = req_.received_at;
    info_.route_path =
        opt_.route_path.empty() ? std::string_view(req_.path) : std::string_view(opt_.route_path);
    info_.in_flight = opt_.in_flight;
    info_.metered = opt_.metered;
    info_.selector = opt_.selector;
    info_.client = opt_.client;
    info_.req_headers = &req_.headers;
    info_.exchange = this;
    started_ = true;
    body_checked_ = req_.body_complete;
    if (opt_.capture_limit > 0) {
        // The connection forgets the request when the response is done: copy what a capture
        // keeps now (a body from memory; a spooled one only when it fits the limit).
        capture_req_headers_ = http::PackedHeaders(req_.headers);
        if (opt_.capture_req_body && req_.body_complete && req_.body.size() <= opt_.capture_limit) {
            if (!req_.body.spooled()) {
                capture_body_from_request_ = true;
            } else {
                std::string copy(req_.body.size(), '\0');
                auto got = req_.body.read_at(0, copy.data(), copy.size());
                if (got && got.value() == copy.size()) capture_req_body_ = std::move(copy);
            }
        }
    }
    if (opt_.observer) opt_.observer->on_exchange_start(info_);
    if (opt_.peer) { // no process, no scheduler: straight to the peer
        start_peer();
        return;
    }
    if (opt_.unscheduled) {
        start_unscheduled();
        return;
    }
    scheduler_.request(model_, this);
    if (opt_.loading_state && client_ && state_ == State::Waiting && !granted_)
        start_loading_stream();
}

void ProxyExchange::loading_event(const std::string& reasoning) {
    if (!client_) return;
    std::string ev =
        "data: {\"id\":\"llama-swap-loading\",\"object\":\"chat.completion.chunk\",\"created\":" +
        std::to_string(static_cast<long>(ev_now(loop_))) + ",\"model\":\"" +
        http::json_escape(model_) +
        "\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"" +
        http::json_escape(reasoning) + "\"},\"finish_reason\":null}]}\n\n";
    client_->write_body(ev.data(), ev.size());
}

void ProxyExchange::start_loading_stream() {
    client_->start_stream("text/event-stream");
    status_ = 200;
    loading_stream_ = true;
    loading_event("━━━━━\nllama-swap loading model: " + model_ + "\n");
    loading_tick_.start(0.75, 0.75);
}

void ProxyExchange::on_loading_tick(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ProxyExchange*>(w->data);
    if (!self->client_ || self->state_ != State::Waiting) {
        self->loading_tick_.stop();
        return;
    }
    self->loading_event(".");
}

// ------------------------------------------------------------------ scheduler callbacks

void ProxyExchange::on_rejected(const router::Rejection& why) {
    if (!client_) return;
    state_ = State::Done;
    // 502: the model failed to start; otherwise the scheduler said no (429, 503).
    outcome_ = why.status == 502 ? "upstream_failed" : "refused";
    if (why.status == 502) failure_ = "start_failed";
    fail_client(why.status, why.message, why.code, why.retry_after_s);
}

void ProxyExchange::fail_client(int status, const std::string& message, const std::string& code,
                                int retry_after_s) {
    if (!client_) return;
    http::Connection* c = client_;
    client_ = nullptr;
    content_type_ = "application/json";
    error_body_ = http::error_json(status, message, code);
    if (loading_stream_) {
        // The client already has our 200 event stream: the error becomes its last event.
        loading_tick_.stop();
        std::string ev = "data: " + http::error_json(status, message, code);
        ev.pop_back(); // error_json ends with a newline
        ev += "\n\ndata: [DONE]\n\n";
        c->write_body(ev.data(), ev.size());
        c->end_response();
        return;
    }
    status_ = status;
    c->respond_retryable_error(status, message, code, retry_after_s);
}

void ProxyExchange::on_granted(supervisor::ModelProcess& process) {
    granted_ = true;
    granted_at_ = ev_now(loop_);
    if (!client_) {
        release_model();
        return;
    }
    if (loading_stream_) {
        loading_tick_.stop();
        char done[64];
        snprintf(done, sizeof done, "\nDone! (%.2fs)\n━━━━━\n\n", ev_now(loop_) - req_.received_at);
        loading_event(done);
    }
    upstream_ = &process.upstream();
    process_ = &process;
    tls_ = process.tls_context();
    timeouts_ = process.config().timeouts;
    pool_key_ = process.pool_key();
    connections_ = process.connection_policy();
    build_request();
    acquire_connection();
}

std::string ProxyExchange::subject() const {
    return opt_.peer ? "peer '" + opt_.peer->id + "'" : "model '" + model_ + "'";
}

void ProxyExchange::start_peer() {
    const PeerTarget& p = *opt_.peer;
    granted_at_ = ev_now(loop_);
    address_copy_ = p.address;
    upstream_ = &address_copy_;
    timeouts_ = p.timeouts;
    tls_ = p.tls;
    connections_ = {}; // a remote server: no cap of ours
    if (!address_copy_.lookup_name.empty()) {
        if (p.resolved->until > ev_now(loop_)) {
            address_copy_.addr = p.resolved->addr.addr;
            address_copy_.addr_len = p.resolved->addr.addr_len;
        } else if (opt_.resolver) {
            state_ = State::Resolving;
            lookup_ = opt_.resolver->resolve(
                address_copy_.lookup_name, address_copy_.port,
                [this](Result<ResolvedAddress> r) { peer_resolved(std::move(r)); });
            return;
        }
    }
    peer_resolved(ResolvedAddress{address_copy_.addr, address_copy_.addr_len});
}

void ProxyExchange::start_unscheduled() {
    const supervisor::ModelProcess* p = scheduler_.process(model_);
    if (!p || p->state() != supervisor::ProcessState::Ready) {
        state_ = State::Done;
        outcome_ = "refused";
        fail_client(409,
                    "model '" + model_ +
                        "' is not loaded; WebSocket requests to it (compat.ignoreWebsockets) "
                        "cannot start it",
                    "model_not_ready");
        return;
    }
    granted_at_ = ev_now(loop_);
    // A copy: the process may stop (and be replaced) while the tunnel is open; the tunnel
    // then ends when its server goes, as the original accepts for ignored WebSockets.
    address_copy_ = p->upstream();
    upstream_ = &address_copy_;
    tls_ = p->tls_context();
    timeouts_ = p->config().timeouts;
    pool_key_ = p->pool_key();
    connections_ = p->connection_policy();
    build_request();
    acquire_connection();
}

void ProxyExchange::peer_resolved(Result<ResolvedAddress> r) {
    lookup_.reset();
    if (!client_) return;
    if (!r) {
        state_ = State::Done;
        outcome_ = "upstream_failed";
        failure_ = "resolve_failed";
        LOG_WARN("peer %s: %s", opt_.peer->id.c_str(), r.error().message.c_str());
        fail_client(502, subject() + ": " + r.error().message, "upstream_unreachable");
        return;
    }
    if (!address_copy_.lookup_name.empty()) {
        opt_.peer->resolved->addr = r.value();
        opt_.peer->resolved->until = ev_now(loop_) + 60; // looked up again after a minute
    }
    address_copy_.addr = r->addr;
    address_copy_.addr_len = r->addr_len;
    pool_key_ = "peer " + opt_.peer->id + "|" + address_copy_.key();
    build_request();
    acquire_connection();
}

void ProxyExchange::release_model() {
    silence_.stop();
    if (process_) {
        process_->forget_liveness(this);
        process_ = nullptr; // may be replaced once released
    }
    if (granted_ && !released_) {
        released_ = true;
        scheduler_.release(model_);
    }
}

// ------------------------------------------------------------------ connection

void ProxyExchange::acquire_connection() {
    // A request taken while its body arrives: its model was made ready meanwhile. Where the
    // body can be spliced, it goes upstream as it comes (proxy_upload.cc); else (TLS on
    // either side) the upstream gets it once it is whole and checked (on_request_body).
    if (!req_.body_complete || !body_checked_) {
        if (!upload_splice_possible()) {
            body_hold_ = true;
            return;
        }
        uploading_ = true;
    }
    close_upstream();
    UpstreamSocketPtr sock = pool_.acquire(pool_key_, connections_, this);
    if (!sock) { // the upstream has all the connections it takes: on_connection follows
        state_ = State::WaitingConnection;
        return;
    }
    use_connection(std::move(sock));
}

void ProxyExchange::on_connection(UpstreamSocketPtr sock) {
    if (state_ != State::WaitingConnection || !client_) return; // the slot goes back
    use_connection(std::move(sock));
}

void ProxyExchange::use_connection(UpstreamSocketPtr sock) {
    sock_ = std::move(sock);
    sock_->io.rebind(&on_io, this);
    if (!sock_->fd.valid()) {
        open_connection();
        return;
    }
    seg_index_ = 0;
    seg_done_ = 0;
    got_response_bytes_ = false;
    reused_ = true;
    state_ = State::Sending;
    watch_silence();
    send_more();
}

void ProxyExchange::open_connection() {
    timeout_.stop();
    sock_->io.stop(); // before the old fd (if any) closes: a new one may get its number
    sock_->tls.reset();
    sock_->fd.reset();
    sock_->responses = 0;
    seg_index_ = 0;
    seg_done_ = 0;
    got_response_bytes_ = false;
    reused_ = false;
    state_ = State::Connecting; // a failure from here on is a connect failure
    int fd = ::socket(upstream_->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        upstream_failed("cannot create a socket", errno);
        return;
    }
    sock_->fd.reset(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (timeouts_.keepalive_s >= 1) {
        // timeouts.keepalive, as Go's dialer uses it: idle time and probe interval alike, so
        // a pooled connection to a host that vanished is found dead.
        const int secs = static_cast<int>(std::min(timeouts_.keepalive_s, 32767.0));
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &secs, sizeof secs);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &secs, sizeof secs);
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&upstream_->addr), upstream_->addr_len) !=
            0 &&
        errno != EINPROGRESS) {
        upstream_failed("cannot connect to the upstream", errno);
        return;
    }
    watch(EV_WRITE);
    if (timeouts_.connect_s > 0) timeout_.start(timeouts_.connect_s);
}

void ProxyExchange::on_io(struct ev_loop*, ev_io* w, int revents) {
    static_cast<ProxyExchange*>(w->data)->handle_io(revents);
}

void ProxyExchange::handle_io(int revents) {
    if (state_ == State::Connecting && (revents & EV_WRITE)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(ufd(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            upstream_failed("cannot connect to the upstream", err);
            return;
        }
        connected();
        return;
    }
    if (state_ == State::Handshaking) {
        continue_handshake();
        return;
    }
    if (state_ == State::Tunnel) {
        if (revents & EV_WRITE) tunnel_send();
        if (state_ == State::Tunnel &&
            ((revents & EV_READ) || (want_write_ && (revents & EV_WRITE))))
            tunnel_read();
        return;
    }
    if (state_ == State::Sending && (revents & EV_WRITE)) {
        send_more();
        return;
    }
    if (splicing_) {
        splice_step();
        return;
    }
    const bool readable = (revents & EV_READ) || (want_write_ && (revents & EV_WRITE));
    if (readable &&
        (state_ == State::ReadingHead || state_ == State::Relaying || state_ == State::Sending))
        read_response();
}

void ProxyExchange::connected() {
    timeout_.stop();
    if (!tls_) {
        state_ = State::Sending;
        watch_silence();
        send_more();
        return;
    }
    auto session = tls::Session::client(tls_, ufd(), upstream_->host);
    if (!session) {
        upstream_failed(session.error().message, 0);
        return;
    }
    sock_->tls = std::move(session.value());
    state_ = State::Handshaking;
    if (timeouts_.tls_handshake_s > 0) timeout_.start(timeouts_.tls_handshake_s);
    continue_handshake();
}

void ProxyExchange::continue_handshake() {
    const int rc = sock_->tls->handshake();
    if (rc < 0) {
        upstream_failed("TLS with the upstream failed: " + sock_->tls->error(), 0, 502,
                        "upstream_tls_failed");
        return;
    }
    if (rc == 0) {
        watch(sock_->tls->want() == tls::Want::write ? EV_WRITE : EV_READ);
        return;
    }
    timeout_.stop();
    state_ = State::Sending;
    watch_silence();
    send_more();
}

ssize_t ProxyExchange::upstream_send(const iovec* iov, int count) {
    if (!sock_->tls) {
        msghdr msg{};
        msg.msg_iov = const_cast<iovec*>(iov);
        msg.msg_iovlen = static_cast<size_t>(count);
        return ::sendmsg(ufd(), &msg, MSG_NOSIGNAL);
    }
    // One TLS record from the first pieces (up to 16 KiB): a retry after WANT_WRITE rebuilds
    // the same bytes from the same position, as OpenSSL requires.
    char record[16384];
    size_t len = 0;
    for (int i = 0; i < count && len < sizeof record; ++i) {
        const size_t take = std::min(iov[i].iov_len, sizeof record - len);
        memcpy(record + len, iov[i].iov_base, take);
        len += take;
    }
    const ssize_t n = sock_->tls->write(record, len);
    if (n < 0) {
        errno = sock_->tls->want() != tls::Want::nothing ? EAGAIN : EPROTO;
        tls_error_ = sock_->tls->error();
    }
    return n;
}

ssize_t ProxyExchange::upstream_recv(char* buf, size_t len) {
    want_write_ = false;
    if (!sock_->tls) return ::recv(ufd(), buf, len, 0);
    const ssize_t n = sock_->tls->read(buf, len);
    if (n < 0) {
        want_write_ = sock_->tls->want() == tls::Want::write;
        errno = sock_->tls->want() != tls::Want::nothing ? EAGAIN : EPROTO;
        tls_error_ = sock_->tls->error();
    }
    return n;
}

void ProxyExchange::acknowledge_now() {
    int one = 1; // not sticky: the kernel returns to delayed ACKs by itself
    setsockopt(ufd(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

void ProxyExchange::update_upstream_io() {
    if (!sock_) return;
    if (state_ == State::Sending) return;
    const bool to_send = state_ == State::Tunnel && to_upstream_off_ < to_upstream_.size();
    watch((paused_for_client_ ? 0 : EV_READ) | (want_write_ || to_send ? EV_WRITE : 0));
}

void ProxyExchange::read_response() {
    if (state_ == State::Sending) {
        // Early response before the body was fully sent: parse it from here on.
        end_upload();
        state_ = State::ReadingHead;
        watch_silence();
        llhttp_init(&parser_, HTTP_RESPONSE, &kSettings);
        parser_.data = this;
        resp_head_bytes_ = 0;
    }
    char buf[kReadChunk];
    for (;;) {
        ssize_t n = upstream_recv(buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (want_write_) update_upstream_io();
                return;
            }
            if (errno == EPROTO && sock_->tls) {
                upstream_failed("the upstream connection failed: " + tls_error_, 0);
                return;
            }
            upstream_failed("the upstream connection failed", errno);
            return;
        }
        if (n == 0) {
            // EOF: ends a close-delimited body cleanly, anything else is a broken response.
            if (state_ == State::Relaying && llhttp_message_needs_eof(&parser_)) {
                llhttp_finish(&parser_);
                upstream_keep_alive_ = false;
                finish_ok();
                return;
            }
            upstream_failed("the upstream closed the connection", 0);
            return;
        }
        last_heard_ = ev_now(loop_);
        if (!got_response_bytes_) {
            got_response_bytes_ = true;
            pool_.response_began(*sock_);
        }
        // The response head and the body bytes of this read leave in one send().
        http::Connection* client = client_;
        if (client) client->cork();
        llhttp_errno_t err = llhttp_execute(&parser_, buf, static_cast<size_t>(n));
        if (client && !client->closed()) client->uncork();
        if (state_ == State::Done || !client_) return;
        if (err == HPE_PAUSED_UPGRADE && parser_.status_code == 101 && req_.upgrade) {
            const char* rest = llhttp_get_error_pos(&parser_);
            start_tunnel(resp_headers_, rest, static_cast<size_t>(buf + n - rest));
            return;
        }
        if (message_complete_) {
            finish_ok();
            return;
        }
        if (splice_wanted_ && err == HPE_OK && state_ == State::Relaying) {
            start_splice();
            return;
        }
        if (err != HPE_OK) {
            LOG_WARN("model %s: malformed upstream response: %s", model_.c_str(),
                     llhttp_get_error_reason(&parser_));
            if (state_ != State::Relaying) failure_ = "bad_response";
            upstream_failed(resp_head_bytes_ > kMaxResponseHead
                                ? "the upstream's response head is larger than 64 KiB"
                                : "the upstream sent a malformed response",
                            0);
            return;
        }
        // More of this response is to come. An upstream without TCP_NODELAY (llama-server)
        // holds a small write until the previous one is acknowledged, and on a reused
        // connection the kernel delays the ACK of a small segment by up to 40 ms: send it
        // now. (Bulk reads need no help: every second full segment is acknowledged at once.)
        if (static_cast<size_t>(n) < kSmallRead) acknowledge_now();
        if (paused_for_client_) {
            update_upstream_io();
            return;
        }
        // A short read drained the socket; TLS may still hold decrypted bytes (read on).
        if (static_cast<size_t>(n) < sizeof buf && !sock_->tls) return;
    }
}

} // namespace ls::proxy
