#include "proxy/upstream_pool.h"

namespace ls::proxy {

UpstreamSocketPtr UpstreamPool::take(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    const double now = ev_now(loop_);
    auto& list = it->second;
    while (!list.empty()) {
        std::unique_ptr<Idle> c = std::move(list.back()); // most recently used first
        list.pop_back();
        if (now < c->expires) {
            if (list.empty()) idle_.erase(it);
            return std::move(c->sock);
        }
    }
    idle_.erase(it);
    return nullptr;
}

void UpstreamPool::put(const std::string& key, UpstreamSocketPtr sock, double max_idle_s) {
    if (!sock || max_idle_s <= 0) return; // idleConn: 0 disables reuse; the socket closes here
    auto& list = idle_[key];
    if (list.size() >= kMaxIdlePerKey) return; // the socket closes here
    auto c = std::make_unique<Idle>();
    c->pool = this;
    c->key = key;
    c->expires = ev_now(loop_) + max_idle_s;
    c->sock = std::move(sock);
    // An idle connection that becomes readable was closed (or spoken to) by the upstream.
    c->sock->io.rebind(&on_readable, c.get());
    c->sock->io.set(c->sock->fd.get(), EV_READ);
    list.push_back(std::move(c));
}

void UpstreamPool::on_readable(struct ev_loop*, ev_io* w, int) {
    auto* c = static_cast<Idle*>(w->data);
    UpstreamPool* pool = c->pool;
    auto it = pool->idle_.find(c->key);
    if (it == pool->idle_.end()) return;
    auto& list = it->second;
    for (auto li = list.begin(); li != list.end(); ++li) {
        if (li->get() == c) {
            list.erase(li); // closes the fd and stops the watcher
            break;
        }
    }
    if (list.empty()) pool->idle_.erase(it);
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
