#include "supervisor/model_process.h"
#include "supervisor/stale_instances.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <regex.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/macros.h"
#include "supervisor/spawn.h"
#include "util/log.h"
#include "util/text_file.h"

namespace ls::supervisor {

// readyPattern, compiled once per start (POSIX extended regex).
struct ReadyPattern {
    regex_t re;
    explicit ReadyPattern(const std::string& pattern, bool& ok) {
        ok = regcomp(&re, pattern.c_str(), REG_EXTENDED | REG_NOSUB) == 0;
    }
    ~ReadyPattern() { regfree(&re); }
    bool matches(const std::string& line) const {
        return regexec(&re, line.c_str(), 0, nullptr, 0) == 0;
    }
};

namespace {
constexpr size_t kMaxLine = 8192;

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
}

// "couldn't bind HTTP server socket" (llama-server), "Address already in use" (most),
// "[Errno 98] error while attempting to bind" (uvicorn: vLLM), "bind: address already in use"
// (Go).
bool says_bind_failed(std::string_view line) {
    std::string lower(line.substr(0, 512));
    for (char& c : lower) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    if (lower.find("address already in use") != std::string::npos ||
        lower.find("eaddrinuse") != std::string::npos)
        return true;
    if (lower.find("bind") == std::string::npos) return false;
    for (const char* why :
         {"couldn't", "could not", "cannot", "can't", "failed", "unable", "error"})
        if (lower.find(why) != std::string::npos) return true;
    return false;
}
} // namespace

ModelProcess::ModelProcess(struct ev_loop* loop, config::ModelConfig cfg, ProcessSettings settings,
                           int preferred_port, PortAllocator& ports, GroupGuard* guard,
                           ProcessObserver& observer)
    : loop_(loop), cfg_(std::move(cfg)), settings_(settings), preferred_port_(preferred_port),
      ports_(ports), guard_(guard), observer_(observer), output_(64 * 1024),
      exec_io_(loop, &on_exec_status, this), output_io_(loop, &on_output, this),
      child_(loop, &on_child, this), stop_child_(loop, &on_stop_child, this),
      deadline_(loop, &on_deadline, this), retry_(loop, &on_retry, this),
      kill_timer_(loop, &on_kill, this), probe_(loop, &on_probe_result, this),
      liveness_(loop, &on_liveness_verdict, this), cgroup_cleanup_(loop, &on_cgroup_cleanup, this),
      scope_wait_(loop, &on_scope_wait, this), relaunch_(loop, &on_relaunch, this),
      oom_watch_(loop) {
    state_since_ = ev_now(loop_);
}

ModelProcess::~ModelProcess() {
    // Orderly shutdown stops processes first; this is the last line of defence.
    if (pid_ > 0) {
        kill(-pid_, SIGKILL);
        int status;
        while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
        if (guard_) guard_->forget(pid_);
        pid_ = -1;
    }
    if (port_ > 0) ports_.release(port_);
}

void ModelProcess::set_state(ProcessState to) {
    const ProcessState from = state_;
    if (!transition_allowed(from, to)) {
        LOG_ERROR("model %s: refused state change %s -> %s", cfg_.id.c_str(), to_string(from),
                  to_string(to));
        return;
    }
    state_ = to;
    state_since_ = ev_now(loop_);
    if (to == ProcessState::Ready) ready_at_ = state_since_;
    observer_.on_process_state(*this, from, to);
}

void ModelProcess::start() {
    if (state_ != ProcessState::Stopped && state_ != ProcessState::Failed) return;
    failure_.clear();
    pending_failure_.clear();
    wedged_.clear();
    output_.clear();
    started_at_ = ev_now(loop_);
    ready_at_ = 0;
    attempt_ = 1;
    set_state(ProcessState::Starting);
    launch();
}

