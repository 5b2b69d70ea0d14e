#!/usr/bin/env python3
"""Every route: model-dispatched routes relay method, path, query, headers and body intact;
/v1/models and /running record layouts; unloading; /upstream/ passthrough and its redirects
and static-asset rule; the original's other servers' routes (/v/…, /sdapi/…, /audioapi/…,
/comfyui/), URL-encoded forms, /props without a model, /wol-health; CORS; 404/405."""

import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402

JSON_ROUTES = [
    "/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages",
    "/v1/messages/count_tokens", "/v1/embeddings", "/v1/rerank", "/v1/reranking", "/rerank",
    "/reranking", "/infill", "/completion", "/v1/audio/speech", "/v1/images/generations",
    "/v1/audio/voices", "/sdapi/v1/txt2img", "/sdapi/v1/img2img",
]
# Routes whose prefix the upstream never sees.
PREFIXED_ROUTES = [
    ("/v/chat/completions", "/chat/completions"), ("/v/responses", "/responses"),
    ("/v/completions", "/completions"), ("/v/messages", "/messages"),
    ("/v/messages/count_tokens", "/messages/count_tokens"), ("/v/embeddings", "/embeddings"),
    ("/v/rerank", "/rerank"), ("/v/reranking", "/reranking"),
    ("/audioapi/v1/tasks/run", "/v1/tasks/run"),
]
MULTIPART_ROUTES = ["/v1/audio/transcriptions", "/v1/images/edits"]


def echo_cfg(**top):
    cfg = {"models": {"e": h4.echo_model(aliases=["e-alias"])}}
    cfg.update(top)
    return cfg


