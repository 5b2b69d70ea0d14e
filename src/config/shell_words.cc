#include "config/shell_words.h"

namespace ls::config {
namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

} // namespace

std::string strip_comment_lines(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        bool has_newline = nl != std::string_view::npos;
        std::string_view line = text.substr(pos, has_newline ? nl - pos : std::string_view::npos);
        pos = has_newline ? nl + 1 : text.size() + 1;

        size_t first = line.find_first_not_of(" \t");
        if (first != std::string_view::npos && line[first] == '#') continue;

        /* A line ending in an odd number of backslashes (trailing blanks ignored, as the
         * original trims lines) continues on the next one: the backslash becomes a blank. */
        size_t last = line.find_last_not_of(" \t\r");
        size_t backslashes = 0;
        if (last != std::string_view::npos)
            while (backslashes <= last && line[last - backslashes] == '\\') ++backslashes;
        if (backslashes % 2 == 1) {
            out.append(line.substr(0, last));
            out += ' ';
            continue;
        }
        out.append(line);
        if (has_newline) out += '\n';
    }
    return out;
}

Result<std::vector<std::string>> split_words(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false; // true once a word has started, even if it is still empty ('')
    size_t i = 0;
    const size_t n = text.size();
    while (i < n) {
        char c = text[i];
        if (is_blank(c)) {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
            ++i;
        } else if (c == '\'') {
            size_t close = text.find('\'', i + 1);
            if (close == std::string_view::npos) return make_error("unterminated single quote");
            word.append(text.substr(i + 1, close - i - 1));
            in_word = true;
            i = close + 1;
        } else if (c == '"') {
            in_word = true;
            ++i;
            for (;;) {
                if (i >= n) return make_error("unterminated double quote");
                char d = text[i];
                if (d == '"') {
                    ++i;
                    break;
                }
                if (d == '\\' && i + 1 < n) {
                    char e = text[i + 1];
                    if (e == '"' || e == '\\' || e == '$' || e == '`') {
                        word += e;
                        i += 2;
                        continue;
                    }
                    if (e == '\n') { // line continuation: both disappear
                        i += 2;
                        continue;
                    }
                }
                word += d; // other backslashes are literal inside double quotes
                ++i;
            }
        } else if (c == '\\') {
            if (i + 1 >= n) return make_error("trailing backslash");
            if (text[i + 1] != '\n') { // backslash-newline is a continuation, not a character
                word += text[i + 1];
                in_word = true;
            }
            i += 2;
        } else {
            word += c;
            in_word = true;
            ++i;
        }
    }
    if (in_word) words.push_back(std::move(word));
    return words;
}

} // namespace ls::config
