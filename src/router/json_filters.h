// `filters` of a model (stripParams, setParams, setParamsByID) applied to a JSON request body.
// The body is parsed and printed again (compact); "model" is never stripped or set by them.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "util/result.h"

namespace ls::router {

// `requested` is the name the client used (an id or alias) for setParamsByID; a non-empty
// `use_model_name` replaces "model".
Result<std::string> apply_json_filters(std::string_view body, const config::Filters& filters,
                                       const std::string& requested,
                                       const std::string& use_model_name);

} // namespace ls::router
