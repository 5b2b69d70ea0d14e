// Typed llama-swap configuration, loaded from the original's YAML format (libyaml).
// Nothing here does I/O after load_config() returns.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

namespace ls {
class RegexList;
}
namespace ls::router::matrix {
class Program;
}

namespace ls::config {

struct SourcePos {
    int line = 0; // 1-based; 0 = unknown
    int col = 0;  // 1-based
};

// A config error or warning: rendered as "file:line:col: message".
struct Diagnostic {
    std::string file;
    SourcePos pos;
    std::string message;
    std::string render() const;
};

// `capabilities` of a model, reported in /v1/models (see llama-swap-behaviour.md §2).
struct Capabilities {
    bool set = false;             // the key was present
    std::vector<std::string> in;  // subset of text, audio, image
    std::vector<std::string> out; // subset of text, audio, image
    bool tools = false;
    bool reranker = false;
    long long context = 0; // 0 = unknown
};

// Keys a filter sets in a request body: the compact JSON object text (for messages and
// comparisons), and its members with their values as JSON text, which the proxy inserts
// as they are (nothing parsed per request; numbers keep the digits the config wrote).
struct ParamSet {
    struct Member {
        std::string key;
        std::string value_json;
    };
    std::string json; // "" when unset
    std::vector<Member> members;
};

// `filters` of a model: edits applied to JSON request bodies before they go upstream.
struct Filters {
    // `stripParams`: comma-separated top-level keys to delete ("model" is never deleted).
    // The legacy key `strip_params` is accepted too.
    std::vector<std::string> strip_params;
    // `setParams`: keys set or overridden; "model" is refused (error at load).
    ParamSet set_params;
    // `setParamsByID`: requested name -> keys applied after setParams when the request named
    // the model by that key. Keys other than the model's own id become aliases of the model
    // (error when a key equals another model's id or alias).
    std::map<std::string, ParamSet> set_params_by_id;
    bool empty() const {
        return strip_params.empty() && set_params.json.empty() && set_params_by_id.empty();
    }
};

// `timeouts` of a model's upstream connection, in seconds; 0 disables a timeout.
struct UpstreamTimeouts {
    double connect_s = 30;
    double keepalive_s = 30;      // TCP keep-alive probes on idle upstream connections after this
    double response_header_s = 0; // time from request sent to response head (504 on expiry)
    double idle_conn_s = 90;      // pooled keep-alive connection lifetime
    double tls_handshake_s = 10;  // https:// upstreams: from connected to the TLS handshake done
    // The longest an upstream may send nothing on a request in progress before the daemon
    // asks the model whether it still works (a wedged one is restarted). Models only.
    double silence_s = 60;
};

// `tls` of an https:// upstream or peer (ours): the certificate is verified against the
// system's CAs (or `caFile`), with the host name of the URL; `insecure: true` skips both.
struct TlsClientConfig {
    std::string ca_file;
    bool insecure = false;
};

// Resource fences of a model's process (a systemd scope or the fork backend's cgroup).
struct ResourceLimits {
    uint64_t memory_max = 0;        // `memoryMax` bytes (K/M/G/T suffixes); 0 = none
    uint64_t memory_high = 0;       // `memoryHigh`: throttling threshold; 0 = none
    unsigned cpu_quota_percent = 0; // `cpuQuota` "250%" = 2.5 CPUs; 0 = none
    std::string allowed_cpus;       // `allowedCPUs` "0-7,16"
    // `gpus`: GPU indexes in CUDA order → CUDA_VISIBLE_DEVICES and device fencing of the
    // other /dev/nvidia<N>. Unset (gpus_set false): no GPU fencing.
    std::vector<int> gpus;
    bool gpus_set = false;
};

// How a model's process is started: `scope` = a transient systemd scope unit per model (via
// the service manager), `fork` = our own child in its own cgroup when we may create one,
// `auto` = scope when a service manager is reachable, else fork.
enum class Backend { Auto, Scope, Fork };

struct ModelConfig {
    std::string id;
    SourcePos pos; // position of the model's key

