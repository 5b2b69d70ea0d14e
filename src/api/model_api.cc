#include "api/model_api.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <vector>

#include "gpu/owner.h"
#include "http/headers.h"
#include "util/json.h"

namespace ls::api {

namespace {
std::string print(const JsonPtr& j) {
    return json_print(j.get()).value_or("{}") + '\n';
}
} // namespace

namespace {
cJSON* string_array(const std::vector<std::string>& items) {
    cJSON* arr = cJSON_CreateArray();
    for (const auto& i : items) cJSON_AddItemToArray(arr, cJSON_CreateString(i.c_str()));
    return arr;
}

bool contains(const std::vector<std::string>& v, const char* x) {
    for (const auto& i : v)
        if (i == x) return true;
    return false;
}

// One /v1/models record in the original's layout (api.go newRecord): the capabilities
// rendered as architecture (input/output modalities; modality when both), capabilities (only
// the true ones: vision, audio_transcriptions, audio_speech, image_generation,
// image_to_image, function_calling, reranker), supported_parameters and context_length;
// meta.llamaswap is the metadata (without the rendered keys when capabilities are set) and
// `internal` (type, aliases or modelID); meta.n_ctx the context length.
cJSON* model_record(const std::string& id, const config::ModelConfig& m, bool loaded, long created,
                    int port, const std::string& alias_of = "") {
    cJSON* rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "id", id.c_str());
    cJSON_AddStringToObject(rec, "object", "model");
    cJSON_AddNumberToObject(rec, "created", static_cast<double>(created));
    cJSON_AddStringToObject(rec, "owned_by", "llama-swap");
    const std::string name(http::trim(m.name)), description(http::trim(m.description));
    if (!name.empty()) cJSON_AddStringToObject(rec, "name", name.c_str());
    if (!description.empty()) cJSON_AddStringToObject(rec, "description", description.c_str());

    const config::Capabilities& c = m.capabilities;
    const bool caps_set = !c.in.empty() || !c.out.empty() || c.tools || c.reranker || c.context > 0;
    if (!c.in.empty() || !c.out.empty()) {
        cJSON* arch = cJSON_AddObjectToObject(rec, "architecture");
        if (!c.in.empty()) cJSON_AddItemToObject(arch, "input_modalities", string_array(c.in));
        if (!c.out.empty()) cJSON_AddItemToObject(arch, "output_modalities", string_array(c.out));
        if (!c.in.empty() && !c.out.empty()) {
            std::string modality;
            for (const auto& i : c.in) modality += (modality.empty() ? "" : "+") + i;
            modality += "->";
            for (size_t i = 0; i < c.out.size(); ++i) modality += (i ? "+" : "") + c.out[i];
            cJSON_AddStringToObject(arch, "modality", modality.c_str());
        }
    }
    if (!c.in.empty() || !c.out.empty() || c.tools || c.reranker) {
        cJSON* caps = cJSON_AddObjectToObject(rec, "capabilities");
        if (contains(c.in, "image")) cJSON_AddTrueToObject(caps, "vision");
        if (contains(c.in, "audio") && contains(c.out, "text"))
            cJSON_AddTrueToObject(caps, "audio_transcriptions");
        if (contains(c.in, "text") && contains(c.out, "audio"))
            cJSON_AddTrueToObject(caps, "audio_speech");
        if (contains(c.in, "text") && contains(c.out, "image"))
            cJSON_AddTrueToObject(caps, "image_generation");
        if (contains(c.in, "image") && contains(c.out, "image"))
            cJSON_AddTrueToObject(caps, "image_to_image");
        if (c.tools) cJSON_AddTrueToObject(caps, "function_calling");
        if (c.reranker) cJSON_AddTrueToObject(caps, "reranker");
    }
    if (c.tools)
        cJSON_AddItemToObject(rec, "supported_parameters", string_array({"tools", "tool_choice"}));
    if (c.context > 0)
        cJSON_AddNumberToObject(rec, "context_length", static_cast<double>(c.context));
    cJSON* status = cJSON_AddObjectToObject(rec, "status");
    cJSON_AddStringToObject(status, "value", loaded ? "loaded" : "unloaded");