class DispatchedRoutes(unittest.TestCase):
    """The model `e` relays to the fake's /echo/<path>, which describes what arrived."""

    def check_echo(self, r, method, path, body):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("server"), "fake-upstream", r)
        doc = r.json()
        self.assertEqual(doc["method"], method, doc)
        self.assertEqual(doc["path"], "/echo" + path, doc)
        self.assertEqual(doc["body_length"], len(body), doc)
        self.assertEqual(doc["body_sha256"], h.sha256(body), doc)
        return doc

    def test_json_routes_relay_intact(self):
        with h4.Daemon(echo_cfg()) as d:
            for route in JSON_ROUTES:
                # Odd spacing, key order and unicode must survive byte for byte.
                body = ('{ "input":"x",\n "model" : "e-alias", "n":1.50, "u":"\u00e9\u4e2d",'
                        ' "route": "%s" }' % route).encode()
                path = route + "?a=1&b=%2Fx%20y&b=2"
                r = d.request("POST", path, body=body,
                              headers={"Content-Type": "application/json", "X-Custom": "v1",
                                       "Authorization": "Bearer not-a-key-here"})
                doc = self.check_echo(r, "POST", path, body)
                self.assertEqual(doc["body"], body.decode(), route)
                self.assertEqual(doc["headers"].get("x-custom"), "v1", doc)
                self.assertEqual(doc["headers"].get("content-type"), "application/json", doc)
                # Without apiKeys, credentials are the client's business and go upstream.
                self.assertEqual(doc["headers"].get("authorization"), "Bearer not-a-key-here", doc)
            self.assertEqual(d.starts("e"), 1)

    def test_get_routes_take_model_from_query(self):
        with h4.Daemon(echo_cfg()) as d:
            for path in ("/props?model=e", "/v1/audio/voices?model=e-alias&lang=fr",
                         "/sdapi/v1/loras?model=e"):
                r = d.request("GET", path)
                self.check_echo(r, "GET", path, b"")

    def test_prefixed_routes_reach_the_upstream_without_the_prefix(self):
        with h4.Daemon(echo_cfg()) as d:
            for route, upstream in PREFIXED_ROUTES:
                body = b'{"model": "e", "route": "%s"}' % route.encode()
                r = d.request("POST", route + "?k=v", body=body)
                doc = self.check_echo(r, "POST", upstream + "?k=v", body)
                self.assertEqual(doc["body"], body.decode(), route)
            # With useModelName the query form is rewritten on the stripped path too.
            r = d.request("POST", "/v/chat/completions", body=b'{"model": "e"}')
            self.assertEqual(r.json()["path"], "/echo/chat/completions")
            r = d.request("GET", "/v/chat/completions")
            self.assertEqual(r.status, 405, r)
        # A real server that mounts the API at / answers the versionless route.
        with h4.Daemon({"models": {"p": {"cmd": h.fake_cmd(model="p")}}}) as d:
            r = d.request("POST", "/v/chat/completions", body=h.chat_body("p"))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["object"], "chat.completion")
            r = d.request("POST", "/audioapi/v1/tasks/run", body={"model": "p", "task": "tts"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/v1/tasks/run")

    def test_url_encoded_form_names_the_model(self):
        cfg = {"models": {"e": h4.echo_model(aliases=["e-alias"]),
                          "r": h4.echo_model(fake_model="r", useModelName="org/real name")}}
        with h4.Daemon(cfg) as d:
            form = "prompt=a+cat+%26+a+dog&model=e-alias&steps=4"
            r = d.request("POST", "/sdapi/v1/txt2img", body=form.encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
            doc = self.check_echo(r, "POST", "/sdapi/v1/txt2img", form.encode())
            self.assertEqual(doc["body"], form)
            # useModelName replaces the value percent-encoded; the rest stays as sent.
            form = "model=r&prompt=x%2By"
            r = d.request("POST", "/v1/images/generations", body=form.encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body"], "model=org%2Freal%20name&prompt=x%2By")
            # JSON sent as a form (curl -d without a Content-Type) is read as JSON.
            body = b'{"model": "e-alias", "messages": []}'
            r = d.request("POST", "/v1/chat/completions", body=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
            self.check_echo(r, "POST", "/v1/chat/completions", body)
            for form, code in (("prompt=x", "missing_model"), ("model=%zz", "invalid_request_body"),
                               ("model=nope", "model_not_found")):
                r = d.request("POST", "/v1/images/generations", body=form.encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
                self.assertEqual(h4.err_code(r), code, (form, r))
            self.assertEqual(d.starts("r"), 1)

    def test_props_without_a_model_asks_the_running_one(self):
        cfg = {"models": {"e": h4.echo_model(), "f": h4.echo_model(fake_model="f")},
               "groups": {"g": {"swap": False, "members": ["e", "f"]}}}
        with h4.Daemon(cfg) as d:
            r = d.request("GET", "/props")
            self.assertEqual(r.status, 400, r)
            self.assertIn("no model is running", r.json()["error"]["message"])
            self.assertEqual(d.request("POST", "/v1/embeddings", body={"model": "e"}).status, 200)
            r = d.request("GET", "/props?x=1")
            self.check_echo(r, "GET", "/props?x=1", b"")
            self.assertEqual(d.request("POST", "/v1/embeddings", body={"model": "f"}).status, 200)
            r = d.request("GET", "/props")
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.json()["error"]["message"],
                             "several models are running (e, f); name one with /props?model=ID")
            self.assertEqual(d.starts(), 2)

    def test_multipart_routes_relay_intact(self):
        with h4.Daemon(echo_cfg()) as d:
            for route in MULTIPART_ROUTES:
                payload = bytes(range(256)) * 300  # binary, not UTF-8
                body, ctype = h.multipart({"file": ("in.bin", payload), "model": "e",
                                           "prompt": "p"})
                r = d.request("POST", route + "?q=1", body=body,
                              headers={"Content-Type": ctype})
                doc = self.check_echo(r, "POST", route + "?q=1", body)
                self.assertEqual(doc["headers"].get("content-type"), ctype)

    def test_upstream_error_status_is_relayed(self):
        # A plain fake upstream has no /v1/rerank: its own 404 JSON comes back unchanged.
        cfg = {"models": {"p": {"cmd": h.fake_cmd(model="p")}}}
        with h4.Daemon(cfg) as d:
            r = d.request("POST", "/v1/rerank", body={"model": "p", "query": "q"})
            self.assertEqual(r.status, 404, r)
            self.assertEqual(r.headers.get("server"), "fake-upstream", r)
            self.assertIn("error", r.json())
            self.assertIn("/v1/rerank", r.json()["error"]["message"])
            self.assertEqual(d.running_models(), ["p"])

    def test_unknown_model_and_missing_model(self):
        with h4.Daemon(echo_cfg()) as d:
            r = d.request("POST", "/v1/rerank", body={"model": "nope"})
            self.assertEqual(r.status, 404, r)
            self.assertEqual(h4.err_code(r), "model_not_found")
            r = d.request("POST", "/v1/embeddings", body={"input": "x"})
            self.assertEqual(r.status, 400, r)
            self.assertEqual(h4.err_code(r), "missing_model")
            self.assertEqual(d.running(), [])


class ModelList(unittest.TestCase):
    CFG = {"models": {
        "m1": {"cmd": h.fake_cmd(model="m1"), "name": "Model One", "description": "the first",
               "macros": {"ctx": 8192},
               "metadata": {"family": "qwen", "vram_gb": 21, "ratio": 1.5, "flag": True,
                            "nothing": None, "tags": ["a", "b"],
                            "nested": {"k": "v", "l": [1, {"x": 2}]},
                            "ctx": h4.Raw("${ctx}"), "where": "${MODEL_ID}"},
               "capabilities": {"in": ["text", "image"], "tools": True, "context": 32768},
               "aliases": ["m1-a", "m1-b"]},
        "m2": {"cmd": h.fake_cmd(model="m2"), "metadata": "hello"},
        "m3": {"cmd": h.fake_cmd(model="m3"),
               "capabilities": {"in": ["audio"], "out": ["text", "audio"], "reranker": True}},
        "hidden": {"cmd": h.fake_cmd(model="hidden"), "unlisted": True, "aliases": ["hid-a"]},
    }}

    def test_layout(self):
        t0 = time.time()
        with h4.Daemon(self.CFG) as d:
            r = d.request("GET", "/v1/models")
            self.assertEqual(r.status, 200, r)
            self.assertIn("application/json", r.headers.get("content-type", ""))
            doc = r.json()
            self.assertEqual(doc["object"], "list")
            recs = {m["id"]: m for m in doc["data"]}
            self.assertEqual(sorted(recs), ["m1", "m2", "m3"], "unlisted models are hidden")
            for rec in recs.values():
                self.assertEqual(rec["object"], "model")
                self.assertEqual(rec["owned_by"], "llama-swap")
                self.assertIsInstance(rec["created"], int)
                self.assertLessEqual(abs(rec["created"] - t0), 60, rec)
                self.assertEqual(rec["status"], {"value": "unloaded"})

            m1 = recs["m1"]
            self.assertEqual(m1["name"], "Model One")
            self.assertEqual(m1["description"], "the first")
            # As the original's renderCapabilities: only what is set, only true capabilities.
            self.assertEqual(m1["architecture"], {"input_modalities": ["text", "image"]})
            self.assertEqual(m1["capabilities"], {"vision": True, "function_calling": True})
            self.assertEqual(m1["supported_parameters"], ["tools", "tool_choice"])
            self.assertEqual(m1["context_length"], 32768)
            self.assertEqual(m1["meta"]["n_ctx"], 32768)
            ls = m1["meta"]["llamaswap"]
            self.assertEqual(ls["type"], "model")
            self.assertEqual(ls["aliases"], ["m1-a", "m1-b"])
            # Types kept: int, float, bool, null, list, nested mapping; a plain `${ctx}`
            # becomes a number, macros expanded inside strings.
            expect = {"family": "qwen", "vram_gb": 21, "ratio": 1.5, "flag": True,
                      "nothing": None, "tags": ["a", "b"], "nested": {"k": "v", "l": [1, {"x": 2}]},
                      "ctx": 8192, "where": "m1"}
            for k, v in expect.items():
                self.assertIn(k, ls)
                self.assertEqual(ls[k], v, k)
                self.assertIs(type(ls[k]), type(v), k)

            m2 = recs["m2"]
            for k in ("name", "description", "architecture", "capabilities",
                      "supported_parameters", "context_length"):
                self.assertNotIn(k, m2, "%s only when set" % k)
            self.assertEqual(m2["meta"], {"llamaswap": {"metadata": "hello", "type": "model"}})

            m3 = recs["m3"]
            self.assertEqual(m3["architecture"]["modality"], "audio->text+audio")
            self.assertEqual(m3["capabilities"], {"audio_transcriptions": True,
                                                  "reranker": True})
            self.assertNotIn("supported_parameters", m3)
            self.assertNotIn("context_length", m3)
            self.assertNotIn("n_ctx", m3["meta"])

            # /models is the same list.
            r2 = d.request("GET", "/models")
            self.assertEqual(r2.status, 200)
            self.assertEqual(r2.json(), doc)
            # HEAD: the head only.
            r3 = d.request("HEAD", "/v1/models")
            self.assertEqual(r3.status, 200)
            self.assertEqual(r3.body, b"")

            # Loaded once running; the unlisted model can still be requested.
            self.assertEqual(d.chat("m1-a").status, 200)
            recs = {m["id"]: m for m in d.request("GET", "/v1/models").json()["data"]}
            self.assertEqual(recs["m1"]["status"], {"value": "loaded"})
            self.assertEqual(recs["m2"]["status"], {"value": "unloaded"})
            self.assertEqual(d.chat("hid-a").status, 200)
            self.assertEqual(d.running_models(), ["hidden"])
            ids = [m["id"] for m in d.request("GET", "/v1/models").json()["data"]]
            self.assertNotIn("hidden", ids)

    def test_include_aliases_in_list(self):
        cfg = dict(self.CFG, includeAliasesInList=True)
        with h4.Daemon(cfg) as d:
            data = d.request("GET", "/v1/models").json()["data"]
            ids = [m["id"] for m in data]
            self.assertEqual(sorted(ids), ["m1", "m1-a", "m1-b", "m2", "m3"],
                             "aliases of unlisted models stay hidden")
            recs = {m["id"]: m for m in data}
            for alias in ("m1-a", "m1-b"):
                # As the original: the model's record under the alias' id, with
                # meta.llamaswap type "alias" and modelID instead of type "model" and aliases.
                rec = json.loads(json.dumps(recs[alias]))
                ls = rec["meta"]["llamaswap"]
                self.assertEqual((ls.pop("type"), ls.pop("modelID")), ("alias", "m1"), rec)
                model = json.loads(json.dumps(recs["m1"]))
                mls = model["meta"]["llamaswap"]
                self.assertEqual((mls.pop("type"), mls.pop("aliases")), ("model", ["m1-a", "m1-b"]))
                rec["id"] = "m1"
                self.assertEqual(rec, model)


class Running(unittest.TestCase):
    def test_fields(self):
        cfg = {"models": {"r": {"cmd": h.fake_cmd(model="r"), "name": "R name",
                                "description": "R desc", "ttl": 300},
                          "s": {"cmd": h.fake_cmd(model="s")}}}
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.running(), [])
            self.assertEqual(d.chat("r").status, 200)
            run = d.running()
            self.assertEqual(len(run), 1, run)
            e = run[0]
            self.assertEqual(e["model"], "r")
            self.assertEqual(e["state"], "ready")
            self.assertEqual(e["ttl"], 300)
            self.assertEqual(e["name"], "R name")
            self.assertEqual(e["description"], "R desc")
            self.assertEqual(e["inFlight"], 0)
            self.assertEqual(e["queued"], 0)
            self.assertNotIn("error", e)
            pid = e["pid"]
            self.assertIsInstance(pid, int)
            self.assertTrue(h.pid_alive(pid))
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            self.assertIn(b"--model", argv)
            self.assertIn(h.FAKE_UPSTREAM, e["cmd"])
            self.assertNotIn("${PORT}", e["cmd"], "the command as started")
            self.assertNotIn("${PORT}", e["proxy"])
            port = int(e["proxy"].rsplit(":", 1)[1].split("/")[0])
            self.assertIn("--port %d" % port, e["cmd"])
            self.assertTrue(e["proxy"].startswith("http://"), e)
            # The proxy address is where the model really serves.
            r = h.request(port, "GET", "/health")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers.get("server"), "fake-upstream")
            # Defaults: a model without name/description has empty ones.
            self.assertEqual(d.chat("s").status, 200)
            e = d.running()[0]
            self.assertEqual((e["model"], e["name"], e["description"]), ("s", "", ""))

    def test_in_flight_count(self):
        cfg = {"models": {"r": {"cmd": h.fake_cmd(model="r")}}}
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("r").status, 200)
            bg = h4.Background(lambda: d.chat("r", path="/v1/chat/completions?delay_ms=1500"))
            h.wait_until(lambda: d.running()[0]["inFlight"] == 1, 3, what="inFlight 1")
            self.assertEqual(bg.result().status, 200)
            self.assertEqual(d.running()[0]["inFlight"], 0)


def coexist_cfg():
    """Three models that run side by side, one with '/' in its id."""
    return {
        "models": {
            "u1": {"cmd": h.fake_cmd(model="u1"), "aliases": ["u1-alias"]},
            "u2": {"cmd": h.fake_cmd(model="u2")},
            "org/model-x": {"cmd": h.fake_cmd(model="x")},
        },
        "groups": {"all": {"swap": False, "members": ["u1", "u2", "org/model-x"]}},
    }


class Unload(unittest.TestCase):
    def start_all(self, d):
        for m in ("u1", "u2", "org/model-x"):
            self.assertEqual(d.chat(m).status, 200)
        run = d.running()
        self.assertEqual(sorted(e["model"] for e in run), ["org/model-x", "u1", "u2"])
        return {e["model"]: e["pid"] for e in run}

    def test_get_unload(self):
        with h4.Daemon(coexist_cfg()) as d:
            pids = self.start_all(d)
            r = d.request("GET", "/unload")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body.strip(), b"OK")
            # Answered once every model has stopped: the processes are gone already.
            for m, pid in pids.items():
                self.assertFalse(h.pid_alive(pid), "%s (pid %d) still alive after /unload"
                                 % (m, pid))
            self.assertEqual(d.running(), [])
            # Unloading nothing answers at once too.
            r = d.request("GET", "/unload")
            self.assertEqual((r.status, r.body.strip()), (200, b"OK"))

    def test_post_api_models_unload(self):
        with h4.Daemon(coexist_cfg()) as d:
            for body, headers in ((None, {}), (b"", {}), ({}, {}),
                                  (b"model=u1", {"Content-Type": "application/x-www-form-urlencoded"})):
                pids = self.start_all(d)
                r = d.request("POST", "/api/models/unload", body=body, headers=headers)
                self.assertEqual(r.status, 200, (body, r))
                self.assertIn("application/json", r.headers.get("content-type", ""))
                self.assertEqual(r.json(), {"msg": "ok"})
                for m, pid in pids.items():
                    self.assertFalse(h.pid_alive(pid), "%s still alive (body %r)" % (m, body))
                self.assertEqual(d.running(), [])

    def test_unload_one_by_alias_and_slash_id(self):
        with h4.Daemon(coexist_cfg()) as d:
            pids = self.start_all(d)
            r = d.request("POST", "/api/models/unload/u1-alias")
            self.assertEqual((r.status, r.body.strip()), (200, b"OK"), r)
            self.assertFalse(h.pid_alive(pids["u1"]))
            self.assertEqual(d.running_models(), ["org/model-x", "u2"])

            r = d.request("POST", "/api/models/unload/org/model-x")
            self.assertEqual((r.status, r.body.strip()), (200, b"OK"), r)
            self.assertFalse(h.pid_alive(pids["org/model-x"]))
            self.assertEqual(d.running_models(), ["u2"])
            self.assertTrue(h.pid_alive(pids["u2"]))

            # Percent-encoded '/' names the same model.
            self.assertEqual(d.chat("org/model-x").status, 200)
            r = d.request("POST", "/api/models/unload/org%2Fmodel-x")
            self.assertEqual((r.status, r.body.strip()), (200, b"OK"), r)
            self.assertEqual(d.running_models(), ["u2"])

            # Stopping a model that is not running is fine.
            r = d.request("POST", "/api/models/unload/u1")
            self.assertEqual((r.status, r.body.strip()), (200, b"OK"), r)

            r = d.request("POST", "/api/models/unload/nope")
            self.assertEqual(r.status, 404, r)
            self.assertEqual(h4.err_code(r), "model_not_found")
            r = d.request("POST", "/api/models/unload/org")
            self.assertEqual(r.status, 404, r)
            r = d.request("GET", "/api/models/unload/u2")
            self.assertEqual(r.status, 405, r)
            self.assertEqual(r.headers.get("allow"), "POST")
            self.assertEqual(d.running_models(), ["u2"])

    def test_unload_while_request_in_flight(self):
        # /unload does not wait for in-flight requests (as in the original).
        cfg = {"models": {"u": {"cmd": h.fake_cmd(model="u")}}}
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("u").status, 200)
            pid = d.running()[0]["pid"]
            bg = h4.Background(lambda: d.chat("u", path="/v1/chat/completions?delay_ms=4000",
                                               timeout=20))
            h.wait_until(lambda: d.running()[0]["inFlight"] == 1, 3, what="request in flight")
            t0 = time.monotonic()
            r = d.request("GET", "/unload", timeout=20)
            self.assertEqual(r.status, 200, r)
            self.assertLess(time.monotonic() - t0, 3.5, "/unload waited for the in-flight request")
            self.assertFalse(h.pid_alive(pid))
            r = bg.result()
            self.assertNotEqual(r.status, 200, "the upstream was stopped under the request")

    def test_unload_while_loading(self):
        # Requests waiting for a model that gets unloaded are answered 503 model_unloaded.
        cfg = {"models": {"u": {"cmd": h.fake_cmd(model="u", load_delay_ms=1500)}}}
        with h4.Daemon(cfg) as d:
            waiting = h4.Background(lambda: d.chat("u", timeout=20))
            h.wait_until(lambda: d.running() and d.running()[0]["state"] == "starting", 3,
                         what="u starting")
            pid = d.running()[0]["pid"]
            r = d.request("POST", "/api/models/unload/u", timeout=20)
            self.assertEqual((r.status, r.body.strip()), (200, b"OK"), r)
            self.assertFalse(h.pid_alive(pid))
            r = waiting.result()
            self.assertEqual(r.status, 503, r)
            self.assertEqual(h4.err_code(r), "model_unloaded")
            self.assertEqual(r.headers.get("retry-after"), "1")
            self.assertEqual(d.running(), [])
            # The next request starts it again.
            self.assertEqual(d.chat("u", timeout=20).status, 200)

    def test_api_load(self):
        # POST /api/models/load/<model> answers once the model is ready; nothing goes upstream.
        cfg = coexist_cfg()
        cfg["models"]["slow"] = {"cmd": h.fake_cmd(model="slow", load_delay_ms=800)}
        with h4.Daemon(cfg) as d:
            r = d.request("POST", "/api/models/load/slow", timeout=20)
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["msg"], "ok")
            self.assertEqual(doc["model"], "slow")
            self.assertGreaterEqual(doc["load_seconds"], 0.8, doc)
            run = {e["model"]: e for e in d.running()}
            self.assertEqual(run["slow"]["state"], "ready", run)
            self.assertEqual(run["slow"]["inFlight"], 0, "the load request was not released")
            pid = run["slow"]["pid"]
            # Loading a ready model (by alias, or a slash id percent-encoded) answers at once.
            r = d.request("POST", "/api/models/load/slow")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.running_models(), ["slow"])
            self.assertEqual(d.running()[0]["pid"], pid, "a ready model was restarted")
            r = d.request("POST", "/api/models/load/org%2Fmodel-x")
            self.assertEqual((r.status, r.json()["model"]), (200, "org/model-x"), r)
            r = d.request("POST", "/api/models/load/u1-alias")
            self.assertEqual((r.status, r.json()["model"]), (200, "u1"), r)
            # group "all" is exclusive (the default): loading it swapped `slow` out
            self.assertEqual(d.running_models(), ["org/model-x", "u1"])

            r = d.request("POST", "/api/models/load/nope")
            self.assertEqual((r.status, h4.err_code(r)), (404, "model_not_found"), r)
            r = d.request("GET", "/api/models/load/u2")
            self.assertEqual((r.status, r.headers.get("allow")), (405, "POST"), r)
            r = d.request("POST", "/api/models/load/")
            self.assertEqual(r.status, 404, r)
            self.assertNotIn("u2", d.running_models())

    def test_api_load_failure_and_client_gone(self):
        cfg = {"models": {"bad": {"cmd": h.fake_cmd(model="bad", crash_at_start=True)},
                          "slow": {"cmd": h.fake_cmd(model="slow", load_delay_ms=1500)}}}
        with h4.Daemon(cfg) as d:
            r = d.request("POST", "/api/models/load/bad", timeout=20)
            self.assertEqual(r.status, 502, r)
            self.assertIn("error", r.json())
            self.assertEqual(d.running()[0]["state"], "failed")
            # An explicit unload clears the failed state (the UI's Unload button on it).
            r = d.request("POST", "/api/models/unload/bad")
            self.assertEqual((r.status, r.body.strip()), (200, b"OK"), r)
            self.assertEqual(d.running(), [])
            # A client that gives up while its model loads: the load goes on, nothing leaks.
            with h.RawConn(d.port) as c:
                c.send(b"POST /api/models/load/slow HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 0\r\n\r\n")
                h.wait_until(lambda: "slow" in d.running_models(), 3, what="slow starting")

            def slow():
                return {e["model"]: e for e in d.running()}.get("slow", {})
            self.assertEqual(slow().get("state"), "starting", "the client left before the load")
            h.wait_until(lambda: slow().get("state") == "ready", 10, what="slow ready")
            self.assertEqual((slow()["inFlight"], slow()["queued"]), (0, 0))
            self.assertEqual(d.request("GET", "/health").status, 200)


