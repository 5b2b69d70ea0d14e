#include "api/routes.h"

namespace ls::api {

namespace {
struct Route {
    std::string_view path;
    std::string_view method;
    RouteKind kind;
};

// Model-dispatched routes take the model from a JSON body, a multipart `model` field or
// ?model= (GET). The original's list, see reference/llama-swap-behaviour.md §2.
constexpr Route kRoutes[] = {
    {"/v1/chat/completions", "POST", RouteKind::ModelJson},
    {"/v1/completions", "POST", RouteKind::ModelJson},
    {"/v1/responses", "POST", RouteKind::ModelJson},
    {"/v1/messages", "POST", RouteKind::ModelJson},
    {"/v1/messages/count_tokens", "POST", RouteKind::ModelJson},
    {"/v1/embeddings", "POST", RouteKind::ModelJson},
    {"/v1/rerank", "POST", RouteKind::ModelJson},
    {"/v1/reranking", "POST", RouteKind::ModelJson},
    {"/rerank", "POST", RouteKind::ModelJson},
    {"/reranking", "POST", RouteKind::ModelJson},
    {"/infill", "POST", RouteKind::ModelJson},
    {"/completion", "POST", RouteKind::ModelJson},
    {"/v1/audio/speech", "POST", RouteKind::ModelJson},
    {"/v1/audio/voices", "POST", RouteKind::ModelJson},
    {"/v1/audio/voices", "GET", RouteKind::ModelJson},
    {"/v1/audio/transcriptions", "POST", RouteKind::ModelJson},
    {"/v1/images/generations", "POST", RouteKind::ModelJson},
    {"/v1/images/edits", "POST", RouteKind::ModelJson},
    {"/props", "GET", RouteKind::ModelJson},
    {"/v1/models", "GET", RouteKind::ListModels},
    {"/models", "GET", RouteKind::ListModels},
    {"/unload", "GET", RouteKind::Unload},
    {"/logs", "GET", RouteKind::Logs},
    {"/logs/stream", "GET", RouteKind::LogStream},
    {"/api/events", "GET", RouteKind::Events},
    {"/metrics", "GET", RouteKind::Metrics},
    {"/api/metrics/activity", "GET", RouteKind::Activity},
    {"/api/models/unload", "POST", RouteKind::Unload},
    {"/running", "GET", RouteKind::Running},
    {"/health", "GET", RouteKind::Health},
    {"/", "GET", RouteKind::Root},
};
} // namespace

RouteMatch match_route(std::string_view method, std::string_view path) {
    RouteMatch m;
    // Prefix routes: the rest of the path names a model (ids may contain '/').
    if (path.rfind("/upstream/", 0) == 0) {
        m.kind = RouteKind::Upstream;
        m.method_allowed = true;
        return m;
    }
    if (path.rfind("/logs/stream/", 0) == 0 && path.size() > 13) {
        m.kind = RouteKind::LogStream;
        m.method_allowed = method == "GET" || method == "HEAD";
        m.allow = "GET, HEAD";
        return m;
    }
    if (path == "/ui" || path.rfind("/ui/", 0) == 0) {
        m.kind = RouteKind::Ui;
        m.method_allowed = method == "GET" || method == "HEAD";
        m.allow = "GET, HEAD";
        return m;
    }
    if (path.rfind("/api/models/load/", 0) == 0 && path.size() > 17) {
        m.kind = RouteKind::LoadModel;
        m.method_allowed = method == "POST";
        m.allow = "POST";
        return m;
    }
    if (path.rfind("/api/models/unload/", 0) == 0 && path.size() > 19) {
        m.kind = RouteKind::UnloadModel;
        m.method_allowed = method == "POST";
        m.allow = "POST";
        return m;
    }
    bool path_known = false;
    bool has_get = false, has_post = false;
    for (const Route& r : kRoutes) {
        if (r.path != path) continue;
        path_known = true;
        has_get |= r.method == "GET";
        has_post |= r.method == "POST";
        if (method == r.method || (r.method == "GET" && method == "HEAD")) {
            m.kind = r.kind;
            m.method_allowed = true;
        } else if (m.kind == RouteKind::NotFound) {
            m.kind = r.kind;
        }
    }
    if (path_known)
        m.allow = has_get && has_post ? "GET, HEAD, POST" : (has_get ? "GET, HEAD" : "POST");
    return m;
}

} // namespace ls::api
