// ProxyExchange's llhttp callbacks for the upstream's response: the head (kept, checked and
// passed on), body bytes relayed as they are parsed (and scanned for usage), the end.
#include "proxy/proxy_exchange.h"

#include "util/log.h"

namespace ls::proxy {

namespace {
ProxyExchange* from_parser(llhttp_t* p) {
    return static_cast<ProxyExchange*>(p->data);
}
} // namespace

// ------------------------------------------------------------------ response parsing

int ProxyExchange::cb_header_field(llhttp_t* p, const char* at, size_t len) {
    ProxyExchange* x = from_parser(p);
    if ((x->resp_head_bytes_ += len + 4) > kMaxResponseHead) return HPE_USER;
    if (x->state_ == State::Relaying) return 0; // a chunked body's trailer: dropped
    if (x->new_field_) {
        x->resp_headers_.add_named({});
        x->new_field_ = false;
    }
    x->resp_headers_.items().back().name.append(at, len);
    return 0;
}

int ProxyExchange::cb_header_value(llhttp_t* p, const char* at, size_t len) {
    ProxyExchange* x = from_parser(p);
    if ((x->resp_head_bytes_ += len) > kMaxResponseHead) return HPE_USER;
    if (x->state_ == State::Relaying) return 0; // a trailer (the body is re-framed for the client)
    x->new_field_ = true;                       // (llhttp calls this for an empty value too)
    if (x->resp_headers_.empty()) return HPE_USER; // never: a value follows its field
    x->resp_headers_.items().back().value.append(at, len);
    return 0;
}

int ProxyExchange::cb_headers_complete(llhttp_t* p) {
    ProxyExchange* x = from_parser(p);
    const int status = p->status_code;
    if (status == 101 && p->upgrade) return 0; // the switch: read_response starts the tunnel
    if (status >= 100 && status < 200) {       // interim response: forget it, the real one follows
        x->resp_headers_.clear();
        x->new_field_ = true;
        return 0;
    }
    x->upstream_keep_alive_ = llhttp_should_keep_alive(p) != 0;
    const bool head = x->req_.method == HTTP_HEAD;
    const bool no_body = head || status == 204 || status == 304;
    std::string no_body_length; // what a body-less answer says its body would be
    if (const std::string* cl = no_body ? x->resp_headers_.find("content-length") : nullptr)
        no_body_length = *cl;

    // The client's head is the upstream's, filtered in place (no copy per request): without
    // the hop-by-hop fields and the framing, which is ours.
    http::HeaderList& out = x->resp_headers_;
    // (a copy: the list is reordered below)
    const std::string connection(http::connection_names(out.find("connection")));
    std::vector<http::Header>& items = out.items();
    size_t kept = 0;
    size_t content_type = items.size(); // its index once kept; none: items.size()
    for (size_t i = 0; i < items.size(); ++i) {
        http::Header& h = items[i];
        const http::Field f = http::field_of(h.name);
        if (http::is_hop_by_hop(f, h.name, connection) || f == http::Field::ContentLength) continue;
        if (f == http::Field::ContentType && content_type == items.size()) content_type = kept;
        if (kept != i) items[kept] = std::move(h);
        ++kept;
    }
    const std::string* ct = content_type < kept ? &items[content_type].value : nullptr;
    const bool sse = ct && ct->find("text/event-stream") != std::string::npos;
    if (x->opt_.observer) x->content_type_ = ct ? *ct : "";
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(kept), items.end());
    // nginx and other buffering proxies must pass events through as they come.
    if (sse && !out.has("X-Accel-Buffering")) out.add("X-Accel-Buffering", "no");

    http::Framing framing;
    uint64_t length = 0;
    if (no_body) {
        framing = http::Framing::None;
        if (!no_body_length.empty()) out.set("Content-Length", std::move(no_body_length));
    } else if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED)) {
        framing = http::Framing::ContentLength;
        length = p->content_length;
    } else {
        framing = http::Framing::Chunked;
    }
    x->state_ = State::Relaying;
    x->timeout_.stop();
    if (x->opt_.observer) {
        x->opt_.observer->on_exchange_response(x->info_, status, out);
        if (x->opt_.capture_limit > 0) {
            x->capture_head_ = true; // the head itself is taken when the exchange ends
            if (x->opt_.capture_body && status == 200 && !head) x->capture_body_.emplace();
        }
    }
    x->keep_error_body_ = status != 200 && x->opt_.observer;
    // Token counts come from the body as it passes: SSE events or a JSON document.
    if (x->opt_.observer && status < 300) x->usage_.emplace(sse);
    if (x->loading_stream_) {
        // Our 200 event stream is already under way: the upstream's body continues it, and
        // an error answer becomes one event instead of a second status line.
        x->wrap_upstream_error_ = status != 200;
        return head ? 1 : 0;
    }
    x->status_ = status;
    x->client_->start_response(status, out, framing, length);
    if (framing == http::Framing::ContentLength && length >= kSpliceMin &&
        x->splice_allowed(status)) {
        x->splice_wanted_ = true;
        x->splice_total_ = length;
        x->usage_.reset(); // a body the scanner could read is never spliced
    }
    return head ? 1 : 0; // 1: a response to HEAD has no body
}

int ProxyExchange::cb_body(llhttp_t* p, const char* at, size_t len) {
    ProxyExchange* x = from_parser(p);
    if (!x->client_) return HPE_USER;
    if (x->wrap_upstream_error_) {
        if (x->upstream_error_.size() < 64 * 1024) x->upstream_error_.append(at, len);
        return 0;
    }
    if (x->keep_error_body_ && x->error_body_.size() < kMaxErrorBody)
        x->error_body_.append(at, std::min(len, kMaxErrorBody - x->error_body_.size()));
    if (!x->client_->write_body(at, len)) return HPE_USER;
    if (x->first_byte_at_ == 0 && len > 0 && p->status_code >= 200 && p->status_code < 300)
        x->first_byte_at_ = ev_now(x->loop_);
    x->relayed_ += len;
    if (x->capture_body_) {
        if (x->capture_body_->size() + len <= x->opt_.capture_limit)
            x->capture_body_->append(at, len);
        else
            x->capture_body_.reset(); // too long to keep
    }
    // llhttp counts a Content-Length body down before each piece: 0, the last one.
    const bool last_piece =
        (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED) && p->content_length == 0;
    if (x->usage_) x->usage_->feed(at, len, last_piece);
    if (x->opt_.observer) x->opt_.observer->on_exchange_progress(x->info_, x->relayed_);
    if (x->client_->output_congested()) x->paused_for_client_ = true;
    return 0;
}

int ProxyExchange::cb_message_complete(llhttp_t* p) {
    ProxyExchange* x = from_parser(p);
    if (x->state_ != State::Relaying) return 0; // end of an interim 1xx message
    x->message_complete_ = true;
    return HPE_PAUSED;
}

} // namespace ls::proxy
