#!/usr/bin/env python3
"""The fork backend's per-model cgroups (`backend: fork`): memoryMax really OOM-kills and is
reported, cpuQuota/allowedCPUs are written, GPUs a model must not see are fenced off (v1
devices controller), /running shows the cgroup and its memory, and every cgroup the daemon
made is gone after an unload and after the daemon exits.

Needs root and a writable memory cgroup (v1/v2 hybrid here; pure v2 handled too); every
test skips, with the reason, otherwise. The cgroups are found by the names the daemon gives
them: llama-swap-<model>-<daemon pid>-<n>."""

import os
import signal
import stat
import sys
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "sd"))
import sdlib  # noqa: E402
from sdlib import h  # noqa: E402

sdlib.exit_cleanly_on_sigterm()

PROBE = os.path.join(HERE, "sd", "probe_device.py")
ALLOC_300M = ("python3 -c \"import time; print('allocating', flush=True); time.sleep(1); "
              "b = b'x' * (300 * 1024 * 1024); print('survived', flush=True); time.sleep(60)\"")
NOWHERE = "http://127.0.0.1:9"  # nothing listens: requests get 502, the model keeps running

_why_not = sdlib.cgroups_usable()
LAYOUT = sdlib.cgroup_layout()


def entry(d, model):
    for e in d.running():
        if e["model"] == model:
            return e
    return None


def in_procs(directory, pid):
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return str(pid) in f.read().split()
    except OSError:
        return False


