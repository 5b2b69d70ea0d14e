// The HTTP server and its connections (src/http/server.h, connection.h), driven on a real
// libev loop over loopback TCP: a client socket writes raw bytes, the test steps the loop one
// iteration at a time until the expected response bytes have arrived.
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "config/config.h"
#include "http/connection.h"
#include "http/server.h"
#include "util/reaper.h"
#include "util/unique_fd.h"

using namespace ls;
using namespace ls::http;

// A hang is a failure, not a stuck test run.
TestSuite(http_server, .timeout = 30);

namespace {

// ------------------------------------------------------------------ the application

struct Seen {
    std::string method, path, query, body;
    bool spooled = false;
    bool expect_continue = false;
    bool keep_alive = true;
    size_t body_size = 0;
    HeaderList headers;
};

class TestExchange : public Exchange {
public:
    TestExchange(bool* gone, bool* destroyed) : gone_(gone), destroyed_(destroyed) {}
    ~TestExchange() override { *destroyed_ = true; }
    void on_client_gone() override { *gone_ = true; }

private:
    bool* gone_;
    bool* destroyed_;
};

std::string read_body(const Body& b) {
    std::string out(b.size(), '\0');
    size_t off = 0;
    while (off < out.size()) {
        auto r = b.read_at(off, out.data() + off, 1000);
        cr_assert(r.ok(), "read_at: %s", r.ok() ? "" : r.error().message.c_str());
        cr_assert_gt(r.value(), 0u);
        off += r.value();
    }
    return out;
}

std::string large_payload(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
    return s;
}

constexpr size_t kLargeResponse = 3 * 1024 * 1024;

class TestApp : public Application {
public:
    std::vector<Seen> seen;
    int heads = 0;
    Connection* pending = nullptr; // a request answered later by the test
    bool exchange_gone = false;
    bool exchange_destroyed = false;

    bool on_request_head(Connection& conn, Request& req) override {
        ++heads;
        if (req.path == "/deny") {
            conn.respond_error(403, "denied at head time", "forbidden");
            return false;
        }
        return true;
    }

    void on_request(Connection& conn, Request& req) override {
        Seen s;
        s.method = req.method_name;
        s.path = req.path;
        s.query = req.query;
        s.body = read_body(req.body);
        s.body_size = req.body.size();
        s.spooled = req.body.spooled();
        s.expect_continue = req.expect_continue;
        s.keep_alive = req.keep_alive;
        s.headers = req.headers;
        seen.push_back(std::move(s));

        HeaderList h;
        h.add("Content-Type", "text/plain");
        if (req.path == "/stream") {
            conn.start_response(200, h, Framing::Chunked);
            cr_assert(conn.response_started());
            cr_assert(conn.write_body("hello ", 6));
            cr_assert(conn.write_body("", 0)); // empty writes must not end the stream
            cr_assert(conn.write_body("chunked ", 8));
            cr_assert(conn.write_body("world", 5));
            conn.end_response();
        } else if (req.path == "/abort") {
            conn.start_response(200, h, Framing::Chunked);
            conn.write_body("partial", 7);
            conn.abort_response();
        } else if (req.path == "/length") {
            conn.start_response(200, h, Framing::ContentLength, 10);
            conn.write_body("01234", 5);
            conn.write_body("56789", 5);
            conn.end_response();
        } else if (req.path == "/later") {
            pending = &conn;
            conn.attach_exchange(
                std::make_unique<TestExchange>(&exchange_gone, &exchange_destroyed));
        } else if (req.path == "/large") {
            conn.respond(200, h, large_payload(kLargeResponse));
        } else {
            std::string body = "path=" + req.path + " len=" + std::to_string(req.body.size());
            conn.respond(200, h, body);
        }
    }
};

// ------------------------------------------------------------------ the loop and server

struct Harness {
    struct ev_loop* loop = nullptr;
    std::unique_ptr<Reaper> reaper;
    TestApp app;
    config::ServerConfig limits;
    std::unique_ptr<Server> server;
    int port = 0;
    std::string spool_dir;

