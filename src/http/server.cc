#include "http/server.h"

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/connection.h"
#include "util/log.h"

namespace ls::http {

Server::Server(struct ev_loop* loop, const config::ServerConfig& limits, Application& app,
               Reaper& reaper)
    : loop_(loop), limits_(limits), app_(app), reaper_(reaper) {}

Server::~Server() {
    close_all();
}

Result<void> Server::add_listener(UniqueFd fd, std::string name,
                                  std::shared_ptr<tls::Context> tls) {
    auto l = std::make_unique<Listener>();
    l->server = this;
    l->fd = std::move(fd);
    l->name = std::move(name);
    l->tls = std::move(tls);
    l->io = std::make_unique<IoWatcher>(loop_, &Server::on_accept, l.get());
    if (!shutting_down_ && !accept_paused_) l->io->set(l->fd.get(), EV_READ);
    listeners_.push_back(std::move(l));
    return {};
}

void Server::on_accept(struct ev_loop*, ev_io* w, int) {
    auto* l = static_cast<Listener*>(w->data);
    l->server->accept_from(*l);
}

void Server::accept_from(Listener& l) {
    // Accept a bounded batch per wake-up so one busy listener cannot starve the loop.
    for (int i = 0; i < 64; ++i) {
        if (connections_.size() >= static_cast<size_t>(limits_.max_connections)) {
            LOG_WARN("connection limit (%d) reached, pausing accept", limits_.max_connections);
            update_accepting();
            return;
        }
        int fd = ::accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EMFILE || errno == ENFILE) {
                LOG_ERROR("accept on %s: %s, pausing accept", l.name.c_str(), strerror(errno));
                accept_paused_ = true;
                update_accepting();
                return;
            }
            LOG_WARN("accept on %s: %s, ignoring", l.name.c_str(), strerror(errno));
            return;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); // fails on AF_UNIX: fine
        std::unique_ptr<tls::Session> session;
        if (l.tls) {
            auto s = tls::Session::server(l.tls, fd);
            if (!s) {
                LOG_WARN("accept on %s: %s", l.name.c_str(), s.error().message.c_str());
                ::close(fd);
                continue;
            }
            session = std::move(s.value());
        }
        auto* conn =
            new Connection(*this, loop_, UniqueFd(fd), ++connection_ids_, std::move(session));
        connections_.insert(conn);
    }
}

void Server::set_tls_context(std::shared_ptr<tls::Context> tls) {
    for (auto& l : listeners_)
        if (l->tls) l->tls = tls;
}

void Server::update_accepting() {
    bool want =
        !shutting_down_ && connections_.size() < static_cast<size_t>(limits_.max_connections);
    if (accept_paused_ && connections_.size() + 1 < static_cast<size_t>(limits_.max_connections))
        accept_paused_ = false;
    want = want && !accept_paused_;
    for (auto& l : listeners_) l->io->set(want ? l->fd.get() : -1, want ? EV_READ : 0);
}

void Server::connection_closed(Connection* conn) {
    if (connections_.erase(conn) == 0) return;
    reaper_.defer(std::unique_ptr<Deferred>(conn));
    update_accepting();
    if (shutting_down_ && connections_.empty() && on_drained_) {
        auto cb = std::move(on_drained_);
        on_drained_ = nullptr;
        cb();
    }
}

void Server::begin_shutdown(std::function<void()> on_drained) {
    shutting_down_ = true;
    on_drained_ = std::move(on_drained);
    update_accepting();
    listeners_.clear(); // closing the sockets: new connections are refused by the kernel
    // Copy: close_when_done() may remove idle connections from the set.
    std::vector<Connection*> conns(connections_.begin(), connections_.end());
    for (Connection* c : conns) c->close_when_done();
    if (connections_.empty() && on_drained_) {
        auto cb = std::move(on_drained_);
        on_drained_ = nullptr;
        cb();
    }
}

void Server::close_all() {
    std::vector<Connection*> conns(connections_.begin(), connections_.end());
    for (Connection* c : conns) c->close();
    listeners_.clear();
}

} // namespace ls::http
