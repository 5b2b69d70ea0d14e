// For the tests of libraries loaded at run time (OpenSSL, libsystemd): whether one is mapped.
#pragma once

#include <link.h>
#include <string>

// Whether an object whose path holds `name` is mapped in this process.
inline bool mapped(const char* name) {
    struct Find {
        const char* name;
        bool found = false;
    } find{name};
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* data) {
            auto* f = static_cast<Find*>(data);
            if (info->dlpi_name && std::string(info->dlpi_name).find(f->name) != std::string::npos)
                f->found = true;
            return 0;
        },
        &find);
    return find.found;
}
