// Leveled logging for the daemon. Two targets: plain "[level] message" lines on stderr, or
// native journald entries with structured fields (MODEL_ID, UPSTREAM_PID, REQUEST_ID, EVENT,
// LOAD_MS), so `journalctl -u llama-swap MODEL_ID=qwen -f` follows one model.
// Check log_enabled() before formatting on hot paths (the LOG_* macros do).
#pragma once

#include <cstdarg>
#include <cstdint>
#include <string_view>

namespace ls {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

bool parse_log_level(std::string_view name, LogLevel& out);
void set_log_level(LogLevel level);
// `logTimeFormat`: a timestamp in front of lines on stderr and in the proxy log (the journal
// has its own).
void set_log_time_format(const struct LogTimeFormat& format);
LogLevel log_level();
inline bool log_enabled(LogLevel level) {
    return level >= log_level();
}

enum class LogTarget { Auto, Stderr, Journal };
bool parse_log_target(std::string_view name, LogTarget& out);
// Auto: the journal when stderr already goes to it (JOURNAL_STREAM names our stderr).
void set_log_target(LogTarget target);

// Structured context of a log entry; unset members are left out.
struct LogFields {
    std::string_view model;
    int pid = 0;
    uint64_t request_id = 0;
    const char* event =
        nullptr; // model_starting, model_ready, model_stopped, model_failed, swap, …
    long long load_ms = -1;
};

// A sink receives every line that passes the level filter (the "proxy" log ring).
using LogSink = void (*)(LogLevel level, std::string_view line, void* user);
void set_log_sink(LogSink sink, void* user);

// logToStdout: which logs reach stderr/journal — the daemon's own, the upstreams' output.
void set_stderr_outputs(bool proxy, bool upstream);

// One line of an upstream's output: to the journal (MODEL_ID, UPSTREAM_PID) or stderr as
// "[debug] [model] line". Not passed to the sink (the log hub has its own upstream ring).
void log_upstream_line(std::string_view model, int pid, std::string_view line);

void log_msg(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void log_with(LogLevel level, const LogFields& fields, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

} // namespace ls

#define LS_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if (::ls::log_enabled(level)) ::ls::log_msg(level, __VA_ARGS__);                           \
    } while (0)
#define LOG_DEBUG(...) LS_LOG(::ls::LogLevel::Debug, __VA_ARGS__)
#define LOG_INFO(...) LS_LOG(::ls::LogLevel::Info, __VA_ARGS__)
#define LOG_WARN(...) LS_LOG(::ls::LogLevel::Warn, __VA_ARGS__)
#define LOG_ERROR(...) LS_LOG(::ls::LogLevel::Error, __VA_ARGS__)
// With structured fields: LOG_EVENT(LogLevel::Info, (LogFields{.model = id, .event = "x"}), "…")
#define LOG_EVENT(level, fields, ...)                                                              \
    do {                                                                                           \
        if (::ls::log_enabled(level)) ::ls::log_with(level, fields, __VA_ARGS__);                  \
    } while (0)
