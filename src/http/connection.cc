#include "http/connection.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "http/error_body.h"
#include "http/server.h"
#include "http/status.h"
#include "util/log.h"

namespace ls::http {

using namespace std::literals;

namespace {
// Decimal (or hex) digits appended without snprintf: this runs for every response and chunk.
void append_number(std::string& out, uint64_t value, int base = 10) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, value, base);
    out.append(digits, static_cast<size_t>(r.ptr - digits));
}
} // namespace

namespace {
constexpr size_t kReadChunk = 64 * 1024;
// While a response is in progress, pipelined input is buffered up to this much, then reading
// pauses (the kernel's socket buffer takes the rest).
constexpr size_t kMaxBufferedInput = 256 * 1024;

std::string describe_peer(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    return "unix";
}

// RFC 9110 Date, cached per second.
const std::string& http_date() {
    static thread_local time_t cached_at = 0;
    static thread_local std::string cached;
    time_t now = time(nullptr);
    if (now != cached_at) {
        char buf[64];
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = buf;
        cached_at = now;
    }
    return cached;
}
} // namespace

const llhttp_settings_t Connection::kSettings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &Connection::cb_message_begin;
    s.on_url = &Connection::cb_url;
    s.on_header_field = &Connection::cb_header_field;
    s.on_header_value = &Connection::cb_header_value;
    s.on_headers_complete = &Connection::cb_headers_complete;
    s.on_body = &Connection::cb_body;
    s.on_message_complete = &Connection::cb_message_complete;
    return s;
}();

Connection::Connection(Server& server, struct ev_loop* loop, UniqueFd fd, uint64_t id,
                       std::unique_ptr<tls::Session> tls)
    : server_(server), loop_(loop), fd_(std::move(fd)), tls_(std::move(tls)), id_(id),
      io_(loop, &on_io, this), timer_(loop, &on_timer, this), limits_(server.limits()) {
    peer_ = describe_peer(fd_.get());
    llhttp_init(&parser_, HTTP_REQUEST, &kSettings);
    parser_.data = this;
    last_progress_ = ev_now(loop_);
    update_io();
    arm_timer();
}

Connection::~Connection() {
    // Normally close() ran already; this covers teardown at exit.
    if (exchange_) exchange_->on_client_gone();
}

// ---------------------------------------------------------------- I/O

void Connection::on_io(struct ev_loop*, ev_io* w, int revents) {
    auto* c = static_cast<Connection*>(w->data);
    if (c->tls_ && !c->tls_->handshaken() && !c->continue_handshake()) return;
    if (revents & EV_WRITE) c->handle_write();
    if ((revents & EV_READ) && !c->closed()) c->handle_read();
}

bool Connection::continue_handshake() {
    const int rc = tls_->handshake();
    if (rc < 0) {
        LOG_DEBUG("connection %llu from %s: %s", static_cast<unsigned long long>(id_),
                  peer_.c_str(), tls_->error().c_str());
        close();
        return false;
    }
    if (rc == 0) {
        io_.set(fd_.get(), tls_->want() == tls::Want::write ? EV_WRITE : EV_READ);
        return false;
    }
    last_progress_ = ev_now(loop_);
    update_io();
    return true;
}

ssize_t Connection::read_some(char* buf, size_t len) {
    if (!tls_) return ::recv(fd_.get(), buf, len, 0);
    const ssize_t n = tls_->read(buf, len);
    if (n < 0) errno = tls_->want() != tls::Want::nothing ? EAGAIN : ECONNRESET;
    return n;
}

ssize_t Connection::write_some(const char* buf, size_t len) {
    if (!tls_) return ::send(fd_.get(), buf, len, MSG_NOSIGNAL);
    const ssize_t n = tls_->write(buf, len);
    if (n < 0) errno = tls_->want() != tls::Want::nothing ? EAGAIN : ECONNRESET;
    return n;
}