def upstream_cfg():
    return {
        "models": {
            "a": {"cmd": h.fake_cmd(model="a"), "aliases": ["a-alias"]},
            "a/b": {"cmd": h.fake_cmd(model="ab")},
        },
    }


class UpstreamPassthrough(unittest.TestCase):
    def test_prefix_stripped_query_kept(self):
        with h4.Daemon(upstream_cfg()) as d:
            r = d.request("GET", "/upstream/a/echo/x?y=1&z=%2F")
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["method"], "GET")
            self.assertEqual(doc["path"], "/echo/x?y=1&z=%2F")
            self.assertEqual(d.running_models(), ["a"])
            # Any method, body intact.
            body = bytes(range(256)) * 1000
            r = d.request("PUT", "/upstream/a/echo/put-here", body=body,
                          headers={"Content-Type": "application/octet-stream", "X-Thing": "1"})
            doc = r.json()
            self.assertEqual((doc["method"], doc["path"]), ("PUT", "/echo/put-here"))
            self.assertEqual(doc["body_length"], len(body))
            self.assertEqual(doc["body_sha256"], h.sha256(body))
            self.assertEqual(doc["headers"].get("x-thing"), "1")
            r = d.request("DELETE", "/upstream/a/echo/d")
            self.assertEqual(r.json()["method"], "DELETE")
            # A body that names another model is not looked at.
            r = d.request("POST", "/upstream/a/echo/c", body=h.chat_body("a/b"))
            self.assertEqual(r.status, 200)
            self.assertEqual(d.running_models(), ["a"])
            self.assertEqual(d.starts("a"), 1)

    def test_hop_by_hop_fields_stay_behind(self):
        # Fields the client's Connection header names, and the hop-by-hop set, are not passed
        # on; with the usual "Connection: keep-alive" every other field is.
        with h4.Daemon(upstream_cfg()) as d:
            for connection, dropped in (("keep-alive, X-Secret", {"x-secret"}),
                                        ("Keep-Alive", set()), ("close", set())):
                with d.raw(timeout=15) as c:
                    c.send(b"GET /upstream/a/echo/h HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: %s\r\nX-Secret: 1\r\nX-Kept: 2\r\n"
                           b"Keep-Alive: timeout=5\r\nTE: trailers\r\n\r\n" % connection.encode())
                    r = c.read_response()
                self.assertEqual(r.status, 200, r)
                seen = r.json()["headers"]
                self.assertEqual(seen.get("x-kept"), "2", (connection, seen))
                for name in {"x-secret"} - dropped:
                    self.assertEqual(seen.get(name), "1", (connection, seen))
                for name in dropped | {"keep-alive", "te"}:
                    self.assertNotIn(name, seen, (connection, seen))
                self.assertEqual(seen.get("connection"), "keep-alive", seen)  # ours, upstream

    def test_longest_prefix(self):
        with h4.Daemon(upstream_cfg()) as d:
            r = d.request("GET", "/upstream/a/b/echo/x?q=2")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/echo/x?q=2")
            self.assertEqual(d.running_models(), ["a/b"])
            # "/upstream/a/bb/..." is model a with path /bb/... (a prefix only at a '/').
            r = d.request("GET", "/upstream/a/bx/echo")
            self.assertEqual(r.status, 404, r)  # the fake has no /bx/echo
            self.assertEqual(r.headers.get("server"), "fake-upstream")
            self.assertEqual(d.running_models(), ["a"])
            # An alias works as a prefix too.
            r = d.request("GET", "/upstream/a-alias/echo/al")
            self.assertEqual(r.json()["path"], "/echo/al")
            self.assertEqual(d.starts("a"), 1)

    def test_unknown_model(self):
        with h4.Daemon(upstream_cfg()) as d:
            for p in ("/upstream/nope/echo", "/upstream/ab/echo", "/upstream/"):
                r = d.request("GET", p)
                self.assertEqual(r.status, 404, (p, r))
                self.assertEqual(h4.err_code(r), "model_not_found", p)
            self.assertEqual(d.running(), [])

    def test_bare_model_redirects(self):
        with h4.Daemon(upstream_cfg()) as d:
            for method, status in (("GET", 301), ("HEAD", 301), ("POST", 308), ("PUT", 308)):
                r = d.request(method, "/upstream/a", body=b"x" if method in ("POST", "PUT") else None)
                self.assertEqual(r.status, status, (method, r))
                self.assertEqual(r.headers.get("location"), "/upstream/a/", method)
            r = d.request("GET", "/upstream/a/b?x=1")
            self.assertEqual(r.status, 301, r)
            self.assertEqual(r.headers.get("location"), "/upstream/a/b/?x=1")
            r = d.request("GET", "/upstream/a-alias")
            self.assertEqual((r.status, r.headers.get("location")), (301, "/upstream/a-alias/"))
            self.assertEqual(d.running(), [], "a redirect starts nothing")
            # "/upstream/a/" itself is the upstream's root.
            r = d.request("GET", "/upstream/a/")
            self.assertEqual(r.headers.get("server"), "fake-upstream", r)
            self.assertEqual(d.running_models(), ["a"])

    def test_static_asset_does_not_start_model(self):
        with h4.Daemon(upstream_cfg()) as d:
            for p in ("/upstream/a/echo/app.js", "/upstream/a/echo/x.json", "/upstream/a/s.css",
                      "/upstream/a/i.png", "/upstream/a/favicon.ico", "/upstream/a/robots.txt"):
                r = d.request("GET", p)
                self.assertEqual(r.status, 409, (p, r))
                self.assertEqual(h4.err_code(r), "model_not_ready", p)
            time.sleep(0.3)
            self.assertEqual(d.running(), [])
            self.assertEqual(d.starts(), 0)
            # Once the model runs, the same path is proxied.
            self.assertEqual(d.request("GET", "/upstream/a/echo/start").status, 200)
            r = d.request("GET", "/upstream/a/echo/app.js?v=3")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/echo/app.js?v=3")
            # Another model's asset while `a` runs: still 409, and `a` keeps running.
            r = d.request("GET", "/upstream/a/b/echo/app.js")
            self.assertEqual(r.status, 409, r)
            self.assertEqual(d.running_models(), ["a"])
            self.assertEqual(d.starts(), 1)


    def test_percent_encoded_ids(self):
        with h4.Daemon(upstream_cfg()) as d:
            for p in ("/upstream/a%2Fb/echo/x", "/upstream/a%2fb/echo/x"):
                r = d.request("GET", p + "?q=%2F")
                self.assertEqual(r.status, 200, (p, r))
                self.assertEqual(r.json()["path"], "/echo/x?q=%2F")
            self.assertEqual(d.running_models(), ["a/b"])
            # The rest of the path stays encoded as the client sent it.
            r = d.request("GET", "/upstream/a%2Fb/echo/x%2Fy")
            self.assertEqual(r.json()["path"], "/echo/x%2Fy")

    def test_upstream_index_and_wol_health(self):
        cfg = upstream_cfg()
        cfg["apiKeys"] = ["k1"]
        with h4.Daemon(cfg) as d:
            auth = {"Authorization": "Bearer k1"}
            r = d.request("GET", "/upstream", headers=auth)
            self.assertEqual((r.status, r.headers.get("location")), (302, "ui/"))
            self.assertEqual(d.request("POST", "/upstream", headers=auth).status, 405)
            # wake-on-LAN proxies poll it without a key, and it does not fill the log.
            for _ in range(3):
                r = d.request("GET", "/wol-health")
                self.assertEqual((r.status, r.body), (200, b"OK"))
            self.assertEqual(d.request("GET", "/health").status, 200)
            h.wait_until(lambda: '"GET /health ' in d.log(), 5, what="/health logged")
            self.assertNotIn("/wol-health", d.log())


