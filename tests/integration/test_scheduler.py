#!/usr/bin/env python3
"""Scheduling: single-flight starts, swaps wait for in-flight requests, admission limits, ttl,
queue timeout."""

import json
import os
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

Call = h.Call  # runs a request in a thread (see harness.py)


def entry(d, model):
    for e in d.running():
        if e["model"] == model:
            return e
    return None


class Scheduler(unittest.TestCase):
    def test_single_flight_cold_start(self):
        cfg = lambda d: {"models": {"cold": {"cmd": h.fake_cmd(  # noqa: E731
            model="cold", load_delay_ms=500, pid_file=d.pid_file("cold")),
            # The default limit (10, as in the original) would turn 10 of the 20 away with 429.
            "concurrencyLimit": 25}}}
        with h.Daemon(cfg) as d:
            calls = [Call(lambda: d.chat("cold", timeout=30)) for _ in range(20)]
            for c in calls:
                r = c.get()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["request_model"], "cold")
            self.assertEqual(d.starts("cold"), 1, "the model was started more than once")
            self.assertEqual(len(h.read_pid_file(d.pid_files[0])), 1, "more than one upstream ran")

    def test_swap_waits_for_in_flight(self):
        cfg = {"models": {"a": {"cmd": h.fake_cmd(model="a")}, "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid_a = entry(d, "a")["pid"]
            slow = Call(lambda: d.chat("a", path="/v1/chat/completions?delay_ms=1500", timeout=30))
            h.wait_until(lambda: (entry(d, "a") or {}).get("inFlight") == 1, 5,
                         what="the slow request to be in flight")
            other = Call(lambda: d.chat("b", timeout=30))
            time.sleep(0.4)
            # B is waiting; A still runs and still serves its request.
            self.assertIsNone(other.finished, "B was answered while A had a request in flight")
            self.assertTrue(h.pid_alive(pid_a), "A was stopped while it had a request in flight")
            e = entry(d, "a")
            self.assertIsNotNone(e)
            self.assertEqual(e["inFlight"], 1, e)
            ra = slow.get()
            rb = other.get()
            self.assertEqual(ra.status, 200, ra)
            self.assertEqual(ra.json()["request_model"], "a")
            self.assertEqual(len(ra.json()["choices"][0]["message"]["content"].split()), 10)
            self.assertEqual(rb.status, 200, rb)
            self.assertEqual(rb.json()["request_model"], "b")
            self.assertGreaterEqual(other.finished, slow.finished,
                                    "B's reply came before A's reply completed")
            # A was stopped for the swap (and only once its reply was complete, as checked).
            self.assertIn("model a: stopping pid %d" % pid_a, d.log())
            self.assertFalse(h.pid_alive(pid_a))
            self.assertEqual(d.running_models(), ["b"])

    def test_swap_waits_for_stream(self):
        # An SSE stream in flight on A (10 tokens at 5 t/s = ~2 s) survives a request for B.
        cfg = {"models": {"a": {"cmd": h.fake_cmd(model="a", tokens=10, tps=5)},
                          "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            stream = Call(lambda: h.stream_request(d.port, "/v1/chat/completions",
                                                   h.chat_body("a", stream=True), timeout=30))
            h.wait_until(lambda: (entry(d, "a") or {}).get("inFlight") == 1, 5,
                         what="the stream to be in flight")
            other = Call(lambda: d.chat("b", timeout=30))
            s = stream.get()
            rb = other.get()
            self.assertEqual(s.status, 200)
            self.assertIsNone(s.error, s.error)
            self.assertTrue(s.complete)
            self.assertEqual(s.data_lines()[-1][1], b"[DONE]")
            self.assertEqual(rb.status, 200, rb)
            self.assertEqual(rb.json()["request_model"], "b")
            self.assertGreaterEqual(other.finished, stream.finished)

    def test_queued_requests_collate(self):
        # While A is busy, requests queue for B, C, B, C. As in the original (a request joins a
        # swap already under way for its model), the queue collates to BB CC: each model is
        # started once, never B, C, B, C with a swap each time.
        cfg = {"models": {m: {"cmd": h.fake_cmd(model=m)} for m in ("a", "b", "c")}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("a").status, 200)
            slow = Call(lambda: d.chat("a", path="/v1/chat/completions?delay_ms=1000", timeout=30))
            h.wait_until(lambda: (entry(d, "a") or {}).get("inFlight") == 1, 5,
                         what="the slow request to be in flight")
            calls = []
            for m in "bcbc":
                calls.append((m, Call(lambda m=m: d.chat(
                    m, path="/v1/chat/completions?delay_ms=200", timeout=30))))
                time.sleep(0.1)
            self.assertEqual(slow.get().status, 200)
            for m, c in calls:
                r = c.get()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["request_model"], m)
            self.assertEqual((d.starts("b"), d.starts("c")), (1, 1),
                             "queued requests for the same model were not served together")

    def test_client_disconnect_mid_stream_frees_model(self):
        # A client that goes away mid-stream no longer counts as in flight, so a swap need not
        # wait for the (cancelled) generation: 50 tokens at 10 t/s would take 5 s.
        cfg = {"models": {"a": {"cmd": h.fake_cmd(model="a", tokens=50, tps=10)},
                          "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            body = json.dumps(h.chat_body("a", stream=True)).encode()
            with d.raw(timeout=10) as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
                self.assertEqual(c.read_head()[0], 200)
                c.read_until(b"data:")
            h.wait_until(lambda: (entry(d, "a") or {}).get("inFlight") == 0, 3,
                         what="the abandoned stream to be released")
            t0 = time.monotonic()
            r = d.chat("b", timeout=30)
            self.assertEqual(r.status, 200, r)
            # Far less than the 5 s the abandoned generation would have taken.
            self.assertLess(time.monotonic() - t0, 3)

    def test_disconnect_while_queued_cancels(self):
        # A client that gives up while waiting for B does not make the daemon swap to B later.
        cfg = {"models": {"a": {"cmd": h.fake_cmd(model="a")}, "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("a").status, 200)
            slow = Call(lambda: d.chat("a", path="/v1/chat/completions?delay_ms=1000", timeout=30))
            h.wait_until(lambda: (entry(d, "a") or {}).get("inFlight") == 1, 5,
                         what="the slow request to be in flight")
            body = json.dumps(h.chat_body("b")).encode()
            with d.raw(timeout=10) as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
                time.sleep(0.3)
            self.assertEqual(slow.get().status, 200)
            time.sleep(0.5)
            self.assertEqual(d.starts("b"), 0, "a swap was made for a client that went away")
            self.assertEqual(d.running_models(), ["a"])

    def test_ttl_expiry_racing_requests(self):
        # Requests arriving around the moment the ttl expires (the original's #946 deadlock):
        # each one is served, whether it catches the model before or after its unload.
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", load_delay_ms=100), "ttl": 1}}}
        with h.Daemon(cfg) as d:
            for i in range(6):
                r = d.chat("m", timeout=30)
                self.assertEqual(r.status, 200, "request %d: %r" % (i, r))
                time.sleep(0.9 + 0.08 * i)

    def test_interleaved_requests_all_served(self):
        # ABAB... concurrently: every request is answered by the model it named.
        cfg = {"models": {"a": {"cmd": h.fake_cmd(model="a")}, "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            models = ["a", "b"] * 4
            calls = []
            for m in models:
                calls.append((m, Call(lambda m=m: d.chat(
                    m, path="/v1/chat/completions?delay_ms=100", timeout=60))))
                time.sleep(0.02)
            for m, c in calls:
                r = c.get(60)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["request_model"], m)
            self.assertEqual(len(d.running_models()), 1)

    def test_concurrency_limit_429(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m"), "concurrencyLimit": 1}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            slow = Call(lambda: d.chat("m", path="/v1/chat/completions?delay_ms=1500", timeout=30))
            h.wait_until(lambda: (entry(d, "m") or {}).get("inFlight") == 1, 5,
                         what="the slow request to be in flight")
            r = d.chat("m")
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.headers.get("retry-after"), "1", r)
            err = r.json()["error"]
            self.assertEqual(err["code"], "concurrency_limit")
            r = slow.get()
            self.assertEqual(r.status, 200, r)
            # Once the slot is free, requests are admitted again.
            self.assertEqual(d.chat("m").status, 200)

    def test_concurrency_limit_counts_waiting(self):
        # A request waiting for a loading model holds a slot too.
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", load_delay_ms=1500),
                                "concurrencyLimit": 2}}}
        with h.Daemon(cfg) as d:
            first = [Call(lambda: d.chat("m", timeout=30)) for _ in range(2)]
            h.wait_until(lambda: (entry(d, "m") or {}).get("queued", 0)
                         + (entry(d, "m") or {}).get("inFlight", 0) >= 2, 5,
                         what="two requests waiting")
            r = d.chat("m")
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.json()["error"]["code"], "concurrency_limit")
            for c in first:
                self.assertEqual(c.get().status, 200)

    def test_ttl_unload(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m"), "ttl": 1}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            e = entry(d, "m")
            self.assertIsNotNone(e, "unloaded far too early")
            self.assertEqual(e["ttl"], 1)
            pid = e["pid"]
            # ttl 1 s: unloaded after about 1-2 s; 6 s is a generous bound for a busy machine.
            h.wait_until(lambda: d.running() == [], 6, what="the ttl unload")
            h.wait_until(lambda: not h.pid_alive(pid), 3, what="the upstream to exit")
            self.assertIn("(ttl)", d.log())
            # The next request loads it again.
            self.assertEqual(d.chat("m").status, 200)
            self.assertEqual(d.starts("m"), 2)

    def test_ttl_not_during_request(self):
        # ttl counts idle time: a request longer than the ttl is not cut off.
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m"), "ttl": 1}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", path="/v1/chat/completions?delay_ms=2500", timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.starts("m"), 1)
            # Idle time counts from the end of the request, so it is still loaded right after.
            self.assertEqual(d.running_models(), ["m"])

    def test_global_ttl(self):
        cfg = {"globalTTL": 1, "models": {"m": {"cmd": h.fake_cmd(model="m")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            h.wait_until(lambda: d.running() == [], 6, what="the globalTTL unload")

    def test_queue_timeout_503(self):
        cfg = {"queueTimeout": 1,
               "models": {"stuck": {"cmd": h.fake_cmd(model="stuck", hang=True)}}}
        with h.Daemon(cfg) as d:
            t0 = time.monotonic()
            r = d.chat("stuck", timeout=30)
            elapsed = time.monotonic() - t0
            self.assertEqual(r.status, 503, r)
            self.assertIn("retry-after", r.headers, r)
            self.assertEqual(r.json()["error"]["code"], "model_wait_timeout")
            # queueTimeout is 1 s; 5 s is a generous bound (healthCheckTimeout, 15 s minimum,
            # must not be what ended the wait).
            self.assertLess(elapsed, 5, "the wait was not bounded by queueTimeout")
            self.assertGreaterEqual(elapsed, 0.9, "gave up before queueTimeout")
            # The daemon itself is fine.
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_queue_timeout_waiting_for_busy_model(self):
        # B waits for A's in-flight request to drain; with queueTimeout 1 it gives up first.
        cfg = {"queueTimeout": 1,
               "models": {"a": {"cmd": h.fake_cmd(model="a")}, "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("a").status, 200)
            slow = Call(lambda: d.chat("a", path="/v1/chat/completions?delay_ms=3000", timeout=30))
            h.wait_until(lambda: (entry(d, "a") or {}).get("inFlight") == 1, 5,
                         what="the slow request to be in flight")
            r = d.chat("b", timeout=30)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["error"]["code"], "model_wait_timeout")
            self.assertIsNone(slow.finished, "B's timeout must not disturb A's request")
            ra = slow.get()
            self.assertEqual(ra.status, 200, ra)
            # B was never started (it gave up while waiting) or, if started, works now.
            self.assertEqual(d.chat("b").status, 200)


if __name__ == "__main__":
    h.main()
