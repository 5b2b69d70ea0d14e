#include "util/log_time.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace ls {

namespace {
struct Named {
    const char* name;
    LogTimeFormat format;
};
// Go's time package constants, in strftime terms.
const Named kFormats[] = {
    {"ansic", {"%a %b %e %H:%M:%S %Y", 0, false, false}},
    {"unixdate", {"%a %b %e %H:%M:%S %Z %Y", 0, false, false}},
    {"rubydate", {"%a %b %d %H:%M:%S %z %Y", 0, false, false}},
    {"rfc822", {"%d %b %y %H:%M %Z", 0, false, false}},
    {"rfc822z", {"%d %b %y %H:%M %z", 0, false, false}},
    {"rfc850", {"%A, %d-%b-%y %H:%M:%S %Z", 0, false, false}},
    {"rfc1123", {"%a, %d %b %Y %H:%M:%S %Z", 0, false, false}},
    {"rfc1123z", {"%a, %d %b %Y %H:%M:%S %z", 0, false, false}},
    {"rfc3339", {"%Y-%m-%dT%H:%M:%S", 0, false, true}},
    {"rfc3339nano", {"%Y-%m-%dT%H:%M:%S", 9, true, true}},
    {"kitchen", {"%l:%M%p", 0, false, false}},
    {"stamp", {"%b %e %H:%M:%S", 0, false, false}},
    {"stampmilli", {"%b %e %H:%M:%S", 3, false, false}},
    {"stampmicro", {"%b %e %H:%M:%S", 6, false, false}},
    {"stampnano", {"%b %e %H:%M:%S", 9, false, false}},
};
} // namespace

bool parse_log_time_format(std::string_view name, LogTimeFormat& out) {
    std::string n;
    for (char c : name)
        if (c != ' ' && c != '\t') n += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (n.empty()) {
        out = LogTimeFormat{};
        return true;
    }
    for (const Named& f : kFormats)
        if (n == f.name) {
            out = f.format;
            return true;
        }
    return false;
}

size_t format_log_time(const LogTimeFormat& f, char* buf, size_t size) {
    if (!f.strftime || size < 64) return 0;
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm local{};
    localtime_r(&ts.tv_sec, &local);
    size_t n = strftime(buf, size, f.strftime, &local);
    if (n == 0) return 0;
    if (f.fraction_digits > 0) {
        char frac[16];
        snprintf(frac, sizeof frac, "%09ld", ts.tv_nsec);
        int digits = f.fraction_digits;
        if (f.trim_fraction)
            while (digits > 0 && frac[digits - 1] == '0') --digits;
        if (digits > 0 && n + static_cast<size_t>(digits) + 2 < size) {
            buf[n++] = '.';
            memcpy(buf + n, frac, static_cast<size_t>(digits));
            n += static_cast<size_t>(digits);
        }
    }
    if (f.rfc3339_zone) {
        const long off = local.tm_gmtoff;
        char zone[32];
        const int hours = static_cast<int>(labs(off) / 3600 % 100);
        const int minutes = static_cast<int>(labs(off) % 3600 / 60);
        if (off == 0)
            snprintf(zone, sizeof zone, "Z");
        else
            snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', hours, minutes);
        const size_t z = strlen(zone);
        if (n + z + 2 < size) {
            memcpy(buf + n, zone, z);
            n += z;
        }
    }
    if (n + 1 < size) buf[n++] = ' ';
    return n;
}

} // namespace ls
