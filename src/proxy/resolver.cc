#include "proxy/resolver.h"

#include <cstring>
#include <netdb.h>

#include "util/log.h"

namespace ls::proxy {

// Owned by the resolver until glibc is done with it (its gaicb is written by glibc's thread).
struct Resolver::Entry {
    gaicb request{};
    addrinfo hints{};
    std::string host;
    std::string service;
    Callback done;
    Lookup* handle = nullptr; // null once cancelled
    int submit_error = 0;     // getaddrinfo_a refused it: reported on the next poll
};

// Polls often at first (a name in /etc/hosts or a cache answers at once), then less.
constexpr double kPollInterval = 0.005;

Resolver::Resolver(struct ev_loop* loop) : poll_(loop, &on_poll, this) {}

Resolver::~Resolver() {
    for (auto& e : entries_) {
        if (e->handle) e->handle->entry_ = nullptr;
        if (e->submit_error == 0 && gai_cancel(&e->request) == EAI_NOTCANCELED) {
            // glibc's thread still writes into it: the entry must outlive us (at exit only).
            (void)e.release();
        } else if (e->request.ar_result) {
            freeaddrinfo(e->request.ar_result);
        }
    }
}

Resolver::Lookup::~Lookup() {
    if (!entry_) return;
    entry_->handle = nullptr;
    entry_->done = nullptr;
    // Only a lookup that has not started can be cancelled; one that runs is let finish and
    // its answer dropped on the next poll.
    if (entry_->submit_error == 0) gai_cancel(&entry_->request);
}

std::unique_ptr<Resolver::Lookup> Resolver::resolve(const std::string& host, uint16_t port,
                                                    Callback done) {
    auto e = std::make_unique<Entry>();
    e->host = host;
    e->service = std::to_string(port);
    e->done = std::move(done);
    e->hints.ai_socktype = SOCK_STREAM;
    e->hints.ai_flags = AI_NUMERICSERV; // not AI_ADDRCONFIG: it drops 127.0.0.1 where only lo is up
    e->request.ar_name = e->host.c_str();
    e->request.ar_service = e->service.c_str();
    e->request.ar_request = &e->hints;
    gaicb* list[1] = {&e->request};
    const int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr); // no notification: polled
    if (rc != 0) e->submit_error = rc;
    auto handle = std::unique_ptr<Lookup>(new Lookup(e.get()));
    e->handle = handle.get();
    entries_.push_back(std::move(e));
    if (!poll_.active()) poll_.start(rc != 0 ? 0 : kPollInterval, kPollInterval);
    return handle;
}

void Resolver::on_poll(struct ev_loop*, ev_timer* w, int) {
    static_cast<Resolver*>(w->data)->poll();
}

void Resolver::poll() {
    // Collect the finished ones first: a callback may start new lookups.
    std::vector<std::unique_ptr<Entry>> finished;
    for (size_t i = 0; i < entries_.size();) {
        Entry& e = *entries_[i];
        if (e.submit_error == 0 && gai_error(&e.request) == EAI_INPROGRESS) {
            ++i;
            continue;
        }
        finished.push_back(std::move(entries_[i]));
        entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (entries_.empty()) poll_.stop();
    for (auto& e : finished) {
        const int rc = e->submit_error ? e->submit_error : gai_error(&e->request);
        addrinfo* res = e->request.ar_result;
        Callback done = std::move(e->done);
        if (e->handle) e->handle->entry_ = nullptr;
        if (done && rc != EAI_CANCELED) {
            if (rc == 0 && res) {
                ResolvedAddress out;
                memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
                out.addr_len = res->ai_addrlen;
                done(out);
            } else {
                done(make_error("cannot resolve '" + e->host +
                                "': " + gai_strerror(rc ? rc : EAI_NONAME)));
            }
        }
        if (res) freeaddrinfo(res);
    }
}

} // namespace ls::proxy