class ComfyUi(unittest.TestCase):
    """/comfyui/ serves the comfyui_auto model with the prefix stripped; only the root starts
    it, and its WebSocket never does (see test_websockets.py)."""

    def test_redirect_root_and_paths(self):
        cfg = {"models": {"comfyui_auto": h4.echo_model(fake_model="comfy")}}
        with h4.Daemon(cfg) as d:
            for method, status in (("GET", 301), ("HEAD", 301), ("POST", 308)):
                r = d.request(method, "/comfyui?tab=2", body=b"x" if method == "POST" else None)
                self.assertEqual((r.status, r.headers.get("location")),
                                 (status, "comfyui/?tab=2"), method)
            r = d.request("GET", "/comfyui/api/queue")
            self.assertEqual(r.status, 409, r)
            self.assertEqual(r.json()["error"]["message"],
                             "model comfyui_auto is not loaded; only /comfyui/ can start it")
            self.assertEqual(d.starts(), 0)
            r = d.request("GET", "/comfyui/?x=1")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/echo/?x=1")
            r = d.request("POST", "/comfyui/api/prompt", body={"prompt": {}})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/echo/api/prompt")
            self.assertEqual(d.starts("comfyui_auto"), 1)

    def test_not_configured(self):
        with h4.Daemon(upstream_cfg()) as d:
            r = d.request("GET", "/comfyui/")
            self.assertEqual(r.status, 404, r)
            self.assertEqual(r.json()["error"]["message"], "local model comfyui_auto not found")


