#!/usr/bin/env python3
"""Model keys that change requests or their handling: filters (stripParams, setParams,
setParamsByID), useModelName with filters, hooks.on_startup.preload, sendLoadingState,
timeouts.responseHeader, concurrencyLimit's 429."""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402


def sent_body(r):
    """The JSON body the echo upstream received."""
    assert r.status == 200, r
    return json.loads(r.json()["body"])


FILTERS = {"stripParams": " temperature,top_p , model,absent",
           "setParams": {"top_k": 20, "temperature": 0.5, "nested": {"a": [1, 2.5], "b": None},
                         "flag": False},
           "setParamsByID": {"f-think": {"think": True, "top_k": 40},
                             "f": {"by_id": "self"}}}


def filter_cfg(**model_extra):
    m = h4.echo_model(filters=FILTERS, aliases=["f-alias"])
    m.update(model_extra)
    return {"models": {"f": m, "plain": h4.echo_model(fake_model="plain")}}


class Filters(unittest.TestCase):
    REQ = {"temperature": 0.9, "top_p": 1, "keep": "x", "list": [1, "two"], "top_k": 1}

    def post(self, d, model, path="/v1/chat/completions", **extra):
        body = dict(self.REQ, model=model, **extra)
        return d.request("POST", path, body=body)

    def test_strip_and_set(self):
        with h4.Daemon(filter_cfg()) as d:
            b = sent_body(self.post(d, "f-alias"))
            self.assertNotIn("top_p", b)
            self.assertEqual(b["temperature"], 0.5, "setParams overrides after stripping")
            self.assertEqual(b["top_k"], 20, "setParams overrides the client's value")
            self.assertEqual(b["nested"], {"a": [1, 2.5], "b": None})
            self.assertIs(b["flag"], False)
            self.assertEqual(b["keep"], "x")
            self.assertEqual(b["list"], [1, "two"])
            self.assertEqual(b["model"], "f-alias", "model is never stripped")
            self.assertNotIn("think", b)
            self.assertNotIn("by_id", b, "setParamsByID 'f' applies only when 'f' was named")
            # Every route with a JSON body is filtered.
            b = sent_body(self.post(d, "f-alias", path="/v1/embeddings"))
            self.assertNotIn("top_p", b)
            self.assertEqual(b["top_k"], 20)

    def test_set_params_by_id(self):
        with h4.Daemon(filter_cfg()) as d:
            b = sent_body(self.post(d, "f-think"))
            self.assertIs(b["think"], True)
            self.assertEqual(b["top_k"], 40, "setParamsByID comes after setParams")
            self.assertEqual(b["temperature"], 0.5)
            self.assertNotIn("top_p", b)
            self.assertEqual(b["model"], "f-think")
            b = sent_body(self.post(d, "f"))
            self.assertEqual(b["by_id"], "self")
            self.assertNotIn("think", b)
            self.assertEqual(b["top_k"], 20)
            # The name is an alias of f: one process, no swap.
            self.assertEqual(d.running_models(), ["f"])
            self.assertEqual(d.starts("f"), 1)
            # ... in other places that take names too.
            r = d.request("POST", "/api/models/unload/f-think")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.running(), [])
            r = d.request("GET", "/upstream/f-think/x")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/echo/x")
            self.assertEqual(d.running_models(), ["f"])

    def test_set_numbers_keep_their_digits(self):
        # A 64-bit seed is beyond a double's exact integers: it must reach the upstream with
        # the digits the config wrote, not rounded through a floating-point parse.
        cfg = filter_cfg(filters={"setParams": {"seed": 9007199254740993, "t": 0.1}})
        with h4.Daemon(cfg) as d:
            r = self.post(d, "f")
            self.assertEqual(r.status, 200, r)
            raw = r.json()["body"]
            self.assertIn('"seed":9007199254740993', raw)
            self.assertIn('"t":0.1', raw)

    def test_other_models_and_passthrough_unfiltered(self):
        with h4.Daemon(filter_cfg()) as d:
            body = json.dumps(dict(self.REQ, model="plain")).encode()
            r = d.request("POST", "/v1/chat/completions", body=body,
                          headers={"Content-Type": "application/json"})
            self.assertEqual(r.json()["body_sha256"], h.sha256(body), "a model without filters")
            # /upstream/ passthrough is never filtered.
            body = json.dumps(dict(self.REQ, model="f")).encode()
            r = d.request("POST", "/upstream/f/v1/chat/completions", body=body,
                          headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body_sha256"], h.sha256(body))
            # Nor are multipart forms.
            form, ctype = h.multipart({"model": "f", "temperature": "0.9",
                                       "file": ("a.wav", b"\0\1\2" * 1000)})
            r = d.request("POST", "/v1/audio/transcriptions", body=form,
                          headers={"Content-Type": ctype})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body_sha256"], h.sha256(form))

    def test_use_model_name_with_filters(self):
        with h4.Daemon(filter_cfg(useModelName="upstream/name")) as d:
            for name in ("f", "f-alias", "f-think"):
                b = sent_body(self.post(d, name))
                self.assertEqual(b["model"], "upstream/name", name)
                self.assertNotIn("top_p", b)
                self.assertEqual(b["temperature"], 0.5)
                self.assertEqual("think" in b, name == "f-think", name)

    def test_filtered_body_not_object(self):
        with h4.Daemon(filter_cfg()) as d:
            # Found the model, but the document is not one object: 400 from the daemon.
            r = d.request("POST", "/v1/chat/completions", body=b'{"model":"f"} [1]',
                          headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, r)
            self.assertNotEqual(r.headers.get("server"), "fake-upstream")

    def test_set_model_is_a_config_error(self):
        for filters in ({"setParams": {"model": "x"}},
                        {"setParamsByID": {"f-x": {"model": "x"}}}):
            cfg = filter_cfg()
            cfg["models"]["f"]["filters"] = filters
            with tempfile.TemporaryDirectory(prefix="llama-swap-it-") as tmp:
                path = os.path.join(tmp, "config.yaml")
                with open(path, "w") as f:
                    f.write(h4.config_text(cfg))
                p = subprocess.run([h.LLAMA_SWAP, "--check-config", "-c", path],
                                   capture_output=True, text=True, timeout=10)
            out = p.stdout + p.stderr
            self.assertEqual(p.returncode, 78, (filters, out))
            self.assertIn("model", out)
            self.assertRegex(out, r"config\.yaml:\d+:\d+")

    def test_set_params_by_id_listed_with_include_aliases(self):
        cfg = filter_cfg()
        cfg["includeAliasesInList"] = True
        with h4.Daemon(cfg) as d:
            ids = sorted(m["id"] for m in d.request("GET", "/v1/models").json()["data"])
            self.assertEqual(ids, ["f", "f-alias", "f-think", "plain"])


class Preload(unittest.TestCase):
    def test_preload_at_startup(self):
        cfg = {"hooks": {"on_startup": {"preload": ["p-alias", "q"]}},
               "models": {"p": {"cmd": h.fake_cmd(model="p"), "aliases": ["p-alias"]},
                          "q": {"cmd": h.fake_cmd(model="q")},
                          "r": {"cmd": h.fake_cmd(model="r")}},
               "groups": {"g": {"swap": False, "members": ["p", "q"]}}}
        with h4.Daemon(cfg) as d:
            # No request at all: both are started (they may run together).
            h.wait_until(lambda: d.running_models() == ["p", "q"] and
                         all(e["state"] == "ready" for e in d.running()),
                         10, what="preloaded models ready")
            self.assertIn("preloading model p", d.log())
            self.assertEqual((d.starts("p"), d.starts("q"), d.starts("r")), (1, 1, 0))
            pids = {e["model"]: e["pid"] for e in d.running()}
            # A request uses the preloaded process.
            self.assertEqual(d.chat("p-alias").status, 200)
            self.assertEqual({e["model"]: e["pid"] for e in d.running()}, pids)
            # A reload runs the list again; running models stay as they are.
            d.request("POST", "/api/models/unload/q")
            self.assertTrue(d.sighup())
            h.wait_until(lambda: d.running_models() == ["p", "q"], 10, what="q preloaded again")
            self.assertEqual(d.running()[0]["pid"], pids["p"])
            self.assertEqual(d.starts("p"), 1)

    def test_preload_swaps_in_default_group(self):
        # Without a group that lets them coexist, the last one listed stays.
        cfg = {"hooks": {"on_startup": {"preload": ["p", "q"]}},
               "models": {"p": {"cmd": h.fake_cmd(model="p")},
                          "q": {"cmd": h.fake_cmd(model="q")}}}
        with h4.Daemon(cfg) as d:
            h.wait_until(lambda: d.running_models() == ["q"] and d.starts("p") == 1, 10,
                         what="q preloaded after p")
            time.sleep(0.3)
            self.assertEqual(d.running_models(), ["q"])

    def test_unknown_preload_name_is_an_error(self):
        cfg = {"hooks": {"on_startup": {"preload": ["nope"]}},
               "models": {"p": {"cmd": h.fake_cmd(model="p")}}}
        d = h4.Daemon(cfg, wait_ready=False)
        with d:
            d.proc.wait(10)
            self.assertEqual(d.proc.returncode, 78, d.log())
            self.assertIn("nope", d.log())
            self.assertRegex(d.log(), r":\d+:\d+")


def loading_cfg(**model_extra):
    m = {"cmd": h.fake_cmd(model="s", load_delay_ms=1500, tokens=3)}
    m.update(model_extra)
    return {"sendLoadingState": True, "models": {"s": m,
                                                 "t": {"cmd": h.fake_cmd(model="t", tokens=2)}}}


def reasoning(payload):
    doc = json.loads(payload)
    return doc["choices"][0]["delta"].get("reasoning_content")


class LoadingState(unittest.TestCase):
    def test_streamed_chat_to_cold_model(self):
        with h4.Daemon(loading_cfg()) as d:
            t0 = time.monotonic()
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("s", stream=True))
            self.assertEqual(s.status, 200)
            self.assertTrue(s.complete, s.error)
            self.assertIn("text/event-stream", s.headers.get("content-type", ""))
            self.assertEqual(s.headers.get("x-accel-buffering"), "no")
            data = s.data_lines()
            self.assertEqual(data[-1][1], b"[DONE]")
            chunks = [(t, json.loads(p)) for t, p in data[:-1]]
            texts = [c["choices"][0]["delta"].get("reasoning_content") for _, c in chunks]
            loading = [x for x in texts if x is not None]
            self.assertIn("llama-swap loading model", loading[0])
            self.assertIn("s", loading[0])
            self.assertIn(".", loading[1:-1], "no progress dot during a 1.5 s load")
            self.assertRegex(loading[-1], r"Done! \(\d+\.\d\ds\)")
            done_i = max(i for i, x in enumerate(texts) if x is not None)
            for _, c in chunks[:done_i + 1]:
                self.assertEqual(c["object"], "chat.completion.chunk")
                self.assertEqual(c["model"], "s")
            # The upstream's own tokens follow, after the loading events.
            after = [c for _, c in chunks[done_i + 1:]]
            contents = [c["choices"][0]["delta"].get("content") for c in after]
            self.assertEqual([x for x in contents if x], ["hi", "hi", "hi"])
            self.assertTrue(all(c.get("request_model") == "s" for c in after))
            # The stream began at once, long before the model was loaded.
            t_first, t_done = chunks[0][0], chunks[done_i][0]
            self.assertGreater(t_done - t_first, 0.7, "loading events arrived in one burst")
            self.assertLess(t_first - t0, t_done - t0 - 0.7)

    def test_no_loading_events_without_stream_or_when_ready(self):
        with h4.Daemon(loading_cfg()) as d:
            r = d.chat("s", timeout=20)  # cold, not streamed
            self.assertEqual(r.status, 200, r)
            self.assertIn("application/json", r.headers.get("content-type", ""))
            self.assertNotIn(b"reasoning_content", r.body)
            self.assertNotIn(b"llama-swap loading", r.body)
            # Ready model, streamed: just the upstream's events.
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("s", stream=True))
            self.assertEqual(s.status, 200)
            self.assertTrue(s.complete)
            self.assertNotIn(b"llama-swap loading", b"\n".join(l for _, l in s.lines))
            # Other routes never get loading events, even streamed and cold.
            r = d.request("POST", "/v1/completions", body={"model": "t", "prompt": "x",
                                                           "stream": True})
            self.assertEqual(r.status, 200)
            self.assertNotIn(b"llama-swap loading", r.body)

    def test_per_model_override(self):
        with h4.Daemon(loading_cfg(sendLoadingState=False)) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("s", stream=True))
            self.assertEqual(s.status, 200)
            self.assertTrue(s.complete)
            self.assertNotIn(b"llama-swap loading", b"\n".join(l for _, l in s.lines))
        cfg = loading_cfg(sendLoadingState=True)
        cfg["sendLoadingState"] = False
        with h4.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("s", stream=True))
            self.assertIn(b"llama-swap loading", b"\n".join(l for _, l in s.lines))

    def check_error_event(self, s, status_code=None):
        self.assertEqual(s.status, 200)
        self.assertIsNone(s.error, "the loading stream never ended (%r); got %r"
                          % (s.error, [l for _, l in s.lines]))
        self.assertTrue(s.complete)
        data = [p for _, p in s.data_lines()]
        self.assertEqual(data[-1], b"[DONE]")
        err = json.loads(data[-2])
        self.assertIn("error", err, err)
        self.assertIn("llama-swap loading model", reasoning(data[0]))
        return err["error"]

    def test_start_failure_as_event(self):
        cfg = {"sendLoadingState": True,
               "models": {"c": {"cmd": h.fake_cmd(model="c", crash_at_start=True)}}}
        with h4.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("c", stream=True),
                                 timeout=10)
            err = self.check_error_event(s)
            self.assertEqual(err["code"], "model_start_failed")

    def test_queue_timeout_as_event(self):
        cfg = {"sendLoadingState": True, "queueTimeout": 1,
               "models": {"q": {"cmd": h.fake_cmd(model="q", load_delay_ms=4000)}}}
        with h4.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("q", stream=True),
                                 timeout=10)
            err = self.check_error_event(s)
            self.assertEqual(err["code"], "model_wait_timeout")

    def test_upstream_error_status_as_event(self):
        # The fake serves its health at /nope/health but has no /nope/v1/chat/completions.
        cfg = {"sendLoadingState": True,
               "models": {"n": {"cmd": h.fake_cmd(model="n", load_delay_ms=800,
                                                  health_path="/nope/health"),
                                "proxy": "http://127.0.0.1:${PORT}/nope"}}}
        with h4.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("n", stream=True),
                                 timeout=10)
            err = self.check_error_event(s)
            self.assertIn("Not found", err.get("message", ""), err)

    def test_unreachable_upstream_after_loading_ends_the_stream(self):
        # The loading stream has begun when the upstream turns out unreachable: the error must
        # arrive as an event and the stream must end (not hang).
        cfg = {"sendLoadingState": True,
               "models": {"x": {"cmd": h.fake_cmd(model="x"), "proxy": "http://127.0.0.1:1",
                                "checkEndpoint": "none"}}}
        with h4.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("x", stream=True),
                                 timeout=4)
            err = self.check_error_event(s)
            self.assertEqual(err.get("code"), "upstream_unreachable", err)

    def test_response_header_timeout_after_loading_ends_the_stream(self):
        cfg = {"sendLoadingState": True,
               "models": {"s": {"cmd": h.fake_cmd(model="s", load_delay_ms=300),
                                "timeouts": {"responseHeader": 1}}}}
        with h4.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions?delay_ms=3000",
                                 h.chat_body("s", stream=True), timeout=4)
            err = self.check_error_event(s)
            self.assertEqual(err.get("code"), "upstream_timeout", err)


