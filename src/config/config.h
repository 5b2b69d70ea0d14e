// Typed llama-swap configuration, loaded from the original's YAML format (libyaml).
// Nothing here does I/O after load_config() returns.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/result.h"

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

    int ttl_s = 0;                 // resolved: model ttl, or globalTTL when unset; 0 = never
    double unload_timeout_s = 10;  // resolved: model value, or the global one when 0/unset
    std::vector<std::string> env;  // "NAME=value", appended to the inherited environment
    std::vector<std::string> aliases;
    std::string use_model_name;
    std::string name;
    std::string description;
    bool unlisted = false;
    int concurrency_limit = 10; // waiting + in-flight cap; 0/unset -> 10
};

struct GroupConfig {
    std::string id;
    bool swap = true;
    bool exclusive = true;
    bool persistent = false;
    std::vector<std::string> members;
};

// Limits of the HTTP server (our extension: top-level `server:` block).
struct ServerConfig {
    size_t max_header_bytes = 64 * 1024;
    size_t max_body_bytes = 2048ull * 1024 * 1024;
    size_t body_memory_bytes = 1024 * 1024; // above this a request body spools to a memfd
    double header_timeout_s = 30;
    double body_timeout_s = 60;  // longest pause between two body reads
    double idle_timeout_s = 75;  // keep-alive connection with no request
    double shutdown_timeout_s = 30;
    int max_connections = 1024;
    std::string spool_dir = "/var/tmp"; // where large request bodies spool (O_TMPFILE)
};

struct Config {
    std::string path;
    double health_check_timeout_s = 120; // < 15 -> 15 like the original
    int start_port = 5800;
    int global_ttl_s = 0;
    double unload_timeout_s = 10;
    double queue_timeout_s = 0; // our key `queueTimeout`; 0/unset -> health_check_timeout_s
    std::string log_level = "info";
    ServerConfig server;

    std::map<std::string, ModelConfig> models; // sorted by id
    std::vector<GroupConfig> groups;           // explicit groups + "(default)" for the rest
    std::map<std::string, std::string> aliases; // alias -> model id

    std::vector<Diagnostic> warnings; // unknown keys etc.

    // Model id for a requested name (an id or an alias); nullptr when unknown.
    const ModelConfig* resolve(const std::string& name) const;
    // Group of a model (always found for a valid config).
    const GroupConfig* group_of(const std::string& model_id) const;
};

// Exit status for configuration errors (sysexits EX_CONFIG), like `nginx -t`.
constexpr int kExitConfig = 78;

// Loads and validates. On failure the Error message is "file:line:col: message".
Result<Config> load_config(const std::string& path);
// Same from a string (tests); `name` stands for the file name in diagnostics.
Result<Config> load_config_from_string(const std::string& yaml, const std::string& name);

} // namespace ls::config
