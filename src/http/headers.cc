#include "http/headers.h"

#include <algorithm>

namespace ls::http {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

namespace {
// `name` (of the literal's length) against a lowercase literal: its words are constants, and
// with the length known the loop unrolls.
template <size_t N>
[[gnu::always_inline]] inline bool is_lowercase_literal(const char* name, const char (&known)[N]) {
    constexpr size_t n = N - 1;
    if constexpr (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if (detail::lower8(detail::load8(name + i)) != detail::load8(known + i)) return false;
        return detail::lower8(detail::load8(name + n - 8)) == detail::load8(known + n - 8);
    } else {
        for (size_t i = 0; i < n; ++i)
            if (detail::lower(name[i]) != known[i]) return false;
        return true;
    }
}
} // namespace

Field field_of(std::string_view name) {
#define LS_IS(literal, field) (is_lowercase_literal(name.data(), literal) ? (field) : Field::Other)
    switch (name.size()) {
    case 2:
        return LS_IS("te", Field::Te);
    case 4:
        return (name[0] | 0x20) == 'h' ? LS_IS("host", Field::Host) : LS_IS("date", Field::Date);
    case 6:
        return LS_IS("expect", Field::Expect);
    case 7:
        return (name[0] | 0x20) == 't' ? LS_IS("trailer", Field::Trailer)
                                       : LS_IS("upgrade", Field::Upgrade);
    case 9:
        return LS_IS("x-api-key", Field::XApiKey);
    case 10:
        return (name[0] | 0x20) == 'c' ? LS_IS("connection", Field::Connection)
                                       : LS_IS("keep-alive", Field::KeepAlive);
    case 12:
        return LS_IS("content-type", Field::ContentType);
    case 13:
        return LS_IS("authorization", Field::Authorization);
    case 14:
        return LS_IS("content-length", Field::ContentLength);
    case 16:
        return LS_IS("proxy-connection", Field::ProxyConnection);
    case 17:
        return LS_IS("transfer-encoding", Field::TransferEncoding);
    case 18:
        return LS_IS("proxy-authenticate", Field::ProxyAuthenticate);
    case 19:
        return LS_IS("proxy-authorization", Field::ProxyAuthorization);
    default:
        return Field::Other;
    }
#undef LS_IS
}

bool is_hop_by_hop(Field f) {
    switch (f) {
    case Field::Connection:
    case Field::KeepAlive:
    case Field::ProxyConnection:
    case Field::ProxyAuthenticate:
    case Field::ProxyAuthorization:
    case Field::Te:
    case Field::Trailer:
    case Field::TransferEncoding:
    case Field::Upgrade:
        return true;
    default:
        return false;
    }
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

bool is_hop_by_hop(Field f, std::string_view name, std::string_view connection) {
    return is_hop_by_hop(f) || (!connection.empty() && header_has_token(connection, name));
}

std::string_view connection_names(const std::string* value) {
    if (!value) return {};
    const std::string_view v = trim(*value);
    if (iequals(v, "keep-alive") || iequals(v, "close")) return {};
    return *value;
}

bool is_hop_by_hop(std::string_view name, std::string_view connection) {
    return is_hop_by_hop(field_of(name), name, connection);
}

bool is_hop_by_hop(std::string_view name, const HeaderList& headers) {
    const std::string* conn = headers.find("connection");
    return is_hop_by_hop(name, conn ? std::string_view(*conn) : std::string_view());
}

} // namespace ls::http
