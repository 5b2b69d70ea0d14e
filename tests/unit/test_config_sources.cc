// Configuration sources (--config FILE, --config-dir DIR): the listing of a directory, the
// merge of several files (the original's merge_test.go, with our messages: file:line:col in
// the file that brings the problem, both files named) and the loader's diagnostics on a
// merged configuration, which name the file each node came from.
#include <criterion/criterion.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "config/config.h"
#include "config_test_util.h"

using namespace ls::config;
using namespace ls::config::test;

namespace {

using Files = std::vector<std::pair<std::string, std::string>>;

// (name, text) pairs; texts may start with a newline like the other config tests' raw strings.
Files files(std::initializer_list<std::pair<const char*, const char*>> list) {
    Files out;
    for (auto [name, text] : list) out.emplace_back(name, yaml_text(text));
    return out;
}

// Compares strings held here: criterion's macros would keep pointers into temporaries.
void expect_str(const std::string& got, const std::string& want) {
    cr_assert_str_eq(got.c_str(), want.c_str());
}

Config merged_ok(const Files& f) {
    auto r = load_config_texts(f);
    cr_assert(r.ok(), "load failed: %s", r.ok() ? "" : r.error().message.c_str());
    return std::move(r).value();
}

void merged_error(const Files& f, const char* message) {
    auto r = load_config_texts(f);
    cr_assert_not(r.ok(), "load should fail with: %s", message);
    expect_str(r.error().message, message);
}

bool has_model(const Config& c, const char* id) {
    return c.models.count(id) == 1;
}

const GroupConfig* group(const Config& c, const char* id) {
    for (const auto& g : c.groups)
        if (g.id == id) return &g;
    return nullptr;
}

// A scratch directory, removed (with what the test put there) at the end.
struct TempDir {
    std::string path;
    std::vector<std::string> made; // removed in reverse order
    TempDir() {
        char tmpl[] = "/tmp/ls-config-sources-XXXXXX";
        cr_assert_not_null(mkdtemp(tmpl));
        path = tmpl;
    }
    ~TempDir() {
        for (auto it = made.rbegin(); it != made.rend(); ++it) std::remove(it->c_str());
        rmdir(path.c_str());
    }
    std::string write(const std::string& rel, const std::string& text) {
        std::string p = path + "/" + rel;
        FILE* f = std::fopen(p.c_str(), "w");
        cr_assert_not_null(f, "cannot write %s", p.c_str());
        std::fputs(text.c_str(), f);
        std::fclose(f);
        made.push_back(p);
        return p;
    }
    std::string mkdir(const std::string& rel) {
        std::string p = path + "/" + rel;
        cr_assert_eq(::mkdir(p.c_str(), 0755), 0);
        made.push_back(p);
        return p;
    }
    std::string symlink(const std::string& target, const std::string& rel) {
        std::string p = path + "/" + rel;
        cr_assert_eq(::symlink(target.c_str(), p.c_str()), 0);
        made.push_back(p);
        return p;
    }
};

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
}

} // namespace

// ---- the original's merge_test.go, row by row ----

Test(sources, neither_provided) {
    auto r = list_config_sources(ConfigSources{});
    cr_assert_not(r.ok());
    expect_str(r.error().message, "at least one of --config or --config-dir must be provided");
}

Test(sources, config_only) {
    TempDir t;
    std::string cfg = t.write("config.yaml", R"(models:
  model1: {cmd: "m1 --port ${PORT}"}
groups:
  group1: {members: [model1]}
)");
    auto r = load_config_sources(ConfigSources{cfg, ""});
    cr_assert(r.ok(), "%s", r.ok() ? "" : r.error().message.c_str());
    cr_assert(has_model(*r, "model1"));
    cr_assert_not_null(group(*r, "group1"));
    expect_str(r->path, cfg);
}

