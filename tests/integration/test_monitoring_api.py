#!/usr/bin/env python3
"""The original's monitoring APIs, in its layouts: /api/metrics/activity (rows, filters, sorting,
paging, its 400 messages, which requests are metered), /api/metrics/stats (totals and speed
histograms), /api/version, the in-flight list (GET /api/inflight, POST
/api/inflight/<id>/cancel, the /api/events inflight and activity frames), request captures
(captureBuffer, GET /api/captures/<id>)."""

import base64

import json
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402

PROMPT = "one two three four five"  # the fake counts words: 5 prompt tokens

# The original's JSON tags (internal/store/store.go ActivityLogEntry, TokenMetrics).
RECORD_KEYS = {"id", "timestamp", "model", "req_path", "resp_content_type", "resp_status_code",
               "tokens", "duration_ms", "has_capture"}
TOKEN_KEYS = {"cache_tokens", "draft_tokens", "draft_acc_tokens", "input_tokens",
              "output_tokens", "prompt_per_second", "tokens_per_second"}
# internal/swaputil/events.go InflightRequestEntry
INFLIGHT_KEYS = {"id", "timestamp", "model", "req_path", "method", "req_headers", "remote_ip",
                 "resp_headers", "resp_bytes", "elapsed_ms"}
RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


def cfg():
    return {"models": {
        "a": {"cmd": h.fake_cmd(model="a", tokens=7), "aliases": ["a-alias"]},
        "b": {"cmd": h.fake_cmd(model="b", tokens=3)},
    }, "groups": {"g": {"swap": False, "members": ["a", "b"]}}}


def chat(d, model, stream=False, path="/v1/chat/completions", headers=None):
    body = h.chat_body(model, stream=stream)
    body["messages"] = [{"role": "user", "content": PROMPT}]
    if stream:
        s = h.stream_request(d.port, path, body, headers=headers)
        assert s.status == 200 and s.complete, (s.status, s.error)
        return s
    r = d.request("POST", path, body, headers=headers)
    assert r.status == 200, r
    return r


def activity(d, query=""):
    r = d.request("GET", "/api/metrics/activity" + query)
    assert r.status == 200, r
    return r.json()


