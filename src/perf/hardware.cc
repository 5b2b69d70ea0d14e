#include "perf/hardware.h"

#include <cjson/cJSON.h>
#include <ctime>
#include <set>
#include <sys/utsname.h>

#include "build_config.h"
#include "perf/sampler.h"
#include "util/json.h"
#include "util/text_file.h"

namespace ls::perf {

namespace {
std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"'))
        s.remove_prefix(1);
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '"' || s.back() == '\r'))
        s.remove_suffix(1);
    return std::string(s);
}

// "key: value" (cpuinfo) or KEY=value (os-release), the first occurrence.
std::string field(std::string_view text, std::string_view key, char sep) {
    for (auto line : split(text, '\n')) {
        size_t at = line.find(sep);
        if (at == std::string_view::npos) continue;
        if (trim(line.substr(0, at)) == key) return trim(line.substr(at + 1));
    }
    return {};
}

void add_string_or_null(cJSON* obj, const char* name, const std::string& v) {
    if (v.empty() || v == "n/a" || v == "N/A" || v == "unknown")
        cJSON_AddNullToObject(obj, name);
    else
        cJSON_AddStringToObject(obj, name, v.c_str());
}

} // namespace

HardwareInputs read_hardware_inputs(std::int64_t unix_ms) {
    HardwareInputs in;
    in.unix_ms = unix_ms;
    struct utsname u {};
    if (uname(&u) == 0) {
        in.machine = u.machine;
        in.kernel = u.release;
    }
    in.os_release = read_text_file("/etc/os-release");
    if (in.os_release.empty()) in.os_release = read_text_file("/usr/lib/os-release");
    in.cpuinfo = read_text_file("/proc/cpuinfo", 4 << 20);
    in.meminfo = read_text_file("/proc/meminfo");
    std::string container = trim(read_text_file("/run/systemd/container"));
    if (!container.empty())
        in.environment = "container:" + container;
    else if (path_exists("/.dockerenv"))
        in.environment = "container:Docker";
    else if (in.kernel.find("microsoft") != std::string::npos ||
             in.kernel.find("WSL") != std::string::npos)
        in.environment = "wsl";
    else if (in.cpuinfo.find(" hypervisor") != std::string::npos)
        in.environment = "virtual_machine";
    return in;
}

