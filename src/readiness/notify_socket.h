// The daemon's sd_notify socket for upstreams: every upstream gets NOTIFY_SOCKET pointing here.
// Datagrams carry the sender's credentials (SO_PASSCRED), so a message is attributed to a model
// by the sender's pid/process group, never by what the message claims. READY=1 makes a model
// Ready at once — no health probe needed; STATUS= lines go to the model's log.
#pragma once

#include <string>
#include <string_view>
#include <sys/types.h>

#include "util/ev.h"
#include "util/result.h"
#include "util/unique_fd.h"

namespace ls::readiness {

class NotifySocket {
public:
    using Handler = void (*)(void* owner, pid_t sender, std::string_view message);
    NotifySocket(struct ev_loop* loop, Handler handler, void* owner);
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    // Binds an abstract socket unique to this daemon; address() is the NOTIFY_SOCKET value.
    Result<void> open();
    const std::string& address() const { return address_; }

private:
    static void on_readable(struct ev_loop*, ev_io*, int);
    void drain();

    Handler handler_;
    void* owner_;
    UniqueFd fd_;
    IoWatcher io_;
    std::string address_;
};

} // namespace ls::readiness
