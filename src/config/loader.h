// The loader: typed Config from the YAML tree, one decode_* per section (their definitions
// live in one file per section: loader.cc for the top level, model_keys.cc, json_values.cc,
// server_keys.cc, groups.cc). Internal to src/config.
#pragma once

#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config/macros.h"
#include "config/values.h"
#include "config/yaml_tree.h"

namespace ls::config::detail {

// A configuration file's bytes ("PATH: cannot read config: REASON" when it cannot be read).
Result<std::string> read_file(const std::string& path);

// The keys each level reads (unknown ones get a warning with a "did you mean" guess).
inline const std::vector<std::string_view> kTopKeys = {"healthCheckTimeout",
                                                       "startPort",
                                                       "globalTTL",
                                                       "unloadTimeout",
                                                       "logLevel",
                                                       "backend",
                                                       "macros",
                                                       "models",
                                                       "groups",
                                                       "queueTimeout",
                                                       "server",
                                                       "logToStdout",
                                                       "sendLoadingState",
                                                       "includeAliasesInList",
                                                       "metricsMaxInMemory",
                                                       "apiKeys",
                                                       "hooks",
                                                       "routing",
                                                       "matrix",
                                                       "selectors",
                                                       "profiles",
                                                       "defaultProfile",
                                                       "upstream",
                                                       "ui",
                                                       "performance",
                                                       "store",
                                                       "captureBuffer",
                                                       "logTimeFormat",
                                                       "logRequests",
                                                       "peers"};
inline const std::vector<std::string_view> kModelKeys = {"cmd",
                                                         "cmdStop",
                                                         "proxy",
                                                         "checkEndpoint",
                                                         "ttl",
                                                         "unloadTimeout",
                                                         "env",
                                                         "aliases",
                                                         "name",
                                                         "useModelName",
                                                         "readyPattern",
                                                         "memoryMax",
                                                         "memoryHigh",
                                                         "cpuQuota",
                                                         "allowedCPUs",
                                                         "gpus",
                                                         "backend",
                                                         "description",
                                                         "unlisted",
                                                         "concurrencyLimit",
                                                         "metadata",
                                                         "capabilities",
                                                         "filters",
                                                         "timeouts",
                                                         "sendLoadingState",
                                                         "strip_params",
                                                         "upstreamConnections",
                                                         "macros",
                                                         "compat",
                                                         "tls"};

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxJsonValues = 100000;

/* Where a value is being decoded: prefix for semantic errors, macros for expansion. */
struct Scope {
    std::string prefix;                // e.g. "model 'm': " or ""
    const MacroContext* ctx = nullptr; // null: scalars are not expanded
};

class Loader {
public:
    Loader(const Tree& tree, std::string file) : t_(tree), file_(std::move(file)) {}

    Result<Config> run();

private:
    const Tree& t_;
    std::string file_;
    Config cfg_;
    MacroSet global_macros_;

    const Node& node(int i) const { return t_.nodes[static_cast<size_t>(i)]; }
    // The file a node was written in: a merged tree (--config-dir) holds several.
    const std::string& file_of(const Node& n) const {
        const auto i = static_cast<size_t>(n.file);
        return i < t_.files.size() ? t_.files[i] : file_;
    }
    Error err(const Node& n, std::string msg) const { return diag_error(file_of(n), n.pos, msg); }
    Error err(SourcePos pos, std::string msg) const { return diag_error(file_, pos, msg); }
    void warn(const Node& n, std::string msg) {
        cfg_.warnings.push_back(Diagnostic{file_of(n), n.pos, std::move(msg)});
    }
    // True when `key` is one of `known`; else warns "unknown key 'tll' (did you mean 'ttl'?)".
    bool known_key(const Node& key, const std::vector<std::string_view>& known);

    Result<std::vector<Pair>> pairs_of(const Node& map, const std::string& what, int depth = 0);
    Result<void> check_duplicate_keys();

