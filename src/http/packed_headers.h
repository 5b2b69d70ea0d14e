// A header list frozen into one string. The capture store keeps thousands of them: one
// allocation (and one free when evicted) instead of two per field, and a size known without
// walking the fields.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "http/headers.h"

namespace ls::http {

class PackedHeaders {
public:
    PackedHeaders() = default;
    explicit PackedHeaders(const HeaderList& list);

    // Calls f(name, value) for each field of `packed` (what data() gave), in order.
    template <typename F>
    static void for_each(std::string_view packed, F&& f) {
        size_t at = 0;
        while (at + 2 * sizeof(Length) <= packed.size()) {
            const std::string_view name = next(packed, at);
            const std::string_view value = next(packed, at);
            f(name, value);
        }
    }
    static HeaderList unpack(std::string_view packed);
    HeaderList unpack() const { return unpack(data_); }
    // The packed bytes (names, values and their lengths).
    std::string_view data() const { return data_; }
    size_t bytes() const { return data_.size(); }
    bool empty() const { return data_.empty(); }

private:
    using Length = uint32_t; // header sections are far below 4 GiB (max_header_bytes)
    static std::string_view next(std::string_view packed, size_t& at) {
        Length n;
        std::memcpy(&n, packed.data() + at, sizeof n);
        at += sizeof n;
        n = static_cast<Length>(std::min<size_t>(n, packed.size() - at));
        const std::string_view s = packed.substr(at, n);
        at += n;
        return s;
    }
    std::string data_;
};

} // namespace ls::http
