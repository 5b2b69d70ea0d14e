// Macro expansion (src/config/macros.h).
#include <criterion/criterion.h>

#include <cstdlib>
#include <string>

#include "config/macros.h"

using namespace ls::config;

static std::string expand_ok(const std::string& text, const MacroContext& ctx) {
    auto r = expand_macros(text, ctx);
    cr_assert(r.ok(), "expand_macros(%s) failed: %s", text.c_str(),
              r.ok() ? "" : r.error().message.c_str());
    return r.value();
}

static void expect_expand(const std::string& text, const MacroContext& ctx, const char* expected) {
    std::string got = expand_ok(text, ctx);
    cr_assert_str_eq(got.c_str(), expected, "input: %s", text.c_str());
}

static void expect_expand_error(const std::string& text, const MacroContext& ctx,
                                const char* message) {
    auto r = expand_macros(text, ctx);
    cr_assert_not(r.ok(), "expand_macros(%s) should fail", text.c_str());
    const std::string& m = r.error().message;
    cr_assert_str_eq(m.c_str(), message);
}

static void declare_ok(MacroSet& set, const std::string& name, const std::string& value,
                       const MacroContext& ctx) {
    auto r = declare_macro(set, name, value, ctx);
    cr_assert(r.ok(), "declare_macro(%s) failed: %s", name.c_str(),
              r.ok() ? "" : r.error().message.c_str());
}

static void expect_declare_error(MacroSet& set, const std::string& name, const std::string& value,
                                 const MacroContext& ctx, const char* message) {
    auto r = declare_macro(set, name, value, ctx);
    cr_assert_not(r.ok(), "declare_macro(%s) should fail", name.c_str());
    const std::string& m = r.error().message;
    cr_assert_str_eq(m.c_str(), message);
}

static const std::string& value_of(const MacroSet& set, const std::string& name) {
    for (const auto& e : set.entries)
        if (e.first == name) return e.second;
    cr_assert_fail("macro %s not declared", name.c_str());
    static std::string none;
    return none;
}

Test(macros, plain_text_is_unchanged) {
    MacroContext ctx;
    expect_expand("", ctx, "");
    expect_expand("no macros here $HOME $ {x} ${", ctx, "no macros here $HOME $ {x} ${");
    // Not a macro name: left for whoever reads it (as the original does).
    expect_expand("${HOME:-x} ${a b}", ctx, "${HOME:-x} ${a b}");
}

Test(macros, global_and_model) {
    MacroSet global{{{"bin", "/usr/bin/llama-server"}, {"ctx", "4096"}}};
    MacroSet model{{{"ctx", "8192"}}};
    MacroContext ctx;
    ctx.global = &global;
    expect_expand("${bin} -c ${ctx}", ctx, "/usr/bin/llama-server -c 4096");
    ctx.model = &model; // model macros override global ones
    expect_expand("${bin} -c ${ctx}${ctx}", ctx, "/usr/bin/llama-server -c 81928192");
}

Test(macros, unknown_macro) {
    MacroSet global{{{"a", "1"}}};
    MacroContext ctx;
    ctx.global = &global;
    expect_expand_error("x ${a} ${nope} y", ctx, "unknown macro '${nope}'");
}

Test(macros, declaration_order) {
    MacroSet global;
    MacroContext ctx;
    ctx.global = &global;
    declare_ok(global, "a", "A", ctx);
    declare_ok(global, "b", "${a}-B", ctx); // earlier: fine
    cr_assert_str_eq(value_of(global, "b").c_str(), "A-B");
    expect_declare_error(global, "c", "${d}", ctx, "macro 'c' references unknown macro '${d}'");
    declare_ok(global, "d", "D", ctx); // d now exists, but c was refused (d is declared later)
    expect_declare_error(global, "self", "x ${self}", ctx,
                         "macro 'self' references unknown macro '${self}'");
    expect_declare_error(global, "a", "again", ctx, "macro 'a' is already defined");
}

Test(macros, value_is_expanded_once_at_declaration) {
    MacroSet global;
    MacroContext gctx;
    gctx.global = &global;
    declare_ok(global, "a", "A", gctx);
    declare_ok(global, "b", "[${a}]", gctx);
    // A model override of `a` does not change `b`, which was fixed when it was declared.
    MacroSet model;
    MacroContext mctx = gctx;
    mctx.model = &model;
    declare_ok(model, "a", "X", mctx);
    expect_expand("${a} ${b}", mctx, "X [A]");
    // Substituted text is not scanned again: a value holding "${b}" literally stays so.
    MacroSet lit{{{"q", "${b}"}}};
    MacroContext lctx;
    lctx.global = &lit;
    expect_expand("${q}", lctx, "${b}");
}

