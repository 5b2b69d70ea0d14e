#include "supervisor/scope_backend.h"

#include <csignal>
#include <cstdint>
#include <cstring>
#include <poll.h>
#include <unistd.h>

#include "sd/libsystemd.h"
#include "supervisor/stale_instances.h"
#include "util/log.h"
#include "util/text_file.h"

namespace ls::supervisor {

namespace {
constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kIface = "org.freedesktop.systemd1.Manager";

// libsystemd's table; connect() loaded it before anything below runs.
const sd::Systemd& lib() {
    return *sd::systemd();
}

// "0-3,8" → the AllowedCPUs= byte mask (bit N = CPU N, little endian).
std::vector<uint8_t> cpu_mask(const std::string& list) {
    std::vector<uint8_t> mask;
    for (std::string_view piece : split(list, ',')) {
        const std::string part(piece);
        size_t dash = part.find('-');
        int a = atoi(part.c_str());
        int b = dash == std::string::npos ? a : atoi(part.c_str() + dash + 1);
        for (int c = a; c <= b && c < 8192; ++c) {
            if (mask.size() <= static_cast<size_t>(c / 8))
                mask.resize(static_cast<size_t>(c / 8) + 1, 0);
            mask[static_cast<size_t>(c / 8)] |= static_cast<uint8_t>(1u << (c % 8));
        }
    }
    return mask;
}

int on_start_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* call = static_cast<ScopeBackend::Call*>(userdata);
    std::string error;
    if (lib().sd_bus_message_is_method_error(m, nullptr)) {
        const sd_bus_error* e = lib().sd_bus_message_get_error(m);
        error = e && e->message ? e->message : "StartTransientUnit failed";
    }
    ScopeBackend::Done done = std::move(call->done); // the callback may destroy the call
    if (done) done(error);
    return 0;
}
} // namespace

ScopeBackend::Call::~Call() {
    if (slot) lib().sd_bus_slot_unref(slot);
}

