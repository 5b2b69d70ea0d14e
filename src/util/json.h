// cJSON ownership and printing, shared by the config loader, the API and the filters.
#pragma once

#include <cjson/cJSON.h>
#include <memory>
#include <optional>
#include <string>

namespace ls {

struct JsonDeleter {
    void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

// The compact text of `j`; nullopt when cJSON cannot print it (out of memory).
inline std::optional<std::string> json_print(const cJSON* j) {
    char* text = cJSON_PrintUnformatted(j);
    if (!text) return std::nullopt;
    std::string out(text);
    cJSON_free(text);
    return out;
}

} // namespace ls
