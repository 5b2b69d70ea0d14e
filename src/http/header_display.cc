#include "http/header_display.h"

#include <algorithm>

#include "http/error_body.h"

namespace ls::http {

std::string canonical_header_name(std::string_view name) {
    std::string out(name);
    bool upper = true;
    for (char& c : out) {
        if (upper && c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
        else if (!upper && c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
        upper = c == '-';
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> header_map(const http::HeaderList& headers) {
    static constexpr std::string_view kSensitive[] = {"authorization", "proxy-authorization",
                                                      "cookie", "set-cookie", "x-api-key"};
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& h : headers.items()) {
        if (iequals(h.name, "host")) continue;
        std::string name = canonical_header_name(h.name);
        bool seen = false;
        for (const auto& [k, v] : out) seen |= k == name;
        if (seen) continue; // the first value, as the original
        bool sensitive = false;
        for (std::string_view s : kSensitive) sensitive |= iequals(h.name, s);
        out.emplace_back(std::move(name), sensitive ? "[REDACTED]" : h.value);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::string header_map_json(const std::vector<std::pair<std::string, std::string>>& headers) {
    std::string out = "{";
    for (const auto& [k, v] : headers) {
        if (out.size() > 1) out += ",";
        out += "\"" + json_escape(k) + "\":\"" + json_escape(v) + "\"";
    }
    return out + "}";
}

} // namespace ls::http
