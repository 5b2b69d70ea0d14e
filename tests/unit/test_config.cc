// Loading and validation of the YAML configuration (src/config/config.h).
#include <criterion/criterion.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

#include "config/config.h"
#include "config_test_util.h"

using namespace ls::config;
using namespace ls::config::test;

static void expect_words(const std::vector<std::string>& got,
                         const std::vector<std::string>& want) {
    cr_assert_eq(got.size(), want.size(), "%zu words, expected %zu", got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        const std::string& g = got[i];
        const std::string& w = want[i];
        cr_assert_str_eq(g.c_str(), w.c_str(), "word %zu", i);
    }
}

static const ModelConfig& model(const Config& c, const char* id) {
    auto it = c.models.find(id);
    cr_assert(it != c.models.end(), "model %s missing", id);
    return it->second;
}

Test(config, full_valid_config) {
    setenv("LS_TEST_MODELS", "/srv/models", 1);
    Config c = load_ok(R"(
healthCheckTimeout: 60
startPort: 9000
globalTTL: 300
unloadTimeout: 5
queueTimeout: 45
logLevel: debug
macros:
  bin: /usr/bin/llama-server
  dir: ${env.LS_TEST_MODELS}
  base: ${bin} --port ${PORT} --host 127.0.0.1
server:
  maxHeaderBytes: 32768
  maxBodyBytes: 1000000
  bodyMemoryBytes: 4096
  headerTimeout: 10
  bodyTimeout: 20.5
  idleTimeout: 30
  shutdownTimeout: 5
  maxConnections: 64
models:
  qwen:
    macros:
      ctx: 8192
    cmd: |
      # the server
      ${base}
        -m "${dir}/Qwen 7B.gguf" \
        # --flash-attn
        -c ${ctx} --alias ${MODEL_ID}
    cmdStop: kill -TERM ${PID}
    proxy: http://127.0.0.1:${PORT}
    checkEndpoint: /v1/models
    ttl: 60
    unloadTimeout: 3
    env:
      - CUDA_VISIBLE_DEVICES=0
      - MODEL_DIR=${dir}
    aliases: [gpt-4o, "q7"]
    useModelName: qwen2.5
    name: Qwen ${ctx}
    description: A model
    unlisted: yes
    concurrencyLimit: 3
  embed:
    cmd: /usr/bin/embedder --listen 127.0.0.1:8081
    proxy: http://127.0.0.1:8081
    checkEndpoint: none
    ttl: -1
groups:
  main:
    swap: false
    exclusive: off
    persistent: True
    members: [qwen]
)");
    cr_assert_eq(c.warnings.size(), 0u);
    cr_assert_eq(c.health_check_timeout_s, 60);
    cr_assert_eq(c.start_port, 9000);
    cr_assert_eq(c.global_ttl_s, 300);
    cr_assert_eq(c.unload_timeout_s, 5);
    cr_assert_eq(c.queue_timeout_s, 45);
    cr_assert_str_eq(c.log_level.c_str(), "debug");
    cr_assert_str_eq(c.path.c_str(), "config.yaml");

    cr_assert_eq(c.server.max_header_bytes, 32768u);
    cr_assert_eq(c.server.max_body_bytes, 1000000u);
    cr_assert_eq(c.server.body_memory_bytes, 4096u);
    cr_assert_eq(c.server.header_timeout_s, 10);
    cr_assert_eq(c.server.body_timeout_s, 20.5);
    cr_assert_eq(c.server.idle_timeout_s, 30);
    cr_assert_eq(c.server.shutdown_timeout_s, 5);
    cr_assert_eq(c.server.max_connections, 64);

    cr_assert_eq(c.models.size(), 2u);
    const ModelConfig& q = model(c, "qwen");
    cr_assert_str_eq(q.id.c_str(), "qwen");
    cr_assert_eq(q.pos.line, 21);
    cr_assert_eq(q.pos.col, 3);
    expect_words(q.cmd, {"/usr/bin/llama-server", "--port", "${PORT}", "--host", "127.0.0.1", "-m",
                         "/srv/models/Qwen 7B.gguf", "-c", "8192", "--alias", "qwen"});
    cr_assert_str_eq(q.cmd_text.c_str(), "/usr/bin/llama-server --port ${PORT} --host 127.0.0.1 "
                                         "-m '/srv/models/Qwen 7B.gguf' -c 8192 --alias qwen");
    expect_words(q.cmd_stop, {"kill", "-TERM", "${PID}"});
    cr_assert_str_eq(q.proxy.c_str(), "http://127.0.0.1:${PORT}");
    cr_assert_str_eq(q.check_endpoint.c_str(), "/v1/models");
    cr_assert(q.uses_port);
    cr_assert_eq(q.ttl_s, 60);
    cr_assert_eq(q.unload_timeout_s, 3);
    expect_words(q.env, {"CUDA_VISIBLE_DEVICES=0", "MODEL_DIR=/srv/models"});
    expect_words(q.aliases, {"gpt-4o", "q7"});
    cr_assert_str_eq(q.use_model_name.c_str(), "qwen2.5");
    cr_assert_str_eq(q.name.c_str(), "Qwen 8192");
    cr_assert_str_eq(q.description.c_str(), "A model");
    cr_assert(q.unlisted);
    cr_assert_eq(q.concurrency_limit, 3);

    const ModelConfig& e = model(c, "embed");
    expect_words(e.cmd, {"/usr/bin/embedder", "--listen", "127.0.0.1:8081"});
    cr_assert_str_eq(e.check_endpoint.c_str(), "");
    cr_assert_not(e.uses_port);
    cr_assert_eq(e.ttl_s, 300); // -1: globalTTL
    cr_assert_eq(e.unload_timeout_s, 5);
    cr_assert_eq(e.cmd_stop.size(), 0u);

    cr_assert_eq(c.groups.size(), 2u);
    cr_assert_str_eq(c.groups[0].id.c_str(), "main");
    cr_assert_not(c.groups[0].swap);
    cr_assert_not(c.groups[0].exclusive);
    cr_assert(c.groups[0].persistent);
    expect_words(c.groups[0].members, {"qwen"});
    cr_assert_str_eq(c.groups[1].id.c_str(), "(default)");
    cr_assert(c.groups[1].swap);
    cr_assert(c.groups[1].exclusive);
    cr_assert_not(c.groups[1].persistent);
    expect_words(c.groups[1].members, {"embed"});

    cr_assert_eq(c.resolve("qwen"), &q);
    cr_assert_eq(c.resolve("gpt-4o"), &q);
    cr_assert_eq(c.resolve("q7"), &q);
    cr_assert_eq(c.resolve("embed"), &e);
    cr_assert_null(c.resolve("nope"));
    cr_assert_eq(c.group_of("qwen"), &c.groups[0]);
    cr_assert_eq(c.group_of("embed"), &c.groups[1]);
    cr_assert_null(c.group_of("nope"));
}

