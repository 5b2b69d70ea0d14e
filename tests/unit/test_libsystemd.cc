// libsystemd loaded at run time (src/sd/libsystemd.h): nothing maps it while no service
// manager asks for it (no NOTIFY_SOCKET, LISTEN_FDS or WATCHDOG_USEC), the first use that
// needs it loads it and resolves every function of the table, a notification then reaches
// NOTIFY_SOCKET, and a library that cannot be loaded is a clear error. Criterion runs each
// test in a process of its own, so each starts with nothing loaded.
#include <criterion/criterion.h>

#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mapped.h"
#include "sd/libsystemd.h"
#include "sd/listen.h"

namespace {
void clear_manager_environment() {
    for (const char* name : {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                             "WATCHDOG_USEC", "WATCHDOG_PID"})
        unsetenv(name);
}

// A datagram socket bound in a fresh temp dir, as a service manager's NOTIFY_SOCKET.
struct NotifyListener {
    std::string dir, path;
    int fd = -1;
    NotifyListener() {
        char tmpl[] = "/tmp/ls-notify-XXXXXX";
        cr_assert(mkdtemp(tmpl));
        dir = tmpl;
        path = dir + "/notify.sock";
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        path.copy(un.sun_path, sizeof un.sun_path - 1);
        cr_assert_eq(bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof un), 0);
        timeval tv{5, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~NotifyListener() {
        close(fd);
        unlink(path.c_str());
        rmdir(dir.c_str());
    }
    std::string receive() {
        char buf[512];
        const ssize_t n = recv(fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }
};
} // namespace

Test(libsystemd, not_loaded_without_a_service_manager) {
    clear_manager_environment();
    cr_assert(!mapped("libsystemd.so"), "libsystemd is mapped before any use");
    ls::sd::notify_ready();
    ls::sd::notify_status("idle");
    ls::sd::notify_watchdog();
    cr_assert_eq(ls::sd::watchdog_usec(), 0u);
    cr_assert(ls::sd::passed_sockets().empty());
    cr_assert(!mapped("libsystemd.so"), "a notification without NOTIFY_SOCKET loaded libsystemd");
    cr_assert(!ls::sd::systemd_loaded());
}

Test(libsystemd, first_use_loads_every_function) {
    cr_assert(!ls::sd::systemd_loaded());
    std::string error;
    const ls::sd::Systemd* lib = ls::sd::systemd(&error);
    cr_assert(lib, "%s", error.c_str());
    cr_assert(mapped("libsystemd.so"));
    cr_assert(ls::sd::systemd_loaded());
    cr_assert_eq(ls::sd::systemd(), lib, "loaded once");
#define LS_SD_CHECK(name) cr_assert(lib->name != nullptr, #name " was not resolved");
    LS_SD_FUNCTIONS(LS_SD_CHECK)
#undef LS_SD_CHECK
}

Test(libsystemd, notification_reaches_notify_socket) {
    clear_manager_environment();
    NotifyListener listener;
    setenv("NOTIFY_SOCKET", listener.path.c_str(), 1);
    ls::sd::notify_ready();
    const std::string ready = listener.receive();
    cr_assert_str_eq(ready.c_str(), "READY=1\nSTATUS=serving");
    ls::sd::notify_status("2 running");
    const std::string status = listener.receive();
    cr_assert_str_eq(status.c_str(), "STATUS=2 running");
    ls::sd::notify_reloading();
    const std::string reloading = listener.receive();
    cr_assert(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0, "%s", reloading.c_str());
    cr_assert(mapped("libsystemd.so"), "NOTIFY_SOCKET is set: libsystemd is loaded");
}

Test(libsystemd, missing_library_is_a_clear_error) {
    clear_manager_environment();
    ls::sd::testing::set_library_name("libsystemd-not-here.so.0");
    std::string error;
    cr_assert_null(ls::sd::systemd(&error));
    cr_assert(error.find("libsystemd-not-here.so.0 could not be loaded: ") == 0, "%s",
              error.c_str());
    cr_assert(!ls::sd::systemd_loaded());
    // Notifying and socket activation then say why and go on.
    NotifyListener listener;
    setenv("NOTIFY_SOCKET", listener.path.c_str(), 1);
    ls::sd::notify_ready();
    setenv("LISTEN_FDS", "1", 1);
    cr_assert(ls::sd::passed_sockets().empty());
}
