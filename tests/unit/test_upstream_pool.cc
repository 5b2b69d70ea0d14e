// The upstream connection pool: most recent first, expiry, a connection the upstream closes
// is dropped while idle, drop() forgets a stopped upstream's connections, the connection cap
// with its FIFO of waiting requests, and idle connections closed for an unanswered one.
#include <criterion/criterion.h>

#include <ev.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "proxy/upstream_pool.h"

using ls::UniqueFd;
using ls::proxy::ConnectionPolicy;
using ls::proxy::ConnectionWaiter;
using ls::proxy::UpstreamPool;
using ls::proxy::UpstreamSocketPtr;

namespace {
struct Loop {
    struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
    ~Loop() { ev_loop_destroy(loop); }
    void turn() { ev_run(loop, EVRUN_NOWAIT); }
};

// A slot of the pool connected to one end of a socket pair; `theirs` plays the upstream.
struct Conn {
    UpstreamSocketPtr ours;
    UniqueFd theirs;
};

// `answered`: it has served a request (reusable); else it is new, nothing asked yet.
Conn connect(UpstreamPool& pool, const char* key, ConnectionPolicy policy = {},
             bool answered = true) {
    UpstreamSocketPtr sock = pool.acquire(key, policy, nullptr);
    cr_assert(sock, "a slot is free");
    cr_assert(!sock->fd.valid(), "a new slot comes unconnected");
    int fds[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    sock->fd.reset(fds[0]);
    if (answered) pool.response_began(*sock);
    return {std::move(sock), UniqueFd(fds[1])};
}

ConnectionPolicy capped(size_t n) {
    ConnectionPolicy p;
    p.cap = n;
    return p;
}

ConnectionPolicy unknown_cap() {
    ConnectionPolicy p;
    p.close_idle_when_unanswered = true;
    return p;
}

struct Waiter : ConnectionWaiter {
    std::vector<UpstreamSocketPtr> got;
    std::vector<int>* order = nullptr;
    int id = 0;
    void on_connection(UpstreamSocketPtr sock) override {
        if (order) order->push_back(id);
        got.push_back(std::move(sock));
    }
};
} // namespace

Test(upstream_pool, most_recent_first_then_a_new_slot) {
    Loop l;
    UpstreamPool pool(l.loop);
    Conn a = connect(pool, "k"), b = connect(pool, "k");
    const int fa = a.ours->fd.get(), fb = b.ours->fd.get();
    pool.put(std::move(a.ours));
    pool.put(std::move(b.ours));
    cr_assert_eq(pool.idle_count(), 2);
    cr_assert_eq(pool.open_count("k"), 2);
    UpstreamSocketPtr first = pool.acquire("k", {}, nullptr);
    UpstreamSocketPtr second = pool.acquire("k", {}, nullptr);
    cr_assert_eq(first->fd.get(), fb);
    cr_assert_eq(second->fd.get(), fa);
    UpstreamSocketPtr third = pool.acquire("k", {}, nullptr);
    cr_assert(third && !third->fd.valid(), "no idle one left: a new slot");
    cr_assert_eq(pool.open_count("k"), 3);
    first.reset();
    cr_assert_eq(pool.open_count("k"), 2, "a closed connection gives its slot back");
}

Test(upstream_pool, expired_or_disabled_connections_are_not_reused) {
    Loop l;
    UpstreamPool pool(l.loop);
    Conn a = connect(pool, "k");
    pool.put(std::move(a.ours), 0); // idleConn: 0
    cr_assert_eq(pool.idle_count(), 0);
    cr_assert_eq(pool.open_count("k"), 0);
    Conn b = connect(pool, "k");
    pool.put(std::move(b.ours), 0.01);
    usleep(30 * 1000);
    ev_now_update(l.loop);
    UpstreamSocketPtr s = pool.acquire("k", {}, nullptr);
    cr_assert(s && !s->fd.valid(), "the expired connection is not handed out");
    cr_assert_eq(pool.open_count("k"), 1);
}

Test(upstream_pool, closed_by_the_upstream_while_idle) {
    Loop l;
    UpstreamPool pool(l.loop);
    Conn a = connect(pool, "k"), b = connect(pool, "k");
    const int fb = b.ours->fd.get();
    pool.put(std::move(a.ours));
    pool.put(std::move(b.ours));
    a.theirs.reset(); // the upstream closes one of them
    l.turn();
    cr_assert_eq(pool.idle_count(), 1);
    cr_assert_eq(pool.open_count("k"), 1);
    UpstreamSocketPtr left = pool.acquire("k", {}, nullptr);
    cr_assert_eq(left->fd.get(), fb);
}

Test(upstream_pool, drop_forgets_a_key) {
    Loop l;
    UpstreamPool pool(l.loop);
    Conn a = connect(pool, "k"), b = connect(pool, "j");
    pool.put(std::move(a.ours));
    pool.put(std::move(b.ours));
    pool.drop("k");
    cr_assert_eq(pool.idle_count(), 1);
    cr_assert_eq(pool.open_count("k"), 0);
    UpstreamSocketPtr j = pool.acquire("j", {}, nullptr);
    cr_assert(j && j->fd.valid());
}

Test(upstream_pool, the_cap_queues_requests_and_hands_over_warm_connections_in_order) {
    Loop l;
    UpstreamPool pool(l.loop);
    const ConnectionPolicy cap2 = capped(2);
    Conn a = connect(pool, "k", cap2), b = connect(pool, "k", cap2);
    std::vector<int> order;
    Waiter w1, w2, w3;
    w1.order = w2.order = w3.order = &order;
    w1.id = 1, w2.id = 2, w3.id = 3;
    cr_assert_null(pool.acquire("k", cap2, &w1).get(), "two connections are the cap");
    cr_assert_null(pool.acquire("k", cap2, &w2).get());
    cr_assert_null(pool.acquire("k", cap2, &w3).get());
    cr_assert_eq(pool.waiting_count("k"), 3);
    pool.cancel(&w2); // its client left
    const int fa = a.ours->fd.get();
    pool.put(std::move(a.ours));
    cr_assert(w1.got.empty(), "handed over from the loop, never from inside put()");
    l.turn();
    cr_assert_eq(w1.got.size(), 1);
    cr_assert_eq(w1.got[0]->fd.get(), fa, "the warm connection, not a new one");
    cr_assert_eq(pool.open_count("k"), 2);
    b.ours.reset(); // the upstream ended b (Connection: close): its slot goes to w3, new
    l.turn();
    cr_assert_eq(w3.got.size(), 1);
    cr_assert(!w3.got[0]->fd.valid());
    cr_assert(w2.got.empty(), "a cancelled waiter is never called");
    cr_assert_eq(order.size(), 2);
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 3);
    cr_assert_eq(pool.open_count("k"), 2, "never more than the cap");
    cr_assert_eq(pool.waiting_count("k"), 0);
}

