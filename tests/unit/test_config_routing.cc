// `routing`, the legacy top-level `groups`/`matrix`, the matrix's vars, evict_costs and sets,
// and the scheduler's priorities: the original's config tests (internal/config/config_test.go
// TestConfig_Routing_*, matrix_test.go) with our exact messages and positions.
#include <criterion/criterion.h>

#include <string>

#include "config/config.h"
#include "config_test_util.h"
#include "router/matrix.h"

using namespace ls::config;
using namespace ls::config::test;
namespace mx = ls::router::matrix;

namespace {
// The original's two-model base: gemma and qwen (plus the matrix tests' others).
std::string with_models(const char* rest) {
    return std::string(R"(
models:
  gemma: {cmd: "g ${PORT}"}
  qwen: {cmd: "q ${PORT}", aliases: [qw]}
  mistral: {cmd: "m ${PORT}"}
  voxtral: {cmd: "v ${PORT}"}
  llama70B: {cmd: "l ${PORT}"}
)") + rest;
}

Config ok(const char* rest) {
    return load_ok(with_models(rest).c_str());
}

void fails(const char* rest, const char* message) {
    expect_error(with_models(rest).c_str(), message);
}

const GroupConfig* group(const Config& c, const char* id) {
    for (const auto& g : c.groups)
        if (g.id == id) return &g;
    return nullptr;
}
} // namespace

Test(routing, defaults_to_groups_and_fifo) {
    Config c = ok("");
    cr_assert(c.routing.router == RouterKind::Group);
    cr_assert_eq(c.groups.size(), 1u);
    cr_assert_str_eq(c.groups[0].id.c_str(), "(default)");
    cr_assert_eq(c.groups[0].members.size(), 5u);
    cr_assert_eq(c.routing.scheduler.priority.size(), 0u);
}

Test(routing, legacy_top_level_groups) {
    Config c = ok(R"(groups:
  g1: {members: [gemma, qwen]}
)");
    cr_assert(c.routing.router == RouterKind::Group);
    cr_assert_not_null(group(c, "g1"));
    cr_assert_eq(group(c, "(default)")->members.size(), 3u);
}

Test(routing, legacy_top_level_matrix) {
    Config c = ok(R"(matrix:
  vars: {g: gemma, q: qwen}
  sets: {combo: "g | q"}
)");
    cr_assert(c.routing.router == RouterKind::Matrix);
    cr_assert_not_null(c.routing.matrix.program.get());
    cr_assert_eq(c.groups.size(), 0u);
}

Test(routing, router_use_matrix) {
    Config c = ok(R"(routing:
  router:
    use: matrix
    settings:
      matrix:
        vars: {g: gemma, q: qwen}
        sets: {combo: "g | q"}
)");
    cr_assert(c.routing.router == RouterKind::Matrix);
    auto d = mx::solve(*c.routing.matrix.program, "gemma", {"qwen"});
    cr_assert_eq(d.evict.size(), 1u, "g | q: one at a time");
}

Test(routing, router_use_group) {
    Config c = ok(R"(routing:
  router:
    use: group
    settings:
      groups:
        g1: {swap: false, members: [gemma, qw]}
)");
    cr_assert(c.routing.router == RouterKind::Group);
    const GroupConfig* g = group(c, "g1");
    cr_assert_not_null(g);
    cr_assert_not(g->swap);
    // An alias names its model (the original would start a second process for it).
    cr_assert_str_eq(g->members[1].c_str(), "qwen");
}

Test(routing, legacy_and_routing_conflict) {
    fails(R"(groups:
  g1: {members: [gemma]}
routing:
  router: {use: group}
)",
          "config.yaml:10:3: config uses both the legacy top-level 'matrix'/'groups' keys and the "
          "new 'routing.router' block; please migrate the top-level keys into 'routing.router' "
          "and remove them");
}

Test(routing, routing_scheduler_with_legacy_groups_is_fine) {
    Config c = ok(R"(groups:
  g1: {members: [gemma]}
routing:
  scheduler:
    settings:
      fifo:
        priority: {gemma: 5}
)");
    cr_assert_eq(c.routing.scheduler.priority_of("gemma"), 5);
}

Test(routing, use_matrix_without_settings) {
    fails(R"(routing:
  router: {use: matrix}
)",
          "config.yaml:8:17: routing.router.use is 'matrix' but routing.router.settings.matrix "
          "is not set");
}

