// The asynchronous resolver: answers arrive on the loop (never from resolve() itself), a
// destroyed lookup never calls back, failures come as errors.
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <optional>
#include <string>

#include "proxy/resolver.h"

using ls::Result;
using ls::proxy::ResolvedAddress;
using ls::proxy::Resolver;

namespace {
struct Loop {
    struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
    ~Loop() { ev_loop_destroy(loop); }
    // Runs until `done` or the deadline (seconds of loop time).
    template <typename Pred>
    bool run_until(Pred done, double seconds) {
        const double end = ev_now(loop) + seconds;
        while (!done() && ev_now(loop) < end) ev_run(loop, EVRUN_ONCE);
        return done();
    }
};

std::string text_of(const ResolvedAddress& a) {
    char host[INET6_ADDRSTRLEN] = "";
    if (a.addr.ss_family == AF_INET) {
        auto* v4 = reinterpret_cast<const sockaddr_in*>(&a.addr);
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(ntohs(v4->sin_port));
    }
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a.addr);
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(v6->sin6_port));
}
} // namespace

Test(resolver, name_from_hosts_file_answers_on_the_loop) {
    Loop l;
    Resolver r(l.loop);
    std::optional<Result<ResolvedAddress>> got;
    auto lookup = r.resolve("localhost", 8123, [&](Result<ResolvedAddress> a) { got = a; });
    cr_assert(!got.has_value(), "answered from inside resolve()");
    cr_assert_eq(r.pending(), 1);
    cr_assert(l.run_until([&] { return got.has_value(); }, 30), "no answer");
    cr_assert(got->ok(), "%s", got->error().message.c_str());
    const std::string text = text_of(got->value());
    cr_assert(text == "127.0.0.1:8123" || text == "[::1]:8123", "%s", text.c_str());
    cr_assert_eq(r.pending(), 0);
}

Test(resolver, destroyed_lookup_never_calls_back) {
    Loop l;
    Resolver r(l.loop);
    int calls = 0;
    auto first = r.resolve("localhost", 1, [&](Result<ResolvedAddress>) { ++calls; });
    bool second_done = false;
    auto second = r.resolve("localhost", 2, [&](Result<ResolvedAddress>) { second_done = true; });
    first.reset(); // cancelled (or its answer dropped)
    cr_assert(l.run_until([&] { return second_done && r.pending() == 0; }, 30));
    cr_assert_eq(calls, 0);
}

Test(resolver, unknown_name_is_an_error) {
    Loop l;
    Resolver r(l.loop);
    std::optional<Result<ResolvedAddress>> got;
    // An empty name fails inside the C library, without asking any DNS server.
    auto lookup = r.resolve("", 80, [&](Result<ResolvedAddress> a) { got = a; });
    cr_assert(l.run_until([&] { return got.has_value(); }, 30), "no answer");
    cr_assert(!got->ok());
    cr_assert(got->error().message.find("cannot resolve ''") == 0, "%s",
              got->error().message.c_str());
}

Test(resolver, resolver_destroyed_with_lookups_pending) {
    Loop l;
    auto r = std::make_unique<Resolver>(l.loop);
    auto lookup = r->resolve("localhost", 3, [](Result<ResolvedAddress>) { cr_assert_fail(); });
    r.reset(); // the handle outlives it: destroying the handle afterwards is safe
    lookup.reset();
}
