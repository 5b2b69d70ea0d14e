#include "proxy/upstream_pool.h"

namespace ls::proxy {

UpstreamSocketPtr UpstreamPool::take(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    const double now = ev_now(loop_);
    auto& list = it->second;
    while (!list.empty()) {
        UpstreamSocketPtr sock = std::move(list.back().sock); // most recently used first
        const bool fresh = now < list.back().expires;
        list.pop_back();
        if (fresh) return sock;
    }
    return nullptr;
}

void UpstreamPool::put(const std::string& key, UpstreamSocketPtr sock, double max_idle_s) {
    if (!sock || max_idle_s <= 0) return; // idleConn: 0 disables reuse; the socket closes here
    auto it = idle_.try_emplace(key).first;
    auto& list = it->second;
    if (list.size() >= kMaxIdlePerKey) return; // the socket closes here
    Idle& c =
        list.emplace_back(Idle{this, &it->first, ev_now(loop_) + max_idle_s, std::move(sock)});
    // An idle connection that becomes readable was closed (or spoken to) by the upstream.
    c.sock->io.rebind(&on_readable, &c);
    c.sock->io.set(c.sock->fd.get(), EV_READ);
}

void UpstreamPool::on_readable(struct ev_loop*, ev_io* w, int) {
    auto* c = static_cast<Idle*>(w->data);
    auto it = c->pool->idle_.find(*c->key);
    if (it == c->pool->idle_.end()) return;
    auto& list = it->second;
    for (auto li = list.begin(); li != list.end(); ++li) {
        if (&*li == c) {
            list.erase(li); // closes the fd and stops the watcher
            return;
        }
    }
}

void UpstreamPool::drop(const std::string& key) {
    idle_.erase(key);
}

size_t UpstreamPool::idle_count() const {
    size_t n = 0;
    for (const auto& [k, l] : idle_) n += l.size();
    return n;
}

} // namespace ls::proxy