void Connection::handle_read() {
    // Parse after every read: a fast uploader must never pile up more than one chunk of
    // unparsed input (the body itself goes to the spool as it is parsed).
    for (int i = 0; i < 16; ++i) { // bounded per wake-up, so one client cannot hog the loop
        if (parser_paused_ && in_.size() - in_off_ >= kMaxBufferedInput) break;
        if (state_ == State::ReadingBody) {
            if (body_held_) break; // the exchange splices the body (hold_body_input)
            const SpliceRead r = splice_body_into_spool();
            if (r == SpliceRead::Moved) continue;
            if (r == SpliceRead::WouldBlock) break;
            if (r == SpliceRead::Ended) return;
        }
        if (in_off_ > 0 && in_off_ == in_.size()) {
            in_.clear();
            in_off_ = 0;
        }
        // Read into a shared scratch buffer and keep only what arrived: no per-connection
        // 64 KiB buffer, no zero-filling.
        static char scratch[kReadChunk];
        ssize_t n = read_some(scratch, sizeof scratch);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            // EOF or error: the client is gone. A request still being answered is cancelled
            // (a tunnel too: its upstream connection closes).
            if (state_ == State::Closing && output_pending() > 0 && n == 0) {
                io_.set(fd_.get(), EV_WRITE); // half-closed: still deliver what we owe
                return;
            }
            close();
            return;
        }
        if (state_ == State::Closing || state_ == State::Lingering) {
            if (state_ == State::Lingering) arm_timer();
            continue; // the rest of a request we no longer read: discarded
        }
        if (state_ == State::Tunnel) {
            last_progress_ = ev_now(loop_);
            if (exchange_ && !exchange_->on_tunnel_data(scratch, static_cast<size_t>(n)))
                tunnel_paused_ = true;
            if (closed()) return;
            if (tunnel_paused_ || (static_cast<size_t>(n) < sizeof scratch && !tls_)) break;
            continue;
        }
        last_progress_ = ev_now(loop_);
        if (in_off_ == in_.size() && !parser_paused_) {
            parse_read(scratch, static_cast<size_t>(n));
        } else {
            in_.append(scratch, static_cast<size_t>(n));
            parse_input();
        }
        if (closed()) return;
        if (static_cast<size_t>(n) < sizeof scratch && !tls_) break;
    }
    if (in_.capacity() > 1024 * 1024 && in_off_ == in_.size())
        std::string().swap(in_); // after a burst
    update_io();
    // Decrypted bytes TLS holds already would wait for a socket event that may never come.
    if (tls_ && tls_->pending() > 0 && (io_.events() & EV_READ))
        ev_feed_fd_event(loop_, fd_.get(), EV_READ);
}

void Connection::parse_read(const char* data, size_t len) {
    // Nothing is buffered: the parser reads the bytes where they were read (a body is then
    // copied once, into the request, not twice). What it leaves at a pause (the request's
    // end; a pipelined one may follow) goes to in_, where parse_input goes on as usual.
    in_.clear();
    in_off_ = 0;
    const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (err == HPE_OK) {
        if (state_ == State::ReadingBody) body_progress();
        return;
    }
    if (err == HPE_PAUSED) {
        const char* pos = llhttp_get_error_pos(&parser_);
        in_.assign(pos, static_cast<size_t>(data + len - pos));
        on_parser_pause();
        parse_input();
        return;
    }
    on_parse_error();
}

void Connection::on_parser_pause() {
    if (!dispatched_early_)
        dispatch();
    else if (exchange_)
        exchange_->on_request_body(); // the rest of the body is in
}

void Connection::on_parse_error() {
    if (stop_parsing_ || state_ == State::Closing || closed()) return; // we answered already
    // Malformed HTTP: answer 400 and close; the connection state is unknown from here.
    std::string msg = std::string("malformed HTTP request: ") + llhttp_get_error_reason(&parser_);
    LOG_INFO("connection %llu from %s: %s", static_cast<unsigned long long>(id_), peer_.c_str(),
             msg.c_str());
    reject(400, msg, "bad_request");
}

void Connection::parse_input() {
    while (!closed() && !parser_paused_ && state_ != State::Closing && in_off_ < in_.size()) {
        const char* data = in_.data() + in_off_;
        size_t len = in_.size() - in_off_;
        llhttp_errno_t err = llhttp_execute(&parser_, data, len);
        if (err == HPE_OK) {
            in_off_ = in_.size();
            if (state_ == State::ReadingBody) body_progress();
            break;
        }
        if (err == HPE_PAUSED) {
            const char* pos = llhttp_get_error_pos(&parser_);
            in_off_ += static_cast<size_t>(pos - data);
            on_parser_pause();
            continue;
        }
        on_parse_error();
        return;
    }
    if (in_off_ == in_.size()) {
        in_.clear();
        in_off_ = 0;
    }
}

