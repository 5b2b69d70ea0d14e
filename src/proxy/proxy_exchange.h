// One proxied request: waits for its model (router::Waiter), sends the request upstream
// (body from memory or, when spooled, with sendfile), relays the response as it arrives with
// back-pressure in both directions, and releases the model when done. An upgrade request
// (WebSocket) that the upstream answers with 101 becomes a two-way byte tunnel that holds
// the model (in flight) until either side closes.
#pragma once

#include <array>
#include <functional>
#include <llhttp.h>
#include <memory>
#include <string>
#include <vector>

#include "http/connection.h"
#include "metrics/usage.h"
#include "proxy/exchange_observer.h"
#include "proxy/resolver.h"
#include "proxy/upstream_address.h"
#include "proxy/upstream_pool.h"
#include "router/scheduler.h"
#include "supervisor/liveness_check.h"
#include "tls/tls.h"
#include "util/ev.h"
#include "util/splice_pipe.h"
#include "util/unique_fd.h"

namespace ls::proxy {

// A replacement of body bytes [begin, end) (useModelName).
struct BodyRewrite {
    bool active = false;
    size_t begin = 0;
    size_t end = 0;
    std::string replacement;
};

// A peer: another server reached without a model process or the scheduler.
struct PeerTarget {
    std::string id;
    UpstreamAddress address; // may still need its host name looked up
    config::UpstreamTimeouts timeouts;
    std::shared_ptr<tls::Context> tls; // https://
    std::string api_key;               // sent as Bearer and x-api-key
    // The last lookup of address.lookup_name, shared by the peer's requests (a minute).
    struct Resolved {
        ResolvedAddress addr;
        double until = 0;
    };
    std::shared_ptr<Resolved> resolved = std::make_shared<Resolved>();
};

// How a request is forwarded.
struct ProxyOptions {
    BodyRewrite rewrite;
    std::string target;             // request-target sent upstream; empty: the client's own
    bool strip_credentials = false; // drop Authorization and x-api-key (they were ours)
    ExchangeObserver* observer = nullptr;
    // sendLoadingState: while the model loads, answer a streamed chat at once and show the
    // progress as reasoning_content; the upstream's stream then continues the same response.
    bool loading_state = false;
    // Kept until the exchange ends (a spillover selector's reservation releases itself).
    std::shared_ptr<void> hold;
    // Set: the request goes to this peer (the model id is its "peer/model" name).
    std::shared_ptr<const PeerTarget> peer;
    Resolver* resolver = nullptr; // for a peer's host name
    // compat.ignoreWebsockets: the model is used only if it is ready now, without the
    // scheduler (never started, not counted in flight); otherwise 409.
    bool unscheduled = false;
    // For the observer: see ExchangeInfo (route_path empty: the request's path).
    std::string route_path;
    bool in_flight = false;
    bool metered = false;
    std::string selector;
    std::string client;
    // Above 0: the request's headers and the response head are kept for a capture, and with
    // capture_req_body / capture_body the request's body and a 200 response's body, each up
    // to this many bytes (a longer one is not kept).
    size_t capture_limit = 0;
    bool capture_req_body = false;
    bool capture_body = false;
    // A request taken while its body still arrives (http::Application::dispatch_early): the
    // check of the whole body, run when it is in (false, with the reason: 400). The model is
    // made ready meanwhile; nothing goes upstream before the check passes.
    std::function<bool(std::string& error)> body_check;
};

class ProxyExchange final : public http::Exchange,
                            public router::Waiter,
                            public ConnectionWaiter,
                            public supervisor::LivenessWaiter {
public:
    ProxyExchange(struct ev_loop* loop, http::Connection& client, http::Request& req,
                  router::Scheduler& scheduler, UpstreamPool& pool, std::string model_id,
                  ProxyOptions&& options);
    ~ProxyExchange() override;
    // An exchange is 2 KiB, past malloc's per-thread cache: a few freed ones are kept for the
    // next requests (per thread), which spares malloc's slower path on every request.
    static void* operator new(size_t size);
    static void operator delete(void* p, size_t size);

    // Queues for the model; everything after happens in callbacks.
    void begin();

    // router::Waiter
    void on_granted(supervisor::ModelProcess& process) override;
    void on_rejected(const router::Rejection& why) override;
    // http::Exchange
    void on_client_writable() override;
    void on_client_gone() override;
    void on_shutdown() override;
    bool on_tunnel_data(const char* data, size_t len) override;
    void on_request_body() override;
    void on_request_done() override { report_end(); }
    // ConnectionWaiter: the upstream's connection cap let us through.
    void on_connection(UpstreamSocketPtr sock) override;
    // LivenessWaiter: the answer to a silent upstream's check (false: wedged, cut us).
    void on_liveness(bool alive) override;
    // POST /api/inflight/<id>/cancel: the upstream request is closed; the client gets a 502
    // (nothing sent yet) or a cut response.
    void cancel();

private:
    // Waiting: for the model; WaitingConnection: for a connection slot of its upstream.
    enum class State {
        Waiting,
        Resolving, // a peer's host name
        WaitingConnection,
        Connecting,
        Handshaking, // TLS
        Sending,
        ReadingHead,
        Relaying,
        Tunnel, // after a 101: bytes both ways
        Done
    };
    struct Segment {
        bool from_body; // else: `text`
        size_t offset;  // in the body, or in text
        size_t length;
    };
    // At most four: the head, then the body whole, or the body around a rewritten field.
    // In place: a vector cost an allocation per request.
    struct Segments {
        std::array<Segment, 4> items;
        size_t n = 0;
        size_t size() const { return n; }
        const Segment& operator[](size_t i) const { return items[i]; }
        void clear() { n = 0; }
        void push_back(const Segment& s) { items[n++] = s; }
    };

    static void on_io(struct ev_loop*, ev_io*, int);
    static void on_timeout(struct ev_loop*, ev_timer*, int);
    static void on_silence(struct ev_loop*, ev_timer*, int);
    // From the request sent until the response ends: the upstream's silence is watched.
    void watch_silence();
    static void on_loading_tick(struct ev_loop*, ev_timer*, int);
    void start_loading_stream();
    void loading_event(const std::string& reasoning);
    static const llhttp_settings_t kSettings;
    static int cb_header_field(llhttp_t*, const char*, size_t);
    static int cb_header_value(llhttp_t*, const char*, size_t);
    static int cb_headers_complete(llhttp_t*);
    static int cb_body(llhttp_t*, const char*, size_t);
    static int cb_message_complete(llhttp_t*);

    void start_peer();
    void start_unscheduled();
    // The tunnel: client bytes queued for the upstream, upstream bytes to the client.
    void start_tunnel(const http::HeaderList& upstream_headers, const char* early, size_t len);
    void tunnel_send();
    void tunnel_read();
    void end_tunnel(const char* why);
    void peer_resolved(Result<ResolvedAddress> r);
    void acquire_connection();
    void connected(); // TCP is up: TLS handshake (https) or the request
    void continue_handshake();
    // The upstream socket's bytes, through TLS where there is a session. -1 with errno
    // EAGAIN (want_write_ says whether writability is what it waits for) or another error.
    ssize_t upstream_send(const iovec* iov, int count);
    ssize_t upstream_recv(char* buf, size_t len);
    std::string subject() const; // "model 'x'" or "peer 'p'", for messages
    void use_connection(UpstreamSocketPtr sock);
    // Connects sock_ afresh: a new slot, or the slot of a stale pooled connection.
    void open_connection();
    void build_request();
    void write_request_head(size_t body_len); // appends to head_ (build_request)
    void handle_io(int revents);
    void send_more();
    void read_response();
    // The upstream connection failed: retried once on a fresh connection when a pooled one
    // was stale, else the client gets `status` (or a cut response when relaying).
    void upstream_failed(const std::string& what, int err, int status = 502,
                         const char* code = "upstream_unreachable");
    // Answers an error: a JSON error response, or the last event of a loading stream.
    void fail_client(int status, const std::string& message, const std::string& code,
                     int retry_after_s = 0);
    void finish_ok();
    void take_request_body(bool move);
    void release_model();
    void close_upstream();
    void update_upstream_io();
    void acknowledge_now(); // TCP_QUICKACK
    // Zero-copy relay (proxy_splice.cc): a Content-Length body that nothing needs to see
    // goes upstream socket → pipe → client socket by splice(2) after the head.
    bool splice_allowed(int status) const;
    void start_splice();
    void splice_step();
    void stop_splice();
    static void on_client_io(struct ev_loop*, ev_io*, int);
    // Zero-copy upload (proxy_upload.cc): a body still arriving goes upstream as it comes,
    // from the spool, then client socket → pipe → upstream socket by splice(2).
    bool upload_splice_possible() const;
    // The client's socket when the body's next bytes may be spliced from it, `sent` bytes of
    // it being out (with `max`: how many); else -1.
    int upload_source(size_t sent, uint64_t& max) const;
    // Sends more of body segment `seg` while the body arrives or waits for its check; true
    // once the segment is all out, false while waiting (watchers set) or when it ended.
    bool send_arriving_body(const Segment& seg);
    void end_upload(); // an early response: the rest of the body is not sent

    struct ev_loop* loop_;
    http::Connection* client_;
    http::Request& req_;
    router::Scheduler& scheduler_;
    UpstreamPool& pool_;
    std::string model_;
    ProxyOptions opt_;

    State state_ = State::Waiting;
    bool granted_ = false;
    bool released_ = false;
    bool reused_ = false;        // the upstream connection came from the pool
    int requeues_ = 0;           // asked the scheduler again after a refused connect
    bool retried_stale_ = false; // reconnected after a stale pooled connection
    bool got_response_bytes_ = false;
    std::string pool_key_;
    ConnectionPolicy connections_;
    // The granted process's address: valid while the model is held (it is not replaced then).
    const UpstreamAddress* upstream_ = nullptr;
    UpstreamAddress address_copy_;      // a peer's (looked up), or an unscheduled model's
    std::shared_ptr<tls::Context> tls_; // the upstream's TLS context (https://)
    std::unique_ptr<Resolver::Lookup> lookup_;
    bool want_write_ = false; // TLS: a read waits for the socket to be writable
    std::string tls_error_;   // TLS: why the last upstream_send/recv failed
    UpstreamSocketPtr sock_;  // the upstream connection (from the pool or new)
    int ufd() const { return sock_ ? sock_->fd.get() : -1; }
    void watch(int events) {
        if (sock_) sock_->io.set(sock_->fd.get(), events);
    }
    TimerWatcher timeout_; // connect, then response-head timeout (the model's `timeouts`)
    // A scheduled model's process, while granted: asked about a silent upstream.
    supervisor::ModelProcess* process_ = nullptr;
    TimerWatcher silence_;  // timeouts.silence; checks last_heard_ lazily
    double last_heard_ = 0; // the upstream's last byte (or when we stopped reading it)
    config::UpstreamTimeouts timeouts_;

    std::string head_; // the request head we send
    Segments segments_;
    size_t seg_index_ = 0;
    size_t seg_done_ = 0;
    bool body_checked_ = true; // see ProxyOptions::body_check
    bool body_hold_ = false;   // granted, waiting for the body to be whole (acquire_connection)
    bool uploading_ = false;   // sending a body that still arrives (send_arriving_body)
    uint64_t uploaded_from_client_ = 0; // spliced from the client's socket: no retry then

    llhttp_t parser_;
    http::HeaderList resp_headers_; // the upstream's head; from its end, the client's
    bool new_field_ = true;         // the next header field span starts a new header (connection.h)
    bool upstream_keep_alive_ = false;
    bool paused_for_client_ = false;
    bool message_complete_ = false;
    size_t resp_head_bytes_ = 0; // an upstream cannot make us buffer an endless head
    static constexpr size_t kMaxResponseHead = 64 * 1024;

    TimerWatcher loading_tick_;
    bool loading_stream_ = false; // the client already has our 200 event-stream head
    bool wrap_upstream_error_ = false;
    std::string upstream_error_; // a non-200 upstream body, sent as one event

    // Tells the observer how the exchange ended, once: when the connection is done with the
    // request (info_ views its strings), or at the latest when the exchange is deleted.
    void report_end();
    ExchangeInfo info_;
    bool started_ = false;
    bool reported_ = false;
    int status_ = 0;                    // what the client got (0: nothing)
    const char* outcome_ = "completed"; // see ExchangeResult::outcome
    const char* failure_ = nullptr;     // see ExchangeResult::failure
    double first_byte_at_ = 0;          // see ExchangeResult::first_byte_at
    uint64_t relayed_ = 0;              // response body bytes relayed
    std::string content_type_;          // of the response the client got
    std::string error_body_;            // a non-200 response's first bytes, or our message
    static constexpr size_t kMaxErrorBody = 16 * 1024;
    bool keep_error_body_ = false;
    double granted_at_ = 0;
    std::optional<metrics::UsageScanner> usage_; // made with a 2xx response head
    http::PackedHeaders capture_req_headers_;    // see ProxyOptions::capture_limit
    std::optional<std::string> capture_req_body_;
    // The capture's request body is the request's own, in memory: taken when the exchange
    // ends (take_request_body), not copied when it begins.
    bool capture_body_from_request_ = false;
    bool capture_head_ = false; // resp_headers_ (the client's head by then) goes to the capture
    std::optional<std::string> capture_body_;

    // Splicing: wanted once the head allows it, active once the parsed part is relayed.
    bool splice_wanted_ = false;
    bool splicing_ = false;
    uint64_t splice_total_ = 0; // the body's Content-Length
    uint64_t splice_left_ = 0;  // still to come from the upstream
    SplicePipe pipe_;
    IoWatcher client_io_; // the client's socket becoming writable, while splicing
    static constexpr uint64_t kSpliceMin = 64 * 1024; // smaller bodies: one copy is cheaper

    std::string to_upstream_; // tunnel: client bytes not yet sent upstream
    size_t to_upstream_off_ = 0;
    bool client_input_paused_ = false;
    static constexpr size_t kTunnelHighWatermark = 256 * 1024;
    static constexpr size_t kReadChunk = 64 * 1024; // one upstream read
};

} // namespace ls::proxy