Test(routing, use_group_ignores_matrix_with_a_warning) {
    Config c = ok(R"(routing:
  router:
    use: group
    settings:
      groups: {g1: {members: [gemma, qwen]}}
      matrix: {sets: {s: gemma}}
)");
    cr_assert(c.routing.router == RouterKind::Group);
    cr_assert_null(c.routing.matrix.program.get());
    expect_warning(c, "config.yaml:12:15: routing.router.settings.matrix is ignored: "
                      "routing.router.use is 'group'");
}

Test(routing, matrix_without_use_is_ignored_loudly) {
    // The original silently runs the group router here; we run it too, and say so.
    Config c = ok(R"(routing:
  router:
    settings:
      matrix: {sets: {s: gemma}}
)");
    cr_assert(c.routing.router == RouterKind::Group);
    expect_warning(c, "config.yaml:10:15: routing.router.settings.matrix is ignored: "
                      "routing.router.use is not set and defaults to 'group' (set use: matrix)");
}

Test(routing, unknown_router) {
    fails(R"(routing:
  router: {use: bogus}
)",
          "config.yaml:8:17: routing.router.use: unknown router \"bogus\" (valid: group, "
          "matrix)");
}

Test(routing, unknown_scheduler) {
    fails(R"(routing:
  scheduler: {use: lifo}
)",
          "config.yaml:8:20: routing.scheduler.use: unknown scheduler \"lifo\" (valid: fifo)");
}

Test(routing, legacy_groups_and_matrix_conflict) {
    fails(R"(groups:
  group1: {members: [gemma]}
matrix:
  sets: {s: gemma}
)",
          "config.yaml:10:3: config cannot use both 'groups' and 'matrix'");
}

Test(routing, fifo_priority_known_unknown_and_alias) {
    Config c = ok(R"(routing:
  scheduler:
    settings:
      fifo:
        priority: {gemma: 5, qw: -2}
        maxWait: 2.5
        maxSkips: 0
)");
    cr_assert_eq(c.routing.scheduler.priority_of("gemma"), 5);
    cr_assert_eq(c.routing.scheduler.priority_of("qwen"), -2, "an alias names its model");
    cr_assert_eq(c.routing.scheduler.priority_of("mistral"), 0);
    cr_assert_float_eq(c.routing.scheduler.max_wait_s, 2.5, 1e-9);
    cr_assert_eq(c.routing.scheduler.max_skips, 0);
    fails(R"(routing:
  scheduler: {settings: {fifo: {priority: {nope: 5}}}}
)",
          "config.yaml:8:44: routing.scheduler.settings.fifo.priority references unknown model "
          "\"nope\"");
    fails(R"(routing:
  scheduler: {settings: {fifo: {priority: {qwen: 1, qw: 2}}}}
)",
          "config.yaml:8:53: routing.scheduler.settings.fifo.priority: model 'qwen' is given a "
          "priority twice (an alias names it)");
}

Test(routing, scheduler_defaults_bound_starvation) {
    Config c = ok("");
    cr_assert_float_eq(c.routing.scheduler.max_wait_s, 10, 1e-9);
    cr_assert_eq(c.routing.scheduler.max_skips, 3);
}

// ---- matrix validation (matrix_test.go) ----

Test(matrix_config, basic_with_costs) {
    Config c = ok(R"(matrix:
  vars: {g: gemma, q: qwen, m: mistral, v: voxtral, L: llama70B}
  evict_costs: {L: 30, v: 50}
  sets:
    standard: "(g|q|m) & v"
    full: "L"
)");
    const MatrixConfig& mc = c.routing.matrix;
    auto cost = [&](const std::string& m) { return mc.cost_of(m); };
    auto d = mx::solve(*mc.program, "gemma", {"voxtral"}, cost);
    cr_assert_str_eq(d.set_name.c_str(), "standard");
    cr_assert_eq(d.evict.size(), 0u);
    d = mx::solve(*mc.program, "llama70B", {"voxtral"}, cost);
    cr_assert_str_eq(d.set_name.c_str(), "full");
    cr_assert_eq(d.evict.size(), 1u);
    cr_assert_eq(mc.cost_of("llama70B"), 30);
    cr_assert_eq(mc.cost_of("voxtral"), 50);
    cr_assert_eq(mc.cost_of("gemma"), 1, "unlisted models cost 1");
}

