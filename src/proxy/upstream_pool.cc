#include "proxy/upstream_pool.h"

#include <algorithm>

#include "tls/tls.h"
#include "util/log.h"

namespace ls::proxy {

// One upstream's connections: the idle ones, how many exist, and who waits for one.
struct UpstreamLane {
    UpstreamLane(UpstreamPool* p, struct ev_loop* loop, const std::string& k)
        : pool(p), key(k), kick(loop, &UpstreamPool::on_kick, this),
          unanswered_timer(loop, &UpstreamPool::on_unanswered, this) {}
    ~UpstreamLane() {
        for (Idle& c : idle) c.sock->lane_ = nullptr; // the lane goes first: nothing to tell
    }
    struct Idle {
        UpstreamLane* lane;
        double expires;
        UpstreamSocketPtr sock;
    };
    UpstreamPool* pool;
    std::string key;
    ConnectionPolicy policy;
    size_t open = 0; // sockets holding a slot: idle, in use, or being connected
    bool dropped = false;
    std::list<Idle> idle; // most recently used last
    std::list<ConnectionWaiter*> waiters;
    std::list<UpstreamSocket*> unanswered; // new connections with a request out, oldest first
    TimerWatcher kick;                     // serves waiters from the loop, never re-entrantly
    TimerWatcher unanswered_timer;
};

UpstreamSocket::~UpstreamSocket() {
    if (lane_) lane_->pool->socket_closed(*this);
}

UpstreamPool::UpstreamPool(struct ev_loop* loop) : loop_(loop) {}

UpstreamPool::~UpstreamPool() {
    // Exchanges (and their sockets) end before the pool; a lane a socket still points at is
    // left allocated rather than dangling.
    for (auto& [key, lane] : lanes_)
        if (lane->open > lane->idle.size()) (void)lane.release();
}

UpstreamLane& UpstreamPool::lane(const std::string& key) {
    auto it = lanes_.find(key);
    if (it == lanes_.end())
        it = lanes_.emplace(key, std::make_unique<UpstreamLane>(this, loop_, key)).first;
    return *it->second;
}

UpstreamSocketPtr UpstreamPool::acquire(const std::string& key, const ConnectionPolicy& policy,
                                        ConnectionWaiter* waiter) {
    UpstreamLane& l = lane(key);
    if (l.dropped) return new_slot(l); // its upstream is gone: the connect says so
    l.policy = policy;
    if (l.waiters.empty()) { // else they come first
        if (UpstreamSocketPtr s = take_idle(l)) return s;
        if (policy.cap == 0 || l.open < policy.cap) return new_slot(l);
    }
    l.waiters.push_back(waiter);
    if (l.policy.cap == 0 || l.open < l.policy.cap) l.kick.start(0);
    return nullptr;
}

void UpstreamPool::cancel(ConnectionWaiter* waiter) {
    for (auto& [key, l] : lanes_) l->waiters.remove(waiter);
}

UpstreamSocketPtr UpstreamPool::take_idle(UpstreamLane& l) {
    const double now = ev_now(loop_);
    while (!l.idle.empty()) {
        UpstreamSocketPtr sock = std::move(l.idle.back().sock); // most recently used first
        const bool fresh = now < l.idle.back().expires;
        l.idle.pop_back();
        if (fresh) return sock;
    } // an expired one closes here and gives its slot back
    return nullptr;
}

UpstreamSocketPtr UpstreamPool::new_slot(UpstreamLane& l) {
    ++l.open;
    auto sock = std::make_unique<UpstreamSocket>(loop_, UniqueFd());
    sock->lane_ = &l;
    return sock;
}

void UpstreamPool::put(UpstreamSocketPtr sock, double max_idle_s) {
    if (!sock) return;
    UpstreamLane* l = sock->lane_;
    forget_unanswered(*sock);
    // idleConn: 0 disables reuse; a stopped upstream's or a surplus connection closes here.
    if (!l || l->dropped || max_idle_s <= 0 || l->idle.size() >= kMaxIdlePerKey) return;
    UpstreamLane::Idle& c =
        l->idle.emplace_back(UpstreamLane::Idle{l, ev_now(loop_) + max_idle_s, std::move(sock)});
    // An idle connection that becomes readable was closed (or spoken to) by the upstream.
    c.sock->io.rebind(&on_idle_readable, &c);
    c.sock->io.set(c.sock->fd.get(), EV_READ);
    if (!l->waiters.empty()) l->kick.start(0);
    check_unanswered(*l);
}

void UpstreamPool::on_idle_readable(struct ev_loop*, ev_io* w, int) {
    auto* c = static_cast<UpstreamLane::Idle*>(w->data);
    auto& list = c->lane->idle;
    for (auto it = list.begin(); it != list.end(); ++it) {
        if (&*it == c) {
            list.erase(it); // closes the fd and stops the watcher
            return;
        }
    }
}

void UpstreamPool::request_sent(UpstreamSocket& sock) {
    UpstreamLane* l = sock.lane_;
    if (!l || sock.reused() || sock.unanswered_since_ > 0 || !l->policy.close_idle_when_unanswered)
        return;
    sock.unanswered_since_ = ev_now(loop_);
    sock.unanswered_pos_ = l->unanswered.insert(l->unanswered.end(), &sock);
    check_unanswered(*l);
}

void UpstreamPool::response_began(UpstreamSocket& sock) {
    ++sock.responses;
    forget_unanswered(sock);
}

void UpstreamPool::forget_unanswered(UpstreamSocket& sock) {
    if (sock.unanswered_since_ <= 0 || !sock.lane_) return;
    sock.lane_->unanswered.erase(sock.unanswered_pos_);
    sock.unanswered_since_ = 0;
    if (sock.lane_->unanswered.empty()) sock.lane_->unanswered_timer.stop();
}

void UpstreamPool::socket_closed(UpstreamSocket& sock) {
    UpstreamLane* l = sock.lane_;
    forget_unanswered(sock);
    sock.lane_ = nullptr;
    --l->open;
    if (!l->waiters.empty() || (l->dropped && l->open == 0)) l->kick.start(0);
}

void UpstreamPool::on_kick(struct ev_loop*, ev_timer* w, int) {
    auto* l = static_cast<UpstreamLane*>(w->data);
    l->pool->serve_waiters(*l);
}

void UpstreamPool::serve_waiters(UpstreamLane& l) {
    while (!l.waiters.empty()) {
        UpstreamSocketPtr sock = take_idle(l);
        if (!sock) {
            if (!l.dropped && l.policy.cap > 0 && l.open >= l.policy.cap) break;
            sock = new_slot(l);
        }
        ConnectionWaiter* w = l.waiters.front();
        l.waiters.pop_front();
        w->on_connection(std::move(sock)); // may close sockets: that only re-arms the kick
    }
    if (l.dropped && l.open == 0 && l.waiters.empty()) lanes_.erase(l.key); // l is gone
}

void UpstreamPool::check_unanswered(UpstreamLane& l) {
    if (l.unanswered.empty() || l.idle.empty()) {
        l.unanswered_timer.stop();
        return;
    }
    if (l.unanswered_timer.active()) return;
    const double due = l.unanswered.front()->unanswered_since_ + kUnansweredWait;
    l.unanswered_timer.start(std::max(0.0, due - ev_now(loop_)));
}

void UpstreamPool::on_unanswered(struct ev_loop* loop, ev_timer* w, int) {
    auto* l = static_cast<UpstreamLane*>(w->data);
    if (l->unanswered.empty() || l->idle.empty()) return;
    const double waited = ev_now(loop) - l->unanswered.front()->unanswered_since_;
    if (waited + 1e-3 < kUnansweredWait) {
        l->pool->check_unanswered(*l);
        return;
    }
    // A server with a fixed thread pool may keep a thread on each idle connection of ours
    // while the new one waits in its accept queue: give the threads back.
    LOG_DEBUG("upstream %s: a request has waited %.0f ms on a new connection; closing %zu idle "
              "connection(s) so the upstream can take it",
              l->key.c_str(), waited * 1000, l->idle.size());
    l->idle.clear();
}

void UpstreamPool::drop(const std::string& key) {
    auto it = lanes_.find(key);
    if (it == lanes_.end()) return;
    UpstreamLane& l = *it->second;
    l.dropped = true;
    l.idle.clear();
    l.unanswered_timer.stop();
    if (l.open == 0 && l.waiters.empty())
        lanes_.erase(it);
    else if (!l.waiters.empty())
        l.kick.start(0);
}

size_t UpstreamPool::idle_count() const {
    size_t n = 0;
    for (const auto& [k, l] : lanes_) n += l->idle.size();
    return n;
}

size_t UpstreamPool::open_count(const std::string& key) const {
    auto it = lanes_.find(key);
    return it == lanes_.end() ? 0 : it->second->open;
}

size_t UpstreamPool::waiting_count(const std::string& key) const {
    auto it = lanes_.find(key);
    return it == lanes_.end() ? 0 : it->second->waiters.size();
}

} // namespace ls::proxy
