// The route table: which paths exist, with which methods, and what kind of handler serves
// them. Built once; the per-request lookup is a few prefix checks and one hash lookup.
#pragma once

#include <string_view>

namespace ls::api {

enum class RouteKind {
    NotFound,
    ModelJson,     // POST, model from the JSON body (or a multipart field, or ?model=)
    ListModels,    // GET /v1/models
    Running,       // GET /running
    Health,        // GET /health, /wol-health
    Unload,        // GET /unload, POST /api/models/unload: stop every model
    UnloadModel,   // POST /api/models/unload/<model>
    Upstream,      // ANY /upstream/<model>/<path>: raw passthrough
    UpstreamIndex, // GET /upstream: redirect to the web UI's model list
    ComfyUi,       // ANY /comfyui, /comfyui/<path>: the comfyui_auto model's passthrough
    Logs,          // GET /logs: history as text
    LogStream,     // GET /logs/stream[/proxy|/upstream|/<model>]
    Events,        // GET /api/events (SSE)
    Metrics,       // GET /metrics (Prometheus)
    Activity,      // GET /api/metrics/activity
    ActivityStats, // GET /api/metrics/stats
    Version,       // GET /api/version
    Inflight,      // GET /api/inflight: what is in flight (the events' snapshot)
    Cancel,        // POST /api/inflight/<id>/cancel
    LoadModel,     // POST /api/models/load/<model>: start it, answer once ready
    Root,          // GET /: redirect to the web UI
    Ui,            // GET /ui, /ui/<file>: the embedded web UI
    Profiles,      // GET /api/profiles
    ProfileActive, // PUT /api/profiles/active
    Performance,   // GET /api/performance[?after=RFC3339]: the host and GPU samples
    Hardware,      // GET /api/hardware: the host as detected at start
    Capture,       // GET /api/captures/<id>: a request's capture
};

struct RouteMatch {
    RouteKind kind = RouteKind::NotFound;
    bool method_allowed = false;
    const char* allow = ""; // for 405's Allow header
    std::string_view rest;  // prefix routes: the path after the prefix (not decoded)
};

RouteMatch match_route(std::string_view method, std::string_view path);

// The path a model route's request has upstream: /v/… and /audioapi/… lose their prefix.
std::string_view upstream_path(std::string_view path);

} // namespace ls::api
