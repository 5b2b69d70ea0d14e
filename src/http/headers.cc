#include "http/headers.h"

#include <algorithm>
#include <cctype>

namespace ls::http {

namespace {
// ASCII only (header names are tokens): no locale lookup per character.
char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

} // namespace

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool header_has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        size_t comma = value.find(',');
        std::string_view item = trim(value.substr(0, comma));
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

const std::string* HeaderList::find(std::string_view name) const {
    for (const auto& h : items_)
        if (iequals(h.name, name)) return &h.value;
    return nullptr;
}

void HeaderList::remove(std::string_view name) {
    items_.erase(std::remove_if(items_.begin(), items_.end(),
                                [&](const Header& h) { return iequals(h.name, name); }),
                 items_.end());
}

bool is_hop_by_hop(std::string_view name, std::string_view connection) {
    static constexpr std::string_view kHopByHop[] = {
        "connection", "keep-alive",        "proxy-connection", "proxy-authenticate", "te",
        "trailer",    "transfer-encoding", "upgrade",          "proxy-authorization"};
    for (auto h : kHopByHop)
        if (iequals(name, h)) return true;
    return !connection.empty() && header_has_token(connection, name);
}

bool is_hop_by_hop(std::string_view name, const HeaderList& headers) {
    const std::string* conn = headers.find("connection");
    return is_hop_by_hop(name, conn ? std::string_view(*conn) : std::string_view());
}

} // namespace ls::http
