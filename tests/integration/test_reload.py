#!/usr/bin/env python3
"""Configuration reload (SIGHUP, --watch-config): unchanged models keep running, changed ones
restart once drained, removed ones stop, a broken file keeps the running configuration."""

import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402


def base_cfg():
    return {"models": {
        "a": {"cmd": h.fake_cmd(model="a"), "aliases": ["old-alias"], "name": "Old name"},
        "b": {"cmd": h.fake_cmd(model="b")},
    }, "groups": {"both": {"swap": False, "members": ["a", "b"]}}}


def content(r):
    return r.json()["choices"][0]["message"]["content"]


class Reload(unittest.TestCase):
    def pid_of(self, d, model):
        for e in d.running():
            if e["model"] == model:
                return e["pid"]
        return None

    def test_unchanged_model_keeps_running(self):
        with h4.Daemon(base_cfg()) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid = self.pid_of(d, "a")
            # Same file, and the same file rewritten.
            self.assertTrue(d.sighup())
            d.write_config(base_cfg())
            self.assertTrue(d.sighup())
            self.assertEqual(self.pid_of(d, "a"), pid)
            self.assertTrue(h.pid_alive(pid))
            for _ in range(3):
                r = d.chat("a")
                self.assertEqual(r.status, 200, r)
            self.assertEqual(self.pid_of(d, "a"), pid)
            self.assertEqual(d.starts("a"), 1)
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_name_and_alias_change_keeps_pid(self):
        with h4.Daemon(base_cfg()) as d:
            self.assertEqual(d.chat("old-alias").status, 200)
            pid = self.pid_of(d, "a")
            cfg = base_cfg()
            cfg["models"]["a"].update(aliases=["new-alias"], name="New name",
                                      description="now described", ttl=600,
                                      metadata={"k": 1})
            d.write_config(cfg)
            self.assertTrue(d.sighup())
            self.assertEqual(self.pid_of(d, "a"), pid, "a name/alias change restarted the model")
            r = d.chat("new-alias")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.pid_of(d, "a"), pid)
            self.assertEqual(d.starts("a"), 1)
            r = d.chat("old-alias")
            self.assertEqual(r.status, 404, r)
            self.assertEqual(h4.err_code(r), "model_not_found")
            run = {e["model"]: e for e in d.running()}
            self.assertEqual(run["a"]["name"], "New name")
            self.assertEqual(run["a"]["description"], "now described")
            self.assertEqual(run["a"]["ttl"], 600)
            recs = {m["id"]: m for m in d.request("GET", "/v1/models").json()["data"]}
            self.assertEqual(recs["a"]["name"], "New name")
            self.assertEqual(recs["a"]["meta"]["llamaswap"]["aliases"], ["new-alias"])
            self.assertEqual(recs["a"]["meta"]["llamaswap"]["k"], 1)
            self.assertEqual(recs["a"]["status"]["value"], "loaded")

    def start_slow_then_change_cmd(self, d):
        """a and b running, a slow request in flight on a; then a's cmd changes (SIGHUP)."""
        self.assertEqual(d.chat("a").status, 200)
        self.assertEqual(d.chat("b").status, 200)
        pid_a, pid_b = self.pid_of(d, "a"), self.pid_of(d, "b")
        slow = h4.Background(lambda: d.chat("a", path="/v1/chat/completions?delay_ms=1500",
                                             timeout=20))
        h.wait_until(lambda: {e["model"]: e for e in d.running()}["a"]["inFlight"] == 1, 3,
                     what="the slow request in flight")
        cfg = base_cfg()
        cfg["queueTimeout"] = 6  # a request stuck waiting gets 503 instead of hanging the test
        cfg["models"]["a"]["cmd"] = h.fake_cmd(model="a", respond="NEWCMD")
        d.write_config(cfg)
        self.assertTrue(d.sighup())
        # The old process still serves its request.
        self.assertTrue(h.pid_alive(pid_a), "the old process was stopped under a request")
        return pid_a, pid_b, slow

    def check_restarted(self, d, pid_a, pid_b):
        h.wait_until(lambda: not h.pid_alive(pid_a), 5, what="the old process to be gone")
        new_pid = self.pid_of(d, "a")
        self.assertIsNotNone(new_pid)
        self.assertNotEqual(new_pid, pid_a)
        run = {e["model"]: e for e in d.running()}
        self.assertIn("--respond NEWCMD", run["a"]["cmd"])
        self.assertEqual(d.starts("a"), 2, "the model was started more than once after the reload")
        # b, unchanged, was left alone.
        self.assertEqual(self.pid_of(d, "b"), pid_b)
        self.assertEqual(d.starts("b"), 1)

    def test_cmd_change_restarts_after_in_flight_requests(self):
        with h4.Daemon(base_cfg()) as d:
            pid_a, pid_b, slow = self.start_slow_then_change_cmd(d)
            r = slow.result()
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("NEWCMD", content(r), "the slow request was served by the old cmd")
            h.wait_until(lambda: not h.pid_alive(pid_a), 5, what="the old process to stop once drained")
            r = d.chat("a")
            self.assertEqual(r.status, 200, r)
            self.assertIn("NEWCMD", content(r))
            self.check_restarted(d, pid_a, pid_b)

    def test_request_arriving_during_cmd_change_drain_gets_new_cmd(self):
        # "requests that arrive meanwhile wait for it" (llama-swap(8), Reload): a request sent
        # while the old process drains must be served by the restarted, new-cmd process.
        with h4.Daemon(base_cfg()) as d:
            pid_a, pid_b, slow = self.start_slow_then_change_cmd(d)
            later = h4.Background(lambda: d.chat("a", timeout=15))
            r = slow.result()
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("NEWCMD", content(r), "the slow request was served by the old cmd")
            r = later.result(20)
            self.assertEqual(r.status, 200, "request queued during the drain: %r (%d starts of a; "
                             "restart loop?)" % (r, d.starts("a")))
            self.assertIn("NEWCMD", content(r))
            self.check_restarted(d, pid_a, pid_b)

    def test_removed_model_404_and_stopped(self):
        with h4.Daemon(base_cfg()) as d:
            self.assertEqual(d.chat("a").status, 200)
            self.assertEqual(d.chat("b").status, 200)
            pid_a, pid_b = self.pid_of(d, "a"), self.pid_of(d, "b")
            slow = h4.Background(lambda: d.chat("b", path="/v1/chat/completions?delay_ms=1500",
                                                 timeout=20))
            h.wait_until(lambda: {e["model"]: e for e in d.running()}["b"]["inFlight"] == 1, 3,
                         what="the slow request in flight")
            cfg = base_cfg()
            del cfg["models"]["b"]
            cfg["groups"]["both"]["members"] = ["a"]
            d.write_config(cfg)
            self.assertTrue(d.sighup())
            r = d.chat("b")
            self.assertEqual(r.status, 404, r)
            self.assertEqual(h4.err_code(r), "model_not_found")
            # The request in flight finishes, then the process stops.
            self.assertEqual(slow.result().status, 200)
            h.wait_until(lambda: not h.pid_alive(pid_b), 5, what="removed model's process to stop")
            h.wait_until(lambda: d.running_models() == ["a"], 5, what="/running without b")
            ids = [m["id"] for m in d.request("GET", "/v1/models").json()["data"]]
            self.assertEqual(ids, ["a"])
            self.assertEqual(self.pid_of(d, "a"), pid_a)
            r = d.request("POST", "/api/models/unload/b")
            self.assertEqual(r.status, 404)
            # Adding it back makes it available again.
            d.write_config(base_cfg())
            self.assertTrue(d.sighup())
            self.assertEqual(d.chat("b").status, 200)
            self.assertNotEqual(self.pid_of(d, "b"), pid_b)

    def test_broken_config_keeps_running_one(self):
        with h4.Daemon(base_cfg()) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid = self.pid_of(d, "a")
            good = open(d.config_path).read()
            bad_texts = [
                good + "  c:\n    cmd: [unclosed\n",                 # YAML syntax error
                good.replace("models:", "models:\n  bad:\n    ttl: 3\n", 1),  # no cmd
                good + "bogusTop: [1\n",
            ]
            for n, bad in enumerate(bad_texts, 1):
                d.write_config(bad)
                self.assertFalse(d.sighup(), "an invalid file was accepted")
                log = d.log()
                self.assertRegex(log, re.escape(d.config_path) + r":\d+:\d+",
                                 "no file:line:col in the error")
                self.assertEqual(d.reloads()[1], n)
                self.assertEqual(d.request("GET", "/health").status, 200)
                r = d.chat("old-alias")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.pid_of(d, "a"), pid)
                self.assertEqual(d.proc.poll(), None, "the daemon exited")
            self.assertEqual(d.starts("a"), 1)
            # A good file afterwards applies.
            cfg = base_cfg()
            cfg["models"]["a"]["aliases"] = ["fixed-alias"]
            d.write_config(cfg)
            self.assertTrue(d.sighup())
            self.assertEqual(d.chat("fixed-alias").status, 200)
            self.assertEqual(self.pid_of(d, "a"), pid)

    def test_emptied_file_keeps_running_one(self):
        # An editor that truncates and rewrites in place: a reload that reads the file in
        # between must not unload every model (it used to: 404 for every request).
        with h4.Daemon(base_cfg()) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid = self.pid_of(d, "a")
            good = open(d.config_path).read()
            for n, text in enumerate(("", "\n  \n", "# only a comment\n---\n"), 1):
                d.write_config(text, atomic=False)
                self.assertFalse(d.sighup(), "an empty file was taken")
                self.assertIn("reload failed, keeping the running configuration: %s is empty"
                              % d.config_path, d.log())
                self.assertEqual(d.chat("a").status, 200)
                self.assertEqual(self.pid_of(d, "a"), pid)
            # Removing every model on purpose still works, and is said plainly.
            d.write_config("models: {}\n")
            self.assertTrue(d.sighup())
            self.assertIn("the new configuration has no models: the 2 it had are stopped",
                          d.log())
            self.assertEqual(d.chat("a").status, 404)
            d.write_config(good)
            self.assertTrue(d.sighup())
            self.assertEqual(d.chat("a").status, 200)

    def test_watch_config(self):
        with h4.Daemon(base_cfg(), args=["--watch-config"]) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid = self.pid_of(d, "a")
            time.sleep(0.2)
            cfg = base_cfg()
            cfg["models"]["a"]["aliases"] = ["watched-alias"]
            cfg["models"]["c"] = {"cmd": h.fake_cmd(model="c")}
            d.write_config(cfg)  # atomically, via rename
            h.wait_until(lambda: d.reloads()[0] >= 1, 10, interval=0.1,
                         what="--watch-config to reload the renamed-over file")
            self.assertEqual(d.chat("watched-alias").status, 200)
            self.assertEqual(self.pid_of(d, "a"), pid)
            ids = sorted(m["id"] for m in d.request("GET", "/v1/models").json()["data"])
            self.assertEqual(ids, ["a", "b", "c"])
            # A second change (again via rename) is seen too: the watch follows the path.
            cfg["models"]["a"]["aliases"] = ["second-alias"]
            d.write_config(cfg)
            h.wait_until(lambda: d.reloads()[0] >= 2, 10, interval=0.1,
                         what="a second reload after another rename")
            self.assertEqual(d.chat("second-alias").status, 200)
            # A broken write is ignored, the running config stays.
            d.write_config("models: [\n")
            h.wait_until(lambda: d.reloads()[1] >= 1, 10, interval=0.1, what="the failed reload")
            self.assertEqual(d.chat("second-alias").status, 200)
            self.assertEqual(self.pid_of(d, "a"), pid)


if __name__ == "__main__":
    h.main()
