#!/usr/bin/env python3
"""Large request bodies: a 500 MB multipart upload (model field after the file) reaches the
upstream byte-exact while the daemon's memory stays bounded (the body is spooled to
server.spoolDir); a 20 MB JSON body; useModelName rewriting the multipart `model` field.
With the model field first (or through /upstream/<model>/), the request is taken while the
body arrives: the model starts meanwhile, and the body goes upstream as it comes, spliced
(without splice, once it is whole); a body that ends malformed still gets 400 and the
upstream never a whole body; a client gone mid-body leaves nothing behind."""

import atexit
import hashlib
import http.client
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
import harness4 as h4  # noqa: E402

MB = 1024 * 1024
BOUNDARY = "----llama-swap-upload-test-7f3a9c"


def upload_cfg(d, **models):
    spool = os.path.join(d.tmp, "spool")
    os.makedirs(spool, exist_ok=True)
    d.spool_dir = spool
    cfg = {"server": {"bodyMemoryBytes": MB, "spoolDir": spool},
           "models": {"w": {"cmd": h.fake_cmd(model="w")},
                      "e": h4.echo_model(fake_model="e")}}
    cfg["models"].update(models)
    return h4.config_text(cfg)


def part_head(name, filename=None):
    if filename:
        return ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                'Content-Type: application/octet-stream\r\n\r\n'
                % (BOUNDARY, name, filename)).encode()
    return ('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n'
            % (BOUNDARY, name)).encode()


class _Sha:
    """A SHA-256 that each generation of the body restarts."""

    def __init__(self):
        self.h = hashlib.sha256()

    def hexdigest(self):
        return self.h.hexdigest()


def file_then_model(file_mb, model, block=None, chunk_mb=1):
    """(length, chunk generator factory, sha holder) for a multipart body whose `file` part
    (file_mb MiB of varied bytes) comes before its `model` field."""
    pre = part_head("file", "big.wav")
    post = (b"\r\n" + part_head("model") + model.encode() + b"\r\n" +
            part_head("response_format") + b"json\r\n" + ("--%s--\r\n" % BOUNDARY).encode())
    return around_a_file(pre, file_mb, post, block, chunk_mb)


def model_then_file(file_mb, model, block, broken_end=False):
    """The same with the `model` field first, then the file part. broken_end: no closing
    delimiter (a malformed body)."""
    pre = part_head("model") + model.encode() + b"\r\n" + part_head("file", "big.wav")
    post = b"\r\n--%s--\r\n" % BOUNDARY.encode()
    if broken_end:
        post = b"\r\n-- not the end --\r\n"
    return around_a_file(pre, file_mb, post, block)