Test(macros, model_macros_see_globals_and_earlier_model_macros) {
    MacroSet global;
    MacroContext gctx;
    gctx.global = &global;
    declare_ok(global, "flags", "-a", gctx);
    MacroSet model;
    MacroContext mctx = gctx;
    mctx.model = &model;
    mctx.model_id = "m";
    declare_ok(model, "flags", "${flags} -b", mctx); // extends the global it overrides
    declare_ok(model, "more", "${flags} -c", mctx);
    cr_assert_str_eq(value_of(model, "flags").c_str(), "-a -b");
    cr_assert_str_eq(value_of(model, "more").c_str(), "-a -b -c");
    expect_declare_error(model, "early", "${late}", mctx,
                         "macro 'early' references unknown macro '${late}'");
}

Test(macros, names) {
    MacroSet set;
    MacroContext ctx;
    ctx.global = &set;
    cr_assert(is_valid_macro_name("a-Z_09"));
    cr_assert_not(is_valid_macro_name(""));
    cr_assert_not(is_valid_macro_name("a.b"));
    cr_assert_not(is_valid_macro_name(std::string(64, 'x')));
    cr_assert(is_valid_macro_name(std::string(63, 'x')));
    expect_declare_error(set, "PORT", "1", ctx, "macro name 'PORT' is reserved");
    expect_declare_error(set, "PID", "1", ctx, "macro name 'PID' is reserved");
    expect_declare_error(set, "MODEL_ID", "1", ctx, "macro name 'MODEL_ID' is reserved");
    expect_declare_error(
        set, "a b", "1", ctx,
        "invalid macro name 'a b': must match ^[a-zA-Z0-9_-]+$ and be shorter than 64 characters");
}

Test(macros, env) {
    setenv("LS_TEST_MACRO_ENV", "/models", 1);
    unsetenv("LS_TEST_MACRO_UNSET");
    setenv("LS_TEST_MACRO_NL", "a\nb", 1);
    setenv("LS_TEST_MACRO_CR", "a\rb", 1);
    MacroContext ctx;
    expect_expand("-m ${env.LS_TEST_MACRO_ENV}/x.gguf", ctx, "-m /models/x.gguf");
    expect_expand_error("${env.LS_TEST_MACRO_UNSET}", ctx,
                        "environment variable 'LS_TEST_MACRO_UNSET' is not set");
    expect_expand_error("${env.LS_TEST_MACRO_NL}", ctx,
                        "environment variable 'LS_TEST_MACRO_NL' contains a newline or carriage "
                        "return");
    expect_expand_error("${env.LS_TEST_MACRO_CR}", ctx,
                        "environment variable 'LS_TEST_MACRO_CR' contains a newline or carriage "
                        "return");
    expect_expand_error("${env.}", ctx, "invalid environment variable name in '${env.}'");
    // An env value is not scanned for macros.
    setenv("LS_TEST_MACRO_DOLLAR", "${nope}", 1);
    expect_expand("${env.LS_TEST_MACRO_DOLLAR}", ctx, "${nope}");
}

Test(macros, env_in_macro_value) {
    setenv("LS_TEST_MACRO_DIR", "/srv", 1);
    MacroSet global;
    MacroContext ctx;
    ctx.global = &global;
    declare_ok(global, "dir", "${env.LS_TEST_MACRO_DIR}/models", ctx);
    expect_expand("${dir}", ctx, "/srv/models");
    unsetenv("LS_TEST_MACRO_GONE");
    expect_declare_error(global, "gone", "${env.LS_TEST_MACRO_GONE}", ctx,
                         "macro 'gone': environment variable 'LS_TEST_MACRO_GONE' is not set");
}

Test(macros, model_id) {
    MacroContext ctx;
    ctx.model_id = "qwen-7b";
    expect_expand("--alias ${MODEL_ID}", ctx, "--alias qwen-7b");
    MacroContext none;
    expect_expand_error("${MODEL_ID}", none, "${MODEL_ID} is only available in a model");
}

