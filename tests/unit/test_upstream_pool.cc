// The upstream keep-alive pool: most recent first, expiry, a connection the upstream closes
// is dropped while idle, and drop() forgets a stopped upstream's connections.
#include <criterion/criterion.h>

#include <ev.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/upstream_pool.h"

using ls::UniqueFd;
using ls::proxy::UpstreamPool;
using ls::proxy::UpstreamSocket;
using ls::proxy::UpstreamSocketPtr;

namespace {
struct Pair {
    UpstreamSocketPtr ours;
    UniqueFd theirs; // the "upstream" end
};

Pair make_pair(struct ev_loop* loop) {
    int fds[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    return {std::make_unique<UpstreamSocket>(loop, UniqueFd(fds[0])), UniqueFd(fds[1])};
}

struct Loop {
    struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
    ~Loop() { ev_loop_destroy(loop); }
};
} // namespace

Test(upstream_pool, most_recent_first_then_empty) {
    Loop l;
    UpstreamPool pool(l.loop);
    Pair a = make_pair(l.loop), b = make_pair(l.loop);
    const int fa = a.ours->fd.get(), fb = b.ours->fd.get();
    pool.put("k", std::move(a.ours));
    pool.put("k", std::move(b.ours));
    cr_assert_eq(pool.idle_count(), 2);
    cr_assert_null(pool.take("other").get());
    UpstreamSocketPtr first = pool.take("k");
    UpstreamSocketPtr second = pool.take("k");
    cr_assert(first && second);
    cr_assert_eq(first->fd.get(), fb);
    cr_assert_eq(second->fd.get(), fa);
    cr_assert_null(pool.take("k").get());
    cr_assert_eq(pool.idle_count(), 0);
}

Test(upstream_pool, expired_or_disabled_connections_are_not_reused) {
    Loop l;
    UpstreamPool pool(l.loop);
    Pair a = make_pair(l.loop);
    pool.put("k", std::move(a.ours), 0); // idleConn: 0
    cr_assert_eq(pool.idle_count(), 0);
    Pair b = make_pair(l.loop);
    pool.put("k", std::move(b.ours), 0.01);
    usleep(30 * 1000);
    ev_now_update(l.loop);
    cr_assert_null(pool.take("k").get());
}

Test(upstream_pool, closed_by_the_upstream_while_idle) {
    Loop l;
    UpstreamPool pool(l.loop);
    Pair a = make_pair(l.loop), b = make_pair(l.loop);
    const int fb = b.ours->fd.get();
    pool.put("k", std::move(a.ours));
    pool.put("k", std::move(b.ours));
    a.theirs.reset(); // the upstream closes one of them
    ev_run(l.loop, EVRUN_NOWAIT);
    cr_assert_eq(pool.idle_count(), 1);
    UpstreamSocketPtr left = pool.take("k");
    cr_assert(left);
    cr_assert_eq(left->fd.get(), fb);
}

Test(upstream_pool, drop_forgets_a_key) {
    Loop l;
    UpstreamPool pool(l.loop);
    Pair a = make_pair(l.loop), b = make_pair(l.loop);
    pool.put("k", std::move(a.ours));
    pool.put("j", std::move(b.ours));
    pool.drop("k");
    cr_assert_eq(pool.idle_count(), 1);
    cr_assert_null(pool.take("k").get());
    cr_assert(pool.take("j"));
}
