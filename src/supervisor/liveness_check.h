// Is a silent upstream still working? A request whose upstream has sent nothing for
// `timeouts.silence` asks its model; one check at a time answers every request that asked.
// The check tells a slow upstream (a long prompt) from a wedged one by what still answers:
//  1. GET /slots (llama-server): its main loop answers between batches, so 200 = working and
//     no answer within the silence = the loop is stuck;
//  2. otherwise (another status: not llama-server, or /slots disabled) the model's
//     checkEndpoint: 200 = working, anything else or no answer = wedged; with
//     `checkEndpoint: none` an upstream whose HTTP server answered counts as working.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "proxy/upstream_address.h"
#include "readiness/health_probe.h"
#include "tls/tls.h"

namespace ls::supervisor {

class LivenessWaiter {
public:
    // alive false: the model is wedged (ModelProcess::wedged() says why).
    virtual void on_liveness(bool alive) = 0;

protected:
    ~LivenessWaiter() = default;
};

class LivenessCheck {
public:
    // verdict: called once per check, before the waiters hear it; `why` explains a wedge.
    using Verdict = void (*)(void* owner, bool alive, const std::string& why);
    LivenessCheck(struct ev_loop* loop, Verdict verdict, void* owner);
    LivenessCheck(const LivenessCheck&) = delete;
    LivenessCheck& operator=(const LivenessCheck&) = delete;

    // Adds `waiter` to the running check, or starts one. `check_path` empty: none.
    void ask(LivenessWaiter* waiter, const proxy::UpstreamAddress& upstream,
             const std::string& check_path, double timeout_s, std::shared_ptr<tls::Context> tls);
    void forget(LivenessWaiter* waiter);
    // The process is gone: no answer is owed.
    void cancel();

private:
    static void on_result(void* self, int status);
    void conclude(bool alive, const std::string& why);

    enum class Step { Idle, Slots, CheckEndpoint };
    Step step_ = Step::Idle;
    readiness::HealthProbe probe_;
    Verdict verdict_;
    void* owner_;
    std::vector<LivenessWaiter*> waiters_;
    const proxy::UpstreamAddress* upstream_ = nullptr; // valid while the process runs
    std::string check_path_;
    double timeout_s_ = 0;
    std::shared_ptr<tls::Context> tls_;
};

} // namespace ls::supervisor
