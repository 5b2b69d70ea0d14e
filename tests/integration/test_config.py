#!/usr/bin/env python3
"""Config-driven behaviour end to end: groups (swap/exclusive/persistent), macros, env,
checkEndpoint, and SIGHUP reload."""

import os
import signal
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def groups_config():
    return {
        "models": {m: {"cmd": h.fake_cmd(model=m)} for m in ("a", "b", "c", "p", "x", "y")},
        "groups": {
            "together": {"swap": False, "exclusive": False, "members": ["a", "b"]},
            "keep": {"persistent": True, "exclusive": False, "members": ["p"]},
            "pair": {"swap": True, "exclusive": False, "members": ["x", "y"]},
        },
    }


class Groups(unittest.TestCase):
    def load(self, d, model):
        r = d.chat(model, timeout=30)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["request_model"], model)
        return d.running_models()

    def test_swap_false_group_runs_together(self):
        with h.Daemon(groups_config()) as d:
            self.assertEqual(self.load(d, "a"), ["a"])
            self.assertEqual(self.load(d, "b"), ["a", "b"])
            self.assertEqual(self.load(d, "a"), ["a", "b"])
            self.assertEqual(d.starts("a"), 1)

    def test_swap_true_group_swaps_within(self):
        with h.Daemon(groups_config()) as d:
            self.assertEqual(self.load(d, "x"), ["x"])
            self.assertEqual(self.load(d, "y"), ["y"])

    def test_non_exclusive_groups_coexist(self):
        with h.Daemon(groups_config()) as d:
            self.assertEqual(self.load(d, "a"), ["a"])
            self.assertEqual(self.load(d, "x"), ["a", "x"])

    def test_persistent_survives_exclusive_load(self):
        with h.Daemon(groups_config()) as d:
            self.assertEqual(self.load(d, "p"), ["p"])
            self.assertEqual(self.load(d, "a"), ["a", "p"])
            self.assertEqual(self.load(d, "b"), ["a", "b", "p"])
            # c is ungrouped: the (default) group is exclusive and evicts every other
            # non-persistent group.
            self.assertEqual(self.load(d, "c"), ["c", "p"])
            self.assertEqual(d.starts("p"), 1)

    def test_non_exclusive_load_keeps_exclusive_group(self):
        # The original's documented gotcha: loading a non-exclusive model does not evict
        # models of exclusive groups.
        with h.Daemon(groups_config()) as d:
            self.assertEqual(self.load(d, "c"), ["c"])
            self.assertEqual(self.load(d, "a"), ["a", "c"])


class Features(unittest.TestCase):
    def test_macros_and_model_id(self):
        cfg = {"macros": {"fake": h.FAKE_UPSTREAM, "tokens": 3},
               "models": {"mac": {"cmd": "${fake} --port ${PORT} --model ${MODEL_ID} "
                                         "--tokens ${tokens}"}}}
        with h.Daemon(cfg) as d:
            r = d.chat("mac")
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["model"], "mac")
            self.assertEqual(doc["usage"]["completion_tokens"], 3)
            cmd = d.running()[0]["cmd"]
            self.assertNotIn("${", cmd)

    def test_model_macros_override_global(self):
        cfg = {"macros": {"fake": h.FAKE_UPSTREAM, "tokens": 3},
               "models": {"mac": {"cmd": "${fake} --port ${PORT} --tokens ${tokens}",
                                  "macros": {"tokens": 5}}}}
        with h.Daemon(cfg) as d:
            r = d.chat("mac")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["usage"]["completion_tokens"], 5)

    def test_env_reaches_upstream(self):
        def cfg(d):
            out = os.path.join(d.tmp, "env.txt")
            return {"models": {"e": {
                "cmd": "/bin/sh -c 'env > %s; exec %s --port ${PORT} --model e'"
                       % (out, h.FAKE_UPSTREAM),
                "env": ["LS_TEST_VAR=hello world", "LS_OTHER=2"]}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("e").status, 200)
            with open(os.path.join(d.tmp, "env.txt")) as f:
                env = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
            self.assertEqual(env.get("LS_TEST_VAR"), "hello world")
            self.assertEqual(env.get("LS_OTHER"), "2")
            # The environment is inherited (PATH is there), but not systemd's socket variables.
            self.assertIn("PATH", env)
            for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
                self.assertNotIn(k, env, "%s leaked into the upstream's environment" % k)

    def test_listening_socket_not_inherited(self):
        with h.Daemon({"models": {"m": {"cmd": h.fake_cmd(model="m")}}}) as d:
            self.assertEqual(d.chat("m").status, 200)
            pid = d.running()[0]["pid"]
            listen_inode = os.readlink("/proc/%d/fd/3" % d.proc.pid)
            self.assertTrue(listen_inode.startswith("socket:"), listen_inode)
            up = {os.readlink("/proc/%d/fd/%s" % (pid, f)) for f in os.listdir("/proc/%d/fd" % pid)}
            self.assertNotIn(listen_inode, up, "the upstream inherited the daemon's listening socket")

    def test_custom_check_endpoint(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", health_path="/custom-health",
                                                  load_delay_ms=300),
                                "checkEndpoint": "/custom-health"}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)

    def test_check_endpoint_none(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m"), "checkEndpoint": "none"}}}
        with h.Daemon(cfg) as d:
            # Ready at once: the first request may race the upstream's bind, so allow a retry.
            r = d.chat("m", timeout=30)
            if r.status != 200:
                time.sleep(0.5)
                r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)

    def test_sighup_reload_adds_model(self):
        with h.Daemon({"models": {"m": {"cmd": h.fake_cmd(model="m")}}}) as d:
            self.assertEqual([m["id"] for m in d.request("GET", "/v1/models").json()["data"]], ["m"])
            text = h.to_yaml({"logLevel": "debug", "models": {
                "m": {"cmd": h.fake_cmd(model="m")}, "n": {"cmd": h.fake_cmd(model="n")}}})
            with open(d.config_path, "w") as f:
                f.write(text + "\n")
            d.proc.send_signal(signal.SIGHUP)
            h.wait_until(lambda: sorted(m["id"] for m in d.request("GET", "/v1/models")
                                        .json()["data"]) == ["m", "n"], 5,
                         what="the reloaded model list")
            self.assertIsNone(d.proc.poll())
            self.assertEqual(d.chat("n").status, 200)

    def test_sighup_invalid_config_keeps_old(self):
        with h.Daemon({"models": {"m": {"cmd": h.fake_cmd(model="m")}}}) as d:
            with open(d.config_path, "w") as f:
                f.write("models:\n  m: [\n")
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            self.assertIsNone(d.proc.poll(), "the daemon died on a bad reload")
            self.assertEqual(d.request("GET", "/health").status, 200)
            self.assertEqual(d.chat("m").status, 200)


if __name__ == "__main__":
    h.main()
