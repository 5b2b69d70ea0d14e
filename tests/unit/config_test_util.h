// Helpers of the config unit tests: load YAML text as "config.yaml" and compare the rendered
// errors and warnings exactly.
#pragma once

#include <criterion/criterion.h>

#include <string>

#include "config/config.h"

namespace ls::config::test {

// Raw string literals in this file start with a newline so that line 1 is the first YAML line.
inline std::string yaml_text(const char* text) {
    std::string s(text);
    if (!s.empty() && s[0] == '\n') s.erase(0, 1);
    return s;
}

inline Config load_ok(const char* text) {
    auto r = load_config_from_string(yaml_text(text), "config.yaml");
    cr_assert(r.ok(), "load failed: %s", r.ok() ? "" : r.error().message.c_str());
    return std::move(r).value();
}

inline void expect_error(const char* text, const char* message) {
    auto r = load_config_from_string(yaml_text(text), "config.yaml");
    cr_assert_not(r.ok(), "load should fail with: %s", message);
    const std::string& m = r.error().message;
    cr_assert_str_eq(m.c_str(), message);
}

inline void expect_warning(const Config& c, const char* rendered) {
    for (const auto& w : c.warnings) {
        std::string s = w.render();
        if (s == rendered) return;
    }
    std::string all;
    for (const auto& w : c.warnings) all += "\n  " + w.render();
    cr_assert_fail("warning '%s' not found; got:%s", rendered, all.c_str());
}


} // namespace ls::config::test
