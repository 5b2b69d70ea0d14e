// Where an upstream listens, parsed from a model's `proxy` URL (after ${PORT} substitution).
#pragma once

#include <string>
#include <sys/socket.h>

#include "util/result.h"

namespace ls::proxy {

struct UpstreamAddress {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    std::string host_header; // "host:port" as written in the URL
    std::string base_path;   // path prefix of the URL without a trailing '/', often empty
    std::string url;         // the URL itself, for messages
    // A host name still to be looked up (addr_len is 0 until then), and the port.
    std::string lookup_name;
    uint16_t port = 0;
    std::string host;        // as written in the URL (the name a TLS certificate must carry)
    bool tls = false;        // https://
    std::string key() const; // identity for connection pooling
};

// Accepts http://HOST[:PORT][/PATH] and https://HOST[:PORT][/PATH] (port 443 by default). HOST is
// an IPv4/IPv6 literal or a name; "localhost" maps to 127.0.0.1 without a resolver call. Other
// names are looked up with getaddrinfo when `lookup_names` (blocking: for tools and tests), else
// left in lookup_name for the caller's asynchronous Resolver (the daemon never blocks its loop on
// DNS).
Result<UpstreamAddress> parse_upstream_url(const std::string& url, bool lookup_names = true);

} // namespace ls::proxy
