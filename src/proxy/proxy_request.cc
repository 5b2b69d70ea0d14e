// ProxyExchange's request to the upstream: its head written (the client's, filtered, with our
// framing and Host), then head and body sent as segments: from memory, the spool (sendfile),
// the client's socket while the body still arrives (proxy_upload.cc), with a rewritten
// `model` field in between where the route asked for it.
#include <cerrno>
#include <charconv>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "http/head_writer.h"
#include "proxy/proxy_exchange.h"
#include "util/log.h"

namespace ls::proxy {

using namespace std::literals;

void ProxyExchange::build_request() {
    // A body still arriving (an upload) is announced whole: its rest follows as it comes.
    const size_t total = req_.body_complete ? req_.body.size() : req_.content_length;
    size_t body_len = total;
    if (opt_.rewrite.active && opt_.rewrite.end <= body_len &&
        opt_.rewrite.begin <= opt_.rewrite.end) {
        body_len =
            body_len - (opt_.rewrite.end - opt_.rewrite.begin) + opt_.rewrite.replacement.size();
    }
    head_.clear();
    write_request_head(body_len);

    segments_.clear();
    segments_.push_back({false, 0, head_.size()});
    if (opt_.rewrite.active && opt_.rewrite.end <= total) {
        segments_.push_back({true, 0, opt_.rewrite.begin});
        segments_.push_back({false, head_.size(), opt_.rewrite.replacement.size()});
        head_ += opt_.rewrite.replacement; // text segment after the head
        segments_.push_back({true, opt_.rewrite.end, total - opt_.rewrite.end});
    } else if (total > 0) {
        segments_.push_back({true, 0, total});
    }
    seg_index_ = 0;
    seg_done_ = 0;
}

void ProxyExchange::write_request_head(size_t body_len) {
    const bool peer = opt_.peer != nullptr;
    const std::string_view target = opt_.target.empty() ? req_.target : opt_.target;
    const std::string* upgrade = req_.upgrade ? req_.headers.find("upgrade") : nullptr;
    // Room for the pieces below, every client header kept, and their fixed text (the writer
    // grows past it if need be).
    size_t most = req_.method_name.size() + upstream_->base_path.size() + target.size() +
                  upstream_->host_header.size() + (upgrade ? upgrade->size() : 0) +
                  (peer ? 2 * opt_.peer->api_key.size() : 0) + 256;
    for (const auto& h : req_.headers.items()) most += h.name.size() + h.value.size() + 4;
    http::HeadWriter w(head_, most);
    w << req_.method_name << " "sv << upstream_->base_path << target << " HTTP/1.1\r\n"sv;
    bool has_host = false;
    const std::string_view connection = http::connection_names(req_.headers.find("connection"));
    for (const auto& h : req_.headers.items()) {
        const http::Field f = http::field_of(h.name);
        if (http::is_hop_by_hop(f, h.name, connection) || f == http::Field::ContentLength ||
            f == http::Field::Expect)
            continue;
        // A peer gets its own key, never the client's.
        if ((opt_.strip_credentials || peer) &&
            (f == http::Field::Authorization || f == http::Field::XApiKey))
            continue;
        if (f == http::Field::Host) {
            if (peer) continue; // a remote server is addressed by its own name
            has_host = true;
        }
        w << h.name << ": "sv << h.value << "\r\n"sv;
    }
    if (!has_host) w << "Host: "sv << upstream_->host_header << "\r\n"sv;
    if (peer && !opt_.peer->api_key.empty()) {
        w << "Authorization: Bearer "sv << opt_.peer->api_key << "\r\n"sv;
        w << "x-api-key: "sv << opt_.peer->api_key << "\r\n"sv;
    }
    if (req_.has_body || body_len > 0) {
        char digits[24];
        const auto end = std::to_chars(digits, digits + sizeof digits, body_len).ptr;
        w << "Content-Length: "sv << std::string_view(digits, static_cast<size_t>(end - digits))
          << "\r\n"sv;
    }
    if (req_.upgrade) {
        // The one hop-by-hop header pair that must reach the upstream: the switch asked for.
        if (upgrade) w << "Upgrade: "sv << *upgrade << "\r\n"sv;
        w << "Connection: Upgrade\r\n\r\n"sv;
    } else {
        w << "Connection: keep-alive\r\n\r\n"sv;
    }
}

void ProxyExchange::on_request_body() {
    if (uploading_ && !req_.body_complete) { // more of the body to send as it comes
        if (state_ == State::Sending) send_more();
        return;
    }
    if (!req_.body_complete || body_checked_) return;
    std::string error;
    const bool ok = !opt_.body_check || opt_.body_check(error);
    body_checked_ = true;
    if (!ok) {
        // The upstream has no whole request (an upload's last byte waits for this check):
        // closing its connection cuts it. The client gets what a whole read would have
        // given it.
        LOG_INFO("%s: %s: %s", subject().c_str(), req_.path.c_str(), error.c_str());
        scheduler_.cancel(this);
        if (state_ == State::WaitingConnection) pool_.cancel(this);
        body_hold_ = false;
        end_upload();
        close_upstream();
        state_ = State::Done;
        outcome_ = "refused";
        release_model();
        fail_client(400, error, "invalid_request_body");
        return;
    }
    if (uploading_) {
        if (state_ == State::Sending) send_more(); // the last bytes may go now
        return;
    }
    if (body_hold_) { // the model was ready first: the request is built with the whole body
        body_hold_ = false;
        build_request();
        acquire_connection();
    }
}

void ProxyExchange::send_more() {
    while (seg_index_ < segments_.size()) {
        const Segment& seg = segments_[seg_index_];
        if (seg.length - seg_done_ == 0) {
            ++seg_index_;
            seg_done_ = 0;
            continue;
        }
        const size_t seg_left = seg.length - seg_done_;
        ssize_t n;
        if (seg.from_body && req_.body.spooled() && sock_->tls) {
            // Through TLS the spooled body is read back in record-sized pieces.
            char piece[16384];
            const size_t want = std::min(seg_left, sizeof piece);
            const ssize_t got =
                ::pread(req_.body.fd(), piece, want, static_cast<off_t>(seg.offset + seg_done_));
            if (got <= 0) {
                upstream_failed("cannot read the spooled request body", got < 0 ? errno : EIO);
                return;
            }
            const iovec one{piece, static_cast<size_t>(got)};
            n = upstream_send(&one, 1);
        } else if (seg.from_body && uploading_) {
            if (!send_arriving_body(seg)) return; // waiting, or it ended
            continue;
        } else if (seg.from_body && req_.body.spooled()) {
            off_t off = static_cast<off_t>(seg.offset + seg_done_);
            n = ::sendfile(ufd(), req_.body.fd(), &off, seg_left); // zero-copy
        } else {
            // Head and in-memory body leave together: one system call, one TCP segment.
            iovec iov[4];
            int count = 0;
            for (size_t i = seg_index_; i < segments_.size() && count < 4; ++i) {
                const Segment& s = segments_[i];
                if (s.from_body && req_.body.spooled()) break;
                const size_t skip = i == seg_index_ ? seg_done_ : 0;
                const char* base = s.from_body ? req_.body.memory().data() : head_.data();
                iov[count].iov_base = const_cast<char*>(base + s.offset + skip);
                iov[count].iov_len = s.length - skip;
                ++count;
            }
            n = upstream_send(iov, count);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                // Also read while sending: an upstream may answer early (e.g. 413).
                watch(EV_WRITE | EV_READ);
                return;
            }
            if (errno == EPROTO && sock_->tls) {
                upstream_failed("cannot send the request upstream: " + tls_error_, 0);
                return;
            }
            upstream_failed("cannot send the request upstream", errno);
            return;
        }
        if (n > 0) last_heard_ = ev_now(loop_); // it takes the request: it is alive
        // Advance over as many segments as the bytes sent cover.
        size_t sent = static_cast<size_t>(n);
        while (sent > 0 && seg_index_ < segments_.size()) {
            const size_t left = segments_[seg_index_].length - seg_done_;
            if (sent < left) {
                seg_done_ += sent;
                sent = 0;
            } else {
                sent -= left;
                ++seg_index_;
                seg_done_ = 0;
            }
        }
    }
    // The whole request is out; wait for the response.
    uploading_ = false;
    if (state_ == State::Sending) {
        state_ = State::ReadingHead;
        pool_.request_sent(*sock_);
        if (timeouts_.response_header_s > 0) timeout_.start(timeouts_.response_header_s);
        watch_silence();
        llhttp_init(&parser_, HTTP_RESPONSE, &kSettings);
        parser_.data = this;
        resp_headers_.clear();
        new_field_ = true;
        message_complete_ = false;
        resp_head_bytes_ = 0;
    }
    update_upstream_io();
}

} // namespace ls::proxy