void Connection::dispatch() {
    keep_alive_ = req_.keep_alive && !server_.shutting_down();
    response_started_ = false;
    was_congested_ = false;
    arm_timer();
    server_.app().on_request(*this, req_);
}

void Connection::body_progress() {
    if (dispatched_early_) {
        if (exchange_) exchange_->on_request_body();
        return;
    }
    // Only a Content-Length body already in the spool: a small one is read whole anyway, and
    // the exchange sends a growing body from the spool file.
    if (req_.content_length == 0 || !req_.body.spooled() || stop_parsing_ || exchange_) return;
    keep_alive_ = req_.keep_alive && !server_.shutting_down();
    response_started_ = false;
    was_congested_ = false;
    dispatched_early_ = true; // before the call: an answer given in it must see it
    if (!server_.app().dispatch_early(*this, req_)) dispatched_early_ = false;
}

void Connection::finish_request() {
    // The response is complete: release per-request state and go on with pipelined input.
    if (exchange_) {
        exchange_->on_request_done();
        server_.reaper().defer(std::move(exchange_));
    }
    observer_.reset();
    req_.body.clear();
    if (body_pipe_.valid()) SplicePipe done = std::move(body_pipe_); // to the pool when empty
    response_started_ = false;
    response_fixed_length_ = false;
    splice_waiting_ = false;
    // An upgrade request that was answered without switching: what the client sends next
    // may already be the new protocol's bytes, so nothing more is parsed.
    // An answer given before the body was all in (taken early): the rest is not parsed.
    if (!keep_alive_ || close_after_response_ || head_phase_ || req_.upgrade ||
        !req_.body_complete) {
        close_after_flush();
        return;
    }
    state_ = State::Idle;
    parser_paused_ = false;
    llhttp_resume(&parser_);
    arm_timer();
    parse_input();
    update_io();
}

void Connection::handle_write() {
    flush_output();
    if (closed()) return;
    if (state_ == State::Closing && output_pending() == 0) {
        start_lingering();
        return;
    }
    if (was_congested_ && output_pending() <= kLowWatermark) {
        was_congested_ = false;
        if (exchange_) exchange_->on_client_writable();
    }
    update_io();
}

void Connection::flush_output() {
    while (out_off_ < out_.size()) {
        ssize_t n = write_some(out_.data() + out_off_, out_.size() - out_off_);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            LOG_DEBUG("connection %llu: send: %s", static_cast<unsigned long long>(id_),
                      strerror(errno));
            close();
            return;
        }
        out_off_ += static_cast<size_t>(n);
        last_progress_ = ev_now(loop_);
    }
    if (out_off_ == out_.size()) {
        out_.clear();
        out_off_ = 0;
    } else if (out_off_ > 1024 * 1024) {
        out_.erase(0, out_off_);
        out_off_ = 0;
    }
}

void Connection::queue_output(const char* data, size_t len) {
    if (closed()) return;
    out_.append(data, len);
    // Write at once unless the socket is known to be full (EV_WRITE armed) or a response is
    // being assembled (corked): most responses then leave in one send() without a loop turn.
    if (corked_ == 0 && !(io_.events() & EV_WRITE)) flush_output();
    if (closed()) return;
    if (output_pending() >= kHighWatermark) was_congested_ = true;
    if (corked_ == 0) update_io();
}

void Connection::cork() {
    ++corked_;
}

void Connection::uncork() {
    if (corked_ == 0 || --corked_ > 0) return;
    queue_output("", 0);
}

void Connection::update_io() {
    if (closed()) return;
    int events = 0;
    if (output_pending() > 0) events |= EV_WRITE;
    // While closing, input is read only to be discarded (see State::Lingering).
    const bool reading_allowed =
        state_ == State::Tunnel ? !tunnel_paused_
                                : state_ == State::Closing || state_ == State::Lingering ||
                                      !parser_paused_ || in_.size() - in_off_ < kMaxBufferedInput;
    if (reading_allowed && !(body_held_ && state_ == State::ReadingBody)) events |= EV_READ;
    io_.set(fd_.get(), events);
}

