// Ports for ${PORT}: the original hands out startPort+n and never checks; we check that a
// port is free (bind test) when the model starts and move on to the next free one if not.
#pragma once

#include <set>

#include "util/result.h"

namespace ls::supervisor {

class PortAllocator {
public:
    explicit PortAllocator(int start_port) : start_(start_port) {}
    void set_start(int start_port) { start_ = start_port; }
    // The preferred port when free, else the lowest free one from the start port on.
    Result<int> acquire(int preferred);
    void release(int port) { held_.erase(port); }
    static bool port_is_free(int port);

private:
    int start_;
    std::set<int> held_;
};

} // namespace ls::supervisor
