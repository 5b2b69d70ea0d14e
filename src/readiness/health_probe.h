// One non-blocking HTTP readiness probe: connect (and TLS for https://), GET the check
// endpoint, read the status line. Never blocks the loop; each attempt has its own timeout. The
// owner retries on a timer.
#pragma once

#include <memory>
#include <string>

#include "proxy/upstream_address.h"
#include "tls/tls.h"
#include "util/ev.h"
#include "util/unique_fd.h"

namespace ls::readiness {

class HealthProbe {
public:
    // status: the HTTP status received, or 0 when no answer (refused, reset, timed out).
    using Callback = void (*)(void* owner, int status);
    HealthProbe(struct ev_loop* loop, Callback cb, void* owner);
    HealthProbe(const HealthProbe&) = delete;
    HealthProbe& operator=(const HealthProbe&) = delete;

    // `tls`: an https:// upstream is probed through TLS with this context.
    void start(const proxy::UpstreamAddress& upstream, const std::string& path, double timeout_s,
               std::shared_ptr<tls::Context> tls = nullptr);
    void cancel();
    bool active() const { return fd_.valid(); }

private:
    static void on_io(struct ev_loop*, ev_io*, int);
    static void on_timeout(struct ev_loop*, ev_timer*, int);
    void finish(int status);
    void handle_io(int revents);
    ssize_t send_some(const char* p, size_t n);
    ssize_t recv_some(char* p, size_t n);

    struct ev_loop* loop_;
    Callback cb_;
    void* owner_;
    UniqueFd fd_;
    IoWatcher io_;
    TimerWatcher timer_;
    std::string request_;
    size_t sent_ = 0;
    bool connected_ = false;
    std::string response_;
    std::shared_ptr<tls::Context> tls_ctx_;
    std::unique_ptr<tls::Session> tls_;
    std::string host_;
};

} // namespace ls::readiness
