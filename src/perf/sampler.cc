#include "perf/sampler.h"

#include <chrono>
#include <csignal>
#include <pthread.h>
#include <cjson/cJSON.h>
#include <climits>
#include <cmath>
#include <ctime>

#include "gpu/reader.h"
#include "perf/hardware.h"
#include "perf/host.h"
#include "util/json.h"
#include "util/log.h"

namespace ls::perf {

namespace {
std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
size_t ring_capacity(double every_s) {
    double n = std::floor(3600.0 / (every_s > 0 ? every_s : 5));
    return n < 1 ? 1 : static_cast<size_t>(n);
}
} // namespace

Sampler::Sampler(struct ev_loop* loop) : loop_(loop) {
    ev_async_init(&async_, &Sampler::on_async);
    async_.data = this;
    ev_async_start(loop_, &async_);
    ev_unref(loop_); // the sampler alone never keeps the loop running
    // The worker is born with every signal blocked: the loop takes signals through signalfd
    // (blocked in its own thread), and one delivered here would take its default action.
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    worker_ = std::thread([this] { work(); });
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

Sampler::~Sampler() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    ev_ref(loop_);
    ev_async_stop(loop_, &async_);
}

void Sampler::configure(bool enabled, double every_s) {
    if (every_s < 5) every_s = 5;
    if (enabled == enabled_ && every_s == every_s_) return;
    if (!enabled || every_s != every_s_) ring_.clear();
    enabled_ = enabled;
    every_s_ = every_s;
    ring_.set_capacity(ring_capacity(every_s));
    {
        std::lock_guard<std::mutex> lk(mu_);
        want_enabled_ = enabled;
        want_every_s_ = every_s;
        ++generation_;
        changed_ = true;
    }
    cv_.notify_all();
    LOG_INFO("performance: %s", enabled ? "sampling the host and GPUs" : "disabled");
}

void Sampler::work() {
    HostReader host;
    gpu::Reader gpus;
    std::unique_lock<std::mutex> lk(mu_);
    bool hardware_done = false;
    while (!stop_) {
        if (!hardware_done) {
            lk.unlock();
            const std::int64_t t = now_ms();
            HardwareInputs in = read_hardware_inputs(t);
            std::vector<GpuProcess> procs;
            gpus.read(t, in.gpus, procs);
            in.gpu_driver = gpus.driver_version();
            for (const auto& g : in.gpus)
                in.gpu_power_limit_w.push_back(gpus.power_limit_w(g.index));
            std::string doc = perf::hardware_json(in);
            std::string note = gpus.take_note();
            lk.lock();
            pending_hardware_ = std::move(doc);
            pending_source_ = gpus.source().empty() ? "none" : gpus.source();
            if (!note.empty()) pending_notes_.push_back("GPU source: " + note);
            hardware_done = true;
            ev_async_send(loop_, &async_);
            continue;
        }
        if (!want_enabled_) {
            changed_ = false;
            cv_.wait(lk, [this] { return stop_ || changed_; });
            continue;
        }
        changed_ = false;
        const unsigned gen = generation_;
        const double every = want_every_s_;
        const auto next = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<long long>(every * 1000));
        lk.unlock();
        Sample s;
        const std::int64_t t = now_ms();
        s.sys = host.read(t);
        gpus.read(t, s.gpus, s.gpu_processes);
        std::string note = gpus.take_note();
        std::string source = gpus.source().empty() ? "none" : gpus.source();
        lk.lock();
        pending_.emplace_back(gen, std::move(s));
        if (pending_.size() > 16)
            pending_.erase(pending_.begin()); // the loop is stuck: keep it small
        if (!note.empty()) pending_notes_.push_back("GPU source: " + note);
        pending_source_ = std::move(source);
        ev_async_send(loop_, &async_);
        cv_.wait_until(lk, next, [this] { return stop_ || changed_; });
    }
}

void Sampler::on_async(struct ev_loop*, ev_async* w, int) {
    static_cast<Sampler*>(w->data)->drain();
}

void Sampler::drain() {
    std::vector<std::pair<unsigned, Sample>> samples;
    std::vector<std::string> notes;
    std::string hardware, source;
    unsigned gen;
    {
        std::lock_guard<std::mutex> lk(mu_);
        samples.swap(pending_);
        notes.swap(pending_notes_);
        hardware.swap(pending_hardware_);
        source.swap(pending_source_);
        gen = generation_;
    }
    for (const auto& n : notes) LOG_DEBUG("performance: %s", n.c_str());
    if (!hardware.empty()) hardware_ = std::move(hardware);
    if (!source.empty()) {
        std::string shown = source == "none" ? "" : source;
        if (!source_known_ || shown != gpu_source_)
            LOG_INFO("performance: GPUs read through %s",
                     shown.empty() ? "nothing (no NVML, nvidia-smi or amdgpu sysfs)"
                                   : shown.c_str());
        gpu_source_ = std::move(shown);
        source_known_ = true;
    }
    if (!enabled_) return;
    for (auto& [g, s] : samples)
        if (g == gen) ring_.push(std::move(s));
}

namespace {
double known(double v) {
    return v < 0 ? 0 : v;
}
double mb(std::uint64_t bytes) {
    return static_cast<double>(bytes >> 20);
}
} // namespace

