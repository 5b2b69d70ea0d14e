#include "metrics/prometheus.h"

#include <cstdio>

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

void sample(std::string& out, const char* name, const std::string& labels, double value) {
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
        sample(out, bucket.c_str(), labels + ",le=\"" + le + "\"",
               static_cast<double>(buckets_[i]));
    }
    sample(out, bucket.c_str(), labels + ",le=\"+Inf\"", static_cast<double>(count_));
    sample(out, (std::string(name) + "_sum").c_str(), labels, sum_);
    sample(out, (std::string(name) + "_count").c_str(), labels, static_cast<double>(count_));
}

void MetricsRegistry::on_request(const std::string& model, int status, double duration_s,
                                 const Usage& usage, const char* outcome) {
    ModelStats& m = models_[model];
    ++m.requests[{status, outcome}];
    if (usage.prompt_tokens > 0) m.prompt_tokens += static_cast<uint64_t>(usage.prompt_tokens);
    if (usage.cached_tokens > 0) m.cached_tokens += static_cast<uint64_t>(usage.cached_tokens);
    if (usage.generated_tokens > 0)
        m.generated_tokens += static_cast<uint64_t>(usage.generated_tokens);
    m.duration.observe(duration_s);
}

void MetricsRegistry::on_refused(const std::string& model, int status) {
    ++models_[model].requests[{status, "refused"}];
}

void MetricsRegistry::on_model_start(const std::string& model) {
    ++models_[model].starts;
}

void MetricsRegistry::on_model_ready(const std::string& model, double load_s) {
    models_[model].load.observe(load_s);
}

std::string MetricsRegistry::render(const router::Scheduler& scheduler) const {
    std::string out;
    out.reserve(4096);
    header(out, "llamaswap_requests_total", "counter",
           "Model requests by model, HTTP status (0: client left first) and outcome: completed, "
           "upstream_failed (cut mid-response), client_closed, refused (answered by llama-swap "
           "itself; model \"\" when the name is not one of ours).");
    for (const auto& [model, m] : models_)
        for (const auto& [key, n] : m.requests)
            sample(out, "llamaswap_requests_total",
                   model_label(model) + ",status=\"" + std::to_string(key.first) + "\",outcome=\"" +
                       key.second + "\"",
                   static_cast<double>(n));
    header(out, "llamaswap_prompt_tokens_total", "counter",
           "Prompt tokens the clients were charged (usage.prompt_tokens), cached ones included.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample(out, "llamaswap_prompt_tokens_total", model_label(model),
                   static_cast<double>(m.prompt_tokens));
    header(out, "llamaswap_cached_prompt_tokens_total", "counter",
           "Prompt tokens served from the upstream's prompt cache (timings.cache_n, "
           "prompt_tokens_details.cached_tokens).");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample(out, "llamaswap_cached_prompt_tokens_total", model_label(model),
                   static_cast<double>(m.cached_tokens));
    header(out, "llamaswap_generated_tokens_total", "counter",
           "Generated tokens reported by the upstreams.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample(out, "llamaswap_generated_tokens_total", model_label(model),
                   static_cast<double>(m.generated_tokens));
    header(out, "llamaswap_request_duration_seconds", "histogram",
           "Whole proxied requests, queueing and model load included.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            m.duration.render(out, "llamaswap_request_duration_seconds", model_label(model));
    header(out, "llamaswap_model_load_duration_seconds", "histogram",
           "From a model's start to its readiness.");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            m.load.render(out, "llamaswap_model_load_duration_seconds", model_label(model));
    header(out, "llamaswap_model_starts_total", "counter",
           "Upstream processes started (restarts included).");
    for (const auto& [model, m] : models_)
        if (!model.empty())
            sample(out, "llamaswap_model_starts_total", model_label(model),
                   static_cast<double>(m.starts));
    header(out, "llamaswap_swaps_total", "counter", "Models stopped to make room for another one.");
    sample(out, "llamaswap_swaps_total", "", static_cast<double>(swaps_));

    header(out, "llamaswap_model_state", "gauge", "1 for the state each model is in.");
    static constexpr supervisor::ProcessState kStates[] = {
        supervisor::ProcessState::Stopped, supervisor::ProcessState::Starting,
        supervisor::ProcessState::Ready, supervisor::ProcessState::Stopping,
        supervisor::ProcessState::Failed};
    const auto views = scheduler.models();
    for (const auto& v : views)
        for (auto st : kStates)
            sample(out, "llamaswap_model_state",
                   model_label(v.process->id()) + ",state=\"" + supervisor::to_string(st) + "\"",
                   v.process->state() == st ? 1 : 0);
    header(out, "llamaswap_inflight_requests", "gauge", "Requests being served, by model.");
    for (const auto& v : views)
        sample(out, "llamaswap_inflight_requests", model_label(v.process->id()), v.in_flight);
    header(out, "llamaswap_queued_requests", "gauge",
           "Requests waiting for their model, by model.");
    for (const auto& v : views)
        sample(out, "llamaswap_queued_requests", model_label(v.process->id()), v.queued);
    header(out, "llamaswap_queue_depth", "gauge", "Requests waiting for any model.");
    sample(out, "llamaswap_queue_depth", "", static_cast<double>(scheduler.queue_length()));
    header(out, "llamaswap_model_memory_bytes", "gauge",
           "Memory of a running model's cgroup or scope.");
    for (const auto& v : views) {
        const uint64_t mem = v.process->memory_current();
        if (mem > 0)
            sample(out, "llamaswap_model_memory_bytes", model_label(v.process->id()),
                   static_cast<double>(mem));
    }
    return out;
}

} // namespace ls::metrics
