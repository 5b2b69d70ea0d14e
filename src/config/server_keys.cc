#include <limits>

#include "config/loader.h"

namespace ls::config::detail {

// `server:` (ours): limits of the HTTP server.
Result<void> Loader::decode_server(const Node& v, const Scope& scope) {
    auto pairs = pairs_of(v, "server");
    if (!pairs) return pairs.error();
    ServerConfig& s = cfg_.server;
    const long long kMaxSize = std::numeric_limits<long long>::max();
    for (auto [key, value] : pairs.value()) {
        const std::string& k = key->value;
        bool is_size = k == "maxHeaderBytes" || k == "maxBodyBytes" || k == "bodyMemoryBytes";
        if (!known_key(*key, {"maxHeaderBytes", "maxBodyBytes", "bodyMemoryBytes", "headerTimeout",
                              "bodyTimeout", "idleTimeout", "shutdownTimeout", "maxConnections",
                              "spoolDir"}))
            continue;
        if (is_null(*value)) continue;
        if (k == "spoolDir") {
            auto dir = get_string(*value, k, scope);
            if (!dir) return dir.error();
            if (dir.value().empty() || dir.value()[0] != '/')
                return err(*value, "'server.spoolDir' must be an absolute path");
            if (dir.value().find('\0') != std::string::npos)
                return err(*value, "'server.spoolDir' contains a NUL character");
            s.spool_dir = dir.value();
        } else if (is_size || k == "maxConnections") {
            auto n = get_int(*value, k, scope, std::numeric_limits<long long>::min(),
                             k == "maxConnections" ? std::numeric_limits<int>::max() : kMaxSize);
            if (!n) return n.error();
            if (n.value() <= 0) return err(*value, "'server." + k + "' must be positive");
            if (k == "maxHeaderBytes")
                s.max_header_bytes = static_cast<size_t>(n.value());
            else if (k == "maxBodyBytes")
                s.max_body_bytes = static_cast<size_t>(n.value());
            else if (k == "bodyMemoryBytes")
                s.body_memory_bytes = static_cast<size_t>(n.value());
            else
                s.max_connections = static_cast<int>(n.value());
        } else {
            auto d = get_double(*value, k, scope);
            if (!d) return d.error();
            if (d.value() <= 0) return err(*value, "'server." + k + "' must be positive");
            if (k == "headerTimeout")
                s.header_timeout_s = d.value();
            else if (k == "bodyTimeout")
                s.body_timeout_s = d.value();
            else if (k == "idleTimeout")
                s.idle_timeout_s = d.value();
            else
                s.shutdown_timeout_s = d.value();
        }
    }
    return {};
}

} // namespace ls::config::detail