class ActivityLayout(unittest.TestCase):

    def test_record_layout_and_page(self):
        with h.Daemon(cfg()) as d:
            chat(d, "a")
            chat(d, "b", stream=True)
            doc = activity(d)
            self.assertEqual(set(doc), {"data", "page", "limit", "total", "total_pages"})
            self.assertEqual((doc["page"], doc["limit"], doc["total"], doc["total_pages"]),
                             (1, 25, 2, 1))
            streamed, plain = doc["data"]
            self.assertEqual((plain["id"], streamed["id"]), (1, 2), "ids from 1, newest first")
            for rec in (plain, streamed):
                self.assertEqual(set(rec), RECORD_KEYS, rec)
                self.assertEqual(set(rec["tokens"]), TOKEN_KEYS, rec)
                self.assertRegex(rec["timestamp"], RFC3339)
                self.assertEqual(rec["req_path"], "/v1/chat/completions")
                self.assertEqual(rec["resp_status_code"], 200)
                self.assertIs(rec["has_capture"], True)  # captureBuffer: 5 MB by default
                self.assertIsInstance(rec["duration_ms"], int)
                self.assertEqual(rec["tokens"]["input_tokens"], 5)
            self.assertEqual((plain["model"], plain["tokens"]["output_tokens"]), ("a", 7))
            self.assertEqual((streamed["model"], streamed["tokens"]["output_tokens"]), ("b", 3))
            self.assertTrue(streamed["resp_content_type"].startswith("text/event-stream"))
            self.assertTrue(plain["resp_content_type"].startswith("application/json"))

    def test_only_model_dispatched_posts_are_metered(self):
        with h.Daemon(cfg()) as d:
            chat(d, "a")
            # As the original's isMetricsRecordPath: GET model routes, /upstream to other paths
            # (a health probe, the upstream's own pages) and the APIs are not recorded ...
            self.assertEqual(d.request("GET", "/props?model=a").status, 200)
            self.assertEqual(d.request("GET", "/upstream/a/health").status, 200)
            self.assertEqual(d.request("POST", "/upstream/a/echo", b"x").status, 200)
            self.assertEqual(d.request("GET", "/v1/models").status, 200)
            self.assertEqual(activity(d)["total"], 1)
            # ... a POST through /upstream to a model route is, by the path the upstream got
            body = h.chat_body("a")
            self.assertEqual(d.request("POST", "/upstream/a/v1/chat/completions", body).status,
                             200)
            self.assertEqual(d.request("POST", "/v/chat/completions", body).status, 200)
            doc = activity(d)
            self.assertEqual(doc["total"], 3, doc)
            self.assertEqual([r["req_path"] for r in doc["data"]],
                             ["/chat/completions", "/v1/chat/completions",
                              "/v1/chat/completions"])

    def test_error_message_of_a_failed_request(self):
        with h.Daemon(cfg()) as d:
            r = d.request("POST", "/v1/rerank", {"model": "a", "query": "q", "documents": []})
            self.assertEqual(r.status, 404, r)  # the fake has no /v1/rerank
            rec = activity(d)["data"][0]
            self.assertEqual(rec["resp_status_code"], 404, rec)
            self.assertEqual(rec["error_msg"], "Not found: POST /v1/rerank", rec)

    def test_filters_sorting_paging(self):
        with h.Daemon(cfg()) as d:
            for m in ("a", "b", "a", "b", "a"):
                chat(d, m)
            ids = [r["id"] for r in activity(d)["data"]]
            self.assertEqual(ids, [5, 4, 3, 2, 1])
            self.assertEqual([r["id"] for r in activity(d, "?model=b")["data"]], [4, 2])
            self.assertEqual(activity(d, "?model=a-alias")["total"], 3)
            self.assertEqual(activity(d, "?model=a&model=b")["total"], 5)
            self.assertEqual([r["id"] for r in activity(d, "?min_id=2&max_id=4")["data"]],
                             [4, 3, 2])
            self.assertEqual([r["id"] for r in activity(d, "?order=asc")["data"]],
                             [1, 2, 3, 4, 5])
            by_gen = activity(d, "?sort=generated&order=desc")["data"]
            self.assertEqual([r["id"] for r in by_gen], [5, 3, 1, 4, 2], "7s then 3s, id desc")
            p = activity(d, "?limit=2&page=3")
            self.assertEqual(([r["id"] for r in p["data"]], p["total_pages"]), ([1], 3))
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 120))
            self.assertEqual(activity(d, "?start=" + now)["total"], 0)
            self.assertEqual(activity(d, "?end=" + now)["total"], 5)

    def test_bad_filters_answer_400_with_the_originals_messages(self):
        cases = {
            "limit=abc": "invalid limit",
            "limit=0": "limit must be between 1 and 999",
            "limit=1000": "limit must be between 1 and 999",
            "page=0": "page must be >= 1",
            "min_id=0": "min_id must be >= 1",
            "max_id=x": "max_id must be >= 1",
            "min_id=3&max_id=2": "min_id must be <= max_id",
            "start=monday": "invalid 'start' timestamp, use RFC3339 format",
            "end=2026-01-01": "invalid 'end' timestamp, use RFC3339 format",
            "start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z": "start must be before end",
            "sort=bytes": "invalid sort column",
            "order=sideways": "order must be asc or desc",
        }
        with h.Daemon(cfg()) as d:
            for q, msg in cases.items():
                r = d.request("GET", "/api/metrics/activity?" + q)
                self.assertEqual(r.status, 400, (q, r))
                self.assertEqual(r.json()["error"]["message"], msg, q)


CAPTURE_KEYS = {"id", "req_path", "req_headers", "req_body", "resp_headers", "resp_body"}


def capture(d, cid):
    r = d.request("GET", "/api/captures/%s" % cid)
    return r.status, (r.json() if r.status == 200 else r)