Test(config, defaults) {
    Config c = load_ok(R"(
models:
  m:
    cmd: llama-server --port ${PORT}
)");
    cr_assert_eq(c.health_check_timeout_s, 120);
    cr_assert_eq(c.start_port, 5800);
    cr_assert_eq(c.global_ttl_s, 0);
    cr_assert_eq(c.unload_timeout_s, 10);
    cr_assert_eq(c.queue_timeout_s, 120);
    cr_assert_str_eq(c.log_level.c_str(), "info");
    ServerConfig def;
    cr_assert_eq(c.server.max_header_bytes, def.max_header_bytes);
    cr_assert_eq(c.server.max_body_bytes, def.max_body_bytes);
    cr_assert_eq(c.server.max_connections, def.max_connections);
    cr_assert_eq(c.warnings.size(), 0u);

    const ModelConfig& m = model(c, "m");
    cr_assert_str_eq(m.proxy.c_str(), "http://localhost:${PORT}");
    cr_assert_str_eq(m.check_endpoint.c_str(), "/health");
    cr_assert(m.uses_port);
    cr_assert_eq(m.ttl_s, 0);
    cr_assert_eq(m.unload_timeout_s, 10);
    cr_assert_eq(m.concurrency_limit, 10);
    cr_assert_not(m.unlisted);
    cr_assert_eq(m.env.size(), 0u);
    cr_assert_eq(m.aliases.size(), 0u);
    cr_assert_eq(m.cmd_stop.size(), 0u);
    cr_assert_str_eq(m.cmd_text.c_str(), "llama-server --port ${PORT}");

    cr_assert_eq(c.groups.size(), 1u);
    cr_assert_str_eq(c.groups[0].id.c_str(), "(default)");
    expect_words(c.groups[0].members, {"m"});
}

Test(config, zero_values_fall_back) {
    Config c = load_ok(R"(
unloadTimeout: 0
globalTTL: 50
models:
  m:
    cmd: srv
    proxy: http://h:1
    unloadTimeout: 0
    concurrencyLimit: 0
    ttl: 0
)");
    cr_assert_eq(c.unload_timeout_s, 10);
    const ModelConfig& m = model(c, "m");
    cr_assert_eq(m.unload_timeout_s, 10);
    cr_assert_eq(m.concurrency_limit, 10);
    cr_assert_eq(m.ttl_s, 0); // explicit 0 = never, not globalTTL
}

Test(config, null_values_mean_unset) {
    Config c = load_ok(R"(
startPort:
globalTTL: ~
macros:
models:
  m:
    cmd: srv --port ${PORT}
    proxy: null
    aliases:
groups:
)");
    cr_assert_eq(c.start_port, 5800);
    cr_assert_str_eq(model(c, "m").proxy.c_str(), "http://localhost:${PORT}");
}

Test(config, empty_config) {
    Config c = load_ok("");
    cr_assert_eq(c.models.size(), 0u);
    cr_assert_eq(c.groups.size(), 0u);
    Config d = load_ok("# only a comment\n");
    cr_assert_eq(d.models.size(), 0u);
}

Test(config, health_check_timeout_clamp) {
    Config c = load_ok("healthCheckTimeout: 5\n");
    cr_assert_eq(c.health_check_timeout_s, 15);
    cr_assert_eq(c.queue_timeout_s, 15); // follows the clamped value
    Config d = load_ok("healthCheckTimeout: 15\n");
    cr_assert_eq(d.health_check_timeout_s, 15);
    Config e = load_ok("healthCheckTimeout: 300\nqueueTimeout: 0\n");
    cr_assert_eq(e.health_check_timeout_s, 300);
    cr_assert_eq(e.queue_timeout_s, 300);
}