void ModelProcess::launch() {
    pending_failure_.clear();
    http_threads_ = 0;
    bind_failure_seen_ = false;
    std::vector<std::string> argv = cfg_.cmd;
    std::string proxy_url = cfg_.proxy;
    check_path_ = cfg_.check_endpoint;
    if (cfg_.uses_port) {
        auto port = ports_.acquire(preferred_port_);
        if (!port) {
            fail_start(port.error().message);
            return;
        }
        port_ = *port;
        const std::string p = std::to_string(port_);
        for (auto& a : argv) a = config::substitute(a, "PORT", p);
        proxy_url = config::substitute(proxy_url, "PORT", p);
        check_path_ = config::substitute(check_path_, "PORT", p);
    }
    cmd_text_.clear();
    for (const auto& a : argv) cmd_text_ += (cmd_text_.empty() ? "" : " ") + a;

    auto addr = proxy::parse_upstream_url(proxy_url, settings_.resolver == nullptr);
    if (!addr) {
        fail_start(addr.error().message);
        return;
    }
    upstream_ = std::move(addr.value());
    tls_ctx_.reset();
    if (upstream_.tls) {
        auto ctx = tls::Context::client(cfg_.tls);
        if (!ctx) {
            fail_start(ctx.error().message);
            return;
        }
        tls_ctx_ = std::move(ctx.value());
    }
    readiness_waits_for_lookup_ = false;
    ready_waits_for_lookup_ = nullptr;
    if (!upstream_.lookup_name.empty()) // a host name: looked up while the model starts
        lookup_ = settings_.resolver->resolve(
            upstream_.lookup_name, upstream_.port,
            [this](Result<proxy::ResolvedAddress> r) { on_resolved(std::move(r)); });

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        fail_start(std::string("pipe: ") + strerror(errno));
        return;
    }
    output_read_.reset(out[0]);
    output_write_.reset(out[1]);
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);

    ready_pattern_.reset();
    if (!cfg_.ready_pattern.empty()) {
        bool ok = false;
        auto pattern = std::make_unique<ReadyPattern>(cfg_.ready_pattern, ok);
        if (!ok) {
            fail_start("invalid readyPattern '" + cfg_.ready_pattern + "'");
            return;
        }
        ready_pattern_ = std::move(pattern);
    }

    SpawnRequest req;
    req.argv = argv;
    req.env = cfg_.env;
    if (!settings_.notify_socket.empty())
        req.env.push_back("NOTIFY_SOCKET=" + settings_.notify_socket);
    if (cfg_.limits.gpus_set) {
        std::string visible;
        for (int g : cfg_.limits.gpus) visible += (visible.empty() ? "" : ",") + std::to_string(g);
        req.env.push_back("CUDA_VISIBLE_DEVICES=" + visible);
    }
    req.output_fd = output_write_.get();
    cgroup_.reset();
    unit_.clear();
    unit_memory_dir_.clear();
    const config::Backend backend = cfg_.backend.value_or(settings_.backend);
    const bool scope_ready = settings_.scopes && settings_.scopes->connected();
    if (backend == config::Backend::Scope && !scope_ready) {
        fail_start("backend is 'scope' but no systemd service manager is reachable");
        return;
    }
    const bool use_scope = scope_ready && backend != config::Backend::Fork;
    if (use_scope) {
        req.hold = true; // exec only once the scope holds it
    } else if (settings_.cgroups) {
        auto cg = settings_.cgroups->create(cfg_.id, cfg_.limits);
        if (cg) {
            cgroup_ = std::move(cg.value());
            req.hold = true; // into the cgroup before exec
        } else if (settings_.cgroups->warned_once()) {
            LOG_WARN("cgroups unavailable (%s): models run without memory/CPU/device fences",
                     cg.error().message.c_str());
        }
    }
    auto spawned = spawn_process(req);
    if (!spawned) {
        cgroup_.reset();
        fail_start("cannot start '" + argv[0] + "': " + spawned.error().message);
        return;
    }
    if (use_scope) {
        unit_ = ScopeBackend::unit_name(cfg_.id);
        release_ = std::move(spawned->release);
        const pid_t child = spawned->pid;
        scope_call_ = settings_.scopes->start_scope(
            unit_, child, scope_description(cfg_.id), cfg_.limits, cfg_.unload_timeout_s,
            [this](const std::string& error) { on_scope_created(error); });
    } else if (cgroup_) {
        // On the daemon's death the guard kills what is left in these cgroups and removes them.
        if (guard_)
            for (const auto& dir : cgroup_->paths()) guard_->watch_cgroup(dir);
        if (auto r = cgroup_->add_process(spawned->pid); !r) {
            LOG_WARN("model %s: cannot move pid %d into its cgroup (%s), running it unfenced",
                     cfg_.id.c_str(), spawned->pid, r.error().message.c_str());
            cgroup_.reset();
        }
        static const char go = 1;
        ssize_t w = ::write(spawned->release.get(), &go, 1);
        (void)w;
        spawned->release.reset();
    }
    pid_ = spawned->pid;
    if (!lookup_) pool_key_ = upstream_.key() + "|" + std::to_string(pid_);
    if (guard_) guard_->watch(pid_);
    exec_status_ = std::move(spawned->exec_status);
    child_.start(pid_);
    exec_io_.set(exec_status_.get(), EV_READ);
    output_io_.set(output_read_.get(), EV_READ);
    // One deadline for the whole start, however many attempts it takes.
    deadline_.start(std::max(0.0, started_at_ + settings_.health_check_timeout_s - ev_now(loop_)));
    LOG_EVENT(LogLevel::Info, (LogFields{.model = cfg_.id, .pid = pid_, .event = "model_starting"}),
              "model %s: starting pid %d: %s", cfg_.id.c_str(), pid_, cmd_text_.c_str());
}

