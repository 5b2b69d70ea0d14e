// Prometheus text exposition of what the daemon does: requests by model and status, tokens,
// request and load durations (histograms), model starts and swaps, and the current model
// states, queue depth, in-flight requests and memory. Updated on events, rendered on scrape.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "metrics/usage.h"
#include "router/scheduler.h"

namespace ls::metrics {

class Histogram {
public:
    static constexpr std::array<double, 12> kBounds = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                       5,    10,  30,   60,  120, 300};
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
    void on_request(const std::string& model, int status, double duration_s, const Usage& usage,
                    const char* outcome);
    // A model request the daemon answered itself before any upstream (400 bad body, 404
    // unknown model, 413): `model` is "" when the name was not one of ours (clients choose
    // names, and a label per name would grow without bound).
    void on_refused(const std::string& model, int status);
    void on_model_start(const std::string& model);
    void on_model_ready(const std::string& model, double load_s);
    void on_swap() { ++swaps_; }
    std::string render(const router::Scheduler& scheduler) const;

private:
    struct ModelStats {
        std::map<std::pair<int, std::string>, uint64_t> requests; // (status, outcome)
        uint64_t prompt_tokens = 0;
        uint64_t cached_tokens = 0;
        uint64_t generated_tokens = 0;
        uint64_t starts = 0;
        Histogram duration;
        Histogram load;
    };
    std::map<std::string, ModelStats> models_;
    uint64_t swaps_ = 0;
};

std::string prometheus_label(const std::string& value); // escaped for a label value

} // namespace ls::metrics