    explicit Harness(config::ServerConfig l = {}) : limits(std::move(l)) {
        loop = ev_loop_new(EVFLAG_AUTO);
        cr_assert_not_null(loop);
        reaper = std::make_unique<Reaper>(loop);
        server = std::make_unique<Server>(loop, limits, app, *reaper);

        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        cr_assert_eq(::listen(fd, 16), 0);
        socklen_t len = sizeof a;
        cr_assert_eq(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
        port = ntohs(a.sin_port);
        auto r = server->add_listener(UniqueFd(fd), "test");
        cr_assert(r.ok());
    }

    ~Harness() {
        server.reset();
        reaper.reset();
        ev_loop_destroy(loop);
        if (!spool_dir.empty()) rmdir(spool_dir.c_str());
    }

    // Bounded stepping. A non-blocking iteration first (it runs the Reaper's prepare watcher,
    // which may be all that is left to do), then one that waits for at least one event.
    bool pump(const std::function<bool()>& done, int max_iterations = 20000) {
        for (int i = 0; i < max_iterations; ++i) {
            if (done()) return true;
            ev_run(loop, EVRUN_NOWAIT);
            if (done()) return true;
            ev_run(loop, EVRUN_ONCE);
        }
        return done();
    }
};

config::ServerConfig spool_limits(std::string& dir) {
    char tmpl[] = "/tmp/ls-unit-spool-XXXXXX";
    char* p = mkdtemp(tmpl);
    cr_assert_not_null(p, "mkdtemp: %s", strerror(errno));
    dir = p;
    config::ServerConfig l;
    l.body_memory_bytes = 4096;
    l.spool_dir = dir;
    return l;
}

// ------------------------------------------------------------------ the client

class Client {
public:
    explicit Client(Harness& h) : h_(h) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd_, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(h.port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        // Loopback connect completes in the kernel's backlog without the server's accept().
        cr_assert_eq(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0, "connect: %s",
                     strerror(errno));
        fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
        ev_io_init(&w_, &Client::on_io, fd_, EV_READ);
        w_.data = this;
        update();
    }
    ~Client() {
        if (ev_is_active(&w_)) ev_io_stop(h_.loop, &w_);
        if (fd_ >= 0) ::close(fd_);
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void send(const std::string& bytes) {
        out_ += bytes;
        flush();
        update();
    }
    void close() {
        if (ev_is_active(&w_)) ev_io_stop(h_.loop, &w_);
        ::close(fd_);
        fd_ = -1;
    }
    bool eof() const { return eof_; }
    bool write_failed() const { return write_failed_; }
    bool all_sent() const { return out_off_ == out_.size(); }
    const std::string& in() const { return in_; }

private:
    static void on_io(struct ev_loop*, ev_io* w, int revents) {
        auto* c = static_cast<Client*>(w->data);
        if (revents & EV_WRITE) c->flush();
        if (revents & EV_READ) c->read();
        c->update();
    }
    void flush() {
        while (out_off_ < out_.size() && !write_failed_) {
            ssize_t n = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) write_failed_ = true;
                break;
            }
            out_off_ += static_cast<size_t>(n);
        }
    }
    void read() {
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) {
                in_.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            eof_ = true; // orderly close or reset
            return;
        }
    }
    void update() {
        if (fd_ < 0) return;
        int events = 0;
        if (!eof_) events |= EV_READ;
        if (out_off_ < out_.size() && !write_failed_) events |= EV_WRITE;
        if (ev_is_active(&w_)) ev_io_stop(h_.loop, &w_);
        if (events == 0) return;
        ev_io_set(&w_, fd_, events);
        ev_io_start(h_.loop, &w_);
    }

    Harness& h_;
    int fd_ = -1;
    ev_io w_;
    std::string out_;
    size_t out_off_ = 0;
    std::string in_;
    bool eof_ = false;
    bool write_failed_ = false;
};

// ------------------------------------------------------------------ response parsing

struct Resp {
    int status = 0;
    HeaderList headers;
    std::string body;
    bool chunked = false;
    bool close = false; // Connection: close
};