Test(config, bool_spellings) {
    const char* truthy[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON"};
    for (const char* t : truthy) {
        std::string y = std::string("models:\n  m:\n    cmd: x\n    proxy: http://h:1\n"
                                    "    unlisted: ") +
                        t + "\n";
        Config c = load_ok(y.c_str());
        cr_assert(model(c, "m").unlisted, "%s", t);
    }
    const char* falsy[] = {"false", "no", "Off", "NO"};
    for (const char* f : falsy) {
        std::string y = std::string("models:\n  m:\n    cmd: x\n    proxy: http://h:1\n"
                                    "    unlisted: ") +
                        f + "\n";
        Config c = load_ok(y.c_str());
        cr_assert_not(model(c, "m").unlisted, "%s", f);
    }
}

Test(config, unknown_and_unsupported_keys_warn) {
    Config c = load_ok(R"(
logTimeFormat: RFC3339
colour: blue
models:
  m:
    cmd: x
    proxy: http://h:1
    compat:
      ignoreWebsockets: true
    cmnd: typo
server:
  maxConnections: 10
  maxConections: 10
groups:
  g:
    members: [m]
    swapp: true
peers:
  p: {proxy: "http://h:2", models: [x]}
)");
    cr_assert_eq(c.warnings.size(), 4u);
    cr_assert(model(c, "m").ignore_websockets);
    cr_assert_str_eq(c.log_time_format.c_str(), "RFC3339");
    cr_assert_eq(c.peers.size(), 1u);
    expect_warning(c, "config.yaml:2:1: unknown key 'colour'");
    expect_warning(c, "config.yaml:9:5: unknown key 'cmnd' (did you mean 'cmd'?)");
    expect_warning(
        c, "config.yaml:12:3: unknown key 'maxConections' (did you mean 'maxConnections'?)");
    // (sorted by position)
    std::string first = c.warnings[0].render();
    cr_assert_str_eq(first.c_str(), "config.yaml:2:1: unknown key 'colour'");
    cr_assert_eq(c.server.max_connections, 10);
    expect_warning(c, "config.yaml:16:5: unknown key 'swapp' (did you mean 'swap'?)");
}

Test(config, groups_and_default_group) {
    Config c = load_ok(R"(
models:
  a: {cmd: a, proxy: "http://h:1"}
  b: {cmd: b, proxy: "http://h:2"}
  c: {cmd: c, proxy: "http://h:3"}
  d: {cmd: d, proxy: "http://h:4", aliases: [dee]}
groups:
  second:
    members: [d, b]
  first:
    persistent: true
    members: []
)");
    cr_assert_eq(c.groups.size(), 3u);
    // Explicit groups keep the file order; "(default)" comes last, sorted.
    cr_assert_str_eq(c.groups[0].id.c_str(), "second");
    expect_words(c.groups[0].members, {"d", "b"});
    cr_assert_str_eq(c.groups[1].id.c_str(), "first");
    cr_assert_eq(c.groups[1].members.size(), 0u);
    cr_assert_str_eq(c.groups[2].id.c_str(), "(default)");
    expect_words(c.groups[2].members, {"a", "c"});
    cr_assert_eq(c.group_of("d"), &c.groups[0]);
    cr_assert_eq(c.group_of("a"), &c.groups[2]);
    cr_assert_eq(c.resolve("dee"), &c.models.at("d"));
}

Test(config, no_default_group_when_all_grouped) {
    Config c = load_ok(R"(
models:
  a: {cmd: a, proxy: "http://h:1"}
groups:
  g: {members: [a]}
)");
    cr_assert_eq(c.groups.size(), 1u);
    cr_assert_str_eq(c.groups[0].id.c_str(), "g");
}

Test(config, anchors_and_merge_keys) {
    Config c = load_ok(R"(
models:
  a: &common
    cmd: srv --port ${PORT} --alias ${MODEL_ID}
    ttl: 30
    env: [A=1]
  b:
    <<: *common
    ttl: 60
)");
    const ModelConfig& a = model(c, "a");
    const ModelConfig& b = model(c, "b");
    expect_words(a.cmd, {"srv", "--port", "${PORT}", "--alias", "a"});
    expect_words(b.cmd, {"srv", "--port", "${PORT}", "--alias", "b"});
    cr_assert_eq(a.ttl_s, 30);
    cr_assert_eq(b.ttl_s, 60);
    expect_words(b.env, {"A=1"});
}

Test(config, macros_in_other_values) {
    setenv("LS_TEST_PORT_BASE", "7000", 1);
    Config c = load_ok(R"(
startPort: ${env.LS_TEST_PORT_BASE}
macros:
  t: 90
  host: 127.0.0.1
models:
  m:
    cmd: srv --port ${PORT}
    proxy: http://${host}:${PORT}
    ttl: ${t}
    aliases:
      - ${MODEL_ID}-alias
)");
    cr_assert_eq(c.start_port, 7000);
    const ModelConfig& m = model(c, "m");
    cr_assert_str_eq(m.proxy.c_str(), "http://127.0.0.1:${PORT}");
    cr_assert_eq(m.ttl_s, 90);
    cr_assert_eq(c.resolve("m-alias"), &m);
}

Test(config, comments_may_hide_unknown_macros) {
    Config c = load_ok(R"(
models:
  m:
    cmd: |
      srv --port ${PORT}
      # --old ${removed}
)");
    expect_words(model(c, "m").cmd, {"srv", "--port", "${PORT}"});
}

Test(config, cmd_text_quotes_for_display) {
    Config c = load_ok(R"(
models:
  m:
    cmd: srv "a b" "" "it's" plain
    proxy: http://h:1
)");
    cr_assert_str_eq(model(c, "m").cmd_text.c_str(), "srv 'a b' '' 'it'\\''s' plain");
}

Test(config, cmdstop_port_requires_cmd_port) {
    expect_error(R"(
models:
  m:
    cmd: srv
    proxy: http://h:1
    cmdStop: stop --port ${PORT}
)",
                 "config.yaml:5:14: model 'm': cmdStop uses ${PORT} but cmd does not");
}

/* ---- errors, with exact positions ---- */

Test(config_errors, bad_yaml) {
    expect_error(R"(
models:
  m:
    cmd: a: b
)",
                 "config.yaml:3:11: mapping values are not allowed in this context");
    expect_error("models:\n\tm: 1\n",
                 "config.yaml:2:1: a tab character in the indentation: YAML indents with spaces "
                 "only");
    expect_error("a: *nope\n", "config.yaml:1:4: found undefined alias");
    expect_error("a: 1\n---\nb: 2\n", "config.yaml:2:1: multiple YAML documents are not supported");
    expect_error("- a\n", "config.yaml:1:1: the top level of the configuration must be a mapping");
}

Test(config_errors, wrong_types) {
    expect_error(R"(
models:
  m:
    cmd: x
    ttl: abc
)",
                 "config.yaml:4:10: expected a number for 'ttl'");
    expect_error(R"(
models:
  m:
    cmd: x
    ttl: [1]
)",
                 "config.yaml:4:10: expected a number for 'ttl'");
    expect_error(R"(
models:
  m:
    cmd: x
    ttl: 1.5
)",
                 "config.yaml:4:10: expected an integer for 'ttl'");
    expect_error(R"(
models:
  m:
    cmd: x
    unlisted: maybe
)",
                 "config.yaml:4:15: expected a boolean for 'unlisted'");
    expect_error(R"(
models:
  m:
    cmd: [a, b]
)",
                 "config.yaml:3:10: expected a string for 'cmd'");
    expect_error(R"(
models:
  m:
    cmd: x
    aliases: a
)",
                 "config.yaml:4:14: expected a list for 'aliases'");
    expect_error("models: [a]\n", "config.yaml:1:9: expected a mapping for 'models'");
    expect_error("models:\n  m: 1\n", "config.yaml:2:6: expected a mapping for 'models.m'");
    expect_error("healthCheckTimeout: 2m\n",
                 "config.yaml:1:21: expected a number for 'healthCheckTimeout'");
}

Test(config_errors, unknown_macro_in_cmd) {
    expect_error(R"(
models:
  m:
    cmd: |
      srv --port ${PORT}
        --ctx ${ctx}
)",
                 "config.yaml:3:10: model 'm': cmd: unknown macro '${ctx}'");
}

