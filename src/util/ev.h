// RAII wrappers for libev watchers: the destructor stops the watcher, so an object that owns
// its watchers can never be called back after it is gone. Callbacks find their owner in w->data.
#pragma once

#include <ev.h>

namespace ls {

class IoWatcher {
public:
    using Callback = void (*)(struct ev_loop*, ev_io*, int);
    IoWatcher(struct ev_loop* loop, Callback cb, void* data) : loop_(loop) {
        ev_init(&w_, cb);
        w_.data = data;
    }
    IoWatcher(const IoWatcher&) = delete;
    IoWatcher& operator=(const IoWatcher&) = delete;
    ~IoWatcher() { stop(); }

    // (Re)starts on fd with events (EV_READ/EV_WRITE); events == 0 stops.
    void set(int fd, int events) {
        const bool active = ev_is_active(&w_);
        if (active && fd == w_.fd && events == (w_.events & (EV_READ | EV_WRITE))) return;
        if (active) ev_io_stop(loop_, &w_);
        if (events == 0) return;
        // Still registered on the same fd: only the mask changes, which libev applies without
        // re-adding the fd. After an explicit stop() the fd may have been closed and reused,
        // so it is registered afresh.
        if (active && fd == w_.fd)
            ev_io_modify(&w_, events);
        else
            ev_io_set(&w_, fd, events);
        ev_io_start(loop_, &w_);
    }
    void stop() {
        if (ev_is_active(&w_)) ev_io_stop(loop_, &w_);
    }
    // New owner, same registration: an fd handed from one object to another (pooled
    // upstream connections) keeps its epoll entry.
    void rebind(Callback cb, void* data) {
        ev_set_cb(&w_, cb);
        w_.data = data;
    }
    int events() const { return ev_is_active(&w_) ? (w_.events & (EV_READ | EV_WRITE)) : 0; }

private:
    struct ev_loop* loop_;
    ev_io w_;
};

class TimerWatcher {
public:
    using Callback = void (*)(struct ev_loop*, ev_timer*, int);
    TimerWatcher(struct ev_loop* loop, Callback cb, void* data) : loop_(loop) {
        ev_init(&w_, cb);
        w_.data = data;
    }
    TimerWatcher(const TimerWatcher&) = delete;
    TimerWatcher& operator=(const TimerWatcher&) = delete;
    ~TimerWatcher() { stop(); }

    // One-shot after `after` seconds (or repeating every `repeat` seconds when > 0).
    void start(double after, double repeat = 0) {
        stop();
        ev_timer_set(&w_, after, repeat);
        ev_timer_start(loop_, &w_);
    }
    void stop() {
        if (ev_is_active(&w_)) ev_timer_stop(loop_, &w_);
    }
    // As start(after), for a timer re-armed several times per request: moved within libev's
    // heap (ev_timer_again) rather than taken out and put back. It keeps `after` as its
    // repeat, so a callback that neither re-arms nor stops it is called again `after` later.
    void restart(double after) {
        if (after <= 0) {
            start(after);
            return;
        }
        w_.repeat = after;
        ev_timer_again(loop_, &w_);
    }
    bool active() const { return ev_is_active(&w_); }

private:
    struct ev_loop* loop_;
    ev_timer w_;
};

class ChildWatcher {
public:
    using Callback = void (*)(struct ev_loop*, ev_child*, int);
    ChildWatcher(struct ev_loop* loop, Callback cb, void* data) : loop_(loop) {
        ev_init(&w_, cb);
        w_.data = data;
    }
    ChildWatcher(const ChildWatcher&) = delete;
    ChildWatcher& operator=(const ChildWatcher&) = delete;
    ~ChildWatcher() { stop(); }

    void start(int pid) {
        stop();
        ev_child_set(&w_, pid, 0);
        ev_child_start(loop_, &w_);
    }
    void stop() {
        if (ev_is_active(&w_)) ev_child_stop(loop_, &w_);
    }
    int status() const { return w_.rstatus; }

private:
    struct ev_loop* loop_;
    ev_child w_;
};

class SignalWatcher {
public:
    using Callback = void (*)(struct ev_loop*, ev_signal*, int);
    SignalWatcher(struct ev_loop* loop, int signum, Callback cb, void* data) : loop_(loop) {
        ev_signal_init(&w_, cb, signum);
        w_.data = data;
        ev_signal_start(loop_, &w_);
        ev_unref(loop_); // a signal watcher alone must not keep the loop running
    }
    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;
    ~SignalWatcher() {
        ev_ref(loop_);
        ev_signal_stop(loop_, &w_);
    }

private:
    struct ev_loop* loop_;
    ev_signal w_;
};

} // namespace ls
