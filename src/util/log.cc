#include "util/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "sd/libsystemd.h"
#include "util/log_time.h"

namespace ls {
namespace {
LogLevel g_level = LogLevel::Info;
LogTimeFormat g_time_format;
LogSink g_sink = nullptr;
void* g_sink_user = nullptr;
bool g_proxy_to_stderr = true;
bool g_upstream_to_stderr = false;
bool g_journal = false;
// Set with g_journal: libsystemd's sd_journal_sendv, once loaded.
decltype(&::sd_journal_sendv) g_journal_sendv = nullptr;

const char* level_tag(LogLevel level) {
    switch (level) {
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warn:
        return "warn";
    case LogLevel::Error:
        return "error";
    }
    return "?";
}

int syslog_priority(LogLevel level) {
    switch (level) {
    case LogLevel::Debug:
        return LOG_DEBUG;
    case LogLevel::Info:
        return LOG_INFO;
    case LogLevel::Warn:
        return LOG_WARNING;
    case LogLevel::Error:
        return LOG_ERR;
    }
    return LOG_INFO;
}

// True when our stderr is the journal stream systemd connected (JOURNAL_STREAM=dev:ino).
bool stderr_is_journal() {
    const char* e = getenv("JOURNAL_STREAM");
    if (!e) return false;
    unsigned long long dev = 0, ino = 0;
    if (sscanf(e, "%llu:%llu", &dev, &ino) != 2) return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

// Sends one journal entry; fields are "NAME=value" strings.
void journal_send(const char* const* fields, int count) {
    struct iovec iov[12];
    int n = 0;
    for (int i = 0; i < count && n < 12; ++i) {
        iov[n].iov_base = const_cast<char*>(fields[i]);
        iov[n].iov_len = strlen(fields[i]);
        ++n;
    }
    g_journal_sendv(iov, n);
}

void write_stderr(const char* data, size_t len) {
    ssize_t w = ::write(STDERR_FILENO, data, len); // one write per line: no interleaving
    (void)w;
}

void emit(LogLevel level, const LogFields* f, const char* body, size_t len) {
    char line[2200];
    const size_t stamp = format_log_time(g_time_format, line, 128);
    int m = snprintf(line + stamp, sizeof line - stamp, "[%s] %.*s\n", level_tag(level),
                     static_cast<int>(len), body);
    if (m > 0) m += static_cast<int>(stamp);
    if (m <= 0) return;
    const size_t total =
        static_cast<size_t>(m) < sizeof line ? static_cast<size_t>(m) : sizeof line - 1;
    // Warnings and errors always get out, whatever logToStdout says.
    if (g_proxy_to_stderr || level >= LogLevel::Warn) {
        if (g_journal) {
            char message[2100], priority[16], model[300], pid[32], request[48], event[64], load[48];
            snprintf(message, sizeof message, "MESSAGE=%.*s", static_cast<int>(len), body);
            snprintf(priority, sizeof priority, "PRIORITY=%d", syslog_priority(level));
            const char* fields[8] = {message, priority, "SYSLOG_IDENTIFIER=llama-swap"};
            int count = 3;
            if (f && !f->model.empty()) {
                snprintf(model, sizeof model, "MODEL_ID=%.*s", static_cast<int>(f->model.size()),
                         f->model.data());
                fields[count++] = model;
            }
            if (f && f->pid > 0) {
                snprintf(pid, sizeof pid, "UPSTREAM_PID=%d", f->pid);
                fields[count++] = pid;
            }
            if (f && f->request_id) {
                snprintf(request, sizeof request, "REQUEST_ID=%llu",
                         static_cast<unsigned long long>(f->request_id));
                fields[count++] = request;
            }
            if (f && f->event) {
                snprintf(event, sizeof event, "EVENT=%s", f->event);
                fields[count++] = event;
            }
            if (f && f->load_ms >= 0) {
                snprintf(load, sizeof load, "LOAD_MS=%lld", f->load_ms);
                fields[count++] = load;
            }
            journal_send(fields, count);
        } else {
            write_stderr(line, total);
        }
    }
    if (g_sink) g_sink(level, std::string_view(line, total - 1), g_sink_user);
}

void vlog(LogLevel level, const LogFields* f, const char* fmt, va_list ap) {
    char body[2048];
    int n = vsnprintf(body, sizeof body, fmt, ap);
    if (n < 0) return;
    const size_t len =
        static_cast<size_t>(n) < sizeof body ? static_cast<size_t>(n) : sizeof body - 1;
    emit(level, f, body, len);
}
} // namespace

bool parse_log_level(std::string_view name, LogLevel& out) {
    if (name == "debug")
        out = LogLevel::Debug;
    else if (name == "info")
        out = LogLevel::Info;
    else if (name == "warn")
        out = LogLevel::Warn;
    else if (name == "error")
        out = LogLevel::Error;
    else
        return false;
    return true;
}

bool parse_log_target(std::string_view name, LogTarget& out) {
    if (name == "auto")
        out = LogTarget::Auto;
    else if (name == "stderr")
        out = LogTarget::Stderr;
    else if (name == "journal")
        out = LogTarget::Journal;
    else
        return false;
    return true;
}

void set_log_target(LogTarget target) {
    g_journal = target == LogTarget::Journal || (target == LogTarget::Auto && stderr_is_journal());
    if (!g_journal) return;
    // The journal is written through libsystemd, loaded now (see sd/libsystemd.h).
    std::string error;
    if (const sd::Systemd* lib = sd::systemd(&error)) {
        g_journal_sendv = lib->sd_journal_sendv;
        return;
    }
    g_journal = false;
    const std::string line = "[warn] logging to stderr: the journal needs " + error + "\n";
    write_stderr(line.data(), line.size());
}

void set_log_time_format(const LogTimeFormat& format) {
    g_time_format = format;
}

void set_log_level(LogLevel level) {
    g_level = level;
}
LogLevel log_level() {
    return g_level;
}

void set_log_sink(LogSink sink, void* user) {
    g_sink = sink;
    g_sink_user = user;
}

void set_stderr_outputs(bool proxy, bool upstream) {
    g_proxy_to_stderr = proxy;
    g_upstream_to_stderr = upstream;
}

void log_upstream_line(std::string_view model, int pid, std::string_view line) {
    const int len = static_cast<int>(line.size() > 4000 ? 4000 : line.size());
    // In the journal, upstream lines carry MODEL_ID and can be filtered, so they go there
    // unless logToStdout is "none"; on plain stderr only with "upstream"/"both" or debug.
    if (g_journal && (g_proxy_to_stderr || g_upstream_to_stderr)) {
        char message[4100], model_field[300], pid_field[32];
        snprintf(message, sizeof message, "MESSAGE=%.*s", len, line.data());
        snprintf(model_field, sizeof model_field, "MODEL_ID=%.*s", static_cast<int>(model.size()),
                 model.data());
        snprintf(pid_field, sizeof pid_field, "UPSTREAM_PID=%d", pid);
        const char* fields[] = {message,
                                model_field,
                                pid_field,
                                "PRIORITY=6",
                                "SYSLOG_IDENTIFIER=llama-swap",
                                "EVENT=upstream_output"};
        journal_send(fields, 6);
        return;
    }
    if (g_journal || (!g_upstream_to_stderr && !log_enabled(LogLevel::Debug))) return;
    char buf[4400];
    int n = snprintf(buf, sizeof buf, "[debug] [%.*s] %.*s\n", static_cast<int>(model.size()),
                     model.data(), len, line.data());
    if (n > 0)
        write_stderr(buf,
                     static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
}

void log_msg(LogLevel level, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, nullptr, fmt, ap);
    va_end(ap);
}

void log_with(LogLevel level, const LogFields& fields, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, &fields, fmt, ap);
    va_end(ap);
}

} // namespace ls
