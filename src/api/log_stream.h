// GET /logs/stream[/proxy|/upstream|/<model>][?no-history]: chunked text/plain, history first,
// then lines as they come. A reader that falls behind skips lines (and is told how many)
// instead of growing the daemon's memory.
#pragma once

#include <string>

#include "http/connection.h"
#include "logs/log_hub.h"

namespace ls::api {

class LogStreamExchange final : public http::Exchange, public logs::LogSubscriber {
public:
    enum class Filter { All, Proxy, Upstream, Model };
    LogStreamExchange(logs::LogHub& hub, http::Connection& conn, Filter filter, std::string model);
    ~LogStreamExchange() override;

    void start(bool send_history);
    void on_log_line(logs::Source source, const std::string& model, std::string_view line) override;
    void on_client_writable() override;
    void on_client_gone() override;
    void on_shutdown() override;

    // Output allowed to queue for one reader before lines are skipped.
    static constexpr size_t kMaxPending = 256 * 1024;

private:
    logs::LogHub& hub_;
    http::Connection* conn_;
    Filter filter_;
    std::string model_;
    size_t skipped_ = 0;
};

} // namespace ls::api
