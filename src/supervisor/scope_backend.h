// The scope backend: each model process runs in its own transient systemd scope unit,
// llama-swap-<escaped id>.scope in llama-swap.slice, created over the service manager's bus
// with the model's limits (MemoryMax/High, CPUQuota, AllowedCPUs, DevicePolicy/DeviceAllow for
// its GPUs) and bound to the daemon's own unit, so a dead daemon leaves no model running.
// All bus traffic is asynchronous on the libev loop (sd-bus driven by its fd and timeout).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <vector>

#include "config/config.h"
#include "util/ev.h"
#include "util/result.h"

namespace ls::supervisor {

class ScopeBackend {
public:
    explicit ScopeBackend(struct ev_loop* loop);
    ~ScopeBackend();
    ScopeBackend(const ScopeBackend&) = delete;
    ScopeBackend& operator=(const ScopeBackend&) = delete;

    // Connects to the manager: `address` (a D-Bus address), else the system manager's private
    // socket when root, else the user manager's ($XDG_RUNTIME_DIR/systemd/private).
    Result<void> connect(const std::string& address = {});
    bool connected() const { return bus_ != nullptr; }
    const std::string& address() const { return address_; }

    // Asks for a scope holding `pid`. `done` gets an empty string on success, else the error.
    // The returned slot cancels the callback when destroyed.
    using Done = std::function<void(const std::string& error)>;
    struct Call;
    std::unique_ptr<Call> start_scope(const std::string& unit, pid_t pid,
                                      const std::string& description,
                                      const config::ResourceLimits& limits, double stop_timeout_s,
                                      Done done);
    // Stops a scope (kills what is left in it); fire and forget.
    void stop_scope(const std::string& unit);
    // Kills and stops the scopes an instance that is gone left (see stale_instances.h); one
    // line per scope, for the log. Synchronous: called once, when the backend connects.
    std::vector<std::string> clean_stale();

    static std::string unit_name(const std::string& model_id); // llama-swap-<escaped>.scope

private:
    static void on_io(struct ev_loop*, ev_io*, int);
    static void on_timer(struct ev_loop*, ev_timer*, int);
    static void on_prepare(struct ev_loop*, ev_prepare*, int);
    void process();
    void update_watchers();

    struct ev_loop* loop_;
    sd_bus* bus_ = nullptr;
    std::string address_;
    std::string own_unit_;
    IoWatcher io_;
    TimerWatcher timer_;
    ev_prepare prepare_;
};

struct ScopeBackend::Call {
    sd_bus_slot* slot = nullptr;
    Done done;
    ~Call();
};

} // namespace ls::supervisor