Test(macros, port_stays) {
    MacroContext ctx;
    ctx.model_id = "m";
    expect_expand("--port ${PORT} http://localhost:${PORT}", ctx,
                  "--port ${PORT} http://localhost:${PORT}");
}

Test(macros, pid_only_when_allowed) {
    MacroContext ctx;
    ctx.model_id = "m";
    expect_expand_error("kill ${PID}", ctx, "${PID} is only allowed in cmdStop");
    ctx.allow_pid = true;
    expect_expand("kill -TERM ${PID}", ctx, "kill -TERM ${PID}");
}

Test(macros, reserved_names_inside_macro_values_resolve_at_use) {
    MacroSet global;
    MacroContext gctx;
    gctx.global = &global;
    declare_ok(global, "srv", "llama-server --port ${PORT} --alias ${MODEL_ID}", gctx);
    declare_ok(global, "stop", "kill ${PID}", gctx);
    cr_assert_str_eq(value_of(global, "srv").c_str(),
                     "llama-server --port ${PORT} --alias ${MODEL_ID}");

    MacroContext ctx = gctx;
    ctx.model_id = "m1";
    expect_expand("${srv} -c 1", ctx, "llama-server --port ${PORT} --alias m1 -c 1");
    expect_expand_error("${stop}", ctx, "${PID} is only allowed in cmdStop");
    ctx.allow_pid = true;
    expect_expand("${stop}", ctx, "kill ${PID}");
}

Test(macros, substitute) {
    std::string s = substitute("a ${PORT} b ${PORT}${PORT} ${PID}", "PORT", "5800");
    cr_assert_str_eq(s.c_str(), "a 5800 b 58005800 ${PID}");
    // The replacement is not scanned again.
    s = substitute("${X}", "X", "${X}${X}");
    cr_assert_str_eq(s.c_str(), "${X}${X}");
    s = substitute("none", "X", "y");
    cr_assert_str_eq(s.c_str(), "none");
}

Test(macros, is_single_reference) {
    cr_assert(is_single_reference("${ctx}"));
    cr_assert(is_single_reference("${a-b_1}"));
    cr_assert(is_single_reference("${env.HOME}"));
    cr_assert(is_single_reference("${MODEL_ID}"));
    cr_assert(is_single_reference("${PORT}"));
    cr_assert_not(is_single_reference("${ctx} "));
    cr_assert_not(is_single_reference(" ${ctx}"));
    cr_assert_not(is_single_reference("${a}${b}"));
    cr_assert_not(is_single_reference("${a}x${b}"));
    cr_assert_not(is_single_reference("${}"));
    cr_assert_not(is_single_reference("${a.b}"));
    cr_assert_not(is_single_reference("${env.}"));
    cr_assert_not(is_single_reference("${HOME:-x}"));
    cr_assert_not(is_single_reference("ctx"));
    cr_assert_not(is_single_reference(""));
}

// Macros that use macros many times grow geometrically: 551 bytes of configuration (six
// macros, each using the one before sixteen times) asked the loader for gigabytes
// (tests/fuzz/fuzz_config reports it as out-of-memory; the input is in its corpus). An
// expansion past 1 MiB is refused now; a long text without macros is not.
Test(macros, geometric_growth_is_refused) {
    MacroSet global;
    MacroContext ctx;
    ctx.global = &global;
    auto sixteen = [](const char* name) {
        std::string s;
        for (int i = 0; i < 16; ++i) s += std::string("${") + name + "}";
        return s;
    };
    declare_ok(global, "a", std::string(64, 'x'), ctx);
    declare_ok(global, "b", sixteen("a"), ctx); // 1 KiB
    declare_ok(global, "c", sixteen("b"), ctx); // 16 KiB
    declare_ok(global, "d", sixteen("c"), ctx); // 256 KiB
    cr_assert_eq(value_of(global, "d").size(), 256u * 1024);
    expect_declare_error(global, "e", sixteen("d"), ctx,
                         "macro 'e': the expansion is longer than 1048576 bytes (macros that "
                         "use macros many times over?)");
    expect_expand_error("${d}${d}${d}${d}${d}", ctx,
                        "the expansion is longer than 1048576 bytes (macros that use macros "
                        "many times over?)");
    expect_expand("${d}${d}${d}${d}", ctx, std::string(1024 * 1024, 'x').c_str()); // exactly 1 MiB
    const std::string plain(2 * 1024 * 1024, 'y');
    expect_expand(plain, ctx, plain.c_str());
}
