// One client connection: reads requests with llhttp under limits, hands complete requests to
// the Application, writes responses (fixed-length or chunked) with back-pressure, and keeps
// pipelined requests in order (the parser is paused while a response is in progress).
#pragma once

#include <cstdint>
#include <llhttp.h>
#include <memory>
#include <string>

#include "config/config.h"
#include "http/request.h"
#include "tls/tls.h"
#include "util/ev.h"
#include "util/reaper.h"
#include "util/splice_pipe.h"
#include "util/unique_fd.h"

namespace ls::http {

class Server;
class Connection;

// The application's per-request state while a response is produced asynchronously
// (e.g. a proxied request). Owned by the connection; deleted through the Reaper.
class Exchange : public Deferred {
public:
    // Output fell below the low watermark after having been above the high one.
    virtual void on_client_writable() {}
    // The client went away or the connection is being torn down: cancel work, drop all
    // references to the connection. Must not delete `this`.
    virtual void on_client_gone() = 0;
    // The daemon is shutting down: endless responses (log and event streams) end now.
    virtual void on_shutdown() {}
    // A tunnel's bytes from the client (after Connection::start_tunnel). Returns false to
    // stop reading until Connection::resume_tunnel_input().
    virtual bool on_tunnel_data(const char* /*data*/, size_t /*len*/) { return true; }
    // A request taken early (Application::dispatch_early): more of its body is in, or all
    // of it (Request::body_complete). A body that does not arrive ends the connection
    // (on_client_gone).
    virtual void on_request_body() {}
    // The response is complete and the connection goes on to its next request, reusing the
    // Request object: what the exchange still reports about this one is taken now (the
    // exchange itself is deleted later, outside its own callbacks).
    virtual void on_request_done() {}
};

// Observes request body bytes as they arrive (e.g. a streaming model extractor).
class BodyObserver {
public:
    virtual ~BodyObserver() = default;
    virtual void on_body(const char* data, size_t len) = 0;
    // `n` body bytes went past us unseen (spliced straight to an upstream): the bytes after
    // them follow.
    virtual void on_body_skipped(size_t n) = 0;
};

class Application {
public:
    virtual ~Application() = default;
    // The head is parsed. Return true to read the body; false after responding (the
    // connection then closes once the response is flushed).
    virtual bool on_request_head(Connection& conn, Request& req) = 0;
    // The whole request is in. Respond now or attach an Exchange that responds later.
    virtual void on_request(Connection& conn, Request& req) = 0;
    // A spooled Content-Length body is still arriving: return true to take the request now,
    // as on_request would (then on_request is not called for it); the connection goes on
    // reading the body into the spool and tells the exchange (Exchange::on_request_body).
    // Asked after each read until it says yes or the body is in.
    virtual bool dispatch_early(Connection& /*conn*/, Request& /*req*/) { return false; }
};

enum class Framing { ContentLength, Chunked, None };

class Connection : public Deferred {
public:
    // `tls`: a server-side session on `fd` (a TLS listener); its handshake comes first.
    Connection(Server& server, struct ev_loop* loop, UniqueFd fd, uint64_t id,
               std::unique_ptr<tls::Session> tls = nullptr);
    ~Connection() override;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    uint64_t id() const { return id_; }
    const std::string& peer() const { return peer_; }
    Request& request() { return req_; }

    // --- response API (one response per request, in order) ---
    // A complete response with Content-Length.
    void respond(int status, const HeaderList& headers, std::string_view body);
    void respond_error(int status, std::string_view message, std::string_view code,
                       const HeaderList* extra = nullptr);
    // The same with Retry-After when retry_after_s > 0 (busy, loading, shutting down).
    void respond_retryable_error(int status, std::string_view message, std::string_view code,
                                 int retry_after_s);
    // A 200 the client reads as it is produced (SSE, live logs): chunked, never cached, and
    // not buffered by nginx (X-Accel-Buffering: no).
    void start_stream(std::string content_type);
    // A streamed response. For ContentLength, `content_length` bytes must follow.
    void start_response(int status, const HeaderList& headers, Framing framing,
                        uint64_t content_length = 0);
    // Queues body bytes; false when the client is gone (stop producing).
    bool write_body(const char* data, size_t len);
    // Ends the response cleanly (final chunk for chunked) and moves to the next request.
    void end_response();
    // Ends the response as broken: the connection closes without a clean end, so the client
    // sees a truncated message, never a silently short success.
    void abort_response();
    bool response_started() const { return response_started_; }

