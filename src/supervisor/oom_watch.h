// Notices OOM kills in a model's memory cgroup while they happen, before the service manager
// removes a dead scope's cgroup (and its counters) — v2: inotify on memory.events, v1:
// an eventfd registered for memory.oom_control in cgroup.event_control.
#pragma once

#include <cstdint>
#include <string>

#include "util/ev.h"
#include "util/unique_fd.h"

namespace ls::supervisor {

class OomWatch {
public:
    explicit OomWatch(struct ev_loop* loop) : io_(loop, &on_event, this) {}
    OomWatch(const OomWatch&) = delete;
    OomWatch& operator=(const OomWatch&) = delete;

    // Watches the memory cgroup directory `dir`; false when neither mechanism is available.
    bool start(const std::string& dir);
    void stop();
    // Whether an OOM kill happened since start() (checks the counter once more if possible).
    bool fired();

private:
    static void on_event(struct ev_loop*, ev_io*, int);
    void drain();
    uint64_t read_count() const;
    IoWatcher io_;
    UniqueFd fd_;          // inotify (v2) or eventfd (v1)
    UniqueFd oom_control_; // v1: must stay open for the registration
    std::string dir_;
    bool v2_ = false;
    uint64_t baseline_ = 0;
    bool fired_ = false;
};

} // namespace ls::supervisor
