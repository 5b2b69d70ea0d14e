#!/usr/bin/env python3
"""Real nginx, configured by the shipped contrib/nginx/llama-swap.conf, in front of the real
daemon (see nginx_front.py): tokens stream through unbuffered, a 200 MB upload streams through
byte-exact without nginx spooling it, /logs/stream and /api/events deliver live, and nginx
logs no errors."""

import hashlib
import http.client
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402
import nginx_front as nf  # noqa: E402

MB = 1024 * 1024
BOUNDARY = "----llama-swap-nginx-test-5d1e"
TOKENS, TPS = 20, 20.0


def cfg(d):
    spool = os.path.join(d.tmp, "spool")
    os.makedirs(spool, exist_ok=True)
    d.spool_dir = spool
    return h4.config_text({
        "server": {"spoolDir": spool},
        "models": {"slow": {"cmd": h.fake_cmd(model="slow", tokens=TOKENS, tps=TPS)},
                   "w": {"cmd": h.fake_cmd(model="w")}}})


def upload_body(file_mb, model):
    """(length, chunks, sha): a multipart body with file_mb MiB of varied bytes, then the
    model field. Iterating chunks generates it 1 MiB at a time and hashes it as it goes
    (sha.hexdigest() once it is exhausted), so the body is never held in memory."""
    pre = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
           'Content-Type: application/octet-stream\r\n\r\n' % BOUNDARY).encode()
    post = ('\r\n--%s\r\nContent-Disposition: form-data; name="model"\r\n\r\n%s\r\n--%s--\r\n'
            % (BOUNDARY, model, BOUNDARY)).encode()
    block = os.urandom(MB)
    sha = hashlib.sha256()

    def chunks():
        sha.update(pre)
        yield pre
        for i in range(file_mb):
            c = i.to_bytes(8, "little") + block[8:]
            sha.update(c)
            yield c
        sha.update(post)
        yield post
    return len(pre) + file_mb * MB + len(post), chunks(), sha


def spooled_bytes(d):
    """Size of the largest file the daemon holds open in its spool directory (the spool file
    is unlinked; /proc/PID/fd still reaches it), or -1 when it holds none."""
    fd_dir = "/proc/%d/fd" % d.pid
    best = -1
    for fd in os.listdir(fd_dir):
        p = os.path.join(fd_dir, fd)
        try:
            if os.readlink(p).startswith(d.spool_dir):
                best = max(best, os.stat(p).st_size)
        except OSError:
            pass
    return best