    // --- protocol switch (101, WebSockets) ---
    // Sends the 101 head (`headers` carry Upgrade and Connection) and turns the connection
    // into a byte tunnel with the attached exchange: client bytes (those already read
    // first) go to Exchange::on_tunnel_data, write_tunnel() sends the other way. No
    // timeouts but a client that stops reading; the access log line is written at the end.
    void start_tunnel(const HeaderList& headers);
    bool write_tunnel(const char* data, size_t len);
    void resume_tunnel_input();
    // The other side ended: what is queued goes out, then the connection closes.
    void end_tunnel();
    bool tunneling() const { return state_ == State::Tunnel; }

    // Back-pressure: producers pause above the high watermark and wait for
    // Exchange::on_client_writable().
    size_t output_pending() const { return out_.size() - out_off_; }
    // Between cork() and uncork() output is only queued; uncork() sends it in one go.
    void cork();
    void uncork();
    bool output_congested() const { return output_pending() >= kHighWatermark; }
    // Zero-copy: the socket the current response's body may be spliced into (once
    // output_pending() is 0): a Content-Length response on a plain TCP connection; else -1.
    int splice_target() const;
    // `n` body bytes went into the socket by splice; `waiting`: more wait for the socket to
    // take them (a client that stops reading is then timed out as for queued output).
    void spliced(size_t n, bool waiting);

    // --- zero-copy upload: the body of a request taken early (Application::dispatch_early) ---
    // Whether its body may be spliced from the socket at all: a Content-Length body still
    // arriving into the spool, on a plain TCP connection.
    bool body_splice_possible() const;
    // The socket the next body bytes may be spliced from, with `max` set to how many: the
    // body's rest but its last kBodyTail bytes, which are read and parsed as usual, so the
    // request ends as any other (and a body scanner sees the end). -1 when none may be now.
    int body_splice_source(uint64_t& max) const;
    // While held, the connection does not read the body: the exchange splices it.
    void hold_body_input(bool hold);
    // `n` body bytes went past the parser (spliced) and count as read; n == 0: the exchange
    // waits for its upstream meanwhile, which is no stall of the client's.
    void body_spliced(size_t n);
    static constexpr uint64_t kBodyTail = 4096;

    void attach_exchange(std::unique_ptr<Exchange> exchange);
    void set_body_observer(std::unique_ptr<BodyObserver> observer) {
        observer_ = std::move(observer);
    }
    BodyObserver* body_observer() const { return observer_.get(); }
    bool closed() const { return state_ == State::Closed; }
    bool idle() const { return state_ == State::Idle && in_.size() == in_off_; }

    // Graceful shutdown: finish the current response, then close.
    void close_when_done();
    // Immediate teardown (client gone, fatal error, forced shutdown).
    void close();

    static constexpr size_t kHighWatermark = 256 * 1024;
    static constexpr size_t kLowWatermark = 64 * 1024;

private:
    // Closing: the last response is going out; input is read and discarded. Lingering: it is
    // out and our side is shut down for writing; input is still discarded until the client
    // closes (or a bounded time passes), so a client still sending a body we refused reads
    // our answer instead of a connection reset.
    enum class State {
        Idle,
        ReadingHead,
        ReadingBody,
        Handling,
        Tunnel,
        Closing,
        Lingering,
        Closed
    };
    static constexpr double kLingerIdleS = 5;
    static constexpr double kLingerMaxS = 30;

