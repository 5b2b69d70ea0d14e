#include "gpu/sysfs.h"

#include <algorithm>
#include <cstdlib>
#include <dirent.h>
#include <optional>

#include "util/text_file.h"

namespace ls::gpu {

namespace {
std::optional<std::string> read_text(const std::string& path) {
    if (!path_exists(path)) return std::nullopt;
    std::string s = read_text_file(path);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

std::optional<double> read_number(const std::string& path) {
    auto t = read_text(path);
    if (!t || t->empty()) return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(t->c_str(), &end);
    if (end == t->c_str()) return std::nullopt;
    return v;
}

std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = opendir(dir.c_str())) {
        while (dirent* e = readdir(d))
            if (e->d_name[0] != '.') out.emplace_back(e->d_name);
        closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

// card<N> exactly (not card0-DP-1 connectors, not renderD128): N, or -1.
int card_number(const std::string& name) {
    if (name.rfind("card", 0) != 0 || name.size() == 4) return -1;
    for (size_t i = 4; i < name.size(); ++i)
        if (name[i] < '0' || name[i] > '9') return -1;
    return std::atoi(name.c_str() + 4);
}
} // namespace

std::vector<perf::GpuSample> read_sysfs(const std::string& drm_root, std::int64_t unix_ms) {
    std::vector<std::pair<int, std::string>> cards;
    for (const auto& name : list_dir(drm_root))
        if (int n = card_number(name); n >= 0) cards.emplace_back(n, name);
    std::sort(cards.begin(), cards.end());
    std::vector<perf::GpuSample> out;
    for (const auto& [n, name] : cards) {
        const std::string dev = drm_root + "/" + name + "/device";
        auto total = read_number(dev + "/mem_info_vram_total");
        if (!total || *total <= 0) continue;
        perf::GpuSample g;
        g.unix_ms = unix_ms;
        g.index = n;
        g.source = "sysfs";
        g.mem_total_bytes = static_cast<std::uint64_t>(*total);
        if (auto used = read_number(dev + "/mem_info_vram_used"))
            g.mem_used_bytes = static_cast<std::uint64_t>(*used);
        g.mem_util_pct = 100.0 * double(g.mem_used_bytes) / double(g.mem_total_bytes);
        if (auto busy = read_number(dev + "/gpu_busy_percent")) g.gpu_util_pct = *busy;
        if (auto product = read_text(dev + "/product_name"); product && !product->empty())
            g.name = *product;
        else {
            auto vendor = read_text(dev + "/vendor").value_or("");
            auto device = read_text(dev + "/device").value_or("");
            g.name = (vendor == "0x1002" ? "AMD GPU" : "GPU") +
                     (device.empty() ? std::string() : " " + vendor + ":" + device);
        }
        for (const auto& hw : list_dir(dev + "/hwmon")) {
            const std::string h = dev + "/hwmon/" + hw;
            if (auto t = read_number(h + "/temp1_input")) g.temp_c = static_cast<int>(*t / 1000);
            // amdgpu labels temp3 "mem" where it has one.
            for (int k = 1; k <= 4; ++k) {
                std::string base = h + "/temp" + std::to_string(k);
                if (read_text(base + "_label").value_or("") == "mem")
                    if (auto t = read_number(base + "_input"))
                        g.vram_temp_c = static_cast<int>(*t / 1000);
            }
            auto pw = read_number(h + "/power1_average");
            if (!pw) pw = read_number(h + "/power1_input");
            if (pw) g.power_draw_w = *pw / 1e6;
            auto pwm = read_number(h + "/pwm1");
            if (pwm) {
                double max = read_number(h + "/pwm1_max").value_or(255);
                if (max > 0) g.fan_speed_pct = 100.0 * *pwm / max;
            }
            break; // one hwmon per card
        }
        out.push_back(std::move(g));
    }
    return out;
}

} // namespace ls::gpu