Test(config_errors, pid_outside_cmdstop) {
    expect_error(R"(
models:
  m:
    cmd: srv ${PID}
)",
                 "config.yaml:3:10: model 'm': cmd: ${PID} is only allowed in cmdStop");
}

Test(config_errors, unterminated_quote_in_cmd) {
    expect_error(R"(
models:
  m:
    cmd: srv "abc
    proxy: http://h:1
)",
                 "config.yaml:3:10: model 'm': cmd: unterminated double quote");
}

Test(config_errors, env_macro_unset) {
    unsetenv("LS_TEST_UNSET_VAR");
    expect_error(R"(
models:
  m:
    cmd: srv -m ${env.LS_TEST_UNSET_VAR}
)",
                 "config.yaml:3:10: model 'm': cmd: environment variable 'LS_TEST_UNSET_VAR' "
                 "is not set");
}

Test(config_errors, duplicate_alias) {
    expect_error(R"(
models:
  a:
    cmd: a
    proxy: http://h:1
    aliases: [x, y]
  b:
    cmd: b
    proxy: http://h:2
    aliases:
      - z
      - y
)",
                 "config.yaml:11:9: duplicate alias 'y' found in model: b");
}

Test(config_errors, alias_equals_model_id) {
    expect_error(R"(
models:
  a:
    cmd: a
    proxy: http://h:1
    aliases: [b]
  b:
    cmd: b
    proxy: http://h:2
)",
                 "config.yaml:5:15: model 'a': alias 'b' is also a model id");
}

Test(config_errors, proxy_port_without_cmd_port) {
    expect_error(R"(
models:
  m:
    cmd: srv --port 8080
    proxy: http://localhost:${PORT}
)",
                 "config.yaml:4:12: model 'm': proxy uses ${PORT} but cmd does not");
    // The default proxy uses ${PORT} too: reported at the model.
    expect_error(R"(
models:
  m:
    cmd: srv --port 8080
)",
                 "config.yaml:2:3: model 'm': proxy uses ${PORT} but cmd does not");
}

Test(config_errors, cmd_empty) {
    expect_error(R"(
models:
  m:
    proxy: http://h:1
)",
                 "config.yaml:2:3: model 'm': cmd is empty");
    expect_error(R"(
models:
  m:
    cmd: |
      # nothing but a comment
)",
                 "config.yaml:3:10: model 'm': cmd is empty");
    expect_error("models:\n  m:\n", "config.yaml:2:3: model 'm': cmd is empty");
}

Test(config_errors, group_unknown_member) {
    expect_error(R"(
models:
  a: {cmd: a, proxy: "http://h:1"}
groups:
  g:
    members:
      - a
      - ghost
)",
                 "config.yaml:7:9: group 'g': unknown model 'ghost'");
}

Test(config_errors, model_in_two_groups) {
    expect_error(R"(
models:
  a: {cmd: a, proxy: "http://h:1"}
  b: {cmd: b, proxy: "http://h:2"}
groups:
  A:
    members: [a]
  B:
    members: [b, a]
)",
                 "config.yaml:8:18: model 'a' is in groups 'A' and 'B'");
}

Test(config_errors, duplicate_group_member) {
    expect_error(R"(
models:
  a: {cmd: a, proxy: "http://h:1"}
groups:
  g:
    members: [a, a]
)",
                 "config.yaml:5:18: group 'g': duplicate member 'a'");
}

Test(config_errors, reserved_group_id) {
    expect_error(R"(
groups:
  (default):
    members: []
)",
                 "config.yaml:2:3: group id '(default)' is reserved (it holds the models of no "
                 "group)");
}

Test(config_errors, duplicate_key) {
    expect_error(R"(
models:
  m:
    cmd: a
    proxy: http://h:1
    cmd: b
)",
                 "config.yaml:5:5: duplicate key 'cmd'");
    expect_error(R"(
startPort: 1
startPort: 2
)",
                 "config.yaml:2:1: duplicate key 'startPort'");
    // Also inside sections that are otherwise ignored.
    expect_error(R"(
models:
  m:
    cmd: a
    proxy: http://h:1
    metadata:
      k: 1
      k: 2
)",
                 "config.yaml:7:7: duplicate key 'k'");
}

Test(config_errors, model_values) {
    expect_error(R"(
models:
  m:
    cmd: x
    ttl: -2
)",
                 "config.yaml:4:10: model 'm': invalid ttl -2: must be >= 0, or -1 for globalTTL");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    concurrencyLimit: -1
)",
                 "config.yaml:5:23: model 'm': concurrencyLimit must be >= 0");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    unloadTimeout: -1
)",
                 "config.yaml:5:20: model 'm': unloadTimeout must be >= 0");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    checkEndpoint: health
)",
                 "config.yaml:5:20: model 'm': checkEndpoint must start with '/' or be 'none'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: localhost:8080
)",
                 "config.yaml:4:12: model 'm': proxy must start with http:// or https://");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    env: [GOOD=1, "=bad"]
)",
                 "config.yaml:5:19: model 'm': env entry '=bad' is not NAME=value");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    env: [NOEQUALS]
)",
                 "config.yaml:5:11: model 'm': env entry 'NOEQUALS' is not NAME=value");
}

Test(config_errors, model_id) {
    expect_error(R"(
models:
  "bad id":
    cmd: x
)",
                 "config.yaml:2:3: model id 'bad id' must not contain whitespace or control "
                 "characters");
    expect_error("models:\n  \"tab\\tid\": {cmd: x}\n",
                 "config.yaml:2:3: model id 'tab\tid' must not contain whitespace or control "
                 "characters");
}

Test(config_errors, top_level_values) {
    expect_error("startPort: 70000\n", "config.yaml:1:12: startPort must be between 1 and 65535");
    expect_error("startPort: 0\n", "config.yaml:1:12: startPort must be between 1 and 65535");
    expect_error("globalTTL: -1\n", "config.yaml:1:12: globalTTL must be >= 0");
    expect_error("unloadTimeout: -1\n", "config.yaml:1:16: unloadTimeout must be >= 0");
    expect_error("queueTimeout: -1\n", "config.yaml:1:15: queueTimeout must be >= 0");
    expect_error("logLevel: verbose\n",
                 "config.yaml:1:11: logLevel must be one of debug, info, warn, error");
    expect_error("server:\n  maxConnections: 0\n",
                 "config.yaml:2:19: 'server.maxConnections' must be positive");
    expect_error("server:\n  bodyTimeout: -1\n",
                 "config.yaml:2:16: 'server.bodyTimeout' must be positive");
    expect_error("server:\n  maxBodyBytes: lots\n",
                 "config.yaml:2:17: expected a number for 'maxBodyBytes'");
}