std::string ScopeBackend::unit_name(const std::string& id) {
    // systemd-escape: '/' becomes '-', other unusual bytes (and '-') \xNN.
    std::string out = "llama-swap-";
    for (size_t i = 0; i < id.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(id[i]);
        if (c == '/')
            out += '-';
        else if (isalnum(c) || c == '_' || c == ':' || (c == '.' && i > 0))
            out += static_cast<char>(c);
        else {
            char buf[8];
            snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out + ".scope";
}

ScopeBackend::ScopeBackend(struct ev_loop* loop)
    : loop_(loop), io_(loop, &on_io, this), timer_(loop, &on_timer, this) {
    ev_prepare_init(&prepare_, &on_prepare);
    prepare_.data = this;
}

ScopeBackend::~ScopeBackend() {
    if (ev_is_active(&prepare_)) {
        ev_ref(loop_);
        ev_prepare_stop(loop_, &prepare_);
    }
    if (bus_) lib().sd_bus_flush_close_unref(bus_);
}

Result<void> ScopeBackend::connect(const std::string& address) {
    std::string addr = address;
    if (addr.empty()) {
        const char* runtime = getenv("XDG_RUNTIME_DIR");
        if (geteuid() == 0 && path_exists("/run/systemd/private"))
            addr = "unix:path=/run/systemd/private";
        else if (runtime && path_exists(std::string(runtime) + "/systemd/private"))
            addr = "unix:path=" + std::string(runtime) + "/systemd/private";
        else
            return make_error("no systemd manager socket found");
    }
    std::string error;
    if (!sd::systemd(&error)) return make_error("scopes need " + error);
    sd_bus* bus = nullptr;
    int r = lib().sd_bus_new(&bus);
    if (r >= 0) r = lib().sd_bus_set_address(bus, addr.c_str());
    if (r >= 0) r = lib().sd_bus_start(bus);
    if (r < 0) {
        if (bus) lib().sd_bus_unref(bus);
        return make_error("cannot connect to " + addr + ": " + strerror(-r), -r);
    }
    bus_ = bus;
    address_ = addr;
    char* unit = nullptr;
    // Bind scopes to our own unit when we are one (a dead daemon then takes its models along).
    if (lib().sd_pid_get_unit(getpid(), &unit) >= 0 && unit) {
        own_unit_ = unit;
        free(unit);
    }
    ev_prepare_start(loop_, &prepare_);
    ev_unref(loop_);
    update_watchers();
    return {};
}

void ScopeBackend::on_prepare(struct ev_loop*, ev_prepare* w, int) {
    static_cast<ScopeBackend*>(w->data)->update_watchers();
}

void ScopeBackend::update_watchers() {
    if (!bus_) return;
    const int fd = lib().sd_bus_get_fd(bus_);
    const int events = lib().sd_bus_get_events(bus_);
    int ev = 0;
    if (events & POLLIN) ev |= EV_READ;
    if (events & POLLOUT) ev |= EV_WRITE;
    if (fd >= 0) io_.set(fd, ev ? ev : EV_READ);
    uint64_t until = 0;
    if (lib().sd_bus_get_timeout(bus_, &until) >= 0 && until != UINT64_MAX) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000ull +
                             static_cast<uint64_t>(ts.tv_nsec) / 1000;
        const double after = until > now ? static_cast<double>(until - now) / 1e6 : 0;
        timer_.start(after);
    } else {
        timer_.stop();
    }
}

void ScopeBackend::on_io(struct ev_loop*, ev_io* w, int) {
    static_cast<ScopeBackend*>(w->data)->process();
}
void ScopeBackend::on_timer(struct ev_loop*, ev_timer* w, int) {
    static_cast<ScopeBackend*>(w->data)->process();
}

void ScopeBackend::process() {
    if (!bus_) return;
    for (int i = 0; i < 64; ++i) {
        int r = lib().sd_bus_process(bus_, nullptr);
        if (r < 0) {
            LOG_ERROR("systemd bus connection failed: %s; new models start without scopes",
                      strerror(-r));
            io_.stop();
            timer_.stop();
            lib().sd_bus_flush_close_unref(bus_);
            bus_ = nullptr;
            return;
        }
        if (r == 0) break;
    }
    update_watchers();
}

std::unique_ptr<ScopeBackend::Call> ScopeBackend::start_scope(const std::string& unit, pid_t pid,
                                                              const std::string& description,
                                                              const config::ResourceLimits& limits,
                                                              double stop_timeout_s, Done done) {
    auto call = std::make_unique<Call>();
    call->done = std::move(done);
    if (!bus_) {
        call->done("no connection to the service manager");
        return call;
    }
    const sd::Systemd& api = lib();
    sd_bus_message* m = nullptr;
    int r =
        api.sd_bus_message_new_method_call(bus_, &m, kDest, kPath, kIface, "StartTransientUnit");
    auto ok = [&](int rr) {
        return rr >= 0 && r >= 0 ? (r = rr, true) : (r = rr < 0 ? rr : r, false);
    };
    if (ok(r)) ok(api.sd_bus_message_append(m, "ss", unit.c_str(), "fail"));
    if (ok(r)) ok(api.sd_bus_message_open_container(m, 'a', "(sv)"));
    if (ok(r)) ok(api.sd_bus_message_append(m, "(sv)", "Description", "s", description.c_str()));
    if (ok(r))
        ok(api.sd_bus_message_append(m, "(sv)", "PIDs", "au", 1, static_cast<uint32_t>(pid)));
    if (ok(r)) ok(api.sd_bus_message_append(m, "(sv)", "Slice", "s", "llama-swap.slice"));
    if (ok(r)) ok(api.sd_bus_message_append(m, "(sv)", "CollectMode", "s", "inactive-or-failed"));
    if (ok(r))
        ok(api.sd_bus_message_append(m, "(sv)", "TimeoutStopUSec", "t",
                                     static_cast<uint64_t>(stop_timeout_s * 1e6)));
    if (limits.memory_max && ok(r))
        ok(api.sd_bus_message_append(m, "(sv)", "MemoryMax", "t", limits.memory_max));
    if (limits.memory_high && ok(r))
        ok(api.sd_bus_message_append(m, "(sv)", "MemoryHigh", "t", limits.memory_high));
    if (limits.cpu_quota_percent && ok(r))
        ok(api.sd_bus_message_append(m, "(sv)", "CPUQuotaPerSecUSec", "t",
                                     static_cast<uint64_t>(limits.cpu_quota_percent) * 10000));
    if (!limits.allowed_cpus.empty() && ok(r)) {
        const std::vector<uint8_t> mask = cpu_mask(limits.allowed_cpus);
        ok(api.sd_bus_message_open_container(m, 'r', "sv"));
        if (ok(r)) ok(api.sd_bus_message_append(m, "s", "AllowedCPUs"));
        if (ok(r)) ok(api.sd_bus_message_open_container(m, 'v', "ay"));
        if (ok(r)) ok(api.sd_bus_message_append_array(m, 'y', mask.data(), mask.size()));
        if (ok(r)) ok(api.sd_bus_message_close_container(m));
        if (ok(r)) ok(api.sd_bus_message_close_container(m));
    }
    if (limits.gpus_set && ok(r)) {
        // Closed device policy: the standard pseudo devices, the GPU control nodes, and only
        // the model's own /dev/nvidia<N>.
        ok(api.sd_bus_message_append(m, "(sv)", "DevicePolicy", "s", "closed"));
        if (ok(r)) ok(api.sd_bus_message_open_container(m, 'r', "sv"));
        if (ok(r)) ok(api.sd_bus_message_append(m, "s", "DeviceAllow"));
        if (ok(r)) ok(api.sd_bus_message_open_container(m, 'v', "a(ss)"));
        if (ok(r)) ok(api.sd_bus_message_open_container(m, 'a', "(ss)"));
        for (const char* node :
             {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"})
            if (ok(r)) ok(api.sd_bus_message_append(m, "(ss)", node, "rw"));
        for (int g : limits.gpus) {
            const std::string node = "/dev/nvidia" + std::to_string(g);
            if (ok(r)) ok(api.sd_bus_message_append(m, "(ss)", node.c_str(), "rw"));
        }
        if (ok(r)) ok(api.sd_bus_message_close_container(m));
        if (ok(r)) ok(api.sd_bus_message_close_container(m));
        if (ok(r)) ok(api.sd_bus_message_close_container(m));
    }
    if (!own_unit_.empty() && ok(r)) {
        ok(api.sd_bus_message_append(m, "(sv)", "BindsTo", "as", 1, own_unit_.c_str()));
        if (ok(r)) ok(api.sd_bus_message_append(m, "(sv)", "After", "as", 1, own_unit_.c_str()));
    }
    if (ok(r)) ok(api.sd_bus_message_close_container(m));
    if (ok(r)) ok(api.sd_bus_message_append(m, "a(sa(sv))", 0));
    if (ok(r)) ok(api.sd_bus_call_async(bus_, &call->slot, m, &on_start_reply, call.get(), 0));
    api.sd_bus_message_unref(m);
    if (r < 0) call->done(std::string("cannot ask for a scope: ") + strerror(-r));
    update_watchers();
    return call;
}

void ScopeBackend::stop_scope(const std::string& unit) {
    if (!bus_) return;
    // Floating call: nobody waits for the answer; the unit is collected when it is gone.
    lib().sd_bus_call_method_async(bus_, nullptr, kDest, kPath, kIface, "StopUnit", nullptr,
                                   nullptr, "ss", unit.c_str(), "replace");
    update_watchers();
}

} // namespace ls::supervisor

namespace ls::supervisor {

std::vector<std::string> ScopeBackend::clean_stale() {
    std::vector<std::string> cleaned;
    if (!bus_) return cleaned;
    const sd::Systemd& api = lib();
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* reply = nullptr;
    int r = api.sd_bus_call_method(bus_, kDest, kPath, kIface, "ListUnitsByPatterns", &error,
                                   &reply, "asas", 0, 1, "llama-swap-*.scope");
    api.sd_bus_error_free(&error);
    if (r < 0) return cleaned; // an old manager without it: nothing found, nothing harmed
    std::vector<std::pair<std::string, pid_t>> stale;
    r = api.sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
    while (r > 0) {
        const char *name = nullptr, *description = nullptr, *load = nullptr, *active = nullptr,
                   *sub = nullptr, *following = nullptr, *path = nullptr, *job_type = nullptr,
                   *job_path = nullptr;
        uint32_t job = 0;
        r = api.sd_bus_message_read(reply, "(ssssssouso)", &name, &description, &load, &active,
                                    &sub, &following, &path, &job, &job_type, &job_path);
        if (r <= 0) break;
        auto owner = scope_owner_pid(description ? description : "");
        if (owner && !owner_is_alive(*owner) && strcmp(active, "inactive") != 0 &&
            strcmp(active, "failed") != 0)
            stale.emplace_back(name, *owner);
    }
    api.sd_bus_message_unref(reply);
    for (const auto& [unit, owner] : stale) {
        // SIGKILL at once (its owner cannot stop it gracefully any more), then the stop
        // collects the unit, so the name is free for our own start of that model.
        api.sd_bus_call_method(bus_, kDest, kPath, kIface, "KillUnit", nullptr, nullptr, "ssi",
                               unit.c_str(), "all", SIGKILL);
        api.sd_bus_call_method(bus_, kDest, kPath, kIface, "StopUnit", nullptr, nullptr, "ss",
                               unit.c_str(), "replace");
        cleaned.push_back(unit + " (left by llama-swap pid " + std::to_string(owner) +
                          ", killed and stopped)");
    }
    update_watchers();
    return cleaned;
}

} // namespace ls::supervisor
