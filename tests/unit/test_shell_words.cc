// Word splitting and comment stripping of `cmd` (src/config/shell_words.h).
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "config/shell_words.h"

using ls::config::split_words;
using ls::config::strip_comment_lines;
using Words = std::vector<std::string>;

static Words split_ok(const std::string& text) {
    auto r = split_words(text);
    cr_assert(r.ok(), "split_words(%s) failed: %s", text.c_str(),
              r.ok() ? "" : r.error().message.c_str());
    return r.value();
}

static void expect_words(const std::string& text, const Words& expected) {
    Words got = split_ok(text);
    cr_assert_eq(got.size(), expected.size(), "%s: %zu words, expected %zu", text.c_str(),
                 got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
        const std::string& g = got[i];
        const std::string& e = expected[i];
        cr_assert_str_eq(g.c_str(), e.c_str(), "%s: word %zu", text.c_str(), i);
    }
}

static void expect_error(const std::string& text, const char* message) {
    auto r = split_words(text);
    cr_assert_not(r.ok(), "split_words(%s) should fail", text.c_str());
    const std::string& m = r.error().message;
    cr_assert_str_eq(m.c_str(), message);
}

Test(split_words, simple) {
    expect_words("llama-server -m model.gguf", {"llama-server", "-m", "model.gguf"});
}

Test(split_words, empty_and_blank) {
    expect_words("", {});
    expect_words("   \t\n  ", {});
}

Test(split_words, blanks_of_all_kinds) {
    expect_words("  a   b\t\tc\n\nd \r\n e  ", {"a", "b", "c", "d", "e"});
}

Test(split_words, single_quotes_are_literal) {
    expect_words("echo 'a  b' '\\n' '\"x\"' '$HOME'", {"echo", "a  b", "\\n", "\"x\"", "$HOME"});
}

Test(split_words, double_quotes_with_escapes) {
    expect_words(R"(x "a \"b\" c" "back\\slash" "\$d" "\`e" "keep\n" "it's")",
                 {"x", "a \"b\" c", "back\\slash", "$d", "`e", "keep\\n", "it's"});
}

Test(split_words, double_quote_line_continuation) {
    expect_words("\"ab\\\ncd\"", {"abcd"});
}

Test(split_words, backslash_escapes_outside_quotes) {
    expect_words(R"(a\ b c\"d \\ \'e)", {"a b", "c\"d", "\\", "'e"});
}

Test(split_words, backslash_newline_outside_quotes_joins) {
    expect_words("--flag \\\n  value", {"--flag", "value"});
    expect_words("ab\\\ncd", {"abcd"});
}

Test(split_words, adjacent_parts_make_one_word) {
    expect_words(R"(a"b c"'d')", {"ab cd"});
    expect_words(R"(--opt="x y")", {"--opt=x y"});
}

Test(split_words, empty_quotes_make_empty_words) {
    expect_words("''", {""});
    expect_words("a \"\" b ''", {"a", "", "b", ""});
}

Test(split_words, hash_is_not_special) {
    expect_words("a#b #c", {"a#b", "#c"});
}

Test(split_words, macros_stay_literal) {
    expect_words("--port ${PORT} '${X}'", {"--port", "${PORT}", "${X}"});
}

Test(split_words, errors) {
    expect_error("echo 'abc", "unterminated single quote");
    expect_error("echo \"abc", "unterminated double quote");
    expect_error("echo \"abc\\\"", "unterminated double quote");
    expect_error("echo abc\\", "trailing backslash");
}

static void expect_stripped(const std::string& text, const char* expected) {
    std::string got = strip_comment_lines(text);
    cr_assert_str_eq(got.c_str(), expected, "input: %s", text.c_str());
}

Test(strip_comment_lines, drops_comment_lines) {
    expect_stripped("a\n# comment\nb\n", "a\nb\n");
    expect_stripped("a\n    # indented\n\t# tab\nb", "a\nb");
    expect_stripped("# only", "");
    expect_stripped("", "");
}

Test(strip_comment_lines, hash_inside_line_is_kept) {
    expect_stripped("a --x=#y\nb # not a comment line", "a --x=#y\nb # not a comment line");
}

Test(strip_comment_lines, continuations_are_joined) {
    expect_stripped("a \\\n  b", "a    b");
    expect_stripped("a \\   \nb", "a  b");
    // A comment line inside a continued command does not end it.
    expect_stripped("srv \\\n  # --old\n  --new", "srv    --new");
    // An escaped backslash (even count) is not a continuation.
    expect_stripped("a\\\\\nb", "a\\\\\nb");
}

Test(strip_comment_lines, then_split) {
    std::string text = strip_comment_lines("llama-server \\\n"
                                           "  # --ctx-size 4096\n"
                                           "  --port ${PORT} \\\n"
                                           "  -m 'my model.gguf'\n");
    expect_words(text, {"llama-server", "--port", "${PORT}", "-m", "my model.gguf"});
}
