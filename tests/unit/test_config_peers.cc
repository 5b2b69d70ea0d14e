// `peers` and `tls`: the original's peer config tests (internal/config/peer_test.go) and
// namespace rules (ValidatePeerNamespace), with our messages and positions.
#include <criterion/criterion.h>

#include <string>

#include "config/config.h"
#include "config_test_util.h"

using namespace ls::config;
using namespace ls::config::test;

namespace {
std::string base(const char* rest) {
    return std::string(R"(
models:
  local: {cmd: "l ${PORT}", aliases: [fast]}
)") + rest;
}
Config ok(const char* rest) {
    return load_ok(base(rest).c_str());
}
void fails(const char* rest, const char* message) {
    expect_error(base(rest).c_str(), message);
}
} // namespace

Test(peers, fields_defaults_and_filters) {
    Config c = ok(R"(peers:
  openrouter:
    proxy: https://openrouter.ai/api
    apiKey: sk-test-key
    models: [meta-llama/llama-3.1-8b-instruct, z-ai/glm-4.7, z-ai/glm-4.7]
    filters:
      stripParams: "temperature, top_p"
      setParams: {max_tokens: 1000}
  remote:
    proxy: http://192.168.1.23:8080/api
    models: [model_a]
    timeouts: {responseHeader: 5}
)");
    const PeerConfig& p = c.peers.at("openrouter");
    cr_assert_str_eq(p.proxy.c_str(), "https://openrouter.ai/api");
    cr_assert_str_eq(p.api_key.c_str(), "sk-test-key");
    cr_assert_eq(p.models.size(), 2u, "duplicates dropped");
    cr_assert_eq(p.timeouts.response_header_s, 60, "peers wait 60 s for a response head");
    cr_assert_eq(p.filters.strip_params.size(), 2u);
    cr_assert_str_eq(p.filters.set_params.json.c_str(), "{\"max_tokens\":1000}");
    cr_assert_eq(c.peers.at("remote").timeouts.response_header_s, 5);
}

Test(peers, resolution) {
    Config c = ok(R"(peers:
  a: {proxy: "http://a:1", models: [shared, only-a, local]}
  b: {proxy: "http://b:1", models: [shared]}
)");
    auto r = c.resolve_peer("a/shared");
    cr_assert(r && r->peer->id == "a" && r->model == "shared");
    cr_assert(c.resolve_peer("only-a"), "a bare name one peer has");
    cr_assert_not(c.resolve_peer("shared"), "a bare name two peers have is ambiguous");
    cr_assert_str_eq(c.resolve_peer("b/shared")->fqn().c_str(), "b/shared");
    // Local ids win: callers try Config::resolve first; the peer's is still reachable fully.
    cr_assert_not_null(c.resolve("local"));
    cr_assert_str_eq(c.resolve_peer("a/local")->model.c_str(), "local");
}

Test(peers, validation_messages) {
    fails("peers: {p: {models: [x]}}\n", "config.yaml:3:9: peers.p: proxy is required");
    fails("peers: {p: {proxy: \"\", models: [x]}}\n",
          "config.yaml:3:20: peers.p: proxy is required");
    fails("peers: {p: {proxy: \"://invalid\", models: [x]}}\n",
          "config.yaml:3:20: peers.p: invalid peer proxy URL (://invalid): it must start with "
          "http:// or https://");
    fails("peers: {p: {proxy: \"http://h:1\"}}\n",
          "config.yaml:3:9: peers.p: peer models can not be empty");
    fails("peers: {p: {proxy: \"http://h:1\", models: []}}\n",
          "config.yaml:3:9: peers.p: peer models can not be empty");
    fails("peers: {p: {proxy: \"http://h:1\", models: [x], tls: {caFile: relative.pem}}}\n",
          "config.yaml:3:61: peers.p: tls.caFile must be an absolute path");
}

Test(peers, namespace_conflicts) {
    fails(R"(peers:
  a/b: {proxy: "http://h:1", models: [c]}
  a: {proxy: "http://h:2", models: [b/c]}
)",
          "config.yaml:4:3: peer model name \"a/b/c\" is ambiguous between peers.a model \"b/c\" "
          "and peers.a/b model \"c\"");
    expect_error(R"(
models:
  r/x: {cmd: "l ${PORT}"}
peers:
  r: {proxy: "http://h:1", models: [x]}
)",
                 "config.yaml:4:3: model ID \"r/x\" conflicts with fully qualified peer model "
                 "name");
    fails(R"(peers:
  r: {proxy: "http://h:1", models: [x]}
selectors:
  r/x: {strategy: pin, targets: [local]}
)",
          "config.yaml:4:3: selector ID \"r/x\" conflicts with fully qualified peer model name");
    fails(R"(peers:
  r: {proxy: "http://h:1", models: [x]}
profiles:
  p: {pins: {r/x: local}}
)",
          "config.yaml:4:3: profile p pin \"r/x\" conflicts with fully qualified peer model "
          "name");
}

Test(peers, selectors_and_profiles_may_name_peer_models) {
    Config c = ok(R"(peers:
  remote: {proxy: "http://h:1", models: [remote-model]}
selectors:
  mix: {strategy: spillover, targets: [local, remote/remote-model]}
  bare: {strategy: pin, targets: [remote-model]}
profiles:
  p: {pins: {code: remote/remote-model}}
)");
    cr_assert_str_eq(c.selector("mix")->models[1].c_str(), "remote/remote-model");
    cr_assert_str_eq(c.selector("bare")->models[0].c_str(), "remote/remote-model");
    fails(R"(peers:
  remote: {proxy: "http://h:1", models: [remote-model]}
selectors:
  w: {strategy: warm, targets: [remote-model]}
)",
          "config.yaml:6:33: selectors.w.targets[0] must resolve to a local model for strategy "
          "\"warm\"");
    fails(R"(peers:
  remote: {proxy: "http://h:1", models: [remote-model]}
selectors:
  d: {strategy: spillover, targets: [remote-model, remote/remote-model]}
)",
          "config.yaml:6:52: selectors.d.targets contains duplicate resolved model "
          "\"remote/remote-model\"");
}

Test(tls, https_upstream_and_its_settings) {
    Config c = load_ok(R"(
models:
  m:
    cmd: "x --port ${PORT}"
    proxy: https://127.0.0.1:${PORT}
    tls: {caFile: /etc/hostname, insecure: false}
)");
    cr_assert_str_eq(c.models.at("m").tls.ca_file.c_str(), "/etc/hostname");
    Config d = load_ok(R"(
peers:
  p: {proxy: "https://h:1", models: [x], tls: {insecure: true}}
)");
    cr_assert(d.peers.at("p").tls.insecure);
    expect_warning(d, "config.yaml:2:48: peers.p: tls.insecure: the upstream's certificate is "
                      "not verified");
}