Test(matrix_config, resolved_evict_costs) {
    Config c = ok(R"(matrix:
  vars: {g: gemma, L: llama70B}
  evict_costs: {L: 30, g: 5, mistral: 10}
  sets: {s: "g & L"}
)");
    cr_assert_eq(c.routing.matrix.cost_of("llama70B"), 30);
    cr_assert_eq(c.routing.matrix.cost_of("gemma"), 5);
    cr_assert_eq(c.routing.matrix.cost_of("mistral"), 10);
}

Test(matrix_config, var_keys) {
    ok(R"(matrix:
  vars: {abcdefghijklmnopqrstuvwxyzABCDEF: gemma, model-var: qwen, model.var: mistral}
  sets: {s: abcdefghijklmnopqrstuvwxyzABCDEF}
)");
    fails(R"(matrix:
  vars: {a_b: gemma}
  sets: {s: gemma}
)",
          "config.yaml:8:10: matrix: var key \"a_b\" must contain only alphanumeric, '-' or '.' "
          "characters and be 1-32 characters long");
    fails(R"(matrix:
  vars: {abcdefghijklmnopqrstuvwxyzABCDEFG: gemma}
  sets: {s: gemma}
)",
          "config.yaml:8:10: matrix: var key \"abcdefghijklmnopqrstuvwxyzABCDEFG\" must contain "
          "only alphanumeric, '-' or '.' characters and be 1-32 characters long");
    fails(R"(matrix:
  vars: {x: nonexistent}
  sets: {s: gemma}
)",
          "config.yaml:8:13: matrix: var key \"x\" references unknown model \"nonexistent\"");
    fails(R"(matrix:
  vars: {x: qw}
  sets: {s: gemma}
)",
          "config.yaml:8:13: matrix: var key \"x\" references unknown model \"qw\"");
}

Test(matrix_config, evict_costs_invalid) {
    fails(R"(matrix:
  vars: {g: gemma}
  evict_costs: {g: 0}
  sets: {s: g}
)",
          "config.yaml:9:20: matrix: evict_cost for \"g\" must be a positive integer, got 0");
    fails(R"(matrix:
  vars: {g: gemma}
  evict_costs: {g: -1}
  sets: {s: g}
)",
          "config.yaml:9:20: matrix: evict_cost for \"g\" must be a positive integer, got -1");
    fails(R"(matrix:
  evict_costs: {unknown: 5}
  sets: {s: gemma}
)",
          "config.yaml:8:17: matrix: evict_costs: unknown var or model \"unknown\"");
    Config c = ok(R"(matrix:
  evict_costs: {gemma: 5}
  sets: {s: gemma}
)");
    cr_assert_eq(c.routing.matrix.cost_of("gemma"), 5);
}

Test(matrix_config, set_errors_point_at_their_set) {
    fails(R"(matrix:
  sets:
    a: "+b"
    b: "+a"
)",
          "config.yaml:9:8: matrix: circular reference detected involving set \"a\"");
    fails(R"(matrix:
  sets:
    ok: gemma
    a: "+nonexistent"
)",
          "config.yaml:10:8: matrix: set \"a\" references undefined set \"nonexistent\"");
    fails(R"(matrix:
  vars: {g: gemma}
  sets:
    first: qwen
    s: "g & nonexistent"
)",
          "config.yaml:11:8: matrix: set \"s\": unknown var or model \"nonexistent\"");
    fails(R"(matrix:
  sets:
    s: "(gemma"
)",
          "config.yaml:9:8: matrix: set \"s\": parse: missing closing parenthesis");
}

Test(matrix_config, needs_a_set) {
    fails(R"(matrix:
  vars: {g: gemma}
)",
          "config.yaml:8:3: matrix: matrix must define at least one set");
    fails(R"(matrix:
  sets: [gemma]
)",
          "config.yaml:8:9: matrix: sets must be a mapping");
}

Test(matrix_config, ties_go_to_the_first_set_in_the_file) {
    // The original sorts set names before compiling (an accident of its YAML round trip), so
    // "alpha" would win there; the file's order is the documented rule.
    Config c = ok(R"(matrix:
  sets:
    zeta: "gemma & qwen"
    alpha: "gemma & mistral"
)");
    auto d = mx::solve(*c.routing.matrix.program, "gemma", {});
    cr_assert_str_eq(d.set_name.c_str(), "zeta");
}

Test(matrix_config, global_macros_apply) {
    Config c = ok(R"(macros:
  big: llama70B
matrix:
  sets: {s: "${big} | gemma"}
)");
    auto d = mx::solve(*c.routing.matrix.program, "llama70B", {"gemma"});
    cr_assert_eq(d.evict.size(), 1u);
}
