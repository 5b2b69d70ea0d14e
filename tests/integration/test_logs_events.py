#!/usr/bin/env python3
"""/logs, /logs/stream[/proxy|/upstream|/<model>] and /api/events: history, live lines,
filters, frames, and a reader that never reads does not hold up or bloat the daemon."""

import http.client
import os
import socket
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402


def ab_cfg(**top):
    cfg = {"models": {"a": {"cmd": h.fake_cmd(model="a"), "aliases": ["a-alias"],
                            "name": "A name", "description": "A desc"},
                      "b": {"cmd": h.fake_cmd(model="b")},
                      "hid": {"cmd": h.fake_cmd(model="hid"), "unlisted": True}}}
    cfg.update(top)
    return cfg


class Logs(unittest.TestCase):
    def test_logs_history(self):
        with h4.Daemon(ab_cfg()) as d:
            self.assertEqual(d.chat("a").status, 200)
            r = d.request("GET", "/logs")
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r)
            text = r.body.decode()
            self.assertIn("[info] listening on", text)
            i = text.index("model a: starting pid")
            j = text.index("fake-upstream: loading model a")
            k = text.index("model a: ready")
            self.assertLess(i, j, "lines in the order they came")
            self.assertLess(j, k)
            self.assertIn('"POST /v1/chat/completions HTTP/1.1" 200', text)
            r = d.request("HEAD", "/logs")
            self.assertEqual((r.status, r.body), (200, b""))

    def test_logs_kept_whatever_log_to_stdout_says(self):
        with h4.Daemon(ab_cfg(logLevel="info", logToStdout="none")) as d:
            self.assertEqual(d.chat("a").status, 200)
            text = d.request("GET", "/logs").body.decode()
            self.assertIn("fake-upstream: loading model a", text)
            self.assertIn("model a: starting pid", text)
            with h4.LiveResponse(d.port, "/logs/stream/upstream") as s:
                s.wait_text("fake-upstream: loading model a")
            stderr = d.log()
            self.assertNotIn("fake-upstream: loading model a", stderr)
            self.assertNotIn("[info]", stderr)

    def test_stream_live_line(self):
        with h4.Daemon(ab_cfg()) as d:
            with h4.LiveResponse(d.port, "/logs/stream") as s:
                self.assertEqual(s.wait_head(), 200)
                self.assertEqual(s.headers.get("transfer-encoding", "").lower(), "chunked")
                self.assertEqual(s.headers.get("x-accel-buffering"), "no")
                self.assertTrue(s.headers.get("content-type", "").startswith("text/plain"))
                s.wait_text("[info] listening on", 5)  # the history comes first
                self.assertNotIn("model a: starting pid", s.text)
                bg = h4.Background(lambda: d.chat("a"))
                s.wait_text("model a: starting pid", 5)
                s.wait_text("fake-upstream: loading model a", 5)  # upstream lines too
                s.wait_text('"POST /v1/chat/completions HTTP/1.1" 200', 5)
                self.assertEqual(bg.result().status, 200)
                self.assertFalse(s.ended, "a log stream does not end by itself")

    def test_no_history(self):
        with h4.Daemon(ab_cfg()) as d:
            self.assertEqual(d.chat("a").status, 200)
            for path in ("/logs/stream?no-history", "/logs/stream/proxy?no-history",
                         "/logs/stream/upstream?no-history", "/logs/stream/b?no-history"):
                with h4.LiveResponse(d.port, path) as s:
                    self.assertEqual(s.wait_head(), 200, path)
                    time.sleep(0.4)
                    self.assertEqual(s.text, "", "history sent on %s" % path)
                    self.assertEqual(d.chat("b").status, 200)
                    if "upstream" in path or path.startswith("/logs/stream/b"):
                        s.wait_text("fake-upstream: loading model b", 5)
                    else:
                        s.wait_text("model b: starting pid", 5)
                    self.assertNotIn("[info] listening on", s.text)
                    self.assertNotIn("loading model a", s.text)
                    self.assertEqual(d.chat("a").status, 200)  # swap back for the next round

    def test_filtered_streams(self):
        with h4.Daemon(ab_cfg()) as d:
            streams = {p: h4.LiveResponse(d.port, p) for p in (
                "/logs/stream/upstream", "/logs/stream/proxy", "/logs/stream/a",
                "/logs/stream/a-alias", "/logs/stream/b")}
            try:
                for s in streams.values():
                    self.assertEqual(s.wait_head(), 200)
                self.assertEqual(d.chat("a").status, 200)
                self.assertEqual(d.chat("b").status, 200)
                up = streams["/logs/stream/upstream"]
                up.wait_text("fake-upstream: loading model b", 5)
                self.assertIn("fake-upstream: loading model a", up.text)
                self.assertNotIn("[info]", up.text)
                self.assertNotIn("starting pid", up.text)

                px = streams["/logs/stream/proxy"]
                px.wait_text("model b: ready", 5)
                self.assertIn("model a: starting pid", px.text)
                self.assertNotIn("fake-upstream:", px.text)

                for p in ("/logs/stream/a", "/logs/stream/a-alias"):
                    s = streams[p]
                    s.wait_text("fake-upstream: SIGTERM", 5)  # a was swapped out
                    self.assertIn("fake-upstream: loading model a", s.text)
                    self.assertNotIn("model b", s.text, p)
                    self.assertNotIn("[info]", s.text, p)
                sb = streams["/logs/stream/b"]
                sb.wait_text("fake-upstream: loading model b", 5)
                self.assertNotIn("model a", sb.text)
            finally:
                for s in streams.values():
                    s.close()
            # History of one model, for a stream opened afterwards.
            with h4.LiveResponse(d.port, "/logs/stream/a") as s:
                s.wait_text("fake-upstream: loading model a", 5)
                time.sleep(0.2)
                self.assertNotIn("model b", s.text)

    def test_unknown_logger(self):
        with h4.Daemon(ab_cfg()) as d:
            for p in ("/logs/stream/nope", "/logs/stream/proxyx", "/logs/stream/a/b"):
                r = d.request("GET", p)
                self.assertEqual(r.status, 400, (p, r))
                self.assertIn("application/json", r.headers.get("content-type", ""))
                self.assertEqual(h4.err_code(r), "bad_request", p)
                self.assertIn("error", r.json())


