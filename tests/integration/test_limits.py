#!/usr/bin/env python3
"""Server limits: header/body/idle timeouts, maxConnections, request smuggling guards, and the
access log of rejected requests."""

import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


ACCESS_RE = re.compile(r'^\[info\] \S+ "([^"]*)" (\d{3}) (\d+) "[^"]*" (-?[\d.]+)$', re.M)


class Limits(unittest.TestCase):
    def assertJsonError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json()["error"]["code"], code, r)

    def test_header_timeout_slowloris(self):
        # One byte every 0.2 s never completes the head: the 1 s headerTimeout bounds the whole
        # head, not the gap between bytes.
        with h.Daemon(h.one_model_config(headerTimeout=1)) as d:
            with d.raw(timeout=10) as c:
                t0 = time.monotonic()
                req = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100
                answer = b""
                for i in range(len(req)):
                    try:
                        c.send(req[i:i + 1])
                    except OSError:
                        break
                    c.sock.settimeout(0.2)
                    try:
                        answer = c.sock.recv(4096)
                        break
                    except socket.timeout:
                        pass
                    if time.monotonic() - t0 > 8:
                        break
                elapsed = time.monotonic() - t0
            self.assertTrue(answer.startswith(b"HTTP/1.1 408 "), answer[:200])
            self.assertIn(b"request_timeout", answer)
            # 1 s timeout; < 5 s is a generous bound that still rules out "never".
            self.assertLess(elapsed, 5)

    def test_body_timeout(self):
        with h.Daemon(h.one_model_config(bodyTimeout=1)) as d:
            with d.raw(timeout=10) as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 100\r\n\r\n{\"model\"")
                t0 = time.monotonic()
                r = c.read_response()
                elapsed = time.monotonic() - t0
            self.assertJsonError(r, 408, "request_timeout")
            self.assertLess(elapsed, 5)
            self.assertEqual(d.running(), [])

    def test_idle_timeout_closes_keepalive(self):
        with h.Daemon(h.one_model_config(idleTimeout=1)) as d:
            with d.raw(timeout=10) as c:
                c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(c.read_response().status, 200)
                t0 = time.monotonic()
                self.assertEqual(c.read_all(), b"")
                self.assertTrue(c.eof)
                self.assertLess(time.monotonic() - t0, 5)

    def test_idle_timeout_not_during_slow_response(self):
        # A request that takes longer than idleTimeout is not an idle connection.
        with h.Daemon(h.one_model_config(idleTimeout=1, headerTimeout=1)) as d:
            r = d.chat("m", path="/v1/chat/completions?delay_ms=2500", timeout=30)
            self.assertEqual(r.status, 200, r)

    def test_slow_stream_not_cut_by_timeouts(self):
        # An SSE stream with 1.5 s between tokens outlives every 1 s server timeout.
        cfg = {"server": {"idleTimeout": 1, "headerTimeout": 1, "bodyTimeout": 1},
               "models": {"m": {"cmd": h.fake_cmd(model="m", tokens=3, tps=0.66)}}}
        with h.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("m", stream=True),
                                 timeout=30)
            self.assertEqual(s.status, 200)
            self.assertTrue(s.complete, s.error)
            self.assertEqual(s.data_lines()[-1][1], b"[DONE]")

    def test_max_connections_queues_extra(self):
        with h.Daemon(h.one_model_config(maxConnections=2)) as d:
            c1, c2 = d.raw(), d.raw()
            try:
                for c in (c1, c2):
                    c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(c.read_response().status, 200)
                result = {}

                def third():
                    try:
                        result["r"] = d.request("GET", "/health", timeout=10)
                    except OSError as e:
                        result["r"] = e
                    result["t"] = time.monotonic()

                t = threading.Thread(target=third, daemon=True)
                t.start()
                time.sleep(0.5)
                self.assertNotIn("r", result, "a third connection was served over maxConnections")
                closed_at = time.monotonic()
                c1.close()
                t.join(10)
                self.assertIn("r", result)
                self.assertNotIsInstance(result["r"], Exception, result)
                self.assertEqual(result["r"].status, 200)
                self.assertGreaterEqual(result["t"], closed_at)
            finally:
                c1.close()
                c2.close()

    def test_content_length_with_transfer_encoding_400(self):
        with h.Daemon(h.one_model_config()) as d:
            r = h.raw_exchange(d.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"0\r\n\r\n")
            self.assertJsonError(r, 400, "bad_request")
            self.assertEqual(r.headers.get("connection"), "close")

    def test_duplicate_content_length_400(self):
        with h.Daemon(h.one_model_config()) as d:
            r = h.raw_exchange(d.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef")
            self.assertJsonError(r, 400, "bad_request")

    def test_bad_header_line_400(self):
        with h.Daemon(h.one_model_config()) as d:
            r = h.raw_exchange(d.port, b"GET /health HTTP/1.1\r\nHost x\r\n\r\n")
            self.assertJsonError(r, 400, "bad_request")
            r = h.raw_exchange(d.port, b"GET /health HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
            self.assertJsonError(r, 400, "bad_request")

    def test_long_url_431(self):
        with h.Daemon(h.one_model_config()) as d:
            r = h.raw_exchange(d.port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
            self.assertEqual(r.status, 431, r)

    def test_expect_continue_too_large_413_without_100(self):
        with h.Daemon(h.one_model_config(maxBodyBytes=1000)) as d:
            with d.raw() as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       b"Content-Type: application/json\r\nContent-Length: 50000\r\n\r\n")
                r = c.read_response(allow_interim=True)
            self.assertJsonError(r, 413, "body_too_large")

    def test_too_large_body_sent_in_full_still_gets_413(self):
        # A client that sends its whole body before reading (Python's http.client, requests)
        # must read the 413, not a connection reset: the daemon drains the refused body
        # (lingering close) instead of closing with unread input.
        with h.Daemon(h.one_model_config(maxBodyBytes=1 << 20)) as d:
            for size in (8 << 20, 50 << 20):
                with d.raw(timeout=30) as c:
                    c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n" % size)
                    chunk = b"x" * (1 << 20)
                    for _ in range(size // len(chunk)):
                        c.sock.sendall(chunk)
                    data = c.read_all()
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 413 "), (size, data[:200]))
                self.assertEqual(json.loads(body)["error"]["code"], "body_too_large")
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_http10_streaming_not_chunked(self):
        # HTTP/1.0 has no chunked encoding: the stream is sent raw and ended by the close.
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", tokens=3)}}}
        with h.Daemon(cfg) as d:
            body = json.dumps(h.chat_body("m", stream=True)).encode()
            with d.raw() as c:
                c.send(b"POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                status, headers, _ = c.read_head()
                rest = c.read_all()
            self.assertEqual(status, 200)
            self.assertNotIn("chunked", headers.get("transfer-encoding", ""))
            self.assertTrue(rest.startswith(b"data: "), rest[:100])
            self.assertTrue(rest.rstrip().endswith(b"data: [DONE]"), rest[-100:])

    def test_access_log_of_rejected_requests(self):
        # Every access-log line reports how long the request took: rejected requests too.
        with h.Daemon(h.one_model_config(headerTimeout=1)) as d:
            h.raw_exchange(d.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            h.raw_exchange(d.port, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
            h.raw_exchange(d.port, b"GARBAGE\r\n\r\n")
            self.assertEqual(d.request("GET", "/health").status, 200)
            time.sleep(0.1)
            lines = ACCESS_RE.findall(d.log())
            statuses = sorted(int(s) for _, s, _, _ in lines)
            self.assertIn(400, statuses, d.log())
            self.assertIn(431, statuses, d.log())
            for req, status, _, dur in lines:
                self.assertLess(float(dur), 60.0,
                                "access log of %r (status %s) claims it took %s s"
                                % (req, status, dur))


if __name__ == "__main__":
    h.main()