std::string hardware_json(const HardwareInputs& in) {
    JsonPtr root(cJSON_CreateObject());
    cJSON* r = root.get();
    cJSON_AddNumberToObject(r, "schema_version", 1);
    cJSON_AddStringToObject(r, "captured_at", format_rfc3339_ms(in.unix_ms).c_str());
    cJSON* capture = cJSON_AddObjectToObject(r, "capture");
    cJSON_AddStringToObject(capture, "scope", "inference_host");
    cJSON_AddStringToObject(capture, "method", "detected");
    cJSON* det = cJSON_AddObjectToObject(capture, "detector");
    cJSON_AddStringToObject(det, "name", "llama-swap");
    cJSON_AddStringToObject(det, "version", LS_VERSION);

    cJSON* arch = cJSON_AddObjectToObject(r, "architecture");
    std::string name = in.machine;
    if (name == "aarch64")
        name = "arm64";
    else if (name.rfind("armv7", 0) == 0)
        name = "armv7";
    else if (name != "x86_64" && name != "ppc64le" && name != "riscv64" && name != "s390x")
        name = "other";
    cJSON_AddStringToObject(arch, "name", name.c_str());
    if (name != in.machine)
        add_string_or_null(arch, "raw_name", in.machine);
    else
        cJSON_AddNullToObject(arch, "raw_name");

    cJSON* os = cJSON_AddObjectToObject(r, "operating_system");
    cJSON_AddStringToObject(os, "family", "linux");
    add_string_or_null(os, "name", field(in.os_release, "ID", '='));
    add_string_or_null(os, "version", field(in.os_release, "VERSION_ID", '='));
    add_string_or_null(os, "kernel", in.kernel);

    cJSON* env = cJSON_AddObjectToObject(r, "environment");
    if (in.environment.rfind("container:", 0) == 0) {
        cJSON_AddStringToObject(env, "kind", "container");
        add_string_or_null(env, "name", in.environment.substr(10));
    } else if (in.environment == "wsl") {
        cJSON_AddStringToObject(env, "kind", "wsl");
        cJSON_AddStringToObject(env, "name", "WSL");
    } else {
        cJSON_AddStringToObject(env, "kind",
                                in.environment.empty() ? "unknown" : in.environment.c_str());
        cJSON_AddNullToObject(env, "name");
    }
    cJSON_AddNullToObject(env, "version");

    cJSON* cpu = cJSON_AddObjectToObject(r, "cpu");
    add_string_or_null(cpu, "vendor", field(in.cpuinfo, "vendor_id", ':'));
    add_string_or_null(cpu, "model", field(in.cpuinfo, "model name", ':'));
    // Sockets: distinct "physical id"; cores: distinct (physical id, core id); threads: processors.
    std::set<std::string> sockets, cores;
    int threads = 0;
    std::string phys;
    for (auto line : split(in.cpuinfo, '\n')) {
        size_t at = line.find(':');
        if (at == std::string_view::npos) continue;
        std::string k = trim(line.substr(0, at)), v = trim(line.substr(at + 1));
        if (k == "processor")
            ++threads, phys.clear();
        else if (k == "physical id")
            phys = v, sockets.insert(v);
        else if (k == "core id")
            cores.insert(phys + "/" + v);
    }
    if (sockets.empty())
        cJSON_AddNullToObject(cpu, "socket_count");
    else
        cJSON_AddNumberToObject(cpu, "socket_count", static_cast<double>(sockets.size()));
    if (cores.empty() || static_cast<int>(cores.size()) > threads)
        cJSON_AddNullToObject(cpu, "physical_core_count");
    else
        cJSON_AddNumberToObject(cpu, "physical_core_count", static_cast<double>(cores.size()));
    if (threads > 0)
        cJSON_AddNumberToObject(cpu, "logical_thread_count", threads);
    else
        cJSON_AddNullToObject(cpu, "logical_thread_count");

    {
        std::uint64_t total = 0;
        for (auto line : split(in.meminfo, '\n'))
            if (line.substr(0, 9) == "MemTotal:")
                total = std::strtoull(std::string(line.substr(9)).c_str(), nullptr, 10) * 1024;
        cJSON* m = cJSON_AddObjectToObject(r, "memory");
        cJSON_AddNumberToObject(m, "capacity_bytes", static_cast<double>(total));
    }

    cJSON* accs = cJSON_AddArrayToObject(r, "accelerators");
    for (size_t i = 0; i < in.gpus.size(); ++i) {
        const GpuSample& g = in.gpus[i];
        cJSON* a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "index", static_cast<double>(i));
        cJSON_AddStringToObject(a, "kind", "gpu");
        const bool nvidia = g.source != "sysfs";
        cJSON_AddStringToObject(a, "vendor", nvidia ? "NVIDIA" : "AMD");
        add_string_or_null(a, "model", g.name);
        cJSON_AddNullToObject(a, "architecture");
        cJSON* m = cJSON_AddObjectToObject(a, "memory");
        cJSON_AddStringToObject(m, "kind", "dedicated");
        if (g.mem_total_bytes > 0)
            cJSON_AddNumberToObject(m, "capacity_bytes", static_cast<double>(g.mem_total_bytes));
        else
            cJSON_AddNullToObject(m, "capacity_bytes");
        if (!in.gpu_driver.empty()) {
            cJSON* d = cJSON_AddObjectToObject(a, "driver");
            cJSON_AddStringToObject(d, "name", nvidia ? "NVIDIA" : "amdgpu");
            cJSON_AddStringToObject(d, "version", in.gpu_driver.c_str());
        } else {
            cJSON_AddNullToObject(a, "driver");
        }
        double limit = i < in.gpu_power_limit_w.size() ? in.gpu_power_limit_w[i] : -1;
        if (limit > 0)
            cJSON_AddNumberToObject(a, "power_limit_watts", limit);
        else
            cJSON_AddNullToObject(a, "power_limit_watts");
        cJSON_AddItemToArray(accs, a);
    }
    return json_print(r).value_or("{}") + "\n";
}

} // namespace ls::perf