    cJSON* ls = nullptr;
    if (!m.metadata_json.empty()) {
        // ${PORT} as the original: the model's port (the one it runs on, else the one it is
        // given first: startPort onwards, in id order).
        std::string text = m.metadata_json;
        if (port > 0)
            for (size_t at = text.find("${PORT}"); at != std::string::npos;
                 at = text.find("${PORT}", at))
                text.replace(at, 7, std::to_string(port));
        cJSON* md = cJSON_Parse(text.c_str());
        if (md && cJSON_IsObject(md)) {
            ls = md;
        } else if (md) {
            ls = cJSON_CreateObject();
            cJSON_AddItemToObject(ls, "metadata", md);
        }
    }
    if (!ls) ls = cJSON_CreateObject();
    if (caps_set) // the rendered fields win over metadata keys of the same names
        for (const char* k :
             {"architecture", "capabilities", "supported_parameters", "context_length"})
            cJSON_DeleteItemFromObjectCaseSensitive(ls, k);
    for (const char* k : {"type", "aliases", "modelID"})
        cJSON_DeleteItemFromObjectCaseSensitive(ls, k);
    if (alias_of.empty()) {
        cJSON_AddStringToObject(ls, "type", "model");
        if (!m.aliases.empty()) cJSON_AddItemToObject(ls, "aliases", string_array(m.aliases));
    } else {
        cJSON_AddStringToObject(ls, "type", "alias");
        cJSON_AddStringToObject(ls, "modelID", alias_of.c_str());
    }
    cJSON* meta = cJSON_AddObjectToObject(rec, "meta");
    cJSON_AddItemToObject(meta, "llamaswap", ls);
    if (c.context > 0) cJSON_AddNumberToObject(meta, "n_ctx", static_cast<double>(c.context));
    return rec;
}
} // namespace

namespace {
// Loaded: the original lists a model as loaded in any state but stopped.
bool is_loaded(const router::Scheduler& scheduler, const std::string& id) {
    const auto* p = scheduler.process(id);
    return p && p->state() == supervisor::ProcessState::Ready;
}

// A selector's record: its own name and description, `meta.llamaswap` holding its metadata
// and type, strategy and targets; loaded when a target it would pick now is running.
cJSON* selector_record(const config::SelectorConfig& s, const router::Scheduler& scheduler,
                       long created) {
    cJSON* rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "id", s.id.c_str());
    cJSON_AddStringToObject(rec, "object", "model");
    cJSON_AddNumberToObject(rec, "created", static_cast<double>(created));
    cJSON_AddStringToObject(rec, "owned_by", "llama-swap");
    if (!s.name.empty()) cJSON_AddStringToObject(rec, "name", s.name.c_str());
    if (!s.description.empty()) cJSON_AddStringToObject(rec, "description", s.description.c_str());
    cJSON* meta = cJSON_AddObjectToObject(rec, "meta");
    cJSON* ls = s.metadata_json.empty() ? nullptr : cJSON_Parse(s.metadata_json.c_str());
    if (!ls || !cJSON_IsObject(ls)) {
        cJSON_Delete(ls);
        ls = cJSON_CreateObject();
    }
    for (const char* k : {"type", "strategy", "targets", "spillover"})
        cJSON_DeleteItemFromObject(ls, k);
    cJSON_AddStringToObject(ls, "type", "selector");
    cJSON_AddStringToObject(ls, "strategy", config::to_string(s.strategy));
    cJSON_AddItemToObject(ls, "targets", string_array(s.targets));
    if (s.strategy == config::SelectorStrategy::Spillover)
        cJSON_AddNumberToObject(ls, "spillover", s.spillover);
    cJSON_AddItemToObject(meta, "llamaswap", ls);
    bool loaded = false;
    const size_t n = s.strategy == config::SelectorStrategy::Pin ? 1 : s.models.size();
    for (size_t i = 0; i < n && !loaded; ++i) {
        const auto* p = scheduler.process(s.models[i]);
        loaded = p && (p->state() == supervisor::ProcessState::Ready ||
                       p->state() == supervisor::ProcessState::Starting);
    }
    cJSON* status = cJSON_AddObjectToObject(rec, "status");
    cJSON_AddStringToObject(status, "value", loaded ? "loaded" : "unloaded");
    return rec;
}

