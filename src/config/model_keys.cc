#include <regex.h>

#include <algorithm>
#include <cstdlib>

#include "config/loader.h"
#include "config/shell_words.h"

namespace ls::config::detail {

/* cmd / cmdStop: comment lines out, macros in, then words. */
Result<void> Loader::decode_command(const Node& v, const std::string& key, const Scope& scope,
                                    bool allow_pid, std::vector<std::string>& out) {
    if (v.kind != Node::Kind::Scalar) return err(v, "expected a string for '" + key + "'");
    std::string text = strip_comment_lines(v.value);
    MacroContext ctx = *scope.ctx;
    ctx.allow_pid = allow_pid;
    auto expanded = expand_macros(text, ctx);
    if (!expanded) return err(v, scope.prefix + key + ": " + expanded.error().message);
    if (expanded.value().find('\0') != std::string::npos)
        return err(v, scope.prefix + key + ": contains a NUL character");
    auto words = split_words(expanded.value());
    if (!words) return err(v, scope.prefix + key + ": " + words.error().message);
    out = std::move(words.value());
    return {};
}

Result<void> Loader::decode_capabilities(const Node& v, const Scope& scope, Capabilities& c) {
    auto pairs = pairs_of(v, "capabilities");
    if (!pairs) return pairs.error();
    c.set = true;
    for (auto [kn, value] : pairs.value()) {
        const std::string& k = kn->value;
        const std::string key = "capabilities." + k;
        if (!known_key(*kn, {"in", "out", "tools", "reranker", "context"})) continue;
        if (is_null(*value)) continue;
        if (k == "in" || k == "out") {
            auto items = get_list(*value, key);
            if (!items) return items.error();
            std::vector<std::string>& list = k == "in" ? c.in : c.out;
            for (const Node* item : items.value()) {
                auto s = get_string(*item, key, scope);
                if (!s) return s.error();
                const std::string& mod = s.value();
                if (mod != "text" && mod != "audio" && mod != "image")
                    return err(*item, scope.prefix + key + ": unknown modality '" + mod +
                                          "' (expected text, audio or image)");
                if (std::find(list.begin(), list.end(), mod) == list.end()) list.push_back(mod);
            }
        } else if (k == "context") {
            auto n = get_int(*value, key, scope, std::numeric_limits<long long>::min(),
                             std::numeric_limits<long long>::max());
            if (!n) return n.error();
            if (n.value() < 0) return err(*value, scope.prefix + key + " must be >= 0");
            c.context = n.value();
        } else {
            auto b = get_bool(*value, key, scope);
            if (!b) return b.error();
            (k == "tools" ? c.tools : c.reranker) = b.value();
        }
    }
    return {};
}

Result<void> Loader::decode_filters(const Node& v, const Scope& scope, ModelConfig& m,
                                    std::string& strip_params, std::string& legacy_strip_params,
                                    std::vector<std::pair<std::string, const Node*>>& by_id_keys) {
    auto pairs = pairs_of(v, "filters");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        const std::string& k = kn->value;
        const std::string key = "filters." + k;
        if (!known_key(*kn, {"stripParams", "strip_params", "setParams", "setParamsByID"}))
            continue;
        if (is_null(*value)) continue;
        if (k == "stripParams" || k == "strip_params") {
            auto s = get_string(*value, key, scope);
            if (!s) return s.error();
            (k == "stripParams" ? strip_params : legacy_strip_params) = s.value();
        } else if (k == "setParams") {
            auto obj = params_json(*value, key, scope);
            if (!obj) return obj.error();
            if (cJSON_GetArraySize(obj.value().get()) > 0)
                m.filters.set_params = param_set(obj.value().get());
        } else {
            auto by_id = pairs_of(*value, key);
            if (!by_id) return by_id.error();
            for (auto [idn, params] : by_id.value()) {
                auto name = get_string(*idn, key, scope); // macros are allowed in these keys
                if (!name) return name.error();
                const std::string& id = name.value();
                if (id.empty()) return err(*idn, scope.prefix + key + ": empty key");
                if (m.filters.set_params_by_id.count(id))
                    return err(*idn, scope.prefix + key + ": duplicate key '" + id + "'");
                ParamSet set{"{}", {}};
                if (!is_null(*params)) {
                    auto obj = params_json(*params, key + "." + id, scope);
                    if (!obj) return obj.error();
                    set = param_set(obj.value().get());
                }
                m.filters.set_params_by_id.emplace(id, std::move(set));
                by_id_keys.emplace_back(id, idn);
            }
        }
    }
    return {};
}

