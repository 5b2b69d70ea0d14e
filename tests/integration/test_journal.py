#!/usr/bin/env python3
"""--log-target journal: the daemon's structured journal fields (MODEL_ID, UPSTREAM_PID,
EVENT, LOAD_MS, REQUEST_ID) and the upstreams' output lines, read back with
`journalctl -o json`.

There is no journald on this host: sd/journal_scenario.py runs in a private mount namespace
(`unshare -m --propagation private`) with its own journald on tmpfs, runs the daemon and a
short scenario there, and hands the journal entries back as JSON. Skips when unshare or
systemd-journald is unavailable."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "sd"))
import sdlib  # noqa: E402
from sdlib import h  # noqa: E402

sdlib.exit_cleanly_on_sigterm()

SCENARIO = os.path.join(HERE, "sd", "journal_scenario.py")
MODEL = "jm"

_doc = None
_why = None
_error = None


def journal():
    """Runs the scenario once for the file; (document, None) or (None, why it skipped)."""
    global _doc, _why, _error
    if _error is not None:
        raise AssertionError(_error)
    if _doc is not None or _why is not None:
        return _doc, _why
    if os.geteuid() != 0:
        _why = "not root: cannot unshare a mount namespace"
    elif not shutil.which("unshare"):
        _why = "unshare is not installed"
    elif not os.access("/lib/systemd/systemd-journald", os.X_OK):
        _why = "systemd-journald is not installed"
    elif not shutil.which("journalctl"):
        _why = "journalctl is not installed"
    if _why:
        return None, _why
    tmp = tempfile.mkdtemp(prefix="llama-swap-journal-")
    try:
        out = os.path.join(tmp, "journal.json")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                            SCENARIO, out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        if r.returncode == 77:
            _why = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "scenario skipped"
            return None, _why
        if r.returncode != 0 and "unshare failed" in r.stderr:
            _why = "cannot unshare a mount namespace: %s" % r.stderr.strip()[-300:]
            return None, _why
        if r.returncode != 0 or not os.path.exists(out):
            _error = ("journal scenario failed (%d):\n%s\n%s"
                      % (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
            raise AssertionError(_error)
        with open(out) as f:
            _doc = json.load(f)
        return _doc, None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def events(entries, name):
    return [e for e in entries if e.get("EVENT") == name]


class Journal(unittest.TestCase):
    def setUp(self):
        self.doc, why = journal()
        if self.doc is None:
            self.skipTest(why)
        self.all = self.doc["all"]
        self.model = self.doc["model"]
        if not self.all:
            self.fail("nothing from the daemon reached the journal; stderr:\n"
                      + self.doc["stderr"][-2000:])

    def one(self, name):
        found = events(self.model, name)
        self.assertEqual(len(found), 1, "%s entries: %r" % (name, found))
        return found[0]

    def test_model_lifecycle_events(self):
        starting = self.one("model_starting")
        ready = self.one("model_ready")
        self.one("model_stopping")
        stopped = self.one("model_stopped")
        pid = starting.get("UPSTREAM_PID")
        self.assertRegex(pid or "", r"^\d+$", starting)
        for e in (starting, ready, stopped):
            self.assertEqual(e.get("MODEL_ID"), MODEL, e)
            self.assertEqual(e.get("UPSTREAM_PID"), pid, e)
            self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "llama-swap", e)
            self.assertEqual(e.get("_PID"), str(self.doc["daemon_pid"]), e)
        self.assertIn("model %s: starting pid %s" % (MODEL, pid), starting["MESSAGE"])
        self.assertIn("ready after", ready["MESSAGE"])
        self.assertRegex(ready.get("LOAD_MS", ""), r"^\d+$", ready)
        secs = float(re.search(r"ready after ([\d.]+) s", ready["MESSAGE"]).group(1))
        self.assertLessEqual(abs(int(ready["LOAD_MS"]) - secs * 1000), 2, ready)
        self.assertNotIn("LOAD_MS", starting)
        self.assertEqual(starting.get("PRIORITY"), "6")  # info
        # In order: starting, ready, stopped.
        seq = [int(e["__MONOTONIC_TIMESTAMP"]) for e in (starting, ready, stopped)]
        self.assertEqual(seq, sorted(seq))

    def test_swap_event(self):
        swap = self.one("swap")
        self.assertIn("jm2", swap["MESSAGE"])
        stopping = self.one("model_stopping")
        self.assertIn("swap", stopping["MESSAGE"])
        # The other model's entries carry its own id, so MODEL_ID=jm does not show them.
        other = [e for e in self.all if e.get("MODEL_ID") == "jm2"]
        self.assertTrue(events(other, "model_ready"), other)
        self.assertFalse([e for e in self.model if e.get("MODEL_ID") != MODEL])

    def test_upstream_output_lines(self):
        lines = events(self.model, "upstream_output")
        texts = [e.get("MESSAGE") for e in lines]
        self.assertIn("fake-upstream: loading model %s on port" % MODEL, " | ".join(texts))
        self.assertTrue(any("server is listening on" in t for t in texts), texts)
        self.assertTrue(any("log line 3 of 3" in t for t in texts), texts)
        pid = self.one("model_starting")["UPSTREAM_PID"]
        for e in lines:
            self.assertEqual(e.get("MODEL_ID"), MODEL, e)
            self.assertEqual(e.get("UPSTREAM_PID"), pid, e)
            self.assertEqual(e.get("SYSLOG_IDENTIFIER"), "llama-swap", e)

    def test_access_log_entries(self):
        reqs = events(self.all, "request")
        msgs = [e["MESSAGE"] for e in reqs]
        self.assertTrue(any('"POST /v1/chat/completions HTTP/1.1" 200' in m for m in msgs), msgs)
        self.assertTrue(any('"POST /api/models/unload HTTP/1.1" 200' in m for m in msgs), msgs)
        self.assertTrue(any('"POST /v1/chat/completions HTTP/1.1" 404' in m for m in msgs), msgs)
        # A model request's entry names its model; the unknown model's 404 and the unload
        # name none.
        chat = [e for e in reqs if '"POST /v1/chat/completions HTTP/1.1" 200' in e["MESSAGE"]]
        self.assertEqual(sorted(e.get("MODEL_ID") for e in chat), [MODEL, "jm2"], chat)
        for e in reqs:
            if " 404 " in e["MESSAGE"] or "/api/models/unload" in e["MESSAGE"]:
                self.assertNotIn("MODEL_ID", e, e)
        ids = [e.get("REQUEST_ID") for e in reqs]
        for i in ids:
            self.assertRegex(i or "", r"^\d+$", reqs)
        self.assertEqual(len(set(ids)), len(ids), "request ids repeat: %r" % ids)

    def test_nothing_on_stderr(self):
        # With --log-target journal the daemon's lines go to the journal only.
        self.assertNotIn("[info]", self.doc["stderr"])
        self.assertNotIn("[debug]", self.doc["stderr"])

    def test_model_filter_matches_only_model_entries(self):
        self.assertTrue(self.model)
        for e in self.model:
            self.assertEqual(e.get("MODEL_ID"), MODEL)
        # Entries without a model (listening, access log) are not in the MODEL_ID= match.
        self.assertTrue(any("MODEL_ID" not in e for e in self.all))


if __name__ == "__main__":
    h.main()
