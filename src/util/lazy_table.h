// A table of functions from a library loaded at run time (dlopen), made on its first use and
// only once: OpenSSL (tls/openssl_lib) and libsystemd (sd/libsystemd) are mapped only by a
// daemon that uses them. The table's member types are the libraries' own declarations.
#pragma once

#include <atomic>
#include <dlfcn.h>
#include <mutex>
#include <string>
#include <type_traits>

namespace ls {

template <class Table>
struct LoadedTable {
    Table table;
    std::string error; // empty: loaded
};

// dlerror()'s text.
inline std::string dl_error() {
    const char* e = dlerror();
    return e ? e : "unknown error";
}

// Resolves `name` from `lib` into `slot`, unless an earlier symbol failed. A missing one sets
// `error` to `prefix` + name + " could not be found: " + dlerror.
template <class Fn>
void resolve_symbol(void* lib, const char* name, Fn& slot, std::string& error,
                    const std::string& prefix) {
    if (!error.empty()) return;
    dlerror();
    void* f = dlsym(lib, name);
    if (!f) {
        error = prefix + name + " could not be found: " + dl_error();
        return;
    }
    slot = reinterpret_cast<std::remove_reference_t<Fn>>(f);
}

template <class Table>
class LazyTable {
public:
    using Loader = LoadedTable<Table> (*)();
    explicit LazyTable(Loader load) : load_(load) {}

    // The table, made by the loader on the first call (thread-safe; tried once: a failure is
    // remembered and given in *error each time).
    const Table* get(std::string* error) {
        if (const Table* t = ready_.load(std::memory_order_acquire)) return t;
        std::call_once(once_, [this] {
            loaded_ = load_();
            if (loaded_.error.empty()) ready_.store(&loaded_.table, std::memory_order_release);
        });
        if (const Table* t = ready_.load(std::memory_order_acquire)) return t;
        if (error) *error = loaded_.error;
        return nullptr;
    }
    // Whether get() has made the table (never loads).
    bool loaded() const { return ready_.load(std::memory_order_acquire) != nullptr; }

private:
    Loader load_;
    std::once_flag once_;
    LoadedTable<Table> loaded_;
    std::atomic<const Table*> ready_{nullptr};
};

} // namespace ls
