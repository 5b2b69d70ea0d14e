#include "sd/libsystemd.h"

#include "util/lazy_table.h"

namespace ls::sd {

namespace {
const char* g_name = kLibSystemd;

// The handle is never closed: sd-bus and the journal keep per-thread state in it.
LoadedTable<Systemd> load() {
    LoadedTable<Systemd> l;
    void* lib = dlopen(g_name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        l.error = std::string(g_name) + " could not be loaded: " + dl_error();
        return l;
    }
    const std::string prefix = std::string(g_name) + " is too old: its ";
#define LS_SD_RESOLVE(name) resolve_symbol(lib, #name, l.table.name, l.error, prefix);
    LS_SD_FUNCTIONS(LS_SD_RESOLVE)
#undef LS_SD_RESOLVE
    return l;
}

LazyTable<Systemd>& table() {
    static LazyTable<Systemd> t(&load);
    return t;
}
} // namespace

const Systemd* systemd(std::string* error) {
    return table().get(error);
}

bool systemd_loaded() {
    return table().loaded();
}

namespace testing {
void set_library_name(const char* name) {
    g_name = name;
}
} // namespace testing

} // namespace ls::sd
