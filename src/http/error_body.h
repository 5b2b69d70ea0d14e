// OpenAI-style error bodies, in the original llama-swap's layout:
// {"error":{"message":…,"type":…,"param":null,"code":…}}
#pragma once

#include <string>
#include <string_view>

namespace ls::http {

// `type` defaults from the status: 401 authentication_error, 429 rate_limit_error, other 4xx
// invalid_request_error, 5xx server_error. `code` is a short machine-readable reason.
std::string error_json(int status, std::string_view message, std::string_view code,
                       std::string_view type = {});
std::string json_escape(std::string_view s);

} // namespace ls::http
