#include "http/request.h"

namespace ls::http {

void Request::reset(Body fresh_body) {
    std::string kept[] = {std::move(method_name), std::move(target), std::move(path),
                          std::move(query), std::move(log_model)};
    HeaderList kept_headers = std::move(headers);
    *this = Request();
    for (std::string& k : kept) k.clear();
    method_name = std::move(kept[0]);
    target = std::move(kept[1]);
    path = std::move(kept[2]);
    query = std::move(kept[3]);
    log_model = std::move(kept[4]);
    kept_headers.clear();
    headers = std::move(kept_headers);
    body = std::move(fresh_body);
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
