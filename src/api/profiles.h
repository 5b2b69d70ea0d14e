// The profile API: GET /api/profiles and PUT /api/profiles/active, in the original's layouts
// and statuses. Pure: the daemon holds the active profile and publishes its changes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace ls::api {

// {"active":null|"name","profiles":[{"id","description","pins":{...}}]} sorted by id.
std::string profiles_json(const config::Config& cfg, const std::string& active);

// {"active":null|"name"}: the body of a successful PUT and of the profileChanged event.
std::string active_profile_json(const std::string& active);

// A PUT /api/profiles/active body: {"name":"x"} or {"name":null} ("" also means none).
struct ProfileChoice {
    int status = 200;    // 400 or 404 when refused
    std::string message; // the refusal
    std::string name;    // the profile to make active; "" for none
};
ProfileChoice parse_profile_choice(std::string_view body, const config::Config& cfg);

} // namespace ls::api
