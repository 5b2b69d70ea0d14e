// Ports for ${PORT}: the original hands out startPort+n and never checks; we check that a
// port is free when the model starts, the way its upstream will bind it (without
// SO_REUSEADDR, as llama-server does: a port with TIME-WAIT connections on it is busy), and
// move on to the next free one if not. A port an upstream could not bind anyway is avoided
// for a while (a race with another program, or a check that cannot see everything).
#pragma once

#include <map>
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
    // An upstream failed on `port`: not handed out again for kAvoidSeconds.
    void avoid(int port);
    static bool port_is_free(int port);

    static constexpr double kAvoidSeconds = 60; // TIME-WAIT lasts 60 s on Linux

private:
    bool usable(int port);
    int start_;
    std::set<int> held_;
    std::map<int, double> avoided_; // port -> until (CLOCK_MONOTONIC seconds)
};

} // namespace ls::supervisor