Test(sources, dir_only) {
    TempDir t;
    std::string d = t.mkdir("conf.d");
    t.write("conf.d/a.yaml", "models:\n  alpha: {cmd: \"a ${PORT}\"}\n");
    t.write("conf.d/b.yaml", "models:\n  beta: {cmd: \"b ${PORT}\"}\n");
    auto r = load_config_sources(ConfigSources{"", d});
    cr_assert(r.ok(), "%s", r.ok() ? "" : r.error().message.c_str());
    cr_assert(has_model(*r, "alpha"));
    cr_assert(has_model(*r, "beta"));
    expect_str(r->path, ("2 files in " + d));
}

Test(sources, config_plus_dir_additive) {
    TempDir t;
    std::string cfg = t.write("base.yaml", "models:\n  base: {cmd: \"b ${PORT}\"}\n");
    std::string d = t.mkdir("conf.d");
    t.write("conf.d/extra.yaml", "models:\n  ext: {cmd: \"e ${PORT}\"}\n");
    auto r = load_config_sources(ConfigSources{cfg, d});
    cr_assert(r.ok(), "%s", r.ok() ? "" : r.error().message.c_str());
    cr_assert(has_model(*r, "base"));
    cr_assert(has_model(*r, "ext"));
    expect_str(r->path, (cfg + " + 1 file in " + d));
}

Test(sources, config_in_dir_overlap) {
    TempDir t;
    std::string d = t.mkdir("conf.d");
    std::string main = t.write("conf.d/main.yaml", "models: {}\n");
    auto r = list_config_sources(ConfigSources{main, d});
    cr_assert_not(r.ok());
    expect_str(r.error().message, ("--config " + main + " is also present in --config-dir " + d +
                                   "; remove it from one"));
    // Another name of the same file (a link to it) is the same file.
    std::string link = t.symlink(main, "link.yaml");
    r = list_config_sources(ConfigSources{link, d});
    cr_assert_not(r.ok());
    expect_str(r.error().message, ("--config " + link + " is also present in --config-dir " + d +
                                   " (as " + main + "); remove it from one"));
    auto c = load_config_sources(ConfigSources{main, d});
    cr_assert_not(c.ok());
}

