#include "api/model_api.h"

#include <cjson/cJSON.h>
#include <memory>

namespace ls::api {

namespace {
struct JsonDeleter {
    void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, JsonDeleter>;

std::string print(const JsonPtr& j) {
    char* text = cJSON_PrintUnformatted(j.get());
    std::string out = text ? text : "{}";
    cJSON_free(text);
    out.push_back('\n');
    return out;
}
} // namespace

std::string models_json(const config::Config& cfg, long created) {
    JsonPtr root(cJSON_CreateObject());
    cJSON_AddStringToObject(root.get(), "object", "list");
    cJSON* data = cJSON_AddArrayToObject(root.get(), "data");
    for (const auto& [id, m] : cfg.models) {
        if (m.unlisted) continue;
        cJSON* rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "id", id.c_str());
        cJSON_AddStringToObject(rec, "object", "model");
        cJSON_AddNumberToObject(rec, "created", static_cast<double>(created));
        cJSON_AddStringToObject(rec, "owned_by", "llama-swap");
        if (!m.name.empty()) cJSON_AddStringToObject(rec, "name", m.name.c_str());
        if (!m.description.empty()) cJSON_AddStringToObject(rec, "description", m.description.c_str());
        cJSON_AddItemToArray(data, rec);
    }
    return print(root);
}

std::string running_json(const router::Scheduler& scheduler) {
    JsonPtr root(cJSON_CreateObject());
    cJSON* list = cJSON_AddArrayToObject(root.get(), "running");
    for (const auto& view : scheduler.models()) {
        const auto* p = view.process;
        if (p->state() == supervisor::ProcessState::Stopped) continue;
        const auto& m = p->config();
        cJSON* rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "model", m.id.c_str());
        cJSON_AddStringToObject(rec, "state", supervisor::to_string(p->state()));
        cJSON_AddStringToObject(rec, "cmd", p->cmd_text().empty() ? m.cmd_text.c_str() : p->cmd_text().c_str());
        cJSON_AddStringToObject(rec, "proxy", p->upstream().url.c_str());
        cJSON_AddNumberToObject(rec, "ttl", m.ttl_s);
        cJSON_AddStringToObject(rec, "name", m.name.c_str());
        cJSON_AddStringToObject(rec, "description", m.description.c_str());
        if (p->pid() > 0) cJSON_AddNumberToObject(rec, "pid", p->pid());
        cJSON_AddNumberToObject(rec, "inFlight", view.in_flight);
        cJSON_AddNumberToObject(rec, "queued", view.queued);
        if (p->state() == supervisor::ProcessState::Failed)
            cJSON_AddStringToObject(rec, "error", p->failure().c_str());
        cJSON_AddItemToArray(list, rec);
    }
    return print(root);
}

} // namespace ls::api
