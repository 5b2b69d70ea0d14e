#!/usr/bin/env python3
"""Wedged upstreams (timeouts.silence): a model that stops sending mid-stream or before its
response head is checked (GET /slots, then its checkEndpoint), found wedged, its requests cut
with 504 upstream_stalled or a visibly broken stream, restarted on its next request, and the
requests queued behind it proceed. A slow model that still answers is left alone."""

import os
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# Generous bounds: the silence (1 s) plus a check (1 s) plus the stop; a busy machine is slow.
CUT_WITHIN = 30


def model(name, silence=1, **flags):
    return {"cmd": h.fake_cmd(model=name, **flags), "timeouts": {"silence": silence}}


class Wedged(unittest.TestCase):
    def assertStalled(self, r):
        self.assertEqual(r.status, 504, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], "upstream_stalled", err)
        self.assertIn("stopped answering", err["message"])
        self.assertIn("being restarted", err["message"])
        return err

    def test_stall_mid_stream_is_cut_and_the_model_restarts(self):
        cfg = {"models": {"m": model("m", tokens=20, tps=50)}}
        with h.Daemon(cfg) as d:
            t0 = time.monotonic()
            s = h.stream_request(d.port, "/v1/chat/completions?stall_after_tokens=3",
                                 h.chat_body("m", stream=True), timeout=CUT_WITHIN + 30)
            took = time.monotonic() - t0
            self.assertEqual(s.status, 200)
            # The three tokens came through, then the stream broke visibly (no [DONE], no
            # terminating chunk) instead of hanging.
            data = [l for _, l in s.data_lines()]
            self.assertEqual(len(data), 3, data)
            self.assertFalse(s.complete, "a cut stream must not end like a finished one")
            self.assertLess(took, CUT_WITHIN)
            log = d.log()
            self.assertIn("is wedged", log)
            self.assertIn("GET /slots got no answer", log)
            # The next request starts the model afresh and is answered.
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.starts("m"), 2)

    def test_stall_before_the_head_gets_504(self):
        cfg = {"models": {"m": model("m")}}
        with h.Daemon(cfg) as d:
            t0 = time.monotonic()
            r = d.request("POST", "/v1/chat/completions?stall_after_tokens=0",
                          h.chat_body("m"), timeout=CUT_WITHIN + 30)
            self.assertLess(time.monotonic() - t0, CUT_WITHIN)
            err = self.assertStalled(r)
            self.assertIn("GET /slots got no answer", err["message"])
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)

    def test_every_request_on_the_wedged_model_ends(self):
        # Four requests in flight on one wedged upstream (the later three wait for its stuck
        # main loop): all end with the explicit error, none hangs.
        cfg = {"models": {"m": model("m")}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            first = h.Call(lambda: d.request(
                "POST", "/v1/chat/completions?stall_after_tokens=0", h.chat_body("m"),
                timeout=CUT_WITHIN + 30))
            time.sleep(0.2)
            others = [h.Call(lambda: d.chat("m", timeout=CUT_WITHIN + 30)) for _ in range(3)]
            for c in [first] + others:
                self.assertStalled(c.get(CUT_WITHIN + 35))

    def test_requests_queued_behind_it_proceed(self):
        # a and b swap (one at a time): b's request waits for a, which never drains on its own.
        cfg = {"queueTimeout": 120,
               "models": {"a": model("a"), "b": model("b")},
               "groups": {"g": {"swap": True, "members": ["a", "b"]}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("a").status, 200)
            stalled = h.Call(lambda: d.request(
                "POST", "/v1/chat/completions?stall_after_tokens=0", h.chat_body("a"),
                timeout=CUT_WITHIN + 30))
            time.sleep(0.3)
            queued_b = h.Call(lambda: d.chat("b", timeout=CUT_WITHIN + 30))
            self.assertStalled(stalled.get(CUT_WITHIN + 35))
            r = queued_b.get(CUT_WITHIN + 35)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "b")

    def test_a_slow_upstream_that_answers_is_left_alone(self):
        # Silent for 4 s (a long prompt), but its main loop answers GET /slots: not wedged.
        cfg = {"models": {"m": model("m")}}
        with h.Daemon(cfg) as d:
            r = d.request("POST", "/v1/chat/completions?delay_ms=4000", h.chat_body("m"),
                          timeout=60)
            self.assertEqual(r.status, 200, r)
            log = d.log()
            self.assertIn("still working", log)
            self.assertNotIn("is wedged", log)
            self.assertEqual(d.starts("m"), 1)

    def test_without_slots_the_check_endpoint_decides(self):
        # --no-slots: /slots answers 501, so /health is asked; it answers 200: not wedged.
        cfg = {"models": {"m": model("m", no_slots=True)}}
        with h.Daemon(cfg) as d:
            r = d.request("POST", "/v1/chat/completions?delay_ms=3000", h.chat_body("m"),
                          timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertIn("still working", d.log())
            self.assertEqual(d.starts("m"), 1)

    def test_a_client_that_reads_slowly_is_not_the_upstreams_silence(self):
        # The daemon stops reading the upstream while the client does not read: that pause is
        # not the upstream's silence: no check is made. 12.8 MB read after a 3 s pause.
        cfg = {"models": {"m": model("m")}}
        with h.Daemon(cfg) as d:
            with d.raw(timeout=60) as c:
                c.send(b"GET /upstream/m/slow?chunks=200&delay_ms=0&size=65536 HTTP/1.1\r\n"
                       b"Host: x\r\nConnection: close\r\n\r\n")
                time.sleep(3)
                data = c.read_all()
            self.assertIn(b"200", data.split(b"\r\n", 1)[0])
            self.assertIn(b"chunk 199.", data)
            self.assertGreater(len(data), 200 * 65536)
            self.assertNotIn("still working", d.log())
            self.assertNotIn("is wedged", d.log())

    def test_silence_zero_disables_the_check(self):
        cfg = {"models": {"m": model("m", silence=0)}}
        with h.Daemon(cfg) as d:
            r = d.request("POST", "/v1/chat/completions?delay_ms=2500", h.chat_body("m"),
                          timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("still working", d.log())


if __name__ == "__main__":
    h.main()