    static void on_io(struct ev_loop*, ev_io*, int revents);
    // The socket's bytes, through TLS on a TLS listener's connections: -1 with errno EAGAIN
    // (or another error), 0 at the end.
    ssize_t read_some(char* buf, size_t len);
    ssize_t write_some(const char* buf, size_t len);
    bool continue_handshake(); // false: not done yet, or the connection closed
    static void on_timer(struct ev_loop*, ev_timer*, int);
    static const llhttp_settings_t kSettings;
    static int cb_message_begin(llhttp_t*);
    static int cb_url(llhttp_t*, const char*, size_t);
    static int cb_header_field(llhttp_t*, const char*, size_t);
    static int cb_header_value(llhttp_t*, const char*, size_t);
    static int cb_headers_complete(llhttp_t*);
    static int cb_body(llhttp_t*, const char*, size_t);
    static int cb_message_complete(llhttp_t*);

    void handle_read();
    void handle_write();
    void parse_input();
    void parse_read(const char* data, size_t len); // nothing buffered: parse where read
    void on_parser_pause();                        // a request's end: dispatch it
    void on_parse_error();
    void dispatch();
    void body_progress(); // after a read in ReadingBody: early dispatch, or news of the body
    // A spooled body's next bytes, socket → pipe → spool (connection_splice.cc).
    enum class SpliceRead { NotApplicable, Moved, WouldBlock, Ended };
    SpliceRead splice_body_into_spool();
    // A spooled Content-Length body still arriving on a plain TCP connection (and splice
    // not turned off).
    bool body_splice_eligible() const;
    // How many of its next bytes may go past the parser now (spliced into the spool or
    // upstream): with every byte read so far parsed, all but the last kBodyTail; 0: none.
    uint64_t body_splice_room() const;
    void finish_request();
    void close_after_flush();
    void start_lingering();
    void reject(int status, std::string_view message, std::string_view code);
    bool count_head_bytes(size_t n);
    void queue_output(const char* data, size_t len);
    void flush_output();
    void update_io();
    void arm_timer();
    void start_head_line(int status, const HeaderList& headers, bool drop_framing);
    void log_access() const;

    Server& server_;
    struct ev_loop* loop_;
    UniqueFd fd_;
    std::unique_ptr<tls::Session> tls_; // before fd_ closes, the session goes (member order)
    uint64_t id_;
    std::string peer_;
    IoWatcher io_;
    TimerWatcher timer_;
    const config::ServerConfig& limits_;

    State state_ = State::Idle;
    llhttp_t parser_;
    bool parser_paused_ = false;
    bool stop_parsing_ = false;
    std::string in_;
    size_t in_off_ = 0;
    size_t head_bytes_ = 0;
    // The next header field span starts a new header (the first, or one after a value): the
    // name goes straight into the list, no copy through a scratch string.
    bool new_field_ = true;

    Request req_;
    std::unique_ptr<BodyObserver> observer_;
    std::unique_ptr<Exchange> exchange_;
    bool response_started_ = false;
    bool response_chunked_ = false;
    bool response_fixed_length_ = false; // a Content-Length response (splice_target)
    bool splice_waiting_ = false;        // see spliced()
    bool head_request_ = false;
    bool keep_alive_ = true;
    bool close_after_response_ = false;
    bool head_phase_ = false;
    bool was_congested_ = false;
    bool tunnel_paused_ = false;    // the exchange cannot take more client bytes now
    bool dispatched_early_ = false; // see Application::dispatch_early
    bool body_held_ = false;        // see hold_body_input
    SplicePipe body_pipe_;          // see splice_body_into_spool (kept while the body comes)
    int corked_ = 0;

    std::string out_;
    size_t out_off_ = 0;
    int response_status_ = 0;
    uint64_t response_bytes_ = 0; // body bytes of the current response, for the access log
    double last_progress_ = 0;
    double linger_until_ = 0;
};

} // namespace ls::http
