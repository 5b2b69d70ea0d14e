// Values of the config as go-yaml types them (YAML 1.1 booleans, Go integer syntax) and the
// small value formats of our keys (sizes, CPU lists, backends); pure functions.
#pragma once

#include <cjson/cJSON.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "util/json.h"

namespace ls::config::detail {

using Json = JsonPtr;

bool iequals(std::string_view a, std::string_view b);
std::optional<bool> yaml_bool(std::string_view t);
// An integer as Go's strconv.ParseInt(text, 0, 64) reads it: its decimal text, or nullopt.
std::optional<std::string> yaml_int(std::string_view t);
std::optional<double> yaml_float(std::string_view t);
// A number or boolean literal as JSON; null when the text is neither.
Json typed_literal(const std::string& text);
std::string json_text(const cJSON* j);
ParamSet param_set(const cJSON* object);
std::vector<std::string> split_strip_params(const std::string& text);
bool contains_port(const std::vector<std::string>& words);
std::string join_words(const std::vector<std::string>& words);
bool parse_size(const std::string& text, uint64_t& out);
bool valid_cpu_list(const std::string& text);
bool parse_backend(const std::string& text, Backend& out);
bool has_space_or_control(const std::string& s);
std::string trim_blanks(const std::string& s);
// A Go duration ("15s", "1m30s", "500ms", "1h"), in seconds; nullopt when it is not one (a bare
// number is not: Go refuses it too).
std::optional<double> parse_go_duration(std::string_view text);
// The candidate closest to a misspelt key (`tll` -> `ttl`, `CheckEndpoint` -> `checkEndpoint`),
// or "" when none is close enough to be a likely typo.
std::string closest_key(std::string_view word, const std::vector<std::string_view>& candidates);

} // namespace ls::config::detail