class Captures(unittest.TestCase):

    def test_chat_capture_with_redacted_headers(self):
        with h.Daemon(cfg()) as d:
            chat(d, "a", headers={"Authorization": "Bearer secret", "X-Api-Key": "k2",
                                  "Cookie": "c=1", "X-Custom": "kept"})
            chat(d, "b", stream=True)
            rows = {r["id"]: r for r in activity(d)["data"]}
            self.assertTrue(rows[1]["has_capture"] and rows[2]["has_capture"], rows)
            st, c = capture(d, 1)
            self.assertEqual(st, 200, c)
            self.assertEqual(set(c), CAPTURE_KEYS, c)
            self.assertEqual((c["id"], c["req_path"]), (1, "/v1/chat/completions"))
            rh = c["req_headers"]
            for k in ("Authorization", "X-Api-Key", "Cookie"):
                self.assertEqual(rh[k], "[REDACTED]", rh)
            self.assertEqual(rh["X-Custom"], "kept")
            self.assertNotIn("secret", json.dumps(c))
            req = json.loads(base64.b64decode(c["req_body"]))
            self.assertEqual((req["model"], req["messages"][0]["content"]), ("a", PROMPT))
            resp = json.loads(base64.b64decode(c["resp_body"]))
            self.assertEqual(resp["usage"]["completion_tokens"], 7, resp)
            self.assertTrue(c["resp_headers"]["Content-Type"].startswith("application/json"))
            st, c = capture(d, 2)
            self.assertEqual(st, 200, c)
            self.assertIn(b"data:", base64.b64decode(c["resp_body"]))
            self.assertTrue(c["resp_headers"]["Content-Type"].startswith("text/event-stream"))

    def test_large_prompt_captured_whole(self):
        # A body over 16 KiB is kept as it came rather than copied into the ring: it reads
        # back byte for byte, between small ones on both sides.
        with h.Daemon(cfg()) as d:
            chat(d, "a")
            body = h.chat_body("a")
            body["messages"] = [{"role": "user", "content": "".join(
                chr(0x61 + (i * 7) % 26) for i in range(40000))}]
            raw = json.dumps(body).encode()
            r = d.request("POST", "/v1/chat/completions", raw,
                          headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 200, r)
            chat(d, "a")
            st, c = capture(d, 2)
            self.assertEqual(st, 200, c)
            self.assertEqual(base64.b64decode(c["req_body"]), raw)
            for cid in (1, 3):
                st, c = capture(d, cid)
                self.assertEqual(st, 200, c)
                self.assertEqual(json.loads(base64.b64decode(c["req_body"]))["model"], "a")

    def test_failed_request_keeps_the_request_only_and_masks(self):
        conf = cfg()
        conf["models"]["tts"] = {"cmd": h.fake_cmd(model="tts")}
        with h.Daemon(conf) as d:
            r = d.request("POST", "/v1/rerank", {"model": "a", "query": "q", "documents": []})
            self.assertEqual(r.status, 404, r)
            st, c = capture(d, 1)
            self.assertEqual(st, 200, c)
            self.assertIsNone(c["resp_body"])
            self.assertIsNotNone(c["resp_headers"])
            self.assertEqual(json.loads(base64.b64decode(c["req_body"]))["query"], "q")
            # /v1/audio/speech: the request and the response head, not the audio
            r = d.request("POST", "/v1/audio/speech", {"model": "tts", "input": "hi"})
            self.assertEqual(r.status, 200, r)
            st, c = capture(d, 2)
            self.assertEqual(st, 200, c)
            self.assertIsNone(c["resp_body"])
            self.assertEqual(json.loads(base64.b64decode(c["req_body"]))["input"], "hi")
            self.assertIsNotNone(c["resp_headers"])

    def test_bad_and_unknown_ids(self):
        with h.Daemon(cfg()) as d:
            for cid, status, msg in (("abc", 400, "invalid capture ID"),
                                     ("1x", 400, "invalid capture ID"),
                                     ("1", 404, "capture not found"),
                                     ("999", 404, "capture not found")):
                st, r = capture(d, cid)
                self.assertEqual(st, status, (cid, r))
                self.assertEqual(r.json()["error"]["message"], msg, cid)

    def test_disabled_with_zero(self):
        conf = cfg()
        conf["captureBuffer"] = 0
        with h.Daemon(conf) as d:
            chat(d, "a")
            self.assertIs(activity(d)["data"][0]["has_capture"], False)
            self.assertEqual(capture(d, 1)[0], 404)

    def test_oldest_evicted_under_a_tiny_buffer(self):
        conf = cfg()
        conf["captureBuffer"] = 0.01  # 10485 bytes: two of these requests
        with h.Daemon(conf) as d:
            for i in range(4):
                body = h.chat_body("a")
                body["messages"] = [{"role": "user", "content": "x" * 4000}]
                self.assertEqual(d.request("POST", "/v1/chat/completions", body).status, 200)
            rows = {r["id"]: r["has_capture"] for r in activity(d)["data"]}
            self.assertEqual(rows, {1: False, 2: False, 3: True, 4: True})
            self.assertEqual(capture(d, 1)[0], 404)
            self.assertEqual(capture(d, 4)[0], 200)
            # A request larger than the whole buffer is recorded without a capture
            body = h.chat_body("a")
            body["messages"] = [{"role": "user", "content": "x" * 20000}]
            self.assertEqual(d.request("POST", "/v1/chat/completions", body).status, 200)
            rows = {r["id"]: r["has_capture"] for r in activity(d)["data"]}
            self.assertEqual(rows[5], False)
            self.assertEqual(rows[4], True, "the kept ones stay")

    def test_spooled_request_body(self):
        conf = cfg()
        conf["server"] = {"bodyMemoryBytes": 4096}
        with h.Daemon(conf) as d:
            body = h.chat_body("a")
            body["messages"] = [{"role": "user", "content": "y" * 20000}]  # spooled
            self.assertEqual(d.request("POST", "/v1/chat/completions", body).status, 200)
            st, c = capture(d, 1)
            self.assertEqual(st, 200, c)
            self.assertEqual(json.loads(base64.b64decode(c["req_body"])), body)
        conf["captureBuffer"] = 0.01  # 10485 bytes: the spooled body does not fit
        with h.Daemon(conf) as d:
            self.assertEqual(d.request("POST", "/v1/chat/completions", body).status, 200)
            self.assertIs(activity(d)["data"][0]["has_capture"], False)
            self.assertEqual(capture(d, 1)[0], 404)

    def test_pipelined_requests_keep_their_own_path_and_body(self):
        # The connection reuses its request object for the next pipelined request while the
        # first exchange is still to be deleted: its record and capture must say its own path
        # (they once said the next request's, read from freed memory).
        with h.Daemon(cfg()) as d:
            first = json.dumps(h.chat_body("a", marker="first")).encode()
            second = json.dumps(h.chat_body("b", marker="second")).encode()
            p1 = b"/v1/chat/completions?delay_ms=100&pad=" + b"x" * 40
            p2 = b"/v1/completions?other=" + b"y" * 60
            head = b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            with d.raw(timeout=15) as c:
                c.send(head % (p1, len(first)) + first + head % (p2, len(second)) + second)
                r1, r2 = c.read_response(), c.read_response()
            self.assertEqual((r1.status, r2.status), (200, 200), (r1, r2))
            rows = {r["id"]: r for r in activity(d)["data"]}
            self.assertEqual((rows[1]["model"], rows[1]["req_path"]), ("a", "/v1/chat/completions"))
            self.assertEqual((rows[2]["model"], rows[2]["req_path"]), ("b", "/v1/completions"))
            for cid, path, body in ((1, p1, first), (2, p2, second)):
                st, c = capture(d, cid)
                self.assertEqual(st, 200, c)
                self.assertEqual(c["req_path"], path.decode().split("?")[0])
                self.assertEqual(base64.b64decode(c["req_body"]), body)


