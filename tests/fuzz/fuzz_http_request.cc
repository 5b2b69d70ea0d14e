// libFuzzer harness: the HTTP request path (src/http/server.h, connection.h): the llhttp-based
// parser under the daemon's limits, request bodies in memory and spooled, chunked bodies,
// pipelining, Expect: 100-continue, answers at head time, streamed and aborted responses,
// answers given later, protocol upgrades (tunnels), and the streaming model scanner as the
// body observer, all on a real libev loop over a socket pair, as the daemon runs them.
//
// Input: byte 0 holds flags (bits 0-1: the limits, see kLimits; bit 2: the client half-closes
// after sending; bit 3: requests answered later are answered before the client's last bytes
// rather than after), byte 1 seeds how the rest is split into writes; the rest is what the
// client sends.
//
// Paths the application below treats specially: /deny (refused at head time), /v1/... (the
// model scanner watches the body, as for the daemon's model routes), /stream (chunked
// answer), /abort (a broken answer), /later (answered after the loop ran), /early (a spooled
// body taken while it arrives, answered later), /ws with an upgrade (a tunnel echoing the
// client's bytes; 'q' in them ends it, 'p' pauses input).
//
// Properties: no sanitizer report; a request's stored body (memory or spool file) is exactly
// the bytes the body observer saw, never over the limit, and empty without a body; the
// scanner's streaming result equals a one-shot scan of the stored body; every answer starts
// with a status line; a connection whose client went away is closed and freed.
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ftw.h>
#include <memory>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

#include "config/config.h"
#include "fuzz_common.h"
#include "http/connection.h"
#include "http/server.h"
#include "router/model_extract.h"
#include "util/log.h"
#include "util/reaper.h"
#include "util/unique_fd.h"

using namespace ls;
using namespace ls::http;

