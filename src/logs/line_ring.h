// A bounded ring of log lines (by bytes): the newest lines win, memory never grows past the cap.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

namespace ls::logs {

class LineRing {
public:
    explicit LineRing(size_t max_bytes = 64 * 1024) : max_bytes_(max_bytes) {}
    void push(std::string_view line);
    // The last `n` lines joined by '\n'.
    std::string tail(size_t n) const;
    std::string all() const { return tail(lines_.size()); }
    // Every line followed by '\n' (log text as served by /logs).
    std::string all_lines() const;
    size_t size() const { return lines_.size(); }
    void clear() {
        lines_.clear();
        bytes_ = 0;
    }

private:
    size_t max_bytes_;
    size_t bytes_ = 0;
    std::deque<std::string> lines_;
};

} // namespace ls::logs
