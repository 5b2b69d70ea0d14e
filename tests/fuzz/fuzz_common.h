// Helpers shared by the libFuzzer harnesses (tests/fuzz/*.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

// A failed property: printed, then abort(), which libFuzzer reports as a crash and saves the
// input (a sanitizer report does the same by itself).
[[noreturn]] inline void fail(const char* what, const char* file, int line) {
    std::fprintf(stderr, "\nFUZZ PROPERTY FAILED at %s:%d: %s\n", file, line, what);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) ::fuzz::fail(#cond, __FILE__, __LINE__);                                      \
    } while (0)

// Deterministic chunk sizes for feeding a streaming parser: the same seed splits the same
// input the same way, so a saved crash reproduces. Seed 0 means one piece.
class Splitter {
public:
    explicit Splitter(uint32_t seed) : whole_(seed == 0), state_(seed * 2654435761u | 1u) {}

    // The next chunk's length, at most `left` (may be 0: an empty write must be harmless).
    size_t next(size_t left) {
        if (whole_ || left == 0) return left;
        const uint32_t r = rand();
        size_t n;
        switch (r % 8) {
        case 0:
            n = 0;
            break;
        case 1:
        case 2:
            n = 1;
            break;
        case 3:
        case 4:
            n = 1 + (r >> 8) % 8;
            break;
        case 5:
        case 6:
            n = 1 + (r >> 8) % 100;
            break;
        default:
            n = left;
            break;
        }
        return n < left ? n : left;
    }

    // The chunks of `data`, in order.
    std::vector<std::string_view> split(std::string_view data) {
        std::vector<std::string_view> out;
        size_t pos = 0;
        int zero_runs = 0;
        while (pos < data.size()) {
            size_t n = next(data.size() - pos);
            if (n == 0 && ++zero_runs > 4) n = 1; // always progress
            out.push_back(data.substr(pos, n));
            pos += n;
        }
        return out;
    }

private:
    uint32_t rand() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 17;
        state_ ^= state_ << 5;
        return state_;
    }
    bool whole_;
    uint32_t state_;
};

} // namespace fuzz
