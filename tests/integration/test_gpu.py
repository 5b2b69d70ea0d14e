#!/usr/bin/env python3
"""The performance sampler and GPUs without a GPU: the daemon loads tests/nvml-stub's
libnvidia-ml.so.1 (LD_LIBRARY_PATH=$NVML_STUB_DIR), which answers from $NVML_STUB_FILE.
GET /api/hardware, GET /api/performance (?after=, 400, 503 when disabled, reload), and the
per-model GPU memory in /running (the stub lists the fake upstream's pid and its grandchild's)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

STUB_DIR = os.environ.get("NVML_STUB_DIR", os.path.join(h.ROOT, "build", "tests", "nvml-stub"))
GIB = 1 << 30
# Sampling waits: performance.every is at least 5 s, so a second sample takes that long.
SAMPLE_WAIT = 30


class StubGpu:
    """The stub's answer file, rewritten atomically (the sampler reads it on its own thread)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="llama-swap-nvml-")
        self.path = os.path.join(self.dir, "nvml.txt")

    def write(self, procs=(), gpus=None):
        gpus = gpus if gpus is not None else [
            "Stub H200|GPU-5710b000-0000-0000-0000-000000000001|%d|%d|87|30|61|412500|35"
            % (140 * GIB, 24 * GIB)]
        lines = ["gpu " + g for g in gpus]
        lines += ["proc %d %d %d" % p for p in procs]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.path)

    def env(self):
        old = os.environ.get("LD_LIBRARY_PATH")
        return {"LD_LIBRARY_PATH": STUB_DIR + (":" + old if old else ""),
                "NVML_STUB_FILE": self.path}