    // `cmd` after comment stripping, macro expansion (user macros, ${env.X}, ${MODEL_ID})
    // and POSIX word splitting. Words may still contain the literal "${PORT}", replaced at
    // start time by the port the supervisor picks.
    std::vector<std::string> cmd;
    std::string cmd_text; // the expanded command line as one string (for /running and logs)
    // `cmdStop`, split the same way; words may contain the literal "${PID}" and "${PORT}".
    std::vector<std::string> cmd_stop;
    // Upstream base URL, e.g. "http://127.0.0.1:${PORT}" (default "http://localhost:${PORT}").
    std::string proxy;
    // Path appended to proxy for readiness; empty when `checkEndpoint: none`.
    std::string check_endpoint = "/health";
    bool uses_port = false; // cmd or proxy contain ${PORT}

    int ttl_s = 0;                // resolved: model ttl, or globalTTL when unset; 0 = never
    double unload_timeout_s = 10; // resolved: model value, or the global one when 0/unset
    std::vector<std::string> env; // "NAME=value", appended to the inherited environment
    std::vector<std::string> aliases;
    std::string use_model_name;
    std::string name;
    std::string description;
    bool unlisted = false;
    int concurrency_limit = 10; // waiting + in-flight cap; 0/unset -> 10
    // `upstreamConnections`: most connections to the upstream at once (requests beyond wait
    // for one in arrival order). kAutoConnections: learned from llama-server's "http
    // threads: N" line; 0: no cap.
    static constexpr int kAutoConnections = -1;
    int upstream_connections = kAutoConnections;

