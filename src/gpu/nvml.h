// NVIDIA GPUs through NVML, loaded at run time (dlopen "libnvidia-ml.so.1"): no NVML header or
// library is needed to build, and a host without the driver simply has no NVML. Used from the
// performance sampler's thread only (NVML calls may take milliseconds).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "perf/sample.h"

namespace ls::gpu {

class Nvml {
public:
    // Loads the library and calls nvmlInit_v2; null with `why` set when either fails.
    static std::unique_ptr<Nvml> open(std::string& why);
    ~Nvml(); // nvmlShutdown and dlclose
    Nvml(const Nvml&) = delete;
    Nvml& operator=(const Nvml&) = delete;

    // One reading of every device and of the processes using them; false when the device
    // count cannot be read (the driver went away).
    bool read(std::int64_t unix_ms, std::vector<perf::GpuSample>& gpus,
              std::vector<perf::GpuProcess>& procs);
    // The driver version (nvmlSystemGetDriverVersion), "" when unknown.
    std::string driver_version();
    // The device's power limit in watts (nvmlDeviceGetPowerManagementLimit), -1 when unknown.
    double power_limit_w(int index);

    struct Api; // the resolved functions

private:
    Nvml() = default;
    void* lib_ = nullptr;
    std::unique_ptr<Api> api_;
};

} // namespace ls::gpu
