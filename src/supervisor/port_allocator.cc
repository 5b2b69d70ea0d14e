#include "supervisor/port_allocator.h"

#include <cerrno>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/unique_fd.h"

namespace ls::supervisor {

bool PortAllocator::port_is_free(int port) {
    // Free on the wildcard address means free on every address an upstream might bind.
    for (int family : {AF_INET, AF_INET6}) {
        UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) continue; // no IPv6 here: nothing can listen there either
        // No SO_REUSEADDR: that would call a port with TIME-WAIT connections free, and an
        // upstream that binds without it (llama-server) then fails to start.
        int one = 1;
        int rc;
        if (family == AF_INET) {
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<uint16_t>(port));
            a.sin_addr.s_addr = htonl(INADDR_ANY);
            rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        } else {
            setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            sockaddr_in6 a{};
            a.sin6_family = AF_INET6;
            a.sin6_port = htons(static_cast<uint16_t>(port));
            a.sin6_addr = in6addr_any;
            rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
        }
        if (rc != 0 && errno == EADDRINUSE) return false;
    }
    return true;
}

namespace {
double monotonic_now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
} // namespace

void PortAllocator::avoid(int port) {
    avoided_[port] = monotonic_now() + kAvoidSeconds;
}

bool PortAllocator::usable(int port) {
    if (held_.count(port)) return false;
    if (auto it = avoided_.find(port); it != avoided_.end()) {
        if (monotonic_now() < it->second) return false;
        avoided_.erase(it);
    }
    return port_is_free(port);
}

Result<int> PortAllocator::acquire(int preferred) {
    if (preferred > 0 && preferred <= 65535 && usable(preferred)) {
        held_.insert(preferred);
        return preferred;
    }
    for (int port = start_; port <= 65535 && port < start_ + 1000; ++port) {
        if (!usable(port)) continue;
        held_.insert(port);
        return port;
    }
    return make_error("no free port in " + std::to_string(start_) + ".." +
                      std::to_string(start_ + 999));
}

} // namespace ls::supervisor