    Result<std::string> scalar(const Node& v, const std::string& key, const Scope& scope,
                               const char* type, bool allow_pid = false);
    Result<std::string> get_string(const Node& v, const std::string& key, const Scope& scope,
                                   bool allow_pid = false) {
        return scalar(v, key, scope, "a string", allow_pid);
    }
    Result<long long> get_int(const Node& v, const std::string& key, const Scope& scope,
                              long long min = std::numeric_limits<int>::min(),
                              long long max = std::numeric_limits<int>::max());
    Result<double> get_double(const Node& v, const std::string& key, const Scope& scope);
    Result<bool> get_bool(const Node& v, const std::string& key, const Scope& scope);
    Result<std::vector<const Node*>> get_list(const Node& v, const std::string& key);

    Result<void> decode_macros(const Node& v, MacroSet& target, const MacroContext& ctx,
                               const std::string& prefix);
    Result<void> decode_server(const Node& v, const Scope& scope);
    Result<void> decode_model(const Node& key, const Node& v, ModelConfig& m,
                              std::vector<std::pair<std::string, const Node*>>& alias_nodes);
    Result<void> decode_command(const Node& v, const std::string& key, const Scope& scope,
                                bool allow_pid, std::vector<std::string>& out);
    // routing.cc: the router (groups or matrix, from `routing` or the legacy top-level keys)
    // and the scheduler.
    Result<void> decode_routing(const Node* routing, const Node* legacy_groups,
                                const Node* legacy_matrix, const Scope& scope);
    Result<void> decode_groups(const Node& v, const std::string& path, const Scope& scope);
    Result<void> decode_matrix(const Node& v, const std::string& path, const Scope& scope);
    Result<void> decode_scheduler(const Node& v, const Scope& scope);
    // selectors.cc, profiles.cc: after the routing (spillover targets must coexist).
    Result<void> decode_selectors(const Node& v, const Scope& scope);
    Result<void> check_spillover_coexistence(const SelectorConfig& sel, const Node& at);
    Result<void> decode_profiles(const Node& v, const Scope& scope);
    Result<void> decode_default_profile(const Node& v, const Scope& scope);
    // peers.cc
    Result<void> decode_peers(const Node& v, const Scope& scope);
    Result<void> decode_tls(const Node& v, const std::string& path, const Scope& scope,
                            TlsClientConfig& tls);
    Result<void> check_peer_namespace(const Node& at);
    // extra_keys.cc: upstream.ignorePaths, ui, performance, store.
    Result<void> decode_upstream(const Node& v, const Scope& scope);
    Result<void> decode_ui(const Node& v, const Scope& scope);
    Result<void> decode_performance(const Node& v, const Scope& scope);
    Result<void> decode_store(const Node& v, const Scope& scope);

    // Any YAML value as JSON (metadata, setParams values); `budget` caps the values emitted,
    // since anchors may be referenced many times (reported at `root`, the value of the key).
    Result<Json> to_json(const Node& v, const std::string& key, const Scope& scope, int depth,
                         size_t& budget, const Node& root);
    Result<Json> scalar_json(const Node& v, const std::string& key, const Scope& scope);
    // A mapping of request parameters as a JSON object; `model` may not be set.
    Result<Json> params_json(const Node& v, const std::string& key, const Scope& scope);
    Result<void> decode_capabilities(const Node& v, const Scope& scope, Capabilities& c);
    Result<void> decode_filters(const Node& v, const Scope& scope, ModelConfig& m,
                                std::string& strip_params, std::string& legacy_strip_params,
                                std::vector<std::pair<std::string, const Node*>>& by_id_keys);
    // `peer`: keys that act on a model process only (silence) are warned about.
    Result<void> decode_timeouts(const Node& v, const Scope& scope, UpstreamTimeouts& t,
                                 bool peer = false);
    Result<void> decode_hooks(const Node& v, const Scope& scope,
                              std::vector<std::pair<std::string, const Node*>>& preload);
};

} // namespace ls::config::detail