class Nginx(unittest.TestCase):
    def setUp(self):
        reason = nf.missing()
        if reason:
            self.skipTest(reason)
        nf.say_mode()

    def assert_clean_log(self, ng):
        ng.stop()
        self.assertEqual(ng.problems(), [], "nginx logged errors")

    def test_sse_tokens_arrive_as_generated(self):
        with nf.Daemon(cfg) as d, nf.Nginx(d) as ng:
            s = h.stream_request(ng.port, "/v1/chat/completions",
                                 h.chat_body("slow", stream=True), timeout=30)
            self.assertEqual(s.status, 200, s.lines[:5])
            self.assertIsNone(s.error)
            self.assertTrue(s.complete)
            self.assertTrue(s.headers.get("content-type", "").startswith("text/event-stream"))
            data = s.data_lines()
            self.assertEqual(data[-1][1], b"[DONE]")
            events = [(t, json.loads(x)) for t, x in data[:-1]]
            tokens = [(t, e["choices"][0]["delta"]["content"]) for t, e in events
                      if e["choices"][0]["delta"].get("content") is not None]
            self.assertEqual("".join(c for _, c in tokens), "hi" * TOKENS)
            self.assertEqual(events[-1][1]["usage"]["completion_tokens"], TOKENS)
            # The upstream spaces the tokens 1/TPS s apart (at least). Buffered, they would
            # arrive in one burst at the end; streamed, first and last are at least that far
            # apart (a slow machine only widens the gap).
            generation = (TOKENS - 1) / TPS
            spread = tokens[-1][0] - tokens[0][0]
            arrivals = len(set(t for t, _ in tokens))
            h.diag("%d tokens over %.3f s at the client (generated over >= %.3f s), in %d "
                   "reads" % (len(tokens), spread, generation, arrivals))
            self.assertGreater(spread, 0.5 * generation,
                               "the tokens arrived in a burst: nginx buffered the stream")
            self.assert_clean_log(ng)

    def test_200mb_upload_streams_through(self):
        with nf.Daemon(cfg) as d, nf.Nginx(d) as ng:
            length, chunks, sha = upload_body(200, "w")
            seen = {}

            def sending():
                # Halfway, wait until the daemon has received (spooled) a good part of what was
                # sent: if nginx held the body back until it was complete, nothing arrives.
                for i, c in enumerate(chunks):
                    if i == 101:
                        try:
                            seen["spooled"] = h.wait_until(
                                lambda: max(spooled_bytes(d), 0) >= 50 * MB and spooled_bytes(d),
                                20, interval=0.01, what="the daemon to receive 50 MB")
                        except AssertionError as e:
                            seen["error"] = e
                    yield c
            t0 = time.monotonic()
            r = h4.stream_upload(ng.port, "POST", "/v1/audio/transcriptions",
                                 {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
                                 sending(), length, timeout=120)
            h.diag("200 MB through nginx and the daemon in %.2f s; with 100 MB sent, the "
                   "daemon had spooled %.1f MB" % (time.monotonic() - t0,
                                                   seen.get("spooled", 0) / MB))
            self.assertNotIn("error", seen, "the body did not stream through nginx")
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["model"], "w")
            self.assertEqual(doc["body_length"], length)
            self.assertEqual(doc["body_sha256"], sha.hexdigest())
            self.assertEqual(doc["content_type"], "multipart/form-data; boundary=" + BOUNDARY)
            # nginx never wrote it to its own disk.
            self.assertNotIn("buffered to a temporary file", ng.error_log())
            self.assertEqual(os.listdir(os.path.join(ng.dir, "client_body_temp")), [])
            self.assert_clean_log(ng)

    def test_chunked_upload(self):
        # Transfer-Encoding: chunked from the client: nginx relays it chunked (HTTP/1.1 to the
        # upstream, request buffering off); the daemon reframes it for the upstream.
        with nf.Daemon(cfg) as d, nf.Nginx(d) as ng:
            length, chunks, sha = upload_body(20, "w")
            conn = http.client.HTTPConnection("127.0.0.1", ng.port, timeout=60)
            try:
                conn.request("POST", "/v1/audio/transcriptions", body=chunks,
                             headers={"Content-Type": "multipart/form-data; boundary=" + BOUNDARY,
                                      "Transfer-Encoding": "chunked"}, encode_chunked=True)
                r = conn.getresponse()
                body = r.read()
            finally:
                conn.close()
            self.assertEqual(r.status, 200, body)
            doc = json.loads(body)
            self.assertEqual((doc["model"], doc["body_length"], doc["body_sha256"]),
                             ("w", length, sha.hexdigest()))
            self.assertNotIn("buffered to a temporary file", ng.error_log())
            self.assert_clean_log(ng)

    def test_logs_stream_live(self):
        with nf.Daemon(cfg) as d, nf.Nginx(d) as ng:
            with h4.LiveResponse(ng.port, "/logs/stream") as s:
                self.assertEqual(s.wait_head(), 200)
                self.assertEqual(s.headers.get("transfer-encoding", "").lower(), "chunked")
                s.wait_text("[info] listening on", 5)  # the history
                time.sleep(0.3)
                self.assertNotIn("model w: starting pid", s.text)
                # Logged after the stream was opened: it must arrive live, not at the end.
                r = h.request(ng.port, "POST", "/v1/chat/completions", h.chat_body("w"))
                self.assertEqual(r.status, 200, r)
                s.wait_text("model w: starting pid", 5)
                s.wait_text("fake-upstream: loading model w", 5)
                s.wait_text('"POST /v1/chat/completions HTTP/1.1" 200', 5)
                self.assertFalse(s.ended, "the log stream ended")
                self.assertIsNone(s.error)
            self.assert_clean_log(ng)

    def test_events_live(self):
        with nf.Daemon(cfg) as d, nf.Nginx(d) as ng:
            with h4.EventStream(ng.port, "/api/events") as s:
                self.assertEqual(s.wait_head(), 200)
                self.assertTrue(s.headers.get("content-type", "").startswith("text/event-stream"))
                s.wait_event(lambda e: len(e) >= 2, 5, "the initial frames")

                def w_states(evs):
                    return [{m["id"]: m["state"] for m in dd}["w"]
                            for t, dd, _ in evs if t == "modelStatus"]
                self.assertEqual(w_states(s.events()), ["stopped"])
                bg = h4.Background(lambda: h.request(ng.port, "POST", "/v1/chat/completions",
                                                     h.chat_body("w")))
                s.wait_event(lambda e: "ready" in w_states(e), 5, "w ready")
                st = w_states(s.events())
                self.assertLess(st.index("starting"), st.index("ready"), st)
                self.assertEqual(bg.result().status, 200)
                s.wait_event(lambda e: any(t == "inflight" and dd["operation"] == "remove"
                                           for t, dd, _ in e), 5, "the request's inflight remove")
                self.assertFalse(s.ended, "the event stream ended")
            self.assert_clean_log(ng)


if __name__ == "__main__":
    nf.setup()
    h.main()
