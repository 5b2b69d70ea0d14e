// Idle keep-alive connections to upstreams, reused across requests. An idle connection that
// becomes readable (the upstream closed it or sent garbage) is dropped at once.
#pragma once

#include <list>
#include <map>
#include <memory>
#include <string>

#include "util/ev.h"
#include "util/unique_fd.h"

namespace ls::proxy {

// An upstream connection: the socket and its watcher travel together between the pool and
// the exchanges, so handing a connection over never re-registers it with epoll.
struct UpstreamSocket {
    UpstreamSocket(struct ev_loop* loop, UniqueFd f)
        : fd(std::move(f)), io(loop, nullptr, nullptr) {}
    UniqueFd fd;
    IoWatcher io;
};
using UpstreamSocketPtr = std::unique_ptr<UpstreamSocket>;

class UpstreamPool {
public:
    explicit UpstreamPool(struct ev_loop* loop) : loop_(loop) {}
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // An idle connection for `key`, or null. The caller rebinds its watcher.
    UpstreamSocketPtr take(const std::string& key);
    // Keeps `sock` for reuse for at most `max_idle_s` seconds (the model's timeouts.idleConn).
    void put(const std::string& key, UpstreamSocketPtr sock, double max_idle_s = kMaxIdleSeconds);
    // Drops every idle connection of `key` (its upstream stopped).
    void drop(const std::string& key);
    size_t idle_count() const;

    static constexpr size_t kMaxIdlePerKey = 64;
    static constexpr double kMaxIdleSeconds = 90;

private:
    struct Idle {
        UpstreamPool* pool;
        const std::string* key; // the map's own key: list nodes never move
        double expires;
        UpstreamSocketPtr sock;
    };
    static void on_readable(struct ev_loop*, ev_io*, int);

    struct ev_loop* loop_;
    // A key's entry stays while its upstream lives, even when empty: the next put() of a
    // keep-alive exchange then allocates only its list node. drop() removes it.
    std::map<std::string, std::list<Idle>> idle_;
};

} // namespace ls::proxy
