// `logTimeFormat`: the original's Go time layout names (ansic, rfc3339, kitchen, ...) for the
// timestamp in front of llama-swap's own log lines on stderr and in the proxy log.
#pragma once

#include <cstddef>
#include <string_view>

namespace ls {

struct LogTimeFormat {
    const char* strftime = nullptr; // null: no timestamp
    int fraction_digits = 0;        // fixed digits of the second (stampmilli: 3, ...)
    bool trim_fraction = false;     // rfc3339nano: trailing zeros dropped, as Go's .999999999
    bool rfc3339_zone = false;      // "Z" or "+hh:mm" after the time
};

// Case-insensitive, blanks trimmed; false for an unknown name ("" is none, and valid).
bool parse_log_time_format(std::string_view name, LogTimeFormat& out);
// The current local time in `f` plus a blank, into buf; 0 when there is no timestamp.
size_t format_log_time(const LogTimeFormat& f, char* buf, size_t size);

} // namespace ls