namespace {

// ------------------------------------------------------------------ the application

// Records the body bytes as they arrive and runs the model scanner over them, as the daemon
// does for its model routes.
class Recorder : public BodyObserver {
public:
    explicit Recorder(std::unique_ptr<router::BodyScanner> scanner)
        : scanner_(std::move(scanner)) {}
    void on_body(const char* data, size_t len) override {
        seen.append(data, len);
        if (scanner_) scanner_->on_body(data, len);
    }
    // A body taken early goes into the spool without being shown (its model is known): the
    // bytes are in the body, not seen here.
    void on_body_skipped(size_t n) override {
        skipped.push_back({seen.size(), n});
        seen.append(n, '\0');
        if (scanner_) scanner_->on_body_skipped(n);
    }
    router::BodyScanner* scanner() { return scanner_.get(); }
    // What was seen is the body, but where bytes were skipped.
    bool matches(const std::string& body) const {
        if (body.size() != seen.size()) return false;
        std::string expected = seen;
        for (const auto& [at, n] : skipped) expected.replace(at, n, body, at, n);
        return expected == body;
    }
    std::string seen;
    std::vector<std::pair<size_t, size_t>> skipped; // (offset, length)

private:
    std::unique_ptr<router::BodyScanner> scanner_;
};

class App;

class FuzzExchange : public Exchange {
public:
    FuzzExchange(App& app, Connection& conn, bool tunnel);
    ~FuzzExchange() override;
    void on_client_gone() override { conn_ = nullptr; }
    bool on_tunnel_data(const char* data, size_t len) override;
    void on_request_body() override;
    Connection* conn() const { return conn_; }
    bool tunnel() const { return tunnel_; }
    void detach() { conn_ = nullptr; } // answered: the connection is no longer ours

private:
    App& app_;
    Connection* conn_;
    bool tunnel_;
};

std::string read_body(const Body& b) {
    std::string out(b.size(), '\0');
    size_t off = 0;
    while (off < out.size()) {
        auto r = b.read_at(off, out.data() + off, out.size() - off);
        FUZZ_CHECK(r.ok());
        FUZZ_CHECK(r.value() > 0);
        off += r.value();
    }
    return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

class App : public Application {
public:
    const config::ServerConfig* limits = nullptr;
    FuzzExchange* pending = nullptr; // the latest exchange still waiting (answer or tunnel)

    bool on_request_head(Connection& conn, Request& req) override {
        FUZZ_CHECK(!req.method_name.empty());
        FUZZ_CHECK(req.path == req.target.substr(0, req.target.find('?')));
        if (starts_with(req.path, "/deny")) {
            conn.respond_error(403, "denied at head time", "forbidden");
            return false;
        }
        if (!req.has_body) return true;
        std::unique_ptr<router::BodyScanner> scanner;
        if (starts_with(req.path, "/v1/")) {
            std::string error;
            scanner = router::body_scanner_for(req, error);
            if (!scanner) {
                FUZZ_CHECK(!error.empty());
                conn.respond_error(400, error, "bad_request");
                return false;
            }
        }
        conn.set_body_observer(std::make_unique<Recorder>(std::move(scanner)));
        return true;
    }

    // /early...: a spooled Content-Length body is taken while it arrives (as the daemon's
    // model-first uploads), answered later (answer_pending) or never.
    bool dispatch_early(Connection& conn, Request& req) override {
        FUZZ_CHECK(!req.body_complete && req.body.spooled() && req.content_length > 0);
        FUZZ_CHECK(req.body.size() < req.content_length);
        if (!starts_with(req.path, "/early")) return false;
        auto x = std::make_unique<FuzzExchange>(*this, conn, false);
        pending = x.get();
        conn.attach_exchange(std::move(x));
        return true;
    }

    void on_request(Connection& conn, Request& req) override {
        const std::string body = read_body(req.body);
        FUZZ_CHECK(body.size() <= limits->max_body_bytes);
        auto* rec = dynamic_cast<Recorder*>(conn.body_observer());
        if (!req.has_body) FUZZ_CHECK(body.empty());
        if (rec) {
            FUZZ_CHECK(rec->skipped.empty()); // only a body taken early is skipped
            FUZZ_CHECK(rec->seen == body);
            if (router::BodyScanner* s = rec->scanner()) check_scanner(req, *s, body);
        } else {
            FUZZ_CHECK(body.empty());
        }

        HeaderList h;
        h.add("Content-Type", "text/plain");
        if (req.path == "/stream") {
            conn.start_response(200, h, Framing::Chunked);
            conn.write_body("hello ", 6);
            conn.write_body("", 0);
            conn.write_body(body.data(), body.size());
            conn.end_response();
        } else if (req.path == "/abort") {
            conn.start_response(200, h, Framing::Chunked);
            conn.write_body("partial", 7);
            conn.abort_response();
        } else if (req.path == "/later") {
            auto x = std::make_unique<FuzzExchange>(*this, conn, false);
            pending = x.get();
            conn.attach_exchange(std::move(x));
        } else if (req.path == "/ws" && req.upgrade) {
            auto x = std::make_unique<FuzzExchange>(*this, conn, true);
            pending = x.get();
            conn.attach_exchange(std::move(x));
            HeaderList up;
            up.add("Upgrade", "websocket");
            up.add("Connection", "Upgrade");
            conn.start_tunnel(up);
        } else {
            conn.respond(200, h, "path=" + req.path + " len=" + std::to_string(body.size()));
        }
    }

    // The scanner saw the body as it arrived; fed whole, a fresh one must say the same.
    static void check_scanner(const Request& req, router::BodyScanner& s, const std::string& body) {
        std::string error;
        auto again = router::body_scanner_for(req, error);
        FUZZ_CHECK(again);
        again->on_body(body.data(), body.size());
        std::string e1, e2;
        const bool ok1 = s.finish(e1);
        const bool ok2 = again->finish(e2);
        FUZZ_CHECK(ok1 == ok2);
        FUZZ_CHECK(e1 == e2);
        const router::ModelRef& a = s.result();
        const router::ModelRef& b = again->result();
        FUZZ_CHECK(a.found == b.found && a.model == b.model && a.value_begin == b.value_begin &&
                   a.value_end == b.value_end && a.stream == b.stream);
    }
};

FuzzExchange::FuzzExchange(App& app, Connection& conn, bool tunnel)
    : app_(app), conn_(&conn), tunnel_(tunnel) {}

FuzzExchange::~FuzzExchange() {
    if (app_.pending == this) app_.pending = nullptr;
}

void FuzzExchange::on_request_body() {
    FUZZ_CHECK(!tunnel_);
    if (!conn_) return;
    Request& req = conn_->request();
    FUZZ_CHECK(req.body.size() <= req.content_length);
    if (!req.body_complete) return;
    // Whole: exactly what the observer saw, and the declared length.
    FUZZ_CHECK(req.body.size() == req.content_length);
    if (auto* rec = dynamic_cast<Recorder*>(conn_->body_observer()))
        FUZZ_CHECK(rec->matches(read_body(req.body)));
}

bool FuzzExchange::on_tunnel_data(const char* data, size_t len) {
    FUZZ_CHECK(tunnel_);
    if (!conn_) return true;
    conn_->write_tunnel(data, len);
    const std::string_view d(data, len);
    if (d.find('q') != std::string_view::npos) {
        conn_->end_tunnel();
        return true;
    }
    return d.find('p') == std::string_view::npos;
}

// ------------------------------------------------------------------ the loop and server

// Small limits so that inputs of a few KB reach them; one set spools every body.
const config::ServerConfig kLimits[4] = {
    [] {
        config::ServerConfig l;
        l.max_header_bytes = 512;
        l.max_body_bytes = 4096;
        l.body_memory_bytes = 64;
        return l;
    }(),
    [] {
        config::ServerConfig l;
        l.max_header_bytes = 64 * 1024;
        l.max_body_bytes = 1024 * 1024;
        return l;
    }(),
    [] {
        config::ServerConfig l;
        l.max_header_bytes = 2048;
        l.max_body_bytes = 16 * 1024;
        l.body_memory_bytes = 0;
        return l;
    }(),
    [] {
        config::ServerConfig l;
        l.max_header_bytes = 128;
        l.max_body_bytes = 0;
        return l;
    }(),
};

struct World {
    struct ev_loop* loop = nullptr;
    std::unique_ptr<Reaper> reaper;
    App app;
    std::unique_ptr<Server> server;
    std::string dir;
    std::string listen_path;
};

World* world = nullptr;

void discard_log(LogLevel, std::string_view, void*) {}

void pump(int iterations) {
    for (int i = 0; i < iterations; ++i) ev_run(world->loop, EVRUN_NOWAIT);
}

// What the server sent so far (bounded: only its start is looked at).
void drain(int fd, std::string& received) {
    char buf[16384];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        if (received.size() < 65536) received.append(buf, static_cast<size_t>(n));
    }
}

void send_all(int fd, std::string_view bytes, std::string& received) {
    for (int tries = 0; !bytes.empty() && tries < 100; ++tries) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) return; // the server closed
        pump(2);
        drain(fd, received);
    }
}

