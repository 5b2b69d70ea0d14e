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

class UpstreamPool {
public:
    explicit UpstreamPool(struct ev_loop* loop) : loop_(loop) {}
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // An idle connection for `key`, or an invalid fd.
    UniqueFd take(const std::string& key);
    // Keeps `fd` for reuse for at most `max_idle_s` seconds (the model's timeouts.idleConn).
    void put(const std::string& key, UniqueFd fd, double max_idle_s = kMaxIdleSeconds);
    // Drops every idle connection of `key` (its upstream stopped).
    void drop(const std::string& key);
    size_t idle_count() const;

    static constexpr size_t kMaxIdlePerKey = 64;
    static constexpr double kMaxIdleSeconds = 90;

private:
    struct Idle {
        UpstreamPool* pool;
        std::string key;
        UniqueFd fd;
        double expires;
        std::unique_ptr<IoWatcher> io;
    };
    static void on_readable(struct ev_loop*, ev_io*, int);

    struct ev_loop* loop_;
    std::map<std::string, std::list<std::unique_ptr<Idle>>> idle_;
};

} // namespace ls::proxy
