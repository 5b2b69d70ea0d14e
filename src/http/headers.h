// HTTP header list with case-insensitive lookup (header names are ASCII).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ls::http {

bool iequals(std::string_view a, std::string_view b);
// Without the spaces and tabs around it (header values, list items).
std::string_view trim(std::string_view s);
// True when the comma-separated header value contains `token` (case-insensitive).
bool header_has_token(std::string_view value, std::string_view token);

struct Header {
    std::string name;
    std::string value;
};

class HeaderList {
public:
    void add(std::string name, std::string value) {
        items_.push_back({std::move(name), std::move(value)});
    }
    // Parsers reserve room for a typical message's headers: one allocation instead of
    // growing 1, 2, 4, 8; lists built by hand (one or two headers) stay small.
    void reserve_typical() { items_.reserve(kTypicalCount); }
    // First value of `name`, or nullptr.
    const std::string* find(std::string_view name) const;
    bool has(std::string_view name) const { return find(name) != nullptr; }
    void remove(std::string_view name);
    void set(std::string name, std::string value) {
        remove(name);
        add(std::move(name), std::move(value));
    }
    const std::vector<Header>& items() const { return items_; }
    std::vector<Header>& items() { return items_; }
    void clear() { items_.clear(); }
    bool empty() const { return items_.empty(); }

private:
    static constexpr size_t kTypicalCount = 12;
    std::vector<Header> items_;
};

// Hop-by-hop headers (RFC 9110 7.6.1) that a proxy must not forward, plus any named in
// the message's own Connection header.
bool is_hop_by_hop(std::string_view name, const HeaderList& headers);
// The same, given the message's Connection header value (looked up once for all its fields).
bool is_hop_by_hop(std::string_view name, std::string_view connection);

} // namespace ls::http
