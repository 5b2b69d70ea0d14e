#!/usr/bin/env python3
"""apiKeys: every route but /health (and CORS preflights) needs a key; Bearer, x-api-key and
Basic are accepted; the key never reaches the upstream; a refused upload is not read."""

import os
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402

K1, K2 = "sk-test-key-one", "sk-test-key-two"
REALM = 'Basic realm="llama-swap"'


def cfg():
    return {"apiKeys": [K1, K2],
            "models": {"m": h4.echo_model(aliases=["m-alias"]),
                       "p": {"cmd": h.fake_cmd(model="p")}}}


# (method, path, body) for every kind of route.
ROUTES = [
    ("GET", "/v1/models", None), ("GET", "/models", None), ("GET", "/running", None),
    ("GET", "/logs", None), ("GET", "/logs/stream", None), ("GET", "/logs/stream/proxy", None),
    ("GET", "/api/events", None), ("GET", "/props?model=m", None),
    ("POST", "/v1/chat/completions", h.chat_body("m")),
    ("POST", "/v1/embeddings", {"model": "m", "input": "x"}),
    ("GET", "/upstream/m/echo", None), ("POST", "/upstream/m/echo", b"data"),
    ("GET", "/upstream/m", None), ("GET", "/unload", None), ("POST", "/api/models/unload", None),
    ("POST", "/api/models/unload/m", None), ("GET", "/no/such/route", None),
    ("HEAD", "/v1/models", None),
]

BAD_CREDENTIALS = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Bearer " + K1 + "x"},
    {"Authorization": "Bearer " + K1[:-1]},
    {"Authorization": "Bearer"},
    {"Authorization": K1},
    {"Authorization": "Token " + K1},
    {"x-api-key": "wrong"},
    {"x-api-key": ""},
    {"Authorization": h4.basic("user", "wrong")},
    {"Authorization": h4.basic(K1, "")},           # the key as the user name does not count
    {"Authorization": "Basic " + K1},               # not base64 of user:password
]

GOOD_CREDENTIALS = [
    {"Authorization": "Bearer " + K1},
    {"Authorization": "Bearer " + K2},
    {"Authorization": "bearer " + K2},
    {"x-api-key": K1},
    {"X-Api-Key": K2},
    {"Authorization": h4.basic("anyone", K1)},
    {"Authorization": h4.basic("", K2)},
    {"Authorization": "Bearer wrong", "x-api-key": K1},  # one valid key is enough
]