    // `metadata`: any YAML value, as compact JSON text with types kept (numbers, bools,
    // null, strings, lists, maps); macros expanded in strings, and a string that is exactly
    // one macro whose value is a number/bool keeps that type. Empty string when unset.
    std::string metadata_json;
    Capabilities capabilities;
    Filters filters;
    UpstreamTimeouts timeouts;
    std::optional<bool> send_loading_state; // unset: the global sendLoadingState
    // `readyPattern`: a POSIX extended regex; an upstream output line matching it makes the
    // model Ready (llama-server prints "server is listening on" when it starts serving).
    std::string ready_pattern;
    ResourceLimits limits;
    std::optional<Backend> backend; // unset: the global `backend`
    TlsClientConfig tls;            // `proxy: https://...`
    // `compat.ignoreWebsockets`: WebSocket upgrades never start the model, are refused (409)
    // while it is not ready, and do not count as requests in flight.
    bool ignore_websockets = false; // forced for kComfyUiModelId
};

struct GroupConfig {
    std::string id;
    bool swap = true;
    bool exclusive = true;
    bool persistent = false;
    std::vector<std::string> members;
};

// `matrix` (top level, the original's legacy place) or `routing.router.settings.matrix`: which
// models may run together, as sets of a small DSL (src/router/matrix.h).
struct MatrixConfig {
    std::vector<std::pair<std::string, std::string>> vars; // key -> model id, in file order
    std::map<std::string, long long> evict_costs;          // model id -> cost (> 0)
    std::vector<std::pair<std::string, std::string>> sets; // name -> DSL, in file order
    std::shared_ptr<const router::matrix::Program> program;
    long long cost_of(const std::string& model_id) const {
        auto it = evict_costs.find(model_id);
        return it == evict_costs.end() ? 1 : it->second;
    }
};

enum class RouterKind { Group, Matrix };

// `routing.scheduler.settings.fifo`: the order in which waiting requests get their model.
struct SchedulerConfig {
    // `priority`: model id -> priority (higher first, arrival order within one; 0 unlisted).
    // Keys may be aliases: they are resolved here (the original accepts but never matches them).
    std::map<std::string, int> priority;
    // Ours: the starvation bound. A request waiting for a model that needs a swap lets the
    // running models take new requests of their own (collation: A A B B, not A B A B) for at
    // most `max_wait_s`; then, or once `max_skips` swaps for other models went ahead of it,
    // it goes next whatever the priorities and the other traffic. 0 disables each bound.
    double max_wait_s = 10;
    int max_skips = 3;
    int priority_of(const std::string& model_id) const {
        auto it = priority.find(model_id);
        return it == priority.end() ? 0 : it->second;
    }
};

// `routing` (and the legacy top-level `groups` / `matrix`).
struct RoutingConfig {
    RouterKind router = RouterKind::Group;
    MatrixConfig matrix; // router == Matrix
    SchedulerConfig scheduler;
};

// `peers.<id>`: another OpenAI-compatible server (another llama-swap, OpenRouter, ...) whose
// models are reachable as "<peer>/<model>", or by the bare name when one peer alone has it.
struct PeerConfig {
    std::string id;
    std::string proxy;               // base URL, http:// or https://
    std::vector<std::string> models; // as the peer names them (duplicates dropped)
    std::string api_key;             // sent as Bearer and x-api-key
    Filters filters;
    UpstreamTimeouts timeouts; // responseHeader defaults to 60 s for peers
    TlsClientConfig tls;
};

// Where a name goes when it is a peer's model.
struct PeerRoute {
    const PeerConfig* peer = nullptr;
    std::string model; // the peer's own name for it
    std::string fqn() const { return peer->id + "/" + model; }
};

// `selectors.<id>`: a virtual model id that picks one of its targets per request.
enum class SelectorStrategy { Pin, Warm, Spillover };
struct SelectorConfig {
    std::string id;
    SelectorStrategy strategy = SelectorStrategy::Pin;
    std::vector<std::string> targets; // as written (ids or aliases: alias filters apply)
    std::vector<std::string> models;  // the model id of each target, same order
    int spillover = 1;                // requests per active target before the next one
    std::string name;
    std::string description;
    bool unlisted = false;
    std::string metadata_json; // `metadata` as compact JSON ("" when unset)
};
const char* to_string(SelectorStrategy s);

// `profiles.<name>`: pins that rewrite requested model names while the profile is active.
struct ProfileConfig {
    std::string id;
    std::string description;
    std::map<std::string, std::string> pins; // requested name -> target ("": disabled)
};

// Limits of the HTTP server (our extension: top-level `server:` block).
struct ServerConfig {
    size_t max_header_bytes = 64 * 1024;
    size_t max_body_bytes = 2048ull * 1024 * 1024;
    size_t body_memory_bytes = 1024 * 1024; // above this a request body spools to a memfd
    double header_timeout_s = 30;
    double body_timeout_s = 60; // longest pause between two body reads
    double idle_timeout_s = 75; // keep-alive connection with no request
    double shutdown_timeout_s = 30;
    int max_connections = 1024;
    std::string spool_dir = "/var/tmp"; // where large request bodies spool (O_TMPFILE)
    bool log_requests = true;           // the top-level `logRequests: false` turns it off
};

struct Config {
    std::string path;
    double health_check_timeout_s = 120; // < 15 -> 15 like the original
    int start_port = 5800;
    int global_ttl_s = 0;
    double unload_timeout_s = 10;
    double queue_timeout_s = 0; // our key `queueTimeout`; 0/unset -> health_check_timeout_s
    std::string log_level = "info";
    std::string log_to_stdout = "proxy"; // proxy | upstream | both | none
    bool send_loading_state = false;
    bool include_aliases_in_list = false;
    int metrics_max_in_memory = 1000; // activity records kept (`metricsMaxInMemory`)
    // `apiKeys`: when non-empty every route but /health needs one of them. Empty keys and
    // keys containing whitespace are errors.
    std::vector<std::string> api_keys;
    // `hooks.on_startup.preload`: model ids (aliases resolved to ids at load; an unknown name
    // is an error, unlike the original which drops it silently).
    std::vector<std::string> preload;
    Backend backend = Backend::Auto;
    ServerConfig server;

