// GPUs through sysfs, the last fallback: amdgpu's /sys/class/drm/card<N>/device files
// (mem_info_vram_used/_total, gpu_busy_percent, hwmon temp1_input, power1_average, pwm1).
// Cards without mem_info_vram_total are left out. Read from the sampler's thread.
#pragma once

#include <string>
#include <vector>

#include "perf/sample.h"

namespace ls::gpu {

// Every card under `drm_root` (/sys/class/drm; tests give a tree of their own), by card number.
std::vector<perf::GpuSample> read_sysfs(const std::string& drm_root, std::int64_t unix_ms);

} // namespace ls::gpu