// 1: one response parsed (pos advanced); 0: incomplete; -1: malformed.
int parse_response(const std::string& buf, size_t& pos, bool head_request, Resp& r) {
    size_t end = buf.find("\r\n\r\n", pos);
    if (end == std::string::npos) return 0;
    std::string head = buf.substr(pos, end - pos);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    if (status_line.compare(0, 9, "HTTP/1.1 ") != 0 || status_line.size() < 12) return -1;
    r = Resp();
    r.status = atoi(status_line.c_str() + 9);
    size_t p = line_end == std::string::npos ? head.size() : line_end + 2;
    while (p < head.size()) {
        size_t e = head.find("\r\n", p);
        if (e == std::string::npos) e = head.size();
        std::string line = head.substr(p, e - p);
        size_t colon = line.find(':');
        if (colon == std::string::npos) return -1;
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value[0] == ' ') value.erase(0, 1);
        r.headers.add(line.substr(0, colon), value);
        p = e + 2;
    }
    if (const std::string* c = r.headers.find("connection")) r.close = iequals(*c, "close");
    size_t body_at = end + 4;
    if (r.status < 200 || r.status == 204 || r.status == 304 || head_request) {
        pos = body_at;
        return 1;
    }
    const std::string* te = r.headers.find("transfer-encoding");
    if (te && iequals(*te, "chunked")) {
        r.chunked = true;
        size_t q = body_at;
        std::string body;
        for (;;) {
            size_t le = buf.find("\r\n", q);
            if (le == std::string::npos) return 0;
            std::string size_text = buf.substr(q, le - q);
            if (size_text.empty() ||
                size_text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
                return -1;
            size_t n = strtoul(size_text.c_str(), nullptr, 16);
            q = le + 2;
            if (n == 0) {
                if (buf.size() < q + 2) return 0;
                if (buf.compare(q, 2, "\r\n") != 0) return -1; // no trailers expected
                pos = q + 2;
                r.body = std::move(body);
                return 1;
            }
            if (buf.size() < q + n + 2) return 0;
            body.append(buf, q, n);
            if (buf.compare(q + n, 2, "\r\n") != 0) return -1;
            q += n + 2;
        }
    }
    const std::string* cl = r.headers.find("content-length");
    if (!cl) return -1; // the server always frames its responses
    size_t n = strtoul(cl->c_str(), nullptr, 10);
    if (buf.size() < body_at + n) return 0;
    r.body = buf.substr(body_at, n);
    pos = body_at + n;
    return 1;
}

// Parses every complete response in `buf`; fails the test on malformed framing.
std::vector<Resp> parse_all(const std::string& buf, bool head_request = false) {
    std::vector<Resp> out;
    size_t pos = 0;
    for (;;) {
        Resp r;
        int rc = parse_response(buf, pos, head_request, r);
        cr_assert_neq(rc, -1, "malformed response at %zu: %s", pos, buf.substr(pos, 200).c_str());
        if (rc == 0) return out;
        out.push_back(std::move(r));
    }
}

std::vector<Resp> await_responses(Harness& h, Client& c, size_t n, bool head_request = false) {
    bool ok = h.pump([&] { return c.eof() || parse_all(c.in(), head_request).size() >= n; });
    cr_assert(ok, "loop did not settle");
    std::vector<Resp> rs = parse_all(c.in(), head_request);
    cr_assert_geq(rs.size(), n, "%zu responses, expected %zu; got: %s", rs.size(), n,
                  c.in().substr(0, 500).c_str());
    return rs;
}

void await_eof(Harness& h, Client& c) {
    bool ok = h.pump([&] { return c.eof(); });
    cr_assert(ok, "the server did not close the connection");
}

void expect_body(const Resp& r, const char* want) {
    cr_assert_str_eq(r.body.c_str(), want);
}

void expect_error_code(const Resp& r, int status, const char* code) {
    cr_assert_eq(r.status, status, "status %d, expected %d", r.status, status);
    cr_assert(r.close, "an early error closes the connection");
    const std::string* ct = r.headers.find("content-type");
    cr_assert_not_null(ct);
    cr_assert_str_eq(ct->c_str(), "application/json");
    std::string needle = std::string("\"code\":\"") + code + "\"";
    cr_assert(r.body.find(needle) != std::string::npos, "body %s lacks %s", r.body.c_str(),
              needle.c_str());
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ull;
    }
    return h;
}

} // namespace