void Connection::arm_timer() {
    double timeout;
    switch (state_) {
    case State::Idle:
        timeout = limits_.idle_timeout_s;
        break;
    case State::ReadingHead:
        timeout = limits_.header_timeout_s;
        break;
    case State::ReadingBody:
        timeout = limits_.body_timeout_s;
        break;
    case State::Handling:
    case State::Tunnel:
    case State::Closing:
        timeout = limits_.body_timeout_s;
        break; // stalled writes
    case State::Lingering:
        timeout = std::min(kLingerIdleS, linger_until_ - ev_now(loop_));
        if (timeout <= 0) timeout = 0.001;
        break;
    default:
        timer_.stop();
        return;
    }
    timer_.restart(timeout);
}

void Connection::on_timer(struct ev_loop*, ev_timer* w, int) {
    auto* c = static_cast<Connection*>(w->data);
    const double now = ev_now(c->loop_);
    switch (c->state_) {
    case State::Idle:
        c->close();
        return;
    case State::ReadingHead:
        c->reject(408, "timed out reading the request head", "request_timeout");
        return;
    case State::ReadingBody:
        if (now - c->last_progress_ < c->limits_.body_timeout_s) break;
        c->reject(408, "timed out reading the request body", "request_timeout");
        return;
    case State::Handling:
    case State::Tunnel:
    case State::Closing:
        // Only a client that stops reading our output is timed out here; waiting for a model
        // or a slow upstream is bounded elsewhere.
        if ((c->output_pending() > 0 || c->splice_waiting_) &&
            now - c->last_progress_ >= c->limits_.body_timeout_s) {
            LOG_INFO("connection %llu: client stopped reading, closing",
                     static_cast<unsigned long long>(c->id_));
            c->close();
            return;
        }
        // A tunnel whose input is paused for the other side (an upstream that stopped taking
        // the client's bytes) reads nothing, so it would not see the client go away either:
        // without progress either way it ends, rather than hold the model for ever.
        if (c->state_ == State::Tunnel && c->tunnel_paused_ &&
            now - c->last_progress_ >= c->limits_.body_timeout_s) {
            LOG_INFO("connection %llu: tunnel stalled (its upstream stopped reading), closing",
                     static_cast<unsigned long long>(c->id_));
            c->close();
            return;
        }
        break;
    case State::Lingering:
        c->close(); // re-armed by every read: the client sent nothing for a while, or too long
        return;
    default:
        c->timer_.stop(); // (restart() leaves it repeating)
        return;
    }
    const double base = c->limits_.body_timeout_s;
    const double left = base - (now - c->last_progress_);
    c->timer_.start(left > 0.05 ? left : base);
}

// ---------------------------------------------------------------- responses

void Connection::reject(int status, std::string_view message, std::string_view code) {
    if (dispatched_early_ && !req_.body_complete) {
        // The request is the exchange's already: its body failed, so the request is cut.
        LOG_INFO("request %llu: %.*s; the request is cut", static_cast<unsigned long long>(req_.id),
                 static_cast<int>(message.size()), message.data());
        close();
        return;
    }
    // Early answer for a request we will not read to its end: close afterwards.
    close_after_response_ = true;
    stop_parsing_ = true;
    keep_alive_ = false;
    if (state_ == State::Idle) state_ = State::ReadingHead;
    response_started_ = false;
    respond_error(status, message, code);
}

void Connection::start_head_line(int status, const HeaderList& headers, bool drop_framing) {
    response_status_ = status;
    response_bytes_ = 0;
    // Written straight into the output buffer: no temporary strings on the per-request path.
    out_ += "HTTP/1.1 "sv;
    append_number(out_, static_cast<uint64_t>(status));
    out_ += ' ';
    out_ += status_text(status);
    out_ += "\r\nDate: "sv;
    out_ += http_date();
    out_ += "\r\n"sv;
    bool allow_origin_given = false;
    for (const auto& h : headers.items()) {
        const Field f = field_of(h.name);
        // One Date, ours (an upstream's would make two; nginx replaces it too), and the
        // framing we chose replaces the message's own.
        if (f == Field::Date ||
            (drop_framing && (f == Field::ContentLength || f == Field::TransferEncoding)))
            continue;
        allow_origin_given = allow_origin_given || iequals(h.name, "access-control-allow-origin");
        out_ += h.name;
        out_ += ": "sv;
        out_ += h.value;
        out_ += "\r\n"sv;
    }
    // Browsers calling from another origin (web UIs) may read our answers, as with the original.
    if (!allow_origin_given && req_.headers.has("origin"))
        out_ += "Access-Control-Allow-Origin: *\r\n"sv;
    if (!keep_alive_ || close_after_response_ || head_phase_ || server_.shutting_down())
        out_ += "Connection: close\r\n"sv;
    else if (req_.version_major == 1 && req_.version_minor == 0)
        out_ += "Connection: keep-alive\r\n"sv; // HTTP/1.0 closes unless told otherwise
}

