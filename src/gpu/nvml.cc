#include "gpu/nvml.h"

#include <climits>
#include <cstring>
#include <dlfcn.h>

namespace ls::gpu {

namespace {
// The few NVML types and constants we use, as the driver's ABI defines them.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
constexpr nvmlReturn_t kSuccess = 0;
constexpr nvmlReturn_t kInsufficientSize = 7;
constexpr int kTemperatureGpu = 0;
constexpr unsigned long long kValueNotAvailable = ULLONG_MAX;
struct nvmlMemory_t {
    unsigned long long total, free, used;
};
struct nvmlUtilization_t {
    unsigned int gpu, memory;
};
struct nvmlProcessInfo_v1_t { // nvmlDeviceGetComputeRunningProcesses (v1)
    unsigned int pid;
    unsigned long long usedGpuMemory;
};
struct nvmlProcessInfo_v2_t { // _v2 and _v3
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
};
} // namespace

struct Nvml::Api {
    nvmlReturn_t (*init)();
    nvmlReturn_t (*shutdown)();
    nvmlReturn_t (*count)(unsigned int*);
    nvmlReturn_t (*handle)(unsigned int, nvmlDevice_t*);
    nvmlReturn_t (*name)(nvmlDevice_t, char*, unsigned int);
    nvmlReturn_t (*uuid)(nvmlDevice_t, char*, unsigned int);
    nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*);
    nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*);
    nvmlReturn_t (*temperature)(nvmlDevice_t, int, unsigned int*);
    nvmlReturn_t (*power)(nvmlDevice_t, unsigned int*);
    nvmlReturn_t (*fan)(nvmlDevice_t, unsigned int*);
    nvmlReturn_t (*procs_v2)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_v2_t*); // v3 or v2
    nvmlReturn_t (*procs_v1)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_v1_t*);
    nvmlReturn_t (*driver)(char*, unsigned int);
    nvmlReturn_t (*power_limit)(nvmlDevice_t, unsigned int*);
};

namespace {
template <typename F>
void resolve(void* lib, F& fn, const char* name) {
    fn = reinterpret_cast<F>(dlsym(lib, name));
}

// A device's compute processes: asks with room for 64 and grows once when the driver says it
// needs more. `Info` is the process record of the version `query` fills (v1, v2 or v3).
template <typename Info, typename Add>
void running_processes(nvmlReturn_t (*query)(nvmlDevice_t, unsigned int*, Info*), nvmlDevice_t dev,
                       const Add& add) {
    std::vector<Info> list(64);
    for (int attempt = 0; attempt < 2; ++attempt) {
        unsigned int n = static_cast<unsigned int>(list.size());
        const nvmlReturn_t rc = query(dev, &n, list.data());
        if (rc == kInsufficientSize && attempt == 0) {
            list.resize(n + 16);
            continue;
        }
        if (rc == kSuccess)
            for (unsigned int k = 0; k < n && k < list.size(); ++k)
                add(list[k].pid, list[k].usedGpuMemory);
        return;
    }
}
} // namespace