// A peer's model, as the original lists it: "peer/model", named "peer: model".
cJSON* peer_record(const std::string& peer, const std::string& model, long created) {
    cJSON* rec = cJSON_CreateObject();
    const std::string fqn = peer + "/" + model;
    cJSON_AddStringToObject(rec, "id", fqn.c_str());
    cJSON_AddStringToObject(rec, "object", "model");
    cJSON_AddNumberToObject(rec, "created", static_cast<double>(created));
    cJSON_AddStringToObject(rec, "owned_by", "llama-swap");
    cJSON_AddStringToObject(rec, "name", (peer + ": " + model).c_str());
    cJSON* ls = cJSON_AddObjectToObject(cJSON_AddObjectToObject(rec, "meta"), "llamaswap");
    cJSON_AddStringToObject(ls, "type", "peer");
    cJSON_AddStringToObject(ls, "peerID", peer.c_str());
    cJSON_AddStringToObject(cJSON_AddObjectToObject(rec, "status"), "value", "unloaded");
    return rec;
}

// A pin of the active profile that names no model, alias or selector of its own.
cJSON* pin_record(const std::string& pin, const std::string& target, const config::Config& cfg,
                  const router::Scheduler& scheduler, long created) {
    cJSON* rec = cJSON_CreateObject();
    cJSON_AddStringToObject(rec, "id", pin.c_str());
    cJSON_AddStringToObject(rec, "object", "model");
    cJSON_AddNumberToObject(rec, "created", static_cast<double>(created));
    cJSON_AddStringToObject(rec, "owned_by", "llama-swap");
    cJSON* ls = cJSON_AddObjectToObject(cJSON_AddObjectToObject(rec, "meta"), "llamaswap");
    cJSON_AddStringToObject(ls, "type", "profile");
    cJSON_AddStringToObject(ls, "target", target.c_str());
    // The original always says "unloaded"; the target's own state is more useful.
    const config::ModelConfig* m = cfg.resolve(target);
    cJSON* status = cJSON_AddObjectToObject(rec, "status");
    cJSON_AddStringToObject(status, "value",
                            m && is_loaded(scheduler, m->id) ? "loaded" : "unloaded");
    return rec;
}
} // namespace

std::string models_json(const config::Config& cfg, const router::Scheduler& scheduler, long created,
                        const config::ProfileConfig* profile) {
    std::vector<std::pair<std::string, cJSON*>> records; // sorted by id below
    auto disabled = [&](const std::string& name) {
        if (!profile) return false;
        auto it = profile->pins.find(name);
        return it != profile->pins.end() && it->second.empty();
    };
    int port_index = 0;
    for (const auto& [id, m] : cfg.models) {
        int port = m.uses_port ? cfg.start_port + port_index++ : 0;
        if (m.unlisted) continue;
        if (const auto* p = scheduler.process(id); p && p->port() > 0 && m.uses_port)
            port = p->port();
        const bool loaded = is_loaded(scheduler, id);
        if (!disabled(id)) records.emplace_back(id, model_record(id, m, loaded, created, port));
        if (cfg.include_aliases_in_list)
            for (const auto& alias : m.aliases)
                if (!disabled(alias))
                    records.emplace_back(alias, model_record(alias, m, loaded, created, port, id));
    }
    for (const auto& [id, s] : cfg.selectors)
        if (!s.unlisted && !disabled(id))
            records.emplace_back(id, selector_record(s, scheduler, created));
    for (const auto& [pid, p] : cfg.peers)
        for (const auto& m : p.models) {
            const std::string fqn = pid + "/" + m;
            if (!disabled(fqn)) records.emplace_back(fqn, peer_record(pid, m, created));
        }
    if (profile)
        for (const auto& [pin, target] : profile->pins)
            if (!target.empty() && !cfg.resolve(pin) && !cfg.selector(pin) &&
                !cfg.resolve_peer(pin))
                records.emplace_back(pin, pin_record(pin, target, cfg, scheduler, created));
    std::stable_sort(records.begin(), records.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    JsonPtr root(cJSON_CreateObject());
    cJSON_AddStringToObject(root.get(), "object", "list");
    cJSON* data = cJSON_AddArrayToObject(root.get(), "data");
    for (auto& [id, rec] : records) cJSON_AddItemToArray(data, rec);
    return print(root);
}

std::string model_status_json(const config::Config& cfg, const router::Scheduler& scheduler) {
    JsonPtr list(cJSON_CreateArray());
    for (const auto& [id, m] : cfg.models) {
        const auto* p = scheduler.process(id);
        cJSON* rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "id", id.c_str());
        cJSON_AddStringToObject(rec, "name", m.name.c_str());
        cJSON_AddStringToObject(rec, "description", m.description.c_str());
        cJSON_AddStringToObject(rec, "state", p ? supervisor::to_string(p->state()) : "stopped");
        cJSON_AddBoolToObject(rec, "unlisted", m.unlisted);
        cJSON_AddItemToObject(rec, "aliases", string_array(m.aliases));
        cJSON_AddItemToArray(list.get(), rec);
    }
    for (const auto& [pid, p] : cfg.peers) // the original: peer models follow, with peerID
        for (const auto& m : p.models) {
            cJSON* rec = cJSON_CreateObject();
            cJSON_AddStringToObject(rec, "id", (pid + "/" + m).c_str());
            cJSON_AddStringToObject(rec, "peerID", pid.c_str());
            cJSON_AddItemToArray(list.get(), rec);
        }
    std::string out = print(list);
    out.pop_back(); // no newline inside an event
    return out;
}

