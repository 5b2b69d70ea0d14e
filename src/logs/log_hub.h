// The daemon's log fan-out: bounded history rings (the daemon's own "proxy" log, all upstream
// output, and one ring per model) and live subscribers (GET /logs/stream*, /api/events).
// Memory is bounded by the rings; slow subscribers drop lines instead of buffering them.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "logs/line_ring.h"

namespace ls::logs {

enum class Source { Proxy, Upstream, Model };

class LogSubscriber {
public:
    virtual ~LogSubscriber() = default;
    // `model` is empty for proxy lines.
    virtual void on_log_line(Source source, const std::string& model, std::string_view line) = 0;
};

class LogHub {
public:
    explicit LogHub(size_t ring_bytes = 100 * 1024)
        : ring_bytes_(ring_bytes), proxy_(ring_bytes), upstream_(ring_bytes) {}
    LogHub(const LogHub&) = delete;
    LogHub& operator=(const LogHub&) = delete;

    void proxy_line(std::string_view line);
    void upstream_line(const std::string& model, std::string_view line);

    // History as text, one line per '\n'. Combined = proxy and upstream interleaved in order.
    std::string combined_history() const;
    std::string proxy_history() const { return proxy_.all_lines(); }
    std::string upstream_history() const { return upstream_.all_lines(); }
    std::string model_history(const std::string& model) const;

    void subscribe(LogSubscriber* s) { subscribers_.push_back(s); }
    void unsubscribe(LogSubscriber* s);

private:
    void publish(Source source, const std::string& model, std::string_view line);

    size_t ring_bytes_;
    LineRing proxy_;
    LineRing upstream_;
    LineRing combined_{200 * 1024};
    std::map<std::string, LineRing> models_;
    std::vector<LogSubscriber*> subscribers_;
    bool publishing_ = false;
};

} // namespace ls::logs
