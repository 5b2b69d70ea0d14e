#include "gpu/reader.h"

#include "gpu/owner.h"
#include "gpu/smi.h"
#include "gpu/sysfs.h"

namespace ls::gpu {

void Reader::choose(std::int64_t unix_ms, std::vector<perf::GpuSample>& gpus,
                    std::vector<perf::GpuProcess>& procs) {
    chosen_ = true;
    std::string why;
    nvml_ = Nvml::open(why);
    if (nvml_ && nvml_->read(unix_ms, gpus, procs)) {
        source_ = "nvml";
        return;
    }
    nvml_.reset();
    gpus.clear();
    procs.clear();
    note_ = "NVML: " + why;
    if (run_nvidia_smi(unix_ms, gpus, why)) {
        source_ = "nvidia-smi";
        return;
    }
    note_ += "; nvidia-smi: " + why;
    gpus = read_sysfs(drm_root_, unix_ms);
    if (!gpus.empty()) {
        source_ = "sysfs";
        return;
    }
    note_ += "; sysfs: no card with mem_info_vram_total under " + drm_root_;
    source_.clear();
}

void Reader::read(std::int64_t unix_ms, std::vector<perf::GpuSample>& gpus,
                  std::vector<perf::GpuProcess>& procs) {
    gpus.clear();
    procs.clear();
    bool ok = false;
    if (!chosen_) {
        choose(unix_ms, gpus, procs);
        ok = true;
    } else if (source_ == "nvml") {
        ok = nvml_->read(unix_ms, gpus, procs);
    } else if (source_ == "nvidia-smi") {
        std::string why;
        ok = run_nvidia_smi(unix_ms, gpus, why);
    } else if (source_ == "sysfs") {
        gpus = read_sysfs(drm_root_, unix_ms);
        ok = !gpus.empty();
    } else {
        ok = true; // no source: nothing to read, and no new search every few seconds
    }
    if (!ok) {
        note_ = source_ + " stopped answering; looking for a GPU source again";
        chosen_ = false;
        nvml_.reset();
        gpus.clear();
        procs.clear();
    }
    for (auto& p : procs) fill_owner(p);
}

} // namespace ls::gpu
