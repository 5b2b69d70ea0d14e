#!/usr/bin/env python3
"""Graceful shutdown on SIGTERM/SIGINT: in-flight requests finish, new connections are refused,
every upstream is stopped, exit status 0."""

import http.client
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

Call = h.Call  # runs a request in a thread (see harness.py)


def in_flight(d, model):
    return any(e["model"] == model and e["inFlight"] >= 1 for e in d.running())


def wait_exit(d, timeout):
    """Waits for the daemon to exit by itself; returns (exit status, seconds)."""
    t0 = time.monotonic()
    try:
        d.proc.wait(timeout)
    except h.subprocess.TimeoutExpired:
        raise AssertionError("the daemon did not exit within %s s" % timeout)
    d.exit_code = d.proc.returncode
    return d.proc.returncode, time.monotonic() - t0


def try_connect(port):
    """'refused', 'closed' (accepted then closed without a response), 'served' or 'hung'."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
    except ConnectionRefusedError:
        return "refused"
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(100)
        return "served" if data else "closed"
    except ConnectionResetError:
        return "closed"
    except socket.timeout:
        return "hung"
    finally:
        s.close()


class Shutdown(unittest.TestCase):
    def test_idle_sigterm_exits_zero(self):
        with h.Daemon({"models": {"m": {"cmd": h.fake_cmd(model="m")}}}) as d:
            d.proc.send_signal(signal.SIGTERM)
            code, dt = wait_exit(d, 10)
            self.assertEqual(code, 0)
            # Nothing to wait for: "quickly" is < 3 s here, generous for a loaded machine.
            self.assertLess(dt, 3)

    def test_sigint_exits_zero(self):
        with h.Daemon({"models": {"m": {"cmd": h.fake_cmd(model="m")}}}) as d:
            d.proc.send_signal(signal.SIGINT)
            code, dt = wait_exit(d, 10)
            self.assertEqual(code, 0)
            self.assertLess(dt, 3)

    def test_sigterm_stops_running_upstream(self):
        cfg = lambda d: {"models": {"m": {"cmd": h.fake_cmd(  # noqa: E731
            model="m", fork_grandchild=True, pid_file=d.pid_file("m"))}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pids = h.wait_until(lambda: (lambda p: p if len(p) >= 2 else None)(
                h.read_pid_file(d.pid_files[0])), 5, what="upstream and grandchild pids")
            d.proc.send_signal(signal.SIGTERM)
            code, dt = wait_exit(d, 10)
            self.assertEqual(code, 0)
            self.assertLess(dt, 3)
            # The whole process group is stopped before the daemon exits.
            h.wait_until(lambda: not any(h.pid_alive(p) for p in pids), 2,
                         what="upstream %s to be gone" % pids)

    def test_sigterm_kills_upstream_ignoring_sigterm(self):
        # Shutdown stops a SIGTERM-ignoring upstream with SIGKILL after its unloadTimeout (2 s),
        # its forked grandchild included, and still exits 0.
        cfg = lambda d: {"models": {"m": {"cmd": h.fake_cmd(  # noqa: E731
            model="m", ignore_sigterm=True, fork_grandchild=True, pid_file=d.pid_file("m")),
            "unloadTimeout": 2}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pids = h.wait_until(lambda: (lambda p: p if len(p) >= 2 else None)(
                h.read_pid_file(d.pid_files[0])), 5, what="upstream and grandchild pids")
            d.proc.send_signal(signal.SIGTERM)
            code, dt = wait_exit(d, 15)
            self.assertEqual(code, 0)
            self.assertGreaterEqual(dt, 1.5, "the upstream cannot have stopped by SIGTERM")
            self.assertLess(dt, 10)
            h.wait_until(lambda: not any(h.pid_alive(p) for p in pids), 2,
                         what="upstream %s to be gone" % pids)

    def test_sigterm_waits_for_stream(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", tokens=10, tps=10)}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", stream=False, max_tokens=1).status, 200)
            pid = d.running()[0]["pid"]
            stream = Call(lambda: h.stream_request(d.port, "/v1/chat/completions",
                                                   h.chat_body("m", stream=True), timeout=30))
            h.wait_until(lambda: in_flight(d, "m"), 5, what="the stream to be in flight")
            d.proc.send_signal(signal.SIGTERM)
            s = stream.get()
            self.assertEqual(s.status, 200)
            self.assertIsNone(s.error, s.error)
            self.assertTrue(s.complete)
            data = s.data_lines()
            self.assertEqual(data[-1][1], b"[DONE]")
            self.assertEqual(sum(1 for _, p in data if b'"content":"hi"' in p), 10,
                             "the stream lost tokens at shutdown")
            code, _ = wait_exit(d, 10)
            self.assertEqual(code, 0)
            self.assertFalse(h.pid_alive(pid), "the upstream outlived the daemon")

    def test_new_connections_refused_after_sigterm(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            slow = Call(lambda: d.chat("m", path="/v1/chat/completions?delay_ms=2000", timeout=30))
            h.wait_until(lambda: in_flight(d, "m"), 5, what="the slow request to be in flight")
            d.proc.send_signal(signal.SIGTERM)
            # Give the daemon a moment to handle the signal; it keeps running for the request.
            time.sleep(0.3)
            self.assertIsNone(d.proc.poll(), "the daemon exited with a request in flight")
            outcome = try_connect(d.port)
            self.assertIn(outcome, ("refused", "closed"),
                          "a new connection after SIGTERM was %s" % outcome)
            r = slow.get()
            self.assertEqual(r.status, 200, r)
            code, _ = wait_exit(d, 10)
            self.assertEqual(code, 0)

    def test_idle_keepalive_connection_does_not_delay_exit(self):
        with h.Daemon({"models": {"m": {"cmd": h.fake_cmd(model="m")}}}) as d:
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            try:
                conn.request("GET", "/health")
                conn.getresponse().read()
                d.proc.send_signal(signal.SIGTERM)
                code, dt = wait_exit(d, 10)
                self.assertEqual(code, 0)
                # An idle keep-alive connection has nothing in flight: well under
                # shutdownTimeout (30 s); 3 s is generous.
                self.assertLess(dt, 3)
            finally:
                conn.close()

    def test_shutdown_timeout_bounds_wait(self):
        cfg = {"server": {"shutdownTimeout": 1},
               "models": {"m": {"cmd": h.fake_cmd(model="m")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pid = d.running()[0]["pid"]
            slow = Call(lambda: d.chat("m", path="/v1/chat/completions?delay_ms=20000", timeout=30))
            h.wait_until(lambda: in_flight(d, "m"), 5, what="the slow request to be in flight")
            d.proc.send_signal(signal.SIGTERM)
            # shutdownTimeout 1 s, then the upstream's stop: 8 s is a generous bound, far
            # below the request's 20 s.
            _, dt = wait_exit(d, 15)
            self.assertLess(dt, 8)
            self.assertFalse(h.pid_alive(pid))
            try:
                r = slow.get(10)
                self.assertNotEqual(r.status, 200, "a cut request must not look complete")
            except (http.client.HTTPException, OSError):
                pass  # the connection was closed: also fine

    def test_second_sigterm_forces(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pid = d.running()[0]["pid"]
            slow = Call(lambda: d.chat("m", path="/v1/chat/completions?delay_ms=20000", timeout=30))
            h.wait_until(lambda: in_flight(d, "m"), 5, what="the slow request to be in flight")
            d.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            self.assertIsNone(d.proc.poll())
            d.proc.send_signal(signal.SIGTERM)
            _, dt = wait_exit(d, 15)
            self.assertLess(dt, 8, "the second SIGTERM did not force the exit")
            self.assertFalse(h.pid_alive(pid), "the upstream outlived a forced exit")
            try:
                slow.get(10)
            except (http.client.HTTPException, OSError):
                pass

    def test_sigterm_while_model_loading(self):
        cfg = lambda d: {"models": {"m": {"cmd": h.fake_cmd(  # noqa: E731
            model="m", load_delay_ms=2000, pid_file=d.pid_file("m"))}}}
        with h.Daemon(cfg) as d:
            waiter = Call(lambda: d.chat("m", timeout=30))
            pids = h.wait_until(lambda: h.read_pid_file(d.pid_files[0]), 5,
                                what="the upstream to start")
            d.proc.send_signal(signal.SIGTERM)
            code, dt = wait_exit(d, 15)
            self.assertEqual(code, 0)
            # At most the 2 s load, the request and the stop; 8 s is generous.
            self.assertLess(dt, 8)
            for p in pids:
                self.assertFalse(h.pid_alive(p), "the loading upstream outlived the daemon")
            # The waiting request is in flight for the shutdown: it may be served once the
            # model is ready (graceful) or get an error, but it must get an answer.
            try:
                r = waiter.get(10)
                if r.status == 200:
                    self.assertEqual(r.json()["request_model"], "m")
                else:
                    self.assertIn("error", r.json())
            except (http.client.HTTPException, OSError):
                pass


if __name__ == "__main__":
    h.main()