// ------------------------------------------------------------------ tests

Test(http_server, simple_get) {
    Harness h;
    Client c(h);
    c.send("GET /v1/models?x=1&y=2 HTTP/1.1\r\nHost: test\r\nX-Thing: Value\r\n\r\n");
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs.size(), 1u);
    cr_assert_eq(rs[0].status, 200);
    expect_body(rs[0], "path=/v1/models len=0");
    cr_assert_not(rs[0].close);
    cr_assert(rs[0].headers.has("date"));
    const std::string* ct = rs[0].headers.find("content-type");
    cr_assert_not_null(ct);
    cr_assert_str_eq(ct->c_str(), "text/plain");

    cr_assert_eq(h.app.seen.size(), 1u);
    const Seen& s = h.app.seen[0];
    cr_assert_str_eq(s.method.c_str(), "GET");
    cr_assert_str_eq(s.path.c_str(), "/v1/models");
    cr_assert_str_eq(s.query.c_str(), "x=1&y=2");
    const std::string* thing = s.headers.find("x-thing");
    cr_assert_not_null(thing);
    cr_assert_str_eq(thing->c_str(), "Value");
    cr_assert_eq(h.server->connection_count(), 1u);
}

Test(http_server, keep_alive_two_requests) {
    Harness h;
    Client c(h);
    c.send("GET /one HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 1);
    expect_body(rs[0], "path=/one len=0");
    c.send("POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    rs = await_responses(h, c, 2);
    cr_assert_eq(rs.size(), 2u);
    expect_body(rs[1], "path=/two len=3");
    cr_assert_not(rs[1].close);
    cr_assert_not(c.eof());
    cr_assert_eq(h.server->connection_count(), 1u, "one connection served both");
    cr_assert_eq(h.app.seen.size(), 2u);
    cr_assert_str_eq(h.app.seen[1].body.c_str(), "abc");
}

Test(http_server, pipelined_requests_answered_in_order) {
    Harness h;
    Client c(h);
    c.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
           "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
           "GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 3);
    cr_assert_eq(rs.size(), 3u);
    expect_body(rs[0], "path=/a len=0");
    expect_body(rs[1], "path=/b len=5");
    expect_body(rs[2], "path=/c len=0");
    cr_assert_eq(h.app.seen.size(), 3u);
    cr_assert_str_eq(h.app.seen[1].body.c_str(), "hello");
}

Test(http_server, pipelined_behind_a_deferred_response) {
    // The second request waits until the first (answered later) is done.
    Harness h;
    Client c(h);
    c.send("GET /later HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(h.pump([&] { return h.app.pending != nullptr; }));
    // Let the loop run a little more: nothing else may be dispatched meanwhile.
    for (int i = 0; i < 5; ++i) ev_run(h.loop, EVRUN_NOWAIT);
    cr_assert_eq(h.app.seen.size(), 1u);
    cr_assert(c.in().empty());

    HeaderList hdr;
    h.app.pending->respond(201, hdr, "late");
    h.app.pending = nullptr;
    auto rs = await_responses(h, c, 2);
    cr_assert_eq(rs[0].status, 201);
    expect_body(rs[0], "late");
    expect_body(rs[1], "path=/after len=0");
    cr_assert(h.pump([&] { return h.app.exchange_destroyed; }), "the exchange is freed");
    cr_assert_not(h.app.exchange_gone, "a completed exchange is not told the client left");
}

Test(http_server, client_gone_cancels_exchange) {
    Harness h;
    {
        Client c(h);
        c.send("GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
        cr_assert(h.pump([&] { return h.app.pending != nullptr; }));
        c.close();
    }
    cr_assert(h.pump([&] { return h.app.exchange_gone && h.server->connection_count() == 0; }));
    cr_assert(h.pump([&] { return h.app.exchange_destroyed; }));
}

Test(http_server, client_close_frees_connection) {
    Harness h;
    {
        Client c(h);
        c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
        await_responses(h, c, 1);
        cr_assert_eq(h.server->connection_count(), 1u);
        c.close();
    }
    cr_assert(h.pump([&] { return h.server->connection_count() == 0; }));
}

Test(http_server, chunked_request_body_reassembled) {
    Harness h;
    Client c(h);
    c.send("POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    cr_assert(h.pump([&] { return c.all_sent() && h.app.heads == 1; }));
    c.send("lo\r\n6;ext=1\r\n world\r\n");
    c.send("A\r\n0123456789\r\n0\r\n\r\n");
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs[0].status, 200);
    expect_body(rs[0], "path=/chunked len=21");
    cr_assert_str_eq(h.app.seen[0].body.c_str(), "hello world0123456789");
}

Test(http_server, chunked_request_trailers_are_not_headers) {
    // A trailer must not change what the request was routed or scanned by (RFC 9110 6.5.1).
    Harness h;
    Client c(h);
    c.send("POST /chunked HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
           "Content-Type: multipart/form-data; boundary=B\r\nX-Trailer: 1\r\n\r\n"
           "GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 2);
    cr_assert_eq(rs[0].status, 200);
    cr_assert_eq(rs[1].status, 200);
    cr_assert_str_eq(h.app.seen[0].body.c_str(), "{}");
    const std::string* ct = h.app.seen[0].headers.find("content-type");
    cr_assert(ct);
    cr_assert_str_eq(ct->c_str(), "application/json");
    cr_assert_null(h.app.seen[0].headers.find("x-trailer"));
    cr_assert_str_eq(h.app.seen[1].path.c_str(), "/next");
    cr_assert_null(h.app.seen[1].headers.find("x-trailer"));
}

Test(http_server, expect_100_continue) {
    Harness h;
    Client c(h);
    c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs.size(), 1u, "only the interim response before the body is sent");
    cr_assert_eq(rs[0].status, 100);
    cr_assert(c.in().compare(0, 25, "HTTP/1.1 100 Continue\r\n\r\n") == 0, "got: %s",
              c.in().c_str());
    cr_assert(h.app.seen.empty());

    c.send("hello");
    rs = await_responses(h, c, 2);
    cr_assert_eq(rs[1].status, 200);
    expect_body(rs[1], "path=/upload len=5");
    cr_assert(h.app.seen[0].expect_continue);
}

Test(http_server, expect_100_continue_without_body_gets_no_interim) {
    Harness h;
    Client c(h);
    c.send("GET /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n");
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs[0].status, 200);
}

Test(http_server, header_too_large_431) {
    config::ServerConfig l;
    l.max_header_bytes = 1024;
    Harness h(l);
    Client c(h);
    c.send("GET /x HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u, "got: %s", c.in().c_str());
    expect_error_code(rs[0], 431, "header_too_large");
    cr_assert(h.app.seen.empty());
    cr_assert(h.pump([&] { return h.server->connection_count() == 0; }));
}

Test(http_server, many_headers_too_large_431) {
    config::ServerConfig l;
    l.max_header_bytes = 2048;
    Harness h(l);
    Client c(h);
    std::string req = "GET /x HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 200; ++i) req += "X-H" + std::to_string(i) + ": v\r\n";
    c.send(req + "\r\n");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u);
    expect_error_code(rs[0], 431, "header_too_large");
}

Test(http_server, content_length_above_limit_413) {
    config::ServerConfig l;
    l.max_body_bytes = 1000;
    Harness h(l);
    Client c(h);
    c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u, "got: %s", c.in().c_str());
    expect_error_code(rs[0], 413, "body_too_large");
    cr_assert(h.app.seen.empty());
}

Test(http_server, chunked_body_above_limit_413) {
    config::ServerConfig l;
    l.max_body_bytes = 1000;
    Harness h(l);
    Client c(h);
    char size_line[16];
    snprintf(size_line, sizeof size_line, "%x\r\n", 600);
    std::string chunk = std::string(size_line) + std::string(600, 'x') + "\r\n";
    c.send("POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk +
           "0\r\n\r\n");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u, "got: %s", c.in().c_str());
    expect_error_code(rs[0], 413, "body_too_large");
    cr_assert(h.app.seen.empty());
}

Test(http_server, body_at_the_limit_accepted) {
    config::ServerConfig l;
    l.max_body_bytes = 1000;
    Harness h(l);
    Client c(h);
    c.send("POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'y'));
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs[0].status, 200);
    expect_body(rs[0], "path=/ok len=1000");
}

// `bad` alone on a fresh connection: one 400 bad_request, the connection closed, and the
// application never saw a request.
void expect_refused_as_bad_request(const char* bad) {
    Harness h;
    Client c(h);
    c.send(bad);
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u, "%s: got %s", bad, c.in().c_str());
    expect_error_code(rs[0], 400, "bad_request");
    cr_assert(h.app.seen.empty());
}

