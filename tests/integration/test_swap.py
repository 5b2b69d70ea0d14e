#!/usr/bin/env python3
"""Swapping between models, streaming, model-name rewriting, aliases, ?model=."""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def ab(**extra_a):
    return {"models": {
        "a": dict({"cmd": h.fake_cmd(model="a")}, **extra_a),
        "b": {"cmd": h.fake_cmd(model="b")},
    }}


class Swap(unittest.TestCase):
    def running_pid(self, d, model):
        run = d.running()
        self.assertEqual([e["model"] for e in run], [model], run)
        self.assertEqual(run[0]["state"], "ready", run)
        return run[0]["pid"]

    def test_swap_a_b_a(self):
        with h.Daemon(ab()) as d:
            r = d.chat("a")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "a")
            pid_a = self.running_pid(d, "a")

            r = d.chat("b")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "b")
            pid_b = self.running_pid(d, "b")
            self.assertNotEqual(pid_a, pid_b)
            # The swap stopped a before b answered: a's process is gone (reaped).
            h.wait_until(lambda: not h.pid_alive(pid_a), 3, what="old upstream a to be gone")

            r = d.chat("a")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "a")
            pid_a2 = self.running_pid(d, "a")
            self.assertNotEqual(pid_a2, pid_a)
            h.wait_until(lambda: not h.pid_alive(pid_b), 3, what="old upstream b to be gone")
            self.assertEqual(d.starts("a"), 2)
            self.assertEqual(d.starts("b"), 1)

    def test_same_model_no_restart(self):
        with h.Daemon(ab()) as d:
            for _ in range(5):
                r = d.chat("a")
                self.assertEqual(r.status, 200, r)
            self.assertEqual(d.starts("a"), 1)

    def test_other_endpoints(self):
        with h.Daemon(ab()) as d:
            r = d.request("POST", "/v1/completions", body={"model": "a", "prompt": "hi"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json().get("request_model"), "a", r)
            r = d.request("POST", "/v1/embeddings", body={"model": "b", "input": "hi"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json().get("request_model"), "b", r)

    def test_streaming_sse_spread_over_time(self):
        cfg = {"models": {"s": {"cmd": h.fake_cmd(model="s", tokens=5, tps=10)}}}
        with h.Daemon(cfg) as d:
            # Warm the model first so load time does not count.
            self.assertEqual(d.chat("s").status, 200)
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("s", stream=True))
            self.assertEqual(s.status, 200)
            self.assertIsNone(s.error, s.error)
            self.assertTrue(s.complete)
            self.assertIn("text/event-stream", s.headers.get("content-type", ""))
            self.assertEqual(s.headers.get("x-accel-buffering"), "no")
            data = s.data_lines()
            self.assertGreaterEqual(len(data), 5, s.lines)
            self.assertEqual(data[-1][1], b"[DONE]")
            # Every chunk but [DONE] is JSON.
            for _, payload in data[:-1]:
                json.loads(payload)
            # 5 tokens at 10 t/s = ~500 ms of generation: the first chunk must arrive well
            # before the last (a buffering proxy would deliver them all at once). The margin is
            # generous (200 ms) for a loaded machine.
            gap = data[-1][0] - data[0][0]
            self.assertGreaterEqual(gap, 0.2, "chunks arrived in one burst (gap %.3f s)" % gap)

    def test_use_model_name_json(self):
        cfg = ab(useModelName="upstream-name-for-a")
        with h.Daemon(cfg) as d:
            r = d.chat("a")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "upstream-name-for-a")
            # Other models are not rewritten.
            r = d.chat("b")
            self.assertEqual(r.json()["request_model"], "b")

    def test_use_model_name_streaming(self):
        cfg = ab(useModelName="renamed")
        with h.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("a", stream=True))
            self.assertEqual(s.status, 200)
            self.assertTrue(s.complete, s.error)
            first = json.loads(s.data_lines()[0][1])
            self.assertEqual(first.get("request_model", "renamed"), "renamed", first)

    def transcription_routed(self, d):
        """Skips unless the daemon routes /v1/audio/transcriptions (multipart) to a model."""
        r = d.request("POST", "/v1/audio/transcriptions", body=b"")
        if r.status == 404 and r.headers.get("server") != "fake-upstream":
            if r.json()["error"]["code"] == "not_found":
                self.skipTest("the daemon does not route /v1/audio/transcriptions yet; no other "
                              "routed endpoint of the fake upstream reports a multipart body")

    def test_multipart_body_intact(self):
        with h.Daemon(ab()) as d:
            self.transcription_routed(d)
            body, ctype = h.multipart({"model": "a", "file": ("x.wav", bytes(range(256)) * 400)})
            r = d.request("POST", "/v1/audio/transcriptions", body=body,
                          headers={"Content-Type": ctype})
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["model"], "a")
            self.assertEqual(doc["body_length"], len(body))
            self.assertEqual(doc["body_sha256"], h.sha256(body))

    def test_use_model_name_multipart(self):
        # The `model` form field is rewritten to useModelName; nothing else in the body changes.
        with h.Daemon(ab(useModelName="renamed-mp")) as d:
            self.transcription_routed(d)
            data = bytes(range(256)) * 40
            body, ctype = h.multipart({"model": "a", "file": ("x.wav", data)})
            expected, _ = h.multipart({"model": "renamed-mp", "file": ("x.wav", data)})
            r = d.request("POST", "/v1/audio/transcriptions", body=body,
                          headers={"Content-Type": ctype})
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["model"], "a", "served by model a's upstream")
            self.assertEqual(doc["body_length"], len(expected), doc)
            self.assertEqual(doc["body_sha256"], h.sha256(expected), doc)

    def test_multipart_model_field(self):
        # The model comes from the multipart `model` field. The fake's chat endpoint only takes
        # JSON, so it answers 400 itself: what matters is that the request reached model b.
        with h.Daemon(ab()) as d:
            body, ctype = h.multipart({"file": ("x.bin", b"abc" * 100), "model": "b"})
            r = d.request("POST", "/v1/chat/completions", body=body,
                          headers={"Content-Type": ctype})
            self.assertEqual(r.headers.get("server"), "fake-upstream", r)
            self.assertEqual(d.running_models(), ["b"])

    def test_aliases(self):
        cfg = ab(aliases=["alias-one", "alias-two"])
        with h.Daemon(cfg) as d:
            r = d.chat("alias-one")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.running_models(), ["a"])
            r = d.chat("alias-two")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.starts("a"), 1, "an alias of the running model must not restart it")
            # As in the original, the body goes upstream unchanged (only useModelName rewrites
            # it), so the upstream sees the alias the client used.
            self.assertEqual(r.json()["request_model"], "alias-two")
            # Aliases are not listed as models.
            ids = [m["id"] for m in d.request("GET", "/v1/models").json()["data"]]
            self.assertEqual(sorted(ids), ["a", "b"])

    def test_query_model_bodyless_post(self):
        with h.Daemon(ab()) as d:
            r = d.request("POST", "/v1/chat/completions?model=b", body=b"")
            # The fake rejects an empty body itself (400 from the upstream): what matters is
            # that the daemon routed it to b.
            self.assertEqual(r.headers.get("server"), "fake-upstream", r)
            self.assertEqual(d.running_models(), ["b"])

    def test_query_model_overrides_nothing_when_body_has_model(self):
        with h.Daemon(ab()) as d:
            r = d.request("POST", "/v1/chat/completions?model=b", body=h.chat_body("a"))
            self.assertEqual(r.status, 200, r)
            # Whichever source wins, exactly one model ran and it answered as itself.
            run = d.running_models()
            self.assertEqual(len(run), 1)
            self.assertEqual(r.json()["request_model"], run[0])

    def test_large_body_passes_intact(self):
        # A 1 MiB body, over the 4 KiB in-memory bound (so spooled): the model is still read
        # from it and the upstream gets a body it can parse.
        cfg = ab()
        cfg["server"] = {"bodyMemoryBytes": 4096, "maxBodyBytes": 4 * 1024 * 1024}
        with h.Daemon(cfg) as d:
            body = h.chat_body("b", pad="z" * (1024 * 1024))
            r = d.request("POST", "/v1/chat/completions", body=body, timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["request_model"], "b")


if __name__ == "__main__":
    h.main()
