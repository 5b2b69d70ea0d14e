// HTTP header list with case-insensitive lookup (header names are ASCII).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ls::http {

namespace detail {
// Eight ASCII bytes lowercased at once: 0x20 added where a byte is 'A'..'Z'.
inline uint64_t lower8(uint64_t x) {
    constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = kOnes * 0x80;
    const uint64_t low7 = x & ~kHigh; // no carry from one byte into the next below
    const uint64_t at_least_a = low7 + kOnes * (0x80 - 'A');
    const uint64_t above_z = low7 + kOnes * (0x80 - 'Z' - 1);
    const uint64_t upper = at_least_a & ~above_z & ~x & kHigh;
    return x | (upper >> 2);
}
inline uint64_t load8(const char* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}
} // namespace detail

// ASCII case-insensitive, eight bytes at a time (header names are tokens). Inline: with a
// literal on one side the compiler folds its words.
inline bool iequals_same_size(const char* a, const char* b, size_t n) {
    using detail::load8, detail::lower8;
    if (n >= 8) {
        // Whole words, the last one overlapping the one before when n is not a multiple of 8.
        for (size_t i = 0; i + 8 < n; i += 8)
            if (lower8(load8(a + i)) != lower8(load8(b + i))) return false;
        return lower8(load8(a + n - 8)) == lower8(load8(b + n - 8));
    }
    for (size_t i = 0; i < n; ++i)
        if (detail::lower(a[i]) != detail::lower(b[i])) return false;
    return true;
}
// Equal sizes, then the bytes: most names a lookup passes differ in length.
inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && iequals_same_size(a.data(), b.data(), a.size());
}
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
    // A parser's next field: the name copied once into its place, the value empty for the
    // parser to append to (add() would build and move two temporaries).
    Header& add_named(std::string_view name) {
        Header& h = items_.emplace_back();
        h.name.assign(name);
        return h;
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

// The header names the proxy acts on, told apart by one switch on the length and one
// comparison (a filter loop over a message's fields used to compare each with a dozen names).
enum class Field : uint8_t {
    Other,
    Connection,
    KeepAlive,
    ProxyConnection,
    ProxyAuthenticate,
    ProxyAuthorization,
    Te,
    Trailer,
    TransferEncoding,
    Upgrade,
    ContentLength,
    ContentType,
    Expect,
    Host,
    Date,
    Authorization,
    XApiKey,
};
Field field_of(std::string_view name);
// RFC 9110 7.6.1's fixed list (and the old Keep-Alive / Proxy-Connection).
bool is_hop_by_hop(Field f);

// Hop-by-hop headers (RFC 9110 7.6.1) that a proxy must not forward, plus any named in
// the message's own Connection header.
bool is_hop_by_hop(std::string_view name, const HeaderList& headers);
// The same, given the message's Connection header value (looked up once for all its fields).
bool is_hop_by_hop(std::string_view name, std::string_view connection);
// A Connection header's value (null: none) as far as it names other headers for the
// `connection` argument above: empty when it says only "keep-alive" or "close", as nearly
// every message does (those name no header beyond the hop-by-hop set), so that the filters
// need not look for each field's name in it.
std::string_view connection_names(const std::string* value);
// The same, the field's name already classified (a filter loop that classifies it anyway).
bool is_hop_by_hop(Field f, std::string_view name, std::string_view connection);

} // namespace ls::http
