// NVIDIA GPUs through `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`, the fallback
// when NVML cannot be loaded. Run from the performance sampler's thread only (it blocks).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "perf/sample.h"

namespace ls::gpu {

// The query we ask for, in the column order parse_nvidia_smi_csv() expects.
extern const char* const kNvidiaSmiQuery;

// One sample per well-formed line (index, name, uuid, temperature.gpu, utilization.gpu,
// memory.used, memory.total, fan.speed, power.draw; MiB and W). "[N/A]" and "[Not Supported]"
// become unknown (-1); lines with fewer than 9 fields are skipped.
std::vector<perf::GpuSample> parse_nvidia_smi_csv(std::string_view text, std::int64_t unix_ms);

// Runs nvidia-smi (found on PATH) with a 10 s bound; false with `why` when it is missing or fails.
bool run_nvidia_smi(std::int64_t unix_ms, std::vector<perf::GpuSample>& out, std::string& why);

} // namespace ls::gpu
