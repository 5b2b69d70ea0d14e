#include "api/routes.h"

namespace ls::api {

namespace {
struct Route {
    std::string_view path;
    std::string_view method;
    RouteKind kind;
};

constexpr Route kRoutes[] = {
    {"/v1/chat/completions", "POST", RouteKind::ModelJson},
    {"/v1/completions", "POST", RouteKind::ModelJson},
    {"/v1/embeddings", "POST", RouteKind::ModelJson},
    {"/v1/models", "GET", RouteKind::ListModels},
    {"/running", "GET", RouteKind::Running},
    {"/health", "GET", RouteKind::Health},
};
} // namespace

RouteMatch match_route(std::string_view method, std::string_view path) {
    RouteMatch m;
    for (const Route& r : kRoutes) {
        if (r.path != path) continue;
        m.kind = r.kind;
        m.allow = r.method == "GET" ? "GET, HEAD" : "POST";
        m.method_allowed = method == r.method || (r.method == "GET" && method == "HEAD");
        return m;
    }
    return m;
}

} // namespace ls::api