void Connection::respond(int status, const HeaderList& headers, std::string_view body) {
    if (closed() || response_started_) return;
    cork(); // head and body leave in one send()
    start_response(status, headers, Framing::ContentLength, body.size());
    if (!head_request_ && !body.empty()) {
        response_bytes_ = body.size();
        queue_output(body.data(), body.size());
    }
    uncork();
    end_response();
}

void Connection::respond_error(int status, std::string_view message, std::string_view code,
                               const HeaderList* extra) {
    HeaderList h;
    if (extra) h = *extra;
    h.set("Content-Type", "application/json");
    respond(status, h, error_json(status, message, code));
}

void Connection::respond_retryable_error(int status, std::string_view message,
                                         std::string_view code, int retry_after_s) {
    HeaderList h;
    if (retry_after_s > 0) h.add("Retry-After", std::to_string(retry_after_s));
    respond_error(status, message, code, &h);
}

void Connection::start_stream(std::string content_type) {
    HeaderList h;
    h.add("Content-Type", std::move(content_type));
    h.add("Cache-Control", "no-cache");
    h.add("X-Accel-Buffering", "no");
    start_response(200, h, Framing::Chunked);
}

void Connection::start_response(int status, const HeaderList& headers, Framing framing,
                                uint64_t content_length) {
    if (closed() || response_started_) return;
    response_started_ = true;
    if (server_.shutting_down()) keep_alive_ = false;
    response_chunked_ = false;
    response_fixed_length_ = false;
    splice_waiting_ = false;
    switch (framing) {
    case Framing::ContentLength: {
        response_fixed_length_ = !head_request_;
        start_head_line(status, headers, true);
        out_ += "Content-Length: "sv;
        append_number(out_, content_length);
        out_ += "\r\n"sv;
        break;
    }
    case Framing::Chunked:
        if (req_.version_major == 1 && req_.version_minor == 0) {
            // HTTP/1.0 has no chunked coding: the end of the body is the end of the connection.
            keep_alive_ = false;
            start_head_line(status, headers, true);
        } else if (!head_request_) {
            start_head_line(status, headers, true);
            out_ += "Transfer-Encoding: chunked\r\n"sv;
            response_chunked_ = true;
        } else {
            start_head_line(status, headers, false);
        }
        break;
    case Framing::None:
        start_head_line(status, headers, false);
        break;
    }
    out_ += "\r\n"sv;
    queue_output("", 0);
}

bool Connection::write_body(const char* data, size_t len) {
    if (closed()) return false;
    if (head_request_ || len == 0) return true;
    response_bytes_ += len;
    if (response_chunked_) {
        append_number(out_, len, 16);
        out_ += "\r\n";
        out_.append(data, len);
        queue_output("\r\n", 2);
    } else {
        queue_output(data, len);
    }
    return !closed();
}

int Connection::splice_target() const {
    if (closed() || tls_ || !response_fixed_length_ || state_ != State::Handling) return -1;
    return fd_.get();
}

void Connection::spliced(size_t n, bool waiting) {
    response_bytes_ += n;
    if (n > 0) last_progress_ = ev_now(loop_);
    splice_waiting_ = waiting;
}

void Connection::end_response() {
    if (closed()) return;
    if (response_chunked_) queue_output("0\r\n\r\n", 5);
    log_access();
    if (closed()) return;
    finish_request();
}

// Long targets are cut in the access log so the status, size and time always make it.
constexpr size_t kLoggedTarget = 1024;

