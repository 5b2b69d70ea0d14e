#!/usr/bin/env python3
"""A real llama-server's ways, played by the fake upstream: a fixed HTTP thread pool that keeps
a thread on an idle keep-alive connection (no 5-second stalls through us), binding without
SO_REUSEADDR (ports that work, a start retried on another port), prompt-cache token counts,
a response cut by the upstream counted as a failure, requests refused by the daemon counted,
and an upstream that ends by SIGABRT on SIGTERM."""

import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_metrics import parse_exposition, value  # noqa: E402

# A keep-alive hold far longer than any request here takes: a request that waits behind one
# is seen as a client timeout, not as a slow figure.
LONG_HOLD_MS = 60000
CLIENT_TIMEOUT = 25


def llama_cmd(model, **flags):
    """The fake as llama-server: 3 HTTP threads, 1 slot, its log lines, no SO_REUSEADDR, no
    TCP_NODELAY; flags override."""
    base = dict(model=model, http_threads=3, parallel=1, keepalive_ms=LONG_HOLD_MS,
                llama_log=True, no_reuseaddr=True, no_nodelay=True)
    base.update(flags)
    return h.fake_cmd(**base)


def concurrent_chats(d, model, n, stream=False, delay_ms=0):
    """n chat requests at once, each on its own client connection, kept open afterwards like a
    pooling client would; each answered after delay_ms (0: at once); returns
    [(status, seconds)] in completion order."""
    path = "/v1/chat/completions" + ("?delay_ms=%d" % delay_ms if delay_ms else "")
    results = []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def one():
        start.wait()
        t0 = time.monotonic()
        try:
            r = h.request(d.port, "POST", path,
                          h.chat_body(model, stream=stream), timeout=CLIENT_TIMEOUT)
            status = r.status
        except (OSError, socket.timeout) as e:
            status = "error: %r" % e
        with lock:
            results.append((status, time.monotonic() - t0))

    threads = [threading.Thread(target=one, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(CLIENT_TIMEOUT + 10)
    return results


def scrape(d):
    r = d.request("GET", "/metrics")
    assert r.status == 200, r
    return parse_exposition(r.body.decode())


def running_entry(d, model):
    return next(e for e in d.running() if e["model"] == model)


class ThreadPoolUpstream(unittest.TestCase):
    """llama-server holds an HTTP thread on each keep-alive connection for 5 s (here 60 s)."""

    def check_no_stall(self, cfg, model, n, expect_cap):
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat(model, timeout=30).status, 200)  # loaded, warm
            results = concurrent_chats(d, model, n)
            statuses = [s for s, _ in results]
            h.diag("%d requests, slowest %.2f s" % (n, max(t for _, t in results)))
            self.assertEqual(statuses, [200] * n,
                             "a request waited on a connection the upstream does not serve")
            conns = running_entry(d, model)["upstreamConnections"]
            self.assertEqual(conns["cap"], expect_cap, conns)
            self.assertLessEqual(conns["open"], max(expect_cap, 1) if expect_cap else n, conns)
            self.assertEqual(conns["waiting"], 0, conns)

    def test_cap_learned_from_its_start_up_line(self):
        # "http threads: 4": 2 connections for requests, 2 left for /health and /metrics.
        cfg = {"models": {"m": {"cmd": llama_cmd("m", http_threads=4, parallel=2),
                                "concurrencyLimit": 200}}}
        self.check_no_stall(cfg, "m", 20, 2)

    def test_hundred_requests_through_three_threads(self):
        cfg = {"models": {"m": {"cmd": llama_cmd("m"), "concurrencyLimit": 200}}}
        self.check_no_stall(cfg, "m", 100, 1)

    def test_streamed_requests_too(self):
        cfg = {"models": {"m": {"cmd": llama_cmd("m", tokens=5, tps=200),
                                "concurrencyLimit": 200}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 200)
            results = concurrent_chats(d, "m", 20, stream=True)
            self.assertEqual([s for s, _ in results], [200] * 20)

    def test_explicit_cap(self):
        # A server that does not print its pool size (whisper.cpp's, say): a fixed cap.
        cfg = {"models": {"m": {"cmd": llama_cmd("m", llama_log=False), "concurrencyLimit": 200,
                                "upstreamConnections": 1}}}
        self.check_no_stall(cfg, "m", 20, 1)

    def test_unknown_pool_size_idle_connections_make_way(self):
        # No start-up line, no cap: idle connections are closed while a new one goes
        # unanswered, so the held threads take the waiting connections.
        cfg = {"models": {"m": {"cmd": llama_cmd("m", llama_log=False, parallel=0),
                                "concurrencyLimit": 200}}}
        self.check_no_stall(cfg, "m", 20, 0)

    def test_a_server_that_takes_every_connection_gets_them(self):
        """vLLM-like (a connection per request, as many as come): `auto` without a start-up
        line sets no cap, so 60 requests in flight use 60 connections at once."""
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m"), "concurrencyLimit": 200}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 200)
            n = 60
            calls = [h.Call(lambda: d.request("POST", "/v1/chat/completions?delay_ms=1500",
                                              h.chat_body("m"), timeout=CLIENT_TIMEOUT))
                     for _ in range(n)]
            peak = h.wait_until(
                lambda: (lambda c: c["open"] if c["open"] >= n else 0)(
                    running_entry(d, "m")["upstreamConnections"]), 20, interval=0.02,
                what="%d connections open at once" % n)
            self.assertEqual([c.get(CLIENT_TIMEOUT).status for c in calls], [200] * n)
            conns = running_entry(d, "m")["upstreamConnections"]
            self.assertEqual((conns["cap"], conns["waiting"]), (0, 0), conns)
            h.diag("peak open connections %d" % peak)

    def test_the_stall_is_real_without_a_cap(self):
        """The control: with `unlimited` (the original's behaviour) the same load waits for the
        keep-alive hold, here 2 s; the fake reproduces llama-server's stall."""
        hold_ms = 2000
        cfg = {"models": {"m": {"cmd": llama_cmd("m", keepalive_ms=hold_ms, parallel=0),
                                "concurrencyLimit": 200, "upstreamConnections": "unlimited"}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 200)
            # Answers that take a while, so the 20 requests are surely in flight together
            # (answered at once, a fast enough daemon can pass them over 3 pooled
            # connections one after another, and nothing stalls).
            results = concurrent_chats(d, "m", 20, delay_ms=200)
            self.assertEqual([s for s, _ in results], [200] * 20)
            slowest = max(t for _, t in results)
            h.diag("slowest request %.2f s (hold %.1f s)" % (slowest, hold_ms / 1000))
            self.assertGreaterEqual(slowest, hold_ms / 1000 * 0.95,
                                    "no request waited for a held thread: the fake does not "
                                    "reproduce the stall, and the tests above prove nothing")


class Ports(unittest.TestCase):
    def hold_port_in_time_wait(self):
        """A port with a TIME-WAIT connection on it (the server side closed first), free for a
        bind with SO_REUSEADDR, busy for one without."""
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        port = lst.getsockname()[1]
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = lst.accept()
        s.close()
        time.sleep(0.05)
        c.close()
        lst.close()
        time.sleep(0.05)
        probe = socket.socket()
        try:
            probe.bind(("0.0.0.0", port))
            self.skipTest("no TIME-WAIT conflict on this kernel")
        except OSError:
            pass
        finally:
            probe.close()
        return port

    def test_port_in_time_wait_is_not_handed_out(self):
        port = self.hold_port_in_time_wait()
        cfg = {"startPort": port, "models": {"m": {"cmd": llama_cmd("m")}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(d.starts("m"), 1, d.log())
            proxy = running_entry(d, "m")["proxy"]
            self.assertNotIn(":%d" % port, proxy, "the TIME-WAIT port was handed out")

    def test_port_held_without_reuseaddr_is_not_handed_out(self):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))  # bound, not listening, no SO_REUSEADDR
        port = holder.getsockname()[1]
        try:
            cfg = {"startPort": port, "models": {"m": {"cmd": llama_cmd("m")}}}
            with h.Daemon(cfg) as d:
                self.assertEqual(d.chat("m", timeout=30).status, 200)
                self.assertEqual(d.starts("m"), 1, d.log())
        finally:
            holder.close()

    def test_lost_bind_race_is_retried_on_another_port(self):
        tmp = tempfile.mkdtemp(prefix="llama-swap-bind-")
        self.addCleanup(shutil.rmtree, tmp, True)
        marker = os.path.join(tmp, "bind-failed")
        cfg = {"models": {"m": {"cmd": llama_cmd("m", bind_fail_once=marker)}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, "the request that started it still succeeds: %r" % r)
            self.assertEqual(d.starts("m"), 2, d.log())
            log = d.log()
            self.assertRegex(log, r"model m: exited before it was ready \(exit status 1\), "
                                  r"having said it could not bind port (\d+); starting it again "
                                  r"on another port \(attempt 2 of 3\)")
            failed = int(re.search(r"could not bind port (\d+)", log).group(1))
            self.assertNotIn(":%d" % failed, running_entry(d, "m")["proxy"])

    def test_bind_failures_are_bounded(self):
        cfg = {"models": {"m": {"cmd": llama_cmd("m", bind_fail_always=True)}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 502, r)
            self.assertEqual(r.json()["error"]["code"], "model_start_failed")
            self.assertIn("couldn't bind HTTP server socket", r.json()["error"]["message"])
            self.assertEqual(d.starts("m"), 3, d.log())
            for n in (2, 3):
                self.assertIn("(attempt %d of 3)" % n, d.log())
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_other_early_exit_is_retried_once(self):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", crash_at_start=True)}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 502)
            self.assertEqual(d.starts("m"), 2, d.log())
            self.assertIn("(attempt 2 of 2)", d.log())

    def test_fixed_port_is_not_retried(self):
        # The user chose the port: another one would not be where `proxy` points.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", crash_at_start=True).replace(
            "${PORT}", str(port)), "proxy": "http://127.0.0.1:%d" % port}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 502)
            self.assertEqual(d.starts("m"), 1, d.log())


class TokenCounts(unittest.TestCase):
    PROMPT = " ".join("w%d" % i for i in range(29))  # the fake counts words: 29 tokens

    def chat_twice(self, d, stream):
        body = h.chat_body("m", stream=stream)
        body["messages"] = [{"role": "user", "content": self.PROMPT}]
        for _ in range(2):
            if stream:
                s = h.stream_request(d.port, "/v1/chat/completions", body)
                self.assertTrue(s.status == 200 and s.complete, (s.status, s.error))
            else:
                r = d.request("POST", "/v1/chat/completions", body)
                self.assertEqual(r.status, 200, r)
        doc = d.request("GET", "/api/metrics/activity").json()
        return doc["data"]  # newest first

    def check(self, flags, stream, cached):
        cfg = {"models": {"m": {"cmd": h.fake_cmd(model="m", prompt_cache=True, **flags)}}}
        with h.Daemon(cfg) as d:
            second, first = self.chat_twice(d, stream)[:2]
            self.assertEqual(first["tokens"]["input_tokens"], 29, first)
            self.assertEqual(second["tokens"]["input_tokens"], 29,
                             "what the client was charged, not timings.prompt_n: %r" % second)
            self.assertEqual(second["tokens"]["cache_tokens"], cached, second)
            self.assertGreater(second["tokens"]["prompt_per_second"], 0, second)
            fams = scrape(d)
            self.assertEqual(value(fams, "llamaswap_prompt_tokens_total", model="m"), 58)
            self.assertEqual(value(fams, "llamaswap_cached_prompt_tokens_total", model="m"),
                             max(cached, 0))

    def test_cached_prompt_non_streamed(self):
        self.check({}, False, 28)

    def test_cached_prompt_streamed(self):
        self.check({}, True, 28)

    def test_older_server_without_cache_n(self):
        self.check({"no_cache_n": True}, True, -1)


class Outcomes(unittest.TestCase):
    def test_cut_stream_and_refused_requests_are_counted(self):
        cfg = {"queueTimeout": 1, "models": {
            "dies": {"cmd": h.fake_cmd(model="dies", tokens=10, crash_after_tokens=3)},
            "busy": {"cmd": h.fake_cmd(model="busy"), "concurrencyLimit": 1},
        }}
        with h.Daemon(cfg) as d:
            s = h.stream_request(d.port, "/v1/chat/completions", h.chat_body("dies", stream=True))
            self.assertFalse(s.complete, "the upstream died mid-stream: the client sees a cut")
            self.assertEqual(d.chat("no-such-model").status, 404)
            self.assertEqual(d.request("POST", "/v1/chat/completions", {"messages": []}).status,
                             400)
            r = d.request("POST", "/v1/chat/completions", b"{not json",
                          headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, r)
            # One request held in flight (concurrencyLimit 1): the next gets 429.
            held = h.Call(lambda: d.request("POST", "/v1/chat/completions?delay_ms=1500",
                                            h.chat_body("busy"), timeout=30))
            h.wait_until(lambda: running_entry(d, "busy")["inFlight"] == 1
                         if any(e["model"] == "busy" for e in d.running()) else False,
                         20, what="busy in flight")
            self.assertEqual(d.chat("busy").status, 429)
            self.assertEqual(held.get().status, 200)
            h.wait_until(lambda: value(scrape(d), "llamaswap_requests_total", model="dies",
                                       outcome="upstream_failed"), 10, what="the cut counted")
            fams = scrape(d)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="dies", status=200,
                                   outcome="upstream_failed"), 1)
            self.assertIsNone(value(fams, "llamaswap_requests_total", model="dies",
                                    outcome="completed"))
            self.assertEqual(value(fams, "llamaswap_requests_total", model="", status=404,
                                   outcome="refused"), 1)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="", status=400,
                                   outcome="refused"), 2)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="busy", status=429), 1)
            self.assertIsNone(value(fams, "llamaswap_requests_total", model="no-such-model"))


