#include "config/values.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace ls::config::detail {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

/* ---- typing of plain scalars, as go-yaml resolves them (YAML 1.1 booleans included) ---- */

std::optional<bool> yaml_bool(std::string_view t) {
    if (iequals(t, "true") || iequals(t, "yes") || iequals(t, "on")) return true;
    if (iequals(t, "false") || iequals(t, "no") || iequals(t, "off")) return false;
    return std::nullopt;
}

/* An integer as Go's strconv.ParseInt(text, 0, 64) (or ParseUint) reads it after go-yaml has
 * removed the underscores: decimal, 0x hex, 0o/0 octal, 0b binary, optional sign. Returns its
 * decimal text; nullopt when it is not an integer or does not fit in 64 bits. */
std::optional<std::string> yaml_int(std::string_view t) {
    std::string p;
    for (char c : t)
        if (c != '_') p += c;
    size_t i = 0;
    bool neg = false;
    bool sign = false;
    if (i < p.size() && (p[i] == '+' || p[i] == '-')) {
        neg = p[i] == '-';
        sign = true;
        ++i;
    }
    unsigned base = 10;
    if (i + 1 < p.size() && p[i] == '0') {
        char x = p[i + 1];
        if (x == 'x' || x == 'X') {
            base = 16;
            i += 2;
        } else if (x == 'o' || x == 'O') {
            base = 8;
            i += 2;
        } else if (x == 'b' || x == 'B') {
            base = 2;
            i += 2;
        } else {
            base = 8;
            ++i;
        }
    }
    if (i >= p.size()) return std::nullopt;
    unsigned long long n = 0;
    const unsigned long long kMax = std::numeric_limits<unsigned long long>::max();
    for (; i < p.size(); ++i) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = static_cast<unsigned>(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = static_cast<unsigned>(c - 'A' + 10);
        else
            return std::nullopt;
        if (d >= base) return std::nullopt;
        if (n > (kMax - d) / base) return std::nullopt; // beyond 64 bits: maybe a float
        n = n * base + d;
    }
    const unsigned long long kMaxSigned = std::numeric_limits<long long>::max();
    if (neg) {
        if (n > kMaxSigned + 1) return std::nullopt;
        return n == 0 ? std::string("0") : "-" + std::to_string(n);
    }
    if (sign && n > kMaxSigned) return std::nullopt; // ParseUint takes no sign
    return std::to_string(n);
}

/* A float as go-yaml reads it: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ after
 * removing underscores, finite. (.inf and .nan have no JSON form and stay strings.) */
std::optional<double> yaml_float(std::string_view t) {
    std::string p;
    for (char c : t)
        if (c != '_') p += c;
    size_t i = 0;
    auto digits = [&]() {
        size_t start = i;
        while (i < p.size() && p[i] >= '0' && p[i] <= '9') ++i;
        return i - start;
    };
    if (i < p.size() && (p[i] == '+' || p[i] == '-')) ++i;
    if (i < p.size() && p[i] == '.') {
        ++i;
        if (digits() == 0) return std::nullopt;
    } else {
        if (digits() == 0) return std::nullopt;
        if (i < p.size() && p[i] == '.') {
            ++i;
            digits();
        }
    }
    if (i < p.size() && (p[i] == 'e' || p[i] == 'E')) {
        ++i;
        if (i < p.size() && (p[i] == '+' || p[i] == '-')) ++i;
        if (digits() == 0) return std::nullopt;
    }
    if (i != p.size()) return std::nullopt;
    double d = std::strtod(p.c_str(), nullptr);
    if (!std::isfinite(d)) return std::nullopt;
    return d;
}

/* A number or boolean literal as JSON; null when the text is neither. */
Json typed_literal(const std::string& text) {
    if (auto b = yaml_bool(text)) return Json(cJSON_CreateBool(*b));
    // Integers keep their exact digits (a double would round beyond 2^53).
    if (auto n = yaml_int(text)) return Json(cJSON_CreateRaw(n->c_str()));
    if (auto d = yaml_float(text)) return Json(cJSON_CreateNumber(*d));
    return nullptr;
}

std::string json_text(const cJSON* j) {
    return json_print(j).value_or("");
}

ParamSet param_set(const cJSON* object) {
    ParamSet set;
    set.json = json_text(object);
    for (const cJSON* item = object->child; item; item = item->next)
        set.members.push_back({item->string, json_text(item)});
    return set;
}

/* `stripParams`: comma-separated, blanks trimmed, empties, duplicates and "model" dropped. */
std::vector<std::string> split_strip_params(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string::npos) comma = text.size();
        std::string item = text.substr(start, comma - start);
        const char* blanks = " \t\n\r\v\f";
        size_t b = item.find_first_not_of(blanks);
        size_t e = item.find_last_not_of(blanks);
        item = b == std::string::npos ? std::string() : item.substr(b, e - b + 1);
        if (!item.empty() && item != "model" &&
            std::find(out.begin(), out.end(), item) == out.end())
            out.push_back(item);
        start = comma + 1;
    }
    return out;
}

