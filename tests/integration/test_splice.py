#!/usr/bin/env python3
"""The zero-copy relay: Content-Length bodies that nothing reads go upstream socket → pipe →
client socket by splice(2), and request bodies taken while they arrive go client socket →
pipe → upstream socket. Bodies arrive byte for byte (sha256) for sizes around every buffer
and pipe boundary, with slow readers and slow writers; an upstream or a client that closes
mid-transfer is still a cut transfer; the connection serves the next request after a spliced
one; what must be read (JSON) or is small is not spliced (llamaswap_spliced_bytes_total says
what was). A body that must be read whole first goes socket → pipe → spool file.
"""

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


ANNOUNCED = "fake-upstream: transcription head received"
BODY_CUT = "fake-upstream: transcription body cut after"
SPOOL_AT = 64 * KIB  # bodyMemoryBytes: a body past it is spooled, and taken while it arrives
TAIL = 4096  # http::Connection::kBodyTail: the body's last bytes are read, not spliced


def upload_config():
    return {"server": {"bodyMemoryBytes": SPOOL_AT},
            "models": {"m": {"cmd": h.fake_cmd(model="m")},
                       "r": {"cmd": h.fake_cmd(model="r"),
                             "useModelName": "a-longer/upstream-name"}}}


def upload(d, c, first, rest, piece=0, pause=0.0, query=""):
    """POSTs first + rest random bytes on raw connection c to /upstream/m/ (the body passes
    as it is): the head and `first` bytes (past bodyMemoryBytes, so the request is taken
    early), then, once the upstream has the request, `rest`, in pieces of `piece` bytes with
    `pause` seconds between them (a slow writer) or at once. Returns (response, sha256)."""
    body = os.urandom(first + rest)
    announced = d.log().count(ANNOUNCED)
    c.send(b"POST /upstream/m/v1/audio/transcriptions?announce=1%s HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
           % (query.encode(), len(body)))
    c.send(body[:first])
    h.wait_until(lambda: d.log().count(ANNOUNCED) > announced, 10,
                 what="the upstream to get the request while its body arrives")
    at = first
    while at < len(body):
        n = piece or len(body) - at
        c.send(body[at:at + n])
        at += n
        if pause:
            time.sleep(pause)
    return c.read_response("POST"), hashlib.sha256(body).hexdigest()


class SplicedUpload(unittest.TestCase):
    def check(self, r, sha, length):
        self.assertEqual(r.status, 200, r.body[:300])
        doc = r.json()
        self.assertEqual((doc["body_length"], doc["body_sha256"]), (length, sha))

    def test_bodies_arrive_byte_for_byte_around_every_boundary(self):
        # Around the tail that is read, the 64 KiB read size and the 256 KiB pipe.
        rests = [1, TAIL - 1, TAIL, TAIL + 1, 64 * KIB - 1, 64 * KIB + TAIL + 1,
                 256 * KIB - 1, 256 * KIB + TAIL, 256 * KIB + TAIL + 1, 512 * KIB + 3,
                 3 * MIB + 4099]
        with h.Daemon(upload_config()) as d:
            self.assertEqual(d.chat("m").status, 200)
            went = 0
            with d.raw(timeout=60) as c:  # one keep-alive connection for all of them
                for first in (SPOOL_AT + 1, SPOOL_AT + 70001):
                    for rest in rests:
                        before = spliced_total(d)
                        r, sha = upload(d, c, first, rest)
                        self.check(r, sha, first + rest)
                        spliced = spliced_total(d) - before
                        # Never the tail (read, so the request ends as any other), nor what
                        # was spooled before the request was taken (more than SPOOL_AT).
                        self.assertLessEqual(spliced, max(first + rest - TAIL - SPOOL_AT - 1, 0),
                                             "rest %d" % rest)
                        went += spliced
            # The rest went by splice, but where the upstream had not yet taken the spool's
            # bytes when it came (then the connection reads it into the spool).
            expected = 2 * sum(max(r - TAIL, 0) for r in rests)
            self.assertGreater(went, expected * 0.5, "spliced %d of %d" % (went, expected))
            self.assertNotIn(BODY_CUT, d.log())

    def test_slow_writer(self):
        with h.Daemon(upload_config()) as d:
            self.assertEqual(d.chat("m").status, 200)
            with d.raw(timeout=60) as c:
                before = spliced_total(d)
                r, sha = upload(d, c, SPOOL_AT + 5, 300 * KIB + 11, piece=4000, pause=0.002)
                self.check(r, sha, SPOOL_AT + 5 + 300 * KIB + 11)
                self.assertGreater(spliced_total(d), before)

    def test_slow_reader_holds_the_client_back(self):
        # An upstream slower than the client: the pipe fills and the daemon stops reading the
        # client; the body still arrives whole and the connection serves on.
        with h.Daemon(upload_config()) as d:
            self.assertEqual(d.chat("m").status, 200)
            with d.raw(timeout=60) as c:
                rest = 6 * MIB + 1
                r, sha = upload(d, c, SPOOL_AT + 1, rest, query="&read_pause_ms=3")
                self.check(r, sha, SPOOL_AT + 1 + rest)
                # Keep-alive: the same connection serves the next request.
                r, sha = upload(d, c, SPOOL_AT + 1, 100000)
                self.check(r, sha, SPOOL_AT + 1 + 100000)
            self.assertNotIn("is wedged", d.log())

    def test_client_stalling_mid_body_is_timed_out_and_the_upstream_cut(self):
        cfg = upload_config()
        cfg["server"]["bodyTimeout"] = 1
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m").status, 200)
            with d.raw(timeout=30) as c:
                c.send(b"POST /upstream/m/v1/audio/transcriptions?announce=1 HTTP/1.1\r\n"
                       b"Host: x\r\nContent-Length: %d\r\n\r\n" % (SPOOL_AT + 4 * MIB))
                c.send(os.urandom(SPOOL_AT + 1))
                h.wait_until(lambda: ANNOUNCED in d.log(), 10, what="the upstream to get it")
                before = spliced_total(d)
                c.send(os.urandom(MIB))  # spliced, then nothing more
                h.wait_until(lambda: spliced_total(d) > before, 5, what="bytes to be spliced")
                t0 = time.monotonic()
                h.wait_until(lambda: BODY_CUT in d.log(), 10, what="the upstream to see a cut body")
                self.assertGreater(time.monotonic() - t0, 0.5, "not before bodyTimeout")
                self.assertIn("timed out reading the request body", d.log())
                c.sock.settimeout(5)
                # Closed without an answer (a timeout here would raise): the request was cut.
                self.assertEqual(c.read_all(), b"")
            h.wait_until(lambda: d.request("GET", "/api/inflight").json()["requests"] == [], 10,
                         what="nothing in flight")
            self.assertEqual(d.chat("m").status, 200, "the daemon serves on")

    def test_upstream_gone_mid_body_answers_502_and_serves_on(self):
        with h.Daemon(upload_config()) as d:
            self.assertEqual(d.chat("m").status, 200)
            pids = sorted(d.upstream_pids())
            self.assertTrue(pids, "the model's pid")
            with d.raw(timeout=30) as c:
                body_len = SPOOL_AT + 8 * MIB
                c.send(b"POST /upstream/m/v1/audio/transcriptions?announce=1&read_pause_ms=50 "
                       b"HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body_len)
                c.send(os.urandom(SPOOL_AT + 1))
                h.wait_until(lambda: ANNOUNCED in d.log(), 10, what="the upstream to get it")
                for p in pids:
                    os.kill(p, 9)
                try:  # the daemon may stop reading (and close) before all of it is sent
                    c.sock.settimeout(5)
                    c.send(os.urandom(body_len - SPOOL_AT - 1))
                except OSError:
                    pass
                r = c.read_response("POST")
                self.assertEqual(r.status, 502, r.body)
                self.assertIn("upstream", r.json()["error"]["code"])
            self.assertEqual(d.chat("m").status, 200, "the model starts again and serves")


BOUNDARY = "----splice-spool-test-51c0"


def model_last_body(file_len, model, file=None):
    """A multipart body: a file part of file_len random bytes, then the `model` field, then a
    prompt field longer than the tail that is read as usual (so the model field is among the
    bytes that went by splice, and the scanner must find it there)."""
    file = os.urandom(file_len) if file is None else file
    return (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
             "Content-Type: application/octet-stream\r\n\r\n" % BOUNDARY).encode() + file +
            ("\r\n--%s\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n%s\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n%s\r\n"
             "--%s--\r\n" % (BOUNDARY, model, BOUNDARY, "words " * 2000, BOUNDARY)).encode())


