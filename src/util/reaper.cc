#include "util/reaper.h"

namespace ls {

Reaper::Reaper(struct ev_loop* loop) : loop_(loop) {
    ev_prepare_init(&prepare_, on_prepare);
    prepare_.data = this;
    ev_prepare_start(loop_, &prepare_);
    ev_unref(loop_); // the reaper alone must not keep the loop alive
}

Reaper::~Reaper() {
    run_now();
    ev_ref(loop_);
    ev_prepare_stop(loop_, &prepare_);
}

void Reaper::defer(std::unique_ptr<Deferred> object) {
    if (object) queue_.push_back(std::move(object));
}

void Reaper::run_now() {
    // Destructors may defer further objects: loop until nothing is left. The two vectors
    // trade places and keep their storage (a request's end defers one object: no allocation).
    if (running_) return; // (called from a destructor: the loop below frees the rest)
    running_ = true;
    while (!queue_.empty()) {
        batch_.swap(queue_);
        batch_.clear();
    }
    running_ = false;
}

void Reaper::on_prepare(struct ev_loop*, ev_prepare* w, int) {
    static_cast<Reaper*>(w->data)->run_now();
}

} // namespace ls
