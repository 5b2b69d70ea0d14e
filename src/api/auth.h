// apiKeys: the key may come as `Authorization: Bearer K`, as the password of
// `Authorization: Basic`, or as `x-api-key: K` (the original's order). Compared in constant
// time against every configured key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/headers.h"

namespace ls::api {

// True when `keys` is empty (auth disabled) or the request carries one of them.
bool request_authorized(const http::HeaderList& headers, const std::vector<std::string>& keys);
// Routes that never need a key (liveness checks).
bool route_is_public(std::string_view path);
bool constant_time_equals(std::string_view a, std::string_view b);
std::string base64_decode(std::string_view in);

} // namespace ls::api
