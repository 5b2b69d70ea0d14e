// Host name lookups for upstream URLs without blocking the event loop. glibc's
// getaddrinfo_a runs each lookup on a thread of its own; the loop polls for completion with a
// timer while lookups are pending, so no other thread ever calls into the daemon.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <vector>

#include "util/ev.h"
#include "util/result.h"

namespace ls::proxy {

struct ResolvedAddress {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
};

class Resolver {
    struct Entry;

public:
    using Callback = std::function<void(Result<ResolvedAddress>)>;

    // A lookup in progress; destroying it cancels it (its callback never runs).
    class Lookup {
    public:
        ~Lookup();
        Lookup(const Lookup&) = delete;
        Lookup& operator=(const Lookup&) = delete;

    private:
        friend class Resolver;
        explicit Lookup(Entry* e) : entry_(e) {}
        Entry* entry_;
    };

    explicit Resolver(struct ev_loop* loop);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Looks up host:port (a TCP address); `done` runs on the loop later, never from here.
    std::unique_ptr<Lookup> resolve(const std::string& host, uint16_t port, Callback done);
    size_t pending() const { return entries_.size(); }

private:
    static void on_poll(struct ev_loop*, ev_timer*, int);
    void poll();

    TimerWatcher poll_;
    std::vector<std::unique_ptr<Entry>> entries_;
};

} // namespace ls::proxy
