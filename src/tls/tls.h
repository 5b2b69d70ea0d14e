// TLS with OpenSSL's non-blocking API on the daemon's own sockets and event loop: contexts for
// the client side (https:// upstreams and peers: system CAs or a CA file, host name checked) and
// the server side (--tls-cert-file/--tls-key-file), and a session per connection that the proxy
// and the HTTP server read and write through instead of recv/send.
//
// Why OpenSSL here rather than libcurl: the listener needs OpenSSL anyway, and with a session
// on the same socket a peer over TLS goes through the same proxy code as a local upstream —
// back-pressure, cut-stream semantics, timeouts, usage metering — where libcurl's multi
// interface would have meant a second relay with its own buffering.
//
// OpenSSL is not linked: the first Context loads libssl.so.3/libcrypto.so.3 (dlopen, see
// tls/openssl_lib.h), so a daemon without TLS never maps them. When they cannot be loaded,
// Context::client/server fail with "TLS needs libssl.so.3, which could not be loaded: ...".
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include "config/config.h"
#include "util/result.h"

struct ssl_ctx_st;
struct ssl_st;

namespace ls::tls {

// Loads OpenSSL now, as the first Context would: the error of a library that cannot be loaded
// (the same message), for a caller that wants to know before it needs a context.
Result<void> load_library();

class Context {
public:
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // Client: verify the server's certificate against the system CAs or `cfg.ca_file`, and
    // its name, unless `cfg.insecure`.
    static Result<std::shared_ptr<Context>> client(const config::TlsClientConfig& cfg);
    // Server: a certificate chain and its key (PEM files), read now.
    static Result<std::shared_ptr<Context>> server(const std::string& cert_file,
                                                   const std::string& key_file);
    bool verifies() const { return verify_; }
    ssl_ctx_st* raw() const { return ctx_; }

private:
    Context() = default;
    ssl_ctx_st* ctx_ = nullptr;
    bool verify_ = false;
};

// What a non-blocking call needs before it can go on.
enum class Want { nothing, read, write };

class Session {
public:
    // A client session: SNI and the host name to verify (skipped for IP literals' SNI).
    static Result<std::unique_ptr<Session>> client(std::shared_ptr<Context> ctx, int fd,
                                                   const std::string& host);
    static Result<std::unique_ptr<Session>> server(std::shared_ptr<Context> ctx, int fd);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // 1: done; 0: call again when `want` is ready; -1: failed (error()).
    int handshake();
    // Bytes done (> 0), 0 on a clean close (read), or -1 with want() set (EAGAIN-like) or
    // error() set (broken).
    ssize_t read(void* buf, size_t len);
    ssize_t write(const void* buf, size_t len);
    // Decrypted bytes already buffered: readable without the socket saying so.
    size_t pending() const;
    // Sends close_notify if it can now (never waits): before shutting the socket down.
    void close_notify();
    Want want() const { return want_; }
    const std::string& error() const { return error_; }
    bool handshaken() const { return done_; }

private:
    Session() = default;
    ssize_t fail(int rc, const char* what);
    std::shared_ptr<Context> ctx_;
    ssl_st* ssl_ = nullptr;
    Want want_ = Want::nothing;
    std::string error_;
    bool done_ = false;
};

} // namespace ls::tls
