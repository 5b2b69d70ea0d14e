#!/usr/bin/env python3
"""The scope backend (`backend: scope`): each model runs in a transient
llama-swap-<id>.scope of a systemd manager, which enforces its limits.

There is no systemd PID 1 here: the tests start a confined `systemd --user` (its own cgroups
first, a private /run/systemd, a private XDG_RUNTIME_DIR) once for the file, point the
daemon's XDG_RUNTIME_DIR at it, and stop it at the end (sd/sdlib.py: UserManager). Every test
skips, with the reason, when that manager cannot run."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sd"))
import sdlib  # noqa: E402
from sdlib import h  # noqa: E402

sdlib.exit_cleanly_on_sigterm()

ALLOC_300M = ("python3 -c \"import time; print('allocating', flush=True); time.sleep(0.5); "
              "b = b'x' * (300 * 1024 * 1024); print('survived', flush=True); time.sleep(60)\"")


def expected_unit(model_id):
    """llama-swap-<systemd-escape id>.scope (systemd-escape when installed)."""
    tool = shutil.which("systemd-escape")
    if tool:
        esc = subprocess.run([tool, model_id], stdout=subprocess.PIPE,
                             universal_newlines=True, check=True).stdout.strip()
        return "llama-swap-%s.scope" % esc
    return None


def entry(d, model):
    for e in d.running():
        if e["model"] == model:
            return e
    return None


class Scope(unittest.TestCase):
    def setUp(self):
        self.mgr, why = sdlib.user_manager()
        if self.mgr is None:
            self.skipTest("no systemd user manager: %s" % why)

    def daemon(self, models, **kw):
        cfg = {"backend": "scope", "models": models}
        return sdlib.SdDaemon(cfg, env=self.mgr.env(), **kw)

    def units(self):
        """llama-swap-* units the manager knows (any state)."""
        r = self.mgr.systemctl("list-units", "--all", "--plain", "--no-legend", "llama-swap-*")
        return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]

    def assert_no_units(self, what):
        h.wait_until(lambda: not self.units(), 5, what="no llama-swap unit %s (have %s)"
                     % (what, self.units()))

    def test_model_runs_in_scope_with_memory_max(self):
        with self.daemon({"m": {"cmd": h.fake_cmd(model="m"), "memoryMax": "256M"}}) as d:
            self.assertIn("scope backend: models run in transient units", d.log())
            self.assertEqual(d.chat("m").status, 200)
            e = entry(d, "m")
            self.assertEqual(e["unit"], "llama-swap-m.scope", e)
            self.assertNotIn("cgroup", e, "the scope backend must not make fork-backend cgroups")
            self.assertIsInstance(e["memoryBytes"], (int, float))
            self.assertGreater(e["memoryBytes"], 0, e)
            r = self.mgr.systemctl("is-active", "llama-swap-m.scope")
            self.assertEqual(r.stdout.strip(), "active", r)
            r = self.mgr.systemctl("show", "llama-swap-m.scope", "-p", "MemoryMax", "-p",
                                   "ControlGroup", "-p", "Description")
            props = sdlib.fields(r.stdout)
            self.assertEqual(props.get("MemoryMax"), str(256 * 1024 * 1024), r.stdout)
            self.assertEqual(props.get("Description"),
                             "llama-swap model m (llama-swap pid %d)" % d.proc.pid)
            # The upstream itself is in the scope's cgroup (it was moved before exec).
            with open("/proc/%d/cgroup" % e["pid"]) as f:
                self.assertIn("/llama-swap-m.scope", f.read())
            self.assertTrue(props.get("ControlGroup", "").endswith("/llama-swap-m.scope"), props)

            r = d.request("POST", "/api/models/unload")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.running(), [])
            self.assert_no_units("after unload")

    def test_other_limits_become_unit_properties(self):
        # A user manager does not enforce DevicePolicy/DeviceAllow (nor, here, cpusets), but
        # the unit must carry them as configured.
        m = {"cmd": h.fake_cmd(model="m"), "memoryHigh": "128M", "cpuQuota": "50%",
             "allowedCPUs": "0", "gpus": [1]}
        with self.daemon({"m": m}) as d:
            self.assertEqual(d.chat("m").status, 200)
            r = self.mgr.systemctl("show", "llama-swap-m.scope", "-p", "MemoryHigh", "-p",
                                   "CPUQuotaPerSecUSec", "-p", "AllowedCPUs", "-p",
                                   "DevicePolicy", "-p", "DeviceAllow", "-p", "Slice", "-p",
                                   "CollectMode")
            props = sdlib.fields(r.stdout)
            self.assertEqual(props.get("MemoryHigh"), str(128 * 1024 * 1024), r.stdout)
            self.assertEqual(props.get("CPUQuotaPerSecUSec"), "500ms", r.stdout)
            self.assertEqual(props.get("AllowedCPUs"), "0", r.stdout)
            self.assertEqual(props.get("DevicePolicy"), "closed", r.stdout)
            allow = [l for l in r.stdout.splitlines() if l.startswith("DeviceAllow=")]
            allow = " ; ".join(allow)
            self.assertIn("/dev/nvidia1 rw", allow)
            self.assertIn("/dev/nvidiactl rw", allow)
            self.assertNotIn("/dev/nvidia0", allow)
            self.assertEqual(props.get("Slice"), "llama-swap.slice")
            self.assertEqual(props.get("CollectMode"), "inactive-or-failed")
            with open("/proc/%d/environ" % entry(d, "m")["pid"], "rb") as f:
                env = f.read().split(b"\0")
            self.assertIn(b"CUDA_VISIBLE_DEVICES=1", env)

    def test_oom_kill_in_scope_reported_failed(self):
        with self.daemon({"big": {"cmd": ALLOC_300M, "memoryMax": "64M",
                                  "checkEndpoint": "none", "proxy": "http://127.0.0.1:9"}}) as d:
            d.chat("big")  # starts it (the answer is a 502: nothing listens on port 9)
            e = h.wait_until(lambda: (lambda x: x if x and x["state"] == "failed" else None)(
                entry(d, "big")), 15, what="the model to be reported failed")
            self.assertIn("OOM killer", e.get("error", ""), e)
            self.assertNotIn("[big] survived", d.log(), "the 300 MB allocation succeeded under 64M")
            self.assert_no_units("after the OOM kill")

    def test_external_sigkill_not_reported_as_oom(self):
        # A model with memoryMax killed by someone else (an operator's kill -9) did not hit
        # its memory limit: the fork backend says "exited unexpectedly (signal Killed)", and
        # the scope backend must not claim an OOM kill either.
        with self.daemon({"m": {"cmd": h.fake_cmd(model="m"), "memoryMax": "256M"}}) as d:
            self.assertEqual(d.chat("m").status, 200)
            os.kill(entry(d, "m")["pid"], signal.SIGKILL)
            e = h.wait_until(lambda: (lambda x: x if x and x["state"] == "failed" else None)(
                entry(d, "m")), 10, what="the model to be reported failed")
            self.assertNotIn("OOM", e.get("error", ""), e)
            self.assertIn("signal Killed", e.get("error", ""), e)

    def test_escaped_grandchild_killed_on_unload(self):
        # A grandchild in a session of its own is out of the model's process group but in
        # its scope: stopping the unit takes it down.
        def cfg(d):
            self.pidfile = os.path.join(d.tmp, "escapee.pid")
            cmd = ("sh -c 'setsid sleep 300 & echo $! > %s; exec %s --port ${PORT} --model e'"
                   % (self.pidfile, h.FAKE_UPSTREAM))
            return {"backend": "scope", "models": {"e": {"cmd": cmd}}}
        with sdlib.SdDaemon(cfg, env=self.mgr.env()) as d:
            self.assertEqual(d.chat("e").status, 200)
            pid = h.wait_until(lambda: h.read_pid_file(self.pidfile), 5, what="the pid file")[0]
            try:
                with open("/proc/%d/cgroup" % pid) as f:
                    self.assertIn("/llama-swap-e.scope", f.read())
                self.assertEqual(d.request("POST", "/api/models/unload/e").status, 200)
                h.wait_until(lambda: not h.pid_alive(pid), 10,
                             what="the escaped grandchild %d to be killed" % pid)
                self.assert_no_units("after the unload")
            finally:
                if h.pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)

    def test_escaped_unit_names(self):
        models = {"org/m2": {"cmd": h.fake_cmd(model="org/m2")},
                  "q-7b.gguf": {"cmd": h.fake_cmd(model="q-7b.gguf")}}
        with self.daemon(models) as d:
            for mid, unit in (("org/m2", "llama-swap-org-m2.scope"),
                              ("q-7b.gguf", "llama-swap-q\\x2d7b.gguf.scope")):
                self.assertEqual(d.chat(mid).status, 200)
                e = entry(d, mid)
                self.assertEqual(e["unit"], unit, e)
                tool_says = expected_unit(mid)
                if tool_says:
                    self.assertEqual(e["unit"], tool_says, "differs from systemd-escape")
                r = self.mgr.systemctl("is-active", unit)
                self.assertEqual(r.stdout.strip(), "active", (unit, r))

    def test_no_unit_left_after_daemon_exit(self):
        models = {"a": {"cmd": h.fake_cmd(model="a")}, "b": {"cmd": h.fake_cmd(model="b")}}
        cfg = {"backend": "scope", "models": models,
               "groups": {"g": {"swap": False, "members": ["a", "b"]}}}
        with sdlib.SdDaemon(cfg, env=self.mgr.env()) as d:
            self.assertEqual(d.chat("a").status, 200)
            self.assertEqual(d.chat("b").status, 200)
            self.assertEqual(sorted(self.units()), ["llama-swap-a.scope", "llama-swap-b.scope"])
            self.assertEqual(d.terminate(15), 0, d.log()[-2000:])
            self.assert_no_units("after the daemon exited")

    def test_daemon_sigkill_leaves_no_unit(self):
        # The guard stops the upstreams of a SIGKILLed daemon; the manager then collects the
        # (now empty) scope, whose CollectMode is inactive-or-failed.
        with self.daemon({"m": {"cmd": h.fake_cmd(model="m")}}) as d:
            self.assertEqual(d.chat("m").status, 200)
            pid = entry(d, "m")["pid"]
            d.kill()
            h.wait_until(lambda: not h.pid_alive(pid), 10, what="the upstream to die")
            self.assert_no_units("after the daemon was SIGKILLed")


    def test_next_daemon_stops_the_scope_a_dead_one_left(self):
        # Daemon and guard die together (not a unit here, so no BindsTo= stops the scope): the
        # next daemon finds the scope by its owner's pid in its Description, kills and stops
        # it, and starts the model in a scope of the same name.
        models = {"m": {"cmd": h.fake_cmd(model="m", ignore_sigterm=True), "unloadTimeout": 1}}
        with self.daemon(models) as d1:
            self.assertEqual(d1.chat("m").status, 200)
            upstream = entry(d1, "m")["pid"]
            h.kill_daemon_and_guard(d1.proc.pid)
            d1.proc.wait(10)
            try:
                self.assertTrue(h.pid_alive(upstream), "premise: the model lives on")
                self.assertEqual(self.units(), ["llama-swap-m.scope"])
                with self.daemon(models) as d2:
                    h.wait_until(lambda: not h.pid_alive(upstream), 5,
                                 what="the model the dead daemon left to be killed")
                    self.assertIn("cleaned up after an earlier llama-swap: scope "
                                  "llama-swap-m.scope (left by llama-swap pid %d, killed and "
                                  "stopped)" % d1.proc.pid, d2.log())
                    r = d2.chat("m")
                    self.assertEqual(r.status, 200, r)
                    self.assertNotEqual(entry(d2, "m")["pid"], upstream)
            finally:
                if h.pid_alive(upstream):
                    os.kill(upstream, signal.SIGKILL)


class ScopeWithoutManager(unittest.TestCase):
    """backend: scope, but no manager reachable: the start fails with a clear 502."""

    def setUp(self):
        if os.path.exists("/run/systemd/private") and os.geteuid() == 0:
            self.skipTest("this host runs a system manager: a scope backend is always reachable")

    def check(self, env):
        cfg = {"backend": "scope", "models": {"m": {"cmd": h.fake_cmd(model="m")}}}
        with sdlib.SdDaemon(cfg, env=env) as d:
            self.assertIn("scope backend unavailable", d.log())
            r = d.chat("m")
            self.assertEqual(r.status, 502, r)
            self.assertIn("no systemd service manager is reachable", r.json()["error"]["message"])
            self.assertEqual(d.starts("m"), 0, "the upstream must not run unfenced")

    def test_runtime_dir_unset(self):
        self.check({"XDG_RUNTIME_DIR": None})

    def test_runtime_dir_without_manager(self):
        empty = tempfile.mkdtemp(prefix="lsum-empty-")
        try:
            self.check({"XDG_RUNTIME_DIR": empty})
        finally:
            os.rmdir(empty)

    def test_auto_falls_back_to_fork(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m")}}}  # backend: auto
        with sdlib.SdDaemon(cfg, env={"XDG_RUNTIME_DIR": None}) as d:
            self.assertEqual(d.chat("m").status, 200)
            self.assertNotIn("unit", entry(d, "m"))


if __name__ == "__main__":
    h.main()
