#include "perf/host.h"

#include <cstdlib>

#include "util/text_file.h"

namespace ls::perf {

namespace {
std::vector<std::string_view> lines(std::string_view text) {
    return split(text, '\n');
}
std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}
std::uint64_t to_u64(std::string_view s) {
    return std::strtoull(std::string(s).c_str(), nullptr, 10);
}
} // namespace

std::vector<CpuTimes> parse_proc_stat(std::string_view text) {
    std::vector<CpuTimes> out;
    for (auto line : lines(text)) {
        if (line.substr(0, 3) != "cpu") continue;
        auto w = words(line);
        if (w.size() < 5) continue;
        // user nice system idle iowait irq softirq steal (guest time is inside user already)
        std::uint64_t v[8] = {};
        for (size_t k = 0; k < 8 && k + 1 < w.size(); ++k) v[k] = to_u64(w[k + 1]);
        CpuTimes t;
        t.total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
        t.busy = t.total - v[3] - v[4];
        if (w[0] == "cpu")
            out.insert(out.begin(), t);
        else
            out.push_back(t);
    }
    return out;
}

double cpu_percent(const CpuTimes& before, const CpuTimes& after) {
    if (after.total <= before.total || after.busy < before.busy) return 0;
    double pct = 100.0 * double(after.busy - before.busy) / double(after.total - before.total);
    return pct > 100 ? 100 : pct;
}

void parse_meminfo(std::string_view text, SysSample& out) {
    std::uint64_t total = 0, avail = 0, free = 0, buffers = 0, cached = 0, swap_total = 0,
                  swap_free = 0;
    bool have_avail = false;
    for (auto line : lines(text)) {
        auto w = words(line);
        if (w.size() < 2) continue;
        std::uint64_t v = to_u64(w[1]) * (w.size() > 2 && w[2] == "kB" ? 1024 : 1);
        if (w[0] == "MemTotal:")
            total = v;
        else if (w[0] == "MemAvailable:")
            avail = v, have_avail = true;
        else if (w[0] == "MemFree:")
            free = v;
        else if (w[0] == "Buffers:")
            buffers = v;
        else if (w[0] == "Cached:")
            cached = v;
        else if (w[0] == "SwapTotal:")
            swap_total = v;
        else if (w[0] == "SwapFree:")
            swap_free = v;
    }
    if (!have_avail) avail = free + buffers + cached;
    out.mem_total_bytes = total;
    out.mem_used_bytes = total > avail ? total - avail : 0;
    out.mem_free_bytes = free;
    out.swap_total_bytes = swap_total;
    out.swap_used_bytes = swap_total > swap_free ? swap_total - swap_free : 0;
}

void parse_loadavg(std::string_view text, SysSample& out) {
    auto w = words(text.substr(0, text.find('\n')));
    if (w.size() < 3) return;
    out.load_avg_1 = std::strtod(std::string(w[0]).c_str(), nullptr);
    out.load_avg_5 = std::strtod(std::string(w[1]).c_str(), nullptr);
    out.load_avg_15 = std::strtod(std::string(w[2]).c_str(), nullptr);
}

std::vector<NetIo> parse_net_dev(std::string_view text) {
    std::vector<NetIo> out;
    for (auto line : lines(text)) {
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue; // the two header lines
        auto name = words(line.substr(0, colon));
        auto w = words(line.substr(colon + 1));
        if (name.size() != 1 || w.size() < 9 || name[0] == "lo") continue;
        NetIo n;
        n.name = std::string(name[0]);
        n.bytes_recv = to_u64(w[0]);
        n.bytes_sent = to_u64(w[8]);
        out.push_back(std::move(n));
    }
    return out;
}

SysSample HostReader::read(std::int64_t unix_ms) {
    SysSample s;
    s.unix_ms = unix_ms;
    auto now = parse_proc_stat(read_text_file(root_ + "/stat", 1 << 20));
    if (!now.empty()) {
        const bool have_prev = prev_.size() == now.size();
        s.cpu_util_pct = cpu_percent(have_prev ? prev_[0] : CpuTimes{}, now[0]);
        for (size_t i = 1; i < now.size(); ++i)
            s.cpu_util_per_core.push_back(cpu_percent(have_prev ? prev_[i] : CpuTimes{}, now[i]));
        prev_ = std::move(now);
    }
    parse_meminfo(read_text_file(root_ + "/meminfo"), s);
    parse_loadavg(read_text_file(root_ + "/loadavg"), s);
    s.net_io = parse_net_dev(read_text_file(root_ + "/net/dev", 1 << 20));
    return s;
}

} // namespace ls::perf
