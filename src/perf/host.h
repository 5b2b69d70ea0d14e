// Host figures from /proc: CPU use per core (from /proc/stat between two readings), memory and
// swap (/proc/meminfo), load (/proc/loadavg), network bytes (/proc/net/dev). The parsers are
// pure functions over the files' text; HostReader keeps the previous CPU times.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "perf/sample.h"

namespace ls::perf {

struct CpuTimes {
    std::uint64_t busy = 0;
    std::uint64_t total = 0;
};
// [0] is the "cpu" line (all cores), then one per "cpuN" line in file order.
std::vector<CpuTimes> parse_proc_stat(std::string_view text);
// Percent busy between two readings (0 when no time passed).
double cpu_percent(const CpuTimes& before, const CpuTimes& after);
// MemTotal, MemAvailable (MemFree + Buffers + Cached when absent), MemFree, SwapTotal, SwapFree.
void parse_meminfo(std::string_view text, SysSample& out);
void parse_loadavg(std::string_view text, SysSample& out);
// Every interface but "lo".
std::vector<NetIo> parse_net_dev(std::string_view text);

class HostReader {
public:
    explicit HostReader(std::string proc_root = "/proc") : root_(std::move(proc_root)) {}
    // The first reading's CPU use is the average since boot; later ones, since the previous.
    SysSample read(std::int64_t unix_ms);

private:
    std::string root_;
    std::vector<CpuTimes> prev_;
};

} // namespace ls::perf
