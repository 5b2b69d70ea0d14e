// The matrix router's core (src/router/matrix.h): the DSL, compile, the solver and the config
// helpers. Ported from the original's internal/matrix/dsl_test.go, internal/config/matrix_test.go
// and internal/router/matrix_test.go (the Solve cases), plus cases of our own.
#include <criterion/criterion.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "router/matrix.h"

namespace mx = ls::router::matrix;
using mx::SetDef;
using mx::Token;
using mx::TokenKind;
using Names = std::vector<std::string>;

namespace {

std::string join(const Names& names) {
    std::string out = "[";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
    return out + "]";
}

std::string join(const std::vector<Names>& alternatives) {
    std::string out = "[";
    for (size_t i = 0; i < alternatives.size(); ++i) out += (i ? ", " : "") + join(alternatives[i]);
    return out + "]";
}

// Holds both texts while Criterion compares them (it keeps only the pointers).
void expect_text(const std::string& got, const std::string& expected, const char* what = "") {
    cr_assert_str_eq(got.c_str(), expected.c_str(), "%s: got %s, expected %s", what, got.c_str(),
                     expected.c_str());
}

void expect_names(const Names& got, const Names& expected, const char* what) {
    expect_text(join(got), join(expected), what);
}

// The original's compileIdentity: every listed model resolves to itself.
mx::Resolver identity(const Names& models) {
    std::set<std::string, std::less<>> known(models.begin(), models.end());
    return [known](std::string_view ident) -> std::optional<std::string> {
        if (known.find(ident) == known.end()) return std::nullopt;
        return std::string(ident);
    };
}

mx::Program compile_ok(const std::vector<SetDef>& sets, const mx::Resolver& resolve) {
    auto program = mx::compile(sets, resolve);
    cr_assert(program.ok(), "compile failed: %s",
              program.ok() ? "" : program.error().message.c_str());
    return std::move(program).value();
}

mx::Program compile_identity(const std::vector<SetDef>& sets, const Names& models) {
    return compile_ok(sets, identity(models));
}

// The config layer's resolution over vars and model ids.
mx::Resolver config_resolver(std::map<std::string, std::string, std::less<>> vars,
                             const Names& models) {
    std::set<std::string, std::less<>> ids(models.begin(), models.end());
    return mx::make_resolver(std::move(vars),
                             [ids](std::string_view id) { return ids.find(id) != ids.end(); });
}

mx::EvictCost costs(std::map<std::string, long long> table) {
    return [table](const std::string& model) {
        auto it = table.find(model);
        return it == table.end() ? 1LL : it->second;
    };
}

void expect_compile_error(const std::vector<SetDef>& sets, const Names& models,
                          const char* message) {
    auto program = mx::compile(sets, identity(models));
    cr_assert_not(program.ok(), "compile should fail with: %s", message);
    cr_assert_str_eq(program.error().message.c_str(), message);
}

void expect_tokens(const char* dsl, const std::vector<Token>& expected) {
    auto tokens = mx::tokenize(dsl);
    cr_assert(tokens.ok(), "tokenize(%s) failed: %s", dsl,
              tokens.ok() ? "" : tokens.error().message.c_str());
    cr_assert_eq(tokens.value().size(), expected.size(), "%s: %zu tokens, expected %zu", dsl,
                 tokens.value().size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        const Token& got = tokens.value()[i];
        cr_assert(got.kind == expected[i].kind, "%s: token %zu kind", dsl, i);
        cr_assert_str_eq(got.text.c_str(), expected[i].text.c_str(), "%s: token %zu", dsl, i);
    }
}

void expect_tokenize_error(const std::string& dsl, const char* message) {
    auto tokens = mx::tokenize(dsl);
    cr_assert_not(tokens.ok(), "tokenize should fail with: %s", message);
    cr_assert_str_eq(tokens.error().message.c_str(), message);
}

std::string nested(int depth, const std::string& inner) {
    return std::string(static_cast<size_t>(depth), '(') + inner +
           std::string(static_cast<size_t>(depth), ')');
}

} // namespace

// ---- dsl_test.go: TestDSL_Tokenize ----