class Stats(unittest.TestCase):

    def test_totals_and_histograms(self):
        with h.Daemon(cfg()) as d:
            r = d.request("GET", "/api/metrics/stats")
            self.assertEqual(r.status, 200, r)
            empty = r.json()
            self.assertEqual(empty, {"total_requests": 0, "total_input_tokens": 0,
                                     "total_output_tokens": 0, "total_cache_tokens": 0,
                                     "prompt_histogram": None, "gen_histogram": None})
            for m in ("a", "a", "b"):
                chat(d, m)
            st = d.request("GET", "/api/metrics/stats").json()
            self.assertEqual((st["total_requests"], st["total_input_tokens"],
                              st["total_output_tokens"]), (3, 15, 17))
            for key in ("prompt_histogram", "gen_histogram"):
                hist = st[key]
                self.assertEqual(set(hist), {"bins", "min", "max", "binSize", "p50", "p95", "p99"})
                self.assertEqual(sum(hist["bins"]), 3, hist)
                self.assertLessEqual(hist["min"], hist["p50"])
                self.assertLessEqual(hist["p50"], hist["p95"])
                self.assertLessEqual(hist["p95"], hist["p99"])
                self.assertLessEqual(hist["p99"], hist["max"])
            b = d.request("GET", "/api/metrics/stats?model=b").json()
            self.assertEqual((b["total_requests"], b["total_output_tokens"]), (1, 3))
            self.assertEqual(b["gen_histogram"]["bins"], [1])
            self.assertEqual(b["gen_histogram"]["binSize"], 0)