class Shutdown(unittest.TestCase):
    def test_sigabrt_on_sigterm_is_not_an_error(self):
        cfg = {"models": {"m": {"cmd": llama_cmd("m", sigterm_abort=True)}}}
        with h.Daemon(cfg) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 200)
            self.assertEqual(d.request("POST", "/api/models/unload").status, 200)
            h.wait_until(lambda: "stopped (it ended itself by SIGABRT" in d.log(), 10,
                         what="the stop logged")
            line = next(x for x in d.log().splitlines() if "ended itself by SIGABRT" in x)
            self.assertIn("nothing is wrong", line)
            self.assertNotRegex(line, r"\b(error|warn|failed)\b", line)
            self.assertEqual([e for e in d.running() if e["model"] == "m"], [])


class Readiness(unittest.TestCase):
    def test_ready_pattern_waits_for_the_main_loop_line(self):
        # llama-server's first "listening" line comes before the model loads (503 meanwhile).
        cfg = {"models": {"m": {"cmd": llama_cmd("m", load_delay_ms=1500),
                                "checkEndpoint": "none",
                                "readyPattern": "server is listening on"}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 200, r)

    def test_loose_pattern_fires_early_as_documented(self):
        cfg = {"models": {"m": {"cmd": llama_cmd("m", load_delay_ms=1500),
                                "checkEndpoint": "none", "readyPattern": "listening"}}}
        with h.Daemon(cfg) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 503, "the fake answers 503 while loading, like "
                                             "llama-server: %r" % r)


if __name__ == "__main__":
    h.main()