std::unique_ptr<Nvml> Nvml::open(std::string& why) {
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char* e = dlerror();
        why = std::string("libnvidia-ml.so.1 not loaded: ") + (e ? e : "unknown error");
        return nullptr;
    }
    auto api = std::make_unique<Api>();
    resolve(lib, api->init, "nvmlInit_v2");
    resolve(lib, api->shutdown, "nvmlShutdown");
    resolve(lib, api->count, "nvmlDeviceGetCount_v2");
    resolve(lib, api->handle, "nvmlDeviceGetHandleByIndex_v2");
    resolve(lib, api->name, "nvmlDeviceGetName");
    resolve(lib, api->uuid, "nvmlDeviceGetUUID");
    resolve(lib, api->memory, "nvmlDeviceGetMemoryInfo");
    resolve(lib, api->utilization, "nvmlDeviceGetUtilizationRates");
    resolve(lib, api->temperature, "nvmlDeviceGetTemperature");
    resolve(lib, api->power, "nvmlDeviceGetPowerUsage");
    resolve(lib, api->fan, "nvmlDeviceGetFanSpeed");
    resolve(lib, api->procs_v2, "nvmlDeviceGetComputeRunningProcesses_v3");
    if (!api->procs_v2) resolve(lib, api->procs_v2, "nvmlDeviceGetComputeRunningProcesses_v2");
    resolve(lib, api->procs_v1, "nvmlDeviceGetComputeRunningProcesses");
    resolve(lib, api->driver, "nvmlSystemGetDriverVersion");
    resolve(lib, api->power_limit, "nvmlDeviceGetPowerManagementLimit");
    if (!api->init || !api->count || !api->handle) {
        why = "libnvidia-ml.so.1 lacks nvmlInit_v2, nvmlDeviceGetCount_v2 or "
              "nvmlDeviceGetHandleByIndex_v2";
        dlclose(lib);
        return nullptr;
    }
    if (nvmlReturn_t rc = api->init(); rc != kSuccess) {
        why = "nvmlInit_v2 failed with NVML error " + std::to_string(rc);
        dlclose(lib);
        return nullptr;
    }
    std::unique_ptr<Nvml> n(new Nvml());
    n->lib_ = lib;
    n->api_ = std::move(api);
    return n;
}

Nvml::~Nvml() {
    if (api_ && api_->shutdown) api_->shutdown();
    if (lib_) dlclose(lib_);
}

bool Nvml::read(std::int64_t unix_ms, std::vector<perf::GpuSample>& gpus,
                std::vector<perf::GpuProcess>& procs) {
    unsigned int count = 0;
    if (api_->count(&count) != kSuccess) return false;
    for (unsigned int i = 0; i < count; ++i) {
        nvmlDevice_t dev = nullptr;
        if (api_->handle(i, &dev) != kSuccess) continue;
        perf::GpuSample g;
        g.unix_ms = unix_ms;
        g.index = static_cast<int>(i);
        g.source = "nvml";
        char text[256] = {};
        if (api_->name && api_->name(dev, text, sizeof text) == kSuccess) g.name = text;
        std::memset(text, 0, sizeof text);
        if (api_->uuid && api_->uuid(dev, text, sizeof text) == kSuccess) g.uuid = text;
        nvmlMemory_t mem{};
        if (api_->memory && api_->memory(dev, &mem) == kSuccess) {
            g.mem_total_bytes = mem.total;
            g.mem_used_bytes = mem.used;
            if (mem.total > 0) g.mem_util_pct = 100.0 * double(mem.used) / double(mem.total);
        }
        nvmlUtilization_t util{};
        if (api_->utilization && api_->utilization(dev, &util) == kSuccess)
            g.gpu_util_pct = util.gpu;
        unsigned int v = 0;
        if (api_->temperature && api_->temperature(dev, kTemperatureGpu, &v) == kSuccess)
            g.temp_c = static_cast<int>(v);
        if (api_->power && api_->power(dev, &v) == kSuccess) g.power_draw_w = v / 1000.0;
        if (api_->fan && api_->fan(dev, &v) == kSuccess) g.fan_speed_pct = v;
        gpus.push_back(std::move(g));

        // Processes, from the newest list the driver has.
        auto add = [&](unsigned int pid, unsigned long long used) {
            perf::GpuProcess p;
            p.pid = static_cast<pid_t>(pid);
            p.gpu_index = static_cast<int>(i);
            p.used_bytes = used == kValueNotAvailable ? 0 : used;
            procs.push_back(std::move(p));
        };
        if (api_->procs_v2)
            running_processes(api_->procs_v2, dev, add);
        else if (api_->procs_v1)
            running_processes(api_->procs_v1, dev, add);
    }
    return true;
}

std::string Nvml::driver_version() {
    char text[96] = {};
    if (api_->driver && api_->driver(text, sizeof text) == kSuccess) return text;
    return {};
}

double Nvml::power_limit_w(int index) {
    nvmlDevice_t dev = nullptr;
    unsigned int mw = 0;
    if (!api_->power_limit || api_->handle(static_cast<unsigned>(index), &dev) != kSuccess)
        return -1;
    if (api_->power_limit(dev, &mw) != kSuccess) return -1;
    return mw / 1000.0;
}

} // namespace ls::gpu