void ModelProcess::fail_start(std::string message) {
    // Nothing was spawned (or it is already gone): the start fails right here.
    if (pid_ <= 0) {
        failure_ = std::move(message);
        LOG_EVENT(LogLevel::Warn, (LogFields{.model = cfg_.id, .event = "model_failed"}),
                  "model %s: start failed: %s", cfg_.id.c_str(), failure_.c_str());
        cleanup_after_exit();
        set_state(ProcessState::Failed);
        return;
    }
    pending_failure_ = std::move(message);
    stop(settings_.failed_start_grace_s, "start failed");
}

void ModelProcess::on_scope_created(const std::string& error) {
    scope_call_.reset();
    if (pid_ <= 0) return;
    if (!error.empty()) {
        // The held child never ran the command: take it down, its reaping fails the start.
        pending_failure_ = "cannot create scope " + unit_ + ": " + error;
        unit_.clear();
        release_.reset();
        kill(pid_, SIGKILL);
        return;
    }
    // The reply only means the job was queued: exec once the manager has really moved the
    // child, so nothing the model allocates is charged outside its fence.
    scope_wait_ticks_ = 0;
    release_held_child();
}

void ModelProcess::on_scope_wait(struct ev_loop*, ev_timer* w, int) {
    auto* self = w ? static_cast<ModelProcess*>(w->data) : nullptr;
    if (!self) return;
    self->release_held_child();
}

void ModelProcess::release_held_child() {
    if (pid_ <= 0 || !release_) return;
    const auto lines =
        parse_proc_cgroup(read_text_file("/proc/" + std::to_string(pid_) + "/cgroup"));
    // The manager moves the child hierarchy by hierarchy: on a v1/v2 hybrid the v1 memory
    // controller may follow the unified one a moment later, and the fence is the former.
    auto in_unit = [&](const std::string* path) {
        return path && path->find("/" + unit_) != std::string::npos ? path : nullptr;
    };
    const std::string* unit_path = in_unit(cgroup_path_of(lines, ""));
    if (!unit_path) unit_path = in_unit(cgroup_path_of(lines, "name=systemd"));
    const std::string* memory_path = cgroup_path_of(lines, "memory");
    bool moved = unit_path != nullptr;
    if (moved && memory_path && *memory_path != *unit_path) {
        // Only wait when the manager runs a memory cgroup for the unit at all.
        if (path_exists("/sys/fs/cgroup/memory" + *unit_path)) moved = false;
    }
    if (!moved && ++scope_wait_ticks_ < 400) { // 2 s at most, then go on unfenced
        scope_wait_.start(0.005);
        return;
    }
    if (!moved)
        LOG_WARN("model %s: %s did not take pid %d in time, starting it anyway", cfg_.id.c_str(),
                 unit_.c_str(), pid_);
    unit_memory_dir_ = memory_cgroup_dir(lines);
    if (!unit_memory_dir_.empty()) oom_watch_.start(unit_memory_dir_);
    static const char go = 1;
    ssize_t n = ::write(release_.get(), &go, 1);
    (void)n;
    release_.reset();
}

