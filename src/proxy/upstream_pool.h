// Connections to upstreams: idle keep-alive connections reused across requests, and how many
// connections one upstream gets at most.
//
// Why a cap: llama-server (cpp-httplib) serves HTTP from a fixed pool of threads, and a thread
// stays with a keep-alive connection until that connection has been idle for 5 s. A request
// sent on a new connection while every thread sits on one of our idle connections waits in
// the server's accept queue for those 5 s. So an upstream gets at most `cap` connections;
// requests beyond it wait here, in arrival order, and each takes the next connection that a
// finished request gives back (warm: its server thread is already there). When the cap is not
// known, idle connections are closed while a request waits on a new connection the upstream
// has not answered (see ConnectionPolicy::close_idle_when_unanswered).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "tls/tls.h"
#include "util/ev.h"
#include "util/unique_fd.h"

namespace ls::proxy {

struct UpstreamLane;

// An upstream connection: the socket and its watcher travel together between the pool and
// the exchanges, so handing a connection over never re-registers it with epoll. A socket made
// by the pool holds one of its upstream's connection slots until it is destroyed.
struct UpstreamSocket {
    UpstreamSocket(struct ev_loop* loop, UniqueFd f)
        : fd(std::move(f)), io(loop, nullptr, nullptr) {}
    ~UpstreamSocket();
    UpstreamSocket(const UpstreamSocket&) = delete;
    UpstreamSocket& operator=(const UpstreamSocket&) = delete;

    UniqueFd fd; // invalid for a new slot: the caller connects it
    IoWatcher io;
    std::unique_ptr<tls::Session> tls; // https:// upstreams: the session on `fd`
    uint64_t responses = 0;            // responses the upstream began on this connection
    bool reused() const { return responses > 0; }

private:
    friend class UpstreamPool;
    friend struct UpstreamLane;
    UpstreamLane* lane_ = nullptr;
    double unanswered_since_ = 0; // > 0: a first request is out, no response byte yet
    std::list<UpstreamSocket*>::iterator unanswered_pos_;
};
using UpstreamSocketPtr = std::unique_ptr<UpstreamSocket>;

// How many connections an upstream may have (the model's `upstreamConnections`).
struct ConnectionPolicy {
    size_t cap = 0; // 0: no cap
    // No known cap (`auto` before the upstream told its thread count): close idle connections
    // while a request has waited kUnansweredWait on a new connection without a response byte,
    // so that a server thread held by an idle connection of ours can take it.
    bool close_idle_when_unanswered = false;
};

// A request waiting for a connection slot of a capped upstream.
class ConnectionWaiter {
public:
    virtual ~ConnectionWaiter() = default;
    // Called from the loop: a pooled connection (fd valid), or a new slot (fd invalid).
    virtual void on_connection(UpstreamSocketPtr sock) = 0;
};

class UpstreamPool {
public:
    explicit UpstreamPool(struct ev_loop* loop);
    ~UpstreamPool();
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // A connection to `key` at once (the most recently used idle one, else a new slot with an
    // invalid fd to connect), or null when the cap is reached or others wait before us: then
    // `waiter` is queued and called later (unless cancel()ed).
    UpstreamSocketPtr acquire(const std::string& key, const ConnectionPolicy& policy,
                              ConnectionWaiter* waiter);
    void cancel(ConnectionWaiter* waiter);
    // Keeps a connection whose response ended cleanly for the next request, for at most
    // `max_idle_s` seconds (the model's timeouts.idleConn; 0: it closes now).
    void put(UpstreamSocketPtr sock, double max_idle_s = kMaxIdleSeconds);
    // The request on `sock` went out; its response began.
    void request_sent(UpstreamSocket& sock);
    void response_began(UpstreamSocket& sock);
    // Forgets every idle connection of `key` (its upstream stopped); waiters get new slots
    // (and find out for themselves that nothing listens).
    void drop(const std::string& key);

    size_t idle_count() const;
    size_t open_count(const std::string& key) const; // idle + in use + being connected
    size_t waiting_count(const std::string& key) const;

    static constexpr size_t kMaxIdlePerKey = 64;
    static constexpr double kMaxIdleSeconds = 90;
    static constexpr double kUnansweredWait = 0.1;

private:
    friend struct UpstreamSocket;
    friend struct UpstreamLane;
    UpstreamLane& lane(const std::string& key);
    UpstreamSocketPtr take_idle(UpstreamLane& lane);
    UpstreamSocketPtr new_slot(UpstreamLane& lane);
    void socket_closed(UpstreamSocket& sock);
    void forget_unanswered(UpstreamSocket& sock);
    void serve_waiters(UpstreamLane& lane);
    void check_unanswered(UpstreamLane& lane);
    static void on_idle_readable(struct ev_loop*, ev_io*, int);
    static void on_kick(struct ev_loop*, ev_timer*, int);
    static void on_unanswered(struct ev_loop*, ev_timer*, int);

    struct ev_loop* loop_;
    // A key's lane stays while its upstream lives, even when empty: the next put() of a
    // keep-alive exchange then allocates only its list node. drop() ends it once no socket
    // of it is left.
    std::map<std::string, std::unique_ptr<UpstreamLane>> lanes_;
};

} // namespace ls::proxy
