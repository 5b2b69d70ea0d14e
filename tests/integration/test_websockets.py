#!/usr/bin/env python3
"""WebSockets through the daemon, end to end with the fake upstream's /ws echo server: the
handshake and frames both ways (large ones too) through /upstream/<model>/, a peer and the TLS
listener; an open WebSocket holds its model (a swap waits, the TTL does not expire) until
either side closes; compat.ignoreWebsockets (and comfyui_auto) never start or hold a model;
an upgrade the upstream declines; shutdown and a vanished upstream end tunnels cleanly."""

import base64
import hashlib
import os
import shutil
import socket
import ssl
import struct
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402
import test_peers as tp  # noqa: E402  (certificates, the TLS daemon)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


class WebSocket:
    """A minimal RFC 6455 client on a plain socket (or an SSL one)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    @classmethod
    def connect(cls, port, path, headers=None, tls_context=None, timeout=15):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls_context:
            s = tls_context.wrap_socket(s, server_hostname="localhost")
        ws = cls(s)
        ws.key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: localhost", "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + ws.key,
                 "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        ws.status, ws.headers, ws.body = ws._read_head()
        return ws

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        if status != 101 and "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        return status, headers, body

    def accept_ok(self):
        want = base64.b64encode(hashlib.sha1((self.key + GUID).encode()).digest()).decode()
        return self.headers.get("sec-websocket-accept") == want

    def send(self, op, payload):
        n = len(payload)
        head = bytes([0x80 | op])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = (int.from_bytes(payload, "big") ^
                  int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big") if n else b""
        self.sock.sendall(head + mask + masked)

    def recv(self):
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._take(8))[0]
        return b0 & 0x0F, self._take(n)

    def echo(self, text):
        self.send(TEXT, text.encode())
        return self.recv()

    def closed_by_peer(self, timeout=10):
        """True when the connection ends (EOF or reset) within `timeout`, frames skipped."""
        self.sock.settimeout(timeout)
        try:
            while True:
                self._fill()
                self.buf = b""
        except EOFError:
            return True
        except ConnectionResetError:
            return True
        except (socket.timeout, ssl.SSLError):
            return False

    def close(self):
        self.sock.close()


def ws_model(**extra):
    m = {"cmd": h.fake_cmd(model=extra.pop("fake_model", "w"))}
    m.update(extra)
    return m


def two_models(**a_extra):
    return {"models": {"a": ws_model(fake_model="a", **a_extra), "b": ws_model(fake_model="b")}}


class Tunnel(unittest.TestCase):
    def test_echo_through_upstream_route(self):
        with h4.Daemon({"models": {"m": ws_model()}}) as d:
            ws = WebSocket.connect(d.port, "/upstream/m/ws?greet=2")
            self.assertEqual(ws.status, 101, ws.body)
            self.assertTrue(ws.accept_ok(), ws.headers)
            self.assertEqual(ws.headers.get("upgrade", "").lower(), "websocket")
            self.assertEqual([ws.recv(), ws.recv()], [(TEXT, b"greet 0"), (TEXT, b"greet 1")])
            self.assertEqual(ws.echo("hello"), (TEXT, b"hello"))
            big = os.urandom(3 * 1024 * 1024)  # beyond every buffer: back-pressure both ways
            ws.send(BINARY, big)
            self.assertEqual(ws.recv(), (BINARY, big))
            ws.send(TEXT, b"bytes 8000000")
            op, data = ws.recv()
            self.assertEqual((op, len(data)), (BINARY, 8000000))
            ws.send(PING, b"p")
            self.assertEqual(ws.recv(), (PONG, b"p"))
            self.assertEqual(d.running()[0]["inFlight"], 1, "an open WebSocket is in flight")
            ws.send(CLOSE, b"\x03\xe8")
            self.assertEqual(ws.recv(), (CLOSE, b"\x03\xe8"))
            self.assertTrue(ws.closed_by_peer())
            ws.close()
            h.wait_until(lambda: d.running()[0]["inFlight"] == 0, 5, what="released")
            h.wait_until(lambda: '"GET /upstream/m/ws?greet=2 HTTP/1.1" 101 ' in d.log(), 5,
                         what="the tunnel's access log line")
            # The connection is gone but the daemon serves on.
            self.assertEqual(d.chat("m").status, 200)

    def test_open_websocket_holds_the_model_for_swaps_and_ttl(self):
        with h4.Daemon(two_models(ttl=1)) as d:
            ws = WebSocket.connect(d.port, "/upstream/a/ws")
            self.assertEqual(ws.status, 101)
            time.sleep(2.5)  # past a's ttl: an open WebSocket keeps it
            self.assertEqual(d.running_models(), ["a"])
            swap = h.Call(lambda: d.chat("b", timeout=30))
            time.sleep(1.0)
            self.assertIsNone(swap.finished, "the swap waits for the open WebSocket")
            self.assertEqual(ws.echo("still here"), (TEXT, b"still here"))
            ws.send(CLOSE, b"")
            self.assertEqual(ws.recv()[0], CLOSE)
            ws.close()
            self.assertEqual(swap.get(30).status, 200)
            self.assertEqual(d.running_models(), ["b"])

    def test_client_that_vanishes_releases_the_model(self):
        with h4.Daemon(two_models()) as d:
            ws = WebSocket.connect(d.port, "/upstream/a/ws")
            self.assertEqual(ws.echo("x"), (TEXT, b"x"))
            ws.sock.shutdown(socket.SHUT_RDWR)  # no close frame
            ws.close()
            self.assertEqual(d.chat("b", timeout=30).status, 200)
            self.assertEqual(d.running_models(), ["b"])

    def test_client_that_vanishes_behind_a_stalled_upstream_releases_the_model(self):
        # The upstream stops reading, the client fills every buffer on the way (the daemon
        # pauses its input) and then goes away unseen: the stalled tunnel ends after
        # server.bodyTimeout instead of holding the model for ever.
        cfg = two_models()
        cfg["server"] = {"bodyTimeout": 2}
        with h4.Daemon(cfg) as d:
            ws = WebSocket.connect(d.port, "/upstream/a/ws")
            self.assertEqual(ws.echo("x"), (TEXT, b"x"))
            ws.send(TEXT, b"stall")
            ws.sock.setblocking(False)
            chunk, sent, blocked = b"z" * 65536, 0, 0
            while blocked < 20 and sent < (512 << 20):
                try:
                    sent += ws.sock.send(chunk)
                    blocked = 0
                except BlockingIOError:
                    blocked += 1
                    time.sleep(0.05)
            self.assertEqual(blocked, 20, "the daemon stopped reading the client")
            ws.close()
            h.wait_until(lambda: "tunnel stalled" in d.log(), 15,
                         what="the stalled tunnel to end")
            self.assertEqual(d.chat("b", timeout=30).status, 200)
            self.assertEqual(d.running_models(), ["b"])

    def test_upstream_that_closes_or_dies_ends_the_tunnel(self):
        with h4.Daemon({"models": {"m": ws_model()}}) as d:
            ws = WebSocket.connect(d.port, "/upstream/m/ws")
            ws.send(TEXT, b"close")  # the fake closes first
            self.assertEqual(ws.recv(), (CLOSE, b"\x03\xe8bye"))
            self.assertTrue(ws.closed_by_peer())
            ws.close()
            ws = WebSocket.connect(d.port, "/upstream/m/ws")
            self.assertEqual(ws.echo("y"), (TEXT, b"y"))
            pid = next(iter(d.upstream_pids()))
            os.kill(pid, 9)
            self.assertTrue(ws.closed_by_peer(), "the client learns the server is gone")
            ws.close()
            # The tunnel can end (connection reset) before the daemon has reaped the process;
            # a request in between would still be sent to the dead port.
            h.wait_until(lambda: "upstream exited unexpectedly" in d.log(), 5,
                         what="the daemon to notice the upstream's death")
            self.assertEqual(d.chat("m", timeout=30).status, 200, "the model starts again")

    def test_upgrade_the_upstream_declines(self):
        with h4.Daemon({"models": {"m": ws_model()}}) as d:
            # An ordinary answer to an upgrade request: relayed, then the connection closes
            # (the bytes after it could be anything).
            ws = WebSocket.connect(d.port, "/upstream/m/v1/models")
            self.assertEqual(ws.status, 200)
            self.assertIn(b'"object":"list"', ws.body)
            self.assertTrue(ws.closed_by_peer())
            ws.close()
            # Not a WebSocket handshake: the upstream's own refusal comes back.
            with h.RawConn(d.port) as c:
                c.send(b"GET /upstream/m/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       b"Upgrade: h2c\r\n\r\n")
                self.assertEqual(c.read_response().status, 400)

    def test_through_a_peer(self):
        with h.Daemon({"models": {"m": ws_model()}}) as back:
            cfg = {"peers": {"back": {"proxy": "http://127.0.0.1:%d" % back.port,
                                      "models": ["m"]}}}
            with h4.Daemon(cfg) as d:
                # The peer's own paths: the back daemon's /upstream/m/ws.
                ws = WebSocket.connect(d.port, "/upstream/back/m/upstream/m/ws?greet=1")
                self.assertEqual(ws.status, 101, ws.body)
                self.assertTrue(ws.accept_ok())
                self.assertEqual(ws.recv(), (TEXT, b"greet 0"))
                payload = os.urandom(500000)
                ws.send(BINARY, payload)
                self.assertEqual(ws.recv(), (BINARY, payload))
                ws.send(CLOSE, b"")
                self.assertEqual(ws.recv()[0], CLOSE)
                ws.close()

    def test_over_the_tls_listener(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl(1) is not installed: cannot make certificates")
        certs = tp.Certs()
        try:
            d = tp.TlsDaemon4({"models": {"m": ws_model()}},
                              args=("--tls-cert-file", certs.cert, "--tls-key-file", certs.key),
                              wait_ready=False)
            with d:
                ctx = ssl.create_default_context(cafile=certs.ca)

                def handshake():
                    try:
                        return WebSocket.connect(d.port, "/upstream/m/ws", tls_context=ctx)
                    except (OSError, EOFError):
                        return None
                ws = None
                deadline = time.monotonic() + 15
                while ws is None and time.monotonic() < deadline:
                    ws = handshake()
                    if ws is None:
                        time.sleep(0.1)
                self.assertIsNotNone(ws, "no TLS WebSocket handshake")
                self.assertEqual(ws.status, 101, ws.body)
                big = os.urandom(2 * 1024 * 1024)
                ws.send(BINARY, big)
                self.assertEqual(ws.recv(), (BINARY, big))
                ws.send(CLOSE, b"")
                self.assertEqual(ws.recv()[0], CLOSE)
                ws.close()
        finally:
            certs.remove()

    def test_shutdown_ends_open_tunnels(self):
        d = h4.Daemon({"models": {"m": ws_model()}})
        with d:
            ws = WebSocket.connect(d.port, "/upstream/m/ws")
            self.assertEqual(ws.echo("z"), (TEXT, b"z"))
            # Within the harness's 10 s, though shutdownTimeout is 30 s: a tunnel does not
            # keep the daemon (and the GPU) from stopping.
            d.terminate()
            self.assertEqual(d.exit_code, 0, d.log())
            self.assertTrue(ws.closed_by_peer(2))
            ws.close()


class IgnoreWebsockets(unittest.TestCase):
    def test_never_starts_or_holds_the_model(self):
        with h4.Daemon(two_models(compat={"ignoreWebsockets": True})) as d:
            ws = WebSocket.connect(d.port, "/upstream/a/ws")
            self.assertEqual(ws.status, 409, ws.body)
            self.assertIn(b"WebSocket requests to it (compat.ignoreWebsockets) cannot start it",
                          ws.body)
            ws.close()
            time.sleep(0.3)
            self.assertEqual(d.starts(), 0)
            self.assertEqual(d.chat("a").status, 200)  # other requests start it as usual
            ws = WebSocket.connect(d.port, "/upstream/a/ws")
            self.assertEqual(ws.status, 101)
            self.assertEqual(ws.echo("q"), (TEXT, b"q"))
            self.assertEqual(d.running()[0]["inFlight"], 0, "not counted")
            # A swap does not wait for it: the tunnel ends with its server.
            self.assertEqual(d.chat("b", timeout=30).status, 200)
            self.assertEqual(d.running_models(), ["b"])
            self.assertTrue(ws.closed_by_peer())
            ws.close()
            time.sleep(0.2)
            paths = [r["req_path"]
                     for r in d.request("GET", "/api/metrics/activity").json()["data"]]
            self.assertIn("/v1/chat/completions", paths)
            self.assertNotIn("/ws", paths, "nor shown as a request")

    def test_comfyui_auto(self):
        with h4.Daemon({"models": {"comfyui_auto": ws_model(fake_model="comfy")}}) as d:
            ws = WebSocket.connect(d.port, "/comfyui/ws?clientId=1")
            self.assertEqual(ws.status, 409, ws.body)
            self.assertIn(b"only /comfyui/ can start it", ws.body)
            ws.close()
            self.assertEqual(d.starts(), 0)
            r = d.request("GET", "/comfyui/")
            self.assertEqual((r.status, r.body), (200, b"GET /"))
            ws = WebSocket.connect(d.port, "/comfyui/ws?greet=1")
            self.assertEqual(ws.status, 101, ws.body)
            self.assertEqual(ws.recv(), (TEXT, b"greet 0"))
            self.assertEqual(d.running()[0]["inFlight"], 0, "comfyui_auto ignores WebSockets")
            ws.close()


if __name__ == "__main__":
    h.main()
