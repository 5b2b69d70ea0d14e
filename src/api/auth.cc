#include "api/auth.h"

#include <cstdint>

namespace ls::api {

bool constant_time_equals(std::string_view a, std::string_view b) {
    // The time depends only on the lengths, never on where the first difference is.
    unsigned diff = static_cast<unsigned>(a.size() ^ b.size());
    const size_t n = a.size() < b.size() ? a.size() : b.size();
    for (size_t i = 0; i < n; ++i)
        diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
    return diff == 0;
}

std::string base64_decode(std::string_view in) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
    };
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        if (c == '=') break;
        int v = val(c);
        if (v < 0) continue;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

namespace {
bool matches_any(std::string_view candidate, const std::vector<std::string>& keys) {
    bool ok = false;
    for (const auto& k : keys) ok |= constant_time_equals(candidate, k); // no early exit
    return ok;
}
} // namespace

bool request_authorized(const http::HeaderList& headers, const std::vector<std::string>& keys) {
    if (keys.empty()) return true;
    if (const std::string* auth = headers.find("authorization")) {
        std::string_view v = http::trim(*auth);
        size_t sp = v.find(' ');
        std::string_view scheme = v.substr(0, sp);
        std::string_view cred =
            sp == std::string_view::npos ? std::string_view() : http::trim(v.substr(sp + 1));
        if (http::iequals(scheme, "basic")) {
            const std::string decoded = base64_decode(cred);
            const size_t colon = decoded.find(':');
            if (colon != std::string::npos &&
                matches_any(std::string_view(decoded).substr(colon + 1), keys))
                return true;
        } else if (http::iequals(scheme, "bearer") && matches_any(cred, keys)) {
            return true;
        }
    }
    if (const std::string* k = headers.find("x-api-key"))
        if (matches_any(http::trim(*k), keys)) return true;
    return false;
}

bool route_is_public(std::string_view path) {
    // The web UI's static files hold no secrets; the UI asks for a key when the API needs one.
    return path == "/health" || path == "/wol-health" || path == "/" || path == "/favicon.ico" ||
           path == "/ui" || path.rfind("/ui/", 0) == 0;
}

} // namespace ls::api
