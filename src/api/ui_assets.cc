#include "api/ui_assets.h"

#include "http/headers.h"

namespace ls::api {

namespace {
constexpr std::string_view kPrefix = "/ui/";

// True when Accept-Encoding lists gzip without q=0.
bool accepts_gzip(const std::string* accept_encoding) {
    if (!accept_encoding) return false;
    std::string_view rest = *accept_encoding;
    while (!rest.empty()) {
        const size_t comma = rest.find(',');
        std::string_view item = rest.substr(0, comma);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        const size_t semi = item.find(';');
        if (!http::iequals(http::trim(item.substr(0, semi)), "gzip")) continue;
        if (semi == std::string_view::npos) return true;
        std::string_view param = http::trim(item.substr(semi + 1));
        if (param.rfind("q=", 0) != 0) return true;
        param.remove_prefix(2);
        for (char c : param)
            if (c >= '1' && c <= '9') return true; // q=0, q=0.0, q=0.000 refuse it
        return false;
    }
    return false;
}

// If-None-Match holds our ETag (a proxy may have made it weak: W/"...") or "*".
bool not_modified(const std::string* if_none_match, std::string_view etag) {
    if (!if_none_match) return false;
    return http::trim(*if_none_match) == "*" || if_none_match->find(etag) != std::string::npos;
}
} // namespace

const UiAsset* find_ui_asset(std::string_view name) {
    for (size_t i = 0; i < kUiAssetCount; ++i)
        if (kUiAssets[i].name == name && !name.empty()) return &kUiAssets[i];
    return nullptr;
}

void serve_ui(http::Connection& conn, const http::Request& req) {
    if (req.path == "/ui") {
        // Relative, so that a proxy mounting us under a sub-path keeps its prefix.
        http::HeaderList h;
        h.add("Location", "ui/");
        conn.respond(301, h, "");
        return;
    }
    std::string_view name = std::string_view(req.path).substr(kPrefix.size());
    if (name.empty()) name = "index.html";
    const UiAsset* asset = find_ui_asset(name);
    if (!asset) {
        conn.respond_error(404, "no such file in the web UI: " + std::string(name), "not_found");
        return;
    }
    http::HeaderList h;
    h.add("ETag", std::string(asset->etag));
    // Revalidated on every load (a 304 is cheap), so a daemon upgrade never serves stale JS.
    h.add("Cache-Control", "no-cache");
    h.add("X-Content-Type-Options", "nosniff");
    if (!asset->gzip_body.empty()) h.add("Vary", "Accept-Encoding");
    if (not_modified(req.headers.find("if-none-match"), asset->etag)) {
        conn.start_response(304, h, http::Framing::None);
        conn.end_response();
        return;
    }
    h.add("Content-Type", std::string(asset->content_type));
    if (asset->content_type.rfind("text/html", 0) == 0) {
        // The UI talks only to the daemon that served it, and is never framed.
        h.add("Content-Security-Policy",
              "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
              "style-src 'self' 'unsafe-inline'; "
              "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
        h.add("Referrer-Policy", "no-referrer");
    }
    std::string_view body = asset->body;
    if (!asset->gzip_body.empty() && accepts_gzip(req.headers.find("accept-encoding"))) {
        h.add("Content-Encoding", "gzip");
        body = asset->gzip_body;
    }
    conn.respond(200, h, body);
}

} // namespace ls::api
