#include "proxy/upstream_address.h"

#include <arpa/inet.h>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>

namespace ls::proxy {

std::string UpstreamAddress::key() const {
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (addr.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    }
    return std::string(host) + "|" + std::to_string(port);
}

Result<UpstreamAddress> parse_upstream_url(const std::string& url, bool lookup_names) {
    UpstreamAddress out;
    out.url = url;
    constexpr std::string_view kHttp = "http://", kHttps = "https://";
    size_t scheme_len;
    if (url.compare(0, kHttp.size(), kHttp) == 0) {
        scheme_len = kHttp.size();
    } else if (url.compare(0, kHttps.size(), kHttps) == 0) {
        scheme_len = kHttps.size();
        out.tls = true;
    } else {
        return make_error("unsupported proxy URL '" + url + "' (http:// or https:// only)");
    }
    std::string rest = url.substr(scheme_len);
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    out.base_path = slash == std::string::npos ? "" : rest.substr(slash);
    while (!out.base_path.empty() && out.base_path.back() == '/') out.base_path.pop_back();
    out.host_header = authority;

    std::string host;
    std::string port_text = out.tls ? "443" : "80";
    if (!authority.empty() && authority[0] == '[') {
        size_t close = authority.find(']');
        if (close == std::string::npos)
            return make_error("bad IPv6 address in proxy URL '" + url + "'");
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':')
                return make_error("unexpected text after ']' in proxy URL '" + url + "'");
            port_text = authority.substr(close + 2);
        }
    } else {
        size_t colon = authority.rfind(':');
        host = authority.substr(0, colon);
        if (colon != std::string::npos) port_text = authority.substr(colon + 1);
    }
    if (host.empty()) return make_error("no host in proxy URL '" + url + "'");
    char* end = nullptr;
    long port = strtol(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port < 1 || port > 65535)
        return make_error("bad port in proxy URL '" + url + "'");

    out.port = static_cast<uint16_t>(port);
    out.host = host; // as written: the TLS server name
    if (host == "localhost") host = "127.0.0.1";
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        out.addr_len = sizeof(sockaddr_in);
        return out;
    }
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        out.addr_len = sizeof(sockaddr_in6);
        return out;
    }
    if (!lookup_names) {
        out.lookup_name = host;
        return out;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
    if (rc != 0 || !res) return make_error("cannot resolve '" + host + "': " + gai_strerror(rc));
    memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
    out.addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return out;
}

} // namespace ls::proxy
