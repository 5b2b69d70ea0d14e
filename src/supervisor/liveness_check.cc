#include "supervisor/liveness_check.h"

#include <algorithm>
#include <cstdio>

namespace ls::supervisor {

LivenessCheck::LivenessCheck(struct ev_loop* loop, Verdict verdict, void* owner)
    : probe_(loop, &on_result, this), verdict_(verdict), owner_(owner) {}

void LivenessCheck::ask(LivenessWaiter* waiter, const proxy::UpstreamAddress& upstream,
                        const std::string& check_path, double timeout_s,
                        std::shared_ptr<tls::Context> tls) {
    if (std::find(waiters_.begin(), waiters_.end(), waiter) == waiters_.end())
        waiters_.push_back(waiter);
    if (step_ != Step::Idle) return; // its answer will do for this waiter too
    upstream_ = &upstream;
    check_path_ = check_path;
    timeout_s_ = timeout_s;
    tls_ = std::move(tls);
    step_ = Step::Slots;
    probe_.start(upstream, "/slots", timeout_s_, tls_);
}

void LivenessCheck::forget(LivenessWaiter* waiter) {
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
}

void LivenessCheck::cancel() {
    probe_.cancel();
    step_ = Step::Idle;
    waiters_.clear();
}

void LivenessCheck::on_result(void* p, int status) {
    auto* self = static_cast<LivenessCheck*>(p);
    char why[160];
    if (self->step_ == Step::Slots) {
        if (status == 200) {
            self->conclude(true, {});
            return;
        }
        if (status == 0) {
            snprintf(why, sizeof why, "GET /slots got no answer within %.0f s", self->timeout_s_);
            self->conclude(false, why);
            return;
        }
        if (self->check_path_.empty()) { // its HTTP server answers; nothing else to ask
            self->conclude(true, {});
            return;
        }
        self->step_ = Step::CheckEndpoint;
        self->probe_.start(*self->upstream_, self->check_path_, self->timeout_s_, self->tls_);
        return;
    }
    if (self->step_ != Step::CheckEndpoint) return;
    if (status == 200) {
        self->conclude(true, {});
        return;
    }
    if (status == 0)
        snprintf(why, sizeof why, "GET %s got no answer within %.0f s", self->check_path_.c_str(),
                 self->timeout_s_);
    else
        snprintf(why, sizeof why, "GET %s answered %d", self->check_path_.c_str(), status);
    self->conclude(false, why);
}

void LivenessCheck::conclude(bool alive, const std::string& why) {
    step_ = Step::Idle;
    std::vector<LivenessWaiter*> waiters;
    waiters.swap(waiters_); // a waiter may forget itself or ask again from its callback
    verdict_(owner_, alive, why);
    for (LivenessWaiter* w : waiters) w->on_liveness(alive);
}

} // namespace ls::supervisor
