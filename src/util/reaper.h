// Deferred destruction: objects are never freed inside their own callback chain. They are
// handed to the Reaper and deleted just before the loop next blocks (an ev_prepare watcher),
// as Envoy's deferred delete and Redis's freeClientAsync() do.
#pragma once

#include <ev.h>
#include <memory>
#include <vector>

namespace ls {

class Deferred {
public:
    virtual ~Deferred() = default;
};

class Reaper {
public:
    explicit Reaper(struct ev_loop* loop);
    Reaper(const Reaper&) = delete;
    Reaper& operator=(const Reaper&) = delete;
    ~Reaper();

    void defer(std::unique_ptr<Deferred> object);
    void run_now(); // frees everything queued (used at shutdown)

private:
    static void on_prepare(struct ev_loop*, ev_prepare*, int);
    struct ev_loop* loop_;
    ev_prepare prepare_;
    std::vector<std::unique_ptr<Deferred>> queue_;
    std::vector<std::unique_ptr<Deferred>> batch_; // being freed (run_now)
    bool running_ = false;
};

} // namespace ls
