#include "api/profiles.h"

#include "router/matrix.h"
#include "util/json.h"

namespace ls::api {

std::string profiles_json(const config::Config& cfg, const std::string& active) {
    JsonPtr root(cJSON_CreateObject());
    if (active.empty())
        cJSON_AddNullToObject(root.get(), "active");
    else
        cJSON_AddStringToObject(root.get(), "active", active.c_str());
    cJSON* list = cJSON_AddArrayToObject(root.get(), "profiles");
    for (const auto& [id, p] : cfg.profiles) { // std::map: sorted by id
        cJSON* rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "id", id.c_str());
        cJSON_AddStringToObject(rec, "description", p.description.c_str());
        cJSON* pins = cJSON_AddObjectToObject(rec, "pins");
        for (const auto& [pin, target] : p.pins)
            cJSON_AddStringToObject(pins, pin.c_str(), target.c_str());
        cJSON_AddItemToArray(list, rec);
    }
    return json_print(root.get()).value_or("{}") + "\n";
}

std::string active_profile_json(const std::string& active) {
    JsonPtr root(cJSON_CreateObject());
    if (active.empty())
        cJSON_AddNullToObject(root.get(), "active");
    else
        cJSON_AddStringToObject(root.get(), "active", active.c_str());
    return json_print(root.get()).value_or("{\"active\":null}");
}

ProfileChoice parse_profile_choice(std::string_view body, const config::Config& cfg) {
    ProfileChoice c;
    // The first JSON value of the body counts (the original's json.Decoder reads no further).
    const char* end = nullptr;
    JsonPtr doc(cJSON_ParseWithLengthOpts(body.data(), body.size(), &end, false));
    if (!doc || !cJSON_IsObject(doc.get())) {
        c.status = 400;
        c.message = "invalid profile request";
        return c;
    }
    const cJSON* name = cJSON_GetObjectItemCaseSensitive(doc.get(), "name");
    if (!name) {
        c.status = 400;
        c.message = "profile name is required";
        return c;
    }
    if (cJSON_IsNull(name)) return c;
    if (!cJSON_IsString(name)) {
        c.status = 400;
        c.message = "profile name must be a string or null";
        return c;
    }
    c.name = name->valuestring;
    if (!c.name.empty() && !cfg.profiles.count(c.name)) {
        c.status = 404;
        c.message = "profile " + router::matrix::go_quote(c.name) + " not found";
    }
    return c;
}

} // namespace ls::api
