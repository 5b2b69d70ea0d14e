// Listening sockets: the ones systemd passed (socket activation) or our own from --listen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/result.h"
#include "util/unique_fd.h"

namespace ls::sd {

struct ListenSocket {
    UniqueFd fd;
    std::string name; // e.g. "http" or the address
};

// Sockets passed by the service manager (LISTEN_FDS), made non-blocking; empty when none.
std::vector<ListenSocket> passed_sockets();

// Binds and listens on ADDR: ":PORT" (all addresses, IPv6 and IPv4), "HOST:PORT",
// "[V6]:PORT", or "unix:/path".
Result<ListenSocket> listen_on(const std::string& address);

// True when the socket accepts connections from other machines: bound to an address that
// is not loopback (a wildcard included); false for loopback and unix sockets.
bool reachable_from_other_hosts(int fd);

// sd_notify wrappers (no-ops without NOTIFY_SOCKET).
void notify_ready();
void notify_stopping();
// RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload expects; READY=1 follows.
void notify_reloading();
void notify_status(const std::string& status);
void notify_watchdog();
// WATCHDOG_USEC for this process (0: no watchdog requested).
uint64_t watchdog_usec();

} // namespace ls::sd
