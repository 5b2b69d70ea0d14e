// The web UI (src/ui/), compiled into the binary by src/ui/embed.py and served at /ui/.
// Assets are public (they hold no secrets); the UI asks for an API key when the API needs one.
#pragma once

#include <cstddef>
#include <string_view>

#include "http/connection.h"

namespace ls::api {

struct UiAsset {
    std::string_view name;
    std::string_view content_type;
    std::string_view etag; // strong, quoted
    std::string_view body;
    std::string_view gzip_body; // empty when compression does not pay
};

extern const UiAsset kUiAssets[];
extern const size_t kUiAssetCount;

const UiAsset* find_ui_asset(std::string_view name);

// GET/HEAD /ui, /ui/ and /ui/<file>: the asset with ETag revalidation (304) and gzip when the
// client accepts it; 301 from /ui to /ui/; 404 JSON for an unknown file.
void serve_ui(http::Connection& conn, const http::Request& req);

} // namespace ls::api
