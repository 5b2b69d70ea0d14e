#include "logs/line_ring.h"

namespace ls::logs {

void LineRing::push(std::string_view line) {
    if (line.size() + 1 > max_bytes_) line = line.substr(0, max_bytes_ > 0 ? max_bytes_ - 1 : 0);
    // Each line costs its bytes plus one (its newline), so even empty lines are bounded.
    lines_.emplace_back(line);
    bytes_ += line.size() + 1;
    while (bytes_ > max_bytes_ && !lines_.empty()) {
        bytes_ -= lines_.front().size() + 1;
        lines_.pop_front();
    }
}

std::string LineRing::tail(size_t n) const {
    std::string out;
    size_t start = lines_.size() > n ? lines_.size() - n : 0;
    for (size_t i = start; i < lines_.size(); ++i) {
        if (i > start) out.push_back('\n');
        out += lines_[i];
    }
    return out;
}

std::string LineRing::all_lines() const {
    std::string out;
    out.reserve(bytes_ + lines_.size());
    for (const auto& l : lines_) {
        out += l;
        out.push_back('\n');
    }
    return out;
}

} // namespace ls::logs