Test(config_errors, macros) {
    expect_error("macros:\n  PORT: 1\n", "config.yaml:2:3: macro name 'PORT' is reserved");
    expect_error("macros:\n  MODEL_ID: x\n", "config.yaml:2:3: macro name 'MODEL_ID' is reserved");
    expect_error("macros:\n  a.b: x\n",
                 "config.yaml:2:3: invalid macro name 'a.b': must match ^[a-zA-Z0-9_-]+$ and be "
                 "shorter than 64 characters");
    expect_error("macros:\n  a: [1, 2]\n", "config.yaml:2:6: macro 'a' must have a scalar value");
    expect_error("macros:\n  a: ${b}\n  b: x\n",
                 "config.yaml:2:6: macro 'a' references unknown macro '${b}'");
    expect_error("macros:\n  a: x${a}\n",
                 "config.yaml:2:6: macro 'a' references unknown macro '${a}'");
    expect_error("macros: [a]\n", "config.yaml:1:9: expected a mapping for 'macros'");
    expect_error(R"(
models:
  m:
    cmd: x
    macros:
      PID: 1
)",
                 "config.yaml:5:7: model 'm': macro name 'PID' is reserved");
    expect_error(R"(
models:
  m:
    cmd: x
    macros:
      a: ${b}
      b: 1
)",
                 "config.yaml:5:10: model 'm': macro 'a' references unknown macro '${b}'");
}

Test(config, model_macros_override_and_extend_globals) {
    Config c = load_ok(R"(
macros:
  flags: -a
  ctx: 1
models:
  m:
    cmd: srv ${flags} -c ${ctx}
    proxy: http://h:1
    macros:
      flags: ${flags} -b
      ctx: 2
  n:
    cmd: srv ${flags} -c ${ctx}
    proxy: http://h:1
)");
    expect_words(model(c, "m").cmd, {"srv", "-a", "-b", "-c", "2"});
    expect_words(model(c, "n").cmd, {"srv", "-a", "-c", "1"});
}

Test(config_files, load_config_reads_a_file) {
    char path[] = "/tmp/ls-test-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "models:\n  m:\n    cmd: srv --port ${PORT}\n    ttl: x\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    auto r = load_config(path);
    unlink(path);
    cr_assert_not(r.ok());
    std::string expected = std::string(path) + ":4:10: expected a number for 'ttl'";
    const std::string& m = r.error().message;
    cr_assert_str_eq(m.c_str(), expected.c_str());
}

Test(config_files, load_config_valid_file_sets_path) {
    char path[] = "/tmp/ls-test-config-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char text[] = "models:\n  m:\n    cmd: srv --port ${PORT}\n";
    cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    auto r = load_config(path);
    unlink(path);
    cr_assert(r.ok());
    cr_assert_str_eq(r.value().path.c_str(), path);
}

Test(config_files, missing_file) {
    auto r = load_config("/nonexistent/ls-config.yaml");
    cr_assert_not(r.ok());
    const std::string& m = r.error().message;
    cr_assert_str_eq(m.c_str(),
                     "/nonexistent/ls-config.yaml: cannot read config: No such file or directory");
}

Test(config_files, directory) {
    auto r = load_config("/tmp");
    cr_assert_not(r.ok());
    const std::string& m = r.error().message;
    cr_assert_str_eq(m.c_str(), "/tmp: cannot read config: Is a directory");
}

Test(diagnostic, render) {
    Diagnostic d{"f.yaml", {3, 7}, "boom"};
    std::string s = d.render();
    cr_assert_str_eq(s.c_str(), "f.yaml:3:7: boom");
    Diagnostic n{"f.yaml", {}, "boom"};
    s = n.render();
    cr_assert_str_eq(s.c_str(), "f.yaml: boom");
}

/* ---- keys decoded beyond the first version: top level ---- */

Test(config_keys, top_level_defaults) {
    Config c = load_ok("models:\n  m:\n    cmd: srv --port ${PORT}\n");
    cr_assert_str_eq(c.log_to_stdout.c_str(), "proxy");
    cr_assert_not(c.send_loading_state);
    cr_assert_not(c.include_aliases_in_list);
    cr_assert_eq(c.api_keys.size(), 0u);
    cr_assert_eq(c.preload.size(), 0u);
    cr_assert_str_eq(c.server.spool_dir.c_str(), "/var/tmp");
    const ModelConfig& m = model(c, "m");
    cr_assert_str_eq(m.metadata_json.c_str(), "");
    cr_assert_not(m.capabilities.set);
    cr_assert(m.filters.empty());
    cr_assert_eq(m.timeouts.connect_s, 30);
    cr_assert_eq(m.timeouts.response_header_s, 0);
    cr_assert_eq(m.timeouts.idle_conn_s, 90);
    cr_assert_not(m.send_loading_state.has_value());
}

Test(config_keys, top_level_values) {
    setenv("LS_TEST_API_KEY", "sk-from-env", 1);
    Config c = load_ok(R"(
logToStdout: both
sendLoadingState: true
includeAliasesInList: yes
apiKeys:
  - sk-one
  - "${env.LS_TEST_API_KEY}"
  - ${keymacro}-x
  - sk-one
macros:
  keymacro: abc
hooks:
  on_startup:
    preload: [b-alias, a, b]
server:
  spoolDir: /srv/spool
models:
  a:
    cmd: srv --port ${PORT}
  b:
    cmd: srv --port ${PORT}
    aliases: [b-alias]
)");
    cr_assert_eq(c.warnings.size(), 0u);
    cr_assert_str_eq(c.log_to_stdout.c_str(), "both");
    cr_assert(c.send_loading_state);
    cr_assert(c.include_aliases_in_list);
    expect_words(c.api_keys, {"sk-one", "sk-from-env", "abc-x"}); // duplicates dropped
    expect_words(c.preload, {"b", "a"});                          // ids, each once
    cr_assert_str_eq(c.server.spool_dir.c_str(), "/srv/spool");

    const char* modes[] = {"proxy", "upstream", "none"};
    for (const char* mode : modes) {
        std::string y = std::string("logToStdout: ") + mode + "\n";
        Config d = load_ok(y.c_str());
        cr_assert_str_eq(d.log_to_stdout.c_str(), mode);
    }
}