class Cgroups(unittest.TestCase):
    def setUp(self):
        if _why_not:
            self.skipTest(_why_not)
        self.daemons = []
        self.extra_pids = []

    def tearDown(self):
        # Whatever the daemons under test left behind (a failing test) is removed here, after
        # their processes are gone; the daemons' own cleanup is what the tests check.
        for pid, cmd_word in self.extra_pids:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if cmd_word.encode() in f.read():
                        os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for d in self.daemons:
            if d.proc is None or d.proc.poll() is None:
                continue  # never started, or still running (its own teardown comes first)
            left = sdlib.find_cgroup_dirs(sdlib.daemon_cgroup_pattern(d.proc.pid))
            if left:
                stayed = sdlib.remove_cgroup_dirs(left)
                sys.stderr.write("%s: teardown removed leftover cgroups %s%s\n"
                                 % (self.id(), left,
                                    "; could not remove %s" % stayed if stayed else ""))

    def daemon(self, models, **kw):
        d = sdlib.SdDaemon({"backend": "fork", "models": models}, **kw)
        self.daemons.append(d)
        return d

    def dirs(self, d, model=None):
        return sdlib.find_cgroup_dirs(sdlib.daemon_cgroup_pattern(d.pid, model))

    def assert_gone(self, d, what):
        h.wait_until(lambda: not self.dirs(d), 5,
                     what="the daemon's cgroups to be removed %s (left: %s)" % (what, self.dirs(d)))

    # ------------------------------------------------------------------------------------
    def test_running_model_cgroup_limits_and_cleanup(self):
        m = {"cmd": h.fake_cmd(model="m"), "memoryMax": "256M", "cpuQuota": "50%",
             "allowedCPUs": "0"}
        with self.daemon({"m": m}) as d:
            self.assertEqual(d.chat("m").status, 200)
            e = entry(d, "m")
            self.assertRegex(e.get("cgroup", ""), r"^llama-swap-m-%d-\d+$" % d.pid, e)
            self.assertIsInstance(e.get("memoryBytes"), (int, float), e)
            self.assertGreater(e["memoryBytes"], 0, e)
            dirs = self.dirs(d, "m")
            self.assertTrue(dirs, "no cgroup directory named %s" % e["cgroup"])
            for x in dirs:
                self.assertEqual(os.path.basename(x), e["cgroup"])
                self.assertTrue(in_procs(x, e["pid"]), "pid %d not in %s" % (e["pid"], x))
            if LAYOUT == "v2":
                (x,) = dirs
                self.assertEqual(sdlib.read_int(x + "/memory.max"), 256 << 20)
                with open(x + "/cpu.max") as f:
                    self.assertEqual(f.read().split(), ["50000", "100000"])
                with open(x + "/cpuset.cpus") as f:
                    self.assertEqual(f.read().strip(), "0")
            else:
                by_ctrl = {x[len(sdlib.CGROUP_ROOT) + 1:].split("/")[0]: x for x in dirs}
                self.assertIn("memory", by_ctrl, dirs)
                self.assertEqual(sdlib.read_int(by_ctrl["memory"] + "/memory.limit_in_bytes"),
                                 256 << 20)
                if os.path.isdir(sdlib.CGROUP_ROOT + "/cpu"):
                    cpu = by_ctrl.get("cpu") or by_ctrl.get("cpu,cpuacct")
                    self.assertIsNotNone(cpu, dirs)
                    self.assertEqual(sdlib.read_int(cpu + "/cpu.cfs_quota_us"), 50000)
                if os.path.isdir(sdlib.CGROUP_ROOT + "/cpuset"):
                    with open(by_ctrl["cpuset"] + "/cpuset.cpus") as f:
                        self.assertEqual(f.read().strip(), "0")
                # The process really counts against the limit: it is in the memory group.
                with open("/proc/%d/cgroup" % e["pid"]) as f:
                    self.assertIn(e["cgroup"], f.read())

            r = d.request("POST", "/api/models/unload")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.running(), [])
            self.assert_gone(d, "after the unload")

            # Loaded again: a new cgroup, gone once the daemon exits.
            self.assertEqual(d.chat("m").status, 200)
            e2 = entry(d, "m")
            self.assertNotEqual(e2["cgroup"], e["cgroup"])
            self.assertTrue(self.dirs(d, "m"))
            self.assertEqual(d.terminate(15), 0)
            self.assert_gone(d, "after the daemon exited")

    def test_memory_max_oom_kill_reported(self):
        with self.daemon({"big": {"cmd": ALLOC_300M, "memoryMax": "64M",
                                  "checkEndpoint": "none", "proxy": NOWHERE}}) as d:
            d.chat("big")  # starts it; the answer is a 502 (nothing listens on port 9)
            name = (entry(d, "big") or {}).get("cgroup")
            if name:  # visible while it runs (it sleeps 1 s before allocating)
                self.assertRegex(name, r"^llama-swap-big-%d-\d+$" % d.pid)
            e = h.wait_until(lambda: (lambda x: x if x and x["state"] == "failed" else None)(
                entry(d, "big")), 20, what="the model to be reported failed")
            self.assertIn("OOM killer", e.get("error", ""), e)
            self.assertIn(str(64 << 20), e["error"])
            self.assertNotIn("[big] survived", d.log(), "the 300 MB allocation succeeded")
            self.assertIn("killed by the OOM killer", d.log())
            self.assert_gone(d, "after the OOM kill")

    def test_oom_kill_while_starting_fails_waiting_request(self):
        # OOM-killed before it ever answers its health check: the waiting request gets the
        # OOM message in its 502 (README: "in /running, the log and the waiting requests' 502").
        with self.daemon({"big": {"cmd": ALLOC_300M, "memoryMax": "64M", "proxy": NOWHERE,
                                  "checkEndpoint": "/health"}}) as d:
            r = d.chat("big", timeout=30)
            self.assertEqual(r.status, 502, r)
            self.assertIn("OOM killer", r.json()["error"]["message"], r)
            e = entry(d, "big")
            self.assertEqual(e["state"], "failed", e)
            self.assertIn("OOM killer", e.get("error", ""), e)
            self.assert_gone(d, "after the OOM kill")

    def test_grandchild_in_own_session_killed_with_cgroup(self):
        # A grandchild that left the process group (setsid) is still in the model's cgroup:
        # an unload kills it too, and the cgroup can then be removed.
        with self.escapee_daemon("e") as d:
            self.assertEqual(d.chat("e").status, 200)
            pid = h.wait_until(lambda: h.read_pid_file(self.pidfile), 5, what="the pid file")[0]
            self.extra_pids.append((pid, "sleep"))
            self.assertTrue(h.pid_alive(pid))
            self.assertNotEqual(os.getpgid(pid), entry(d, "e")["pid"], "setsid did not work")
            self.assertEqual(d.request("POST", "/api/models/unload/e").status, 200)
            h.wait_until(lambda: not h.pid_alive(pid), 5,
                         what="the escaped grandchild %d to be killed" % pid)
            self.assert_gone(d, "after the unload")

    def test_device_fencing_v1(self):
        if LAYOUT == "v2" or not os.path.isdir(sdlib.CGROUP_ROOT + "/devices"):
            self.skipTest("no v1 devices controller (on pure v2 only the scope backend fences "
                          "devices)")
        st = os.stat("/dev/zero")

        def cfg(d):
            devdir = os.path.join(d.tmp, "dev")
            os.mkdir(devdir)
            # "GPU 0" is /dev/zero's device number: fencing GPU 0 off makes /dev/zero EPERM.
            os.mknod(os.path.join(devdir, "nvidia0"), 0o666 | stat.S_IFCHR, st.st_rdev)
            d.extra_env["LLAMA_SWAP_DEVICE_DIR"] = devdir
            probe = "python3 %s" % PROBE
            return {"backend": "fork", "models": {
                "g1": {"cmd": probe, "gpus": [1], "checkEndpoint": "none", "proxy": NOWHERE},
                "g0": {"cmd": probe, "gpus": [0], "checkEndpoint": "none", "proxy": NOWHERE}}}
        d = sdlib.SdDaemon(cfg)
        self.daemons.append(d)
        try:
            d.__enter__()
        except OSError as e:
            self.skipTest("cannot mknod a test device node: %s" % e)
        try:
            d.chat("g1")
            out = sdlib.read_stream_until(d.port, "/logs/stream/g1",
                                          rb"(OPENED|DENIED[^\n]*)[\s\S]*CUDA_VISIBLE_DEVICES=\S+")
            self.assertIn("DENIED (Operation not permitted)", out)
            self.assertNotIn("OPENED", out)
            self.assertIn("CUDA_VISIBLE_DEVICES=1", out)
            devs = [x for x in self.dirs(d, "g1") if "/devices/" in x]
            self.assertEqual(len(devs), 1, self.dirs(d, "g1"))

            d.chat("g0")  # swaps g1 out
            out = sdlib.read_stream_until(d.port, "/logs/stream/g0",
                                          rb"(OPENED|DENIED[^\n]*)[\s\S]*CUDA_VISIBLE_DEVICES=\S+")
            self.assertIn("OPENED", out)
            self.assertNotIn("DENIED", out)
            self.assertIn("CUDA_VISIBLE_DEVICES=0", out)
            h.wait_until(lambda: not self.dirs(d, "g1"), 5, what="g1's cgroups to be removed")
        finally:
            d.__exit__(*sys.exc_info())

    def escapee_daemon(self, model):
        """A daemon whose model forks a grandchild into a session of its own (setsid): out of
        the model's process group, but in its cgroups."""
        def cfg(d):
            self.pidfile = os.path.join(d.tmp, "escapee.pid")
            cmd = ("sh -c 'setsid sleep 300 & echo $! > %s; exec %s --port ${PORT} --model %s'"
                   % (self.pidfile, h.FAKE_UPSTREAM, model))
            return {"backend": "fork", "models": {model: {"cmd": cmd, "memoryMax": "256M"}}}
        d = sdlib.SdDaemon(cfg)
        self.daemons.append(d)
        return d

    def test_escaped_grandchild_killed_after_daemon_sigkill(self):
        # README, "No orphans": upstreams are killed "even if the daemon itself is SIGKILLed".
        # The guard kills the model's process group; a grandchild that left the group is
        # still in the model's cgroup (cgroup.kill is there) and must not survive either.
        with self.escapee_daemon("s") as d:
            self.assertEqual(d.chat("s").status, 200)
            upstream = entry(d, "s")["pid"]
            pid = h.wait_until(lambda: h.read_pid_file(self.pidfile), 5, what="the pid file")[0]
            self.extra_pids.append((pid, "sleep"))
            d.kill()
            h.wait_until(lambda: not h.pid_alive(upstream), 10, what="the upstream to die")
            # The guard gives the group 5 s after SIGTERM; 10 s is generous.
            h.wait_until(lambda: not h.pid_alive(pid), 10,
                         what="grandchild %d (own session, in the model's cgroup) to die after "
                              "the daemon was SIGKILLed" % pid)

    def test_cgroups_removed_after_daemon_sigkill(self):
        # The guard kills the upstreams' process groups of a SIGKILLed daemon; the model's
        # cgroups (empty then) must not be left behind for ever either.
        with self.daemon({"k": {"cmd": h.fake_cmd(model="k"), "memoryMax": "256M"}}) as d:
            self.assertEqual(d.chat("k").status, 200)
            pid = entry(d, "k")["pid"]
            self.assertTrue(self.dirs(d, "k"))
            d.kill()
            h.wait_until(lambda: not h.pid_alive(pid), 10, what="the upstream to die")
            self.assert_gone(d, "after the daemon was SIGKILLed")

    def test_next_daemon_cleans_what_a_dead_one_left(self):
        # Daemon and guard die together: nothing is left to kill the model, which ignores
        # SIGTERM. The next daemon (same parent cgroup) finds the cgroup by its name, kills
        # what is in it, removes it and says so; then it serves the model itself.
        models = {"k": {"cmd": h.fake_cmd(model="k", ignore_sigterm=True), "memoryMax": "256M",
                        "unloadTimeout": 1}}
        with self.daemon(models) as d1:
            self.assertEqual(d1.chat("k").status, 200)
            upstream = entry(d1, "k")["pid"]
            self.extra_pids.append((upstream, "fake-upstream"))
            left = self.dirs(d1, "k")
            self.assertTrue(left)
            self.assertTrue(h.kill_daemon_and_guard(d1.proc.pid), "the daemon has a guard")
            d1.proc.wait(10)
            self.assertTrue(h.pid_alive(upstream), "premise: with both dead, the model lives on")
            with self.daemon(models) as d2:
                h.wait_until(lambda: not h.pid_alive(upstream), 5,
                             what="the model the dead daemon left to be killed")
                # removed once their processes are gone (retried, never waited for at start)
                h.wait_until(lambda: not self.dirs(d1), 5, what="its cgroups to be removed")
                log = d2.log()
                self.assertIn("cleaned up after an earlier llama-swap: cgroup", log)
                # Killed by d2 (1 process), or a moment earlier by another test's daemon that
                # started beside it in the runner's cgroup (d2 then finds the cgroup empty, not
                # yet removed): the model's death is asserted above either way.
                self.assertRegex(log, r"left by llama-swap pid %d, (1 process|0 processes) killed\)"
                                 % d1.proc.pid)
                self.assertEqual(d2.chat("k").status, 200)
                # A live daemon's cgroups are not another's to clean: a third daemon beside
                # d2 leaves them alone.
                mine = self.dirs(d2, "k")
                self.assertTrue(mine)
                with self.daemon(models) as d3:
                    self.assertNotIn("cleaned up after an earlier", d3.log())
                    self.assertEqual(self.dirs(d2, "k"), mine)
                    self.assertEqual(d2.chat("k").status, 200)


if __name__ == "__main__":
    h.main()