class TimeoutsAndLimits(unittest.TestCase):
    def test_response_header_timeout(self):
        cfg = {"models": {"s": {"cmd": h.fake_cmd(model="s"), "timeouts": {"responseHeader": 1}},
                          "e": h4.echo_model(timeouts={"responseHeader": 1})}}
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("s").status, 200)
            t0 = time.monotonic()
            r = d.chat("s", path="/v1/chat/completions?delay_ms=3000", timeout=15)
            dt = time.monotonic() - t0
            self.assertEqual(r.status, 504, r)
            self.assertEqual(h4.err_code(r), "upstream_timeout")
            self.assertLess(dt, 2.9, "answered only after the upstream did")
            self.assertGreaterEqual(dt, 0.9)
            # A response that starts in time is not cut, however long it streams.
            r = d.request("GET", "/upstream/s/slow?chunks=4&delay_ms=400", timeout=15)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body.count(b"chunk "), 4)
            # The model still serves.
            self.assertEqual(d.chat("s").status, 200)
            self.assertEqual(d.starts("s"), 1)
            # Same for a routed POST under /upstream/.
            r = d.request("POST", "/upstream/e/x?delay_ms=3000", body=b"{}", timeout=15)
            self.assertEqual(r.status, 504, r)

    def test_concurrency_limit_429(self):
        cfg = {"models": {"c": {"cmd": h.fake_cmd(model="c"), "concurrencyLimit": 1}}}
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("c").status, 200)
            slow = h4.Background(lambda: d.chat("c", path="/v1/chat/completions?delay_ms=1500"))
            h.wait_until(lambda: d.running()[0]["inFlight"] == 1, 3, what="request in flight")
            r = d.chat("c")
            self.assertEqual(r.status, 429, r)
            self.assertEqual(h4.err_code(r), "concurrency_limit")
            self.assertEqual(r.headers.get("retry-after"), "1")
            self.assertEqual(slow.result().status, 200)
            self.assertEqual(d.chat("c").status, 200, "the slot is free again")


if __name__ == "__main__":
    h.main()