    std::map<std::string, ModelConfig> models; // sorted by id
    std::vector<GroupConfig> groups;           // group router: explicit + "(default)"
    RoutingConfig routing;
    std::map<std::string, PeerConfig> peers;
    std::map<std::string, SelectorConfig> selectors;
    std::map<std::string, ProfileConfig> profiles;
    // `defaultProfile` (ours; the original has it only as a proposal): active at start-up and
    // after a reload; "" for none.
    std::string default_profile;

    // `upstream.ignorePaths`: /upstream/<model>/<path> paths (regular expressions, unanchored)
    // that never start a model: 409 while it is not ready. The original's default list.
    std::vector<std::string> ignore_paths = {".*\\.(js|json|css|png|gif|jpg|jpeg|ico|txt)$"};
    std::shared_ptr<const RegexList> ignore_path_res; // compiled `ignore_paths`
    std::string log_time_format;      // `logTimeFormat`: a Go layout name, "" for none
    std::optional<bool> log_requests; // `logRequests: false` turns the request log off
    // `ui.activity.session_id`: headers the web UI groups activity by.
    std::vector<std::string> ui_session_headers = {"X-Session-ID", "X-Litellm-Session-Id"};
    double capture_buffer_mb = 5;               // `captureBuffer` (MB; 0: no captures)
    bool performance_disabled = false;          // `performance.disabled`
    double performance_every_s = 5;             // `performance.every` (at least 5 s)
    std::string store_path;                     // `store.path`
    std::map<std::string, std::string> aliases; // alias -> model id

    std::vector<Diagnostic> warnings; // unknown keys etc.

    // Model id for a requested name (an id or an alias); nullptr when unknown.
    const ModelConfig* resolve(const std::string& name) const;
    // A peer model by its full name ("peer/model", first) or a bare name only one peer has.
    // Local ids and aliases win over both: callers try resolve() first.
    std::optional<PeerRoute> resolve_peer(const std::string& name) const;
    // The full names of a bare name several peers have (empty when fewer than two do).
    std::vector<std::string> peers_offering(const std::string& bare) const;
    const SelectorConfig* selector(const std::string& name) const {
        auto it = selectors.find(name);
        return it == selectors.end() ? nullptr : &it->second;
    }
    // Group of a model (always found for a valid config).
    const GroupConfig* group_of(const std::string& model_id) const;
};

// Exit status for configuration errors (sysexits EX_CONFIG), like `nginx -t`.
constexpr int kExitConfig = 78;

// The model /comfyui/ serves (the original's fixed id); its concurrencyLimit is at least 50
// and compat.ignoreWebsockets is always on.
inline constexpr const char* kComfyUiModelId = "comfyui_auto";

// Loads and validates. On failure the Error message is "file:line:col: message".
Result<Config> load_config(const std::string& path);
// Same from a string (tests); `name` stands for the file name in diagnostics.
Result<Config> load_config_from_string(const std::string& yaml, const std::string& name);

// Where the configuration comes from, like the original's -config and -config-dir: a file, a
// directory of *.yaml / *.yml files, or both (the file first, then the directory's files in
// byte order of their names), merged into one configuration (sources.cc has the rules).
struct ConfigSources {
    std::string file; // "" when only a directory
    std::string dir;  // "" when only a file
};
// The regular files (or links to them) directly in `dir` whose name ends in .yaml or .yml
// (case matters; hidden files count), as "dir/name" in byte order; possibly none.
Result<std::vector<std::string>> list_config_dir(const std::string& dir);
// Every file to read, in merge order. Errors: the directory cannot be read, the file is also
// one of the directory's, no file at all.
Result<std::vector<std::string>> list_config_sources(const ConfigSources& sources);
// "FILE", "N files in DIR" or "FILE + N files in DIR".
std::string describe_config_sources(const ConfigSources& sources, size_t dir_files);
// Reads, merges and loads every source; Config::path is their description. With only a file,
// exactly load_config(file). Errors and warnings name the file each node was written in.
Result<Config> load_config_sources(const ConfigSources& sources);
// The merge and the load without I/O (tests): (file name, text) in merge order.
Result<Config> load_config_texts(const std::vector<std::pair<std::string, std::string>>& files);

} // namespace ls::config