class Version(unittest.TestCase):

    def test_layout(self):
        with h.Daemon(cfg()) as d:
            r = d.request("GET", "/api/version")
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.headers.get("content-type", "").startswith("application/json"))
            v = r.json()
            self.assertEqual(set(v), {"version", "commit", "build_date"})
            self.assertRegex(v["version"], r"^\d+\.\d+\.\d+")
            self.assertTrue(v["commit"] and v["build_date"], v)


class Inflight(unittest.TestCase):

    def test_snapshot_cancel_and_events(self):
        with h.Daemon(cfg()) as d:
            chat(d, "a")  # loaded
            self.assertEqual(d.request("GET", "/api/inflight").json(),
                             {"operation": "snapshot", "requests": []})
            with h4.EventStream(d.port, "/api/events") as s:
                s.wait_event(lambda e: len(e) >= 6, 5, "the initial frames")
                body = h.chat_body("a")
                bg = h4.Background(lambda: d.request(
                    "POST", "/v1/chat/completions?delay_ms=30000", body,
                    headers={"Authorization": "Bearer secret", "X-Forwarded-For": "10.1.2.3, x"},
                    timeout=60))
                h.wait_until(lambda: d.request("GET", "/api/inflight").json()["requests"], 10,
                             what="the request in flight")
                snap = d.request("GET", "/api/inflight").json()
                self.assertEqual(snap["operation"], "snapshot")
                (e,) = snap["requests"]
                self.assertEqual(set(e), INFLIGHT_KEYS, e)
                self.assertEqual((e["model"], e["method"], e["req_path"], e["remote_ip"]),
                                 ("a", "POST", "/v1/chat/completions", "10.1.2.3"))
                self.assertIsInstance(e["id"], str)
                self.assertRegex(e["timestamp"], RFC3339)
                self.assertEqual(e["req_headers"]["Authorization"], "[REDACTED]")
                self.assertEqual(e["req_headers"]["Content-Type"], "application/json")
                self.assertNotIn("Host", e["req_headers"])
                self.assertEqual((e["resp_headers"], e["resp_bytes"]), ({}, 0))
                # The events: an upsert with the request itself
                ups = s.wait_event(lambda ev: [x for t, x, _ in ev if t == "inflight" and
                                               x["operation"] == "upsert"], 5, "the upsert")
                self.assertEqual(set(ups[0]), {"operation", "request"})
                self.assertEqual(ups[0]["request"]["id"], e["id"])

                r = d.request("POST", "/api/inflight/nope/cancel")
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.json()["error"]["message"], "inflight request not found")
                r = d.request("POST", "/api/inflight/%s/cancel" % e["id"])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json(), {"msg": "ok"})
                got = bg.result()
                self.assertEqual(got.status, 502, got)
                self.assertIn("cancelled", got.json()["error"]["message"])
                s.wait_event(lambda ev: any(t == "inflight" and x == {"operation": "remove",
                                                                      "id": e["id"]}
                                            for t, x, _ in ev), 5, "the remove")
                self.assertEqual(d.request("GET", "/api/inflight").json()["requests"], [])
                # Recorded, and announced as an activity frame
                rec = activity(d)["data"][0]
                self.assertEqual(rec["resp_status_code"], 502, rec)
                self.assertIn("cancelled", rec["error_msg"])
                s.wait_event(lambda ev: any(t == "activity" and x == {"id": rec["id"]}
                                            for t, x, _ in ev), 5, "the activity frame")
            self.assertEqual(d.request("POST", "/api/inflight/%s/cancel" % e["id"]).status, 404)

    def test_cancel_mid_stream_cuts_the_response(self):
        c = {"models": {"slow": {"cmd": h.fake_cmd(model="slow", tokens=200, tps=20)}}}
        with h.Daemon(c) as d:
            with h.RawConn(d.port) as conn:
                req = json.dumps({"model": "slow", "stream": True,
                                  "messages": [{"role": "user", "content": "hi"}]}).encode()
                conn.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % len(req) + req)
                conn.read_until(b"data: ")
                (e,) = d.request("GET", "/api/inflight").json()["requests"]
                self.assertIn("Content-Type", e["resp_headers"])
                self.assertEqual(d.request("POST", "/api/inflight/%s/cancel" % e["id"]).status,
                                 200)
                rest = conn.read_all()
                self.assertNotIn(b"data: [DONE]", rest, "cut, not finished")
                self.assertFalse(rest.endswith(b"0\r\n\r\n"), "no clean chunked end")
            h.wait_until(lambda: activity(d)["total"] == 1, 5, what="the record")
            rec = activity(d)["data"][0]
            self.assertEqual(rec["resp_status_code"], 200, rec)
            self.assertEqual(rec["error_msg"], "response not completed: cancelled", rec)

    def test_upstream_passthrough_in_flight_only_for_model_paths(self):
        with h.Daemon(cfg()) as d:
            chat(d, "a")
            bg = h4.Background(lambda: d.request("POST", "/upstream/a/echo?delay_ms=1000", b"x"))
            h.wait_until(lambda: d.running()[0]["inFlight"] == 1, 5, what="in flight")
            self.assertEqual(d.request("GET", "/api/inflight").json()["requests"], [])
            self.assertEqual(bg.result().status, 200)
            bg = h4.Background(lambda: d.request(
                "POST", "/upstream/a/v1/chat/completions?delay_ms=1000", h.chat_body("a")))
            h.wait_until(lambda: d.request("GET", "/api/inflight").json()["requests"], 5,
                         what="the /upstream request in flight")
            (e,) = d.request("GET", "/api/inflight").json()["requests"]
            self.assertEqual(e["req_path"], "/v1/chat/completions")
            self.assertEqual(bg.result().status, 200)


