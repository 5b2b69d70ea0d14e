#include "tls/tls.h"

#include <arpa/inet.h>

#include "tls/openssl_lib.h"

namespace ls::tls {

namespace {
// The loaded library: only called once a Context exists, so openssl() has succeeded.
const OpenSsl& lib() {
    return *openssl();
}

std::string last_error(const std::string& what) {
    char buf[256] = "";
    const unsigned long e = lib().ERR_get_error();
    if (e) lib().ERR_error_string_n(e, buf, sizeof buf);
    lib().ERR_clear_error();
    return what + (buf[0] ? std::string(": ") + buf : "");
}

bool is_ip_literal(const std::string& host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// The macros SSL_CTX_set_min_proto_version, SSL_CTX_set_mode and SSL_set_tlsext_host_name.
void ctx_set_min_proto_version(SSL_CTX* ctx, int version) {
    lib().SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, version, nullptr);
}
void ctx_set_mode(SSL_CTX* ctx, long mode) {
    lib().SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, mode, nullptr);
}
void set_tlsext_host_name(SSL* ssl, const char* name) {
    lib().SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                   const_cast<char*>(name));
}

// A new SSL_CTX, loading the library first.
Result<SSL_CTX*> new_ctx(bool server) {
    std::string error;
    const OpenSsl* ssl = openssl(&error);
    if (!ssl) return make_error(error);
    SSL_CTX* ctx = ssl->SSL_CTX_new(server ? ssl->TLS_server_method() : ssl->TLS_client_method());
    if (!ctx) return make_error(last_error("cannot create a TLS context"));
    ctx_set_min_proto_version(ctx, TLS1_2_VERSION);
    ctx_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}
} // namespace

Result<void> load_library() {
    std::string error;
    if (!openssl(&error)) return make_error(error);
    return {};
}

Context::~Context() {
    if (ctx_) lib().SSL_CTX_free(ctx_);
}

Result<std::shared_ptr<Context>> Context::client(const config::TlsClientConfig& cfg) {
    auto ctx = new_ctx(false);
    if (!ctx) return ctx.error();
    std::shared_ptr<Context> c(new Context());
    c->ctx_ = ctx.value();
    static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    lib().SSL_CTX_set_alpn_protos(c->ctx_, kAlpn, sizeof kAlpn);
    c->verify_ = !cfg.insecure;
    if (c->verify_) {
        lib().SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
        const int ok =
            cfg.ca_file.empty()
                ? lib().SSL_CTX_set_default_verify_paths(c->ctx_)
                : lib().SSL_CTX_load_verify_locations(c->ctx_, cfg.ca_file.c_str(), nullptr);
        if (ok != 1)
            return make_error(last_error(cfg.ca_file.empty()
                                             ? std::string("cannot load the system CAs")
                                             : "cannot load the CA file " + cfg.ca_file));
    } else {
        lib().SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_NONE, nullptr);
    }
    return c;
}

Result<std::shared_ptr<Context>> Context::server(const std::string& cert_file,
                                                 const std::string& key_file) {
    auto ctx = new_ctx(true);
    if (!ctx) return ctx.error();
    std::shared_ptr<Context> c(new Context());
    c->ctx_ = ctx.value();
    if (lib().SSL_CTX_use_certificate_chain_file(c->ctx_, cert_file.c_str()) != 1)
        return make_error(last_error(("cannot load the certificate " + cert_file).c_str()));
    if (lib().SSL_CTX_use_PrivateKey_file(c->ctx_, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return make_error(last_error(("cannot load the key " + key_file).c_str()));
    if (lib().SSL_CTX_check_private_key(c->ctx_) != 1)
        return make_error(last_error("the key does not match the certificate"));
    return c;
}

Result<std::unique_ptr<Session>> Session::client(std::shared_ptr<Context> ctx, int fd,
                                                 const std::string& host) {
    std::unique_ptr<Session> s(new Session());
    s->ctx_ = std::move(ctx);
    s->ssl_ = lib().SSL_new(s->ctx_->raw());
    if (!s->ssl_ || lib().SSL_set_fd(s->ssl_, fd) != 1)
        return make_error(last_error("cannot start a TLS session"));
    lib().SSL_set_connect_state(s->ssl_);
    if (!is_ip_literal(host)) set_tlsext_host_name(s->ssl_, host.c_str());
    if (s->ctx_->verifies() && lib().SSL_set1_host(s->ssl_, host.c_str()) != 1)
        return make_error(last_error("cannot set the host name to verify"));
    return s;
}

Result<std::unique_ptr<Session>> Session::server(std::shared_ptr<Context> ctx, int fd) {
    std::unique_ptr<Session> s(new Session());
    s->ctx_ = std::move(ctx);
    s->ssl_ = lib().SSL_new(s->ctx_->raw());
    if (!s->ssl_ || lib().SSL_set_fd(s->ssl_, fd) != 1)
        return make_error(last_error("cannot start a TLS session"));
    lib().SSL_set_accept_state(s->ssl_);
    return s;
}

Session::~Session() {
    // No close_notify: the socket may be gone; the peer sees a close.
    if (ssl_) lib().SSL_free(ssl_);
}

ssize_t Session::fail(int rc, const char* what) {
    const int e = lib().SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ) {
        want_ = Want::read;
        return -1;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        want_ = Want::write;
        return -1;
    }
    want_ = Want::nothing;
    if (e == SSL_ERROR_ZERO_RETURN) return 0; // close_notify: a clean end
    if (e == SSL_ERROR_SYSCALL && lib().ERR_peek_error() == 0) {
        error_ = std::string(what) + ": the connection closed";
        return -1;
    }
    const long verify = lib().SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK && !done_) {
        error_ = std::string("certificate verify failed: ") +
                 lib().X509_verify_cert_error_string(verify);
        lib().ERR_clear_error();
    } else {
        error_ = last_error(what);
    }
    return -1;
}

int Session::handshake() {
    if (done_) return 1;
    const int rc = lib().SSL_do_handshake(ssl_);
    if (rc == 1) {
        done_ = true;
        want_ = Want::nothing;
        return 1;
    }
    const ssize_t r = fail(rc, "TLS handshake failed");
    if (r == 0 && error_.empty()) error_ = "TLS handshake failed: the connection closed";
    return want_ != Want::nothing ? 0 : -1;
}

ssize_t Session::read(void* buf, size_t len) {
    const int rc = lib().SSL_read(ssl_, buf, static_cast<int>(len > 1u << 30 ? 1u << 30 : len));
    if (rc > 0) {
        want_ = Want::nothing;
        return rc;
    }
    return fail(rc, "TLS read failed");
}

ssize_t Session::write(const void* buf, size_t len) {
    if (len == 0) return 0;
    const int rc = lib().SSL_write(ssl_, buf, static_cast<int>(len > 1u << 30 ? 1u << 30 : len));
    if (rc > 0) {
        want_ = Want::nothing;
        return rc;
    }
    const ssize_t r = fail(rc, "TLS write failed");
    return r == 0 ? -1 : r;
}

void Session::close_notify() {
    if (done_) lib().SSL_shutdown(ssl_);
    lib().ERR_clear_error();
}

size_t Session::pending() const {
    return static_cast<size_t>(lib().SSL_pending(ssl_));
}

} // namespace ls::tls
