// GET /api/hardware: the host as detected once when the daemon starts, in the original's layout
// (schema_version 1: architecture, operating_system, environment, cpu, memory, accelerators).
// Built on the sampler's thread (it reads files and asks the GPU source).
#pragma once

#include <string>
#include <vector>

#include "perf/sample.h"

namespace ls::perf {

struct HardwareInputs {
    std::int64_t unix_ms = 0;
    std::string machine;     // uname -m
    std::string kernel;      // uname -r
    std::string os_release;  // /etc/os-release
    std::string cpuinfo;     // /proc/cpuinfo
    std::string meminfo;     // /proc/meminfo
    std::string environment; // "container:<name>", "virtual_machine", "native" or ""
    std::vector<GpuSample> gpus;
    std::string gpu_driver;                // NVML's driver version, or ""
    std::vector<double> gpu_power_limit_w; // by position in gpus; -1 unknown
};

// Reads the inputs from this host (files, uname). GPU fields are left to the caller.
HardwareInputs read_hardware_inputs(std::int64_t unix_ms);
// The JSON document (a newline at the end).
std::string hardware_json(const HardwareInputs& in);

} // namespace ls::perf
