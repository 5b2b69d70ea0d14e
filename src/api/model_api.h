// JSON bodies of the listing and status routes (GET /v1/models, GET /running).
#pragma once

#include <string>

#include "config/config.h"
#include "perf/sample.h"
#include "proxy/upstream_pool.h"
#include "router/scheduler.h"

namespace ls::api {

// GET /v1/models: models (and aliases with includeAliasesInList), selectors and the active
// profile's pins, sorted by id; a name the profile disables is left out.
std::string models_json(const config::Config& cfg, const router::Scheduler& scheduler, long created,
                        const config::ProfileConfig* profile);
// GET /running; each running model also shows its upstream connections (cap, open, waiting).
// `gpu`: the performance sampler's latest sample (null: none), for each model's gpuMemoryBytes.
std::string running_json(const router::Scheduler& scheduler, const proxy::UpstreamPool& pool,
                         const perf::Sample* gpu = nullptr);
// The modelStatus event payload: [{id, name, description, state, unlisted, aliases}].
std::string model_status_json(const config::Config& cfg, const router::Scheduler& scheduler);

// The `uiConfig` event's data: {"activity":{"session_id":[headers...]}}.
std::string ui_config_json(const config::Config& cfg);

} // namespace ls::api
