// libsystemd, loaded at run time: the daemon does not link it. On Debian 12 it brings
// libgcrypt, liblzma, libzstd, liblz4 and libcap along (about 1 MB resident) though we call
// none of them, and a daemon started outside systemd (a shell, a container) needs none of
// it. The first caller that does need it (a socket-activated start, NOTIFY_SOCKET, the
// journal as stderr, the scope backend) dlopen()s libsystemd.so.0 and resolves the functions
// below into a table. The headers are used at compile time only, so the table's types are
// libsystemd's own declarations.
#pragma once

#include <string>

#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>

// sd-journal.h is left out: it brings <syslog.h>, whose LOG_DEBUG and LOG_INFO are
// util/log.h's macros here. Its one function used is declared as it is there; the plain
// function, not the macro that adds CODE_FILE/LINE/FUNC (of our one sending function).
extern "C" int sd_journal_sendv(const struct iovec* iov, int n);

namespace ls::sd {

inline constexpr const char* kLibSystemd = "libsystemd.so.0";

// clang-format off
#define LS_SD_FUNCTIONS(X)              \
    X(sd_listen_fds_with_names)         \
    X(sd_notify)                        \
    X(sd_watchdog_enabled)              \
    X(sd_journal_sendv)                 \
    X(sd_pid_get_unit)                  \
    X(sd_bus_new)                       \
    X(sd_bus_set_address)               \
    X(sd_bus_start)                     \
    X(sd_bus_unref)                     \
    X(sd_bus_flush_close_unref)         \
    X(sd_bus_get_fd)                    \
    X(sd_bus_get_events)                \
    X(sd_bus_get_timeout)               \
    X(sd_bus_process)                   \
    X(sd_bus_call_method)               \
    X(sd_bus_call_method_async)         \
    X(sd_bus_call_async)                \
    X(sd_bus_slot_unref)                \
    X(sd_bus_message_new_method_call)   \
    X(sd_bus_message_append)            \
    X(sd_bus_message_append_array)      \
    X(sd_bus_message_open_container)    \
    X(sd_bus_message_close_container)   \
    X(sd_bus_message_enter_container)   \
    X(sd_bus_message_read)              \
    X(sd_bus_message_unref)             \
    X(sd_bus_message_is_method_error)   \
    X(sd_bus_message_get_error)         \
    X(sd_bus_error_free)
// clang-format on

struct Systemd {
#define LS_SD_MEMBER(name) decltype(&::name) name = nullptr;
    LS_SD_FUNCTIONS(LS_SD_MEMBER)
#undef LS_SD_MEMBER
};

// The table, loading the library on the first call (thread-safe; tried once: a failure is
// remembered). Null when it cannot be loaded, with *error set to
// "libsystemd.so.0 could not be loaded: <dlerror>".
const Systemd* systemd(std::string* error = nullptr);

// Whether systemd() has loaded the library (never loads it).
bool systemd_loaded();

namespace testing {
// Makes the first systemd() call look for another file (a test of the failure path).
void set_library_name(const char* name);
} // namespace testing

} // namespace ls::sd
