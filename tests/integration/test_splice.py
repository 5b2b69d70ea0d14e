#!/usr/bin/env python3
"""The zero-copy relay: Content-Length bodies that nothing reads go upstream socket → pipe →
client socket by splice(2). Bodies arrive byte for byte (sha256) for sizes around every
buffer and pipe boundary, with slow readers and slow writers; an upstream or a client that
closes mid-transfer is still a cut transfer; the connection serves the next request after a
spliced one; what must be read (JSON) or is small is not spliced (llamaswap_spliced_bytes_total
says what was)."""

import hashlib
import os
import re
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

KIB = 1024
MIB = 1024 * 1024


def blob_block(seed=1):
    """fake-upstream's /blob block (xorshift32, 4099 bytes)."""
    x = seed or 2463534242
    out = bytearray()
    for _ in range(4099):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out.append(x & 0xFF)
    return bytes(out)


BLOCK = blob_block()


def blob_sha(size):
    sha = hashlib.sha256()
    whole, rest = divmod(size, len(BLOCK))
    for _ in range(whole):
        sha.update(BLOCK)
    sha.update(BLOCK[:rest])
    return sha.hexdigest()


def spliced_total(d):
    r = d.request("GET", "/metrics")
    m = re.search(r"^llamaswap_spliced_bytes_total (\d+)", r.body.decode(), re.M)
    return int(m.group(1))


def config():
    return {"models": {"m": {"cmd": h.fake_cmd(model="m")}}}


class Response:
    def __init__(self, head, body, complete):
        self.head, self.body, self.complete = head, body, complete
        self.status = int(head.split(b" ", 2)[1])
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        self.length = int(m.group(1)) if m else None