Test(http_server, malformed_request_line_400) {
    for (const char* bad : {"NOT A REQUEST\r\n\r\n", "GET / HTTP/1.1 extra\r\n\r\n",
                            "GET /\x01 HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n"}) {
        expect_refused_as_bad_request(bad);
    }
}

Test(http_server, malformed_after_a_good_request) {
    Harness h;
    Client c(h);
    c.send("GET /good HTTP/1.1\r\nHost: t\r\n\r\nBROKEN\r\n\r\n");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 2u, "got: %s", c.in().c_str());
    cr_assert_eq(rs[0].status, 200);
    cr_assert_eq(rs[1].status, 400);
}

Test(http_server, large_body_is_spooled_intact) {
    std::string dir;
    config::ServerConfig l = spool_limits(dir);
    Harness h(l);
    h.spool_dir = dir;
    Client c(h);
    const std::string body = large_payload(300000);
    c.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body);
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs[0].status, 200);
    expect_body(rs[0], "path=/upload len=300000");
    cr_assert_eq(h.app.seen.size(), 1u);
    const Seen& s = h.app.seen[0];
    cr_assert(s.spooled, "a body above body_memory_bytes spools");
    cr_assert_eq(s.body_size, body.size());
    cr_assert_eq(fnv1a(s.body), fnv1a(body), "spooled body differs");
    cr_assert(s.body == body);
}

