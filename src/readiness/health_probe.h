// One non-blocking HTTP readiness probe: connect, GET the check endpoint, read the status
// line. Never blocks the loop; each attempt has its own timeout. The owner retries on a timer.
#pragma once

#include <string>

#include "proxy/upstream_address.h"
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

    void start(const proxy::UpstreamAddress& upstream, const std::string& path, double timeout_s);
    void cancel();
    bool active() const { return fd_.valid(); }

private:
    static void on_io(struct ev_loop*, ev_io*, int);
    static void on_timeout(struct ev_loop*, ev_timer*, int);
    void finish(int status);
    void handle_io(int revents);

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
};

} // namespace ls::readiness