void Connection::log_access() const {
    const LogLevel level = req_.debug_log ? LogLevel::Debug : LogLevel::Info;
    if (!limits_.log_requests || req_.quiet || !log_enabled(level)) return;
    const std::string* ua = req_.headers.find("user-agent");
    LOG_EVENT(
        level, (LogFields{.model = req_.log_model, .request_id = req_.id, .event = "request"}),
        "%s \"%s %.*s%s HTTP/%d.%d\" %d %llu \"%.*s\" %.3f", peer_.c_str(),
        req_.method_name.empty() ? "-" : req_.method_name.c_str(),
        static_cast<int>(std::min<size_t>(req_.target.size(), kLoggedTarget)), req_.target.c_str(),
        req_.target.size() > kLoggedTarget ? "..." : "", req_.version_major, req_.version_minor,
        response_status_, static_cast<unsigned long long>(response_bytes_),
        static_cast<int>(ua ? std::min<size_t>(ua->size(), 256) : 1), ua ? ua->c_str() : "-",
        ev_now(loop_) - req_.received_at);
}

void Connection::abort_response() {
    if (closed()) return;
    log_access();
    // Flush what was produced, then close without the terminating chunk: the client sees a
    // broken message (chunked) or a short body (Content-Length), never a clean end.
    response_chunked_ = false;
    keep_alive_ = false;
    if (exchange_) server_.reaper().defer(std::move(exchange_));
    close_after_flush();
}

void Connection::close_after_flush() {
    // No more requests are parsed; what is queued still goes out, then the socket closes.
    state_ = State::Closing;
    in_.clear();
    in_off_ = 0;
    if (output_pending() == 0)
        start_lingering();
    else
        update_io();
}

void Connection::start_lingering() {
    // Closing a socket with unread input sends a reset, which can destroy the response in
    // the client's receive buffer: send FIN instead and drain what the client still sends.
    if (tls_) tls_->close_notify();
    if (server_.shutting_down() || ::shutdown(fd_.get(), SHUT_WR) != 0) {
        close();
        return;
    }
    state_ = State::Lingering;
    linger_until_ = ev_now(loop_) + kLingerMaxS;
    arm_timer();
    update_io();
}

void Connection::start_tunnel(const HeaderList& headers) {
    if (closed() || response_started_) return;
    response_started_ = true;
    response_status_ = 101;
    response_bytes_ = 0;
    out_ += "HTTP/1.1 101 Switching Protocols\r\n";
    for (const auto& h : headers.items()) {
        out_ += h.name;
        out_ += ": ";
        out_ += h.value;
        out_ += "\r\n";
    }
    out_ += "\r\n";
    state_ = State::Tunnel;
    tunnel_paused_ = false;
    keep_alive_ = false;
    queue_output("", 0);
    if (closed()) return;
    // Bytes the client sent right after its request head belong to the new protocol.
    if (in_off_ < in_.size() && exchange_) {
        std::string early = in_.substr(in_off_);
        in_.clear();
        in_off_ = 0;
        if (!exchange_->on_tunnel_data(early.data(), early.size())) tunnel_paused_ = true;
        if (closed()) return;
    }
    in_.clear();
    in_off_ = 0;
    arm_timer();
    update_io();
}

bool Connection::write_tunnel(const char* data, size_t len) {
    if (closed() || state_ != State::Tunnel) return false;
    response_bytes_ += len;
    queue_output(data, len);
    return !closed();
}

void Connection::resume_tunnel_input() {
    if (state_ != State::Tunnel || !tunnel_paused_) return;
    tunnel_paused_ = false;
    update_io();
    // TLS may hold decrypted client bytes already.
    if (tls_ && tls_->pending() > 0) ev_feed_fd_event(loop_, fd_.get(), EV_READ);
}

void Connection::end_tunnel() {
    if (state_ != State::Tunnel) return;
    log_access();
    if (exchange_) server_.reaper().defer(std::move(exchange_));
    close_after_flush();
}

void Connection::attach_exchange(std::unique_ptr<Exchange> exchange) {
    if (exchange_) server_.reaper().defer(std::move(exchange_));
    exchange_ = std::move(exchange);
}

void Connection::close_when_done() {
    close_after_response_ = true;
    if (exchange_) exchange_->on_shutdown();
    if ((state_ == State::Idle && in_off_ == in_.size()) || state_ == State::Lingering) close();
}

void Connection::close() {
    if (state_ == State::Closed) return;
    if (state_ == State::Tunnel) log_access(); // the client ended it
    state_ = State::Closed;
    io_.stop();
    timer_.stop();
    if (exchange_) {
        exchange_->on_client_gone();
        server_.reaper().defer(std::move(exchange_));
    }
    tls_.reset();
    fd_.reset();
    server_.connection_closed(this); // defers our deletion
}

} // namespace ls::http