Test(http_server, small_body_stays_in_memory) {
    std::string dir;
    config::ServerConfig l = spool_limits(dir);
    Harness h(l);
    h.spool_dir = dir;
    Client c(h);
    c.send("POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n" +
           std::string(4096, 's'));
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs[0].status, 200);
    cr_assert_not(h.app.seen[0].spooled);
    cr_assert_eq(h.app.seen[0].body_size, 4096u);
}

Test(http_server, chunked_upload_spooled_intact) {
    std::string dir;
    config::ServerConfig l = spool_limits(dir);
    Harness h(l);
    h.spool_dir = dir;
    Client c(h);
    const std::string body = large_payload(100000);
    std::string wire = "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t off = 0; off < body.size(); off += 7777) {
        size_t n = std::min<size_t>(7777, body.size() - off);
        char size_line[16];
        snprintf(size_line, sizeof size_line, "%zx\r\n", n);
        wire += size_line + body.substr(off, n) + "\r\n";
    }
    wire += "0\r\n\r\n";
    c.send(wire);
    auto rs = await_responses(h, c, 1);
    cr_assert_eq(rs[0].status, 200);
    cr_assert(h.app.seen[0].spooled);
    cr_assert_eq(fnv1a(h.app.seen[0].body), fnv1a(body));
}

Test(http_server, streamed_chunked_response) {
    Harness h;
    Client c(h);
    c.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 2);
    cr_assert(rs[0].chunked);
    cr_assert_not(rs[0].headers.has("content-length"));
    expect_body(rs[0], "hello chunked world");
    cr_assert(c.in().find("6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n") !=
                  std::string::npos,
              "framing: %s", c.in().c_str());
    // The connection goes on after a cleanly ended stream.
    expect_body(rs[1], "path=/next len=0");
    cr_assert_not(c.eof());
}

