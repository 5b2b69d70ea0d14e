#include "tls/openssl_lib.h"

#include "util/lazy_table.h"

namespace ls::tls {

namespace {
const char* g_ssl_name = kLibSsl;
const char* g_crypto_name = kLibCrypto;

// The handles are never closed: OpenSSL keeps global state (and an atexit handler) in them.
LoadedTable<OpenSsl> load() {
    LoadedTable<OpenSsl> l;
    const std::string needs = std::string("TLS needs ") + g_ssl_name;
    // libssl first: a libcrypto that is missing shows in its dlerror.
    void* ssl = dlopen(g_ssl_name, RTLD_NOW | RTLD_LOCAL);
    if (!ssl) {
        l.error = needs + ", which could not be loaded: " + dl_error();
        return l;
    }
    void* crypto = dlopen(g_crypto_name, RTLD_NOW | RTLD_LOCAL);
    if (!crypto) {
        l.error = std::string("TLS needs ") + g_crypto_name +
                  ", which could not be loaded: " + dl_error();
        return l;
    }
    const std::string crypto_prefix = std::string("TLS needs ") + g_crypto_name + ", whose ";
    const std::string ssl_prefix = needs + ", whose ";
#define LS_TLS_RESOLVE_CRYPTO(name)                                                                \
    resolve_symbol(crypto, #name, l.table.name, l.error, crypto_prefix);
#define LS_TLS_RESOLVE_SSL(name) resolve_symbol(ssl, #name, l.table.name, l.error, ssl_prefix);
    LS_TLS_CRYPTO_FUNCTIONS(LS_TLS_RESOLVE_CRYPTO)
    LS_TLS_SSL_FUNCTIONS(LS_TLS_RESOLVE_SSL)
#undef LS_TLS_RESOLVE_CRYPTO
#undef LS_TLS_RESOLVE_SSL
    return l;
}

LazyTable<OpenSsl>& table() {
    static LazyTable<OpenSsl> t(&load);
    return t;
}
} // namespace

const OpenSsl* openssl(std::string* error) {
    return table().get(error);
}

bool openssl_loaded() {
    return table().loaded();
}

namespace testing {
void set_library_names(const char* ssl, const char* crypto) {
    g_ssl_name = ssl;
    g_crypto_name = crypto;
}
} // namespace testing

} // namespace ls::tls
