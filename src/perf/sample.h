// One host sample of the performance sampler (the `performance` config key): CPU, memory, load,
// network and the GPUs, taken every `performance.every` on a worker thread and kept for an hour in
// a ring.
//
// How to read it (the /metrics exporter, /api/performance, /running):
//   Daemon owns one ls::perf::Sampler (src/perf/sampler.h) as its member `perf_` (never null).
//   `const ls::perf::Sample* ls::perf::Sampler::latest() const` is the newest sample, or nullptr
//   while performance is disabled or before the first sample arrives. Call it on the event loop
//   thread only: samples are handed to the loop through ev_async and the ring is touched there, so
//   no locking is needed. The pointer is valid until control returns to the loop (the next sample
//   may replace it). `bool ls::perf::Sampler::enabled() const` says whether the sampler runs (503
//   on /api/performance if not).
//
// Units are SI bytes, percent (0-100), degrees Celsius and watts. A value the source cannot tell is
// -1 (temperatures, fan, power) or 0 (byte counts), so an exporter can skip what is unknown.
#pragma once

#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ls::perf {

struct NetIo {
    std::string name; // interface, "lo" left out
    std::uint64_t bytes_recv = 0;
    std::uint64_t bytes_sent = 0;
};

struct SysSample {
    std::int64_t unix_ms = 0;              // wall clock of the sample
    std::vector<double> cpu_util_per_core; // 0-100 since the previous sample, one per cpuN
    double cpu_util_pct = 0;               // 0-100, all cores together
    std::uint64_t mem_total_bytes = 0;     // MemTotal
    std::uint64_t mem_used_bytes = 0;      // MemTotal - MemAvailable
    std::uint64_t mem_free_bytes = 0;      // MemFree
    std::uint64_t swap_total_bytes = 0;
    std::uint64_t swap_used_bytes = 0;
    double load_avg_1 = 0, load_avg_5 = 0, load_avg_15 = 0;
    std::vector<NetIo> net_io;
};

struct GpuSample {
    std::int64_t unix_ms = 0;
    int index = 0;      // the source's device index
    std::string name;   // e.g. "NVIDIA H200"
    std::string uuid;   // "" when the source has none (sysfs)
    std::string source; // "nvml", "nvidia-smi" or "sysfs"
    int temp_c = -1;
    int vram_temp_c = -1;
    double gpu_util_pct = -1;
    double mem_util_pct = 0; // used / total * 100
    std::uint64_t mem_used_bytes = 0;
    std::uint64_t mem_total_bytes = 0;
    double fan_speed_pct = -1;
    double power_draw_w = -1;
};

// A process using GPU memory (NVML's compute process list; the other sources give none).
struct GpuProcess {
    pid_t pid = 0;
    int gpu_index = 0;
    std::uint64_t used_bytes = 0;
    // Who owns it (read by the sampler's thread): its process group and its cgroup paths as
    // /proc/PID/cgroup lists them; gpu::memory_of() (src/gpu/owner.h) matches them to a model.
    pid_t pgid = 0;
    std::vector<std::string> cgroups;
};

struct Sample {
    SysSample sys;
    std::vector<GpuSample> gpus; // empty when no GPU source works
    std::vector<GpuProcess> gpu_processes;
};

} // namespace ls::perf
