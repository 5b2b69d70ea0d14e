#!/usr/bin/env python3
"""Basic routes and HTTP/1.1 connection handling."""

import http.client
import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def two_models():
    return {"models": {
        "alpha": {"cmd": h.fake_cmd(model="alpha"), "name": "Alpha", "description": "first model"},
        "beta": {"cmd": h.fake_cmd(model="beta")},
        "hidden": {"cmd": h.fake_cmd(model="hidden"), "unlisted": True},
    }}


class Basic(unittest.TestCase):
    def test_health(self):
        with h.Daemon(two_models()) as d:
            r = d.request("GET", "/health")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"OK")

    def test_models_list(self):
        with h.Daemon(two_models()) as d:
            r = d.request("GET", "/v1/models")
            self.assertEqual(r.status, 200, r)
            self.assertIn("application/json", r.headers.get("content-type", ""))
            doc = r.json()
            self.assertEqual(doc["object"], "list")
            by_id = {m["id"]: m for m in doc["data"]}
            self.assertEqual(sorted(by_id), ["alpha", "beta"], "unlisted model must be hidden")
            for m in doc["data"]:
                self.assertEqual(m["object"], "model")
                self.assertEqual(m["owned_by"], "llama-swap")
                self.assertIsInstance(m["created"], int)
            self.assertEqual(by_id["alpha"]["name"], "Alpha")
            self.assertEqual(by_id["alpha"]["description"], "first model")
            self.assertNotIn("description", by_id["beta"])

    def test_unlisted_model_still_served(self):
        with h.Daemon(two_models()) as d:
            r = d.chat("hidden")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "hidden")

    def test_running_empty_then_one(self):
        with h.Daemon(two_models()) as d:
            self.assertEqual(d.running(), [])
            r = d.chat("alpha")
            self.assertEqual(r.status, 200, r)
            run = d.running()
            self.assertEqual(len(run), 1, run)
            e = run[0]
            self.assertEqual(e["model"], "alpha")
            self.assertEqual(e["state"], "ready")
            self.assertEqual(e["name"], "Alpha")
            self.assertEqual(e["description"], "first model")
            self.assertTrue(h.pid_alive(e["pid"]))
            self.assertIn("--model alpha", e["cmd"])
            self.assertNotIn("${PORT}", e["cmd"], "the running cmd shows the substituted port")
            self.assertTrue(e["proxy"].startswith("http://"), e)
            self.assertEqual(e["inFlight"], 0)
            self.assertEqual(e["queued"], 0)

    def test_unknown_route_404(self):
        with h.Daemon(two_models()) as d:
            r = d.request("GET", "/no/such/route")
            self.assertEqual(r.status, 404)
            err = r.json()["error"]
            self.assertEqual(err["code"], "not_found")
            self.assertIsNone(err["param"])
            self.assertTrue(err["message"])

    def test_wrong_method_405(self):
        with h.Daemon(two_models()) as d:
            r = d.request("POST", "/health", body=b"")
            self.assertEqual(r.status, 405)
            self.assertIn("GET", r.headers.get("allow", ""))
            self.assertIn("error", r.json())
            r = d.request("GET", "/v1/chat/completions")
            self.assertEqual(r.status, 405)
            self.assertEqual(r.headers.get("allow"), "POST")

    def test_head_health(self):
        with h.Daemon(two_models()) as d:
            with d.raw() as c:
                c.send(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response(method="HEAD")
                self.assertEqual(r.status, 200)
                # The connection stays usable: no body bytes were sent after the HEAD head.
                c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, b"OK"))

    def test_keep_alive(self):
        with h.Daemon(two_models()) as d:
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            try:
                conn.request("GET", "/health")
                r = conn.getresponse()
                r.read()
                sock = conn.sock
                self.assertIsNotNone(sock)
                for path in ("/v1/models", "/running", "/health", "/nope"):
                    conn.request("GET", path)
                    r = conn.getresponse()
                    r.read()
                    self.assertIn(r.status, (200, 404))
                    self.assertIs(conn.sock, sock, "connection was not kept alive")
                # A model request on the same connection too.
                conn.request("POST", "/v1/chat/completions",
                             body=json.dumps(h.chat_body("alpha")),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                self.assertEqual(json.loads(r.read())["request_model"], "alpha")
                self.assertIs(conn.sock, sock, "connection was not kept alive")
            finally:
                conn.close()

    def test_one_date_header(self):
        # The fake upstream sends its own Date, as origin servers do: the client still gets
        # exactly one (ours), as nginx does, and the rest of the upstream's head.
        with h.Daemon(two_models()) as d:
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
            try:
                for _ in range(2):
                    conn.request("POST", "/v1/chat/completions",
                                 body=json.dumps(h.chat_body("alpha")),
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    self.assertEqual(r.status, 200)
                    self.assertEqual(len(r.msg.get_all("Date") or []), 1, str(r.msg))
                    self.assertEqual(r.getheader("Server"), "fake-upstream")
                conn.request("GET", "/health")
                r = conn.getresponse()
                r.read()
                self.assertEqual(len(r.msg.get_all("Date") or []), 1, str(r.msg))
            finally:
                conn.close()

    def test_pipelined_requests_in_order(self):
        with h.Daemon(two_models()) as d:
            with d.raw() as c:
                c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /nope-1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
                r1 = c.read_response()
                r2 = c.read_response()
                r3 = c.read_response()
            self.assertEqual((r1.status, r1.body), (200, b"OK"))
            self.assertEqual(r2.status, 404)
            self.assertIn("/nope-1", r2.json()["error"]["message"])
            self.assertEqual(r3.status, 200)
            self.assertEqual(r3.json()["object"], "list")

    def test_pipelined_model_requests_in_order(self):
        # A slow model request first: the fast one behind it must still be answered second.
        with h.Daemon(two_models()) as d:
            b1 = json.dumps(h.chat_body("alpha", marker=1)).encode()
            with d.raw(timeout=15) as c:
                c.send(b"POST /v1/chat/completions?delay_ms=300 HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" % (len(b1), b1))
                r1 = c.read_response()
                r2 = c.read_response()
            self.assertEqual(r1.status, 200, r1)
            self.assertEqual(r1.json()["request_model"], "alpha")
            self.assertEqual((r2.status, r2.body), (200, b"OK"))

    def test_chunked_request_body(self):
        with h.Daemon(two_models()) as d:
            body = json.dumps(h.chat_body("beta")).encode()
            parts = [body[:10], body[10:25], body[25:]]
            chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
            with d.raw(timeout=15) as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + chunked)
                r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "beta")

    def test_expect_100_continue(self):
        with h.Daemon(two_models()) as d:
            body = json.dumps(h.chat_body("alpha")).encode()
            with d.raw(timeout=15) as c:
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body))
                interim = c.read_response(allow_interim=True)
                self.assertEqual(interim.status, 100, interim)
                c.send(body)
                r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "alpha")

    def test_http10_closes(self):
        with h.Daemon(two_models()) as d:
            with d.raw() as c:
                c.send(b"GET /health HTTP/1.0\r\n\r\n")
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, b"OK"))
                self.assertEqual(c.read_all(), b"", "HTTP/1.0 without keep-alive must close")
                self.assertTrue(c.eof)


if __name__ == "__main__":
    h.main()