def server_end_open(server_port, client_port):
    """Whether a process still holds the server end of the TCP connection from client_port
    (an end that was closed, even if the kernel still keeps it in FIN-WAIT-2, has no inode)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.rsplit(":", 1)[1], 16) == server_port and
                    int(remote.rsplit(":", 1)[1], 16) == client_port):
                return inode != "0"
    return False

class Auth(unittest.TestCase):
    def check_401(self, r, what):
        self.assertEqual(r.status, 401, (what, r))
        self.assertEqual(r.headers.get("www-authenticate"), REALM, what)
        if r.body:  # HEAD has none
            self.assertEqual(h4.err_code(r), "unauthorized", what)

    def test_every_route_needs_a_key(self):
        with h4.Daemon(cfg()) as d:
            for creds in BAD_CREDENTIALS:
                for method, path, body in ROUTES:
                    r = d.request(method, path, body=body, headers=creds, timeout=5)
                    self.check_401(r, (creds, method, path))
            # Nothing was started or unloaded by refused requests.
            self.assertEqual(d.starts(), 0)
            # Model lookups happen after authentication: an unknown model is also 401.
            r = d.chat("no-such-model")
            self.check_401(r, "unknown model")

    def test_health_and_preflight_are_public(self):
        with h4.Daemon(cfg()) as d:
            r = d.request("GET", "/health")
            self.assertEqual((r.status, r.body), (200, b"OK"))
            r = d.request("GET", "/health", headers={"Authorization": "Bearer wrong"})
            self.assertEqual(r.status, 200, "a wrong key does not matter on /health")
            r = d.request("HEAD", "/health")
            self.assertEqual(r.status, 200)
            r = d.request("OPTIONS", "/v1/chat/completions",
                          headers={"Origin": "http://ui", "Access-Control-Request-Method": "POST",
                                   "Access-Control-Request-Headers": "authorization"})
            self.assertEqual(r.status, 204, r)
            self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
            # A 401 to a browser still carries the CORS header, so the UI can read it.
            r = d.request("GET", "/v1/models", headers={"Origin": "http://ui"})
            self.assertEqual(r.status, 401)
            self.assertEqual(r.headers.get("access-control-allow-origin"), "*")

    def test_accepted_forms(self):
        with h4.Daemon(cfg()) as d:
            for creds in GOOD_CREDENTIALS:
                r = d.request("GET", "/v1/models", headers=creds)
                self.assertEqual(r.status, 200, (creds, r))
                r = d.request("POST", "/v1/chat/completions", body=h.chat_body("p"),
                              headers=creds)
                self.assertEqual(r.status, 200, (creds, r))
                self.assertEqual(r.json()["request_model"], "p")
                r = d.request("GET", "/running", headers=creds)
                self.assertEqual(r.status, 200, (creds, r))
            self.assertEqual(d.starts("p"), 1)

    def test_key_never_reaches_upstream(self):
        with h4.Daemon(cfg()) as d:
            for creds in GOOD_CREDENTIALS:
                hdrs = dict(creds, **{"X-Other": "kept"})
                # /upstream passthrough
                r = d.request("POST", "/upstream/m/pt?x=1", body=b"abc", headers=hdrs)
                self.assertEqual(r.status, 200, (creds, r))
                doc = r.json()
                self.assertEqual(doc["path"], "/echo/pt?x=1")  # under the proxy URL's path
                self.assertNotIn("authorization", doc["headers"], (creds, doc))
                self.assertNotIn("x-api-key", doc["headers"], (creds, doc))
                self.assertEqual(doc["headers"].get("x-other"), "kept")
                # a model-dispatched route (the echo model relays chat to /echo/...)
                r = d.request("POST", "/v1/chat/completions", body=h.chat_body("m-alias"),
                              headers=hdrs)
                self.assertEqual(r.status, 200, (creds, r))
                doc = r.json()
                self.assertEqual(doc["path"], "/echo/v1/chat/completions")
                self.assertNotIn("authorization", doc["headers"], (creds, doc))
                self.assertNotIn("x-api-key", doc["headers"], (creds, doc))
                self.assertEqual(doc["headers"].get("x-other"), "kept")
                # and a GET routed by ?model=
                r = d.request("GET", "/props?model=m", headers=hdrs)
                doc = r.json()
                self.assertNotIn("authorization", doc["headers"], (creds, doc))
                self.assertNotIn("x-api-key", doc["headers"], (creds, doc))
                # the key is not in the body either
                self.assertNotIn(K1, r.body.decode())
                self.assertNotIn(K2, r.body.decode())

    def test_refused_upload_is_not_read(self):
        # A 401 is decided by the head: a 1 GiB upload is answered without waiting for the
        # body, and the daemon ends its side right after the answer. What the client still
        # sends is drained and dropped (lingering close: a client that writes its whole body
        # before reading must see the 401, not a reset) until it goes quiet.
        with h4.Daemon(cfg()) as d:
            for i, path in enumerate(("/v1/audio/transcriptions", "/v1/chat/completions",
                                      "/upstream/m/echo")):
                with d.raw(timeout=10) as c:
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                    head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                            "multipart/form-data; boundary=zz\r\nContent-Length: %d\r\n\r\n"
                            % (path, 1 << 30))
                    c.send(head)
                    c.send(b"--zz\r\n" + b"x" * 65536)
                    r = c.read_response()
                    self.check_401(r, path)
                    self.assertEqual(r.headers.get("connection", "").lower(), "close", r)
                    # The daemon's end is closed for writing though the body never came.
                    rest = c.read_all()
                    self.assertTrue(c.eof, "connection not half-closed after the answer")
                    self.assertEqual(rest, b"")
                    if i > 0:
                        continue
                    # More body is accepted and dropped: the client sees no reset mid-send.
                    for _ in range(32):
                        c.sock.sendall(b"y" * 65536)
                    self.assertEqual(d.request("GET", "/health").status, 200)
                    # Once the client is quiet (5 s), the daemon closes its socket.
                    client_port = c.sock.getsockname()[1]
                    self.assertTrue(server_end_open(d.port, client_port), "closed at once")
                    h.wait_until(lambda: not server_end_open(d.port, client_port), 20,
                                 interval=0.25, what="the lingering close")
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_keys_from_reload_apply(self):
        # apiKeys is re-read on reload: a new key works from the next request, a removed one
        # no longer does.
        with h4.Daemon(cfg()) as d:
            self.assertEqual(d.request("GET", "/running", headers={"x-api-key": K2}).status, 200)
            c = cfg()
            c["apiKeys"] = [K1, "sk-new-key"]
            d.write_config(c)
            self.assertTrue(d.sighup())
            self.assertEqual(d.request("GET", "/running", headers={"x-api-key": K2}).status, 401)
            self.assertEqual(
                d.request("GET", "/running", headers={"x-api-key": "sk-new-key"}).status, 200)
            c["apiKeys"] = []
            del c["apiKeys"]
            d.write_config(c)
            self.assertTrue(d.sighup())
            self.assertEqual(d.request("GET", "/running").status, 200, "no keys: open again")


if __name__ == "__main__":
    h.main()
