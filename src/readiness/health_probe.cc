#include "readiness/health_probe.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>

namespace ls::readiness {

HealthProbe::HealthProbe(struct ev_loop* loop, Callback cb, void* owner)
    : loop_(loop), cb_(cb), owner_(owner), io_(loop, &on_io, this),
      timer_(loop, &on_timeout, this) {}

void HealthProbe::start(const proxy::UpstreamAddress& upstream, const std::string& path,
                        double timeout_s, std::shared_ptr<tls::Context> tls) {
    cancel();
    tls_ctx_ = std::move(tls);
    host_ = upstream.host;
    int fd = ::socket(upstream.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        finish(0);
        return;
    }
    fd_.reset(fd);
    request_ = "GET " + upstream.base_path + path + " HTTP/1.1\r\nHost: " + upstream.host_header +
               "\r\nUser-Agent: llama-swap-health\r\nConnection: close\r\n\r\n";
    sent_ = 0;
    connected_ = false;
    response_.clear();
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&upstream.addr), upstream.addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
        // Refused at once (nothing listens yet): report without waiting.
        fd_.reset();
        cb_(owner_, 0);
        return;
    }
    io_.set(fd, EV_WRITE);
    timer_.start(timeout_s);
}

void HealthProbe::cancel() {
    io_.stop();
    timer_.stop();
    tls_.reset();
    fd_.reset();
}

ssize_t HealthProbe::send_some(const char* p, size_t n) {
    if (!tls_) return ::send(fd_.get(), p, n, MSG_NOSIGNAL);
    const ssize_t r = tls_->write(p, n);
    if (r < 0) errno = tls_->want() != tls::Want::nothing ? EAGAIN : EPROTO;
    return r;
}

ssize_t HealthProbe::recv_some(char* p, size_t n) {
    if (!tls_) return ::recv(fd_.get(), p, n, 0);
    const ssize_t r = tls_->read(p, n);
    if (r < 0) errno = tls_->want() != tls::Want::nothing ? EAGAIN : EPROTO;
    return r;
}

void HealthProbe::finish(int status) {
    cancel();
    cb_(owner_, status); // may start the next probe
}

void HealthProbe::on_io(struct ev_loop*, ev_io* w, int revents) {
    static_cast<HealthProbe*>(w->data)->handle_io(revents);
}

void HealthProbe::on_timeout(struct ev_loop*, ev_timer* w, int) {
    static_cast<HealthProbe*>(w->data)->finish(0);
}

void HealthProbe::handle_io(int revents) {
    if (!connected_ && (revents & EV_WRITE)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            finish(0);
            return;
        }
        connected_ = true;
        if (tls_ctx_) {
            auto s = tls::Session::client(tls_ctx_, fd_.get(), host_);
            if (!s) {
                finish(0);
                return;
            }
            tls_ = std::move(s.value());
        }
    }
    if (tls_ && !tls_->handshaken()) {
        const int rc = tls_->handshake();
        if (rc < 0) {
            finish(0); // a certificate that fails never becomes ready (the deadline says so)
            return;
        }
        if (rc == 0) {
            io_.set(fd_.get(), tls_->want() == tls::Want::write ? EV_WRITE : EV_READ);
            return;
        }
        io_.set(fd_.get(), EV_WRITE);
        revents = EV_WRITE;
    }
    if (sent_ < request_.size() && (revents & EV_WRITE)) {
        ssize_t n = send_some(request_.data() + sent_, request_.size() - sent_);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            finish(0);
            return;
        }
        if (n > 0) sent_ += static_cast<size_t>(n);
        if (sent_ == request_.size()) io_.set(fd_.get(), EV_READ);
        return;
    }
    if (revents & EV_READ) {
        char buf[512];
        ssize_t n = recv_some(buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n > 0) response_.append(buf, static_cast<size_t>(n));
        // "HTTP/1.1 200 ..." — the status line is all a probe needs.
        if (response_.size() >= 12 && response_.compare(0, 5, "HTTP/") == 0) {
            finish(atoi(response_.c_str() + 9));
            return;
        }
        if (n <= 0 || response_.size() > 4096) finish(0);
    }
}

} // namespace ls::readiness
