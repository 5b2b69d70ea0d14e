// `selectors`, `profiles` and `defaultProfile`: the original's config tests
// (internal/config/selectors_test.go, profile_test.go) with our exact messages and positions.
// Peers come with their own section; the peer cases of those tests live there.
#include <criterion/criterion.h>

#include <string>

#include "config/config.h"
#include "config_test_util.h"

using namespace ls::config;
using namespace ls::config::test;

namespace {
// The original's base: a (aliases [alias-a], setParamsByID {variant}) and b, both in (default).
std::string base(const char* rest) {
    return std::string(R"(
models:
  a:
    cmd: "a ${PORT}"
    aliases: [alias-a]
    filters: {setParamsByID: {variant: {temperature: 0}}}
  b: {cmd: "b ${PORT}"}
)") + rest;
}

Config ok(const char* rest) {
    return load_ok(base(rest).c_str());
}

void fails(const char* rest, const char* message) {
    expect_error(base(rest).c_str(), message);
}
} // namespace

Test(selectors, loads_defaults_and_fields) {
    Config c = ok(R"(groups: {balanced: {swap: false, members: [a, b]}}
selectors:
  coding:
    strategy: warm
    targets: [a, alias-a]
    name: " Coding "
    description: The best loaded coder
    unlisted: true
    metadata: {family: coding}
  workers: {strategy: spillover, targets: [a, b]}
)");
    const SelectorConfig* s = c.selector("coding");
    cr_assert_not_null(s);
    cr_assert(s->strategy == SelectorStrategy::Warm);
    cr_assert_str_eq(s->name.c_str(), "Coding");
    cr_assert_str_eq(s->description.c_str(), "The best loaded coder");
    cr_assert(s->unlisted);
    cr_assert_str_eq(s->metadata_json.c_str(), "{\"family\":\"coding\"}");
    cr_assert_str_eq(s->targets[1].c_str(), "alias-a", "targets stay as written");
    cr_assert_str_eq(s->models[1].c_str(), "a");
    cr_assert_eq(s->spillover, 1);
    cr_assert_eq(c.selector("workers")->spillover, 1);
}

Test(selectors, validation_messages) {
    fails("selectors: {\" \": {strategy: pin, targets: [a]}}\n",
          "config.yaml:7:13: selectors: selector names cannot be empty");
    fails("selectors: {public: {targets: [a]}}\n",
          "config.yaml:7:13: selectors.public.strategy is required");
    fails("selectors: {public: {strategy: random, targets: [a]}}\n",
          "config.yaml:7:32: selectors.public.strategy: unknown strategy \"random\" (valid: warm, "
          "pin, spillover)");
    fails("selectors: {public: {strategy: pin}}\n",
          "config.yaml:7:13: selectors.public.targets must contain at least one entry");
    fails("selectors: {public: {strategy: pin, targets: []}}\n",
          "config.yaml:7:46: selectors.public.targets must contain at least one entry");
    fails("selectors: {public: {strategy: pin, targets: [missing]}}\n",
          "config.yaml:7:47: selectors.public.targets[0] references unknown model \"missing\"");
    fails(R"(selectors:
  first: {strategy: pin, targets: [a]}
  second: {strategy: pin, targets: [b, first]}
)",
          "config.yaml:9:40: selectors.second.targets[1] references selector \"first\"; selector "
          "chaining is not supported");
    fails("selectors: {a: {strategy: pin, targets: [b]}}\n",
          "config.yaml:7:13: selectors.a: name conflicts with model ID \"a\"");
    fails("selectors: {alias-a: {strategy: pin, targets: [b]}}\n",
          "config.yaml:7:13: selectors.alias-a: name conflicts with model alias \"alias-a\"");
    fails("selectors: {variant: {strategy: pin, targets: [b]}}\n",
          "config.yaml:7:13: selectors.variant: name conflicts with model alias \"variant\"");
}