bool contains_port(const std::vector<std::string>& words) {
    for (const auto& w : words)
        if (w.find("${PORT}") != std::string::npos) return true;
    return false;
}

/* Joins argv for display, single-quoting words that would not split back the same. */
std::string join_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += ' ';
        if (!w.empty() && w.find_first_of(" \t\n\r\v\f'\"\\") == std::string::npos) {
            out += w;
            continue;
        }
        out += '\'';
        for (char c : w) {
            if (c == '\'')
                out += "'\\''";
            else
                out += c;
        }
        out += '\'';
    }
    return out;
}

/* "24G", "512M", "1073741824", "infinity" (= no limit): 1024-based suffixes K M G T. */
bool parse_size(const std::string& text, uint64_t& out) {
    if (text == "infinity") {
        out = 0;
        return true;
    }
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || errno == ERANGE || v <= 0) return false;
    std::string suffix(end);
    if (suffix.size() == 2 && (suffix[1] == 'B' || suffix[1] == 'b')) suffix.pop_back();
    double mult = 1;
    if (suffix.empty() || suffix == "B")
        mult = 1;
    else if (suffix == "K" || suffix == "k")
        mult = 1024.0;
    else if (suffix == "M" || suffix == "m")
        mult = 1024.0 * 1024;
    else if (suffix == "G" || suffix == "g")
        mult = 1024.0 * 1024 * 1024;
    else if (suffix == "T" || suffix == "t")
        mult = 1024.0 * 1024 * 1024 * 1024;
    else
        return false;
    out = static_cast<uint64_t>(v * mult);
    return out > 0;
}

/* "0-7,16": comma-separated CPU numbers and ranges. */
bool valid_cpu_list(const std::string& text) {
    if (text.empty()) return false;
    size_t i = 0;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) ++i;
        if (i == start) return false;
        if (i < text.size() && text[i] == '-') {
            ++i;
            size_t s2 = i;
            while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) ++i;
            if (i == s2) return false;
        }
        if (i < text.size()) {
            if (text[i] != ',') return false;
            ++i;
            if (i == text.size()) return false;
        }
    }
    return true;
}

bool parse_backend(const std::string& text, Backend& out) {
    if (text == "auto")
        out = Backend::Auto;
    else if (text == "scope")
        out = Backend::Scope;
    else if (text == "fork")
        out = Backend::Fork;
    else
        return false;
    return true;
}

bool has_space_or_control(const std::string& s) {
    for (unsigned char c : s)
        if (c <= 0x20 || c == 0x7f) return true;
    return false;
}

namespace {
// Optimal string alignment distance (Levenshtein plus adjacent transpositions), ASCII
// case-insensitive: a case slip costs nothing, a swapped pair of letters one edit.
size_t edit_distance(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]))
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}
} // namespace

std::string closest_key(std::string_view word, const std::vector<std::string_view>& candidates) {
    if (word.empty() || word.size() > 64) return {};
    // At most a third of the word's letters wrong (1 for short words): a real typo, not a
    // different key that happens to be short.
    const size_t limit = std::max<size_t>(1, word.size() / 3);
    std::string best;
    size_t best_distance = limit + 1;
    for (std::string_view c : candidates) {
        const size_t dist = edit_distance(word, c);
        if (dist < best_distance) {
            best_distance = dist;
            best = std::string(c);
        }
    }
    return best;
}

std::string trim_blanks(const std::string& s) {
    const char* blanks = " \t\n\r\v\f";
    const size_t b = s.find_first_not_of(blanks);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(blanks) - b + 1);
}

std::optional<double> parse_go_duration(std::string_view text) {
    if (text == "0") return 0.0;
    double total = 0;
    size_t i = 0;
    bool any = false;
    while (i < text.size()) {
        const size_t start = i;
        while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
        if (i == start) return std::nullopt;
        const double n = std::strtod(std::string(text.substr(start, i - start)).c_str(), nullptr);
        const size_t unit_start = i;
        while (i < text.size() && !(text[i] >= '0' && text[i] <= '9') && text[i] != '.') ++i;
        const std::string_view unit = text.substr(unit_start, i - unit_start);
        double scale;
        if (unit == "h")
            scale = 3600;
        else if (unit == "m")
            scale = 60;
        else if (unit == "s")
            scale = 1;
        else if (unit == "ms")
            scale = 1e-3;
        else if (unit == "us" || unit == "\xc2\xb5s")
            scale = 1e-6;
        else if (unit == "ns")
            scale = 1e-9;
        else
            return std::nullopt;
        total += n * scale;
        any = true;
    }
    if (!any) return std::nullopt;
    return total;
}

} // namespace ls::config::detail