Result<void> Loader::decode_timeouts(const Node& v, const Scope& scope, UpstreamTimeouts& t,
                                     bool peer) {
    auto pairs = pairs_of(v, "timeouts");
    if (!pairs) return pairs.error();
    for (auto [kn, value] : pairs.value()) {
        const std::string& k = kn->value;
        const std::string key = "timeouts." + k;
        if (!known_key(*kn, {"connect", "responseHeader", "idleConn", "keepalive", "tlsHandshake",
                             "silence", "expectContinue"}))
            continue;
        if (is_null(*value)) continue;
        auto d = get_double(*value, key, scope);
        if (!d) return d.error();
        if (d.value() < 0) return err(*value, scope.prefix + key + " must be >= 0");
        if (k == "connect")
            t.connect_s = d.value();
        else if (k == "responseHeader")
            t.response_header_s = d.value();
        else if (k == "idleConn")
            t.idle_conn_s = d.value();
        else if (k == "keepalive")
            t.keepalive_s = d.value();
        else if (k == "tlsHandshake")
            t.tls_handshake_s = d.value();
        else if (k == "silence" && !peer)
            t.silence_s = d.value();
        else if (k == "silence")
            warn(*kn, scope.prefix + key +
                          " has no effect on a peer: the peer's own llama-swap watches its "
                          "models");
        else
            warn(*kn, scope.prefix + key +
                          " has no effect: llama-swap reads a request's body "
                          "itself and never sends Expect: 100-continue "
                          "upstream");
    }
    return {};
}