Test(config_keys, hooks_unknown_keys_warn) {
    Config c = load_ok(R"(
hooks:
  on_shutdown: {}
  on_startup:
    preload:
    other: 1
)");
    cr_assert_eq(c.warnings.size(), 2u);
    expect_warning(c, "config.yaml:2:3: unknown key 'on_shutdown'");
    expect_warning(c, "config.yaml:5:5: unknown key 'other'");
    cr_assert_eq(c.preload.size(), 0u);
}

Test(config_keys_errors, top_level) {
    expect_error("logToStdout: file\n",
                 "config.yaml:1:14: logToStdout must be one of proxy, upstream, both, none");
    expect_error("sendLoadingState: maybe\n",
                 "config.yaml:1:19: expected a boolean for 'sendLoadingState'");
    expect_error("includeAliasesInList: 2\n",
                 "config.yaml:1:23: expected a boolean for 'includeAliasesInList'");
    expect_error("apiKeys: sk\n", "config.yaml:1:10: expected a list for 'apiKeys'");
    expect_error("apiKeys: [\"good\", \"\"]\n", "config.yaml:1:19: apiKeys: empty key");
    expect_error("apiKeys:\n  - ok\n  -\n", "config.yaml:3:4: apiKeys: empty key");
    expect_error(R"(
apiKeys:
  - ok
  - "has space"
)",
                 "config.yaml:3:5: apiKeys: key contains whitespace");
    expect_error("apiKeys: [\"tab\\there\"]\n",
                 "config.yaml:1:11: apiKeys: key contains whitespace");
    expect_error("apiKeys: [[a]]\n", "config.yaml:1:11: expected a string for 'apiKeys'");
    setenv("LS_TEST_SPACEY_KEY", "a b", 1);
    expect_error("apiKeys: [\"${env.LS_TEST_SPACEY_KEY}\"]\n",
                 "config.yaml:1:11: apiKeys: key contains whitespace");
    unsetenv("LS_TEST_UNSET_KEY");
    expect_error("apiKeys: [\"${env.LS_TEST_UNSET_KEY}\"]\n",
                 "config.yaml:1:11: apiKeys: environment variable 'LS_TEST_UNSET_KEY' is not set");
    expect_error("server:\n  spoolDir: spool\n",
                 "config.yaml:2:13: 'server.spoolDir' must be an absolute path");
    expect_error("server:\n  spoolDir: \"\"\n",
                 "config.yaml:2:13: 'server.spoolDir' must be an absolute path");
    expect_error("hooks: [a]\n", "config.yaml:1:8: expected a mapping for 'hooks'");
    expect_error("hooks:\n  on_startup:\n    preload: a\n",
                 "config.yaml:3:14: expected a list for 'hooks.on_startup.preload'");
}

Test(config_keys_errors, preload_unknown_model) {
    expect_error(R"(
hooks:
  on_startup:
    preload:
      - a
      - ghost
models:
  a: {cmd: x, proxy: "http://h:1"}
)",
                 "config.yaml:5:9: hooks.on_startup.preload: unknown model 'ghost'");
    // Without any models every name is unknown.
    expect_error("hooks: {on_startup: {preload: [a]}}\n",
                 "config.yaml:1:32: hooks.on_startup.preload: unknown model 'a'");
}

/* ---- metadata ---- */

Test(config_keys, metadata_types_and_macros) {
    Config c = load_ok(R"(
macros:
  ctx: 8192
  temp: 0.7
  flag: on
  word: hello
  big: 12345678901234567890
models:
  m:
    cmd: srv --port ${PORT}
    macros:
      layers: 99
    metadata:
      ctx: ${ctx}
      ctx_quoted: "${ctx}"
      ctx_text: ${ctx} tokens
      temp: ${temp}
      flag: ${flag}
      word: ${word}
      layers: ${layers}
      big: ${big}
      id: ${MODEL_ID}
      port: ${PORT}
      int: 42
      neg: -7
      hex: 0x1F
      octal: 0o17
      float: 1.5
      exp: 1e3
      huge: 99999999999999999999
      yes: yes
      Off: Off
      t: TRUE
      quoted_bool: "true"
      quoted_num: '42'
      nul: null
      tilde: ~
      empty:
      text: plain words
      version: 1.2.3
      inf: .inf
      list: [1, two, false, {a: ~}]
      nested:
        deep:
          - x: 1
      multi: |
        line
)");
    cr_assert_eq(c.warnings.size(), 0u);
    const char* expected =
        "{\"ctx\":8192,\"ctx_quoted\":\"8192\",\"ctx_text\":\"8192 tokens\",\"temp\":0.7,"
        "\"flag\":true,\"word\":\"hello\",\"layers\":99,\"big\":12345678901234567890,"
        "\"id\":\"m\",\"port\":\"${PORT}\",\"int\":42,\"neg\":-7,\"hex\":31,\"octal\":15,"
        "\"float\":1.5,\"exp\":1000,\"huge\":1e+20,\"yes\":true,\"Off\":false,\"t\":true,"
        "\"quoted_bool\":\"true\",\"quoted_num\":\"42\",\"nul\":null,\"tilde\":null,"
        "\"empty\":null,\"text\":\"plain words\",\"version\":\"1.2.3\",\"inf\":\".inf\","
        "\"list\":[1,\"two\",false,{\"a\":null}],\"nested\":{\"deep\":[{\"x\":1}]},"
        "\"multi\":\"line\\n\"}";
    cr_assert_str_eq(model(c, "m").metadata_json.c_str(), expected);
}

