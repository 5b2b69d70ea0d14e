#include "config/loader.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "util/log_time.h"
#include "util/regex_list.h"

namespace ls::config {
namespace detail {

/* The pairs of a mapping, with YAML merge keys (`<<: *base` or `<<: [*a, *b]`) resolved as
 * go-yaml does: explicit keys win, then earlier merged mappings win over later ones. */
Result<std::vector<Pair>> Loader::pairs_of(const Node& map, const std::string& what, int depth) {
    if (map.kind != Node::Kind::Mapping) return err(map, "expected a mapping for '" + what + "'");
    if (depth > 32) return err(map, "merge keys nested too deeply");
    std::vector<Pair> out;
    std::vector<const Node*> merges;
    for (auto [k, v] : map.pairs) {
        const Node& key = node(k);
        const Node& value = node(v);
        if (key.kind != Node::Kind::Scalar)
            return err(key, "mapping keys in '" + what + "' must be scalars");
        if (key.plain && key.value == "<<") {
            if (value.kind == Node::Kind::Sequence) {
                for (int item : value.items) merges.push_back(&node(item));
            } else {
                merges.push_back(&value);
            }
            continue;
        }
        out.emplace_back(&key, &value);
    }
    for (const Node* m : merges) {
        if (m->kind != Node::Kind::Mapping) return err(*m, "merge key '<<' needs a mapping");
        auto merged = pairs_of(*m, what, depth + 1);
        if (!merged) return merged.error();
        for (const Pair& p : merged.value()) {
            bool present = false;
            for (const Pair& q : out) present = present || q.first->value == p.first->value;
            if (!present) out.push_back(p);
        }
    }
    return out;
}

/* Every mapping in the document, used or ignored, must not repeat a key (go-yaml refuses that
 * too). Reported at the second occurrence. */
Result<void> Loader::check_duplicate_keys() {
    for (const Node& n : t_.nodes) {
        if (n.kind != Node::Kind::Mapping) continue;
        std::set<std::string> seen;
        for (auto [k, v] : n.pairs) {
            (void)v;
            const Node& key = node(k);
            if (key.kind != Node::Kind::Scalar) continue;
            if (!seen.insert(key.value).second)
                return err(key, "duplicate key '" + key.value + "'");
        }
    }
    return {};
}

bool Loader::known_key(const Node& key, const std::vector<std::string_view>& known) {
    if (std::find(known.begin(), known.end(), key.value) != known.end()) return true;
    std::string msg = "unknown key '" + key.value + "'";
    if (std::string guess = closest_key(key.value, known); !guess.empty())
        msg += " (did you mean '" + guess + "'?)";
    warn(key, std::move(msg));
    return false;
}

Result<std::string> Loader::scalar(const Node& v, const std::string& key, const Scope& scope,
                                   const char* type, bool allow_pid) {
    if (v.kind != Node::Kind::Scalar)
        return err(v, std::string("expected ") + type + " for '" + key + "'");
    if (!scope.ctx || v.value.find("${") == std::string::npos) return v.value;
    MacroContext ctx = *scope.ctx;
    ctx.allow_pid = allow_pid;
    auto r = expand_macros(v.value, ctx);
    if (!r) return err(v, scope.prefix + key + ": " + r.error().message);
    return r;
}

Result<long long> Loader::get_int(const Node& v, const std::string& key, const Scope& scope,
                                  long long min, long long max) {
    auto s = scalar(v, key, scope, "a number");
    if (!s) return s.error();
    const std::string& text = s.value();
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || end == text.c_str() || *end != '\0' || text[0] == ' ') {
        char* dend = nullptr;
        double d = std::strtod(text.c_str(), &dend);
        if (!text.empty() && *dend == '\0' && std::isfinite(d) && text[0] != ' ')
            return err(v, "expected an integer for '" + key + "'");
        return err(v, "expected a number for '" + key + "'");
    }
    if (errno == ERANGE || n < min || n > max)
        return err(v, "value " + text + " is out of range for '" + key + "'");
    return n;
}

Result<double> Loader::get_double(const Node& v, const std::string& key, const Scope& scope) {
    auto s = scalar(v, key, scope, "a number");
    if (!s) return s.error();
    const std::string& text = s.value();
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    // strtod also takes "inf", "nan" and hex floats: only plain decimals are numbers here.
    if (text.empty() || *end != '\0' ||
        text.find_first_not_of("0123456789+-.eE") != std::string::npos)
        return err(v, "expected a number for '" + key + "'");
    if (!std::isfinite(d)) return err(v, "value " + text + " is out of range for '" + key + "'");
    return d;
}

Result<bool> Loader::get_bool(const Node& v, const std::string& key, const Scope& scope) {
    auto s = scalar(v, key, scope, "a boolean");
    if (!s) return s.error();
    if (auto b = yaml_bool(s.value())) return *b;
    return err(v, "expected a boolean for '" + key + "'");
}

Result<std::vector<const Node*>> Loader::get_list(const Node& v, const std::string& key) {
    if (v.kind != Node::Kind::Sequence) return err(v, "expected a list for '" + key + "'");
    std::vector<const Node*> out;
    for (int i : v.items) out.push_back(&node(i));
    return out;
}

Result<void> Loader::decode_macros(const Node& v, MacroSet& target, const MacroContext& ctx,
                                   const std::string& prefix) {
    auto pairs = pairs_of(v, "macros");
    if (!pairs) return pairs.error();
    for (auto [key, value] : pairs.value()) {
        if (value->kind != Node::Kind::Scalar)
            return err(*value, prefix + "macro '" + key->value + "' must have a scalar value");
        std::string text = is_null(*value) ? std::string() : value->value;
        auto r = declare_macro(target, key->value, text, ctx);
        if (!r) {
            // Name problems point at the key, reference problems at the value.
            const std::string& msg = r.error().message;
            bool name_problem = msg.rfind("invalid macro name", 0) == 0 ||
                                msg.rfind("macro name", 0) == 0 ||
                                msg.find("is already defined") != std::string::npos;
            return err(name_problem ? *key : *value, prefix + msg);
        }
    }
    return {};
}

/* `hooks.on_startup.preload`: the names, resolved once the models are known. */
Result<void> Loader::decode_hooks(const Node& v, const Scope& scope,
                                  std::vector<std::pair<std::string, const Node*>>& preload) {
    auto hooks = pairs_of(v, "hooks");
    if (!hooks) return hooks.error();
    for (auto [kn, value] : hooks.value()) {
        if (!known_key(*kn, {"on_startup"})) continue;
        if (is_null(*value)) continue;
        auto startup = pairs_of(*value, "hooks.on_startup");
        if (!startup) return startup.error();
        for (auto [sk, sv] : startup.value()) {
            if (!known_key(*sk, {"preload"})) continue;
            if (is_null(*sv)) continue;
            const std::string key = "hooks.on_startup.preload";
            auto items = get_list(*sv, key);
            if (!items) return items.error();
            for (const Node* item : items.value()) {
                auto s = get_string(*item, key, scope);
                if (!s) return s.error();
                preload.emplace_back(s.value(), item);
            }
        }
    }
    return {};
}

Result<Config> Loader::run() {
    if (auto r = check_duplicate_keys(); !r) return r.error();
    if (t_.root < 0 || is_null(node(t_.root))) return std::move(cfg_);
    const Node& root = node(t_.root);
    if (root.kind != Node::Kind::Mapping)
        return err(root, "the top level of the configuration must be a mapping");
    auto top = pairs_of(root, "configuration");
    if (!top) return top.error();

    // Sort the keys first: macros before anything that may use them, globals before models.
    std::map<std::string, Pair> seen;
    for (const Pair& p : top.value()) {
        const std::string& k = p.first->value;
        if (known_key(*p.first, kTopKeys) && !is_null(*p.second)) seen[k] = p;
    }
    auto get = [&](const char* k) -> const Node* {
        auto it = seen.find(k);
        return it == seen.end() ? nullptr : it->second.second;
    };

    MacroContext gctx;
    gctx.global = &global_macros_;
    if (const Node* v = get("macros")) {
        if (auto r = decode_macros(*v, global_macros_, gctx, ""); !r) return r.error();
    }
    Scope scope{"", &gctx};

    if (const Node* v = get("healthCheckTimeout")) {
        auto d = get_double(*v, "healthCheckTimeout", scope);
        if (!d) return d.error();
        cfg_.health_check_timeout_s = d.value() < 15 ? 15 : d.value();
    }
    if (const Node* v = get("startPort")) {
        auto n = get_int(*v, "startPort", scope);
        if (!n) return n.error();
        if (n.value() < 1 || n.value() > 65535)
            return err(*v, "startPort must be between 1 and 65535");
        cfg_.start_port = static_cast<int>(n.value());
    }
    if (const Node* v = get("globalTTL")) {
        auto n = get_int(*v, "globalTTL", scope);
        if (!n) return n.error();
        if (n.value() < 0) return err(*v, "globalTTL must be >= 0");
        cfg_.global_ttl_s = static_cast<int>(n.value());
    }
    if (const Node* v = get("unloadTimeout")) {
        auto d = get_double(*v, "unloadTimeout", scope);
        if (!d) return d.error();
        if (d.value() < 0) return err(*v, "unloadTimeout must be >= 0");
        cfg_.unload_timeout_s = d.value() == 0 ? 10 : d.value();
    }
    if (const Node* v = get("queueTimeout")) {
        auto d = get_double(*v, "queueTimeout", scope);
        if (!d) return d.error();
        if (d.value() < 0) return err(*v, "queueTimeout must be >= 0");
        cfg_.queue_timeout_s = d.value();
    }
    if (cfg_.queue_timeout_s == 0) cfg_.queue_timeout_s = cfg_.health_check_timeout_s;
    if (const Node* v = get("logLevel")) {
        auto s = get_string(*v, "logLevel", scope);
        if (!s) return s.error();
        const std::string& l = s.value();
        if (l != "debug" && l != "info" && l != "warn" && l != "error")
            return err(*v, "logLevel must be one of debug, info, warn, error");
        cfg_.log_level = l;
    }
    if (const Node* v = get("metricsMaxInMemory")) {
        auto n = get_int(*v, "metricsMaxInMemory", scope, 0, 1000000);
        if (!n) return n.error();
        cfg_.metrics_max_in_memory = static_cast<int>(n.value());
    }
    if (const Node* v = get("backend")) {
        auto text = get_string(*v, "backend", scope);
        if (!text) return text.error();
        if (!parse_backend(text.value(), cfg_.backend))
            return err(*v, "backend must be auto, scope or fork");
    }
    if (const Node* v = get("logTimeFormat")) {
        auto s = get_string(*v, "logTimeFormat", scope);
        if (!s) return s.error();
        LogTimeFormat f;
        if (!parse_log_time_format(s.value(), f))
            return err(*v, "logTimeFormat: unknown format '" + s.value() +
                               "' (ansic, unixdate, rubydate, rfc822, rfc822z, rfc850, rfc1123, "
                               "rfc1123z, rfc3339, rfc3339nano, kitchen, stamp, stampmilli, "
                               "stampmicro, stampnano)");
        cfg_.log_time_format = s.value();
    }
    if (const Node* v = get("logRequests")) {
        auto b = get_bool(*v, "logRequests", scope);
        if (!b) return b.error();
        cfg_.log_requests = b.value();
        cfg_.server.log_requests = b.value();
    }
    if (const Node* v = get("captureBuffer")) {
        auto d = get_double(*v, "captureBuffer", scope);
        if (!d) return d.error();
        if (d.value() < 0) return err(*v, "captureBuffer must be >= 0 (MB; 0: no captures)");
        cfg_.capture_buffer_mb = d.value();
    }
    if (const Node* v = get("upstream"))
        if (auto r = decode_upstream(*v, scope); !r) return r.error();
    if (const Node* v = get("ui"))
        if (auto r = decode_ui(*v, scope); !r) return r.error();
    if (const Node* v = get("performance"))
        if (auto r = decode_performance(*v, scope); !r) return r.error();
    if (const Node* v = get("store"))
        if (auto r = decode_store(*v, scope); !r) return r.error();
    if (auto res = RegexList::compile(cfg_.ignore_paths); res) cfg_.ignore_path_res = res.value();
    if (const Node* v = get("logToStdout")) {
        auto s = get_string(*v, "logToStdout", scope);
        if (!s) return s.error();
        const std::string& l = s.value();
        if (l != "proxy" && l != "upstream" && l != "both" && l != "none")
            return err(*v, "logToStdout must be one of proxy, upstream, both, none");
        cfg_.log_to_stdout = l;
    }
    for (const char* k : {"sendLoadingState", "includeAliasesInList"}) {
        if (const Node* v = get(k)) {
            auto b = get_bool(*v, k, scope);
            if (!b) return b.error();
            (std::string_view(k) == "sendLoadingState" ? cfg_.send_loading_state
                                                       : cfg_.include_aliases_in_list) = b.value();
        }
    }
    if (const Node* v = get("apiKeys")) {
        auto items = get_list(*v, "apiKeys");
        if (!items) return items.error();
        for (const Node* item : items.value()) {
            auto s = is_null(*item) ? Result<std::string>(std::string())
                                    : get_string(*item, "apiKeys", scope);
            if (!s) return s.error();
            const std::string& key = s.value();
            if (key.empty()) return err(*item, "apiKeys: empty key");
            for (unsigned char c : key) {
                if (c == ' ' || (c >= '\t' && c <= '\r'))
                    return err(*item, "apiKeys: key contains whitespace");
                if (c < 0x20 || c == 0x7f)
                    return err(*item, "apiKeys: key contains a control character");
            }
            if (std::find(cfg_.api_keys.begin(), cfg_.api_keys.end(), key) == cfg_.api_keys.end())
                cfg_.api_keys.push_back(key);
        }
    }
    std::vector<std::pair<std::string, const Node*>> preload;
    if (const Node* v = get("hooks")) {
        if (auto r = decode_hooks(*v, scope, preload); !r) return r.error();
    }
    if (const Node* v = get("server")) {
        if (auto r = decode_server(*v, scope); !r) return r.error();
    }

    std::vector<std::pair<std::string, const Node*>> alias_nodes; // file order
    if (const Node* v = get("models")) {
        auto models = pairs_of(*v, "models");
        if (!models) return models.error();
        for (auto [kn, value] : models.value()) {
            ModelConfig m;
            m.id = kn->value;
            m.pos = kn->pos;
            if (m.id.empty()) return err(*kn, "empty model id");
            if (has_space_or_control(m.id))
                return err(*kn, "model id '" + m.id +
                                    "' must not contain whitespace or control characters");
            size_t first_alias = alias_nodes.size();
            if (auto r = decode_model(*kn, *value, m, alias_nodes); !r) return r.error();
            for (size_t i = first_alias; i < alias_nodes.size(); ++i) {
                const auto& [alias, an] = alias_nodes[i];
                if (cfg_.aliases.count(alias))
                    return err(*an, "duplicate alias '" + alias + "' found in model: " + m.id);
                cfg_.aliases[alias] = m.id;
            }
            cfg_.models.emplace(m.id, std::move(m));
        }
        for (const auto& [alias, an] : alias_nodes) {
            if (cfg_.models.count(alias))
                return err(*an, "model '" + cfg_.aliases[alias] + "': alias '" + alias +
                                    "' is also a model id");
        }
    }

    if (auto r = decode_routing(get("routing"), get("groups"), get("matrix"), scope); !r)
        return r.error();
    if (const Node* v = get("peers"))
        if (auto r = decode_peers(*v, scope); !r) return r.error();
    if (const Node* v = get("selectors"))
        if (auto r = decode_selectors(*v, scope); !r) return r.error();
    if (const Node* v = get("profiles"))
        if (auto r = decode_profiles(*v, scope); !r) return r.error();
    if (const Node* v = get("defaultProfile"))
        if (auto r = decode_default_profile(*v, scope); !r) return r.error();

    if (const Node* v = get("peers"))
        if (auto r = check_peer_namespace(*v); !r) return r.error();

    // Preloading names a model, an alias, or a selector (its first target); the original drops
    // an unknown name without a word, we refuse it.
    for (const auto& [name, item] : preload) {
        const ModelConfig* m = cfg_.resolve(name);
        if (const SelectorConfig* sel = cfg_.selector(name); !m && sel)
            m = cfg_.resolve(sel->models.front());
        if (!m) return err(*item, "hooks.on_startup.preload: unknown model '" + name + "'");
        if (std::find(cfg_.preload.begin(), cfg_.preload.end(), m->id) == cfg_.preload.end())
            cfg_.preload.push_back(m->id);
    }
    std::stable_sort(cfg_.warnings.begin(), cfg_.warnings.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                         return std::pair(a.pos.line, a.pos.col) < std::pair(b.pos.line, b.pos.col);
                     });
    return std::move(cfg_);
}

} // namespace detail

Result<Config> load_config_from_string(const std::string& yaml, const std::string& name) {
    auto tree = detail::parse_yaml(yaml, name);
    if (!tree) return tree.error();
    detail::Loader loader(tree.value(), name);
    auto cfg = loader.run();
    if (cfg) cfg.value().path = name;
    return cfg;
}

Result<Config> load_config(const std::string& path) {
    auto text = detail::read_file(path);
    if (!text) return text.error();
    return load_config_from_string(text.value(), path);
}

} // namespace ls::config