class SplicedSpool(unittest.TestCase):
    """A body read whole before it goes upstream (its model field after the file) moves
    socket → pipe → spool file; the model scanner reads it from the page cache."""

    def test_model_last_bodies_byte_for_byte_around_every_boundary(self):
        files = [SPOOL_AT - 200, SPOOL_AT + 1, SPOOL_AT + TAIL, 256 * KIB - 1, 256 * KIB + TAIL + 7,
                 MIB + 4099, 5 * MIB + 3]
        with h.Daemon(upload_config()) as d:
            self.assertEqual(d.chat("m").status, 200)
            before = spliced_total(d)
            with d.raw(timeout=60) as c:
                for n in files:
                    body = model_last_body(n, "m")
                    c.send(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: multipart/form-data; boundary=%s\r\n"
                           b"Content-Length: %d\r\n\r\n" % (BOUNDARY.encode(), len(body)))
                    # In pieces that straddle the boundaries, with pauses so that reads end
                    # anywhere.
                    for at in range(0, len(body), 300007):
                        c.send(body[at:at + 300007])
                        time.sleep(0.002)
                    r = c.read_response("POST")
                    self.assertEqual(r.status, 200, r.body[:300])
                    doc = r.json()
                    self.assertEqual((doc["body_length"], doc["body_sha256"]),
                                     (len(body), hashlib.sha256(body).hexdigest()), "file %d" % n)
                    self.assertEqual(doc["model"], "m")
                # useModelName: the field's span, found in the spliced bytes, is rewritten.
                file = os.urandom(MIB + 3)
                body = model_last_body(0, "r", file)
                want = model_last_body(0, "a-longer/upstream-name", file)
                c.send(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: multipart/form-data; boundary=%s\r\n"
                       b"Content-Length: %d\r\n\r\n" % (BOUNDARY.encode(), len(body)) + body)
                r = c.read_response("POST")
                self.assertEqual(r.status, 200, r.body[:300])
                self.assertEqual((r.json()["body_length"], r.json()["body_sha256"]),
                                 (len(want), hashlib.sha256(want).hexdigest()))
            went = spliced_total(d) - before
            self.assertGreater(went, 4 * MIB, "the spool was filled by splice")

    def test_malformed_body_in_the_spool_still_400(self):
        # The scanner sees the spliced bytes: a body without its closing delimiter is refused.
        with h.Daemon(upload_config()) as d:
            body = model_last_body(2 * MIB, "m")[:-len(BOUNDARY) - 6] + b"\r\n"
            r = h.request(d.port, "POST", "/v1/audio/transcriptions", body,
                          {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY})
            self.assertEqual(r.status, 400, r.body[:300])
            self.assertEqual(r.json()["error"]["code"], "invalid_request_body")


if __name__ == "__main__":
    h.main()