Test(tokenize, single_identifier) {
    expect_tokens("abc", {{TokenKind::ident, "abc"}, {TokenKind::end, ""}});
}

Test(tokenize, identifier_with_hyphens_and_dots) {
    expect_tokens("model-name.v2", {{TokenKind::ident, "model-name.v2"}, {TokenKind::end, ""}});
}

Test(tokenize, operators_and_reference) {
    expect_tokens("(a | +base) & b", {{TokenKind::lparen, "("},
                                      {TokenKind::ident, "a"},
                                      {TokenKind::op_or, "|"},
                                      {TokenKind::ref, "base"},
                                      {TokenKind::rparen, ")"},
                                      {TokenKind::op_and, "&"},
                                      {TokenKind::ident, "b"},
                                      {TokenKind::end, ""}});
}

Test(tokenize, empty_ref) {
    expect_tokenize_error("+", "expected set name after '+' at position 1");
}

Test(tokenize, invalid_character) {
    expect_tokenize_error("a @ b", "unexpected character '@' at position 2");
}

Test(tokenize, no_space_needed_around_operators) {
    expect_tokens("a&b|-", {{TokenKind::ident, "a"},
                            {TokenKind::op_and, "&"},
                            {TokenKind::ident, "b"},
                            {TokenKind::op_or, "|"},
                            {TokenKind::ident, "-"},
                            {TokenKind::end, ""}});
}

Test(tokenize, ref_needs_the_name_right_after_the_plus) {
    expect_tokenize_error("a & + b", "expected set name after '+' at position 5");
}

Test(tokenize, unicode_letters_and_digits_are_ident_runes) {
    expect_tokens("modèle_1 & 模型\u00a0& x٣", {{TokenKind::ident, "modèle_1"},
                                                {TokenKind::op_and, "&"},
                                                {TokenKind::ident, "模型"},
                                                {TokenKind::op_and, "&"},
                                                {TokenKind::ident, "x٣"},
                                                {TokenKind::end, ""}});
}

Test(tokenize, unicode_15_letters_count_as_go_1_21_sees_them) {
    // U+1E4D0 (Nag Mundari) and U+31350 (CJK extension H) are new in Unicode 15.0.
    expect_tokens("\U0001E4D0\U00031350",
                  {{TokenKind::ident, "\U0001E4D0\U00031350"}, {TokenKind::end, ""}});
}

Test(tokenize, positions_count_runes_and_characters_quote_as_go) {
    expect_tokenize_error("é @", "unexpected character '@' at position 2");
    expect_tokenize_error("a € b", "unexpected character '€' at position 2");
    expect_tokenize_error("a\x01", "unexpected character '\\x01' at position 1");
    expect_tokenize_error("a'", "unexpected character '\\'' at position 1");
    expect_tokenize_error("a\\", "unexpected character '\\\\' at position 1");
    expect_tokenize_error("a\"", "unexpected character '\"' at position 1");
    expect_tokenize_error("a\u200bb", "unexpected character '\\u200b' at position 1");
    expect_tokenize_error("ab \xff", "unexpected character '\xEF\xBF\xBD' at position 3");
    expect_tokenize_error("model/x", "unexpected character '/' at position 5");
}

// ---- dsl_test.go: TestProgram_Expressions, References, OverlappingReferences ----

static void expect_projection(const char* dsl, const Names& relevant,
                              const std::vector<Names>& expected) {
    auto program = compile_identity({{"test", dsl}}, relevant);
    auto got = mx::projected_sets(program, "test", relevant);
    expect_text(join(got), join(expected), dsl);
}

Test(program, expressions) {
    expect_projection("a", {"a"}, {{"a"}});
    expect_projection("a & b", {"a", "b"}, {{"a", "b"}});
    expect_projection("a | b | c", {"a", "b", "c"}, {{"a"}, {"b"}, {"c"}});
    expect_projection("(a | b) & (c | d)", {"a", "b", "c", "d"},
                      {{"a", "c"}, {"a", "d"}, {"b", "c"}, {"b", "d"}});
    expect_projection("a | b & c", {"a", "b", "c"}, {{"a"}, {"b", "c"}});
    expect_projection("a & a", {"a"}, {{"a"}});
}