uint64_t ModelProcess::scope_oom_kills() const {
    return unit_memory_dir_.empty() ? 0 : cgroup_oom_kills(unit_memory_dir_);
}

void ModelProcess::on_exec_status(struct ev_loop*, ev_io* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    int err = read_exec_status(self->exec_status_.get());
    if (err < 0) return; // spurious wake-up
    self->exec_io_.stop();
    self->exec_status_.reset();
    if (err > 0) {
        // The child exits with 127 right after; its reaping completes the failure.
        self->pending_failure_ = "cannot execute '" + self->cfg_.cmd[0] + "': " + strerror(err);
        return;
    }
    if (self->state_ == ProcessState::Starting) self->begin_readiness();
}

void ModelProcess::on_resolved(Result<proxy::ResolvedAddress> result) {
    lookup_.reset();
    if (state_ != ProcessState::Starting) return;
    if (!result) {
        fail_start(result.error().message);
        return;
    }
    upstream_.addr = result->addr;
    upstream_.addr_len = result->addr_len;
    pool_key_ = upstream_.key() + "|" + std::to_string(pid_);
    LOG_DEBUG("model %s: %s is %s", cfg_.id.c_str(), upstream_.lookup_name.c_str(),
              upstream_.key().c_str());
    if (ready_waits_for_lookup_)
        become_ready(ready_waits_for_lookup_);
    else if (readiness_waits_for_lookup_)
        begin_readiness();
}

void ModelProcess::begin_readiness() {
    if (lookup_) { // nothing to probe yet
        readiness_waits_for_lookup_ = true;
        return;
    }
    if (check_path_.empty()) { // checkEndpoint: none
        // Nothing to poll: ready at once, unless the model says when (readyPattern, or an
        // sd_notify READY=1, which also works without a pattern).
        if (ready_pattern_) return;
        deadline_.stop();
        set_state(ProcessState::Ready);
        return;
    }
    probe_.start(upstream_, check_path_, settings_.probe_timeout_s, tls_ctx_);
}

void ModelProcess::on_probe_result(void* p, int status) {
    auto* self = static_cast<ModelProcess*>(p);
    if (self->state_ != ProcessState::Starting) return;
    if (status == 200) {
        self->become_ready("health check");
        return;
    }
    self->retry_.start(self->settings_.probe_interval_s);
}

void ModelProcess::become_ready(const char* how) {
    if (state_ != ProcessState::Starting) return;
    if (lookup_) { // no address to send requests to yet
        ready_waits_for_lookup_ = how;
        return;
    }
    probe_.cancel();
    deadline_.stop();
    retry_.stop();
    const double load = ev_now(loop_) - started_at_;
    LOG_EVENT(LogLevel::Info,
              (LogFields{.model = cfg_.id,
                         .pid = pid_,
                         .event = "model_ready",
                         .load_ms = static_cast<long long>(load * 1000)}),
              "model %s: ready after %.3f s (%s)", cfg_.id.c_str(), load, how);
    set_state(ProcessState::Ready);
}