Test(http_server, streamed_content_length_response) {
    Harness h;
    Client c(h);
    c.send("GET /length HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 1);
    cr_assert_not(rs[0].chunked);
    const std::string* cl = rs[0].headers.find("content-length");
    cr_assert_not_null(cl);
    cr_assert_str_eq(cl->c_str(), "10");
    expect_body(rs[0], "0123456789");
}

Test(http_server, abort_response_has_no_terminating_chunk) {
    Harness h;
    Client c(h);
    c.send("GET /abort HTTP/1.1\r\nHost: t\r\n\r\nGET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    await_eof(h, c);
    const std::string& in = c.in();
    cr_assert(in.find("Transfer-Encoding: chunked\r\n") != std::string::npos, "got: %s",
              in.c_str());
    cr_assert(in.find("7\r\npartial\r\n") != std::string::npos, "got: %s", in.c_str());
    cr_assert_eq(in.find("0\r\n\r\n"), std::string::npos, "no terminating chunk: %s", in.c_str());
    auto rs = parse_all(in);
    cr_assert(rs.empty(), "the response must be incomplete");
    cr_assert_eq(h.app.seen.size(), 1u, "the pipelined request is not served");
    cr_assert(h.pump([&] { return h.server->connection_count() == 0; }));
}

Test(http_server, large_response_with_back_pressure) {
    Harness h;
    Client c(h);
    c.send("GET /large HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 2);
    cr_assert_eq(rs[0].body.size(), kLargeResponse);
    cr_assert_eq(fnv1a(rs[0].body), fnv1a(large_payload(kLargeResponse)));
    expect_body(rs[1], "path=/after len=0");
}

Test(http_server, head_request_has_no_body) {
    Harness h;
    Client c(h);
    c.send("HEAD /thing HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 1, true);
    cr_assert_eq(rs[0].status, 200);
    const std::string* cl = rs[0].headers.find("content-length");
    cr_assert_not_null(cl);
    cr_assert_str_eq(cl->c_str(), "17"); // the length of "path=/thing len=0", not sent
    const size_t head_size = c.in().size();
    cr_assert_eq(c.in().find("\r\n\r\n") + 4, head_size, "no body after the head");
    // The next response on the connection starts right after the head.
    c.send("GET /thing HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(h.pump([&] {
        const std::string& in = c.in();
        return c.eof() ||
               (in.size() >= 17 && in.compare(in.size() - 17, 17, "path=/thing len=0") == 0);
    }));
    cr_assert(c.in().compare(head_size, 9, "HTTP/1.1 ") == 0, "got: %s", c.in().c_str());
}

Test(http_server, http10_closes_after_response) {
    Harness h;
    Client c(h);
    c.send("GET /old HTTP/1.0\r\n\r\n");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u);
    expect_body(rs[0], "path=/old len=0");
    cr_assert(rs[0].close);
}

Test(http_server, connection_close_request) {
    Harness h;
    Client c(h);
    c.send("GET /bye HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u);
    cr_assert(rs[0].close);
    cr_assert_not(h.app.seen[0].keep_alive);
}

Test(http_server, answer_at_head_time_closes) {
    Harness h;
    Client c(h);
    c.send("POST /deny HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789");
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u, "got: %s", c.in().c_str());
    cr_assert_eq(rs[0].status, 403);
    cr_assert(rs[0].close);
    cr_assert(h.app.seen.empty());
}

Test(http_server, graceful_shutdown_drains) {
    Harness h;
    Client idle(h);
    idle.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    await_responses(h, idle, 1);
    Client busy(h);
    busy.send("GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
    cr_assert(h.pump([&] { return h.app.pending != nullptr; }));
    bool drained = false;
    h.server->begin_shutdown([&] { drained = true; });
    cr_assert(h.server->shutting_down());
    await_eof(h, idle); // idle keep-alive connection closes at once
    cr_assert_not(drained);
    HeaderList hdr;
    h.app.pending->respond(200, hdr, "done");
    h.app.pending = nullptr;
    await_eof(h, busy);
    auto rs = parse_all(busy.in());
    cr_assert_eq(rs.size(), 1u);
    expect_body(rs[0], "done");
    cr_assert(rs[0].close, "responses during shutdown say Connection: close");
    cr_assert(h.pump([&] { return drained; }));
}

Test(http_server, request_smuggling_shapes_rejected) {
    for (const char* bad :
         {"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
          "0\r\n\r\n",
          "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
          "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
          "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
        expect_refused_as_bad_request(bad);
    }
}

Test(http_server, request_trickled_byte_by_byte) {
    Harness h;
    Client c(h);
    const std::string req = "POST /slow?q=1 HTTP/1.1\r\nHost: t\r\nX-Long-Header-Name: some value "
                            "here\r\nContent-Length: 11\r\n\r\nhello world";
    for (char ch : req) {
        c.send(std::string(1, ch));
        ev_run(h.loop, EVRUN_NOWAIT);
    }
    auto rs = await_responses(h, c, 1);
    expect_body(rs[0], "path=/slow len=11");
    const Seen& s = h.app.seen[0];
    cr_assert_str_eq(s.query.c_str(), "q=1");
    cr_assert_str_eq(s.body.c_str(), "hello world");
    const std::string* v = s.headers.find("x-long-header-name");
    cr_assert_not_null(v);
    cr_assert_str_eq(v->c_str(), "some value here");
    cr_assert_eq(s.headers.items().size(), 3u);
}

Test(http_server, chunked_request_with_trailer) {
    Harness h;
    Client c(h);
    c.send("POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3\r\nabc\r\n0\r\nX-Checksum: 123\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n");
    auto rs = await_responses(h, c, 2);
    expect_body(rs[0], "path=/t len=3");
    expect_body(rs[1], "path=/next len=0");
}

// Regression: an HTTP/1.0 client that asks for keep-alive assumes the server closes unless the
// response says "Connection: keep-alive" (RFC 9112 appendix C.2.2); the server used to keep the
// connection open without saying so, leaving such a client (ab -k) waiting for a close.
Test(http_server, http10_keep_alive_acknowledged_or_closed) {
    Harness h;
    Client c(h);
    c.send("GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    auto rs = await_responses(h, c, 1);
    for (int i = 0; i < 3; ++i) ev_run(h.loop, EVRUN_NOWAIT);
    const std::string* conn = rs[0].headers.find("connection");
    const bool acknowledged = conn && iequals(*conn, "keep-alive");
    const bool closing = h.server->connection_count() == 0;
    cr_assert(acknowledged || closing,
              "HTTP/1.0 keep-alive connection kept open without 'Connection: keep-alive' "
              "in the response (Connection header: %s)",
              conn ? conn->c_str() : "none");
}

Test(http_server, body_above_limit_while_client_still_sending) {
    // The client streams a body far above the limit; it must still get the 413 (the server
    // answers at head time and closes).
    config::ServerConfig l;
    l.max_body_bytes = 1000;
    Harness h(l);
    Client c(h);
    c.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 4000000\r\n\r\n" +
           std::string(4000000, 'z'));
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u, "got: %s", c.in().substr(0, 300).c_str());
    expect_error_code(rs[0], 413, "body_too_large");
}

Test(http_server, slow_head_times_out_408) {
    config::ServerConfig l;
    l.header_timeout_s = 0.05;
    Harness h(l);
    Client c(h);
    c.send("GET /x HTTP/1.1\r\nHost: t\r\n"); // the head never ends
    await_eof(h, c);
    auto rs = parse_all(c.in());
    cr_assert_eq(rs.size(), 1u, "got: %s", c.in().c_str());
    expect_error_code(rs[0], 408, "request_timeout");
}

Test(http_server, idle_keep_alive_connection_closed) {
    config::ServerConfig l;
    l.idle_timeout_s = 0.05;
    Harness h(l);
    Client c(h);
    c.send("GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    await_responses(h, c, 1);
    const size_t before = c.in().size();
    await_eof(h, c);
    cr_assert_eq(c.in().size(), before, "nothing is sent when an idle connection closes");
    cr_assert(h.pump([&] { return h.server->connection_count() == 0; }));
}

Test(http_server, connection_limit_pauses_accept) {
    config::ServerConfig l;
    l.max_connections = 1;
    Harness h(l);
    Client a(h);
    a.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n");
    await_responses(h, a, 1);
    Client b(h); // queued in the kernel's backlog until a leaves
    b.send("GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 5; ++i) ev_run(h.loop, EVRUN_NOWAIT);
    cr_assert_eq(h.server->connection_count(), 1u);
    cr_assert(b.in().empty());
    a.close();
    auto rs = await_responses(h, b, 1);
    expect_body(rs[0], "path=/b len=0");
}