def around_a_file(pre, file_mb, post, block=None, chunk_mb=1):
    """(length, chunk generator factory, sha holder) for pre + file_mb MiB of varied bytes +
    post. chunks(hash=True) computes the SHA-256 as the chunks are generated, so the test
    never holds the body; the body is the same each time it is generated."""
    block = block or os.urandom(chunk_mb * MB)
    assert file_mb % chunk_mb == 0 and len(block) == chunk_mb * MB
    length = len(pre) + file_mb * MB + len(post)
    sha = _Sha()

    def chunks(hash=True):
        if hash:
            sha.h = hashlib.sha256()
        update = sha.h.update if hash else (lambda c: None)
        update(pre)
        yield pre
        for i in range(file_mb // chunk_mb):
            c = i.to_bytes(8, "little") + block[8:]
            update(c)
            yield c
        update(post)
        yield post
    return length, chunks, sha


class RawUpload:
    """An upload over a raw socket, sent piece by piece, so a test can act in between."""

    def __init__(self, port, path, length):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(("POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; "
                           "boundary=%s\r\nContent-Length: %d\r\n\r\n"
                           % (path, BOUNDARY, length)).encode())

    def send(self, data):
        self.sock.sendall(data)

    def response(self):
        f = self.sock.makefile("rb")
        status = int(f.readline().split()[1])
        headers = {}
        while True:
            line = f.readline().strip()
            if not line:
                break
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        body = f.read(int(headers.get("content-length", "0")))
        return status, json.loads(body)

    def close(self):
        self.sock.close()


ANNOUNCED = "fake-upstream: transcription head received"
BODY_WHOLE = "fake-upstream: transcription body received,"
BODY_CUT = "fake-upstream: transcription body cut after"
READY = "model w: ready after"


def spliced_total(d):
    r = d.request("GET", "/metrics")
    m = re.search(r"^llamaswap_spliced_bytes_total (\d+)", r.body.decode(), re.M)
    return int(m.group(1))


class ModelFirst(unittest.TestCase):
    """The model field before the file: the request is taken while its body arrives, and the
    body goes upstream as it comes (client socket → pipe → upstream socket), but for its last
    bytes, which wait for the body's check."""

    def upload_past_the_model_start(self, d, path, model, streams=True):
        """Sends the head and 4 MiB (past bodyMemoryBytes), waits until the model is ready,
        checks that the upstream got the request while its body is still coming (streams) or
        nothing yet (not streams), sends the rest; returns (status, doc, length, sha)."""
        length, chunks, sha = model_then_file(24, model, os.urandom(MB))
        up = RawUpload(d.port, path, length)
        try:
            parts = chunks()
            for _ in range(5):  # the model field and 4 MiB
                up.send(next(parts))
            h.wait_until(lambda: READY in d.log(), 30,
                         what="the model to be ready before the body is all sent")
            if streams:
                h.wait_until(lambda: ANNOUNCED in d.log(), 30,
                             what="the upstream to get the request while its body arrives")
            else:
                time.sleep(0.3)
                self.assertNotIn(ANNOUNCED, d.log(), "the upstream gets only a whole body")
            self.assertNotIn(BODY_WHOLE, d.log())
            for c in parts:
                up.send(c)
            status, doc = up.response()
        finally:
            up.close()
        return status, doc, length, sha

    def test_model_starts_while_the_body_arrives_byte_exact(self):
        with h4.Daemon(upload_cfg) as d:  # the model is not running: it starts meanwhile
            status, doc, length, sha = self.upload_past_the_model_start(
                d, "/v1/audio/transcriptions?announce=1", "w")
            self.assertEqual(status, 200, doc)
            self.assertEqual((doc["body_length"], doc["body_sha256"]), (length, sha.hexdigest()))
            self.assertEqual(doc["model"], "w")
            self.assertIn("taken while its body arrives", d.log())
            # Most of the 20 MiB sent after the model was ready went by splice, not the spool.
            self.assertGreater(spliced_total(d), 12 * MB)

    def test_upstream_passthrough_model_starts_while_the_body_arrives(self):
        # /upstream/<model>/...: the model is in the path, the body is passed as it is.
        with h4.Daemon(upload_cfg) as d:
            status, doc, length, sha = self.upload_past_the_model_start(
                d, "/upstream/w/v1/audio/transcriptions?announce=1", "ignored")
            self.assertEqual(status, 200, doc)
            self.assertEqual((doc["body_length"], doc["body_sha256"]), (length, sha.hexdigest()))
            self.assertGreater(spliced_total(d), 12 * MB)

    def test_without_splice_the_upstream_gets_a_whole_body(self):
        # LLAMA_SWAP_NO_SPLICE (as where splice does not apply: TLS): the body is spooled
        # whole, then sent.
        os.environ["LLAMA_SWAP_NO_SPLICE"] = "1"
        try:
            d = h4.Daemon(upload_cfg)
            d.__enter__()
        finally:
            del os.environ["LLAMA_SWAP_NO_SPLICE"]
        try:
            status, doc, length, sha = self.upload_past_the_model_start(
                d, "/v1/audio/transcriptions?announce=1", "w", streams=False)
            self.assertEqual(status, 200, doc)
            self.assertEqual((doc["body_length"], doc["body_sha256"]), (length, sha.hexdigest()))
            self.assertEqual(spliced_total(d), 0)
        finally:
            d.__exit__(None, None, None)

    def test_use_model_name_rewrite_while_it_arrives(self):
        cfg = lambda d: upload_cfg(d, r={"cmd": h.fake_cmd(model="r"),  # noqa: E731
                                         "useModelName": "a-much-longer/upstream-model-name"})
        with h4.Daemon(cfg) as d:
            block = os.urandom(MB)
            length, chunks, _ = model_then_file(6, "r", block)
            exp_len, exp_chunks, exp_sha = model_then_file(
                6, "a-much-longer/upstream-model-name", block)
            for _ in exp_chunks():
                pass
            r = h4.stream_upload(d.port, "POST", "/v1/audio/transcriptions",
                                 {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
                                 chunks(), length, timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertEqual((r.json()["body_length"], r.json()["body_sha256"]),
                             (exp_len, exp_sha.hexdigest()))

    def test_malformed_end_gets_400_and_the_upstream_no_whole_body(self):
        with h4.Daemon(upload_cfg) as d:
            self.assertEqual(d.chat("w").status, 200)
            length, chunks, _ = model_then_file(6, "w", os.urandom(MB), broken_end=True)
            up = RawUpload(d.port, "/v1/audio/transcriptions?announce=1", length)
            try:
                for c in chunks():
                    up.send(c)
                status, doc = up.response()
            finally:
                up.close()
            self.assertEqual(status, 400, doc)
            self.assertEqual(doc["error"]["code"], "invalid_request_body", doc)
            self.assertIn("closing boundary", doc["error"]["message"])
            self.assertIn("taken while its body arrives", d.log())
            # It got the body as it came, but never its last byte: a cut request.
            h.wait_until(lambda: BODY_CUT in d.log(), 10, what="the upstream to see a cut body")
            self.assertNotIn(BODY_WHOLE, d.log(), "the upstream never got the malformed body")
            self.assertEqual(d.chat("w").status, 200, "the daemon and the model serve on")

    def test_client_gone_mid_body_leaves_nothing_behind(self):
        with h4.Daemon(upload_cfg) as d:
            length, chunks, _ = model_then_file(24, "w", os.urandom(MB))
            up = RawUpload(d.port, "/v1/audio/transcriptions?announce=1", length)
            parts = chunks()
            for _ in range(5):
                up.send(next(parts))
            h.wait_until(lambda: READY in d.log(), 30, what="the model to start for it")
            h.wait_until(lambda: ANNOUNCED in d.log(), 30, what="the upstream to get it")
            up.send(next(parts))
            up.close()
            h.wait_until(lambda: BODY_CUT in d.log(), 10, what="the upstream to see a cut body")
            h.wait_until(lambda: spool_fds(d) == [], 10, what="the spool file to be released")
            h.wait_until(lambda: d.request("GET", "/api/inflight").json()["requests"] == [], 10,
                         what="nothing in flight")
            self.assertNotIn(BODY_WHOLE, d.log())
            self.assertEqual(d.chat("w").status, 200, "the model serves on")


def spool_fds(d):
    """Files the daemon holds open in its spool directory."""
    out = []
    fd_dir = "/proc/%d/fd" % d.pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(d.spool_dir):
            out.append(target)
    return out


class BigUpload(unittest.TestCase):
    """One 500 MB multipart upload (the model field after the file), checked three ways."""

    done = False

    def setUp(self):
        # Once for the three tests (the harness runs tests one by one, without class fixtures).
        if not BigUpload.done:
            BigUpload.done = True
            BigUpload.upload()

    @classmethod
    def upload(cls):
        cls.d = h4.Daemon(upload_cfg)
        # meson sets MALLOC_PERTURB_, which makes every allocation of the daemon slower; that
        # changes the timing this test depends on (a client as fast as the daemon's reads),
        # so this daemon runs without it.
        perturb = os.environ.pop("MALLOC_PERTURB_", None)
        try:
            cls.d.__enter__()
        finally:
            if perturb is not None:
                os.environ["MALLOC_PERTURB_"] = perturb
        atexit.register(cls.d.__exit__, None, None, None)
        try:
            d = cls.d
            length, chunks, sha = file_then_model(500, "w", chunk_mb=4)
            # The body is generated twice, identically: once to hash it, once to send it, so
            # that sending is not slowed down by hashing (a client as fast as curl).
            for _ in chunks():
                pass
            cls.expected_sha = sha.hexdigest()
            for _ in chunks():  # the generator is deterministic
                pass
            assert sha.hexdigest() == cls.expected_sha
            cls.length = length
            cls.chunks = chunks
            cls.seen_spool = set()
            stop = threading.Event()

            def sample():  # which spool files the daemon holds open during the upload
                while not stop.is_set():
                    cls.seen_spool.update(spool_fds(d))
                    time.sleep(0.05)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                cls.response = cls.send()
            finally:
                stop.set()
                sampler.join(5)
            cls.hwm, cls.rss = d.mem_kb("VmHWM"), d.mem_kb("VmRSS")
            cls.spool_left = os.listdir(d.spool_dir)
        except BaseException:
            cls.response = None
            raise

    @classmethod
    def send(cls):
        return h4.stream_upload(
            cls.d.port, "POST", "/v1/audio/transcriptions",
            {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
            cls.chunks(hash=False), cls.length, timeout=120, sndbuf=4 * MB)

    def test_reaches_upstream_byte_exact(self):
        r = self.response
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["model"], "w", "served by model w's upstream")
        self.assertEqual(doc["body_length"], self.length)
        self.assertEqual(doc["body_sha256"], self.expected_sha)
        self.assertEqual(doc["content_type"], "multipart/form-data; boundary=" + BOUNDARY)

    def test_spooled_to_spool_dir_without_name(self):
        self.assertEqual(self.response.status, 200)
        self.assertTrue(self.seen_spool, "no spool file open in spoolDir during the upload")
        self.assertTrue(all("(deleted)" in p for p in self.seen_spool), self.seen_spool)
        self.assertEqual(self.spool_left, [], "files left in spoolDir")
        h.wait_until(lambda: not spool_fds(self.d), 5, what="the spool file to be closed")

    def test_daemon_memory_bounded_during_500mb_upload(self):
        # server.bodyMemoryBytes is 1 MiB: the daemon must not hold the upload in memory,
        # however fast the client sends (its input buffer must be bounded too). The daemon
        # idles at ~4 MB; 32 MB leaves a wide margin. Whether a daemon that reads without
        # bound falls behind depends on scheduling, so a bounded first upload is followed by
        # two more.
        self.assertEqual(self.response.status, 200)
        hwm, rss = self.hwm, self.rss
        for attempt in range(3):
            if attempt:
                r = self.send()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["body_sha256"], self.expected_sha)
                hwm, rss = self.d.mem_kb("VmHWM"), self.d.mem_kb("VmRSS")
            h.diag("upload %d: daemon VmHWM %d kB, VmRSS %d kB after a 500 MB upload"
                   % (attempt + 1, hwm, rss))
            h.assert_memory_below(self, hwm, 32 * 1024, "daemon peak RSS (VmHWM) during "
                                  "upload %d of 500 MB" % (attempt + 1))
            h.assert_memory_below(self, rss, 32 * 1024, "daemon VmRSS after upload %d"
                                  % (attempt + 1))


class Upload(unittest.TestCase):
    def test_20mb_json_body(self):
        with h4.Daemon(upload_cfg) as d:
            body = h.chat_body("w", pad="p" * (20 * MB))
            r = d.request("POST", "/v1/chat/completions", body=body, timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "w")
            # Byte-exact, through the echo model: the model key near the end of the body.
            raw = b'{"messages":[],"pad":"' + b"q" * (20 * MB) + b'","model":"e"}'
            r = d.request("POST", "/v1/chat/completions", body=raw,
                          headers={"Content-Type": "application/json"}, timeout=60)
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["body_length"], len(raw))
            self.assertEqual(doc["body_sha256"], h.sha256(raw))
            h.assert_memory_below(self, d.mem_kb("VmHWM"), 100 * 1024, "daemon VmHWM")

    def test_use_model_name_rewrites_multipart_field(self):
        cfg = lambda d: upload_cfg(d, r={"cmd": h.fake_cmd(model="r"),  # noqa: E731
                                         "useModelName": "a-much-longer/upstream-model-name",
                                         "aliases": ["r-alias"]})
        with h4.Daemon(cfg) as d:
            block = os.urandom(MB)
            for client_name in ("r", "r-alias"):
                # 5 MiB: spooled; the model field comes after the file.
                length, chunks, sha = file_then_model(5, client_name, block)
                exp_len, exp_chunks, exp_sha = file_then_model(
                    5, "a-much-longer/upstream-model-name", block)
                for _ in exp_chunks():
                    pass
                r = h4.stream_upload(d.port, "POST", "/v1/audio/transcriptions",
                                     {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
                                     chunks(), length, timeout=60)
                self.assertEqual(r.status, 200, r)
                doc = r.json()
                self.assertEqual(doc["model"], "r")
                self.assertEqual(doc["body_length"], exp_len, "Content-Length not adjusted")
                self.assertEqual(doc["body_sha256"], exp_sha.hexdigest(), client_name)
            # Small and in memory, model field first.
            body, ctype = h.multipart({"model": "r", "file": ("s.wav", b"\x00\xff" * 100)})
            expected, _ = h.multipart({"model": "a-much-longer/upstream-model-name",
                                       "file": ("s.wav", b"\x00\xff" * 100)})
            r = d.request("POST", "/v1/audio/transcriptions", body=body,
                          headers={"Content-Type": ctype})
            self.assertEqual(r.json()["body_sha256"], h.sha256(expected))

    def test_chunked_upload_model_after_file(self):
        # Transfer-Encoding: chunked (no Content-Length): relayed with the right length.
        with h4.Daemon(upload_cfg) as d:
            length, chunks, sha = file_then_model(30, "w")
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
            try:
                conn.request("POST", "/v1/audio/transcriptions", body=chunks(),
                             headers={"Content-Type": "multipart/form-data; boundary=" + BOUNDARY,
                                      "Transfer-Encoding": "chunked"}, encode_chunked=True)
                r = conn.getresponse()
                doc = json.loads(r.read())
            finally:
                conn.close()
            self.assertEqual(r.status, 200, doc)
            self.assertEqual(doc["body_length"], length)
            self.assertEqual(doc["body_sha256"], sha.hexdigest())
            self.assertEqual(doc["model"], "w")
            h.assert_memory_below(self, d.mem_kb("VmHWM"), 32 * 1024, "daemon VmHWM")

    def test_uploads_in_parallel_with_other_requests(self):
        # While a big upload streams in, the daemon keeps answering others.
        with h4.Daemon(upload_cfg) as d:
            self.assertEqual(d.chat("w").status, 200)
            length, chunks, sha = file_then_model(100, "w")
            gate = threading.Event()

            def gated():
                for i, c in enumerate(chunks()):
                    if i == 50:
                        gate.set()
                    yield c
            bg = h4.Background(lambda: h4.stream_upload(
                d.port, "POST", "/v1/audio/transcriptions",
                {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
                gated(), length, timeout=120))
            gate.wait(30)
            r = d.chat("w")
            self.assertEqual(r.status, 200, r)
            r = bg.result(120)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body_sha256"], sha.hexdigest())


if __name__ == "__main__":
    h.main()
