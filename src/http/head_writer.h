// Writes an HTTP head at the end of a string sized once for the most it can take: a head is
// a score of short pieces, and std::string::append checks its room, and may grow, for each.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

namespace ls::http {

class HeadWriter {
public:
    // `most`: what the pieces can add up to (more is still written, the string then grows).
    HeadWriter(std::string& out, size_t most) : out_(out), start_(out.size()) {
        out_.resize(start_ + most);
        p_ = out_.data() + start_;
    }
    HeadWriter(const HeadWriter&) = delete;
    HeadWriter& operator=(const HeadWriter&) = delete;
    // The string cut to what was written.
    ~HeadWriter() { out_.resize(static_cast<size_t>(p_ - out_.data())); }

    HeadWriter& operator<<(std::string_view s) {
        if (static_cast<size_t>(out_.data() + out_.size() - p_) < s.size()) grow(s.size());
        std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
        return *this;
    }

private:
    void grow(size_t more) {
        const size_t used = static_cast<size_t>(p_ - out_.data());
        out_.resize(used + more + (out_.size() - start_));
        p_ = out_.data() + used;
    }
    std::string& out_;
    size_t start_;
    char* p_;
};

} // namespace ls::http