std::string Sampler::performance_json(std::int64_t after_ms) const {
    JsonPtr root(cJSON_CreateObject());
    cJSON_AddBoolToObject(root.get(), "enabled", true);
    cJSON* sys = cJSON_AddArrayToObject(root.get(), "sys_stats");
    cJSON* gpu = cJSON_AddArrayToObject(root.get(), "gpu_stats");
    for (size_t i = 0; i < ring_.size(); ++i) {
        const Sample& s = ring_.at(i);
        if (s.sys.unix_ms > after_ms) {
            cJSON* o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "timestamp", format_rfc3339_ms(s.sys.unix_ms).c_str());
            cJSON* cores = cJSON_AddArrayToObject(o, "cpu_util_per_core");
            for (double c : s.sys.cpu_util_per_core)
                cJSON_AddItemToArray(cores, cJSON_CreateNumber(c));
            cJSON_AddNumberToObject(o, "mem_total_mb", mb(s.sys.mem_total_bytes));
            cJSON_AddNumberToObject(o, "mem_used_mb", mb(s.sys.mem_used_bytes));
            cJSON_AddNumberToObject(o, "mem_free_mb", mb(s.sys.mem_free_bytes));
            cJSON_AddNumberToObject(o, "swap_total_mb", mb(s.sys.swap_total_bytes));
            cJSON_AddNumberToObject(o, "swap_used_mb", mb(s.sys.swap_used_bytes));
            cJSON_AddNumberToObject(o, "load_avg_1", s.sys.load_avg_1);
            cJSON_AddNumberToObject(o, "load_avg_5", s.sys.load_avg_5);
            cJSON_AddNumberToObject(o, "load_avg_15", s.sys.load_avg_15);
            cJSON* net = cJSON_AddArrayToObject(o, "net_io");
            for (const auto& n : s.sys.net_io) {
                cJSON* x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "name", n.name.c_str());
                cJSON_AddNumberToObject(x, "bytes_recv", static_cast<double>(n.bytes_recv));
                cJSON_AddNumberToObject(x, "bytes_sent", static_cast<double>(n.bytes_sent));
                cJSON_AddItemToArray(net, x);
            }
            cJSON_AddItemToArray(sys, o);
        }
        for (const auto& g : s.gpus) {
            if (g.unix_ms <= after_ms) continue;
            cJSON* o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "timestamp", format_rfc3339_ms(g.unix_ms).c_str());
            cJSON_AddNumberToObject(o, "id", g.index);
            cJSON_AddStringToObject(o, "name", g.name.c_str());
            cJSON_AddStringToObject(o, "uuid", g.uuid.c_str());
            cJSON_AddNumberToObject(o, "temp_c", known(g.temp_c));
            cJSON_AddNumberToObject(o, "vram_temp_c", known(g.vram_temp_c));
            cJSON_AddNumberToObject(o, "gpu_util_pct", known(g.gpu_util_pct));
            cJSON_AddNumberToObject(o, "mem_util_pct", known(g.mem_util_pct));
            cJSON_AddNumberToObject(o, "mem_used_mb", mb(g.mem_used_bytes));
            cJSON_AddNumberToObject(o, "mem_total_mb", mb(g.mem_total_bytes));
            cJSON_AddNumberToObject(o, "fan_speed_pct", known(g.fan_speed_pct));
            cJSON_AddNumberToObject(o, "power_draw_w", known(g.power_draw_w));
            cJSON_AddStringToObject(o, "source", g.source.c_str());
            cJSON_AddItemToArray(gpu, o);
        }
    }
    return json_print(root.get()).value_or("{}") + "\n";
}

bool parse_rfc3339_ms(std::string_view t, std::int64_t& out) {
    auto digits = [&](size_t at, size_t n, int& v) {
        if (at + n > t.size()) return false;
        v = 0;
        for (size_t i = at; i < at + n; ++i) {
            if (t[i] < '0' || t[i] > '9') return false;
            v = v * 10 + (t[i] - '0');
        }
        return true;
    };
    int Y, M, D, h, m, s;
    if (!digits(0, 4, Y) || t.size() < 20 || t[4] != '-' || !digits(5, 2, M) || t[7] != '-' ||
        !digits(8, 2, D) || (t[10] != 'T' && t[10] != 't') || !digits(11, 2, h) || t[13] != ':' ||
        !digits(14, 2, m) || t[16] != ':' || !digits(17, 2, s))
        return false;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return false;
    size_t i = 19;
    std::int64_t frac_ms = 0;
    if (i < t.size() && t[i] == '.') {
        ++i;
        size_t start = i;
        int scale = 100;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
            frac_ms += (t[i] - '0') * scale;
            scale /= 10;
            ++i;
        }
        if (i == start) return false;
    }
    std::int64_t offset_s = 0;
    if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
        ++i;
    } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
        int oh, om;
        if (!digits(i + 1, 2, oh) || i + 3 >= t.size() || t[i + 3] != ':' || !digits(i + 4, 2, om))
            return false;
        offset_s = (oh * 3600 + om * 60) * (t[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return false;
    }
    if (i != t.size()) return false;
    struct tm tm {};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s;
    const std::int64_t secs = static_cast<std::int64_t>(timegm(&tm)) - offset_s;
    out = secs * 1000 + frac_ms;
    return true;
}

std::string format_rfc3339_ms(std::int64_t unix_ms) {
    time_t t = static_cast<time_t>(unix_ms / 1000);
    struct tm tm {};
    gmtime_r(&t, &tm);
    char buf[48];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             static_cast<int>(unix_ms % 1000));
    return buf;
}

} // namespace ls::perf
