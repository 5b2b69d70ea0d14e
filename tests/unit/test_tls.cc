// TLS with OpenSSL loaded at run time (src/tls/openssl_lib.h): libssl is not mapped until the
// first context, a context can then be made and a session pair handshakes and talks over a
// socket pair (the function table, the SSL_ctrl macros: SNI, min version, modes), and a
// library that cannot be loaded is a clear error. Criterion runs each test in a process of
// its own, so each starts with nothing loaded.
#include <criterion/criterion.h>

#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "mapped.h"
#include "tls/openssl_lib.h"
#include "tls/tls.h"

using ls::config::TlsClientConfig;
using ls::tls::Context;
using ls::tls::Session;

// mapped(): Criterion itself links libcrypto, so only libssl tells whether the daemon's code
// loaded OpenSSL.
namespace {
std::string temp_dir() {
    char dir[] = "/tmp/test-tls-XXXXXX";
    cr_assert(mkdtemp(dir));
    return dir;
}

// A self-signed certificate for localhost (the openssl command; false without it).
bool make_cert(const std::string& dir) {
    if (system("command -v openssl >/dev/null 2>&1") != 0) return false;
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + dir +
        "/key.pem -out " + dir + "/cert.pem -days 1 -subj /CN=localhost " +
        "-addext subjectAltName=DNS:localhost >/dev/null 2>&1";
    cr_assert_eq(system(cmd.c_str()), 0, "%s", cmd.c_str());
    return true;
}

// Drives both handshakes over the socket pair until both are done or one fails.
bool handshake(Session& client, Session& server) {
    for (int i = 0; i < 100; i++) {
        const int c = client.handshake();
        const int s = server.handshake();
        if (c < 0 || s < 0) return false;
        if (c == 1 && s == 1) return true;
    }
    return false;
}

struct Pair {
    int fds[2];
    Pair() { cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0); }
    ~Pair() {
        close(fds[0]);
        close(fds[1]);
    }
};
} // namespace

Test(tls, load_library_loads_it) {
    cr_assert(!mapped("libssl.so"), "libssl is mapped before any TLS use");
    cr_assert(!ls::tls::openssl_loaded());
    cr_assert(ls::tls::load_library());
    cr_assert(mapped("libssl.so"), "load_library() loads it");
    cr_assert(ls::tls::openssl_loaded());
}

Test(tls, first_context_loads_the_library) {
    cr_assert(!mapped("libssl.so"), "libssl is mapped before any TLS use");
    TlsClientConfig cfg;
    cfg.insecure = true;
    auto ctx = Context::client(cfg);
    cr_assert(ctx, "%s", ctx ? "" : ctx.error().message.c_str());
    cr_assert(!ctx.value()->verifies());
    cr_assert(mapped("libssl.so"), "libssl is loaded by the first context");
    cr_assert(mapped("libcrypto.so"));
    cr_assert(ls::tls::openssl_loaded());
    // The system CAs, verified.
    auto verified = Context::client(TlsClientConfig{});
    cr_assert(verified, "%s", verified ? "" : verified.error().message.c_str());
    cr_assert(verified.value()->verifies());
}

Test(tls, openssl_errors_come_through) {
    TlsClientConfig cfg;
    cfg.ca_file = "/nonexistent/ca.pem";
    auto ctx = Context::client(cfg);
    cr_assert(!ctx);
    cr_assert(ctx.error().message.rfind("cannot load the CA file", 0) == 0, "%s",
              ctx.error().message.c_str());
    auto server = Context::server("/nonexistent/cert.pem", "/nonexistent/key.pem");
    cr_assert(!server);
    cr_assert(
        server.error().message.rfind("cannot load the certificate /nonexistent/cert.pem", 0) == 0,
        "%s", server.error().message.c_str());
}

Test(tls, sessions_handshake_and_talk) {
    const std::string dir = temp_dir();
    if (!make_cert(dir)) cr_skip_test("no openssl command to make a certificate");
    auto server_ctx = Context::server(dir + "/cert.pem", dir + "/key.pem");
    cr_assert(server_ctx, "%s", server_ctx ? "" : server_ctx.error().message.c_str());
    TlsClientConfig cfg;
    cfg.ca_file = dir + "/cert.pem";
    auto client_ctx = Context::client(cfg);
    cr_assert(client_ctx, "%s", client_ctx ? "" : client_ctx.error().message.c_str());

    {
        Pair p;
        auto client = Session::client(client_ctx.value(), p.fds[0], "localhost");
        auto server = Session::server(server_ctx.value(), p.fds[1]);
        cr_assert(client && server);
        cr_assert(handshake(*client.value(), *server.value()), "%s / %s",
                  client.value()->error().c_str(), server.value()->error().c_str());
        cr_assert(client.value()->handshaken());

        cr_assert_eq(client.value()->write("hello", 5), 5);
        char buf[16] = {};
        cr_assert_eq(server.value()->read(buf, sizeof buf), 5);
        cr_assert_str_eq(buf, "hello");
        cr_assert_eq(server.value()->read(buf, sizeof buf), -1, "nothing more yet");
        cr_assert(server.value()->want() == ls::tls::Want::read);
        cr_assert_eq(server.value()->pending(), 0u);

        cr_assert_eq(server.value()->write("world!", 6), 6);
        cr_assert_eq(client.value()->read(buf, sizeof buf), 6);
        cr_assert_eq(std::string(buf, 6), "world!");

        client.value()->close_notify();
        cr_assert_eq(server.value()->read(buf, sizeof buf), 0, "close_notify: a clean end");
    }
    {
        // A name the certificate is not for: refused, and said so.
        Pair p;
        auto client = Session::client(client_ctx.value(), p.fds[0], "example.com");
        auto server = Session::server(server_ctx.value(), p.fds[1]);
        cr_assert(client && server);
        cr_assert(!handshake(*client.value(), *server.value()));
        cr_assert(client.value()->error().find("certificate verify failed") != std::string::npos,
                  "%s", client.value()->error().c_str());
    }
    system(("rm -rf " + dir).c_str());
}

Test(tls, library_that_cannot_be_loaded) {
    ls::tls::testing::set_library_names("libssl-not-here.so.3", "libcrypto-not-here.so.3");
    TlsClientConfig cfg;
    auto ctx = Context::client(cfg);
    cr_assert(!ctx);
    const std::string want = "TLS needs libssl-not-here.so.3, which could not be loaded: ";
    cr_assert(ctx.error().message.rfind(want, 0) == 0, "%s", ctx.error().message.c_str());
    cr_assert(ctx.error().message.size() > want.size(), "the dlerror follows");
    // Remembered: the listener's context says the same.
    auto server = Context::server("/nonexistent/cert.pem", "/nonexistent/key.pem");
    cr_assert(!server);
    cr_assert_str_eq(server.error().message.c_str(), ctx.error().message.c_str());
    auto loaded = ls::tls::load_library();
    cr_assert(!loaded);
    cr_assert_str_eq(loaded.error().message.c_str(), ctx.error().message.c_str());
    cr_assert(!ls::tls::openssl_loaded());
    cr_assert(!mapped("libssl.so"));
}