Test(selectors, spillover_rules) {
    fails("groups: {pool: {swap: false, members: [a, b]}}\n"
          "selectors: {p: {strategy: spillover, targets: [a], settings: {spillover: 0}}}\n",
          "config.yaml:8:74: selectors.p.settings.spillover must be >= 1");
    fails("groups: {pool: {swap: false, members: [a, b]}}\n"
          "selectors: {p: {strategy: spillover, targets: [a, alias-a]}}\n",
          "config.yaml:8:51: selectors.p.targets contains duplicate resolved model \"a\"");
    fails("selectors: {p: {strategy: spillover, targets: [a, b]}}\n",
          "config.yaml:7:47: selectors.p spillover targets must share a group with swap: false");
    fails("groups: {g1: {swap: false, members: [a]}, g2: {swap: false, members: [b]}}\n"
          "selectors: {p: {strategy: spillover, targets: [a, b]}}\n",
          "config.yaml:8:47: selectors.p spillover targets must share one routing group");
    Config c = ok("groups: {pool: {swap: false, members: [a, b]}}\n"
                  "selectors: {p: {strategy: spillover, targets: [a, b], "
                  "settings: {spillover: 4}}}\n");
    cr_assert_eq(c.selector("p")->spillover, 4);
    // pin and warm ignore the setting, as the original does.
    ok("selectors: {p: {strategy: pin, targets: [a], settings: {spillover: 0}}}\n");
}

Test(selectors, spillover_in_a_matrix) {
    ok("matrix: {sets: {pool: \"a & b\"}}\n"
       "selectors: {p: {strategy: spillover, targets: [a, b]}}\n");
    fails("matrix: {sets: {pool: \"a | b\"}}\n"
          "selectors: {p: {strategy: spillover, targets: [a, b]}}\n",
          "config.yaml:8:47: selectors.p.targets must all appear together in one expanded matrix "
          "set");
}

Test(profiles, load_and_resolve) {
    Config c = ok(R"(selectors: {public: {strategy: pin, targets: [a]}}
profiles:
  coding:
    description: Coding profile
    pins:
      direct: a
      alias: alias-a
      variant-pin: variant
      via-selector: public
      disabled-empty: ""
      disabled-null: ~
      a: b
defaultProfile: coding
)");
    const ProfileConfig& p = c.profiles.at("coding");
    cr_assert_str_eq(p.description.c_str(), "Coding profile");
    cr_assert_eq(p.pins.size(), 7u);
    cr_assert_str_eq(p.pins.at("variant-pin").c_str(), "variant");
    cr_assert_str_eq(p.pins.at("disabled-empty").c_str(), "");
    cr_assert_str_eq(p.pins.at("disabled-null").c_str(), "");
    cr_assert_str_eq(p.pins.at("a").c_str(), "b", "a pin may shadow a model id");
    cr_assert_str_eq(c.default_profile.c_str(), "coding");
}

Test(profiles, validation_messages) {
    fails("profiles: {old: [a]}\n",
          "config.yaml:7:17: profiles.old: profile must be a mapping with description and pins; "
          "the legacy list syntax is no longer supported");
    fails("profiles: {p: {pins: {}}}\n",
          "config.yaml:7:22: profiles.p.pins must contain at least one entry");
    fails("profiles: {p: {description: x}}\n",
          "config.yaml:7:12: profiles.p.pins must contain at least one entry");
    fails("profiles: {p: {pins: {public: missing}}}\n",
          "config.yaml:7:31: profiles.p.pins.public references unknown model \"missing\"");
    fails("profiles: {p: {pins: {first: a, second: first}}}\n",
          "config.yaml:7:41: profiles.p.pins.second references unknown model \"first\"");
    fails("profiles: {\"\": {pins: {x: a}}}\n",
          "config.yaml:7:12: profiles: profile names cannot be empty");
    fails("profiles: {p: {pins: {x: a}}}\ndefaultProfile: q\n",
          "config.yaml:8:17: defaultProfile: unknown profile \"q\"");
}
