#!/usr/bin/env python3
"""Several hosts behind one endpoint (README.md, "Several hosts"): llama-swap on three hosts
(gpu1: llama-a; gpu2: llama-b, llama-c; gpu3: llama-b), each in a network namespace of its
own, and a front host running HAProxy with contrib/haproxy/llama-swap.cfg + models.map, or
nginx with contrib/nginx/multi-host.conf, as shipped (see multihost.py). Through the front:
every model is served by its host, plain and streamed (tokens arrive as generated), by the
JSON body's model (HAProxy) or by path, header and query (both); when gpu2's daemon is
killed, llama-b goes on from gpu3 at once and llama-c fails fast with an explicit error;
a host taken off the network gives an explicit error, never a hung request. The third way,
llama-swap itself in front with `peers`, routes by name (ViaPeers). Needs root; skips,
saying why, elsewhere."""

import contextlib
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import multihost as mh  # noqa: E402

CHAT = "/v1/chat/completions"
# A hung request fails the test instead of hanging it: every call has a client timeout,
# generous next to what an answer takes here (well under a second; a few seconds while a
# host is being given up on).
TIMEOUT = 30
STREAM_TOKENS, STREAM_TPS = 12, 10.0


def served_b(cluster):
    """Which of gpu2 and gpu3 started llama-b (after one request: exactly one did)."""
    hosts = [n for n in ("gpu2", "gpu3") if cluster.starts(n, "llama-b")]
    assert len(hosts) == 1, hosts
    return hosts[0]


