#include "util/log.h"

#include <cstdio>
#include <cstring>
#include <ctime>
#include <unistd.h>

namespace ls {
namespace {
LogLevel g_level = LogLevel::Info;
LogSink g_sink = nullptr;
bool g_proxy_to_stderr = true;
bool g_upstream_to_stderr = false;
void* g_sink_user = nullptr;

const char* level_tag(LogLevel level) {
    switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
    }
    return "?";
}
} // namespace

bool parse_log_level(std::string_view name, LogLevel& out) {
    if (name == "debug") out = LogLevel::Debug;
    else if (name == "info") out = LogLevel::Info;
    else if (name == "warn") out = LogLevel::Warn;
    else if (name == "error") out = LogLevel::Error;
    else return false;
    return true;
}

void set_log_level(LogLevel level) { g_level = level; }
LogLevel log_level() { return g_level; }

void set_log_sink(LogSink sink, void* user) {
    g_sink = sink;
    g_sink_user = user;
}

void set_stderr_outputs(bool proxy, bool upstream) {
    g_proxy_to_stderr = proxy;
    g_upstream_to_stderr = upstream;
}
bool upstream_to_stderr() { return g_upstream_to_stderr; }

void log_raw_line(std::string_view source, std::string_view line) {
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "[debug] [%.*s] %.*s\n", static_cast<int>(source.size()), source.data(),
                     static_cast<int>(line.size() > 4000 ? 4000 : line.size()), line.data());
    if (n > 0) {
        ssize_t w = ::write(STDERR_FILENO, buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
        (void)w;
    }
}

void log_msg(LogLevel level, const char* fmt, ...) {
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = static_cast<size_t>(n) < sizeof body ? static_cast<size_t>(n) : sizeof body - 1;

    // "<level> message": journald/systemd add their own timestamps; tools read the level tag.
    char line[2100];
    int m = snprintf(line, sizeof line, "[%s] %.*s\n", level_tag(level), static_cast<int>(len), body);
    if (m <= 0) return;
    size_t total = static_cast<size_t>(m) < sizeof line ? static_cast<size_t>(m) : sizeof line - 1;
    // One write per line so lines from the daemon never interleave mid-line. Warnings and
    // errors always reach stderr, whatever logToStdout says.
    if (g_proxy_to_stderr || level >= LogLevel::Warn) {
        ssize_t w = ::write(STDERR_FILENO, line, total);
        (void)w;
    }
    if (g_sink) g_sink(level, std::string_view(line, total - 1), g_sink_user);
}

} // namespace ls