void ModelProcess::on_notify(std::string_view message) {
    // sd_notify: newline-separated KEY=VALUE assignments.
    while (!message.empty()) {
        size_t nl = message.find('\n');
        std::string_view line = message.substr(0, nl);
        message = nl == std::string_view::npos ? std::string_view() : message.substr(nl + 1);
        if (line == "READY=1") {
            become_ready("sd_notify READY=1");
        } else if (line.rfind("STATUS=", 0) == 0) {
            const std::string text = "status: " + std::string(line.substr(7));
            output_.push(text);
            observer_.on_process_output(*this, text);
        }
    }
}

void ModelProcess::on_retry(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    if (self->state_ == ProcessState::Starting)
        self->probe_.start(self->upstream_, self->check_path_, self->settings_.probe_timeout_s,
                           self->tls_ctx_);
}

void ModelProcess::check_liveness(LivenessWaiter* waiter) {
    if (state_ != ProcessState::Ready || !wedged_.empty()) return; // its requests are ending
    liveness_.ask(waiter, upstream_, check_path_, cfg_.timeouts.silence_s, tls_ctx_);
}

void ModelProcess::on_liveness_verdict(void* p, bool alive, const std::string& why) {
    auto* self = static_cast<ModelProcess*>(p);
    if (alive) {
        LOG_INFO("model %s: silent for %.0f s but still working (a long prompt?); waiting on",
                 self->cfg_.id.c_str(), self->cfg_.timeouts.silence_s);
        return;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "was silent for %.0f s and %s", self->cfg_.timeouts.silence_s,
             why.c_str());
    self->wedged_ = buf;
    LOG_EVENT(LogLevel::Error,
              (LogFields{.model = self->cfg_.id, .pid = self->pid_, .event = "model_wedged"}),
              "model %s: pid %d is wedged: it %s; its requests in flight are cut and it is "
              "restarted",
              self->cfg_.id.c_str(), self->pid_, buf);
    self->observer_.on_process_wedged(*self);
}

void ModelProcess::on_deadline(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    if (self->state_ != ProcessState::Starting) return;
    char msg[128];
    snprintf(msg, sizeof msg, "health check timed out after %.0f s",
             self->settings_.health_check_timeout_s);
    self->fail_start(msg);
}

void ModelProcess::stop(double grace_s, const char* reason) {
    if (state_ == ProcessState::Failed) {
        // Nothing runs any more; unloading a failed model says "seen", so it shows as stopped.
        LOG_EVENT(LogLevel::Info, (LogFields{.model = cfg_.id, .event = "model_stopped"}),
                  "model %s: failed state cleared (%s)", cfg_.id.c_str(), reason);
        set_state(ProcessState::Stopped);
        return;
    }
    if (state_ == ProcessState::Starting && pid_ <= 0 && relaunch_.active()) {
        // Between two attempts of a start: nothing runs.
        LOG_EVENT(LogLevel::Info, (LogFields{.model = cfg_.id, .event = "model_stopped"}),
                  "model %s: start abandoned (%s)", cfg_.id.c_str(), reason);
        cleanup_after_exit();
        set_state(ProcessState::Stopping);
        set_state(ProcessState::Stopped);
        return;
    }
    if (state_ != ProcessState::Starting && state_ != ProcessState::Ready) {
        if (state_ == ProcessState::Stopping && pid_ > 0) {
            const double at = ev_now(loop_) + grace_s;
            if (at < kill_at_) {
                kill_at_ = at;
                kill_timer_.start(grace_s);
            }
        }
        return;
    }
    lookup_.reset();
    probe_.cancel();
    retry_.stop();
    deadline_.stop();
    LOG_EVENT(LogLevel::Info, (LogFields{.model = cfg_.id, .pid = pid_, .event = "model_stopping"}),
              "model %s: stopping pid %d (%s)", cfg_.id.c_str(), pid_, reason);
    set_state(ProcessState::Stopping);
    if (pid_ <= 0) return;
    if (!cfg_.cmd_stop.empty())
        run_stop_command();
    else if (kill(-pid_, SIGTERM) != 0)
        kill(pid_, SIGTERM);
    kill_at_ = ev_now(loop_) + grace_s;
    kill_timer_.start(grace_s);
}

