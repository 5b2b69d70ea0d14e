#include "proxy/upstream_pool.h"

namespace ls::proxy {

UniqueFd UpstreamPool::take(const std::string& key) {
    auto it = idle_.find(key);
    if (it == idle_.end()) return UniqueFd();
    const double now = ev_now(loop_);
    auto& list = it->second;
    while (!list.empty()) {
        std::unique_ptr<Idle> c = std::move(list.back()); // most recently used first
        list.pop_back();
        c->io->stop();
        if (now < c->expires) {
            if (list.empty()) idle_.erase(it);
            return std::move(c->fd);
        }
    }
    idle_.erase(it);
    return UniqueFd();
}

void UpstreamPool::put(const std::string& key, UniqueFd fd, double max_idle_s) {
    if (max_idle_s <= 0) return; // idleConn: 0 disables reuse; fd closes here
    auto& list = idle_[key];
    if (list.size() >= kMaxIdlePerKey) return; // fd closes here
    auto c = std::make_unique<Idle>();
    c->pool = this;
    c->key = key;
    c->fd = std::move(fd);
    c->expires = ev_now(loop_) + max_idle_s;
    c->io = std::make_unique<IoWatcher>(loop_, &on_readable, c.get());
    c->io->set(c->fd.get(), EV_READ);
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

void UpstreamPool::drop(const std::string& key) { idle_.erase(key); }

size_t UpstreamPool::idle_count() const {
    size_t n = 0;
    for (const auto& [k, l] : idle_) n += l.size();
    return n;
}

} // namespace ls::proxy