Test(config_keys, metadata_env_and_quoting) {
    setenv("LS_TEST_META_NUM", "12", 1);
    setenv("LS_TEST_META_BOOL", "false", 1);
    Config c = load_ok(R"(
macros:
  n: "3"
  e: ""
models:
  m:
    cmd: x
    proxy: http://h:1
    metadata:
      env_num: ${env.LS_TEST_META_NUM}
      env_bool: ${env.LS_TEST_META_BOOL}
      env_quoted: '${env.LS_TEST_META_NUM}'
      quoted_macro_value: ${n}
      empty_macro: ${e}
      two: ${n}${n}
      shell: ${HOME:-x}
)");
    // Only the expansion's text matters: a macro declared as "3" still yields a number.
    cr_assert_str_eq(model(c, "m").metadata_json.c_str(),
                     "{\"env_num\":12,\"env_bool\":false,\"env_quoted\":\"12\","
                     "\"quoted_macro_value\":3,\"empty_macro\":\"\",\"two\":\"33\","
                     "\"shell\":\"${HOME:-x}\"}");
}

Test(config_keys, metadata_any_value) {
    Config c = load_ok(R"(
models:
  a: {cmd: x, proxy: "http://h:1", metadata: [1, "x"]}
  b: {cmd: x, proxy: "http://h:1", metadata: hello}
  c: {cmd: x, proxy: "http://h:1", metadata: {}}
  d: {cmd: x, proxy: "http://h:1", metadata: ~}
  e:
    cmd: x
    proxy: http://h:1
    metadata: &meta
      k: "quote \" and \\ backslash"
  f:
    cmd: x
    proxy: http://h:1
    metadata:
      <<: *meta
      extra: 1
)");
    cr_assert_str_eq(model(c, "a").metadata_json.c_str(), "[1,\"x\"]");
    cr_assert_str_eq(model(c, "b").metadata_json.c_str(), "\"hello\"");
    cr_assert_str_eq(model(c, "c").metadata_json.c_str(), "{}");
    cr_assert_str_eq(model(c, "d").metadata_json.c_str(), "");
    cr_assert_str_eq(model(c, "e").metadata_json.c_str(),
                     "{\"k\":\"quote \\\" and \\\\ backslash\"}");
    cr_assert_str_eq(model(c, "f").metadata_json.c_str(),
                     "{\"extra\":1,\"k\":\"quote \\\" and \\\\ backslash\"}");
}

Test(config_keys_errors, metadata) {
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    metadata:
      a: [1, "${nope}"]
)",
                 "config.yaml:6:14: model 'm': metadata: unknown macro '${nope}'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    metadata:
      pid: ${PID}
)",
                 "config.yaml:6:12: model 'm': metadata: ${PID} is only allowed in cmdStop");
    // A self-referencing anchor cannot become JSON.
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    metadata: &loop [*loop]
)",
                 "config.yaml:5:15: model 'm': metadata: nested too deeply");
    // Anchors referenced over and over: capped rather than expanded without limit.
    expect_error(R"(
x1: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
x2: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
x3: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
x4: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
x5: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
models:
  m:
    cmd: x
    proxy: http://h:1
    metadata: [*e, *e]
)",
                 "config.yaml:10:15: model 'm': metadata: too many values");
}

/* ---- capabilities ---- */

Test(config_keys, capabilities) {
    Config c = load_ok(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    capabilities:
      in: [text, image, text]
      out: [text, audio]
      tools: true
      reranker: no
      context: 131072
      vision: true
  n:
    cmd: x
    proxy: http://h:1
    capabilities: {}
)");
    cr_assert_eq(c.warnings.size(), 1u);
    expect_warning(c, "config.yaml:11:7: unknown key 'vision'");
    const Capabilities& m = model(c, "m").capabilities;
    cr_assert(m.set);
    expect_words(m.in, {"text", "image"});
    expect_words(m.out, {"text", "audio"});
    cr_assert(m.tools);
    cr_assert_not(m.reranker);
    cr_assert_eq(m.context, 131072);
    const Capabilities& n = model(c, "n").capabilities;
    cr_assert(n.set);
    cr_assert_eq(n.in.size(), 0u);
    cr_assert_eq(n.context, 0);
}

Test(config_keys_errors, capabilities) {
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    capabilities:
      in: [text, video]
)",
                 "config.yaml:6:18: model 'm': capabilities.in: unknown modality 'video' "
                 "(expected text, audio or image)");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    capabilities:
      context: -1
)",
                 "config.yaml:6:16: model 'm': capabilities.context must be >= 0");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    capabilities:
      tools: maybe
)",
                 "config.yaml:6:14: expected a boolean for 'capabilities.tools'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    capabilities:
      out: text
)",
                 "config.yaml:6:12: expected a list for 'capabilities.out'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    capabilities: [text]
)",
                 "config.yaml:5:19: expected a mapping for 'capabilities'");
}

/* ---- filters ---- */

Test(config_keys, filters) {
    Config c = load_ok(R"(
macros:
  t: 0.2
models:
  m:
    cmd: srv --port ${PORT}
    aliases: [listed]
    filters:
      stripParams: " temperature, model ,, top_p,temperature "
      setParams:
        temperature: ${t}
        stop: ["</s>", "\n"]
        chat_template_kwargs: {enable_thinking: false}
      setParamsByID:
        ${MODEL_ID}:
          seed: 1
        m-fast:
          temperature: 0.9
        listed:
        "${MODEL_ID}-think": {chat_template_kwargs: {enable_thinking: true}}
  other:
    cmd: srv --port ${PORT}
)");
    cr_assert_eq(c.warnings.size(), 0u);
    const ModelConfig& m = model(c, "m");
    const Filters& f = m.filters;
    cr_assert_not(f.empty());
    expect_words(f.strip_params, {"temperature", "top_p"});
    cr_assert_str_eq(f.set_params.json.c_str(),
                     "{\"temperature\":0.2,\"stop\":[\"</s>\",\"\\n\"],"
                     "\"chat_template_kwargs\":{\"enable_thinking\":false}}");
    cr_assert_eq(f.set_params_by_id.size(), 4u);
    cr_assert_str_eq(f.set_params_by_id.at("m").json.c_str(), "{\"seed\":1}");
    cr_assert_str_eq(f.set_params_by_id.at("m-fast").json.c_str(), "{\"temperature\":0.9}");
    cr_assert_str_eq(f.set_params_by_id.at("listed").json.c_str(), "{}");
    cr_assert_str_eq(f.set_params_by_id.at("m-think").json.c_str(),
                     "{\"chat_template_kwargs\":{\"enable_thinking\":true}}");
    // Keys other than the id become aliases (a listed alias is not added twice).
    expect_words(m.aliases, {"listed", "m-fast", "m-think"});
    cr_assert_eq(c.resolve("m-fast"), &m);
    cr_assert_eq(c.resolve("m-think"), &m);
    cr_assert_eq(c.resolve("listed"), &m);
    cr_assert_str_eq(c.aliases.at("m-fast").c_str(), "m");
    cr_assert_eq(c.aliases.size(), 3u);
    cr_assert(model(c, "other").filters.empty());
}

