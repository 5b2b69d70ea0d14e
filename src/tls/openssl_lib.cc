#include "tls/openssl_lib.h"

#include <atomic>
#include <dlfcn.h>
#include <type_traits>

namespace ls::tls {

namespace {
const char* g_ssl_name = kLibSsl;
const char* g_crypto_name = kLibCrypto;
std::atomic<const OpenSsl*> g_loaded{nullptr};

struct Loaded {
    OpenSsl table;
    std::string error; // empty: loaded
};

std::string dl_error() {
    const char* e = dlerror();
    return e ? e : "unknown error";
}

// The handles are never closed: OpenSSL keeps global state (and an atexit handler) in them.
Loaded load() {
    Loaded l;
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
    const auto resolve = [&l](void* lib, const char* lib_name, const char* name, auto& slot) {
        if (!l.error.empty()) return;
        dlerror();
        void* f = dlsym(lib, name);
        if (!f) {
            l.error = std::string("TLS needs ") + lib_name + ", whose " + name +
                      " could not be found: " + dl_error();
            return;
        }
        slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(f);
    };
#define LS_TLS_RESOLVE_CRYPTO(name) resolve(crypto, g_crypto_name, #name, l.table.name);
#define LS_TLS_RESOLVE_SSL(name) resolve(ssl, g_ssl_name, #name, l.table.name);
    LS_TLS_CRYPTO_FUNCTIONS(LS_TLS_RESOLVE_CRYPTO)
    LS_TLS_SSL_FUNCTIONS(LS_TLS_RESOLVE_SSL)
#undef LS_TLS_RESOLVE_CRYPTO
#undef LS_TLS_RESOLVE_SSL
    return l;
}
} // namespace

const OpenSsl* openssl(std::string* error) {
    if (const OpenSsl* table = g_loaded.load(std::memory_order_acquire)) return table;
    static const Loaded loaded = load();
    if (!loaded.error.empty()) {
        if (error) *error = loaded.error;
        return nullptr;
    }
    g_loaded.store(&loaded.table, std::memory_order_release);
    return &loaded.table;
}

bool openssl_loaded() {
    return g_loaded.load(std::memory_order_acquire) != nullptr;
}

namespace testing {
void set_library_names(const char* ssl, const char* crypto) {
    g_ssl_name = ssl;
    g_crypto_name = crypto;
}
} // namespace testing

} // namespace ls::tls
