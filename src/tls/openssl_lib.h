// OpenSSL, loaded at run time: the daemon does not link libssl/libcrypto (about 1.7 MB
// resident that most configurations never use); the first TLS context dlopen()s them and
// resolves the functions src/tls/ calls into a table. The headers are used at compile time
// only (types, constants), so the table's types are OpenSSL's own declarations.
//
// Several SSL_* "functions" are macros over SSL_ctrl/SSL_CTX_ctrl (SSL_CTX_set_mode,
// SSL_CTX_set_min_proto_version, SSL_set_tlsext_host_name): the table has those two, and
// tls.cc spells the macros out.
#pragma once

#include <string>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace ls::tls {

// The sonames that match the headers this was compiled against.
#if OPENSSL_VERSION_MAJOR >= 3
inline constexpr const char* kLibSsl = "libssl.so.3";
inline constexpr const char* kLibCrypto = "libcrypto.so.3";
#else
inline constexpr const char* kLibSsl = "libssl.so.1.1";
inline constexpr const char* kLibCrypto = "libcrypto.so.1.1";
#endif

// clang-format off
#define LS_TLS_CRYPTO_FUNCTIONS(X) \
    X(ERR_get_error)               \
    X(ERR_peek_error)              \
    X(ERR_error_string_n)          \
    X(ERR_clear_error)             \
    X(X509_verify_cert_error_string)

#define LS_TLS_SSL_FUNCTIONS(X)            \
    X(TLS_client_method)                   \
    X(TLS_server_method)                   \
    X(SSL_CTX_new)                         \
    X(SSL_CTX_free)                        \
    X(SSL_CTX_ctrl)                        \
    X(SSL_CTX_set_alpn_protos)             \
    X(SSL_CTX_set_verify)                  \
    X(SSL_CTX_set_default_verify_paths)    \
    X(SSL_CTX_load_verify_locations)       \
    X(SSL_CTX_use_certificate_chain_file)  \
    X(SSL_CTX_use_PrivateKey_file)         \
    X(SSL_CTX_check_private_key)           \
    X(SSL_new)                             \
    X(SSL_free)                            \
    X(SSL_ctrl)                            \
    X(SSL_set_fd)                          \
    X(SSL_set_connect_state)               \
    X(SSL_set_accept_state)                \
    X(SSL_set1_host)                       \
    X(SSL_do_handshake)                    \
    X(SSL_read)                            \
    X(SSL_write)                           \
    X(SSL_pending)                         \
    X(SSL_shutdown)                        \
    X(SSL_get_error)                       \
    X(SSL_get_verify_result)
// clang-format on

struct OpenSsl {
#define LS_TLS_MEMBER(name) decltype(&::name) name = nullptr;
    LS_TLS_CRYPTO_FUNCTIONS(LS_TLS_MEMBER)
    LS_TLS_SSL_FUNCTIONS(LS_TLS_MEMBER)
#undef LS_TLS_MEMBER
};

// The table, loading the libraries on the first call (thread-safe; tried once: a failure is
// remembered). Null when they cannot be loaded, with *error set to
// "TLS needs libssl.so.3, which could not be loaded: <dlerror>".
const OpenSsl* openssl(std::string* error = nullptr);

// Whether openssl() has loaded the libraries (never loads them).
bool openssl_loaded();

namespace testing {
// Other sonames to load (a test of the failure): only before the first openssl().
void set_library_names(const char* ssl, const char* crypto);
} // namespace testing

} // namespace ls::tls
