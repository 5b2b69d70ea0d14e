#include "config/macros.h"

#include <algorithm>
#include <cstdlib>
#include <string_view>

namespace ls::config {
namespace {

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* Any ${...} whose content fits the name pattern is a macro reference (as in the original's
 * leftover check); anything else, e.g. a shell-style ${HOME:-x}, stays literal. */
bool looks_like_reference(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!is_name_char(c)) return false;
    return true;
}

bool is_env_name(std::string_view name) {
    if (name.empty()) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    return true;
}

bool is_reserved(std::string_view name) {
    return name == "PORT" || name == "PID" || name == "MODEL_ID";
}

const std::string* lookup(const MacroSet* set, std::string_view name) {
    if (!set) return nullptr;
    for (const auto& [key, value] : set->entries)
        if (key == name) return &value;
    return nullptr;
}

/* Handles one of the reserved names; appends its expansion (or the literal token) to `out`. */
Result<void> expand_reserved(std::string_view name, std::string_view token, const MacroContext& ctx,
                             std::string& out) {
    if (name == "PORT" || ctx.keep_reserved) {
        out += token;
    } else if (name == "PID") {
        if (!ctx.allow_pid) return make_error("${PID} is only allowed in cmdStop");
        out += token;
    } else { // MODEL_ID
        if (ctx.model_id.empty()) return make_error("${MODEL_ID} is only available in a model");
        out += ctx.model_id;
    }
    return {};
}

/* A macro may use another many times, and that one the next: expansions grow geometrically,
 * so a few hundred bytes of configuration could ask for gigabytes (a "billion laughs", as YAML
 * anchors could, see kMaxJsonValues). No command line or value needs more than this (or than
 * the text itself, when that is longer: a plain value is never refused). */
constexpr size_t kMaxExpansion = 1024 * 1024;

Error too_long(size_t limit) {
    return make_error("the expansion is longer than " + std::to_string(limit) +
                      " bytes (macros that use macros many times over?)");
}

/* One left-to-right pass over `text`; substituted text is never scanned again, except that a
 * user macro's stored value gets its reserved names (${PORT}, ${PID}, ${MODEL_ID}) resolved:
 * those were kept literal when the macro was declared (`reserved_only`). `out` grows past
 * `limit` by one piece at most before the expansion is refused. */
Result<void> expand_into(std::string_view text, const MacroContext& ctx, bool reserved_only,
                         std::string& out, size_t limit) {
    size_t i = 0;
    while (i < text.size()) {
        if (out.size() > limit) return too_long(limit);
        size_t start = text.find("${", i);
        if (start == std::string_view::npos) break;
        size_t end = text.find('}', start + 2);
        if (end == std::string_view::npos) break;
        out.append(text.substr(i, start - i));
        std::string_view token = text.substr(start, end - start + 1);
        std::string_view name = text.substr(start + 2, end - start - 2);
        i = end + 1;

        if (is_reserved(name)) {
            if (auto r = expand_reserved(name, token, ctx, out); !r) return r;
            continue;
        }
        if (reserved_only) {
            out += token;
            continue;
        }
        if (name.substr(0, 4) == "env.") {
            std::string var(name.substr(4));
            if (!is_env_name(var))
                return make_error("invalid environment variable name in '" + std::string(token) +
                                  "'");
            const char* value = std::getenv(var.c_str());
            if (!value) return make_error("environment variable '" + var + "' is not set");
            std::string_view v(value);
            if (v.find_first_of("\r\n") != std::string_view::npos)
                return make_error("environment variable '" + var +
                                  "' contains a newline or carriage return");
            out += v;
            continue;
        }
        if (!looks_like_reference(name)) {
            out += token;
            continue;
        }
        const std::string* value = lookup(ctx.model, name);
        if (!value) value = lookup(ctx.global, name);
        if (!value) return make_error("unknown macro '" + std::string(token) + "'");
        if (auto r = expand_into(*value, ctx, true, out, limit); !r) return r;
    }
    out.append(text.substr(i));
    if (out.size() > limit) return too_long(limit);
    return {};
}

} // namespace

bool is_valid_macro_name(const std::string& name) {
    return name.size() < 64 && looks_like_reference(name);
}

bool is_single_reference(const std::string& text) {
    if (text.size() < 4 || text.compare(0, 2, "${") != 0 || text.back() != '}') return false;
    std::string_view name(text.data() + 2, text.size() - 3);
    if (name.find('}') != std::string_view::npos) return false;
    if (name.substr(0, 4) == "env.") return is_env_name(name.substr(4));
    return looks_like_reference(name);
}

Result<std::string> expand_macros(const std::string& text, const MacroContext& ctx) {
    std::string out;
    out.reserve(text.size());
    const size_t limit = std::max(kMaxExpansion, text.size());
    if (auto r = expand_into(text, ctx, false, out, limit); !r) return r.error();
    return out;
}

Result<void> declare_macro(MacroSet& target, const std::string& name, const std::string& value,
                           const MacroContext& ctx) {
    if (!is_valid_macro_name(name))
        return make_error("invalid macro name '" + name +
                          "': must match ^[a-zA-Z0-9_-]+$ and be shorter than 64 characters");
    if (is_reserved(name)) return make_error("macro name '" + name + "' is reserved");
    if (lookup(&target, name)) return make_error("macro '" + name + "' is already defined");

    MacroContext decl = ctx;
    decl.keep_reserved = true;
    auto expanded = expand_macros(value, decl);
    if (!expanded) {
        const std::string& msg = expanded.error().message;
        if (msg.rfind("unknown macro ", 0) == 0)
            return make_error("macro '" + name + "' references " + msg);
        return make_error("macro '" + name + "': " + msg);
    }
    target.entries.emplace_back(name, std::move(expanded.value()));
    return {};
}

std::string substitute(std::string text, const std::string& name, const std::string& value) {
    const std::string token = "${" + name + "}";
    size_t pos = 0;
    while ((pos = text.find(token, pos)) != std::string::npos) {
        text.replace(pos, token.size(), value);
        pos += value.size();
    }
    return text;
}

} // namespace ls::config