Test(upstream_pool, a_newcomer_does_not_overtake_waiting_requests) {
    Loop l;
    UpstreamPool pool(l.loop);
    const ConnectionPolicy cap1 = capped(1);
    Conn a = connect(pool, "k", cap1);
    Waiter w;
    cr_assert_null(pool.acquire("k", cap1, &w).get());
    pool.put(std::move(a.ours));
    Waiter late;
    cr_assert_null(pool.acquire("k", cap1, &late).get(), "the idle one is w's");
    l.turn();
    cr_assert_eq(w.got.size(), 1);
    cr_assert(late.got.empty());
}

Test(upstream_pool, idle_connections_close_while_a_new_one_goes_unanswered) {
    Loop l;
    UpstreamPool pool(l.loop);
    const ConnectionPolicy unknown = unknown_cap();
    Conn other = connect(pool, "k", unknown); // another upstream's idle connection
    pool.put(std::move(other.ours));
    // j: one idle connection, and a new one whose first request gets no answer.
    Conn fresh = connect(pool, "j", unknown, false);
    UpstreamSocketPtr& slot = fresh.ours;
    Conn idle = connect(pool, "j", unknown);
    pool.put(std::move(idle.ours));
    pool.request_sent(*slot);
    cr_assert_eq(pool.idle_count(), 2);
    usleep(static_cast<useconds_t>(UpstreamPool::kUnansweredWait * 1.5e6));
    ev_run(l.loop, EVRUN_ONCE);
    cr_assert_eq(pool.idle_count(), 1, "j's idle connection was closed, k's was not");
    cr_assert_eq(pool.open_count("j"), 1);
}

Test(upstream_pool, an_answered_connection_keeps_the_idle_ones) {
    Loop l;
    UpstreamPool pool(l.loop);
    const ConnectionPolicy unknown = unknown_cap();
    Conn fresh = connect(pool, "j", unknown, false);
    UpstreamSocketPtr& slot = fresh.ours;
    Conn idle = connect(pool, "j", unknown);
    pool.put(std::move(idle.ours));
    pool.request_sent(*slot);
    pool.response_began(*slot);
    usleep(static_cast<useconds_t>(UpstreamPool::kUnansweredWait * 1.5e6));
    ev_run(l.loop, EVRUN_NOWAIT);
    cr_assert_eq(pool.idle_count(), 1);
}

Test(upstream_pool, waiters_of_a_dropped_upstream_get_slots_to_find_out) {
    Loop l;
    UpstreamPool pool(l.loop);
    const ConnectionPolicy cap1 = capped(1);
    Conn a = connect(pool, "k", cap1);
    Waiter w;
    cr_assert_null(pool.acquire("k", cap1, &w).get());
    pool.drop("k");
    l.turn();
    cr_assert_eq(w.got.size(), 1);
    cr_assert(!w.got[0]->fd.valid());
    a.ours.reset();
    w.got.clear();
    l.turn();
    cr_assert_eq(pool.open_count("k"), 0);
}
