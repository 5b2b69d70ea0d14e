#!/usr/bin/env python3
"""Upstream failures: start failures, crashes mid-stream, restart after a crash, no process left
behind when the daemon is killed, SIGKILL escalation."""

import json
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


closed_port = h.free_port  # nothing listens there: a refused connect


class Failures(unittest.TestCase):
    def assertStartFailed(self, r, *needles):
        self.assertEqual(r.status, 502, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], "model_start_failed", err)
        for n in needles:
            self.assertIn(n, err["message"])
        return err

    def test_nonexistent_binary(self):
        cfg = {"models": {"m": {"cmd": "/nonexistent/dir/llama-server --port ${PORT}"}}}
        with h.Daemon(cfg) as d:
            t0 = time.monotonic()
            r = d.chat("m", timeout=30)
            # An exec failure is known at once; 5 s is a generous bound on a busy machine
            # (the health-check timeout, 15 s at least, must not be what ends it).
            self.assertLess(time.monotonic() - t0, 5)
            self.assertStartFailed(r, "No such file or directory", "/nonexistent/dir/llama-server")
            self.assertEqual(d.request("GET", "/health").status, 200)
            # Not left in a stuck state: the next request tries again and fails the same way.
            r = d.chat("m", timeout=30)
            self.assertStartFailed(r, "No such file or directory")

    def test_crash_at_start(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", crash_at_start=True)}}}
        with h.Daemon(cfg) as d:
            t0 = time.monotonic()
            r = d.chat("m", timeout=30)
            # The exit is seen at once (not after the 15 s health-check timeout); 3 s is generous.
            self.assertLess(time.monotonic() - t0, 3)
            self.assertStartFailed(r, "simulated crash at start")
            run = d.running()
            self.assertTrue(all(e["model"] != "m" or e["state"] != "ready" for e in run), run)

    def test_crash_at_start_all_waiters_fail(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", crash_at_start=True)}}}
        with h.Daemon(cfg) as d:
            results = []
            lock = threading.Lock()

            def one():
                r = d.chat("m", timeout=30)
                with lock:
                    results.append(r)

            threads = [threading.Thread(target=one, daemon=True) for _ in range(5)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(len(results), 5)
            for r in results:
                self.assertStartFailed(r, "simulated crash at start")

    def test_health_check_timeout(self):
        # An upstream that never answers its health check fails the start after
        # healthCheckTimeout (15 s, the minimum), and is killed.
        cfg = lambda d: {"healthCheckTimeout": 15, "queueTimeout": 60,  # noqa: E731
                         "models": {"m": {"cmd": h.fake_cmd(model="m", hang=True,
                                                            pid_file=d.pid_file("m"))}}}
        with h.Daemon(cfg) as d:
            t0 = time.monotonic()
            r = d.chat("m", timeout=60)
            elapsed = time.monotonic() - t0
            self.assertStartFailed(r)
            self.assertIn("health", r.json()["error"]["message"].lower())
            self.assertGreaterEqual(elapsed, 14)
            self.assertLess(elapsed, 40)
            pids = h.read_pid_file(d.pid_files[0])
            self.assertTrue(pids)
            h.wait_until(lambda: not any(h.pid_alive(p) for p in pids), 10,
                         what="the hung upstream to be killed")

    def test_upstream_dies_mid_stream(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", tokens=10, tps=20,
                                                  crash_after_tokens=2)}}}
        with h.Daemon(cfg) as d:
            body = json.dumps(h.chat_body("m", stream=True)).encode()
            with d.raw(timeout=15) as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
                status, headers, _ = c.read_head()
                self.assertEqual(status, 200)
                self.assertIn("chunked", headers.get("transfer-encoding", ""), headers)
                rest = c.read_all()  # until the daemon closes the connection
                self.assertTrue(c.eof, "the broken response did not end the connection")
            self.assertIn(b"data:", rest, "no token reached the client before the crash")
            self.assertNotIn(b"[DONE]", rest)
            self.assertFalse(rest.endswith(b"0\r\n\r\n"),
                             "a broken upstream stream ended cleanly for the client: %r" % rest[-200:])

    def test_upstream_dies_mid_stream_http_client(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", tokens=10, tps=20,
                                                  crash_after_tokens=2)}}}
        with h.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("m", stream=True))
            self.assertEqual(s.status, 200)
            self.assertFalse(s.complete, "http.client saw a clean end: %r" % s.lines)
            self.assertIsNotNone(s.error)

    def test_upstream_dies_before_response(self):
        # Non-streaming: the crash happens before any response byte, so the client gets a 502.
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", crash_after_tokens=2)}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 502, r)
            self.assertIn("code", r.json()["error"])

    def test_restart_after_crash(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", tokens=10, tps=20,
                                                  crash_after_tokens=2)}}}
        with h.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("m", stream=True))
            self.assertFalse(s.complete)
            # The client sees the broken stream about when the upstream exits; a request sent
            # before the daemon has reaped it races the dying upstream (502). "The next request"
            # is the one after the daemon noticed the exit.
            h.wait_until(lambda: all(e["state"] != "ready" for e in d.running()), 3,
                         what="/running to stop showing the crashed upstream as ready")
            # Embeddings produce no tokens, so the restarted upstream answers them.
            r = d.request("POST", "/v1/embeddings", body={"model": "m", "input": "x"}, timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.starts("m"), 2)
            self.assertEqual(d.running_models(), ["m"])

    def test_restart_after_exit_while_idle(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", exit_after_ms=500)}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pid = d.running()[0]["pid"]
            h.wait_until(lambda: not h.pid_alive(pid), 5, what="the upstream to exit by itself")
            h.wait_until(lambda: all(e["state"] != "ready" for e in d.running()), 3,
                         what="/running to stop showing the dead upstream as ready")
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.starts("m"), 2)

    def test_upstream_unreachable(self):
        port = closed_port()
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m").replace("${PORT}", "0"),
                                "proxy": "http://127.0.0.1:%d" % port,
                                "checkEndpoint": "none"}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 502, r)
            self.assertEqual(r.json()["error"]["code"], "upstream_unreachable")
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_endless_upstream_head_is_refused(self):
        # An upstream that never ends its response head must not make the daemon buffer it.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        port = srv.getsockname()[1]

        def serve():
            try:
                c, _ = srv.accept()
                c.recv(65536)
                c.sendall(b"HTTP/1.1 200 OK\r\n")
                for i in range(20000):  # 2 MB of headers, far beyond the 64 KiB bound
                    c.sendall(b"X-Junk-%d: %s\r\n" % (i, b"a" * 100))
            except OSError:
                pass  # the daemon hung up on us: expected

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m").replace("${PORT}", "0"),
                                "proxy": "http://127.0.0.1:%d" % port,
                                "checkEndpoint": "none"}}}
        try:
            with h.Daemon(cfg) as d:
                r = d.chat("m", timeout=30)
                self.assertEqual(r.status, 502, r)
                self.assertIn("larger than 64 KiB", r.json()["error"]["message"])
                rss = int([l for l in open("/proc/%d/status" % d.proc.pid) if l.startswith("VmHWM")][0].split()[1])
                h.assert_memory_below(self, rss, 32 * 1024, "daemon peak RSS")
                self.assertEqual(d.request("GET", "/health").status, 200)
        finally:
            srv.close()

    def kill_daemon_and_check(self, flags, bound):
        cfg = lambda d: {"models": {"m": {"cmd": h.fake_cmd(  # noqa: E731
            model="m", fork_grandchild=True, pid_file=d.pid_file("m"), **flags)}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pids = h.wait_until(lambda: (lambda p: p if len(p) >= 2 else None)(
                h.read_pid_file(d.pid_files[0])), 5, what="upstream and grandchild pids")
            for p in pids:
                self.assertTrue(h.pid_alive(p))
            d.kill()
            self.assertEqual(d.exit_code, -signal.SIGKILL)
            t0 = time.monotonic()
            h.wait_until(lambda: not any(h.pid_alive(p) for p in pids), bound,
                         what="every upstream pid %s to be gone after the daemon's SIGKILL" % pids)
            return time.monotonic() - t0

    def test_daemon_sigkill_leaves_nothing(self):
        # The guard SIGKILLs the model groups at once: 5 s is a generous bound for ~0.1 s.
        took = self.kill_daemon_and_check({}, 5)
        h.diag("all upstream processes gone %.3f s after the daemon's SIGKILL" % took)

    def test_daemon_sigkill_with_an_upstream_that_ignores_sigterm(self):
        # No grace period either: what ignores SIGTERM goes as fast (the old guard waited 5 s).
        took = self.kill_daemon_and_check({"ignore_sigterm": True}, 5)
        h.diag("all upstream processes gone %.3f s after the daemon's SIGKILL" % took)

    def test_guard_killed_first_is_replaced(self):
        # Someone kills the guard, then the daemon: a new guard was started in between and
        # knows the running model, so nothing survives.
        cfg = lambda d: {"models": {"m": {"cmd": h.fake_cmd(  # noqa: E731
            model="m", fork_grandchild=True, ignore_sigterm=True, pid_file=d.pid_file("m"))}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pids = h.wait_until(lambda: (lambda p: p if len(p) >= 2 else None)(
                h.read_pid_file(d.pid_files[0])), 5, what="upstream and grandchild pids")

            first = h.guard_pids(d.proc.pid)
            self.assertEqual(len(first), 1, "one guard, a child of the daemon")
            os.kill(first[0], signal.SIGKILL)
            h.wait_until(lambda: "the process-group guard died (signal 9): starting a new one "
                                 "for 1 process group(s)" in d.log(), 5, what="a new guard")
            second = h.wait_until(lambda: h.guard_pids(d.proc.pid) or None, 5,
                                  what="the new guard")
            self.assertNotEqual(second, first)
            d.kill()
            h.wait_until(lambda: not any(h.pid_alive(p) for p in pids), 5,
                         what="every upstream pid %s gone after the daemon's SIGKILL" % pids)

    def test_request_to_a_dying_upstream_is_served(self):
        # The upstream stops accepting and exits 300 ms later: until the daemon sees it die,
        # it looks ready but refuses connections. A request then waits for the model again
        # (started afresh) instead of getting 502. (No pooled connections: one would still be
        # served by the dying process.)
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m"), "timeouts": {"idleConn": 0}}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            pid = d.running()[0]["pid"]
            r = d.request("POST", "/upstream/m/stop-listening?exit_after_ms=300")
            self.assertEqual(r.status, 200, r)
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertIn("model m: connection refused by pid %d; waiting for the model again"
                          % pid, d.log())
            self.assertNotEqual(d.running()[0]["pid"], pid)
            self.assertEqual(d.starts("m"), 2)

    def test_ignore_sigterm_killed_after_unload_timeout(self):
        cfg = {"models": {"a": {"cmd": h.fake_cmd(model="a", ignore_sigterm=True),
                                "unloadTimeout": 1},
                          "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid_a = d.running()[0]["pid"]
            t0 = time.monotonic()
            r = d.chat("b", timeout=30)
            elapsed = time.monotonic() - t0
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "b")
            self.assertFalse(h.pid_alive(pid_a), "the SIGTERM-ignoring upstream survived the swap")
            self.assertEqual(d.running_models(), ["b"])
            self.assertIn("did not stop in time, sending SIGKILL", d.log())
            # B had to wait for the 1 s grace period (proves the SIGTERM was really ignored).
            self.assertGreaterEqual(elapsed, 0.9)

    def test_cmd_stop(self):
        # cmdStop replaces SIGTERM; ${PID} is the upstream's pid.
        cfg = lambda d: {"models": {  # noqa: E731
            "a": {"cmd": h.fake_cmd(model="a"),
                  "cmdStop": "/bin/sh -c 'echo stopped ${PID} > %s; kill -TERM ${PID}'"
                             % os.path.join(d.tmp, "stop.txt")},
            "b": {"cmd": h.fake_cmd(model="b")}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid_a = d.running()[0]["pid"]
            self.assertEqual(d.chat("b").status, 200)
            with open(os.path.join(d.tmp, "stop.txt")) as f:
                self.assertEqual(f.read().strip(), "stopped %d" % pid_a)
            self.assertFalse(h.pid_alive(pid_a))


if __name__ == "__main__":
    h.main()
