#include "http/packed_headers.h"

namespace ls::http {

PackedHeaders::PackedHeaders(const HeaderList& list) {
    size_t total = 0;
    for (const Header& h : list.items())
        total += 2 * sizeof(Length) + h.name.size() + h.value.size();
    // Sized once and written in place: a capture packs two lists per request.
    data_.resize(total);
    char* out = data_.data();
    auto put = [&out](const std::string& s) {
        const Length n = static_cast<Length>(s.size());
        std::memcpy(out, &n, sizeof n);
        std::memcpy(out + sizeof n, s.data(), s.size());
        out += sizeof n + s.size();
    };
    for (const Header& h : list.items()) {
        put(h.name);
        put(h.value);
    }
}

HeaderList PackedHeaders::unpack(std::string_view packed) {
    HeaderList out;
    for_each(packed, [&out](std::string_view name, std::string_view value) {
        out.add(std::string(name), std::string(value));
    });
    return out;
}

} // namespace ls::http
