#!/usr/bin/env python3
"""The original's smaller keys, end to end: upstream.ignorePaths as regular expressions,
logRequests, logTimeFormat, ui.activity.session_id (the uiConfig event), timeouts.keepalive on
upstream connections, and the keys that cannot apply here explaining why."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402


def one(**extra):
    return {"models": {"m": dict({"cmd": h.fake_cmd(model="m")}, **extra)}}


class OriginalKeys(unittest.TestCase):
    def test_ignore_paths_are_regular_expressions(self):
        cfg = one()
        cfg["upstream"] = {"ignorePaths": [r"^/ws$|^/api/jobs$"]}
        with h4.Daemon(cfg) as d:
            r = d.request("GET", "/upstream/m/api/jobs")
            self.assertEqual(r.status, 409, r)
            self.assertIn("matches upstream.ignorePaths", r.json()["error"]["message"])
            self.assertEqual(d.running_models(), [], "an ignored path started the model")
            # The default list is replaced: .js no longer counts, so it starts the model.
            r = d.request("GET", "/upstream/m/app.js", timeout=30)
            self.assertEqual(d.running_models(), ["m"])
            r = d.request("GET", "/upstream/m/api/jobs")
            self.assertNotEqual(r.status, 409, "a ready model serves ignored paths")

    def test_default_ignore_paths(self):
        with h4.Daemon(one()) as d:
            self.assertEqual(d.request("GET", "/upstream/m/style.css").status, 409)
            self.assertEqual(d.running_models(), [])

    def test_log_requests_false_and_log_time_format(self):
        cfg = one()
        cfg.update({"logRequests": False, "logTimeFormat": "rfc3339", "logLevel": "info"})
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 200)
            log = d.log()
            self.assertNotIn('"POST /v1/chat/completions', log, "a request line was logged")
            started = [x for x in log.splitlines() if "model m: starting pid" in x]
            self.assertTrue(started, log)
            self.assertRegex(started[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) \[info\]")

    def test_ui_session_headers_reach_the_ui(self):
        cfg = one()
        cfg["ui"] = {"activity": {"session_id": [" X-Trace-ID ", "", "x-trace-id", "X-Session-ID"]}}
        with h4.Daemon(cfg) as d:
            with h4.EventStream(d.port, "/api/events") as s:
                evs = s.wait_event(lambda e: [x for x in e if x[0] == "uiConfig"], 5)
                self.assertEqual(evs[0][1], {"activity": {"session_id": ["X-Trace-ID",
                                                                         "X-Session-ID"]}})

    def test_keepalive_probes_on_upstream_connections(self):
        cfg = one(timeouts={"keepalive": 7})
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 200)
            port = int(re.search(r":(\d+)$", d.running()[0]["proxy"]).group(1))
            out = subprocess.run(["ss", "-tnoH", "state", "established", "dst",
                                  "127.0.0.1:%d" % port], capture_output=True, text=True).stdout
            self.assertIn("timer:(keepalive,", out, out)

    def test_keys_that_cannot_apply_say_why(self):
        tmp = tempfile.mkdtemp(prefix="llama-swap-keys-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "c.yaml")
        with open(path, "w") as f:
            f.write(h4.to_yaml({
                "captureBuffer": 10, "store": {"path": "/var/lib/llama-swap/activity.db"},
                "performance": {"every": "15s"},
                "models": {"m": {"cmd": h.fake_cmd(model="m"),
                                 "timeouts": {"tlsHandshake": 10, "expectContinue": 1}}},
            }) + "\n")
        r = subprocess.run([h.LLAMA_SWAP, "--check-config", "--config", path],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        for needle in ("store.path: activity records are "
                       "kept in memory only", "timeouts.expectContinue has no effect"):
            self.assertIn(needle, r.stderr)
        self.assertNotIn("captureBuffer", r.stderr)  # captures are kept: nothing to say
        self.assertNotIn("performance:", r.stderr)  # the sampler works: nothing to say
        self.assertNotIn("not supported yet", r.stderr)
        with open(path, "w") as f:
            f.write("performance: {every: 1s}\nmodels: {}\n")
        r = subprocess.run([h.LLAMA_SWAP, "--check-config", "--config", path],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 78)
        self.assertIn("performance: every must be at least 5s, got 1s", r.stderr)


if __name__ == "__main__":
    h.main()
