#include "api/routes.h"

#include <iterator>
#include <unordered_map>

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
    // stable-diffusion.cpp's AUTOMATIC1111-style API
    {"/sdapi/v1/txt2img", "POST", RouteKind::ModelJson},
    {"/sdapi/v1/img2img", "POST", RouteKind::ModelJson},
    {"/sdapi/v1/loras", "GET", RouteKind::ModelJson},
    // audio.cpp's task API, sent upstream as /v1/tasks/run
    {"/audioapi/v1/tasks/run", "POST", RouteKind::ModelJson},
    // Versionless routes, sent upstream without the /v (servers that mount the API at /)
    {"/v/chat/completions", "POST", RouteKind::ModelJson},
    {"/v/responses", "POST", RouteKind::ModelJson},
    {"/v/completions", "POST", RouteKind::ModelJson},
    {"/v/messages", "POST", RouteKind::ModelJson},
    {"/v/messages/count_tokens", "POST", RouteKind::ModelJson},
    {"/v/embeddings", "POST", RouteKind::ModelJson},
    {"/v/rerank", "POST", RouteKind::ModelJson},
    {"/v/reranking", "POST", RouteKind::ModelJson},
    {"/v1/models", "GET", RouteKind::ListModels},
    {"/models", "GET", RouteKind::ListModels},
    {"/unload", "GET", RouteKind::Unload},
    {"/logs", "GET", RouteKind::Logs},
    {"/logs/stream", "GET", RouteKind::LogStream},
    {"/api/events", "GET", RouteKind::Events},
    {"/metrics", "GET", RouteKind::Metrics},
    {"/api/metrics/activity", "GET", RouteKind::Activity},
    {"/api/metrics/stats", "GET", RouteKind::ActivityStats},
    {"/api/version", "GET", RouteKind::Version},
    {"/api/inflight", "GET", RouteKind::Inflight},
    {"/api/models/unload", "POST", RouteKind::Unload},
    {"/api/profiles", "GET", RouteKind::Profiles},
    {"/api/profiles/active", "PUT", RouteKind::ProfileActive},
    {"/api/performance", "GET", RouteKind::Performance},
    {"/api/hardware", "GET", RouteKind::Hardware},
    {"/running", "GET", RouteKind::Running},
    {"/health", "GET", RouteKind::Health},
    {"/wol-health", "GET", RouteKind::Health}, // the original's wake-on-LAN proxy polls it
    {"/upstream", "GET", RouteKind::UpstreamIndex},
    {"/", "GET", RouteKind::Root},
};
// Exact paths to their routes (a path has one per method): one hash lookup per request
// instead of comparing the path with every entry.
struct PathRoutes {
    static constexpr int kMax = 4;
    const Route* routes[kMax] = {};
    int n = 0;
};

const std::unordered_map<std::string_view, PathRoutes>& path_index() {
    static const std::unordered_map<std::string_view, PathRoutes> index = [] {
        std::unordered_map<std::string_view, PathRoutes> m(std::size(kRoutes) * 2);
        for (const Route& r : kRoutes) {
            PathRoutes& e = m[r.path];
            if (e.n < PathRoutes::kMax) e.routes[e.n++] = &r;
        }
        return m;
    }();
    return index;
}
} // namespace

RouteMatch match_route(std::string_view method, std::string_view path) {
    RouteMatch m;
    // Prefix routes: the rest of the path names a model (ids may contain '/') or a file.
    enum class Methods { Any, GetHead, Post };
    struct PrefixRoute {
        std::string_view prefix;
        bool rest_required;
        RouteKind kind;
        Methods methods;
    };
    static constexpr PrefixRoute kPrefixRoutes[] = {
        {"/upstream/", false, RouteKind::Upstream, Methods::Any},
        {"/comfyui/", false, RouteKind::ComfyUi, Methods::Any},
        {"/logs/stream/", true, RouteKind::LogStream, Methods::GetHead},
        {"/ui/", false, RouteKind::Ui, Methods::GetHead},
        {"/api/models/load/", true, RouteKind::LoadModel, Methods::Post},
        {"/api/models/unload/", true, RouteKind::UnloadModel, Methods::Post},
        {"/api/inflight/", true, RouteKind::Cancel, Methods::Post}, // <id>/cancel
        {"/api/captures/", true, RouteKind::Capture, Methods::GetHead},
    };
    for (const PrefixRoute& r : kPrefixRoutes) {
        // The second byte first: it tells most paths from every prefix without a compare.
        if (path.size() < 2 || path[1] != r.prefix[1] || !path.starts_with(r.prefix) ||
            (r.rest_required && path.size() == r.prefix.size()))
            continue;
        m.kind = r.kind;
        m.rest = path.substr(r.prefix.size());
        switch (r.methods) {
        case Methods::Any:
            m.method_allowed = true;
            break;
        case Methods::GetHead:
            m.method_allowed = method == "GET" || method == "HEAD";
            m.allow = "GET, HEAD";
            break;
        case Methods::Post:
            m.method_allowed = method == "POST";
            m.allow = "POST";
            break;
        }
        return m;
    }
    if (path == "/comfyui") { // redirected to /comfyui/
        m.kind = RouteKind::ComfyUi;
        m.method_allowed = true;
        return m;
    }
    if (path == "/ui") { // redirected to /ui/
        m.kind = RouteKind::Ui;
        m.method_allowed = method == "GET" || method == "HEAD";
        m.allow = "GET, HEAD";
        return m;
    }
    const auto& index = path_index();
    const auto found = index.find(path);
    if (found == index.end()) return m;
    bool has_get = false, has_post = false;
    for (int i = 0; i < found->second.n; ++i) {
        const Route& r = *found->second.routes[i];
        has_get |= r.method == "GET";
        has_post |= r.method == "POST";
        if (method == r.method || (r.method == "GET" && method == "HEAD")) {
            m.kind = r.kind;
            m.method_allowed = true;
        } else if (m.kind == RouteKind::NotFound) {
            m.kind = r.kind;
        }
    }
    m.allow = has_get && has_post ? "GET, HEAD, POST"
              : has_get           ? "GET, HEAD"
              : has_post          ? "POST"
                                  : "PUT";
    return m;
}

std::string_view upstream_path(std::string_view path) {
    if (path.starts_with("/v/")) return path.substr(2);
    if (path.starts_with("/audioapi/")) return path.substr(9);
    return path;
}

} // namespace ls::api
