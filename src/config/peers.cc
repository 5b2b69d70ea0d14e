// `peers`: other servers whose models are proxied as "<peer>/<model>" (the original's rules:
// `proxy` and `models` required, names unique across peers, no model id, alias, selector or
// pin may take a peer model's full name), and `tls` of https:// upstreams and peers.
#include <unistd.h>

#include "config/loader.h"
#include "proxy/upstream_address.h"
#include "router/matrix.h"

namespace ls::config::detail {

Result<void> Loader::decode_tls(const Node& v, const std::string& path, const Scope& scope,
                                TlsClientConfig& tls) {
    auto pairs = pairs_of(v, path);
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        if (!known_key(*kn, {"caFile", "insecure"}) || is_null(*value)) continue;
        const std::string key = path + "." + kn->value;
        if (kn->value == "insecure") {
            auto b = get_bool(*value, key, scope);
            if (!b) return b.error();
            tls.insecure = b.value();
            if (tls.insecure)
                warn(*kn, scope.prefix + key + ": the upstream's certificate is not verified");
            continue;
        }
        auto file = get_string(*value, key, scope);
        if (!file) return file.error();
        if (file.value().empty() || file.value()[0] != '/')
            return err(*value, scope.prefix + key + " must be an absolute path");
        if (access(file.value().c_str(), R_OK) != 0)
            return err(*value, scope.prefix + key + ": cannot read " + file.value());
        tls.ca_file = file.value();
    }
    return {};
}

Result<void> Loader::decode_peers(const Node& v, const Scope& scope) {
    auto pairs = pairs_of(v, "peers");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        PeerConfig peer;
        peer.id = kn->value;
        peer.timeouts.response_header_s = 60; // the original's peer default
        const std::string at = "peers." + peer.id;
        const Scope pscope{at + ": ", scope.ctx};
        if (peer.id.empty() || has_space_or_control(peer.id))
            return err(*kn, "peers: peer ids must be non-empty, without blanks");
        std::vector<Pair> pp;
        if (!is_null(*value)) {
            auto r = pairs_of(*value, at);
            if (!r) return r.error();
            pp = std::move(r.value());
        }
        const Node* proxy = nullptr;
        for (auto [k, val] : pp) {
            if (!known_key(*k, {"proxy", "models", "apiKey", "filters", "timeouts", "tls"}) ||
                is_null(*val))
                continue;
            const std::string key = at + "." + k->value;
            if (k->value == "proxy") {
                auto s = get_string(*val, key, scope);
                if (!s) return s.error();
                peer.proxy = s.value();
                proxy = val;
            } else if (k->value == "apiKey") {
                auto s = get_string(*val, key, scope);
                if (!s) return s.error();
                peer.api_key = s.value();
            } else if (k->value == "models") {
                auto items = get_list(*val, key);
                if (!items) return items.error();
                for (const Node* item : items.value()) {
                    auto s = get_string(*item, key, scope);
                    if (!s) return s.error();
                    if (s.value().empty()) return err(*item, at + ": empty model name");
                    if (std::find(peer.models.begin(), peer.models.end(), s.value()) ==
                        peer.models.end())
                        peer.models.push_back(s.value());
                }
            } else if (k->value == "filters") {
                ModelConfig holder; // the model filters' decoder, without model aliases
                std::string strip, legacy;
                std::vector<std::pair<std::string, const Node*>> by_id;
                if (auto r = decode_filters(*val, pscope, holder, strip, legacy, by_id); !r)
                    return r;
                holder.filters.strip_params = split_strip_params(!strip.empty() ? strip : legacy);
                peer.filters = std::move(holder.filters);
            } else if (k->value == "timeouts") {
                if (auto r = decode_timeouts(*val, pscope, peer.timeouts, true); !r) return r;
            } else {
                if (auto r = decode_tls(*val, "tls", pscope, peer.tls); !r) return r;
            }
        }
        if (peer.proxy.empty()) return err(proxy ? *proxy : *kn, at + ": proxy is required");
        if (peer.proxy.rfind("http://", 0) != 0 && peer.proxy.rfind("https://", 0) != 0)
            return err(*proxy, at + ": invalid peer proxy URL (" + peer.proxy +
                                   "): it must start with http:// or https://");
        if (auto u = proxy::parse_upstream_url(peer.proxy, false); !u)
            return err(*proxy,
                       at + ": invalid peer proxy URL (" + peer.proxy + "): " + u.error().message);
        if (peer.models.empty()) return err(*kn, at + ": peer models can not be empty");
        cfg_.peers.emplace(peer.id, std::move(peer));
    }
    return {};
}

// No model id, alias, selector or profile pin may take a peer model's full name, and two peers
// may not give the same full name ("a/b" + "c" and "a" + "b/c").
Result<void> Loader::check_peer_namespace(const Node& at) {
    namespace mx = router::matrix;
    std::map<std::string, std::pair<std::string, std::string>> fqns;
    for (const auto& [id, p] : cfg_.peers)
        for (const auto& m : p.models) {
            const std::string fqn = id + "/" + m;
            if (auto it = fqns.find(fqn); it != fqns.end())
                return err(at, "peer model name " + mx::go_quote(fqn) +
                                   " is ambiguous between peers." + it->second.first + " model " +
                                   mx::go_quote(it->second.second) + " and peers." + id +
                                   " model " + mx::go_quote(m));
            fqns[fqn] = {id, m};
        }
    for (const auto& [fqn, owner] : fqns) {
        if (cfg_.models.count(fqn))
            return err(at, "model ID " + mx::go_quote(fqn) +
                               " conflicts with fully qualified peer model name");
        if (auto a = cfg_.aliases.find(fqn); a != cfg_.aliases.end())
            return err(at, "model " + a->second + " alias " + mx::go_quote(fqn) +
                               " conflicts with fully qualified peer model name");
        if (cfg_.selectors.count(fqn))
            return err(at, "selector ID " + mx::go_quote(fqn) +
                               " conflicts with fully qualified peer model name");
        for (const auto& [pid, p] : cfg_.profiles)
            if (p.pins.count(fqn))
                return err(at, "profile " + pid + " pin " + mx::go_quote(fqn) +
                                   " conflicts with fully qualified peer model name");
    }
    return {};
}

} // namespace ls::config::detail
