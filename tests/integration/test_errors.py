#!/usr/bin/env python3
"""Client errors: every one is answered with a status and an OpenAI-style JSON error body, and the
daemon keeps serving afterwards."""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class Errors(unittest.TestCase):
    def assertJsonError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertIn("application/json", r.headers.get("content-type", ""), r)
        doc = json.loads(r.body)
        err = doc["error"]
        self.assertEqual(err["code"], code, doc)
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        self.assertIn("type", err)
        self.assertIn("param", err)
        self.assertIsNone(err["param"])
        return err

    def assertStillServing(self, d):
        r = d.request("GET", "/health")
        self.assertEqual((r.status, r.body), (200, b"OK"))

    def test_malformed_request_line(self):
        with h.Daemon(h.one_model_config()) as d:
            for bad in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.x\r\n\r\n", b"\x00\x01\x02 nonsense\r\n\r\n"):
                r = h.raw_exchange(d.port, bad)
                self.assertJsonError(r, 400, "bad_request")
            self.assertStillServing(d)

    def test_header_too_large_431(self):
        with h.Daemon(h.one_model_config()) as d:
            big = b"X-Big: " + b"a" * (100 * 1024) + b"\r\n"
            r = h.raw_exchange(d.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
            self.assertJsonError(r, 431, "header_too_large")
            self.assertStillServing(d)

    def test_many_headers_431(self):
        # A flood of small headers adds up past maxHeaderBytes (64 KiB by default).
        with h.Daemon(h.one_model_config()) as d:
            flood = b"".join(b"X-H%05d: %s\r\n" % (i, b"v" * 40) for i in range(3000))
            r = h.raw_exchange(d.port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + flood + b"\r\n")
            self.assertJsonError(r, 431, "header_too_large")
            self.assertStillServing(d)

    def test_small_max_header_bytes(self):
        with h.Daemon(h.one_model_config(maxHeaderBytes=2048)) as d:
            r = h.raw_exchange(d.port, b"GET /health HTTP/1.1\r\nX-A: " + b"b" * 4096 + b"\r\n\r\n")
            self.assertJsonError(r, 431, "header_too_large")
            self.assertStillServing(d)

    def test_body_too_large_413(self):
        with h.Daemon(h.one_model_config(maxBodyBytes=1024)) as d:
            body = json.dumps(h.chat_body("m", pad="x" * 4000)).encode()
            r = d.request("POST", "/v1/chat/completions", body=body,
                          headers={"Content-Type": "application/json"})
            self.assertJsonError(r, 413, "body_too_large")
            # The model was not started for a rejected request.
            self.assertEqual(d.running(), [])
            # A body under the limit is fine.
            r = d.chat("m")
            self.assertEqual(r.status, 200, r)
            self.assertStillServing(d)

    def test_chunked_body_too_large_413(self):
        with h.Daemon(h.one_model_config(maxBodyBytes=1024)) as d:
            chunk = b"x" * 600
            body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
            r = h.raw_exchange(d.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n" + body)
            self.assertJsonError(r, 413, "body_too_large")
            self.assertStillServing(d)

    def test_missing_model_400(self):
        with h.Daemon(h.one_model_config()) as d:
            r = d.request("POST", "/v1/chat/completions", body={"messages": []})
            self.assertJsonError(r, 400, "missing_model")
            r = d.request("POST", "/v1/chat/completions", body={"model": ""})
            self.assertJsonError(r, 400, "missing_model")
            self.assertStillServing(d)

    def test_unknown_model_404(self):
        with h.Daemon(h.one_model_config()) as d:
            r = d.chat("no-such-model")
            err = self.assertJsonError(r, 404, "model_not_found")
            self.assertIn("no-such-model", err["message"])
            self.assertEqual(d.running(), [])
            self.assertStillServing(d)

    def test_invalid_json_400(self):
        with h.Daemon(h.one_model_config()) as d:
            r = d.request("POST", "/v1/chat/completions", body=b'{"model": "m", ',
                          headers={"Content-Type": "application/json"})
            self.assertJsonError(r, 400, "invalid_request_body")
            r = d.request("POST", "/v1/chat/completions", body=b'[1,2,3]',
                          headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, r)
            self.assertStillServing(d)
            self.assertEqual(d.running(), [])

    def test_error_then_keep_alive(self):
        # An error answer that consumed its whole request leaves the connection usable.
        with h.Daemon(h.one_model_config()) as d:
            body = b'{"model": "nope"}'
            with d.raw() as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(body), body))
                r = c.read_response()
                self.assertJsonError(r, 404, "model_not_found")
                c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, b"OK"))

    def test_client_disconnect_mid_body(self):
        # A client that announces a body and vanishes must not disturb anything.
        with h.Daemon(h.one_model_config()) as d:
            for _ in range(5):
                with d.raw() as c:
                    c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 1000\r\n\r\n{\"model\":")
            self.assertStillServing(d)
            r = d.chat("m")
            self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    h.main()
