#include "http/request.h"

namespace ls::http {

void Request::reset(Body fresh_body) {
    // Every member as a new Request has it; the strings and the header list only cleared.
    // (A member added to Request must be reset here: the size check below is a reminder.)
    static_assert(sizeof(void*) != 8 || sizeof(Request) == 328,
                  "a Request member was added or changed: reset it here");
    id = 0;
    method = 0;
    method_name.clear();
    target.clear();
    path.clear();
    query.clear();
    version_major = 1;
    version_minor = 1;
    headers.clear();
    keep_alive = true;
    expect_continue = false;
    has_body = false;
    content_length = 0;
    body_complete = true;
    upgrade = false;
    body = std::move(fresh_body);
    received_at = 0;
    log_model.clear();
    quiet = false;
    debug_log = false;
}

namespace {
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
} // namespace

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
    return out;
}

std::string percent_encode(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

bool query_param(std::string_view query, std::string_view name, std::string& out) {
    while (!query.empty()) {
        size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        size_t eq = pair.find('=');
        std::string_view key = pair.substr(0, eq);
        if (percent_decode(key) == name) {
            out =
                eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
            return true;
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

} // namespace ls::http
