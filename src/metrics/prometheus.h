// Prometheus text exposition of what the daemon does: requests by model and status, tokens,
// request, first-byte and load durations (histograms), upstream failures by cause, model
// starts and swaps, and the current model states, queue depth, in-flight requests and memory;
// the build, the daemon's own process_* figures, and the performance sampler's host and GPU
// gauges under the original llama-swap's names. Updated on events, rendered on scrape.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "metrics/usage.h"
#include "perf/sample.h"
#include "router/scheduler.h"

namespace ls::metrics {

class Histogram {
public:
    static constexpr std::array<double, 15> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                       2.5,   5,    10,    30,   60,  120,  300};
    void observe(double v);
    void render(std::string& out, const char* name, const std::string& labels) const;

private:
    std::array<uint64_t, kBounds.size()> buckets_{};
    uint64_t count_ = 0;
    double sum_ = 0;
};

class MetricsRegistry {
public:
    // A proxied request ended; `outcome` as proxy::ExchangeResult::outcome.
    void on_request(std::string_view model, int status, double duration_s, const Usage& usage,
                    const char* outcome);
    // A model request the daemon answered itself before any upstream (400 bad body, 404
    // unknown model, 413): `model` is "" when the name was not one of ours (clients choose
    // names, and a label per name would grow without bound).
    void on_refused(const std::string& model, int status);
    void on_model_start(const std::string& model);
    void on_model_ready(const std::string& model, double load_s);
    void on_swap() { ++swaps_; }
    // The same request seen from the upstream's side: seconds from its arrival to the first
    // body byte of a 2xx upstream response (< 0: none), and why the upstream failed it
    // (proxy::ExchangeResult::failure; null: it did not).
    void on_upstream_result(std::string_view model, double first_byte_s, const char* failure);
    // `sample`: the performance sampler's latest (null: disabled or none yet).
    std::string render(const router::Scheduler& scheduler,
                       const perf::Sample* sample = nullptr) const;

private:
    struct StatusOutcomeLess {
        using is_transparent = void;
        template <class A, class B>
        bool operator()(const A& a, const B& b) const {
            return a.first != b.first ? a.first < b.first
                                      : std::string_view(a.second) < std::string_view(b.second);
        }
    };
    struct ModelStats {
        // (status, outcome); looked up without building a key (StatusOutcomeLess).
        std::map<std::pair<int, std::string>, uint64_t, StatusOutcomeLess> requests;
        uint64_t prompt_tokens = 0;
        uint64_t cached_tokens = 0;
        uint64_t generated_tokens = 0;
        uint64_t starts = 0;
        Histogram duration;
        Histogram first_byte;
        Histogram load;
        std::map<std::string, uint64_t> failures; // by cause
    };
    std::map<std::string, ModelStats, std::less<>> models_;
    ModelStats& stats(std::string_view model); // created on first use
    uint64_t swaps_ = 0;
};

std::string prometheus_label(const std::string& value); // escaped for a label value

// The daemon's own process (the standard process_* metrics); -1 where unknown.
struct ProcessStats {
    double cpu_seconds = -1;        // user + system
    double start_time_seconds = -1; // Unix time
    double resident_bytes = -1;
    double virtual_bytes = -1;
    double open_fds = -1;
    double max_fds = -1;
};
// Fills cpu_seconds, start_time_seconds, virtual_bytes and resident_bytes from a
// /proc/PID/stat text; false when it cannot be parsed.
bool parse_proc_stat(std::string_view stat, double ticks_per_s, double page_bytes,
                     double boot_time_s, ProcessStats& out);
ProcessStats read_process_stats(); // /proc/self
void render_process_stats(std::string& out, const ProcessStats& p);
// The sampler's host and GPU gauges, as the original llama-swap names and labels them
// (llamaswap_cpu_util_percent{core}, llamaswap_memory_*_bytes, llamaswap_load_average{interval},
// llamaswap_network_bytes_total{interface,direction}, llamaswap_gpu_*{id,name[,uuid]}); values
// the source could not tell are left out.
void render_perf(std::string& out, const perf::Sample& s);

} // namespace ls::metrics