class CorsAndErrors(unittest.TestCase):
    def test_preflight(self):
        with h4.Daemon(echo_cfg()) as d:
            for path in ("/v1/chat/completions", "/v1/models", "/no/such/route", "/upstream/e/x"):
                r = d.request("OPTIONS", path, headers={
                    "Origin": "http://ui.example", "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "Content-Type, X-Custom-Thing"})
                self.assertEqual(r.status, 204, (path, r))
                self.assertEqual(r.body, b"")
                self.assertEqual(r.headers.get("access-control-allow-origin"), "*")
                self.assertEqual(r.headers.get("access-control-allow-headers"),
                                 "Content-Type, X-Custom-Thing")
                self.assertEqual(r.headers.get("access-control-max-age"), "86400")
                methods = r.headers.get("access-control-allow-methods", "")
                for m in ("GET", "POST", "OPTIONS"):
                    self.assertIn(m, methods)
            # Without Access-Control-Request-Headers: a default list.
            r = d.request("OPTIONS", "/v1/models", headers={"Origin": "http://x"})
            self.assertEqual(r.status, 204)
            self.assertIn("Content-Type", r.headers.get("access-control-allow-headers", ""))
            self.assertEqual(d.running(), [], "a preflight starts nothing")

    def test_origin_gets_allow_origin(self):
        with h4.Daemon(echo_cfg()) as d:
            o = {"Origin": "http://ui.example"}
            for method, path, body in (("GET", "/v1/models", None), ("GET", "/health", None),
                                       ("GET", "/running", None), ("GET", "/nope", None),
                                       ("GET", "/v1/chat/completions", None),
                                       ("POST", "/v1/chat/completions", h.chat_body("e")),
                                       ("POST", "/v1/chat/completions", h.chat_body("zz")),
                                       ("GET", "/upstream/e/echo/o", None)):
                r = d.request(method, path, body=body, headers=o)
                self.assertEqual(r.headers.get("access-control-allow-origin"), "*",
                                 (method, path, r))

    def test_405_and_404(self):
        with h4.Daemon(echo_cfg()) as d:
            cases = [("GET", "/v1/chat/completions", "POST"), ("PUT", "/v1/embeddings", "POST"),
                     ("POST", "/v1/models", "GET, HEAD"), ("DELETE", "/running", "GET, HEAD"),
                     ("POST", "/health", "GET, HEAD"), ("GET", "/api/models/unload", "POST"),
                     ("POST", "/logs", "GET, HEAD"), ("POST", "/logs/stream/proxy", "GET, HEAD"),
                     ("DELETE", "/v1/audio/voices", "GET, HEAD, POST"),
                     ("POST", "/props", "GET, HEAD")]
            for method, path, allow in cases:
                r = d.request(method, path, body=b"{}" if method in ("POST", "PUT") else None)
                self.assertEqual(r.status, 405, (method, path, r))
                self.assertEqual(h4.err_code(r), "method_not_allowed", (method, path))
                self.assertEqual(r.headers.get("allow"), allow, (method, path))
            for method, path in (("GET", "/nope"), ("POST", "/v1/chat/completion"),
                                 ("GET", "/v1"), ("GET", "/v1/models/extra")):
                r = d.request(method, path, body=b"{}" if method == "POST" else None)
                self.assertEqual(r.status, 404, (method, path, r))
                self.assertEqual(h4.err_code(r), "not_found", (method, path))
            self.assertEqual(d.running(), [])


if __name__ == "__main__":
    h.main()
