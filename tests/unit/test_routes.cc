// The route table (kinds, methods, Allow) and the web UI's compiled-in asset table.
#include <criterion/criterion.h>

#include <string>

#include "api/auth.h"
#include "api/routes.h"
#include "api/ui_assets.h"

using namespace ls::api;

Test(routes, fixed_paths_and_methods) {
    cr_assert(match_route("GET", "/v1/models").kind == RouteKind::ListModels);
    cr_assert(match_route("HEAD", "/v1/models").method_allowed);
    RouteMatch m = match_route("POST", "/v1/models");
    cr_assert(m.kind == RouteKind::ListModels && !m.method_allowed);
    cr_assert_str_eq(m.allow, "GET, HEAD");
    cr_assert(match_route("POST", "/v1/chat/completions").kind == RouteKind::ModelJson);
    m = match_route("GET", "/v1/audio/voices");
    cr_assert(m.kind == RouteKind::ModelJson && m.method_allowed);
    cr_assert_str_eq(m.allow, "GET, HEAD, POST");
    cr_assert(match_route("GET", "/nope").kind == RouteKind::NotFound);
    cr_assert(match_route("GET", "/").kind == RouteKind::Root);
}

Test(routes, prefixed_paths) {
    RouteMatch m = match_route("POST", "/api/models/load/org/model");
    cr_assert(m.kind == RouteKind::LoadModel && m.method_allowed);
    m = match_route("GET", "/api/models/load/x");
    cr_assert(m.kind == RouteKind::LoadModel && !m.method_allowed);
    cr_assert_str_eq(m.allow, "POST");
    cr_assert(match_route("POST", "/api/models/load/").kind == RouteKind::NotFound);
    cr_assert(match_route("POST", "/api/models/unload/x").kind == RouteKind::UnloadModel);
    cr_assert(match_route("GET", "/logs/stream/m").kind == RouteKind::LogStream);
    cr_assert(match_route("DELETE", "/upstream/m/x").method_allowed);
    for (const char* p : {"/ui", "/ui/", "/ui/app.js"}) {
        m = match_route("GET", p);
        cr_assert(m.kind == RouteKind::Ui && m.method_allowed, "%s", p);
        cr_assert(!match_route("POST", p).method_allowed, "%s", p);
    }
    cr_assert(match_route("GET", "/uix").kind == RouteKind::NotFound);
}

Test(routes, the_originals_other_servers_routes) {
    for (const char* p :
         {"/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/audioapi/v1/tasks/run", "/v/chat/completions",
          "/v/responses", "/v/completions", "/v/messages", "/v/messages/count_tokens",
          "/v/embeddings", "/v/rerank", "/v/reranking"}) {
        RouteMatch m = match_route("POST", p);
        cr_assert(m.kind == RouteKind::ModelJson && m.method_allowed, "%s", p);
        cr_assert(!match_route("GET", p).method_allowed, "%s", p);
    }
    cr_assert(match_route("GET", "/sdapi/v1/loras").kind == RouteKind::ModelJson);
    cr_assert(match_route("GET", "/wol-health").kind == RouteKind::Health);
    RouteMatch m = match_route("GET", "/upstream");
    cr_assert(m.kind == RouteKind::UpstreamIndex && m.method_allowed);
    cr_assert(!match_route("POST", "/upstream").method_allowed);
    for (const char* p : {"/comfyui", "/comfyui/", "/comfyui/api/prompt"}) {
        m = match_route("POST", p);
        cr_assert(m.kind == RouteKind::ComfyUi && m.method_allowed, "%s", p);
    }
    cr_assert_str_eq(std::string(match_route("GET", "/comfyui/ws").rest).c_str(), "ws");
    cr_assert(match_route("GET", "/v/models").kind == RouteKind::NotFound);
}

Test(routes, upstream_path_drops_the_versionless_and_audio_prefixes) {
    cr_assert(upstream_path("/v/chat/completions") == "/chat/completions");
    cr_assert(upstream_path("/audioapi/v1/tasks/run") == "/v1/tasks/run");
    cr_assert(upstream_path("/v1/chat/completions") == "/v1/chat/completions");
    cr_assert(upstream_path("/sdapi/v1/txt2img") == "/sdapi/v1/txt2img");
}

Test(routes, public_paths) {
    cr_assert(route_is_public("/health"));
    cr_assert(route_is_public("/wol-health"));
    cr_assert(!route_is_public("/comfyui/"));
    cr_assert(route_is_public("/ui/"));
    cr_assert(route_is_public("/ui/app.js"));
    cr_assert(!route_is_public("/uix"));
    cr_assert(!route_is_public("/api/events"));
    cr_assert(!route_is_public("/api/models/load/m"));
}

Test(ui_assets, table) {
    cr_assert_geq(kUiAssetCount, 3);
    const UiAsset* index = find_ui_asset("index.html");
    cr_assert_not_null(index);
    cr_assert(index->content_type == "text/html; charset=utf-8");
    cr_assert(index->body.find("app.js") != std::string_view::npos);
    for (size_t i = 0; i < kUiAssetCount; ++i) {
        const UiAsset& a = kUiAssets[i];
        cr_assert_gt(a.body.size(), 0, "%.*s", static_cast<int>(a.name.size()), a.name.data());
        cr_assert(a.etag.size() > 2 && a.etag.front() == '"' && a.etag.back() == '"');
        // gzip copies are kept only when they pay, and start with gzip's magic number
        if (!a.gzip_body.empty()) {
            cr_assert_lt(a.gzip_body.size(), a.body.size());
            cr_assert_eq(static_cast<unsigned char>(a.gzip_body[0]), 0x1f);
            cr_assert_eq(static_cast<unsigned char>(a.gzip_body[1]), 0x8b);
        }
    }
    cr_assert_not_null(find_ui_asset("app.js"));
    cr_assert_null(find_ui_asset(""));
    cr_assert_null(find_ui_asset("../index.html"));
}
