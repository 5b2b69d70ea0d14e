#include "sd/listen.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd/libsystemd.h"
#include "util/log.h"

namespace ls::sd {

namespace {
// libsystemd for a notification, loaded only when the service manager listens (it returns 0
// without NOTIFY_SOCKET too, so nothing is lost); a library that cannot be loaded is said once.
const Systemd* for_notify() {
    if (!getenv("NOTIFY_SOCKET")) return nullptr;
    std::string error;
    const Systemd* lib = systemd(&error);
    static bool said = false;
    if (!lib && !said) {
        said = true;
        LOG_ERROR("cannot notify the service manager (NOTIFY_SOCKET is set): %s", error.c_str());
    }
    return lib;
}

void notify(const char* state) {
    if (const Systemd* lib = for_notify()) lib->sd_notify(0, state);
}
} // namespace

std::vector<ListenSocket> passed_sockets() {
    std::vector<ListenSocket> out;
    if (!getenv("LISTEN_FDS")) return out; // not socket-activated: libsystemd is not needed
    std::string error;
    const Systemd* lib = systemd(&error);
    if (!lib) {
        LOG_ERROR("cannot take the sockets the service manager passed (LISTEN_FDS is set): %s",
                  error.c_str());
        return out;
    }
    char** names = nullptr;
    int n = lib->sd_listen_fds_with_names(1, &names);
    for (int i = 0; i < n; ++i) {
        int fd = SD_LISTEN_FDS_START + i;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        std::string name = names && names[i] ? names[i] : "passed";
        out.push_back({UniqueFd(fd), name});
    }
    if (names) {
        for (int i = 0; i < n; ++i) free(names[i]);
        free(names);
    }
    return out;
}

namespace {
Result<ListenSocket> listen_fd(int family, const sockaddr* addr, socklen_t len,
                               const std::string& name, bool dual_stack) {
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return make_error("socket: " + std::string(strerror(errno)), errno);
    int one = 1, zero = 0;
    if (family != AF_UNIX) setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6)
        setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one);
    if (::bind(fd.get(), addr, len) != 0)
        return make_error("cannot listen on " + name + ": " + strerror(errno), errno);
    if (::listen(fd.get(), 1024) != 0)
        return make_error("cannot listen on " + name + ": " + strerror(errno), errno);
    return ListenSocket{std::move(fd), name};
}
} // namespace

Result<ListenSocket> listen_on(const std::string& address) {
    if (address.rfind("unix:", 0) == 0) {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::string path = address.substr(5);
        if (path.empty() || path.size() >= sizeof un.sun_path)
            return make_error("bad unix socket path '" + path + "'");
        memcpy(un.sun_path, path.c_str(), path.size());
        ::unlink(path.c_str());
        return listen_fd(AF_UNIX, reinterpret_cast<sockaddr*>(&un), sizeof un, address, false);
    }
    size_t colon = address.rfind(':');
    if (colon == std::string::npos)
        return make_error("bad listen address '" + address + "' (expected HOST:PORT or :PORT)");
    std::string host = address.substr(0, colon);
    std::string port = address.substr(colon + 1);
    char* end = nullptr;
    long p = strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p < 0 || p > 65535)
        return make_error("bad port in listen address '" + address + "'");
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);

    if (host.empty()) {
        sockaddr_in6 a6{};
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(static_cast<uint16_t>(p));
        a6.sin6_addr = in6addr_any;
        auto r = listen_fd(AF_INET6, reinterpret_cast<sockaddr*>(&a6), sizeof a6, address, true);
        if (r) return r;
        sockaddr_in a4{};
        a4.sin_family = AF_INET;
        a4.sin_port = htons(static_cast<uint16_t>(p));
        a4.sin_addr.s_addr = htonl(INADDR_ANY);
        return listen_fd(AF_INET, reinterpret_cast<sockaddr*>(&a4), sizeof a4, address, false);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res)
        return make_error("cannot resolve listen address '" + address + "': " + gai_strerror(rc));
    auto r = listen_fd(res->ai_family, res->ai_addr, res->ai_addrlen, address, false);
    freeaddrinfo(res);
    return r;
}

void notify_ready() {
    notify("READY=1\nSTATUS=serving");
}
void notify_reloading() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ull +
                                    static_cast<unsigned long long>(ts.tv_nsec) / 1000;
    char state[96];
    snprintf(state, sizeof state,
             "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading configuration", usec);
    notify(state);
}
void notify_stopping() {
    notify("STOPPING=1\nSTATUS=shutting down");
}
void notify_watchdog() {
    notify("WATCHDOG=1");
}

uint64_t watchdog_usec() {
    if (!getenv("WATCHDOG_USEC")) return 0;
    const Systemd* lib = for_notify(); // a watchdog is kept through NOTIFY_SOCKET
    uint64_t usec = 0;
    return lib && lib->sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

void notify_status(const std::string& status) {
    if (const Systemd* lib = for_notify()) lib->sd_notify(0, ("STATUS=" + status).c_str());
}

bool reachable_from_other_hosts(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
    if (ss.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
        return (ntohl(in->sin_addr.s_addr) >> 24) != 127;
    }
    if (ss.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return false;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] != 127;
        return true;
    }
    return false; // unix sockets: this machine only
}

} // namespace ls::sd
