#include "util/splice_pipe.h"

#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace ls {

namespace {
// 256 KiB: a large body moves in few system calls, and in bench/run's bare relays it beat
// both 64 KiB and 1 MiB (a larger pipe made the reader's side slower, and pins more kernel
// memory per transfer); where the per-user pipe budget says no, the default 64 KiB works.
constexpr int kWantedCapacity = 256 << 10;
constexpr size_t kPooled = 8;

struct Pooled {
    UniqueFd read, write;
    size_t capacity;
};
std::vector<Pooled>& pool() {
    static std::vector<Pooled> pipes; // the daemon has one loop thread
    return pipes;
}
} // namespace

uint64_t SplicePipe::spliced_total = 0;

bool SplicePipe::disabled() {
    static const bool off = getenv("LLAMA_SWAP_NO_SPLICE") != nullptr;
    return off;
}

SplicePipe SplicePipe::take() {
    SplicePipe p;
    auto& free = pool();
    if (!free.empty()) {
        p.read_ = std::move(free.back().read);
        p.write_ = std::move(free.back().write);
        p.capacity_ = free.back().capacity;
        free.pop_back();
        return p;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return p;
    p.read_.reset(fds[0]);
    p.write_.reset(fds[1]);
    const int got = ::fcntl(fds[1], F_SETPIPE_SZ, kWantedCapacity);
    p.capacity_ = static_cast<size_t>(got > 0 ? got : ::fcntl(fds[1], F_GETPIPE_SZ));
    return p;
}

SplicePipe::~SplicePipe() {
    if (!valid() || held != 0) return; // bytes still inside: the descriptors close
    auto& free = pool();
    if (free.size() < kPooled) free.push_back({std::move(read_), std::move(write_), capacity_});
}

} // namespace ls