Test(sources, duplicate_model_id) {
    merged_error(files({{"/d/a.yaml", R"(
models:
  other: {cmd: "o ${PORT}"}
  dup: {cmd: "a ${PORT}"}
)"},
                        {"/d/b.yaml", R"(
globalTTL: 5
models:
  dup: {cmd: "b ${PORT}"}
)"}}),
                 "/d/b.yaml:3:3: duplicate models \"dup\" (already defined at /d/a.yaml:3:3)");
}

Test(sources, duplicate_group_id) {
    merged_error(files({{"a.yaml", R"(
models:
  m1: {cmd: "a ${PORT}"}
groups:
  g1: {members: [m1]}
)"},
                        {"b.yaml", R"(
models:
  m2: {cmd: "b ${PORT}"}
groups:
  g1: {members: [m2]}
)"}}),
                 "b.yaml:4:3: duplicate groups \"g1\" (already defined at a.yaml:4:3)");
    // The same in routing.router.settings.groups.
    merged_error(files({{"a.yaml", R"(
routing:
  router:
    settings:
      groups:
        g1: {}
)"},
                        {"b.yaml", R"(
routing:
  router:
    settings:
      groups: {g1: {}}
)"}}),
                 "b.yaml:4:16: duplicate groups \"g1\" (already defined at a.yaml:5:9)");
}

Test(sources, duplicate_peer) {
    merged_error(files({{"a.yaml", "peers:\n  remote: {proxy: http://a}\n"},
                        {"b.yaml", "peers:\n  remote: {proxy: http://b}\n"}}),
                 "b.yaml:2:3: duplicate peers \"remote\" (already defined at a.yaml:2:3)");
    merged_error(
        files({{"a.yaml", "selectors:\n  public: {}\n"}, {"b.yaml", "selectors:\n  public: {}\n"}}),
        "b.yaml:2:3: duplicate selectors \"public\" (already defined at a.yaml:2:3)");
    merged_error(files({{"a.yaml", "profiles:\n  p: {}\n"}, {"b.yaml", "profiles:\n  p: {}\n"}}),
                 "b.yaml:2:3: duplicate profiles \"p\" (already defined at a.yaml:2:3)");
}

Test(sources, scalar_conflict) {
    merged_error(files({{"/etc/llama-swap/conf.d/a.yaml", "globalTTL: 100\n"},
                        {"/etc/llama-swap/conf.d/b.yaml", "globalTTL: 200\n"}}),
                 "/etc/llama-swap/conf.d/b.yaml:1:1: conflict at \"globalTTL\": "
                 "/etc/llama-swap/conf.d/b.yaml sets 200, /etc/llama-swap/conf.d/a.yaml set 100");
}

Test(sources, scalar_same_value_no_conflict) {
    Config c = merged_ok(files({{"a.yaml", "globalTTL: 100\n"}, {"b.yaml", "globalTTL: 100\n"}}));
    cr_assert_eq(c.global_ttl_s, 100);
}

Test(sources, macros_concatenate) {
    Config c = merged_ok(files({{"a.yaml", "macros:\n  LOW: 1\n"}, {"b.yaml", R"(
macros:
  HIGH: 2
models:
  m:
    cmd: "run --low ${LOW} --high ${HIGH} --port ${PORT}"
    metadata:
      low: ${LOW}
      high: ${HIGH}
)"}}));
    expect_str(c.models.at("m").cmd_text, "run --low 1 --high 2 --port ${PORT}");
    expect_str(c.models.at("m").metadata_json, "{\"low\":1,\"high\":2}");
    // The same macro with another value is a conflict; with the same value it is fine.
    merged_error(files({{"a.yaml", "macros:\n  LOW: 1\n"}, {"b.yaml", "macros:\n  LOW: 2\n"}}),
                 "b.yaml:2:3: conflict at \"macros.LOW\": b.yaml sets 2, a.yaml set 1");
    merged_ok(files({{"a.yaml", "macros:\n  LOW: 1\n"}, {"b.yaml", "macros:\n  LOW: 1\n"}}));
}

Test(sources, api_keys_concatenate) {
    Config c = merged_ok(
        files({{"a.yaml", "apiKeys: [key-a]\n"}, {"b.yaml", "apiKeys:\n  - key-b\n  - key-a\n"}}));
    expect_str(joined(c.api_keys), "key-a key-b");
}

Test(sources, routing_groups_merge) {
    Config c = merged_ok(files({{"a.yaml", R"(
models:
  m1: {cmd: "a ${PORT}"}
routing:
  router:
    settings:
      groups:
        groupA: {members: [m1]}
)"},
                                {"b.yaml", R"(
models:
  m2: {cmd: "b ${PORT}"}
routing:
  router:
    use: group
    settings:
      groups:
        groupB: {members: [m2]}
)"}}));
    cr_assert_not_null(group(c, "groupA"));
    cr_assert_not_null(group(c, "groupB"));
    cr_assert(c.routing.router == RouterKind::Group);
}

Test(sources, env_macros_substituted) {
    setenv("LS_TEST_SOURCES_DIR", "/srv/models", 1);
    Config c =
        merged_ok(files({{"a.yaml", "models:\n  a: {cmd: \"a --port ${PORT}\"}\n"}, {"b.yaml", R"(
models:
  b:
    cmd: "b --port ${PORT} --dir ${env.LS_TEST_SOURCES_DIR}"
    proxy: "http://127.0.0.1:${PORT}"
)"}}));
    const ModelConfig& b = c.models.at("b");
    expect_str(b.cmd_text, "b --port ${PORT} --dir /srv/models");
    expect_str(b.proxy, "http://127.0.0.1:${PORT}");
    cr_assert(b.uses_port);
    unsetenv("LS_TEST_SOURCES_UNSET");
    merged_error(files({{"a.yaml", "globalTTL: 1\n"},
                        {"b.yaml", "models:\n  b: {cmd: \"b ${env.LS_TEST_SOURCES_UNSET}\"}\n"}}),
                 "b.yaml:2:12: model 'b': cmd: environment variable 'LS_TEST_SOURCES_UNSET' is "
                 "not set");
}

Test(sources, env_macro_in_flow_style_list) {
    setenv("TEST_API_KEY", "secret123", 1);
    Config c = merged_ok(files({{"a.yaml", "apiKeys: [plain-key]\n"},
                                {"b.yaml", "apiKeys: [\"${env.TEST_API_KEY}\"]\n"}}));
    expect_str(joined(c.api_keys), "plain-key secret123");
}

Test(sources, sorted_order_deterministic) {
    TempDir t;
    std::string d = t.mkdir("conf.d");
    t.write("conf.d/z.yaml", "models:\n  dup: {cmd: \"z ${PORT}\"}\n");
    t.write("conf.d/a.yaml", "\nmodels:\n  dup: {cmd: \"a ${PORT}\"}\n");
    auto list = list_config_dir(d);
    cr_assert(list.ok());
    expect_str(joined(*list), (d + "/a.yaml " + d + "/z.yaml"));
    for (int i = 0; i < 3; ++i) {
        auto r = load_config_sources(ConfigSources{"", d});
        cr_assert_not(r.ok());
        expect_str(r.error().message,
                   (d + "/z.yaml:2:3: duplicate models \"dup\" (already defined at " + d +
                    "/a.yaml:3:3)"));
    }
}

Test(sources, empty_dir_with_config) {
    TempDir t;
    std::string cfg = t.write("config.yaml", "models:\n  m1: {cmd: \"m ${PORT}\"}\n");
    std::string d = t.mkdir("conf.d");
    auto r = load_config_sources(ConfigSources{cfg, d});
    cr_assert(r.ok(), "%s", r.ok() ? "" : r.error().message.c_str());
    cr_assert(has_model(*r, "m1"));
    expect_str(r->path, (cfg + " + 0 files in " + d));
}

Test(sources, empty_dir_only) {
    TempDir t;
    std::string d = t.mkdir("conf.d");
    auto r = load_config_sources(ConfigSources{"", d});
    cr_assert_not(r.ok());
    expect_str(r.error().message, (d + ": no configuration sources found"));
}

Test(sources, no_unknown_macros_after_merge) {
    Config c = merged_ok(files({{"a.yaml", "macros:\n  SHARED: --ctx 4096\n"},
                                {"b.yaml", "models:\n  m: {cmd: \"m ${SHARED} ${PORT}\"}\n"}}));
    expect_str(c.models.at("m").cmd_text, "m --ctx 4096 ${PORT}");
}

Test(sources, kind_mismatch_errors) {
    merged_error(files({{"a.yaml", "startPort: 5800\n"}, {"b.yaml", "startPort: [5800, 5801]\n"}}),
                 "b.yaml:1:1: conflict at \"startPort\": incompatible YAML node kinds: b.yaml has "
                 "a list, a.yaml a scalar");
    merged_error(files({{"a.yaml", "server: {maxConnections: 5}\n"}, {"b.yaml", "server: 5\n"}}),
                 "b.yaml:1:1: conflict at \"server\": incompatible YAML node kinds: b.yaml has a "
                 "scalar, a.yaml a mapping");
}

Test(sources, null_yields_to_value) {
    Config c = merged_ok(files({{"a.yaml", "models:\n  m1: {cmd: \"a ${PORT}\"}\n"}, {"b.yaml", R"(
routing:
  router:
    settings:
      groups:
        g1: {members: [m1]}
)"}}));
    cr_assert_not_null(group(c, "g1"));
}

// ---- ours ----

Test(sources, errors_of_the_loader_name_the_second_file) {
    merged_error(files({{"/d/a.yaml", "models:\n  a: {cmd: \"a ${PORT}\"}\n"}, {"/d/b.yaml", R"(
# the second file
models:
  x:
    cmd: ""
)"}}),
                 "/d/b.yaml:4:10: model 'x': cmd is empty");
    // A merged mapping keeps each key's own file: server keys from both.
    merged_error(files({{"/d/a.yaml", "server:\n  maxConnections: 5\n"},
                        {"/d/b.yaml", "# b\n\n\nserver:\n  idleTimeout: -1\n"}}),
                 "/d/b.yaml:5:16: 'server.idleTimeout' must be positive");
    // A list item of the second file.
    merged_error(files({{"/d/a.yaml", "apiKeys: [one]\n"}, {"/d/b.yaml", "apiKeys: [\"a b\"]\n"}}),
                 "/d/b.yaml:1:11: apiKeys: key contains whitespace");
    // A reference across files: a group of the first file naming a model nobody defines.
    merged_error(files({{"/d/a.yaml", "groups:\n  g: {members: [nope]}\n"},
                        {"/d/b.yaml", "models:\n  m: {cmd: \"m ${PORT}\"}\n"}}),
                 "/d/a.yaml:2:17: group 'g': unknown model 'nope'");
}

Test(sources, warnings_name_their_file_in_file_order) {
    Config c = merged_ok(files({{"b.yaml", "\n\n\nmodels:\n  m: {cmd: \"m ${PORT}\", tll: 5}\n"},
                                {"a.yaml", "globalTTl: 5\n"}}));
    cr_assert_eq(c.warnings.size(), 2u);
    expect_str(c.warnings[0].render(), "b.yaml:4:25: unknown key 'tll' (did you mean 'ttl'?)");
    expect_str(c.warnings[1].render(),
               "a.yaml:1:1: unknown key 'globalTTl' (did you mean 'globalTTL'?)");
}

Test(sources, int_and_string_differ) {
    merged_error(files({{"a.yaml", "globalTTL: 100\n"}, {"b.yaml", "globalTTL: \"100\"\n"}}),
                 "b.yaml:1:1: conflict at \"globalTTL\": b.yaml sets \"100\", a.yaml set 100");
    merged_error(
        files({{"a.yaml", "logLevel: 'info'\n"}, {"b.yaml", "logLevel: 'debug'\n"}}),
        "b.yaml:1:1: conflict at \"logLevel\": b.yaml sets \"debug\", a.yaml set \"info\"");
    // A plain and a quoted string of the same text are the same string.
    merged_ok(files({{"a.yaml", "logLevel: info\n"}, {"b.yaml", "logLevel: \"info\"\n"}}));
    merged_error(
        files({{"a.yaml", "sendLoadingState: true\n"}, {"b.yaml", "sendLoadingState: \"true\"\n"}}),
        "b.yaml:1:1: conflict at \"sendLoadingState\": b.yaml sets \"true\", a.yaml set "
        "true");
}

Test(sources, empty_value_yields_either_way) {
    Config c = merged_ok(files({{"a.yaml", "globalTTL:\n"}, {"b.yaml", "globalTTL: 30\n"}}));
    cr_assert_eq(c.global_ttl_s, 30);
    c = merged_ok(files({{"a.yaml", "globalTTL: 30\n"}, {"b.yaml", "globalTTL:\n"}}));
    cr_assert_eq(c.global_ttl_s, 30);
    // In an identity map too (the original refuses `models:` left empty next to models).
    c = merged_ok(
        files({{"a.yaml", "models:\n"}, {"b.yaml", "models:\n  m: {cmd: \"m ${PORT}\"}\n"}}));
    cr_assert(has_model(c, "m"));
    c = merged_ok(
        files({{"a.yaml", "models:\n  m: {cmd: \"m ${PORT}\"}\n"}, {"b.yaml", "models:\n"}}));
    cr_assert(has_model(c, "m"));
    // A list or a mapping left empty by one file.
    c = merged_ok(files({{"a.yaml", "apiKeys:\n"}, {"b.yaml", "apiKeys: [k]\n"}}));
    expect_str(joined(c.api_keys), "k");
}

Test(sources, tilde_is_a_value) {
    merged_error(files({{"a.yaml", "globalTTL: ~\n"}, {"b.yaml", "globalTTL: 5\n"}}),
                 "b.yaml:1:1: conflict at \"globalTTL\": b.yaml sets 5, a.yaml set ~");
    merged_error(files({{"a.yaml", "globalTTL: 5\n"}, {"b.yaml", "globalTTL: null\n"}}),
                 "b.yaml:1:1: conflict at \"globalTTL\": b.yaml sets null, a.yaml set 5");
    merged_ok(files({{"a.yaml", "globalTTL: ~\n"}, {"b.yaml", "globalTTL: ~\n"}}));
}

Test(sources, identity_map_must_be_a_mapping) {
    merged_error(files({{"a.yaml", "models:\n  m: {cmd: \"m ${PORT}\"}\n"},
                        {"b.yaml", "# b\nmodels: [x]\n"}}),
                 "b.yaml:2:1: conflict at \"models\": expected a mapping, introduced by b.yaml");
    merged_error(files({{"a.yaml", "models: 5\n"}, {"b.yaml", "models:\n  m: {cmd: x}\n"}}),
                 "a.yaml:1:1: conflict at \"models\": expected a mapping, introduced by a.yaml");
}

Test(sources, lists_concatenate) {
    Config c = merged_ok(files({{"a.yaml", R"(
models:
  a: {cmd: "a ${PORT}"}
  b: {cmd: "b ${PORT}"}
hooks:
  on_startup:
    preload: [a]
)"},
                                {"b.yaml", R"(
hooks:
  on_startup:
    preload:
      - b
      - a
)"}}));
    expect_str(joined(c.preload), "a b");
}

Test(sources, three_files_name_the_right_ones) {
    merged_error(files({{"1.yaml", "server:\n  maxConnections: 5\n"},
                        {"2.yaml", "server:\n  idleTimeout: 9\n"},
                        {"3.yaml", "server:\n  idleTimeout: 10\n"}}),
                 "3.yaml:2:3: conflict at \"server.idleTimeout\": 3.yaml sets 10, 2.yaml set 9");
    merged_error(files({{"1.yaml", "models:\n  a: {cmd: \"a ${PORT}\"}\n"},
                        {"2.yaml", "models:\n  b: {cmd: \"b ${PORT}\"}\n"},
                        {"3.yaml", "models:\n  c: {cmd: \"c\"}\n  b: {cmd: \"b\"}\n"}}),
                 "3.yaml:3:3: duplicate models \"b\" (already defined at 2.yaml:2:3)");
}

Test(sources, anchors_do_not_cross_files) {
    // Within a file they work as ever.
    Config c = merged_ok(files({{"a.yaml", R"(
models:
  a: &base {cmd: "a ${PORT}", ttl: 7}
  b: *base
)"},
                                {"b.yaml", "globalTTL: 5\n"}}));
    cr_assert_eq(c.models.at("b").ttl_s, 7);
    auto r = load_config_texts(files({{"a.yaml", "models:\n  a: &base {cmd: \"a ${PORT}\"}\n"},
                                      {"b.yaml", "models:\n  b: *base\n"}}));
    cr_assert_not(r.ok());
    expect_str(r.error().message, "b.yaml:2:6: found undefined alias");
}

Test(sources, merge_keys_resolved_before_merging) {
    Config c = merged_ok(files({{"a.yaml", R"(
base: &base
  globalTTL: 5
<<: *base
)"},
                                {"b.yaml", "globalTTL: 5\n"}}));
    cr_assert_eq(c.global_ttl_s, 5);
    merged_error(
        files({{"a.yaml", "x: &x {globalTTL: 5}\n<<: *x\n"}, {"b.yaml", "globalTTL: 6\n"}}),
        "b.yaml:1:1: conflict at \"globalTTL\": b.yaml sets 6, a.yaml set 5");
}

Test(sources, matrix_children_merge_but_not_twice) {
    Config c = merged_ok(files({{"a.yaml", R"(
models:
  g: {cmd: "g ${PORT}"}
  q: {cmd: "q ${PORT}"}
matrix:
  vars: {g: g, q: q}
)"},
                                {"b.yaml", "matrix:\n  sets: {s: \"g | q\"}\n"}}));
    cr_assert(c.routing.router == RouterKind::Matrix);
    merged_error(files({{"a.yaml", "matrix:\n  sets: {s: \"g\"}\n"},
                        {"b.yaml", "matrix:\n  sets: {t: \"q\"}\n"}}),
                 "b.yaml:2:3: duplicate matrix \"sets\" (already defined at a.yaml:2:3)");
}

Test(sources, duplicate_key_within_a_file_first) {
    merged_error(files({{"a.yaml", "globalTTL: 1\n"}, {"b.yaml", "globalTTL: 2\nglobalTTL: 1\n"}}),
                 "b.yaml:2:1: duplicate key 'globalTTL'");
}

Test(sources, empty_files_and_top_level) {
    // Empty and comment-only files add nothing; all empty is the empty configuration.
    Config c = merged_ok(files({{"a.yaml", ""}, {"b.yaml", "# nothing yet\n"}}));
    cr_assert_eq(c.models.size(), 0u);
    c = merged_ok(files(
        {{"a.yaml", "# x\n"}, {"b.yaml", "models:\n  m: {cmd: \"m ${PORT}\"}\n"}, {"c.yaml", ""}}));
    cr_assert(has_model(c, "m"));
    merged_error(files({{"a.yaml", "globalTTL: 1\n"}, {"b.yaml", "# b\n- a\n"}}),
                 "b.yaml:2:1: the top level of the configuration must be a mapping");
    // A parse error is reported in its own file.
    merged_error(files({{"a.yaml", "globalTTL: 1\n"}, {"b.yaml", "models:\n\tm: {}\n"}}),
                 "b.yaml:2:1: a tab character in the indentation: YAML indents with spaces only");
}

Test(sources, single_file_is_load_config) {
    const char* text = "models:\n  m: {cmd: \"\"}\n";
    auto a = load_config_texts(files({{"config.yaml", text}}));
    auto b = load_config_from_string(text, "config.yaml");
    cr_assert_not(a.ok());
    expect_str(a.error().message, b.error().message);
}

Test(sources, describe) {
    expect_str(describe_config_sources(ConfigSources{"/c.yaml", ""}, 0), "/c.yaml");
    expect_str(describe_config_sources(ConfigSources{"", "/d"}, 1), "1 file in /d");
    expect_str(describe_config_sources(ConfigSources{"/c.yaml", "/d"}, 3),
               "/c.yaml + 3 files in /d");
}

Test(sources, directory_listing) {
    TempDir t;
    std::string d = t.mkdir("conf.d");
    t.write("conf.d/b.yml", "");
    t.write("conf.d/a.yaml", "");
    t.write("conf.d/B.yaml", "");       // upper case sorts first (byte order)
    t.write("conf.d/.hidden.yaml", ""); // hidden files count
    t.write("conf.d/c.YAML", "");       // the suffix is case-sensitive
    t.write("conf.d/d.yaml.bak", "");
    t.write("conf.d/e.json", "");
    t.mkdir("conf.d/sub.yaml"); // a directory, even with the suffix
    t.write("conf.d/sub.yaml/f.yaml", "");
    std::string outside = t.write("outside.txt", "");
    t.symlink(outside, "conf.d/link.yaml");          // a link to a file counts
    t.symlink(d + "/nowhere", "conf.d/.#dead.yaml"); // a dangling link (an editor's lock) not
    auto r = list_config_dir(d + "/");
    cr_assert(r.ok(), "%s", r.ok() ? "" : r.error().message.c_str());
    expect_str(joined(*r), (d + "/.hidden.yaml " + d + "/B.yaml " + d + "/a.yaml " + d + "/b.yml " +
                            d + "/link.yaml"));
    auto missing = list_config_dir(t.path + "/missing");
    cr_assert_not(missing.ok());
    expect_str(missing.error().message,
               (t.path + "/missing: cannot read config directory: No such file or directory"));
    auto bad = load_config_sources(ConfigSources{"", t.path + "/missing"});
    cr_assert_not(bad.ok());
}
