#include "supervisor/oom_watch.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "util/text_file.h"

namespace ls::supervisor {

uint64_t OomWatch::read_count() const {
    return cgroup_oom_kills(dir_);
}

bool OomWatch::start(const std::string& dir) {
    stop();
    dir_ = dir;
    if (::access((dir + "/memory.events").c_str(), R_OK) == 0) {
        v2_ = true;
        UniqueFd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
        if (!fd || inotify_add_watch(fd.get(), (dir + "/memory.events").c_str(), IN_MODIFY) < 0)
            return false;
        fd_ = std::move(fd);
    } else {
        v2_ = false;
        UniqueFd efd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        UniqueFd ofd(::open((dir + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC));
        UniqueFd ctl(::open((dir + "/cgroup.event_control").c_str(), O_WRONLY | O_CLOEXEC));
        if (!efd || !ofd || !ctl) return false;
        const std::string reg = std::to_string(efd.get()) + " " + std::to_string(ofd.get());
        if (::write(ctl.get(), reg.data(), reg.size()) != static_cast<ssize_t>(reg.size()))
            return false;
        fd_ = std::move(efd);
        oom_control_ = std::move(ofd);
    }
    baseline_ = read_count();
    io_.set(fd_.get(), EV_READ);
    return true;
}

void OomWatch::stop() {
    io_.stop();
    fd_.reset();
    oom_control_.reset();
    fired_ = false;
}

void OomWatch::on_event(struct ev_loop*, ev_io* w, int) {
    static_cast<OomWatch*>(w->data)->drain();
}

void OomWatch::drain() {
    if (!fd_) return;
    char buf[4096];
    bool got = false;
    while (::read(fd_.get(), buf, sizeof buf) > 0) got = true;
    // v1's eventfd means "OOM in this cgroup"; v2's inotify only "memory.events changed"
    // (also for memory.high/max events), so the counter decides — when it is still readable.
    if (got && (!v2_ || read_count() > baseline_)) fired_ = true;
}

bool OomWatch::fired() {
    if (!fired_) drain();
    if (!fired_ && v2_ && !dir_.empty() && read_count() > baseline_) fired_ = true;
    return fired_;
}

} // namespace ls::supervisor
