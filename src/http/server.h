// The HTTP server: accepts on listening sockets (socket-activated or bound by us), owns the
// connections, enforces the connection limit and drives graceful shutdown.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/config.h"
#include "tls/tls.h"
#include "util/ev.h"
#include "util/reaper.h"
#include "util/result.h"
#include "util/unique_fd.h"

namespace ls::http {

class Application;
class Connection;

class Server {
public:
    Server(struct ev_loop* loop, const config::ServerConfig& limits, Application& app,
           Reaper& reaper);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Takes a listening, non-blocking socket; with `tls`, its connections speak TLS.
    Result<void> add_listener(UniqueFd fd, std::string name,
                              std::shared_ptr<tls::Context> tls = nullptr);
    // New certificates (SIGHUP): connections accepted from now on use them.
    void set_tls_context(std::shared_ptr<tls::Context> tls);
    void set_limits(const config::ServerConfig& limits) { limits_ = limits; }

    // Stop accepting; idle keep-alive connections close now, busy ones after their response.
    // `on_drained` runs once no connection is left.
    void begin_shutdown(std::function<void()> on_drained);
    void close_all();
    bool shutting_down() const { return shutting_down_; }
    size_t connection_count() const { return connections_.size(); }

    // For Connection.
    const config::ServerConfig& limits() const { return limits_; }
    Application& app() { return app_; }
    Reaper& reaper() { return reaper_; }
    uint64_t next_request_id() { return ++request_ids_; }
    void connection_closed(Connection* conn);

private:
    struct Listener {
        Server* server = nullptr;
        UniqueFd fd;
        std::string name;
        std::unique_ptr<IoWatcher> io;
        std::shared_ptr<tls::Context> tls;
    };
    static void on_accept(struct ev_loop*, ev_io*, int);
    void accept_from(Listener& l);
    void update_accepting();

    struct ev_loop* loop_;
    config::ServerConfig limits_;
    Application& app_;
    Reaper& reaper_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unordered_set<Connection*> connections_;
    uint64_t connection_ids_ = 0;
    uint64_t request_ids_ = 0;
    bool shutting_down_ = false;
    bool accept_paused_ = false;
    std::function<void()> on_drained_;
};

} // namespace ls::http