class StubEnv:
    """Sets the stub's variables for daemons started inside the block (harness copies
    os.environ when it starts one)."""

    def __init__(self, values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return self

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def host_has_gpu_source():
    if os.path.exists("/usr/bin/nvidia-smi") or os.path.exists("/bin/nvidia-smi"):
        return True
    drm = "/sys/class/drm"
    return os.path.isdir(drm) and any(
        os.path.exists(os.path.join(drm, c, "device", "mem_info_vram_total"))
        for c in os.listdir(drm))


def config(**perf):
    cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m")}}}
    if perf:
        cfg["performance"] = perf
    return cfg


def performance(d, query=""):
    r = d.request("GET", "/api/performance" + query)
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    return r.json()


class GpuTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(STUB_DIR, "libnvidia-ml.so.1")):
            raise unittest.SkipTest("no stub libnvidia-ml.so.1 in " + STUB_DIR)

    def setUp(self):
        self.stub = StubGpu()
        self.addCleanup(shutil.rmtree, self.stub.dir, True)

    def test_hardware_and_performance_through_nvml(self):
        self.stub.write()
        with StubEnv(self.stub.env()), h.Daemon(config()) as d:
            hw = h.wait_until(lambda: (lambda r: r.status == 200 and r.json())(
                d.request("GET", "/api/hardware")), SAMPLE_WAIT, what="/api/hardware")
            self.assertEqual(hw["schema_version"], 1)
            self.assertEqual(hw["capture"], {"scope": "inference_host", "method": "detected",
                                             "detector": hw["capture"]["detector"]})
            self.assertEqual(hw["capture"]["detector"]["name"], "llama-swap")
            self.assertEqual(hw["operating_system"]["family"], "linux")
            self.assertGreater(hw["memory"]["capacity_bytes"], 0)
            self.assertGreaterEqual(hw["cpu"]["logical_thread_count"], 1)
            for key in ("architecture", "environment", "cpu"):
                self.assertIn(key, hw)
            self.assertEqual(len(hw["accelerators"]), 1, hw)
            acc = hw["accelerators"][0]
            self.assertEqual(acc["index"], 0)
            self.assertEqual(acc["kind"], "gpu")
            self.assertEqual(acc["vendor"], "NVIDIA")
            self.assertEqual(acc["model"], "Stub H200")
            self.assertEqual(acc["memory"], {"kind": "dedicated", "capacity_bytes": 140 * GIB})
            self.assertEqual(acc["driver"], {"name": "NVIDIA", "version": "999.99-stub"})
            self.assertEqual(acc["power_limit_watts"], 700)

            # The first sample is taken at start; the GPU is read through NVML.
            p = h.wait_until(lambda: (lambda j: j["sys_stats"] and j["gpu_stats"] and j)(
                performance(d)), SAMPLE_WAIT, what="a first sample")
            self.assertIs(p["enabled"], True)
            s = p["sys_stats"][0]
            for key in ("timestamp", "cpu_util_per_core", "mem_total_mb", "mem_used_mb",
                        "mem_free_mb", "swap_total_mb", "swap_used_mb", "load_avg_1",
                        "load_avg_5", "load_avg_15", "net_io"):
                self.assertIn(key, s)
            self.assertGreater(s["mem_total_mb"], 0)
            self.assertGreaterEqual(len(s["cpu_util_per_core"]), 1)
            for c in s["cpu_util_per_core"]:
                self.assertTrue(0 <= c <= 100, c)
            self.assertTrue(all(n["name"] != "lo" for n in s["net_io"]))
            g = p["gpu_stats"][0]
            self.assertEqual(g["id"], 0)
            self.assertEqual(g["name"], "Stub H200")
            self.assertEqual(g["uuid"], "GPU-5710b000-0000-0000-0000-000000000001")
            self.assertEqual(g["mem_total_mb"], 140 * 1024)
            self.assertEqual(g["mem_used_mb"], 24 * 1024)
            self.assertAlmostEqual(g["mem_util_pct"], 100.0 * 24 / 140, places=6)
            self.assertEqual(g["gpu_util_pct"], 87)
            self.assertEqual(g["temp_c"], 61)
            self.assertEqual(g["fan_speed_pct"], 35)
            self.assertAlmostEqual(g["power_draw_w"], 412.5)
            self.assertEqual(g["source"], "nvml")
            self.assertEqual(g["timestamp"], s["timestamp"])

            # ?after= keeps what came strictly later: nothing after the newest, the newer
            # ones after the first (a second sample comes `every` later).
            p = h.wait_until(lambda: (lambda j: len(j["sys_stats"]) >= 2 and j)(
                performance(d)), SAMPLE_WAIT, interval=0.5, what="a second sample")
            stamps = [x["timestamp"] for x in p["sys_stats"]]
            self.assertEqual(stamps, sorted(stamps))
            later = performance(d, "?after=" + stamps[0])
            self.assertEqual(len(later["sys_stats"]), len(stamps) - 1)
            self.assertTrue(all(x["timestamp"] > stamps[0] for x in later["sys_stats"]))
            self.assertTrue(all(x["timestamp"] > stamps[0] for x in later["gpu_stats"]))
            self.assertEqual(len(later["gpu_stats"]), len(later["sys_stats"]))
            none = performance(d, "?after=" + p["sys_stats"][-1]["timestamp"])
            self.assertEqual(len(none["gpu_stats"]), 0)
            # offsets name the same instant
            everything = performance(d, "?after=1970-01-01T01:00:00%2B01:00")
            self.assertGreaterEqual(len(everything["sys_stats"]), len(stamps))
            bad = d.request("GET", "/api/performance?after=yesterday")
            self.assertEqual(bad.status, 400, bad)
            self.assertIn("RFC3339", bad.body.decode())
            self.assertIn("GPUs read through nvml", d.log())

    def test_running_shows_each_models_gpu_memory(self):
        self.stub.write()
        with StubEnv(self.stub.env()), h.Daemon(lambda d: {"models": {
                "m": {"cmd": h.fake_cmd(model="m", fork_grandchild=True,
                                        pid_file=d.pid_file("m"))},
                "n": {"cmd": h.fake_cmd(model="n")}},
                "groups": {"both": {"swap": False, "members": ["m", "n"]}}}) as d:
            self.assertEqual(d.chat("m").status, 200)
            self.assertEqual(d.chat("n").status, 200)
            pids = {e["model"]: e["pid"] for e in d.running()}
            grandchild = h.wait_until(
                lambda: (lambda ps: len(ps) >= 2 and ps[1])(h.read_pid_file(d.pid_file("m"))),
                10, what="the grandchild's pid")
            # m's leader and its grandchild (same process group), n, and a stranger (us).
            self.stub.write(procs=[(0, pids["m"], 3 * GIB), (0, grandchild, 1 * GIB),
                                   (0, pids["n"], 5 * GIB), (0, os.getpid(), 7 * GIB)])
            h.wait_until(lambda: {e["model"]: e.get("gpuMemoryBytes") for e in d.running()}
                         == {"m": 4 * GIB, "n": 5 * GIB}, SAMPLE_WAIT, interval=0.5,
                         what="gpuMemoryBytes of m and n")
            # A model with no GPU process shows 0.
            self.stub.write(procs=[(0, pids["n"], 2 * GIB)])
            h.wait_until(lambda: {e["model"]: e.get("gpuMemoryBytes") for e in d.running()}
                         == {"m": 0, "n": 2 * GIB}, SAMPLE_WAIT, interval=0.5,
                         what="m's GPU memory gone")

    def test_disabled_is_503_and_reload_turns_it_on(self):
        self.stub.write(procs=[(0, os.getpid(), GIB)])
        with StubEnv(self.stub.env()), h.Daemon(config(disabled=True)) as d:
            r = d.request("GET", "/api/performance")
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json(), {"enabled": False})
            # /api/hardware is detected at start either way.
            hw = h.wait_until(lambda: (lambda r: r.status == 200 and r.json())(
                d.request("GET", "/api/hardware")), SAMPLE_WAIT, what="/api/hardware")
            self.assertEqual(hw["accelerators"][0]["model"], "Stub H200")
            self.assertEqual(d.chat("m").status, 200)
            self.assertNotIn("gpuMemoryBytes", d.running()[0])
            with open(d.config_path, "w") as f:
                f.write(h.to_yaml(dict(config(every="5s"), logLevel="debug")) + "\n")
            os.kill(d.proc.pid, signal.SIGHUP)
            p = h.wait_until(lambda: (lambda r: r.status == 200 and r.json()["gpu_stats"]
                                      and r.json())(d.request("GET", "/api/performance")),
                             SAMPLE_WAIT, what="sampling after the reload")
            self.assertEqual(p["gpu_stats"][0]["name"], "Stub H200")
            with open(d.config_path, "w") as f:
                f.write(h.to_yaml(dict(config(disabled=True), logLevel="debug")) + "\n")
            os.kill(d.proc.pid, signal.SIGHUP)
            h.wait_until(lambda: d.request("GET", "/api/performance").status == 503, 10,
                         what="503 after disabling again")

    def test_without_nvml_the_host_is_still_sampled(self):
        # NVML fails to initialise (as without a driver); nvidia-smi is not on PATH here.
        with StubEnv({"LD_LIBRARY_PATH": STUB_DIR, "NVML_STUB_FILE": None,
                      "PATH": "/usr/bin:/bin"}), h.Daemon(config()) as d:
            p = h.wait_until(lambda: (lambda j: j["sys_stats"] and j)(performance(d)),
                             SAMPLE_WAIT, what="a host sample")
            hw = h.wait_until(lambda: (lambda r: r.status == 200 and r.json())(
                d.request("GET", "/api/hardware")), SAMPLE_WAIT, what="/api/hardware")
            if host_has_gpu_source():
                self.skipTest("this host has a real GPU source (nvidia-smi or amdgpu sysfs)")
            self.assertEqual(p["gpu_stats"], [])
            self.assertEqual(hw["accelerators"], [])
            self.assertEqual(d.chat("m").status, 200)
            self.assertNotIn("gpuMemoryBytes", d.running()[0])
            self.assertIn("GPUs read through nothing", d.log())

    def test_every_below_5s_is_refused(self):
        path = os.path.join(self.stub.dir, "c.yaml")
        with open(path, "w") as f:
            f.write("performance: {every: 2s}\nmodels: {}\n")
        r = subprocess.run([h.LLAMA_SWAP, "--check-config", "--config", path],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("performance: every must be at least 5s, got 2s", r.stderr)


if __name__ == "__main__":
    h.main()
