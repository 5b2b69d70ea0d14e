// Connection's llhttp callbacks: the request head under the header limit (trailers counted
// and dropped), the body into memory or the spool as it is parsed, and the end of a message.
#include "http/connection.h"

#include <string>

#include "http/server.h"
#include "util/log.h"

namespace ls::http {

namespace {
Connection* from_parser(llhttp_t* p) {
    return static_cast<Connection*>(p->data);
}
} // namespace

// ---------------------------------------------------------------- parser callbacks

int Connection::cb_message_begin(llhttp_t* p) {
    Connection* c = from_parser(p);
    c->state_ = State::ReadingHead;
    c->req_.reset(Body(c->limits_.body_memory_bytes, &c->limits_.spool_dir));
    c->req_.headers.reserve_typical();
    c->req_.received_at = ev_now(c->loop_); // refined when the head is complete
    c->head_bytes_ = 0;
    c->new_field_ = true;
    c->observer_.reset();
    c->dispatched_early_ = false;
    c->body_held_ = false;
    c->arm_timer();
    return 0;
}

bool Connection::count_head_bytes(size_t n) {
    head_bytes_ += n + 4; // separators and line ends, roughly
    if (head_bytes_ <= limits_.max_header_bytes) return true;
    reject(431,
           "request header fields are larger than the limit of " +
               std::to_string(limits_.max_header_bytes) + " bytes",
           "header_too_large");
    return false;
}

int Connection::cb_url(llhttp_t* p, const char* at, size_t len) {
    Connection* c = from_parser(p);
    if (!c->count_head_bytes(len)) return HPE_USER;
    c->req_.target.append(at, len);
    return 0;
}

int Connection::cb_header_field(llhttp_t* p, const char* at, size_t len) {
    Connection* c = from_parser(p);
    if (!c->count_head_bytes(len)) return HPE_USER;
    if (c->state_ == State::ReadingBody) return 0; // a trailer field (see cb_header_value)
    if (c->new_field_) {
        c->req_.headers.add_named({});
        c->new_field_ = false;
    }
    c->req_.headers.items().back().name.append(at, len);
    return 0;
}

int Connection::cb_header_value(llhttp_t* p, const char* at, size_t len) {
    Connection* c = from_parser(p);
    if (!c->count_head_bytes(len)) return HPE_USER;
    // Trailer fields of a chunked body are counted against the head limit and dropped: merged
    // into the header section they could change what the request was routed and scanned by
    // (RFC 9110 6.5.1), and the body goes upstream re-framed anyway.
    if (c->state_ == State::ReadingBody) return 0;
    c->new_field_ = true;                         // (llhttp calls this for an empty value too)
    if (c->req_.headers.empty()) return HPE_USER; // never: a value follows its field
    c->req_.headers.items().back().value.append(at, len);
    return 0;
}

int Connection::cb_headers_complete(llhttp_t* p) {
    Connection* c = from_parser(p);
    Request& r = c->req_;
    r.id = c->server_.next_request_id();
    r.method = p->method;
    r.method_name = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    r.version_major = p->http_major;
    r.version_minor = p->http_minor;
    r.keep_alive = llhttp_should_keep_alive(p) != 0;
    r.received_at = ev_now(c->loop_);
    const std::string_view target = r.target;
    const size_t q = target.find('?');
    r.path.assign(target.substr(0, q));
    if (q != std::string_view::npos) r.query.assign(target.substr(q + 1));
    const bool chunked = (p->flags & F_CHUNKED) != 0;
    const bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    r.has_body = chunked || (has_length && p->content_length > 0);
    r.content_length = has_length && !chunked ? p->content_length : 0;
    r.body_complete = !r.has_body;
    r.upgrade = p->upgrade != 0 && p->method != HTTP_CONNECT;
    if (const std::string* e = r.headers.find("expect"))
        r.expect_continue = iequals(*e, "100-continue");
    c->head_request_ = r.method == HTTP_HEAD;

    if (has_length && p->content_length > c->limits_.max_body_bytes) {
        c->reject(413,
                  "request body of " + std::to_string(p->content_length) +
                      " bytes is larger than the limit of " +
                      std::to_string(c->limits_.max_body_bytes) + " bytes",
                  "body_too_large");
        return HPE_USER;
    }
    if (r.expect_continue && !r.has_body) r.expect_continue = false;

    c->state_ = State::ReadingBody;
    c->arm_timer();
    c->keep_alive_ = r.keep_alive && !c->server_.shutting_down();
    // An answer given at head time leaves the body unread: the connection closes after it.
    c->head_phase_ = true;
    const bool proceed = c->server_.app().on_request_head(*c, r);
    c->head_phase_ = false;
    if (!proceed) {
        c->stop_parsing_ = true;
        return HPE_USER;
    }
    if (r.content_length > 0) r.body.expect(r.content_length);
    if (r.expect_continue && r.version_minor >= 1) {
        static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        c->queue_output(kContinue, sizeof kContinue - 1);
    }
    return 0;
}

int Connection::cb_body(llhttp_t* p, const char* at, size_t len) {
    Connection* c = from_parser(p);
    Request& r = c->req_;
    if (r.body.size() + len > c->limits_.max_body_bytes) {
        c->reject(413,
                  "request body is larger than the limit of " +
                      std::to_string(c->limits_.max_body_bytes) + " bytes",
                  "body_too_large");
        return HPE_USER;
    }
    if (auto res = r.body.append(at, len); !res) {
        LOG_ERROR("request %llu: %s", static_cast<unsigned long long>(r.id),
                  res.error().message.c_str());
        c->reject(503, res.error().message, "spool_failed");
        return HPE_USER;
    }
    if (c->observer_) c->observer_->on_body(at, len);
    c->last_progress_ = ev_now(c->loop_);
    return 0;
}

int Connection::cb_message_complete(llhttp_t* p) {
    Connection* c = from_parser(p);
    c->req_.keep_alive = llhttp_should_keep_alive(p) != 0;
    c->req_.body_complete = true;
    c->state_ = State::Handling;
    c->parser_paused_ = true;
    return HPE_PAUSED; // answer this request before parsing the next (pipelining order)
}

} // namespace ls::http
