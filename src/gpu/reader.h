// The GPU source of the performance sampler: NVML when libnvidia-ml.so.1 loads, else
// nvidia-smi, else amdgpu's sysfs files. The source is chosen at the first reading and kept;
// one that stops answering is dropped and the choice made again at the next reading.
// Blocking: used on the sampler's thread only, never on the event loop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gpu/nvml.h"
#include "perf/sample.h"

namespace ls::gpu {

class Reader {
public:
    explicit Reader(std::string drm_root = "/sys/class/drm") : drm_root_(std::move(drm_root)) {}
    // One reading of every GPU (and, through NVML, of their processes, with owners filled in).
    void read(std::int64_t unix_ms, std::vector<perf::GpuSample>& gpus,
              std::vector<perf::GpuProcess>& procs);
    // "nvml", "nvidia-smi", "sysfs" or "" (none works).
    const std::string& source() const { return source_; }
    // Why the sources before the chosen one (or all) were not used; taken once by the caller.
    std::string take_note() { return std::move(note_); }
    // NVML only: the driver version ("" otherwise) and a device's power limit (-1: unknown).
    std::string driver_version() { return nvml_ ? nvml_->driver_version() : std::string(); }
    double power_limit_w(int index) { return nvml_ ? nvml_->power_limit_w(index) : -1; }

private:
    void choose(std::int64_t unix_ms, std::vector<perf::GpuSample>& gpus,
                std::vector<perf::GpuProcess>& procs);
    std::string drm_root_;
    std::string source_;
    std::string note_;
    bool chosen_ = false;
    std::unique_ptr<Nvml> nvml_;
};

} // namespace ls::gpu