void ModelProcess::run_stop_command() {
    std::vector<std::string> argv = cfg_.cmd_stop;
    for (auto& a : argv) {
        a = config::substitute(a, "PID", std::to_string(pid_));
        a = config::substitute(a, "PORT", std::to_string(port_));
    }
    SpawnRequest req;
    req.argv = argv;
    req.env = cfg_.env;
    req.output_fd = output_write_.get();
    auto spawned = spawn_process(req);
    if (!spawned) {
        LOG_WARN("model %s: cmdStop failed (%s), sending SIGTERM", cfg_.id.c_str(),
                 spawned.error().message.c_str());
        kill(-pid_, SIGTERM);
        return;
    }
    stop_pid_ = spawned->pid;
    stop_child_.start(stop_pid_);
}

void ModelProcess::on_stop_child(struct ev_loop*, ev_child* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    self->stop_child_.stop();
    if (w->rstatus != 0)
        LOG_WARN("model %s: cmdStop ended with %s", self->cfg_.id.c_str(),
                 describe_status(w->rstatus).c_str());
    self->stop_pid_ = -1;
}

void ModelProcess::on_kill(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    if (self->pid_ <= 0) return;
    LOG_WARN("model %s: pid %d did not stop in time, sending SIGKILL", self->cfg_.id.c_str(),
             self->pid_);
    if (kill(-self->pid_, SIGKILL) != 0) kill(self->pid_, SIGKILL);
}

void ModelProcess::on_output(struct ev_loop*, ev_io* w, int) {
    static_cast<ModelProcess*>(w->data)->drain_output();
}

void ModelProcess::drain_output() {
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(output_read_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) output_io_.stop(); // every writer is gone
            return;
        }
        std::string_view data(buf, static_cast<size_t>(n));
        while (!data.empty()) {
            size_t nl = data.find('\n');
            if (nl == std::string_view::npos) {
                partial_line_.append(data);
                if (partial_line_.size() < kMaxLine) break;
                nl = data.size(); // overlong line: emit what we have
                data = {};
            } else {
                partial_line_.append(data.substr(0, nl));
                data.remove_prefix(nl + 1);
            }
            if (!partial_line_.empty() && partial_line_.back() == '\r') partial_line_.pop_back();
            on_output_line(partial_line_);
            partial_line_.clear();
        }
        if (static_cast<size_t>(n) < sizeof buf) return;
    }
}

void ModelProcess::on_output_line(const std::string& line) {
    output_.push(line);
    observer_.on_process_output(*this, line);
    if (state_ != ProcessState::Starting) return;
    if (!bind_failure_seen_ && says_bind_failed(line)) bind_failure_seen_ = true;
    // llama-server: "main: HTTP server is listening, hostname: H, port: P, http threads: N",
    // printed before the model loads (a readyPattern must not take it for readiness).
    static constexpr std::string_view kThreads = "http threads: ";
    if (http_threads_ == 0) {
        if (size_t at = line.find(kThreads); at != std::string::npos) {
            const int n = atoi(line.c_str() + at + kThreads.size());
            if (n > 0 && n <= 65535) {
                http_threads_ = n;
                LOG_DEBUG("model %s: the upstream serves HTTP with %d threads", cfg_.id.c_str(), n);
            }
        }
    }
    if (ready_pattern_ && ready_pattern_->matches(line)) become_ready("readyPattern matched");
}

proxy::ConnectionPolicy ModelProcess::connection_policy() const {
    proxy::ConnectionPolicy p;
    if (cfg_.upstream_connections > 0) {
        p.cap = static_cast<size_t>(cfg_.upstream_connections);
    } else if (cfg_.upstream_connections == config::ModelConfig::kAutoConnections) {
        // llama-server sizes its pool as its slots + 2 "for monitoring endpoints": leave
        // those 2 to /health, /metrics and /slots callers, the rest is ours.
        if (http_threads_ > 0)
            p.cap = static_cast<size_t>(std::max(1, http_threads_ - 2));
        else
            p.close_idle_when_unanswered = true;
    }
    return p;
}

