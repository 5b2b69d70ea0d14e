#include "metrics/prometheus.h"
#include "util/splice_pipe.h"

#include <cstdio>
#include <dirent.h>
#include <ev.h>
#include <openssl/crypto.h>
#include <sys/resource.h>
#include <unistd.h>

#include "build_config.h"
#include "gpu/owner.h"
#include "util/text_file.h"

#ifndef LS_COMMIT // older build directories
#define LS_COMMIT "unknown"
#endif
#ifndef LS_BUILD_DATE
#define LS_BUILD_DATE "unknown"
#endif

namespace ls::metrics {

std::string prometheus_label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

namespace {
void header(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample_line(std::string& out, const char* name, const std::string& labels, double value) {
    char buf[64];
    snprintf(buf, sizeof buf, " %.17g\n", value);
    out += name;
    if (!labels.empty()) out += "{" + labels + "}";
    out += buf;
}

std::string model_label(const std::string& model) {
    return "model=\"" + prometheus_label(model) + "\"";
}
} // namespace

void Histogram::observe(double v) {
    for (size_t i = 0; i < kBounds.size(); ++i)
        if (v <= kBounds[i]) ++buckets_[i];
    ++count_;
    sum_ += v;
}

void Histogram::render(std::string& out, const char* name, const std::string& labels) const {
    const std::string bucket = std::string(name) + "_bucket";
    for (size_t i = 0; i < kBounds.size(); ++i) {
        char le[32];
        snprintf(le, sizeof le, "%g", kBounds[i]);
        sample_line(out, bucket.c_str(), labels + ",le=\"" + le + "\"",
                    static_cast<double>(buckets_[i]));
    }
    sample_line(out, bucket.c_str(), labels + ",le=\"+Inf\"", static_cast<double>(count_));
    sample_line(out, (std::string(name) + "_sum").c_str(), labels, sum_);
    sample_line(out, (std::string(name) + "_count").c_str(), labels, static_cast<double>(count_));
}

MetricsRegistry::ModelStats& MetricsRegistry::stats(std::string_view model) {
    if (auto it = models_.find(model); it != models_.end()) return it->second;
    return models_.try_emplace(std::string(model)).first->second;
}

void MetricsRegistry::on_request(std::string_view model, int status, double duration_s,
                                 const Usage& usage, const char* outcome) {
    ModelStats& m = stats(model);
    const std::pair<int, std::string_view> key{status, outcome};
    if (auto it = m.requests.find(key); it != m.requests.end())
        ++it->second;
    else
        m.requests.try_emplace({status, std::string(outcome)}, 1);
    if (usage.prompt_tokens > 0) m.prompt_tokens += static_cast<uint64_t>(usage.prompt_tokens);
    if (usage.cached_tokens > 0) m.cached_tokens += static_cast<uint64_t>(usage.cached_tokens);
    if (usage.generated_tokens > 0)
        m.generated_tokens += static_cast<uint64_t>(usage.generated_tokens);
    m.duration.observe(duration_s);
}

void MetricsRegistry::on_refused(const std::string& model, int status) {
    ++models_[model].requests[{status, "refused"}];
}

void MetricsRegistry::on_upstream_result(std::string_view model, double first_byte_s,
                                         const char* failure) {
    if (first_byte_s < 0 && !failure) return;
    ModelStats& m = stats(model);
    if (first_byte_s >= 0) m.first_byte.observe(first_byte_s);
    if (failure) ++m.failures[failure];
}

void MetricsRegistry::on_model_start(const std::string& model) {
    ++models_[model].starts;
}

void MetricsRegistry::on_model_ready(const std::string& model, double load_s) {
    models_[model].load.observe(load_s);
}

std::string MetricsRegistry::render(const router::Scheduler& scheduler,
                                    const perf::Sample* sample) const {
    std::string out;
    out.reserve(8192);
    header(out, "llamaswap_build_info", "gauge",
           "1, labelled with the version, commit and build date of this llama-swap and the "
           "versions of its libraries.");
    sample_line(out, "llamaswap_build_info",
                "version=\"" + prometheus_label(LS_VERSION) + "\",commit=\"" +
                    prometheus_label(LS_COMMIT) + "\",build_date=\"" +
                    prometheus_label(LS_BUILD_DATE) + "\",libev=\"" +
                    std::to_string(ev_version_major()) + "." + std::to_string(ev_version_minor()) +
                    "\",openssl=\"" + prometheus_label(OPENSSL_VERSION_TEXT) + "\"",
                1);
    render_process_stats(out, read_process_stats());
    header(out, "llamaswap_requests_total", "counter",
           "Model requests by model, HTTP status (0: client left first) and outcome: completed, "
           "upstream_failed (cut mid-response), client_closed, refused (answered by llama-swap "
           "itself; model \"\" when the name is not one of ours).");
    for (const auto& [model, m] : models_)
        for (const auto& [key, n] : m.requests)
            sample_line(out, "llamaswap_requests_total",
                        model_label(model) + ",status=\"" + std::to_string(key.first) +
                            "\",outcome=\"" + key.second + "\"",
                        static_cast<double>(n));
    header(out, "llamaswap_prompt_tokens_total", "counter",
           "Prompt tokens the clients were charged (usage.prompt_tokens), cached ones included.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample_line(out, "llamaswap_prompt_tokens_total", model_label(model),
                        static_cast<double>(m.prompt_tokens));
    header(out, "llamaswap_cached_prompt_tokens_total", "counter",
           "Prompt tokens served from the upstream's prompt cache (timings.cache_n, "
           "prompt_tokens_details.cached_tokens).");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample_line(out, "llamaswap_cached_prompt_tokens_total", model_label(model),
                        static_cast<double>(m.cached_tokens));
    header(out, "llamaswap_generated_tokens_total", "counter",
           "Generated tokens reported by the upstreams.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample_line(out, "llamaswap_generated_tokens_total", model_label(model),
                        static_cast<double>(m.generated_tokens));
    header(out, "llamaswap_request_duration_seconds", "histogram",
           "Whole proxied requests, queueing and model load included.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            m.duration.render(out, "llamaswap_request_duration_seconds", model_label(model));
    header(out, "llamaswap_time_to_first_token_seconds", "histogram",
           "From a request's arrival to the first body byte of the upstream's 2xx response "
           "reaching the client: queueing and model load included.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            m.first_byte.render(out, "llamaswap_time_to_first_token_seconds", model_label(model));
    header(out, "llamaswap_upstream_failures_total", "counter",
           "Requests the upstream side failed, by cause: start_failed (the model did not "
           "start), resolve_failed (a peer's name), connect_failed, connect_timeout, tls_failed, "
           "send_failed, response_timeout (no response head in time), no_response (closed "
           "before a response head), bad_response (malformed head), cut_mid_stream (the "
           "response began and broke off).");
    for (const auto& [model, m] : models_)
        for (const auto& [cause, n] : m.failures)
            sample_line(out, "llamaswap_upstream_failures_total",
                        model_label(model) + ",cause=\"" + cause + "\"", static_cast<double>(n));
    header(out, "llamaswap_model_load_duration_seconds", "histogram",
           "From a model's start to its readiness.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            m.load.render(out, "llamaswap_model_load_duration_seconds", model_label(model));
    header(out, "llamaswap_model_starts_total", "counter",
           "Upstream processes started (restarts included).");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample_line(out, "llamaswap_model_starts_total", model_label(model),
                        static_cast<double>(m.starts));
    header(out, "llamaswap_swaps_total", "counter", "Models stopped to make room for another one.");
    sample_line(out, "llamaswap_swaps_total", "", static_cast<double>(swaps_));
    header(out, "llamaswap_spliced_bytes_total", "counter",
           "Response and request body bytes moved by splice(2) (to a socket, or into the request "
           "spool), never copied through the daemon.");
    sample_line(out, "llamaswap_spliced_bytes_total", "",
                static_cast<double>(SplicePipe::spliced_total));

    header(out, "llamaswap_model_state", "gauge", "1 for the state each model is in.");
    static constexpr supervisor::ProcessState kStates[] = {
        supervisor::ProcessState::Stopped, supervisor::ProcessState::Starting,
        supervisor::ProcessState::Ready, supervisor::ProcessState::Stopping,
        supervisor::ProcessState::Failed};
    const auto views = scheduler.models();
    for (const auto& v : views)
        for (auto st : kStates)
            sample_line(out, "llamaswap_model_state",
                        model_label(v.process->id()) + ",state=\"" + supervisor::to_string(st) +
                            "\"",
                        v.process->state() == st ? 1 : 0);
    header(out, "llamaswap_inflight_requests", "gauge", "Requests being served, by model.");
    for (const auto& v : views)
        sample_line(out, "llamaswap_inflight_requests", model_label(v.process->id()), v.in_flight);
    header(out, "llamaswap_queued_requests", "gauge",
           "Requests waiting for their model, by model.");
    for (const auto& v : views)
        sample_line(out, "llamaswap_queued_requests", model_label(v.process->id()), v.queued);
    header(out, "llamaswap_queue_depth", "gauge", "Requests waiting for any model.");
    sample_line(out, "llamaswap_queue_depth", "", static_cast<double>(scheduler.queue_length()));
    header(out, "llamaswap_model_memory_bytes", "gauge",
           "Memory of a running model's cgroup or scope.");
    for (const auto& v : views) {
        const uint64_t mem = v.process->memory_current();
        if (mem > 0)
            sample_line(out, "llamaswap_model_memory_bytes", model_label(v.process->id()),
                        static_cast<double>(mem));
    }
    if (sample) {
        header(out, "llamaswap_model_gpu_memory_bytes", "gauge",
               "GPU memory of a running model's processes (NVML's process list), all GPUs "
               "together.");
        for (const auto& v : views) {
            if (v.process->pid() <= 0) continue;
            bool found = false;
            const uint64_t bytes =
                gpu::memory_of(*sample, v.process->pid(), v.process->cgroup_dirs(), &found);
            if (found)
                sample_line(out, "llamaswap_model_gpu_memory_bytes", model_label(v.process->id()),
                            static_cast<double>(bytes));
        }
        render_perf(out, *sample);
    }
    return out;
}

// ------------------------------------------------------------------ process_*

bool parse_proc_stat(std::string_view stat, double ticks_per_s, double page_bytes,
                     double boot_time_s, ProcessStats& out) {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; after it, field 3
    // (state) on: utime is field 14, stime 15, starttime 22, vsize 23, rss 24 (pages).
    const size_t close = stat.rfind(')');
    if (close == std::string_view::npos || ticks_per_s <= 0) return false;
    std::vector<std::string_view> f = split(stat.substr(close + 1), ' ');
    if (f.size() < 22) return false;
    auto num = [&f](size_t field) { // 1-based field number of the whole line
        const std::string text(f[field - 3]);
        char* end = nullptr;
        const double v = strtod(text.c_str(), &end);
        return end != text.c_str() ? v : -1.0;
    };
    const double utime = num(14), stime = num(15), start = num(22);
    if (utime < 0 || stime < 0 || start < 0) return false;
    out.cpu_seconds = (utime + stime) / ticks_per_s;
    out.start_time_seconds = boot_time_s > 0 ? boot_time_s + start / ticks_per_s : -1;
    out.virtual_bytes = num(23);
    const double rss = num(24);
    out.resident_bytes = rss >= 0 ? rss * page_bytes : -1;
    return true;
}

ProcessStats read_process_stats() {
    ProcessStats p;
    static const double boot_time =
        static_cast<double>(keyed_number(read_text_file("/proc/stat", 1 << 20), "btime"));
    parse_proc_stat(read_text_file("/proc/self/stat"), static_cast<double>(sysconf(_SC_CLK_TCK)),
                    static_cast<double>(sysconf(_SC_PAGESIZE)), boot_time, p);
    if (DIR* d = opendir("/proc/self/fd")) {
        int n = 0;
        while (const dirent* e = readdir(d))
            if (e->d_name[0] != '.') ++n;
        closedir(d);
        p.open_fds = n - 1; // not the directory's own
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        p.max_fds = static_cast<double>(rl.rlim_cur);
    return p;
}

void render_process_stats(std::string& out, const ProcessStats& p) {
    struct Item {
        const char* name;
        const char* type;
        const char* help;
        double value;
    };
    const Item items[] = {
        {"process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
         p.cpu_seconds},
        {"process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.", p.start_time_seconds},
        {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
         p.resident_bytes},
        {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", p.virtual_bytes},
        {"process_open_fds", "gauge", "Number of open file descriptors.", p.open_fds},
        {"process_max_fds", "gauge", "Maximum number of open file descriptors.", p.max_fds},
    };
    for (const Item& i : items) {
        if (i.value < 0) continue;
        header(out, i.name, i.type, i.help);
        sample_line(out, i.name, "", i.value);
    }
}

// ------------------------------------------------------------------ host and GPU gauges

void render_perf(std::string& out, const perf::Sample& s) {
    const perf::SysSample& h = s.sys;
    header(out, "llamaswap_cpu_util_percent", "gauge", "CPU utilization per core (0-100)");
    for (size_t i = 0; i < h.cpu_util_per_core.size(); ++i)
        sample_line(out, "llamaswap_cpu_util_percent", "core=\"" + std::to_string(i) + "\"",
                    h.cpu_util_per_core[i]);
    struct Bytes {
        const char* name;
        const char* help;
        uint64_t value;
    };
    const Bytes bytes[] = {
        {"llamaswap_memory_total_bytes", "Total memory in bytes", h.mem_total_bytes},
        {"llamaswap_memory_used_bytes", "Used memory in bytes", h.mem_used_bytes},
        {"llamaswap_memory_free_bytes", "Free memory in bytes", h.mem_free_bytes},
        {"llamaswap_swap_total_bytes", "Total swap in bytes", h.swap_total_bytes},
        {"llamaswap_swap_used_bytes", "Used swap in bytes", h.swap_used_bytes},
    };
    for (const Bytes& b : bytes) {
        header(out, b.name, "gauge", b.help);
        sample_line(out, b.name, "", static_cast<double>(b.value));
    }
    header(out, "llamaswap_load_average", "gauge", "Load average");
    sample_line(out, "llamaswap_load_average", "interval=\"1m\"", h.load_avg_1);
    sample_line(out, "llamaswap_load_average", "interval=\"5m\"", h.load_avg_5);
    sample_line(out, "llamaswap_load_average", "interval=\"15m\"", h.load_avg_15);
    header(out, "llamaswap_network_bytes_total", "counter", "Total network bytes transferred");
    for (const perf::NetIo& n : h.net_io) {
        const std::string iface = "interface=\"" + prometheus_label(n.name) + "\"";
        sample_line(out, "llamaswap_network_bytes_total", iface + ",direction=\"recv\"",
                    static_cast<double>(n.bytes_recv));
        sample_line(out, "llamaswap_network_bytes_total", iface + ",direction=\"sent\"",
                    static_cast<double>(n.bytes_sent));
    }

    // GPUs: the families are declared whenever the sampler runs, with a series per GPU where
    // the source told the value (unknown ones are -1, or 0 bytes of a total of 0).
    struct Gauge {
        const char* name;
        const char* help;
        double (*value)(const perf::GpuSample&);
    };
    static constexpr Gauge gauges[] = {
        {"llamaswap_gpu_temperature_celsius", "GPU temperature in Celsius",
         [](const perf::GpuSample& g) { return static_cast<double>(g.temp_c); }},
        {"llamaswap_gpu_vram_temperature_celsius", "GPU VRAM temperature in Celsius",
         [](const perf::GpuSample& g) { return static_cast<double>(g.vram_temp_c); }},
        {"llamaswap_gpu_util_percent", "GPU utilization percent (0-100)",
         [](const perf::GpuSample& g) { return g.gpu_util_pct; }},
        {"llamaswap_gpu_memory_util_percent", "GPU memory utilization percent (0-100)",
         [](const perf::GpuSample& g) { return g.mem_total_bytes ? g.mem_util_pct : -1.0; }},
        {"llamaswap_gpu_memory_used_bytes", "GPU memory used in bytes",
         [](const perf::GpuSample& g) {
             return g.mem_total_bytes ? static_cast<double>(g.mem_used_bytes) : -1.0;
         }},
        {"llamaswap_gpu_memory_total_bytes", "GPU memory total in bytes",
         [](const perf::GpuSample& g) {
             return g.mem_total_bytes ? static_cast<double>(g.mem_total_bytes) : -1.0;
         }},
        {"llamaswap_gpu_fan_speed_percent", "GPU fan speed percent (0-100)",
         [](const perf::GpuSample& g) { return g.fan_speed_pct; }},
        {"llamaswap_gpu_power_draw_watts", "GPU power draw in watts",
         [](const perf::GpuSample& g) { return g.power_draw_w; }},
    };
    for (const Gauge& m : gauges) {
        header(out, m.name, "gauge", m.help);
        for (const perf::GpuSample& g : s.gpus) {
            const double v = m.value(g);
            if (v < 0) continue;
            std::string labels =
                "id=\"" + std::to_string(g.index) + "\",name=\"" + prometheus_label(g.name) + "\"";
            if (!g.uuid.empty()) labels += ",uuid=\"" + prometheus_label(g.uuid) + "\"";
            sample_line(out, m.name, labels, v);
        }
    }
}

} // namespace ls::metrics