std::string running_json(const router::Scheduler& scheduler, const proxy::UpstreamPool& pool,
                         const perf::Sample* gpu) {
    JsonPtr root(cJSON_CreateObject());
    cJSON* list = cJSON_AddArrayToObject(root.get(), "running");
    for (const auto& view : scheduler.models()) {
        const auto* p = view.process;
        if (p->state() == supervisor::ProcessState::Stopped) continue;
        const auto& m = p->config();
        cJSON* rec = cJSON_CreateObject();
        cJSON_AddStringToObject(rec, "model", m.id.c_str());
        cJSON_AddStringToObject(rec, "state", supervisor::to_string(p->state()));
        cJSON_AddStringToObject(rec, "cmd",
                                p->cmd_text().empty() ? m.cmd_text.c_str() : p->cmd_text().c_str());
        cJSON_AddStringToObject(rec, "proxy", p->upstream().url.c_str());
        cJSON_AddNumberToObject(rec, "ttl", m.ttl_s);
        cJSON_AddStringToObject(rec, "name", m.name.c_str());
        cJSON_AddStringToObject(rec, "description", m.description.c_str());
        if (p->pid() > 0) cJSON_AddNumberToObject(rec, "pid", p->pid());
        const std::string cg = p->cgroup_name();
        if (!cg.empty()) cJSON_AddStringToObject(rec, "cgroup", cg.c_str());
        if (!p->unit().empty()) cJSON_AddStringToObject(rec, "unit", p->unit().c_str());
        if (!cg.empty() || !p->unit().empty())
            cJSON_AddNumberToObject(rec, "memoryBytes", static_cast<double>(p->memory_current()));
        // GPU memory of its processes (NVML's list, matched by cgroup or process group): only
        // while the sampler reads a source that lists processes.
        if (gpu && !gpu->gpus.empty() && gpu->gpus.front().source == "nvml" && p->pid() > 0)
            cJSON_AddNumberToObject(
                rec, "gpuMemoryBytes",
                static_cast<double>(gpu::memory_of(*gpu, p->pid(), p->cgroup_dirs())));
        cJSON_AddNumberToObject(rec, "inFlight", view.in_flight);
        cJSON_AddNumberToObject(rec, "queued", view.queued);
        if (!p->pool_key().empty()) {
            // How the proxy talks to it: the connection cap (0: none) and its use.
            cJSON* conns = cJSON_AddObjectToObject(rec, "upstreamConnections");
            cJSON_AddNumberToObject(conns, "cap", static_cast<double>(p->connection_policy().cap));
            cJSON_AddNumberToObject(conns, "open",
                                    static_cast<double>(pool.open_count(p->pool_key())));
            cJSON_AddNumberToObject(conns, "waiting",
                                    static_cast<double>(pool.waiting_count(p->pool_key())));
        }
        if (p->state() == supervisor::ProcessState::Failed)
            cJSON_AddStringToObject(rec, "error", p->failure().c_str());
        cJSON_AddItemToArray(list, rec);
    }
    return print(root);
}

std::string ui_config_json(const config::Config& cfg) {
    JsonPtr root(cJSON_CreateObject());
    cJSON* activity = cJSON_AddObjectToObject(root.get(), "activity");
    cJSON_AddItemToObject(activity, "session_id", string_array(cfg.ui_session_headers));
    return json_print(root.get()).value_or("{}");
}

} // namespace ls::api