Result<void> Loader::decode_model(const Node& key, const Node& v, ModelConfig& m,
                                  std::vector<std::pair<std::string, const Node*>>& alias_nodes) {
    const std::string prefix = "model '" + m.id + "': ";
    std::vector<Pair> pairs;
    if (!is_null(v)) {
        auto p = pairs_of(v, "models." + m.id);
        if (!p) return p.error();
        pairs = std::move(p.value());
    }

    // Macros first, whatever their place in the mapping: every other value may use them.
    MacroSet model_macros;
    MacroContext ctx;
    ctx.global = &global_macros_;
    ctx.model = &model_macros;
    ctx.model_id = m.id;
    for (auto [k, value] : pairs) {
        if (k->value != "macros" || is_null(*value)) continue;
        if (auto r = decode_macros(*value, model_macros, ctx, prefix); !r) return r;
    }
    Scope scope{prefix, &ctx};

    const Node* cmd_node = nullptr;
    const Node* proxy_node = nullptr;
    const Node* cmd_stop_node = nullptr;
    bool have_ttl = false;
    std::string strip_params, filters_strip_params, model_strip_params;
    std::vector<std::pair<std::string, const Node*>> by_id_keys;
    m.proxy = "http://localhost:${PORT}";
    m.ttl_s = cfg_.global_ttl_s;
    m.unload_timeout_s = cfg_.unload_timeout_s;

    for (auto [kn, value] : pairs) {
        const std::string& k = kn->value;
        if (k == "macros") continue;

        if (!known_key(*kn, kModelKeys)) continue;
        if (is_null(*value)) continue;

        if (k == "cmd") {
            cmd_node = value;
            if (auto r = decode_command(*value, k, scope, false, m.cmd); !r) return r;
        } else if (k == "cmdStop") {
            cmd_stop_node = value;
            if (auto r = decode_command(*value, k, scope, true, m.cmd_stop); !r) return r;
        } else if (k == "proxy") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            proxy_node = value;
            m.proxy = s.value();
            if (m.proxy.rfind("http://", 0) != 0 && m.proxy.rfind("https://", 0) != 0)
                return err(*value, prefix + "proxy must start with http:// or https://");
        } else if (k == "checkEndpoint") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            if (s.value() == "none")
                m.check_endpoint.clear();
            else if (s.value().empty())
                m.check_endpoint = "/";
            else if (s.value()[0] != '/')
                return err(*value, prefix + "checkEndpoint must start with '/' or be 'none'");
            else
                m.check_endpoint = s.value();
        } else if (k == "ttl") {
            auto n = get_int(*value, k, scope);
            if (!n) return n.error();
            if (n.value() < -1)
                return err(*value, prefix + "invalid ttl " + std::to_string(n.value()) +
                                       ": must be >= 0, or -1 for globalTTL");
            have_ttl = n.value() != -1;
            if (have_ttl) m.ttl_s = static_cast<int>(n.value());
        } else if (k == "unloadTimeout") {
            auto d = get_double(*value, k, scope);
            if (!d) return d.error();
            if (d.value() < 0) return err(*value, prefix + "unloadTimeout must be >= 0");
            if (d.value() > 0) m.unload_timeout_s = d.value();
        } else if (k == "concurrencyLimit") {
            auto n = get_int(*value, k, scope);
            if (!n) return n.error();
            if (n.value() < 0) return err(*value, prefix + "concurrencyLimit must be >= 0");
            m.concurrency_limit = n.value() == 0 ? 10 : static_cast<int>(n.value());
        } else if (k == "upstreamConnections") {
            auto s = scalar(*value, k, scope, "'auto', 'unlimited' or a number");
            if (!s) return s.error();
            if (s.value() == "auto") {
                m.upstream_connections = ModelConfig::kAutoConnections;
            } else if (s.value() == "unlimited") {
                m.upstream_connections = 0;
            } else {
                auto n = get_int(*value, k, scope);
                if (!n) return n.error();
                if (n.value() < 0 || n.value() > 65535)
                    return err(*value, prefix + "upstreamConnections must be 'auto', 'unlimited', "
                                                "or a number from 0 (no cap) to 65535");
                m.upstream_connections = static_cast<int>(n.value());
            }
        } else if (k == "unlisted" || k == "sendLoadingState") {
            auto b = get_bool(*value, k, scope);
            if (!b) return b.error();
            if (k == "unlisted")
                m.unlisted = b.value();
            else
                m.send_loading_state = b.value();
        } else if (k == "metadata") {
            size_t budget = kMaxJsonValues;
            auto json = to_json(*value, k, scope, 0, budget, *value);
            if (!json) return json.error();
            m.metadata_json = json_text(json.value().get());
        } else if (k == "capabilities") {
            if (auto r = decode_capabilities(*value, scope, m.capabilities); !r) return r;
        } else if (k == "filters") {
            if (auto r = decode_filters(*value, scope, m, strip_params, filters_strip_params,
                                        by_id_keys);
                !r)
                return r;
        } else if (k == "strip_params") { // legacy spelling at the model level
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            model_strip_params = s.value();
        } else if (k == "compat") {
            auto compat = pairs_of(*value, "compat");
            if (!compat) return compat.error();
            for (auto [ck, cv] : compat.value()) {
                if (!known_key(*ck, {"ignoreWebsockets"}) || is_null(*cv)) continue;
                auto b = get_bool(*cv, "compat.ignoreWebsockets", scope);
                if (!b) return b.error();
                m.ignore_websockets = b.value();
            }
        } else if (k == "tls") {
            if (auto r = decode_tls(*value, "tls", scope, m.tls); !r) return r;
        } else if (k == "timeouts") {
            if (auto r = decode_timeouts(*value, scope, m.timeouts); !r) return r;
        } else if (k == "memoryMax" || k == "memoryHigh") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            uint64_t bytes = 0;
            if (!parse_size(text.value(), bytes))
                return err(*value, prefix + k + " must be a size like 24G, 512M or 1073741824");
            (k == "memoryMax" ? m.limits.memory_max : m.limits.memory_high) = bytes;
        } else if (k == "cpuQuota") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            std::string t = text.value();
            if (!t.empty() && t.back() == '%') t.pop_back();
            char* end = nullptr;
            long pct = strtol(t.c_str(), &end, 10);
            if (t.empty() || *end != '\0' || pct <= 0 || pct > 100000)
                return err(*value, prefix + "cpuQuota must be a percentage like 400%");
            m.limits.cpu_quota_percent = static_cast<unsigned>(pct);
        } else if (k == "allowedCPUs") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            if (!valid_cpu_list(text.value()))
                return err(*value, prefix + "allowedCPUs must be a CPU list like 0-7,16");
            m.limits.allowed_cpus = text.value();
        } else if (k == "gpus") {
            auto items = get_list(*value, k);
            if (!items) return items.error();
            m.limits.gpus_set = true;
            for (const Node* item : items.value()) {
                auto n = get_int(*item, k, scope, 0, 255);
                if (!n) return n.error();
                m.limits.gpus.push_back(static_cast<int>(n.value()));
            }
        } else if (k == "backend") {
            auto text = get_string(*value, k, scope);
            if (!text) return text.error();
            Backend b;
            if (!parse_backend(text.value(), b))
                return err(*value, prefix + "backend must be auto, scope or fork");
            m.backend = b;
        } else if (k == "readyPattern") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            regex_t re;
            if (regcomp(&re, s.value().c_str(), REG_EXTENDED | REG_NOSUB) != 0)
                return err(*value,
                           prefix +
                               "readyPattern is not a valid POSIX extended regular expression");
            regfree(&re);
            m.ready_pattern = s.value();
        } else if (k == "name" || k == "description" || k == "useModelName") {
            auto s = get_string(*value, k, scope);
            if (!s) return s.error();
            if (k == "name")
                m.name = s.value();
            else if (k == "description")
                m.description = s.value();
            else
                m.use_model_name = s.value();
        } else if (k == "env") {
            auto items = get_list(*value, k);
            if (!items) return items.error();
            for (const Node* item : items.value()) {
                auto s = get_string(*item, k, scope);
                if (!s) return s.error();
                size_t eq = s.value().find('=');
                if (eq == std::string::npos || eq == 0)
                    return err(*item, prefix + "env entry '" + s.value() + "' is not NAME=value");
                if (s.value().find('\0') != std::string::npos)
                    return err(*item, prefix + "env entry contains a NUL character");
                m.env.push_back(s.value());
            }
        } else if (k == "aliases") {
            auto items = get_list(*value, k);
            if (!items) return items.error();
            for (const Node* item : items.value()) {
                auto s = get_string(*item, k, scope);
                if (!s) return s.error();
                if (s.value().empty()) return err(*item, prefix + "empty alias");
                m.aliases.push_back(s.value());
                alias_nodes.emplace_back(s.value(), item);
            }
        }
    }

    // Like the original, the legacy spellings count only when `stripParams` is empty.
    const std::string& strip = !strip_params.empty()           ? strip_params
                               : !filters_strip_params.empty() ? filters_strip_params
                                                               : model_strip_params;
    m.filters.strip_params = split_strip_params(strip);
    // setParamsByID keys other than the model's own id (and its listed aliases) are aliases;
    // their uniqueness is checked with the other aliases.
    for (const auto& [id, kn] : by_id_keys) {
        if (id == m.id || std::find(m.aliases.begin(), m.aliases.end(), id) != m.aliases.end())
            continue;
        m.aliases.push_back(id);
        alias_nodes.emplace_back(id, kn);
    }

    if (m.id == kComfyUiModelId) {
        // /comfyui/ serves this model: a browser opens many requests and a WebSocket that
        // must neither start it nor hold it (as the original forces).
        m.concurrency_limit = std::max(m.concurrency_limit, 50);
        m.ignore_websockets = true;
    }

    if (m.cmd.empty()) return err(cmd_node ? *cmd_node : key, prefix + "cmd is empty");
    bool cmd_port = contains_port(m.cmd);
    if (!cmd_port && m.proxy.find("${PORT}") != std::string::npos)
        return err(proxy_node ? *proxy_node : key, prefix + "proxy uses ${PORT} but cmd does not");
    if (!cmd_port && contains_port(m.cmd_stop))
        return err(*cmd_stop_node, prefix + "cmdStop uses ${PORT} but cmd does not");
    m.uses_port = cmd_port;
    m.cmd_text = join_words(m.cmd);
    return {};
}

} // namespace ls::config::detail
