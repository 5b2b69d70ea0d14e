#include "http/headers.h"

#include <algorithm>

namespace ls::http {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

Field field_of(std::string_view name) {
    auto is = [name](std::string_view known, Field f) {
        return iequals_same_size(name.data(), known.data(), known.size()) ? f : Field::Other;
    };
    switch (name.size()) {
    case 2:
        return is("te", Field::Te);
    case 4:
        return is("host", Field::Host);
    case 6:
        return is("expect", Field::Expect);
    case 7:
        return (name[0] | 0x20) == 't' ? is("trailer", Field::Trailer)
                                       : is("upgrade", Field::Upgrade);
    case 9:
        return is("x-api-key", Field::XApiKey);
    case 10:
        return (name[0] | 0x20) == 'c' ? is("connection", Field::Connection)
                                       : is("keep-alive", Field::KeepAlive);
    case 12:
        return is("content-type", Field::ContentType);
    case 13:
        return is("authorization", Field::Authorization);
    case 14:
        return is("content-length", Field::ContentLength);
    case 16:
        return is("proxy-connection", Field::ProxyConnection);
    case 17:
        return is("transfer-encoding", Field::TransferEncoding);
    case 18:
        return is("proxy-authenticate", Field::ProxyAuthenticate);
    case 19:
        return is("proxy-authorization", Field::ProxyAuthorization);
    default:
        return Field::Other;
    }
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

bool is_hop_by_hop(std::string_view name, std::string_view connection) {
    return is_hop_by_hop(field_of(name)) ||
           (!connection.empty() && header_has_token(connection, name));
}

bool is_hop_by_hop(std::string_view name, const HeaderList& headers) {
    const std::string* conn = headers.find("connection");
    return is_hop_by_hop(name, conn ? std::string_view(*conn) : std::string_view());
}

} // namespace ls::http