Test(config_keys, filters_preload_by_setparamsbyid_alias) {
    Config c = load_ok(R"(
hooks:
  on_startup:
    preload: [fast]
models:
  m:
    cmd: srv --port ${PORT}
    filters:
      setParamsByID:
        fast: {temperature: 0}
)");
    expect_words(c.preload, {"m"});
}

Test(config_keys, filters_strip_params_spellings) {
    Config c = load_ok(R"(
models:
  a: {cmd: x, proxy: "http://h:1", strip_params: "a, b"}
  b: {cmd: x, proxy: "http://h:1", filters: {strip_params: c}}
  c: {cmd: x, proxy: "http://h:1", strip_params: z, filters: {stripParams: d, strip_params: e}}
  d: {cmd: x, proxy: "http://h:1", filters: {stripParams: "model, ,"}}
  e: {cmd: x, proxy: "http://h:1", filters: {setParams: {}, extra: 1}}
)");
    expect_words(model(c, "a").filters.strip_params, {"a", "b"});
    expect_words(model(c, "b").filters.strip_params, {"c"});
    expect_words(model(c, "c").filters.strip_params, {"d"});
    cr_assert(model(c, "d").filters.empty());
    cr_assert(model(c, "e").filters.empty());
    cr_assert_eq(c.warnings.size(), 1u);
    expect_warning(c, "config.yaml:6:61: unknown key 'extra'");
}

Test(config_keys_errors, filters) {
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      setParams:
        temperature: 1
        model: other
)",
                 "config.yaml:8:9: model 'm': filters.setParams may not set 'model'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      setParamsByID:
        fast: {model: other}
)",
                 "config.yaml:7:16: model 'm': filters.setParamsByID may not set 'model'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      setParams: [a]
)",
                 "config.yaml:6:18: expected a mapping for 'filters.setParams'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      setParamsByID:
        fast: 1
)",
                 "config.yaml:7:15: expected a mapping for 'filters.setParamsByID.fast'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      setParams:
        temperature: ${nope}
)",
                 "config.yaml:7:22: model 'm': filters.setParams: unknown macro '${nope}'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      setParamsByID:
        ${nope}: {}
)",
                 "config.yaml:7:9: model 'm': filters.setParamsByID: unknown macro '${nope}'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      stripParams: [a, b]
)",
                 "config.yaml:6:20: expected a string for 'filters.stripParams'");
    // Two keys naming the same id once macros are expanded.
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    filters:
      setParamsByID:
        ${MODEL_ID}: {}
        m: {}
)",
                 "config.yaml:8:9: model 'm': filters.setParamsByID: duplicate key 'm'");
}

Test(config_keys_errors, filters_setparamsbyid_collisions) {
    // A key naming another model (defined before or after).
    expect_error(R"(
models:
  a:
    cmd: x
    proxy: http://h:1
    filters:
      setParamsByID:
        b: {temperature: 1}
  b:
    cmd: x
    proxy: http://h:2
)",
                 "config.yaml:7:9: model 'a': alias 'b' is also a model id");
    expect_error(R"(
models:
  b:
    cmd: x
    proxy: http://h:2
  a:
    cmd: x
    proxy: http://h:1
    filters:
      setParamsByID:
        b: {temperature: 1}
)",
                 "config.yaml:10:9: model 'a': alias 'b' is also a model id");
    // A key naming another model's alias.
    expect_error(R"(
models:
  a:
    cmd: x
    proxy: http://h:1
    aliases: [shared]
  b:
    cmd: x
    proxy: http://h:2
    filters:
      setParamsByID:
        shared: {}
)",
                 "config.yaml:11:9: duplicate alias 'shared' found in model: b");
}

/* ---- timeouts, sendLoadingState ---- */

Test(config_keys, timeouts) {
    Config c = load_ok(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    timeouts:
      connect: 5
      responseHeader: 120.5
      idleConn: 0
      keepalive: 30
      tlsHandshake: 10
      expectContinue: 1
      bogus: 1
)");
    const UpstreamTimeouts& t = model(c, "m").timeouts;
    cr_assert_eq(t.connect_s, 5);
    cr_assert_eq(t.response_header_s, 120.5);
    cr_assert_eq(t.idle_conn_s, 0);
    cr_assert_eq(t.keepalive_s, 30);
    cr_assert_eq(t.tls_handshake_s, 10);
    cr_assert_eq(c.warnings.size(), 2u);
    expect_warning(c, "config.yaml:11:7: model 'm': timeouts.expectContinue has no effect: "
                      "llama-swap reads a request's body itself and never sends Expect: "
                      "100-continue upstream");
    expect_warning(c, "config.yaml:12:7: unknown key 'bogus'");
}

Test(config_keys_errors, timeouts) {
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    timeouts:
      connect: -1
)",
                 "config.yaml:6:16: model 'm': timeouts.connect must be >= 0");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    timeouts:
      responseHeader: soon
)",
                 "config.yaml:6:23: expected a number for 'timeouts.responseHeader'");
    expect_error(R"(
models:
  m:
    cmd: x
    proxy: http://h:1
    timeouts: 30
)",
                 "config.yaml:5:15: expected a mapping for 'timeouts'");
}

Test(config_keys, model_send_loading_state) {
    Config c = load_ok(R"(
sendLoadingState: true
models:
  a: {cmd: x, proxy: "http://h:1", sendLoadingState: false}
  b: {cmd: x, proxy: "http://h:1", sendLoadingState: on}
  c: {cmd: x, proxy: "http://h:1"}
)");
    cr_assert(c.send_loading_state);
    cr_assert(model(c, "a").send_loading_state.has_value());
    cr_assert_not(*model(c, "a").send_loading_state);
    cr_assert(*model(c, "b").send_loading_state);
    cr_assert_not(model(c, "c").send_loading_state.has_value());
    expect_error("models:\n  a: {cmd: x, proxy: \"http://h:1\", sendLoadingState: 1}\n",
                 "config.yaml:2:54: expected a boolean for 'sendLoadingState'");
}