// Answers the request waiting for an answer (or resumes a paused tunnel), as an upstream
// that finally replied would.
void answer_pending() {
    for (int i = 0; i < 64; ++i) {
        FuzzExchange* x = world->app.pending;
        if (!x || !x->conn()) return;
        Connection* conn = x->conn();
        if (x->tunnel()) {
            conn->resume_tunnel_input();
            return;
        }
        world->app.pending = nullptr;
        x->detach();
        HeaderList h;
        h.add("Content-Type", "text/plain");
        conn->respond(200, h, "answered later");
        pump(2);
    }
}

void setup() {
    world = new World;
    // Under $TMPDIR (scripts/fuzz points it into its own work directory, removed at the end
    // even when a finding aborts this process before atexit).
    const char* tmp = getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/ls-fuzz-http-XXXXXX";
    if (tmpl.size() > 80) tmpl = "/tmp/ls-fuzz-http-XXXXXX"; // the socket's path must fit
    const char* dir = mkdtemp(tmpl.data());
    FUZZ_CHECK(dir != nullptr);
    world->dir = dir;
    world->listen_path = world->dir + "/listen.sock";
    atexit([] {
        unlink(world->listen_path.c_str());
        rmdir(world->dir.c_str()); // spooled bodies are unlinked files: nothing else is there
    });

    // Access log lines and the parser's complaints are formatted (that code runs too), then
    // dropped.
    set_log_level(LogLevel::Info);
    set_log_target(LogTarget::Stderr);
    set_stderr_outputs(false, false);
    set_log_sink(&discard_log, nullptr);

    world->loop = ev_loop_new(EVFLAG_AUTO);
    FUZZ_CHECK(world->loop);
    world->reaper = std::make_unique<Reaper>(world->loop);
    world->server = std::make_unique<Server>(world->loop, kLimits[0], world->app, *world->reaper);
    world->app.limits = &world->server->limits();

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    FUZZ_CHECK(world->listen_path.size() < sizeof a.sun_path);
    std::memcpy(a.sun_path, world->listen_path.c_str(), world->listen_path.size() + 1);
    FUZZ_CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    FUZZ_CHECK(::listen(fd, 16) == 0);
    FUZZ_CHECK(world->server->add_listener(UniqueFd(fd), "fuzz").ok());
}

int connect_client() {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, world->listen_path.c_str(), world->listen_path.size() + 1);
    FUZZ_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    if (!world) setup();
    const uint8_t flags = data[0];
    const bool half_close = (flags & 4) != 0;
    const bool answer_early = (flags & 8) != 0;
    config::ServerConfig limits = kLimits[flags & 3];
    limits.spool_dir = world->dir;
    world->server->set_limits(limits); // no connection is open: safe to change
    const std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

    const int client = connect_client();
    pump(2); // accepted
    FUZZ_CHECK(world->server->connection_count() == 1);

    std::string received;
    fuzz::Splitter split(data[1]);
    for (std::string_view chunk : split.split(input)) {
        send_all(client, chunk, received);
        pump(3);
        drain(client, received);
        if (answer_early) answer_pending();
    }
    answer_pending();
    pump(2);
    drain(client, received);
    if (half_close) {
        ::shutdown(client, SHUT_WR);
        pump(3);
        answer_pending();
        pump(2);
        drain(client, received);
    }
    ::close(client);

    // The client is gone: its connection must close and be freed, whatever state it was in.
    // A tunnel paused for its other side sees the close once that side drains (resumed here;
    // one that never drains is ended by the connection's timer, see test_websockets).
    for (int i = 0; i < 200 && world->server->connection_count() > 0; ++i) {
        answer_pending();
        pump(1);
    }
    FUZZ_CHECK(world->server->connection_count() == 0);
    FUZZ_CHECK(world->app.pending == nullptr || world->app.pending->conn() == nullptr);
    world->reaper->run_now();
    FUZZ_CHECK(world->app.pending == nullptr);

    FUZZ_CHECK(received.empty() || starts_with(received, "HTTP/1.1 "));
    return 0;
}
