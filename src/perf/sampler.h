// The performance sampler (`performance` in the config): every `performance.every` (at least
// 5 s) a worker thread reads the host (/proc) and the GPUs (gpu::Reader: NVML, nvidia-smi or
// sysfs) and hands the sample to the event loop through ev_async; the loop keeps an hour of
// them in a ring (3600 / every samples). The thread also detects the hardware once at start
// (GET /api/hardware), even when performance is disabled. Nothing here blocks the loop.
// See perf/sample.h for what a sample holds and how other modules read the latest one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <ev.h>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "perf/ring.h"
#include "perf/sample.h"

namespace ls::perf {

class Sampler {
public:
    explicit Sampler(struct ev_loop* loop);
    ~Sampler(); // stops the worker (waits for a reading in progress)
    Sampler(const Sampler&) = delete;
    Sampler& operator=(const Sampler&) = delete;

    // At start and after each reload: starts, stops or re-times the sampling. A changed
    // interval empties the ring (its samples would not fit the new spacing).
    void configure(bool enabled, double every_s);

    bool enabled() const { return enabled_; }
    double every_s() const { return every_s_; }
    // The newest sample, or nullptr while disabled or before the first one (loop thread only).
    const Sample* latest() const { return enabled_ ? ring_.newest() : nullptr; }
    const Ring<Sample>& ring() const { return ring_; }
    // "nvml", "nvidia-smi", "sysfs" or "" (none, or not known yet).
    const std::string& gpu_source() const { return gpu_source_; }

    // GET /api/performance: {"enabled":true,"sys_stats":[…],"gpu_stats":[…]} with the samples
    // taken strictly after `after_ms` (Unix ms; INT64_MIN for all).
    std::string performance_json(std::int64_t after_ms) const;
    // GET /api/hardware: the document, or "" until the worker has detected it.
    const std::string& hardware_json() const { return hardware_; }

private:
    static void on_async(struct ev_loop*, ev_async*, int);
    void work();
    void drain();

    struct ev_loop* loop_;
    ev_async async_{};
    Ring<Sample> ring_;
    bool enabled_ = false;
    double every_s_ = 5;
    std::string hardware_;
    std::string gpu_source_;
    bool source_known_ = false;

    // Shared with the worker, under mu_.
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool want_enabled_ = false;
    double want_every_s_ = 5;
    unsigned generation_ = 0; // bumped by configure(): samples of an older one are dropped
    bool changed_ = false;
    std::vector<std::pair<unsigned, Sample>> pending_;
    std::string pending_hardware_;
    std::vector<std::string> pending_notes_;
    std::string pending_source_;
    std::thread worker_;
};

// RFC 3339 ("2026-01-02T03:04:05Z", fractions and ±hh:mm offsets too) to Unix ms; false if not.
bool parse_rfc3339_ms(std::string_view text, std::int64_t& out);
// Unix ms to RFC 3339 in UTC with milliseconds ("2026-01-02T03:04:05.678Z").
std::string format_rfc3339_ms(std::int64_t unix_ms);

} // namespace ls::perf