void ModelProcess::on_child(struct ev_loop*, ev_child* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    self->handle_exit(w->rstatus);
}

void ModelProcess::handle_exit(int status) {
    child_.stop();
    // A failed exec reports through its pipe just before exiting: read it if still unread.
    if (exec_status_.valid()) {
        int err = read_exec_status(exec_status_.get());
        if (err > 0) pending_failure_ = "cannot execute '" + cfg_.cmd[0] + "': " + strerror(err);
    }
    drain_output();
    if (!partial_line_.empty()) { // the process is gone: the line tells nothing about readiness
        output_.push(partial_line_);
        observer_.on_process_output(*this, partial_line_);
        partial_line_.clear();
    }
    const pid_t pid = pid_;
    exited_port_ = port_;
    // Grandchildren left in the group (or, with a cgroup, anywhere in it) must not outlive
    // the model.
    kill(-pid, SIGKILL);
    bool oom = false;
    if (cgroup_) {
        oom = cgroup_->oom_kills() > 0;
        cgroup_->kill_all();
    }
    if (!unit_.empty()) {
        // Seen while it happened: the manager may have removed the scope's cgroup by now.
        oom = oom || oom_watch_.fired() || scope_oom_kills() > 0;
        if (settings_.scopes) settings_.scopes->stop_scope(unit_); // whatever is left in it
    }
    scope_call_.reset();
    release_.reset();
    scope_wait_.stop();
    if (guard_) guard_->forget(pid);
    pid_ = -1;
    cleanup_after_exit();

    std::string how = describe_status(status);
    if (oom) {
        char buf[128];
        if (cfg_.limits.memory_max > 0)
            snprintf(buf, sizeof buf, "killed by the OOM killer: memoryMax %llu bytes",
                     static_cast<unsigned long long>(cfg_.limits.memory_max));
        else // no limit of ours: the whole machine ran out of memory
            snprintf(buf, sizeof buf,
                     "killed by the OOM killer (no memoryMax: the host ran out "
                     "of memory)");
        how = buf;
        pending_failure_ =
            std::string("upstream ") + buf; // an OOM kill is a failure, whatever the state
    }
    switch (state_) {
    case ProcessState::Starting: {
        if (!oom && retry_on_another_port(how)) break;
        failure_ = !pending_failure_.empty() ? pending_failure_
                                             : "upstream exited while starting (" + how + ")";
        std::string last = output_.tail(5);
        if (!last.empty() && pending_failure_.rfind("cannot execute", 0) != 0)
            failure_ += "; last output: " + last;
        LOG_EVENT(LogLevel::Warn,
                  (LogFields{.model = cfg_.id, .pid = pid, .event = "model_failed"}),
                  "model %s: start failed: %s", cfg_.id.c_str(), failure_.c_str());
        set_state(ProcessState::Failed);
        break;
    }
    case ProcessState::Ready:
        failure_ = oom ? pending_failure_ : "upstream exited unexpectedly (" + how + ")";
        LOG_EVENT(LogLevel::Warn,
                  (LogFields{.model = cfg_.id, .pid = pid, .event = "model_exited"}),
                  "model %s: pid %d %s", cfg_.id.c_str(), pid, failure_.c_str());
        set_state(ProcessState::Failed);
        break;
    case ProcessState::Stopping:
        if (!oom && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
            how = "it ended itself by SIGABRT on the stop signal, as some llama-server builds "
                  "do; nothing is wrong";
        LOG_EVENT(LogLevel::Info,
                  (LogFields{.model = cfg_.id, .pid = pid, .event = "model_stopped"}),
                  "model %s: pid %d stopped (%s)", cfg_.id.c_str(), pid, how.c_str());
        if (!pending_failure_.empty()) {
            failure_ = pending_failure_;
            std::string last = output_.tail(5);
            if (!last.empty()) failure_ += "; last output: " + last;
            set_state(ProcessState::Failed);
        } else {
            set_state(ProcessState::Stopped);
        }
        break;
    default:
        break;
    }
}

bool ModelProcess::retry_on_another_port(const std::string& how) {
    // Only a port we chose can be the reason, and only a process that ran can have said so.
    if (!cfg_.uses_port || exited_port_ <= 0 || !pending_failure_.empty()) return false;
    // A port taken between our check and its bind is worth a few tries; any other early
    // exit one more, on a port nobody has touched.
    const int attempts = bind_failure_seen_ ? kMaxBindAttempts : kMaxEarlyExitAttempts;
    if (attempt_ >= attempts) return false;
    ++attempt_;
    ports_.avoid(exited_port_);
    const std::string why =
        bind_failure_seen_ ? "having said it could not bind port " + std::to_string(exited_port_)
                           : "on port " + std::to_string(exited_port_);
    LOG_EVENT(LogLevel::Warn, (LogFields{.model = cfg_.id, .event = "model_retry"}),
              "model %s: exited before it was ready (%s), %s; starting it again on another "
              "port (attempt %d of %d)",
              cfg_.id.c_str(), how.c_str(), why.c_str(), attempt_, attempts);
    // A moment for the service manager to collect the old scope (the new one has its name).
    relaunch_.start(kRelaunchDelay);
    return true;
}

void ModelProcess::on_relaunch(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    if (self->state_ == ProcessState::Starting && self->pid_ <= 0) self->launch();
}

std::string ModelProcess::cgroup_name() const {
    return cgroup_ ? cgroup_->name() : std::string();
}

std::vector<std::string> ModelProcess::cgroup_dirs() const {
    if (cgroup_) return cgroup_->paths();
    if (!unit_memory_dir_.empty()) return {unit_memory_dir_};
    return {};
}

uint64_t ModelProcess::memory_current() const {
    if (cgroup_) return cgroup_->memory_current();
    return unit_memory_dir_.empty() ? 0 : cgroup_memory_bytes(unit_memory_dir_);
}

void ModelProcess::on_cgroup_cleanup(struct ev_loop*, ev_timer* w, int) {
    auto* self = static_cast<ModelProcess*>(w->data);
    auto& stale = self->stale_cgroups_;
    for (auto it = stale.begin(); it != stale.end();)
        it = (*it)->remove() ? stale.erase(it) : std::next(it);
    if (stale.empty()) return;
    if (++self->cgroup_retries_ > 50) {
        LOG_WARN("model %s: cgroup %s stays busy, leaving it", self->cfg_.id.c_str(),
                 stale.front()->name().c_str());
        stale.clear(); // the destructor tries one last time
        return;
    }
    self->cgroup_cleanup_.start(0.1);
}

void ModelProcess::cleanup_after_exit() {
    if (cgroup_ && guard_)
        for (const auto& dir : cgroup_->paths()) guard_->forget_cgroup(dir);
    oom_watch_.stop();
    unit_.clear(); // the manager collects the scope; /running must not show a dead unit
    unit_memory_dir_.clear();
    if (cgroup_) {
        if (!cgroup_->remove()) {
            stale_cgroups_.push_back(std::move(cgroup_));
            cgroup_retries_ = 0;
            cgroup_cleanup_.start(0.05);
        }
        cgroup_.reset();
    }
    exec_io_.stop();
    exec_status_.reset();
    output_io_.stop();
    output_read_.reset();
    output_write_.reset();
    probe_.cancel();
    liveness_.cancel();
    retry_.stop();
    deadline_.stop();
    kill_timer_.stop();
    relaunch_.stop();
    lookup_.reset();
    if (port_ > 0) {
        ports_.release(port_);
        port_ = 0;
    }
}

} // namespace ls::supervisor
