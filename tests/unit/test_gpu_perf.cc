// The performance sampler's pieces without a GPU: nvidia-smi's CSV, an amdgpu sysfs tree, the
// /proc parsers, the ring, RFC 3339 times, matching GPU processes to a model, and NVML through
// tests/nvml-stub (LD_LIBRARY_PATH and NVML_STUB_FILE are set by meson).
#include <criterion/criterion.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "gpu/nvml.h"
#include "gpu/owner.h"
#include "gpu/smi.h"
#include "gpu/sysfs.h"
#include "perf/host.h"
#include "perf/ring.h"
#include "perf/sampler.h"

using namespace ls;
namespace fs = std::filesystem;

static void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

static fs::path temp_dir(const char* tag) {
    fs::path d =
        fs::temp_directory_path() / (std::string("ls-gpu-") + tag + "-" + std::to_string(getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

Test(nvidia_smi, parses_lines_and_unknowns) {
    auto gpus = gpu::parse_nvidia_smi_csv(
        "0, NVIDIA H200, GPU-aaaa, 41, 87, 81920, 143771, 30, 512.25\n"
        "1, NVIDIA H200, GPU-bbbb, 38, [N/A], 1024, 143771, [Not Supported], [N/A]\r\n"
        "\n"
        "garbage line\n",
        1234);
    cr_assert_eq(gpus.size(), 2u);
    cr_assert_eq(gpus[0].index, 0);
    cr_assert_str_eq(gpus[0].name.c_str(), "NVIDIA H200");
    cr_assert_str_eq(gpus[0].uuid.c_str(), "GPU-aaaa");
    cr_assert_eq(gpus[0].temp_c, 41);
    cr_assert_float_eq(gpus[0].gpu_util_pct, 87, 1e-9);
    cr_assert_eq(gpus[0].mem_used_bytes, 81920ull << 20);
    cr_assert_eq(gpus[0].mem_total_bytes, 143771ull << 20);
    cr_assert_float_eq(gpus[0].mem_util_pct, 100.0 * 81920 / 143771, 1e-9);
    cr_assert_float_eq(gpus[0].fan_speed_pct, 30, 1e-9);
    cr_assert_float_eq(gpus[0].power_draw_w, 512.25, 1e-9);
    cr_assert_str_eq(gpus[0].source.c_str(), "nvidia-smi");
    cr_assert_eq(gpus[0].unix_ms, 1234);
    cr_assert_eq(gpus[1].index, 1);
    cr_assert_float_eq(gpus[1].gpu_util_pct, -1, 1e-9);
    cr_assert_float_eq(gpus[1].fan_speed_pct, -1, 1e-9);
    cr_assert_float_eq(gpus[1].power_draw_w, -1, 1e-9);
    cr_assert_eq(gpus[1].mem_used_bytes, 1024ull << 20);
}

Test(nvidia_smi, empty_output_gives_nothing) {
    cr_assert(gpu::parse_nvidia_smi_csv("", 0).empty());
    cr_assert(gpu::parse_nvidia_smi_csv("0, name, uuid\n", 0).empty());
}

Test(sysfs, reads_amdgpu_cards_and_skips_others) {
    fs::path root = temp_dir("drm");
    fs::path c1 = root / "card1" / "device";
    write_file(c1 / "mem_info_vram_total", "17163091968\n");
    write_file(c1 / "mem_info_vram_used", "4294967296\n");
    write_file(c1 / "gpu_busy_percent", "42\n");
    write_file(c1 / "product_name", "Radeon RX 7800 XT\n");
    write_file(c1 / "hwmon" / "hwmon3" / "temp1_input", "55000\n");
    write_file(c1 / "hwmon" / "hwmon3" / "temp3_label", "mem\n");
    write_file(c1 / "hwmon" / "hwmon3" / "temp3_input", "61000\n");
    write_file(c1 / "hwmon" / "hwmon3" / "power1_average", "123500000\n");
    write_file(c1 / "hwmon" / "hwmon3" / "pwm1", "51\n");
    write_file(c1 / "hwmon" / "hwmon3" / "pwm1_max", "255\n");
    // An Intel card without VRAM files, a connector and a render node: all left out.
    write_file(root / "card0" / "device" / "vendor", "0x8086\n");
    write_file(root / "card1-DP-1" / "device" / "mem_info_vram_total", "1\n");
    write_file(root / "renderD128" / "device" / "mem_info_vram_total", "1\n");
    // A card without a product name: named by its PCI ids.
    write_file(root / "card2" / "device" / "mem_info_vram_total", "1073741824\n");
    write_file(root / "card2" / "device" / "vendor", "0x1002\n");
    write_file(root / "card2" / "device" / "device", "0x73bf\n");

    auto gpus = gpu::read_sysfs(root.string(), 99);
    cr_assert_eq(gpus.size(), 2u);
    cr_assert_eq(gpus[0].index, 1);
    cr_assert_str_eq(gpus[0].name.c_str(), "Radeon RX 7800 XT");
    cr_assert_eq(gpus[0].mem_total_bytes, 17163091968ull);
    cr_assert_eq(gpus[0].mem_used_bytes, 4294967296ull);
    cr_assert_float_eq(gpus[0].gpu_util_pct, 42, 1e-9);
    cr_assert_eq(gpus[0].temp_c, 55);
    cr_assert_eq(gpus[0].vram_temp_c, 61);
    cr_assert_float_eq(gpus[0].power_draw_w, 123.5, 1e-9);
    cr_assert_float_eq(gpus[0].fan_speed_pct, 20, 1e-9);
    cr_assert_str_eq(gpus[0].source.c_str(), "sysfs");
    cr_assert_eq(gpus[1].index, 2);
    cr_assert_str_eq(gpus[1].name.c_str(), "AMD GPU 0x1002:0x73bf");
    cr_assert_eq(gpus[1].mem_used_bytes, 0u);
    cr_assert_float_eq(gpus[1].gpu_util_pct, -1, 1e-9);
    cr_assert_eq(gpus[1].temp_c, -1);
    fs::remove_all(root);
    cr_assert(gpu::read_sysfs(root.string(), 0).empty());
}

Test(host, proc_stat_and_cpu_percent) {
    auto a = perf::parse_proc_stat("cpu  100 0 100 800 0 0 0 0 0 0\n"
                                   "cpu0 50 0 50 400 0 0 0 0 0 0\n"
                                   "cpu1 50 0 50 400 0 0 0 0 0 0\n"
                                   "intr 1 2 3\n");
    auto b = perf::parse_proc_stat("cpu  250 0 150 900 100 0 0 0 0 0\n"
                                   "cpu0 150 0 100 400 50 0 0 0 0 0\n"
                                   "cpu1 100 0 50 500 50 0 0 0 0 0\n");
    cr_assert_eq(a.size(), 3u);
    cr_assert_eq(a[0].total, 1000u);
    cr_assert_eq(a[0].busy, 200u);
    // all: busy +200 of +400; cpu0: +150 of +200; cpu1: +50 of +200
    cr_assert_float_eq(perf::cpu_percent(a[0], b[0]), 50, 1e-9);
    cr_assert_float_eq(perf::cpu_percent(a[1], b[1]), 75, 1e-9);
    cr_assert_float_eq(perf::cpu_percent(a[2], b[2]), 25, 1e-9);
    cr_assert_float_eq(perf::cpu_percent(b[0], b[0]), 0, 1e-9);
}

Test(host, meminfo_loadavg_netdev) {
    perf::SysSample s;
    perf::parse_meminfo("MemTotal:       16000000 kB\nMemFree:         2000000 kB\n"
                        "MemAvailable:    6000000 kB\nBuffers: 1 kB\nCached: 2 kB\n"
                        "SwapTotal:       1000000 kB\nSwapFree:         250000 kB\n",
                        s);
    cr_assert_eq(s.mem_total_bytes, 16000000ull * 1024);
    cr_assert_eq(s.mem_used_bytes, 10000000ull * 1024);
    cr_assert_eq(s.mem_free_bytes, 2000000ull * 1024);
    cr_assert_eq(s.swap_total_bytes, 1000000ull * 1024);
    cr_assert_eq(s.swap_used_bytes, 750000ull * 1024);
    perf::SysSample old; // kernels before 3.14: no MemAvailable
    perf::parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n",
                        old);
    cr_assert_eq(old.mem_used_bytes, 500ull * 1024);
    perf::parse_loadavg("0.52 1.25 2.00 3/456 7890\n", s);
    cr_assert_float_eq(s.load_avg_1, 0.52, 1e-9);
    cr_assert_float_eq(s.load_avg_5, 1.25, 1e-9);
    cr_assert_float_eq(s.load_avg_15, 2.0, 1e-9);
    auto net = perf::parse_net_dev(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets\n"
        "    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n"
        "  eth0: 123456 100 0 0 0 0 0 0 654321 90 0 0 0 0 0 0\n");
    cr_assert_eq(net.size(), 1u);
    cr_assert_str_eq(net[0].name.c_str(), "eth0");
    cr_assert_eq(net[0].bytes_recv, 123456u);
    cr_assert_eq(net[0].bytes_sent, 654321u);
}

Test(host, reader_on_a_proc_tree) {
    fs::path root = temp_dir("proc");
    write_file(root / "stat", "cpu  10 0 10 80 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0\n");
    write_file(root / "meminfo", "MemTotal: 2048 kB\nMemAvailable: 1024 kB\nMemFree: 512 kB\n");
    write_file(root / "loadavg", "1.00 2.00 3.00 1/1 1\n");
    write_file(root / "net" / "dev", "h\nh\n eth1: 5 0 0 0 0 0 0 0 7 0 0 0 0 0 0 0\n");
    perf::HostReader r(root.string());
    auto first = r.read(1);
    cr_assert_float_eq(first.cpu_util_pct, 20, 1e-9); // since boot
    cr_assert_eq(first.cpu_util_per_core.size(), 1u);
    write_file(root / "stat", "cpu  20 0 10 90 0 0 0 0\ncpu0 20 0 10 90 0 0 0 0\n");
    auto second = r.read(2);
    cr_assert_float_eq(second.cpu_util_pct, 50, 1e-9); // since the first reading
    cr_assert_eq(second.unix_ms, 2);
    cr_assert_eq(second.mem_used_bytes, 1024u * 1024);
    cr_assert_eq(second.net_io.size(), 1u);
    cr_assert_eq(second.net_io[0].bytes_sent, 7u);
    fs::remove_all(root);
}

Test(ring, keeps_the_newest_in_order) {
    perf::Ring<int> r(3);
    cr_assert(r.empty());
    cr_assert_null(r.newest());
    for (int i = 1; i <= 5; ++i) r.push(i);
    cr_assert_eq(r.size(), 3u);
    cr_assert_eq(r.at(0), 3);
    cr_assert_eq(r.at(1), 4);
    cr_assert_eq(r.at(2), 5);
    cr_assert_eq(*r.newest(), 5);
    r.set_capacity(2);
    cr_assert_eq(r.size(), 2u);
    cr_assert_eq(r.at(0), 4);
    cr_assert_eq(r.at(1), 5);
    r.set_capacity(10);
    r.push(6);
    cr_assert_eq(r.size(), 3u);
    cr_assert_eq(r.at(0), 4);
    cr_assert_eq(*r.newest(), 6);
    r.clear();
    cr_assert(r.empty());
}

Test(rfc3339, parses_and_formats) {
    std::int64_t ms = 0;
    cr_assert(perf::parse_rfc3339_ms("2026-12-04T07:38:48Z", ms));
    cr_assert_eq(ms, 1796369928000LL);
    cr_assert(perf::parse_rfc3339_ms("2026-12-04T07:38:48.270Z", ms));
    cr_assert_eq(ms, 1796369928270LL);
    cr_assert(perf::parse_rfc3339_ms("2026-12-04T09:38:48.270123+02:00", ms));
    cr_assert_eq(ms, 1796369928270LL);
    cr_assert(perf::parse_rfc3339_ms("2026-12-04T02:38:48-05:00", ms));
    cr_assert_eq(ms, 1796369928000LL);
    const std::string text = perf::format_rfc3339_ms(1796369928270LL);
    cr_assert_str_eq(text.c_str(), "2026-12-04T07:38:48.270Z");
    for (const char* bad : {"", "yesterday", "2026-12-04", "2026-12-04T07:38:48",
                            "2026-12-04 07:38:48Z", "2026-13-04T07:38:48Z", "2026-12-04T07:38:48.Z",
                            "2026-12-04T07:38:48Zjunk", "1796369928"})
        cr_assert_not(perf::parse_rfc3339_ms(bad, ms), "%s", bad);
}

Test(owner, stat_pgid_and_cgroup_paths) {
    cr_assert_eq(gpu::parse_stat_pgid("123 (llama server) S 1 456 456 0 -1"), 456);
    cr_assert_eq(gpu::parse_stat_pgid("123 (a) b) R 1 77 77"), 77);
    cr_assert_eq(gpu::parse_stat_pgid("garbage"), 0);
    const std::string dir = "/sys/fs/cgroup/system.slice/llama-swap.service/models/qwen-1";
    cr_assert(gpu::cgroup_dir_holds(dir, "/system.slice/llama-swap.service/models/qwen-1"));
    cr_assert(gpu::cgroup_dir_holds(dir + "/", "/system.slice/llama-swap.service/models/qwen-1"));
    cr_assert(gpu::cgroup_dir_holds(dir, "/system.slice/llama-swap.service/models/qwen-1/sub"));
    cr_assert_not(gpu::cgroup_dir_holds(dir, "/system.slice/llama-swap.service/models/qwen-12"));
    cr_assert_not(gpu::cgroup_dir_holds(dir, "/system.slice/other.service"));
    cr_assert_not(gpu::cgroup_dir_holds(dir, "/"));
    // v1 memory hierarchy mounted at /sys/fs/cgroup/memory
    cr_assert(gpu::cgroup_dir_holds("/sys/fs/cgroup/memory/ls/m-3", "/ls/m-3"));
}

Test(owner, memory_of_a_model) {
    perf::Sample s;
    s.gpu_processes = {
        {100, 0, 1000, 100, {"/x/model-a"}},     // the model's leader
        {101, 1, 2000, 100, {"/x/model-a"}},     // its child on another GPU, same group
        {200, 0, 4000, 200, {"/x/model-b/sub"}}, // model b: by cgroup only
        {300, 0, 8000, 300, {"/user.slice"}},    // someone else's
    };
    bool found = false;
    cr_assert_eq(gpu::memory_of(s, 100, {}, &found), 3000u);
    cr_assert(found);
    cr_assert_eq(gpu::memory_of(s, 999, {"/sys/fs/cgroup/x/model-b"}, &found), 4000u);
    cr_assert(found);
    cr_assert_eq(gpu::memory_of(s, 999, {"/sys/fs/cgroup/x/model-c"}, &found), 0u);
    cr_assert_not(found);
}

Test(owner, fill_owner_from_a_proc_tree) {
    fs::path root = temp_dir("owner");
    write_file(root / "4242" / "stat", "4242 (fake (up)) S 1 4240 4240 0 -1 4194304\n");
    write_file(root / "4242" / "cgroup", "12:memory:/ls/m-1\n1:name=systemd:/ls/m-1\n0::/\n");
    perf::GpuProcess p;
    p.pid = 4242;
    gpu::fill_owner(p, root.string());
    cr_assert_eq(p.pgid, 4240);
    cr_assert_eq(p.cgroups.size(), 2u);
    cr_assert_str_eq(p.cgroups[0].c_str(), "/ls/m-1");
    perf::GpuProcess gone;
    gone.pid = 1;
    gpu::fill_owner(gone, root.string());
    cr_assert_eq(gone.pgid, 0);
    cr_assert(gone.cgroups.empty());
    fs::remove_all(root);
}

Test(nvml, through_the_stub) {
    fs::path root = temp_dir("nvml");
    const std::string file = (root / "nvml.txt").string();
    write_file(file, "gpu Stub GPU 0|GPU-0000|1000000|250000|75|20|61|250500|40\n"
                     "gpu Stub GPU 1|GPU-1111|2000000|0|0|0|30|50000|0\n"
                     "proc 0 4242 123456\nproc 1 4243 654321\n");
    setenv("NVML_STUB_FILE", file.c_str(), 1);
    std::string why;
    auto nvml = gpu::Nvml::open(why);
    cr_assert(nvml, "%s (is LD_LIBRARY_PATH the stub's directory?)", why.c_str());
    std::vector<perf::GpuSample> gpus;
    std::vector<perf::GpuProcess> procs;
    cr_assert(nvml->read(5, gpus, procs));
    cr_assert_eq(gpus.size(), 2u);
    cr_assert_str_eq(gpus[0].name.c_str(), "Stub GPU 0");
    cr_assert_str_eq(gpus[0].uuid.c_str(), "GPU-0000");
    cr_assert_str_eq(gpus[0].source.c_str(), "nvml");
    cr_assert_eq(gpus[0].mem_total_bytes, 1000000u);
    cr_assert_eq(gpus[0].mem_used_bytes, 250000u);
    cr_assert_float_eq(gpus[0].mem_util_pct, 25, 1e-9);
    cr_assert_float_eq(gpus[0].gpu_util_pct, 75, 1e-9);
    cr_assert_eq(gpus[0].temp_c, 61);
    cr_assert_float_eq(gpus[0].power_draw_w, 250.5, 1e-9);
    cr_assert_float_eq(gpus[0].fan_speed_pct, 40, 1e-9);
    cr_assert_eq(procs.size(), 2u);
    cr_assert_eq(procs[0].pid, 4242);
    cr_assert_eq(procs[0].gpu_index, 0);
    cr_assert_eq(procs[0].used_bytes, 123456u);
    cr_assert_eq(procs[1].gpu_index, 1);
    cr_assert_str_eq(nvml->driver_version().c_str(), "999.99-stub");
    cr_assert_float_eq(nvml->power_limit_w(0), 700, 1e-9);
    // More processes than the first guess of room: the list is asked for again.
    std::string many = "gpu G|U|10|1|0|0|0|0|0\n";
    for (int i = 0; i < 70; ++i) many += "proc 0 " + std::to_string(1000 + i) + " 1\n";
    write_file(file, many);
    gpus.clear();
    procs.clear();
    cr_assert(nvml->read(6, gpus, procs));
    cr_assert_eq(gpus.size(), 1u);
    cr_assert_eq(procs.size(), 64u); // the stub's own bound
    nvml.reset();
    write_file(file, "init fail\n");
    cr_assert_null(gpu::Nvml::open(why));
    cr_assert(why.find("nvmlInit_v2") != std::string::npos, "%s", why.c_str());
    fs::remove_all(root);
}