class ModelsList(unittest.TestCase):

    def test_capabilities_and_alias_records_as_the_original(self):
        c = {"includeAliasesInList": True, "models": {
            "img": {"cmd": h.fake_cmd(model="img"), "aliases": ["pic"],
                    "metadata": {"capabilities": "mine", "port": "${PORT}", "k": 1},
                    "capabilities": {"in": ["text", "image"], "out": ["image"]}},
            "tts": {"cmd": h.fake_cmd(model="tts"),
                    "capabilities": {"in": ["text"], "out": ["audio"], "context": 4096}},
        }}
        with h.Daemon(c) as d:
            recs = {m["id"]: m for m in d.request("GET", "/v1/models").json()["data"]}
            self.assertEqual(sorted(recs), ["img", "pic", "tts"])
            img = recs["img"]
            self.assertEqual(img["architecture"], {"input_modalities": ["text", "image"],
                                                   "output_modalities": ["image"],
                                                   "modality": "text+image->image"})
            self.assertEqual(img["capabilities"], {"vision": True, "image_generation": True,
                                                   "image_to_image": True})
            ls = img["meta"]["llamaswap"]
            self.assertNotIn("capabilities", ls, "the rendered keys win over metadata's")
            self.assertEqual((ls["type"], ls["aliases"], ls["k"]), ("model", ["pic"], 1))
            self.assertRegex(str(ls["port"]), r"^\d+$", "${PORT} expanded")
            pic = recs["pic"]["meta"]["llamaswap"]
            self.assertEqual((pic["type"], pic["modelID"]), ("alias", "img"))
            self.assertNotIn("aliases", pic)
            tts = recs["tts"]
            self.assertEqual(tts["capabilities"], {"audio_speech": True})
            self.assertEqual((tts["context_length"], tts["meta"]["n_ctx"]), (4096, 4096))


if __name__ == "__main__":
    h.main()
