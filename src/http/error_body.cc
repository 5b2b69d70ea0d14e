#include "http/error_body.h"

#include <cstdio>

namespace ls::http {

std::string json_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    for (unsigned char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (c < 0x20) {
                char buf[8];
                snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out.push_back(static_cast<char>(c));
            }
        }
    }
    return out;
}

std::string error_json(int status, std::string_view message, std::string_view code,
                       std::string_view type) {
    if (type.empty()) {
        if (status == 401)
            type = "authentication_error";
        else if (status == 429)
            type = "rate_limit_error";
        else if (status >= 500)
            type = "server_error";
        else
            type = "invalid_request_error";
    }
    std::string out = "{\"error\":{\"message\":\"";
    out += json_escape(message);
    out += "\",\"type\":\"";
    out += json_escape(type);
    out += "\",\"param\":null,\"code\":\"";
    out += json_escape(code);
    out += "\"}}\n";
    return out;
}

} // namespace ls::http