class FrontTests:
    """The tests every front passes. A subclass sets `front` (a multihost.Front class) and
    `routes_by_body` (whether the front reads the model from a JSON body)."""

    front = None
    routes_by_body = True

    def setUp(self):
        reason = mh.missing() or self.front.missing()
        if reason:
            self.skipTest(reason)
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        self.cluster = stack.enter_context(mh.Cluster())
        self.fr = stack.enter_context(self.front(self.cluster))

    def restart(self, host, **flags):
        """cluster.restart, then until the front sends requests to the host again."""
        self.cluster.restart(host, **flags)
        self.fr.wait_serving(host)

    # -- requests through the front -------------------------------------------------------------
    def route(self, model):
        """What a client adds so that this front can find the model."""
        return {} if self.routes_by_body else {"X-Model": model}

    def chat(self, model, timeout=TIMEOUT):
        return self.fr.request("POST", CHAT, h.chat_body(model), self.route(model), timeout)

    def stream(self, model, into=None):
        return self.fr.stream(CHAT, h.chat_body(model, stream=True), self.route(model), TIMEOUT,
                              into)

    def assert_served(self, r, model, hosts):
        """r is a 200 for model from one of hosts; returns the host."""
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["request_model"], model)
        host = mh.served_by(doc)
        self.assertIn(host, hosts, r)
        return host

    def assert_explicit_error(self, r):
        """An error the front or a host answered with (not a hang, not a cut connection):
        5xx with an OpenAI-style JSON error."""
        self.assertGreaterEqual(r.status, 500, r)
        self.assertLess(r.status, 600, r)
        self.assertIn("error", r.json(), r)

    # -- the tests ------------------------------------------------------------------------------
    def test_each_model_served_by_its_host(self):
        self.assert_served(self.chat("llama-a"), "llama-a", ["gpu1"])
        b = [self.assert_served(self.chat("llama-b"), "llama-b", ["gpu2", "gpu3"])
             for _ in range(4)]
        self.assert_served(self.chat("llama-c"), "llama-c", ["gpu2"])
        h.diag("llama-b served by %s" % b)
        # Both hosts of llama-b take requests (least busy first: here, in turn).
        self.assertEqual(sorted(set(b)), ["gpu2", "gpu3"])
        # The hosts started exactly their own models.
        self.assertEqual(self.cluster.started_models("gpu1"), ["llama-a"])
        self.assertEqual(self.cluster.started_models("gpu2"), ["llama-b", "llama-c"])
        self.assertEqual(self.cluster.started_models("gpu3"), ["llama-b"])
        # No model: the default host (gpu1) answers.
        r = self.fr.request("GET", "/v1/models", timeout=TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([m["id"] for m in r.json()["data"]], ["llama-a"])
        self.assertEqual(self.fr.request("GET", "/health", timeout=TIMEOUT).status, 200)

    def test_streams_as_generated(self):
        # Slower replies than elsewhere (STREAM_TOKENS at STREAM_TPS), so that holding
        # tokens back shows. One stream at a time: with others beside it, HAProxy's
        # holding back (below) does not always show.
        for host in ("gpu1", "gpu2"):
            self.restart(host, tokens=STREAM_TOKENS, tps=STREAM_TPS)
        for model, host in (("llama-a", "gpu1"), ("llama-b", None), ("llama-c", "gpu2")):
            s = self.stream(model)
            self.assertEqual(s.status, 200, s.lines[:5])
            self.assertIsNone(s.error)
            self.assertTrue(s.complete)
            self.assertTrue(s.headers.get("content-type", "").startswith("text/event-stream"))
            data = s.data_lines()
            self.assertEqual(data[-1][1], b"[DONE]")
            events = [(t, json.loads(x)) for t, x in data[:-1]]
            served = {mh.served_by(e) for _, e in events}
            self.assertEqual(len(served), 1, served)
            self.assertEqual(served, {host or served_b(self.cluster)})
            tokens = [t for t, e in events if e["choices"][0]["delta"].get("content")]
            self.assertEqual(len(tokens), STREAM_TOKENS)
            # The upstream spaces the tokens 1/STREAM_TPS s apart. Buffered, they would
            # arrive together at the end; held back (HAProxy without http-no-delay), a few
            # at a time; streamed, each on its own, spread over (about) the generation time
            # (a slow machine only widens the gap). Tokens that arrive together (one
            # network read, parsed chunk by chunk) are a burst: one whose arrival follows
            # the previous one's by less than a quarter of their spacing joins its burst.
            generation = (STREAM_TOKENS - 1) / STREAM_TPS
            spread = tokens[-1] - tokens[0]
            bursts = 1 + sum(1 for a, b in zip(tokens, tokens[1:]) if b - a > 0.25 / STREAM_TPS)
            h.diag("%s from %s: %d tokens in %d bursts over %.3f s (generated over >= %.3f s)"
                   % (model, served, len(tokens), bursts, spread, generation))
            self.assertGreaterEqual(bursts, STREAM_TOKENS // 2, "tokens held back: buffered")
            self.assertGreater(spread, 0.5 * generation, "tokens arrived in a burst: buffered")

    def test_by_path_header_and_query(self):
        # /upstream/<model>/...: the model's own server (the fake lists itself there)
        r = self.fr.request("GET", "/upstream/llama-c/v1/models", timeout=TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["data"][0]["id"], "llama-c@gpu2")
        r = self.fr.request("GET", "/upstream/llama-a/v1/models", timeout=TIMEOUT)
        self.assertEqual(r.json()["data"][0]["id"], "llama-a@gpu1")
        # X-Model (e.g. for a multipart upload, whose model no front reads)
        body, ctype = h.multipart({"model": "llama-c", "file": ("a.wav", b"RIFF" * 100)})
        r = self.fr.request("POST", "/v1/audio/transcriptions", body,
                            {"Content-Type": ctype, "X-Model": "llama-c"}, TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["model"], "llama-c@gpu2")
        # ?model= (llama-swap reads it too when the body has none)
        r = self.fr.request("POST", CHAT + "?model=llama-c",
                            {"messages": [{"role": "user", "content": "hi"}]}, timeout=TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(mh.served_by(r.json()), "gpu2")
        # The JSON body alone
        r = self.fr.request("POST", CHAT, h.chat_body("llama-c"), timeout=TIMEOUT)
        if self.routes_by_body:
            self.assert_served(r, "llama-c", ["gpu2"])
        else:
            # The documented limit: the request goes to the default host (gpu1), which does
            # not have the model.
            self.assertEqual(r.status, 404, r)
            self.assertEqual(r.json()["error"]["code"], "model_not_found")

    def test_failover_when_a_host_dies(self):
        for _ in range(2):
            self.assert_served(self.chat("llama-b"), "llama-b", ["gpu2", "gpu3"])
        self.assertEqual(self.cluster.starts("gpu2", "llama-b"), 1)
        self.assertEqual(self.cluster.starts("gpu3", "llama-b"), 1)
        self.cluster.kill("gpu2")
        t0 = time.monotonic()
        # Sequential requests, then concurrent ones: every one is answered; none is lost
        # in a hang. A front may answer an explicit 5xx while it gives up on gpu2, never
        # more than that.
        answers = [self.chat("llama-b") for _ in range(4)]
        calls = [h.Call(lambda: self.chat("llama-b")) for _ in range(4)]
        answers += [c.get(TIMEOUT + 5) for c in calls]
        statuses = [r.status for r in answers]
        h.diag("llama-b after gpu2 died: %s in %.2f s" % (statuses, time.monotonic() - t0))
        for r in answers:
            if r.status == 200:
                self.assert_served(r, "llama-b", ["gpu3"])
            else:
                self.assert_explicit_error(r)
        # ... and it is over at once: every request after the first few is served by gpu3.
        for r in answers[2:]:
            self.assert_served(r, "llama-b", ["gpu3"])
        s = self.stream("llama-b")
        self.assertTrue(s.complete and s.status == 200, s.lines[:5])
        self.assertEqual(mh.served_by(json.loads(s.data_lines()[0][1])), "gpu3")
        # llama-c had gpu2 only: an explicit error, fast (a client timeout bounds it).
        for _ in range(2):
            t = time.monotonic()
            r = self.chat("llama-c")
            h.diag("llama-c without gpu2: %d in %.2f s" % (r.status, time.monotonic() - t))
            self.assert_explicit_error(r)

    def test_host_off_the_network(self):
        # gpu1 generates slowly now (40 s a reply): a stream is in flight when it goes.
        self.restart("gpu1", tokens=400, tps=10)
        live = h.Stream()
        stream = h.Call(lambda: self.stream("llama-a", into=live))
        h.wait_until(lambda: len(live.data_lines()) >= 2, 10, interval=0.02,
                     what="tokens of a stream from gpu1")
        # gpu1 vanishes: no refusal, no reset, packets to it go nowhere.
        self.cluster.unplug("gpu1")
        for _ in range(2):
            t = time.monotonic()
            r = self.chat("llama-a")
            h.diag("llama-a with gpu1 off the network: %d in %.2f s"
                   % (r.status, time.monotonic() - t))
            self.assert_explicit_error(r)
        # Requests without a model go to the next host; the other models are unaffected.
        r = self.fr.request("GET", "/v1/models", timeout=TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(m["id"] for m in r.json()["data"]), ["llama-b", "llama-c"])
        self.assert_served(self.chat("llama-b"), "llama-b", ["gpu2", "gpu3"])
        # The stream from gpu1 was ended by the front (TCP keepalive), not left waiting
        # for the front's read timeout (600 s; the client's TIMEOUT would end it first).
        s = stream.get(TIMEOUT + 5)
        self.assertEqual(s.status, 200)
        h.diag("the stream in flight: %d data lines, then %r, after %.2f s"
               % (len(s.data_lines()), s.error, stream.finished - stream.started))
        self.assertFalse(s.complete, "the stream was not cut")
        self.assertNotIsInstance(s.error, TimeoutError, "the stream was left hanging")


class ViaHAProxy(FrontTests, unittest.TestCase):
    """contrib/haproxy/llama-swap.cfg: routes by the JSON body's model."""

    front = mh.HAProxyFront
    routes_by_body = True

    def test_model_beyond_the_buffer(self):
        # HAProxy reads the model from the first tune.bufsize (256 kB) of the body: a long
        # conversation before "model" hides it, and the request goes to the default host.
        long = [{"role": "user", "content": "x" * 300000}]
        r = self.fr.request("POST", CHAT, {"model": "llama-c", "messages": long}, timeout=TIMEOUT)
        self.assert_served(r, "llama-c", ["gpu2"])
        r = self.fr.request("POST", CHAT, {"messages": long, "model": "llama-c"}, timeout=TIMEOUT)
        self.assertEqual(r.status, 404, r)  # from gpu1
        r = self.fr.request("POST", CHAT, {"messages": long, "model": "llama-c"},
                            {"X-Model": "llama-c"}, TIMEOUT)
        self.assert_served(r, "llama-c", ["gpu2"])

    def test_health_checks_bring_a_host_back(self):
        self.assert_served(self.chat("llama-c"), "llama-c", ["gpu2"])
        self.cluster.kill("gpu2")
        self.assert_explicit_error(self.chat("llama-c"))
        # The checks (every 2 s, up after 2 successes) see gpu2 again once it is back.
        self.cluster.restart("gpu2")
        t0 = time.monotonic()
        h.wait_until(lambda: self.chat("llama-c").status == 200, 20, interval=0.5,
                     what="llama-c served again")
        h.diag("gpu2 back in service %.2f s after its restart" % (time.monotonic() - t0))
        self.assert_served(self.chat("llama-c"), "llama-c", ["gpu2"])
        self.assertEqual(self.cluster.started_models("gpu2"), ["llama-c"])


class ViaNginx(FrontTests, unittest.TestCase):
    """contrib/nginx/multi-host.conf: routes by path, X-Model or ?model=, not by the body."""

    front = mh.NginxFront
    routes_by_body = False

    def tearDown(self):
        if hasattr(self, "fr"):
            # nginx's own errors: failed connections to a dead host, and the keepalive
            # timeout of the one that vanished, are [error]s the failover tests cause;
            # anything else is not expected.
            expected = ("connect() failed", "no live upstreams", "upstream timed out",
                        "recv() failed (110: Connection timed out) while reading upstream")
            unexpected = [l for l in self.fr.problems() if not any(e in l for e in expected)]
            self.assertEqual(unexpected, [], "nginx logged errors")


class ViaPeers(unittest.TestCase):
    """The third way: llama-swap itself in front, the hosts as its `peers`. Peers route by
    name, not by health: a model two hosts serve is named by host (gpu2/llama-b), and a
    host that is gone gives an explicit error naming it."""

    def setUp(self):
        reason = mh.missing() or mh.PeersFront.missing()
        if reason:
            self.skipTest(reason)
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        self.cluster = stack.enter_context(mh.Cluster())
        self.fr = stack.enter_context(mh.PeersFront(self.cluster))

    def chat(self, model):
        return self.fr.request("POST", CHAT, h.chat_body(model), timeout=TIMEOUT)

    def assert_served(self, r, sent_as, host):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["request_model"], sent_as, "the host gets its own name")
        self.assertEqual(mh.served_by(r.json()), host, r)

    def assert_error_naming(self, r, peer):
        self.assertIn(r.status, (502, 504), r)
        self.assertIn("peer '%s'" % peer, r.json()["error"]["message"], r)

    def test_each_model_through_its_peer(self):
        self.assert_served(self.chat("llama-a"), "llama-a", "gpu1")  # one peer has it
        self.assert_served(self.chat("gpu1/llama-a"), "llama-a", "gpu1")
        self.assert_served(self.chat("llama-c"), "llama-c", "gpu2")
        self.assert_served(self.chat("gpu2/llama-b"), "llama-b", "gpu2")
        self.assert_served(self.chat("gpu3/llama-b"), "llama-b", "gpu3")
        r = self.chat("llama-b")
        self.assertEqual(r.status, 404, r)
        self.assertIn("several peers; name one of: gpu2/llama-b gpu3/llama-b",
                      r.json()["error"]["message"])
        ids = sorted(m["id"] for m in self.fr.request("GET", "/v1/models").json()["data"])
        self.assertEqual(ids, ["gpu1/llama-a", "gpu2/llama-b", "gpu2/llama-c", "gpu3/llama-b"])
        # /upstream/<peer>/<model>/<path>: the peer's own <path>; here gpu2's daemon, whose
        # /upstream/llama-c/ is its model's server (the fake lists itself there).
        r = self.fr.request("GET", "/upstream/gpu2/llama-c/v1/models", timeout=TIMEOUT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(m["id"] for m in r.json()["data"]), ["llama-b", "llama-c"])
        r = self.fr.request("GET", "/upstream/gpu2/llama-c/upstream/llama-c/v1/models",
                            timeout=TIMEOUT)
        self.assertEqual(r.json()["data"][0]["id"], "llama-c@gpu2")
        self.assertEqual(self.cluster.started_models("gpu3"), ["llama-b"])

    def test_streams_as_generated(self):
        self.cluster.restart("gpu2", tokens=STREAM_TOKENS, tps=STREAM_TPS)
        s = self.fr.stream(CHAT, h.chat_body("llama-c", stream=True), None, TIMEOUT)
        self.assertTrue(s.complete and s.status == 200, s.lines[:5])
        events = [json.loads(x) for _, x in s.data_lines()[:-1]]
        self.assertEqual({mh.served_by(e) for e in events}, {"gpu2"})
        tokens = [t for (t, _), e in zip(s.data_lines(), events)
                  if e["choices"][0]["delta"].get("content")]
        self.assertEqual(len(tokens), STREAM_TOKENS)
        generation = (STREAM_TOKENS - 1) / STREAM_TPS
        self.assertGreater(tokens[-1] - tokens[0], 0.5 * generation, "buffered")

    def test_host_killed_or_off_the_network(self):
        self.assert_served(self.chat("llama-c"), "llama-c", "gpu2")
        self.cluster.kill("gpu2")
        self.assert_error_naming(self.chat("llama-c"), "gpu2")
        self.assert_served(self.chat("gpu3/llama-b"), "llama-b", "gpu3")
        # gpu1 vanishes with a stream in flight: the front's keepalive probes end it, and new
        # requests fail on the connect timeout, each with an error naming the peer.
        self.cluster.restart("gpu1", tokens=400, tps=10)
        live = h.Stream()
        stream = h.Call(lambda: self.fr.stream(CHAT, h.chat_body("llama-a", stream=True),
                                               None, TIMEOUT, live))
        h.wait_until(lambda: len(live.data_lines()) >= 2, 10, interval=0.02,
                     what="tokens of a stream from gpu1")
        self.cluster.unplug("gpu1")
        t = time.monotonic()
        self.assert_error_naming(self.chat("llama-a"), "gpu1")
        h.diag("llama-a with gpu1 off the network: an error in %.2f s" % (time.monotonic() - t))
        self.assert_served(self.chat("gpu3/llama-b"), "llama-b", "gpu3")
        s = stream.get(TIMEOUT + 5)
        h.diag("the stream in flight: %d data lines, then %r, after %.2f s"
               % (len(s.data_lines()), s.error, stream.finished - stream.started))
        self.assertFalse(s.complete, "the stream was not cut")
        self.assertNotIsInstance(s.error, TimeoutError, "the stream was left hanging")
        self.assertEqual(self.fr.request("GET", "/health").status, 200)


if __name__ == "__main__":
    mh.main()