def get(conn, path, read_delay=0.0, read_size=65536):
    """GET on a raw keep-alive connection; reads the Content-Length body (slowly with
    read_delay seconds between reads of read_size bytes). complete: the whole body came."""
    conn.send(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
    head = conn.read_until(b"\r\n\r\n")
    r = Response(head, b"", False)
    want = r.length
    body = bytearray()
    # What read_until read past the head is in the connection's buffer: read_exact takes it.
    while len(body) < want:
        try:
            chunk = conn.read_exact(min(read_size, want - len(body)))
        except EOFError:  # cut short: what came is in the connection's buffer
            body += conn.buf
            conn.buf = b""
            break
        if not chunk:
            break
        body += chunk
        if read_delay:
            time.sleep(read_delay)
    r.body = bytes(body)
    r.complete = len(body) == want
    return r


class Splice(unittest.TestCase):
    def test_bodies_arrive_byte_for_byte_around_every_boundary(self):
        sizes = [64 * KIB - 1, 64 * KIB, 64 * KIB + 1, 256 * KIB - 1, 256 * KIB + 1,
                 MIB - 1, MIB, MIB + 1, 2 * MIB + 4099, 9 * MIB + 7]
        with h.Daemon(config()) as d:
            before = spliced_total(d)
            with d.raw(timeout=60) as c:
                for size in sizes:
                    # The upstream writes in pieces that straddle the boundaries too.
                    for chunk in (262144, 65537):
                        r = get(c, "/upstream/m/blob?size=%d&chunk=%d" % (size, chunk))
                        self.assertEqual(r.status, 200)
                        self.assertTrue(r.complete, "size %d: %d bytes" % (size, len(r.body)))
                        self.assertEqual(hashlib.sha256(r.body).hexdigest(), blob_sha(size),
                                         "size %d chunk %d" % (size, chunk))
            # Most of it went by splice (the bytes read with each head did not).
            went = spliced_total(d) - before
            total = 2 * sum(sizes)
            self.assertGreater(went, total * 0.8, "spliced %d of %d" % (went, total))
            self.assertLessEqual(went, total)

    def test_slow_writer(self):
        with h.Daemon(config()) as d:
            with d.raw(timeout=60) as c:
                size = 300 * KIB + 11
                r = get(c, "/upstream/m/blob?size=%d&chunk=1000&delay_ms=1" % size)
                self.assertTrue(r.complete)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), blob_sha(size))

    def test_slow_reader_holds_the_upstream_back(self):
        # A reader slower than the upstream: the pipe fills, the daemon stops reading the
        # upstream, and its memory does not grow with the body.
        with h.Daemon(config()) as d:
            size = 24 * MIB + 5
            with d.raw(timeout=60) as c:
                r = get(c, "/upstream/m/blob?size=%d" % size, read_delay=0.005,
                        read_size=256 * KIB)
                self.assertTrue(r.complete)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), blob_sha(size))
                self.assertNotIn("is wedged", d.log())
                # Keep-alive: the same connection serves the next request.
                r = get(c, "/upstream/m/blob?size=100000")
                self.assertTrue(r.complete)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), blob_sha(100000))

    def test_upstream_cut_mid_body_is_a_cut_transfer(self):
        with h.Daemon(config()) as d:
            with d.raw(timeout=30) as c:
                r = get(c, "/upstream/m/blob?size=%d&cut_at=%d" % (4 * MIB, MIB + 17))
                self.assertEqual(r.length, 4 * MIB)
                self.assertFalse(r.complete, "a cut body must not look whole")
                self.assertEqual(len(r.body), MIB + 17)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), blob_sha(MIB + 17))
                # ... and the connection is closed, not left hanging.
                c.sock.settimeout(5)
                self.assertEqual(c.sock.recv(1), b"")
            h.wait_until(lambda: "mid-response, aborting the client response" in d.log(), 5,
                         what="the cut to be logged")
            # The daemon goes on serving.
            self.assertEqual(d.chat("m").status, 200)

    def test_client_closing_mid_body_cancels_the_upstream(self):
        with h.Daemon(config()) as d:
            fds = len(os.listdir("/proc/%d/fd" % d.proc.pid))
            for _ in range(5):
                s = socket.create_connection(("127.0.0.1", d.port))
                s.sendall(b"GET /upstream/m/blob?size=%d HTTP/1.1\r\nHost: x\r\n\r\n"
                          % (64 * MIB))
                got = 0
                while got < 3 * MIB:
                    got += len(s.recv(262144))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                s.close()  # a reset mid-body
            h.wait_until(lambda: d.log().count("client went away") >= 5, 10,
                         what="five cancelled upstream requests")
            self.assertEqual(d.chat("m").status, 200)
            # No descriptor leaks: at most the few pooled pipes (2 fds each) stay.
            h.wait_until(lambda: len(os.listdir("/proc/%d/fd" % d.proc.pid)) <= fds + 2 * 8 + 2,
                         5, what="the daemon's descriptors to settle")

    def test_json_and_small_bodies_are_not_spliced(self):
        # A JSON answer is read for its token counts; a small body costs one copy anyway.
        with h.Daemon(config()) as d:
            before = spliced_total(d)
            with d.raw(timeout=30) as c:
                r = get(c, "/upstream/m/blob?size=%d&type=application/json" % (2 * MIB))
                self.assertTrue(r.complete)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), blob_sha(2 * MIB))
                r = get(c, "/upstream/m/blob?size=%d" % (64 * KIB - 1))
                self.assertTrue(r.complete)
            self.assertEqual(spliced_total(d), before)

    def test_head_request(self):
        with h.Daemon(config()) as d:
            with d.raw(timeout=10) as c:
                c.send(b"HEAD /upstream/m/blob?size=1000000 HTTP/1.1\r\nHost: x\r\n\r\n")
                head = c.read_until(b"\r\n\r\n")
                self.assertIn(b" 200 ", head.split(b"\r\n")[0])
                # No body follows: the next request on the connection is answered.
                r = get(c, "/upstream/m/blob?size=70000")
                self.assertTrue(r.complete)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(), blob_sha(70000))


if __name__ == "__main__":
    h.main()