class Events(unittest.TestCase):
    def test_frames(self):
        with h4.Daemon(ab_cfg()) as d:
            with h4.EventStream(d.port, "/api/events") as s:
                self.assertEqual(s.wait_head(), 200)
                self.assertTrue(s.headers.get("content-type", "").startswith("text/event-stream"))
                self.assertEqual(s.headers.get("x-accel-buffering"), "no")
                self.assertEqual(s.headers.get("transfer-encoding", "").lower(), "chunked")
                evs = s.wait_event(lambda e: len(e) >= 6 and e, 5, "the initial frames")
                (tl, dl, _), (tl2, dl2, _) = evs[:2]
                (t0, d0, e0), (tu, du, _), (tp, dp, _), (t1, d1, e1) = evs[2:6]
                self.assertEqual((e0, e1), ("message", "message"))
                # As the original: the proxy and upstream log histories, the models, the UI's
                # settings, the active profile, then what is in flight.
                self.assertEqual((tl, dl["source"], tl2, dl2["source"]),
                                 ("logData", "proxy", "logData", "upstream"))
                self.assertEqual((tu, du), ("uiConfig", {"activity": {
                    "session_id": ["X-Session-ID", "X-Litellm-Session-Id"]}}))
                self.assertEqual((tp, dp), ("profileChanged", {"active": None}))
                self.assertEqual(t0, "modelStatus")
                status = {m["id"]: m for m in d0}
                self.assertEqual(sorted(status), ["a", "b", "hid"])
                self.assertEqual(status["a"], {"id": "a", "name": "A name", "description": "A desc",
                                               "state": "stopped", "unlisted": False,
                                               "aliases": ["a-alias"]})
                self.assertTrue(status["hid"]["unlisted"])
                self.assertEqual(t1, "inflight")
                self.assertEqual(d1, {"operation": "snapshot", "requests": []})

                self.assertEqual(d.chat("a").status, 200)

                def states(evs):
                    return [{m["id"]: m["state"] for m in dd}["a"]
                            for t, dd, _ in evs if t == "modelStatus"]
                s.wait_event(lambda e: "ready" in states(e), 5, "a ready")
                st = states(s.events())
                self.assertEqual(st[0], "stopped")
                self.assertIn("starting", st)
                self.assertLess(st.index("starting"), st.index("ready"), st)

                def inflight(evs, op):
                    return [dd for t, dd, _ in evs if t == "inflight" and dd["operation"] == op]
                s.wait_event(lambda e: inflight(e, "remove"), 5, "inflight remove")
                ups, rems = inflight(s.events(), "upsert"), inflight(s.events(), "remove")
                # As the original: an upsert when it starts, one with the response head
                # (and with bytes, at most every 250 ms), then its removal.
                self.assertGreaterEqual(len(ups), 2, ups)
                self.assertEqual(len(rems), 1, rems)
                up, rem = ups[0]["request"], rems[0]
                self.assertEqual(set(rem), {"operation", "id"})
                self.assertEqual(up["id"], rem["id"])
                self.assertIsInstance(up["id"], str)
                self.assertEqual((up["model"], up["method"], up["req_path"]),
                                 ("a", "POST", "/v1/chat/completions"))
                self.assertIsInstance(up["elapsed_ms"], int)
                self.assertRegex(up["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
                self.assertEqual(up["resp_headers"], {})
                self.assertIn("Content-Type", ups[-1]["request"]["resp_headers"])

                def logs(evs):
                    return [dd for t, dd, _ in evs if t == "logData"]
                s.wait_event(lambda e: any("POST /v1/chat/completions" in x["data"]
                                           for x in logs(e)), 5, "the access log line")
                lg = logs(s.events())
                proxy = [x["data"] for x in lg if x["source"] == "proxy"]
                upstream = [x["data"] for x in lg if x["source"] == "upstream"]
                self.assertTrue(any("model a: starting pid" in x for x in proxy), proxy)
                self.assertTrue(any("fake-upstream: loading model a" in x for x in upstream),
                                upstream)
                for x in lg:
                    self.assertEqual(set(x), {"source", "data"})
                    self.assertTrue(x["data"] == "" or x["data"].endswith("\n"), x)

    def test_snapshot_lists_requests_in_flight(self):
        with h4.Daemon(ab_cfg()) as d:
            self.assertEqual(d.chat("a").status, 200)
            bg = h4.Background(lambda: d.chat("a", path="/v1/chat/completions?delay_ms=1500"))
            h.wait_until(lambda: d.running()[0]["inFlight"] == 1, 3, what="request in flight")
            with h4.EventStream(d.port, "/api/events") as s:
                evs = s.wait_event(lambda e: len(e) >= 6 and e, 5, "the initial frames")
                t, snap, _ = evs[5]
                self.assertEqual(t, "inflight")
                self.assertEqual(snap["operation"], "snapshot")
                self.assertEqual(len(snap["requests"]), 1, snap)
                e = snap["requests"][0]
                self.assertEqual((e["model"], e["method"]), ("a", "POST"))
                self.assertTrue(e["req_path"].startswith("/v1/chat/completions"), e)
                status = {m["id"]: m["state"] for m in evs[2][1]}
                self.assertEqual(status["a"], "ready")
                self.assertEqual(bg.result().status, 200)
                s.wait_event(lambda ev: any(t == "inflight" and dd["operation"] == "remove"
                                            and dd["id"] == e["id"] for t, dd, _ in ev),
                             5, "the remove of the snapshot's request")


    def test_model_status_follows_reload(self):
        with h4.Daemon(ab_cfg()) as d:
            with h4.EventStream(d.port, "/api/events") as s:
                s.wait_event(lambda e: len(e) >= 2, 5, "the initial frames")
                cfg = ab_cfg()
                del cfg["models"]["b"]
                cfg["models"]["c"] = {"cmd": h.fake_cmd(model="c"), "name": "C"}
                d.write_config(cfg)
                self.assertTrue(d.sighup())

                def ids(evs):
                    st = [dd for t, dd, _ in evs if t == "modelStatus"]
                    return sorted(m["id"] for m in st[-1]) == ["a", "c", "hid"] and st[-1]
                last = s.wait_event(ids, 5, "a modelStatus frame with the new models")
                self.assertEqual({m["id"]: m["name"] for m in last}["c"], "C")


class SlowReaders(unittest.TestCase):
    def test_reader_that_never_reads(self):
        # Readers that never read: the daemon skips lines for them instead of buffering, keeps
        # answering, and its memory stays bounded.
        cfg = {"logLevel": "info",
               "models": {"flood": {"cmd": h.fake_cmd(model="flood", log_lines=500000)},
                          "q": {"cmd": h.fake_cmd(model="q")}}}
        with h4.Daemon(cfg) as d:
            stuck = []
            for path in ("/logs/stream", "/logs/stream/upstream", "/api/events"):
                sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sk.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sk.connect(("127.0.0.1", d.port))
                sk.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
                stuck.append(sk)
            try:
                rss0 = d.mem_kb("VmRSS")
                # ~25 MB of upstream output (over 100 MB as events), then many requests (an
                # access line each): far more than the memory bound if it were buffered.
                self.assertEqual(d.chat("flood", timeout=60).status, 200)
                h.wait_until(lambda: b"log line 500000 of 500000" in d.request("GET", "/logs").body,
                             60, interval=0.2, what="the flood to go through the daemon")
                conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
                for i in range(1500):
                    conn.request("GET", "/running")
                    r = conn.getresponse()
                    r.read()
                    self.assertEqual(r.status, 200)
                conn.close()
                t0 = time.monotonic()
                r = d.request("GET", "/health", timeout=5)
                self.assertEqual(r.status, 200)
                self.assertLess(time.monotonic() - t0, 2.0, "/health slow behind stuck readers")
                rss, hwm = d.mem_kb("VmRSS"), d.mem_kb("VmHWM")
                h.diag("daemon VmRSS %d kB before, %d kB after, VmHWM %d kB" % (rss0, rss, hwm))
                h.assert_memory_below(self, rss, 64 * 1024, "VmRSS")
                h.assert_memory_below(self, hwm, 64 * 1024, "VmHWM")

                # Now read the first stuck stream: once drained, a new line comes with the
                # marker that says how many were skipped.
                sk = stuck[0]
                sk.settimeout(0.2)
                got = b""
                deadline = time.monotonic() + 20
                marker = b"log lines skipped, the reader was too slow]"
                while marker not in got and time.monotonic() < deadline:
                    try:
                        while True:
                            chunk = sk.recv(1 << 20)
                            if not chunk:
                                break
                            got += chunk
                    except socket.timeout:
                        pass
                    d.request("GET", "/health")  # a new line for the stream
                self.assertIn(marker, got)
                self.assertRegex(got.decode(errors="replace"),
                                 r"\[llama-swap: \d+ log lines skipped, the reader was too slow\]")
            finally:
                for sk in stuck:
                    sk.close()
            self.assertEqual(d.request("GET", "/health").status, 200)


if __name__ == "__main__":
    h.main()