Test(program, references) {
    Names models{"g", "q", "m", "v", "e"};
    auto program = compile_identity(
        {{"llms", "g | q | m"}, {"with_tts", "+llms & v"}, {"mega", "+with_tts & e"}}, models);
    expect_text(join(mx::projected_sets(program, "mega", models)),
                "[[e, g, v], [e, q, v], [e, m, v]]");
}

Test(program, overlapping_references) {
    auto program = compile_identity({{"base", "a & b"}, {"extended", "target & +base & b"}},
                                    {"target", "a", "b"});
    auto d = mx::solve(program, "target", {"a", "b"});
    expect_names(d.evict, {}, "evict");
    expect_names(d.target_set, {"a", "b", "target"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "extended");
}

Test(program, unknown_set_has_no_projection) {
    auto program = compile_identity({{"s", "a"}}, {"a"});
    cr_assert(mx::projected_sets(program, "nope", {"a"}).empty());
}

// ---- dsl_test.go: TestProgram_CompileErrors, with the full texts of spec §2.3 ----

Test(compile_errors, table_of_the_spec) {
    const Names a{"a"};
    expect_compile_error({{"s", ""}}, a, "set \"s\": empty DSL expression");
    expect_compile_error({{"s", "  \t\n "}}, a, "set \"s\": empty DSL expression");
    expect_compile_error({{"s", "a @ b"}}, a,
                         "set \"s\": tokenize: unexpected character '@' at position 2");
    expect_compile_error({{"s", "+"}}, a,
                         "set \"s\": tokenize: expected set name after '+' at position 1");
    expect_compile_error({{"s", "(a"}}, a, "set \"s\": parse: missing closing parenthesis");
    expect_compile_error({{"s", "a)"}}, a,
                         "set \"s\": parse: unexpected token \")\" after expression");
    expect_compile_error({{"s", "()"}}, a, "set \"s\": parse: unexpected token \")\"");
    expect_compile_error({{"s", "a |"}}, a, "set \"s\": parse: unexpected token \"\"");
    expect_compile_error({{"s", "a b"}}, {"a", "b"},
                         "set \"s\": parse: unexpected token \"b\" after expression");
    expect_compile_error({{"s", "missing"}}, a, "set \"s\": unknown var or model \"missing\"");
    expect_compile_error({{"s", "+missing"}}, a, "set \"s\" references undefined set \"missing\"");
    expect_compile_error({{"a", "+b"}, {"b", "+a"}}, a,
                         "circular reference detected involving set \"a\"");
}

Test(compile_errors, more_parse_errors) {
    const Names ab{"a", "b"};
    expect_compile_error({{"s", "  (a  "}}, ab, "set \"s\": parse: missing closing parenthesis");
    expect_compile_error({{"s", "(a b)"}}, ab, "set \"s\": parse: missing closing parenthesis");
    expect_compile_error({{"s", "& a"}}, ab, "set \"s\": parse: unexpected token \"&\"");
    expect_compile_error({{"s", "a & | b"}}, ab, "set \"s\": parse: unexpected token \"|\"");
    expect_compile_error({{"s", "a +b"}}, ab,
                         "set \"s\": parse: unexpected token \"b\" after expression");
}

Test(compile_errors, no_sets) {
    expect_compile_error({}, {"a"}, "matrix must define at least one set");
}

Test(compile_errors, self_reference_and_longer_cycles) {
    expect_compile_error({{"a", "+a"}}, {}, "circular reference detected involving set \"a\"");
    // x is fine; the walk from y re-enters y through z.
    expect_compile_error({{"x", "a"}, {"y", "+z & +x"}, {"z", "a | +y"}}, {"a"},
                         "circular reference detected involving set \"y\"");
}

Test(compile_errors, the_first_bad_definition_and_the_first_bad_leaf_win) {
    expect_compile_error({{"s", "a & nope1 & nope2"}}, {"a"},
                         "set \"s\": unknown var or model \"nope1\"");
    expect_compile_error({{"s", "+nope & missing"}}, {"a"},
                         "set \"s\" references undefined set \"nope\"");
    expect_compile_error({{"s", "missing & +nope"}}, {"a"},
                         "set \"s\": unknown var or model \"missing\"");
    expect_compile_error({{"first", "missing"}, {"second", "(("}}, {"a"},
                         "set \"first\": unknown var or model \"missing\"");
    expect_compile_error({{"first", "a"}, {"second", "(("}, {"third", "missing"}}, {"a"},
                         "set \"second\": parse: unexpected token \"\"");
}

Test(compile_errors, names_quote_as_go) {
    expect_compile_error({{"a\"b", ""}}, {}, "set \"a\\\"b\": empty DSL expression");
    expect_compile_error({{"tab\tset", "a"}, {"x", "+tab"}}, {"a"},
                         "set \"x\" references undefined set \"tab\"");
}

Test(compile_errors, duplicate_set_names) {
    expect_compile_error({{"s", "a"}, {"s", "a"}}, {"a"}, "set \"s\" is defined more than once");
}

Test(compile_errors, nesting_200_deep_is_refused) {
    expect_compile_error({{"s", nested(200, "a")}}, {"a"},
                         "set \"s\": parse: parentheses nested deeper than 128");
}

Test(compile_errors, nesting_up_to_the_limit_is_fine) {
    auto program =
        compile_identity({{"s", nested(mx::kMaxParenDepth, "a | b & c")}}, {"a", "b", "c"});
    expect_text(join(mx::projected_sets(program, "s", {"a", "b", "c"})), "[[a], [b, c]]");
    expect_compile_error({{"s", nested(mx::kMaxParenDepth + 1, "a")}}, {"a"},
                         "set \"s\": parse: parentheses nested deeper than 128");
}

Test(compile_errors, overlong_dsl) {
    std::string dsl = "a";
    while (dsl.size() < mx::kMaxDslBytes) dsl += " & a"; // just over the limit
    expect_compile_error({{"s", dsl}}, {"a"}, "set \"s\": DSL expression longer than 65536 bytes");
    dsl.resize(mx::kMaxDslBytes - 3); // ends in "& a" or "a &": make it valid and in bounds
    while (!dsl.empty() && dsl.back() != 'a') dsl.pop_back();
    auto program = compile_identity({{"s", "  " + dsl + "  "}}, {"a"});
    expect_text(join(mx::projected_sets(program, "s", {"a"})), "[[a]]");
}

// ---- Program order: the given order, referenced sets first ----

Test(program_order, given_order_is_kept_without_references) {
    auto program = compile_identity({{"zeta", "a"}, {"alpha", "b"}, {"mid", "a & b"}}, {"a", "b"});
    expect_names(program.set_names(), {"zeta", "alpha", "mid"}, "program order");
}

Test(program_order, referenced_sets_come_first) {
    auto program = compile_identity(
        {{"top", "+mid & +base"}, {"other", "x"}, {"mid", "+base & y"}, {"base", "a | b"}},
        {"a", "b", "x", "y"});
    expect_names(program.set_names(), {"base", "mid", "top", "other"}, "program order");
}

// ---- dsl_test.go: the other Program tests ----

Test(solve, no_expansion_limit) {
    // large = target & (model-0-0 | ... | model-0-9) & ... over 6 dimensions of 10.
    Names models{"target"};
    std::string dsl = "target";
    Names running;
    for (int d = 0; d < 6; ++d) {
        dsl += " & (";
        for (int c = 0; c < 10; ++c) {
            std::string name = "model-" + std::to_string(d) + "-" + std::to_string(c);
            models.push_back(name);
            dsl += (c ? " | " : "") + name;
        }
        dsl += ")";
        running.push_back("model-" + std::to_string(d) + "-9");
    }
    running.push_back("outside");
    auto program = compile_identity({{"large", dsl}}, models);
    auto d = mx::solve(program, "target", running);
    expect_names(d.evict, {"outside"}, "evict");
    cr_assert_str_eq(d.set_name.c_str(), "large");
    expect_names(
        d.target_set,
        {"model-0-9", "model-1-9", "model-2-9", "model-3-9", "model-4-9", "model-5-9", "target"},
        "target set");
    cr_assert_eq(d.cost, 1);
}

Test(solve, more_than_64_relevant_models) {
    Names models{"target"};
    for (int i = 0; i < 70; ++i) models.push_back("model-" + std::to_string(i));
    std::string dsl;
    for (const auto& m : models) dsl += (dsl.empty() ? "" : " & ") + m;
    auto program = compile_identity({{"wide", dsl}}, models);
    Names running(models.begin() + 1, models.end());
    running.push_back("outside");
    auto d = mx::solve(program, "target", running);
    expect_names(d.evict, {"outside"}, "evict");
    cr_assert_eq(d.target_set.size(), 71u);
    cr_assert_str_eq(d.set_name.c_str(), "wide");

    // And a high bit decides: without model-69 in the set, it must go.
    std::string without_last = dsl.substr(0, dsl.rfind(" & "));
    auto narrower = compile_identity({{"wide", without_last}}, models);
    auto e = mx::solve(narrower, "target", running);
    expect_names(e.evict, {"model-69", "outside"}, "evict without model-69");
}

Test(solve, dominated_projection) {
    auto program =
        compile_identity({{"preferred", "target & (a | (a & b))"}}, {"target", "a", "b"});
    auto d = mx::solve(program, "target", {"a", "b"});
    expect_names(d.evict, {}, "evict");
    expect_names(d.target_set, {"a", "b", "target"}, "target set");
}

Test(solve, target_absent) {
    auto program = compile_identity({{"known", "a & b"}}, {"a", "b"});
    auto d = mx::solve(program, "missing", {"a", "b"});
    expect_names(d.evict, {"a", "b"}, "evict");
    expect_names(d.target_set, {"missing"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "");
    cr_assert_eq(d.cost, 0);
}

// ---- config/matrix_test.go: the Solve cases, through vars and evict costs ----

Test(config_matrix, basic) {
    Names models{"gemma", "qwen", "mistral", "voxtral", "llama70B"};
    auto program = compile_ok(
        {{"standard", "(g | q | m) & v"}, {"full", "L"}},
        config_resolver(
            {{"g", "gemma"}, {"q", "qwen"}, {"m", "mistral"}, {"v", "voxtral"}, {"L", "llama70B"}},
            models));
    auto cost = costs({{"llama70B", 30}, {"voxtral", 50}});

    auto d = mx::solve(program, "gemma", {"voxtral"}, cost);
    cr_assert_str_eq(d.set_name.c_str(), "standard");
    cr_assert_str_eq(d.dsl.c_str(), "(g | q | m) & v");
    expect_names(d.target_set, {"gemma", "voxtral"}, "target set");
    expect_names(d.evict, {}, "evict");

    d = mx::solve(program, "llama70B", {"voxtral"}, cost);
    cr_assert_str_eq(d.set_name.c_str(), "full");
    expect_names(d.target_set, {"llama70B"}, "target set");
    expect_names(d.evict, {"voxtral"}, "evict");
    cr_assert_eq(d.cost, 50);
}

Test(config_matrix, with_ref) {
    Names models{"gemma", "qwen", "mistral", "voxtral", "reranker"};
    auto program = compile_ok(
        {{"llms", "g | q | m"}, {"with_tts", "+llms & v"}, {"mega", "+with_tts & e"}},
        config_resolver(
            {{"g", "gemma"}, {"q", "qwen"}, {"m", "mistral"}, {"v", "voxtral"}, {"e", "reranker"}},
            models));
    auto d = mx::solve(program, "reranker", {"gemma", "voxtral"});
    cr_assert_str_eq(d.set_name.c_str(), "mega");
    expect_names(d.target_set, {"gemma", "reranker", "voxtral"}, "target set");
    expect_names(d.evict, {}, "evict");
}

Test(config_matrix, direct_model_names_without_vars) {
    Names models{"gemma", "qwen", "voxtral"};
    auto program = compile_ok({{"combo", "gemma & voxtral"}}, config_resolver({}, models));
    auto d = mx::solve(program, "gemma", {"voxtral"});
    expect_names(d.target_set, {"gemma", "voxtral"}, "target set");
    expect_names(d.evict, {}, "evict");
}

Test(config_matrix, mixed_vars_and_model_names) {
    Names models{"gemma", "qwen", "voxtral"};
    auto program = compile_ok({{"base", "g | qwen"}, {"combo", "+base & voxtral"}},
                              config_resolver({{"g", "gemma"}}, models));
    auto d = mx::solve(program, "qwen", {"voxtral"});
    cr_assert_str_eq(d.set_name.c_str(), "combo");
    expect_names(d.target_set, {"qwen", "voxtral"}, "target set");
}

Test(config_matrix, deduplicates_after_resolution) {
    Names models{"gemma", "qwen", "voxtral"};
    auto program = compile_ok({{"combo", "g & gemma"}}, config_resolver({{"g", "gemma"}}, models));
    auto d = mx::solve(program, "gemma", {});
    expect_names(d.target_set, {"gemma"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "combo");
}

Test(config_matrix, vars_take_precedence_over_model_names) {
    Names models{"gemma", "qwen", "voxtral"};
    auto program = compile_ok({{"combo", "qwen"}}, config_resolver({{"qwen", "gemma"}}, models));
    auto d = mx::solve(program, "gemma", {});
    expect_names(d.target_set, {"gemma"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "combo");
    auto q = mx::solve(program, "qwen", {"gemma"});
    expect_names(q.evict, {"gemma"}, "qwen is in no set");
    cr_assert_str_eq(q.set_name.c_str(), "");
}

Test(config_matrix, unknown_identifier_in_dsl) {
    auto program =
        mx::compile({{"s", "g & nonexistent"}}, config_resolver({{"g", "gemma"}}, {"gemma"}));
    cr_assert_not(program.ok());
    cr_assert_str_eq(program.error().message.c_str(),
                     "set \"s\": unknown var or model \"nonexistent\"");
}

Test(config_matrix, resolver_knows_vars_and_ids_only) {
    auto resolve = config_resolver({{"g", "gemma"}, {"qwen", "gemma"}}, {"gemma", "qwen"});
    expect_text(resolve("g").value_or("?"), "gemma");
    expect_text(resolve("qwen").value_or("?"), "gemma");
    expect_text(resolve("gemma").value_or("?"), "gemma");
    cr_assert_not(resolve("alias-of-gemma").has_value());
    cr_assert_not(resolve("").has_value());
}

// ---- router/matrix_test.go: the Solve cases ----

Test(router_matrix, tie_break_definition_order) {
    auto program = compile_identity({{"first", "a & b"}, {"second", "a & c"}}, {"a", "b", "c"});
    auto d = mx::solve(program, "a", {});
    cr_assert_str_eq(d.set_name.c_str(), "first");
    expect_names(d.target_set, {"a", "b"}, "target set");
    expect_names(d.evict, {}, "evict");
}

Test(router_matrix, evict_costs_preferred) {
    auto program =
        compile_identity({{"a_with_c", "a & c"}, {"a_with_b", "a & b"}}, {"a", "b", "c"});
    auto d = mx::solve(program, "a", {"b", "c"}, costs({{"b", 10}, {"c", 1}}));
    cr_assert_str_eq(d.set_name.c_str(), "a_with_b");
    expect_names(d.evict, {"c"}, "evict");
    expect_names(d.target_set, {"a", "b"}, "target set");
    cr_assert_eq(d.cost, 1);
    // Equal costs: the first set in program order.
    auto tie = mx::solve(program, "a", {"b", "c"});
    cr_assert_str_eq(tie.set_name.c_str(), "a_with_c");
    expect_names(tie.evict, {"b"}, "evict on a tie");
}

// ---- Cases of our own ----

Test(solve, ties_follow_definition_order_not_name_order) {
    // The original sorts set names before compiling, so it would pick "alpha"; we keep the
    // config file's order.
    auto program = compile_identity({{"zeta", "a & b"}, {"alpha", "a & c"}}, {"a", "b", "c"});
    auto d = mx::solve(program, "a", {});
    cr_assert_str_eq(d.set_name.c_str(), "zeta");
    d = mx::solve(program, "a", {"c", "b"});
    cr_assert_str_eq(d.set_name.c_str(), "zeta");
    expect_names(d.evict, {"c"}, "evict");
}

Test(solve, ties_within_a_set_follow_enumeration_order) {
    auto program = compile_identity({{"s", "a & (b | c)"}}, {"a", "b", "c"});
    auto d = mx::solve(program, "a", {"c", "b"});
    expect_names(d.evict, {"c"}, "evict");
    expect_names(d.target_set, {"a", "b"}, "target set");
    cr_assert_eq(d.cost, 1);
}

Test(solve, a_model_in_no_set_runs_alone) {
    auto program = compile_identity({{"pair", "a & b"}, {"solo", "c"}}, {"a", "b", "c", "z"});
    auto d = mx::solve(program, "z", {"c", "b", "a", "b"});
    expect_names(d.evict, {"a", "b", "c"}, "evict");
    expect_names(d.target_set, {"z"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "");
    cr_assert_str_eq(d.dsl.c_str(), "");
    cr_assert_eq(d.cost, 0);
}

Test(solve, target_already_running_evicts_nothing) {
    auto program = compile_identity({{"s_a", "a"}, {"s_b", "b"}, {"s_ab", "a & b"}}, {"a", "b"});
    auto d = mx::solve(program, "a", {"a"});
    expect_names(d.evict, {}, "evict");
    expect_names(d.target_set, {"a"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "s_a");

    d = mx::solve(program, "a", {"b", "a", "b"});
    expect_names(d.evict, {}, "evict");
    expect_names(d.target_set, {"a", "b"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "s_ab");

    // Even when no set holds what runs.
    d = mx::solve(program, "a", {"z", "a"});
    expect_names(d.evict, {}, "evict");
    expect_names(d.target_set, {"a", "z"}, "target set");
    cr_assert_str_eq(d.set_name.c_str(), "");
}

Test(solve, evicts_in_sorted_order_and_sums_costs) {
    auto program = compile_identity({{"s", "t & (x | y)"}}, {"t", "x", "y", "p", "q"});
    // Keeping x evicts p, q, y (7 + 5 + 1); keeping y evicts p, q, x (7 + 5 + 2).
    auto d =
        mx::solve(program, "t", {"y", "q", "p", "x", "q"}, costs({{"p", 7}, {"q", 5}, {"x", 2}}));
    expect_names(d.evict, {"p", "q", "y"}, "evict");
    expect_names(d.target_set, {"t", "x"}, "target set");
    cr_assert_eq(d.cost, 13);
    // A dearer y turns it round.
    d = mx::solve(program, "t", {"y", "q", "p", "x"},
                  costs({{"p", 7}, {"q", 5}, {"x", 2}, {"y", 3}}));
    expect_names(d.evict, {"p", "q", "x"}, "evict with y dearer");
    expect_names(d.target_set, {"t", "y"}, "target set with y dearer");
    cr_assert_eq(d.cost, 14);
}

Test(solve, refs_with_shared_sub_expressions) {
    Names models{"a", "b", "x", "y", "g", "q"};
    auto program = compile_identity({{"base", "a | b"},
                                     {"left", "+base & x"},
                                     {"right", "+base & y"},
                                     {"diamond", "+left & +right"},
                                     {"llms", "g | q"},
                                     {"pair", "+llms & +llms"}},
                                    models);
    expect_text(join(mx::projected_sets(program, "diamond", {"a", "b", "x", "y"})),
                "[[a, b, x, y]]");
    // Only x and y matter: a and b collapse, and the witness keeps the first alternative.
    expect_text(join(mx::projected_sets(program, "diamond", {"x", "y"})), "[[a, x, y]]");
    expect_text(join(mx::projected_sets(program, "pair", {"g", "q"})), "[[g, q]]");

    auto d = mx::solve(program, "g", {"q"});
    cr_assert_str_eq(d.set_name.c_str(), "pair");
    expect_names(d.evict, {}, "evict");
    expect_names(d.target_set, {"g", "q"}, "target set");

    d = mx::solve(program, "x", {"a", "b", "y", "q"});
    cr_assert_str_eq(d.set_name.c_str(), "diamond");
    expect_names(d.evict, {"q"}, "evict");
    expect_names(d.target_set, {"a", "b", "x", "y"}, "target set");
}

Test(solve, long_reference_chains_need_no_deep_recursion) {
    std::vector<SetDef> sets;
    const int count = 20000;
    // Defined last-first, so compile reorders the whole chain.
    for (int i = count - 1; i > 0; --i)
        sets.push_back({"s" + std::to_string(i), "+s" + std::to_string(i - 1)});
    sets.push_back({"s0", "a & b"});
    auto program = compile_identity(sets, {"a", "b"});
    expect_text(program.set_names().front(), "s0");
    expect_text(program.set_names().back(), "s19999");
    auto d = mx::solve(program, "a", {"b"});
    cr_assert_str_eq(d.set_name.c_str(), "s0");
    expect_names(d.evict, {}, "evict");
    cr_assert(mx::can_contain_all(program, {"a", "b"}));
}

// ---- CanContainAll ----

Test(can_contain_all, finds_one_alternative_holding_all) {
    auto program = compile_identity({{"pair", "a & (b | c)"}, {"solo", "d"}}, {"a", "b", "c", "d"});
    cr_assert(mx::can_contain_all(program, {}));
    cr_assert(mx::can_contain_all(program, {"a"}));
    cr_assert(mx::can_contain_all(program, {"c", "a"}));
    cr_assert(mx::can_contain_all(program, {"b", "a", "b"}));
    cr_assert(mx::can_contain_all(program, {"d"}));
    cr_assert_not(mx::can_contain_all(program, {"b", "c"}));
    cr_assert_not(mx::can_contain_all(program, {"a", "d"}));
    cr_assert_not(mx::can_contain_all(program, {"a", "unknown"}));
}

// ---- Config helpers ----

Test(config_helpers, var_keys) {
    cr_assert(mx::valid_var_key("abcdefghijklmnopqrstuvwxyzABCDEF"));
    cr_assert(mx::valid_var_key("model-var"));
    cr_assert(mx::valid_var_key("model.var"));
    cr_assert(mx::valid_var_key("0"));
    cr_assert_not(mx::valid_var_key("abcdefghijklmnopqrstuvwxyzABCDEFG"));
    cr_assert_not(mx::valid_var_key("a_b"));
    cr_assert_not(mx::valid_var_key(""));
    cr_assert_not(mx::valid_var_key("modèle"));
    cr_assert_not(mx::valid_var_key("a b"));
    expect_text(mx::invalid_var_key_message("a_b"),
                "var key \"a_b\" must contain only alphanumeric, '-' or '.' characters and "
                "be 1-32 characters long");
    expect_text(mx::invalid_var_key_message(""),
                "var key \"\" must contain only alphanumeric, '-' or '.' characters and be "
                "1-32 characters long");
    expect_text(mx::unknown_var_model_message("x", "nonexistent"),
                "var key \"x\" references unknown model \"nonexistent\"");
}

Test(config_helpers, evict_costs) {
    expect_text(mx::evict_cost_error("g", 0, true).value_or(""),
                "evict_cost for \"g\" must be a positive integer, got 0");
    expect_text(mx::evict_cost_error("g", -1, true).value_or(""),
                "evict_cost for \"g\" must be a positive integer, got -1");
    // The cost is checked before the key.
    expect_text(mx::evict_cost_error("unknown", 0, false).value_or(""),
                "evict_cost for \"unknown\" must be a positive integer, got 0");
    expect_text(mx::evict_cost_error("unknown", 5, false).value_or(""),
                "evict_costs: unknown var or model \"unknown\"");
    cr_assert_not(mx::evict_cost_error("gemma", 5, true).has_value());
}

Test(config_helpers, go_quote) {
    expect_text(mx::go_quote("plain"), "\"plain\"");
    expect_text(mx::go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    expect_text(mx::go_quote("it's"), "\"it's\"");
    expect_text(mx::go_quote("t\tn\nx\x01\x7f"), "\"t\\tn\\nx\\x01\\x7f\"");
    expect_text(mx::go_quote("modèle 模型 😀"), "\"modèle 模型 😀\"");
    expect_text(mx::go_quote("nb\u00a0sp\u0085\u200b\u2028"),
                "\"nb\\u00a0sp\\u0085\\u200b\\u2028\"");
    expect_text(mx::go_quote("bad\xff\xe2\x82"), "\"bad\\xff\\xe2\\x82\"");
    expect_text(mx::go_quote("\U000F0001"), "\"\\U000f0001\"");
}
