// Headers as the original shows them to people (its captures and in-flight records): Go's
// canonical names, secrets redacted, one value per name, sorted as Go writes a map.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/headers.h"

namespace ls::http {

// "content-type" -> "Content-Type", as Go's net/http writes header names.
std::string canonical_header_name(std::string_view name);
// Canonical names with the original's sensitive ones (authorization, proxy-authorization,
// cookie, set-cookie, x-api-key) as "[REDACTED]"; the first value of each name; Host left
// out (Go keeps it apart); sorted by name.
std::vector<std::pair<std::string, std::string>> header_map(const HeaderList& headers);
// {"Name":"value",...} in the map's order.
std::string header_map_json(const std::vector<std::pair<std::string, std::string>>& headers);

} // namespace ls::http
