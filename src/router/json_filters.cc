#include "router/json_filters.h"

#include <cjson/cJSON.h>

#include "util/json.h"

namespace ls::router {

namespace {

void merge_params(cJSON* body, const config::ParamSet& params) {
    for (const auto& m : params.members) {
        if (m.key == "model") continue; // refused at load; never overridden here
        cJSON_DeleteItemFromObjectCaseSensitive(body, m.key.c_str());
        cJSON_AddItemToObject(body, m.key.c_str(), cJSON_CreateRaw(m.value_json.c_str()));
    }
}
} // namespace

Result<std::string> apply_json_filters(std::string_view body, const config::Filters& filters,
                                       const std::string& requested,
                                       const std::string& use_model_name) {
    if (body.size() >= 3 && body.compare(0, 3, "\xEF\xBB\xBF") == 0)
        body.remove_prefix(3); // UTF-8 BOM
    JsonPtr root(cJSON_ParseWithLength(body.data(), body.size()));
    if (!root || !cJSON_IsObject(root.get()))
        return make_error("the request body is not a JSON object");
    for (const auto& key : filters.strip_params)
        if (key != "model") cJSON_DeleteItemFromObjectCaseSensitive(root.get(), key.c_str());
    merge_params(root.get(), filters.set_params);
    if (auto it = filters.set_params_by_id.find(requested); it != filters.set_params_by_id.end())
        merge_params(root.get(), it->second);
    if (!use_model_name.empty()) {
        cJSON_DeleteItemFromObjectCaseSensitive(root.get(), "model");
        cJSON_AddStringToObject(root.get(), "model", use_model_name.c_str());
    }
    auto text = json_print(root.get());
    if (!text) return make_error("cannot serialise the filtered request body");
    return std::move(*text);
}

} // namespace ls::router
