// Leveled logging for the daemon itself. Check log_enabled() before formatting on hot paths.
#pragma once

#include <cstdarg>
#include <string_view>

namespace ls {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

bool parse_log_level(std::string_view name, LogLevel& out);
void set_log_level(LogLevel level);
LogLevel log_level();
inline bool log_enabled(LogLevel level) { return level >= log_level(); }

// A sink receives every formatted line that passes the level filter (e.g. the proxy log ring).
using LogSink = void (*)(LogLevel level, std::string_view line, void* user);
void set_log_sink(LogSink sink, void* user);

// logToStdout: which logs reach stderr (journald) — the daemon's own, the upstreams' output.
void set_stderr_outputs(bool proxy, bool upstream);
bool upstream_to_stderr();

// Writes "[source] line" to stderr without passing through the sink (upstream output).
void log_raw_line(std::string_view source, std::string_view line);

void log_msg(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

} // namespace ls

#define LS_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if (::ls::log_enabled(level)) ::ls::log_msg(level, __VA_ARGS__);                           \
    } while (0)
#define LOG_DEBUG(...) LS_LOG(::ls::LogLevel::Debug, __VA_ARGS__)
#define LOG_INFO(...) LS_LOG(::ls::LogLevel::Info, __VA_ARGS__)
#define LOG_WARN(...) LS_LOG(::ls::LogLevel::Warn, __VA_ARGS__)
#define LOG_ERROR(...) LS_LOG(::ls::LogLevel::Error, __VA_ARGS__)
