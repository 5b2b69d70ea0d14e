#!/usr/bin/env python3
"""Metrics: GET /api/metrics/activity (records of proxied requests: tokens, timings, paging,
model filter, metricsMaxInMemory) and GET /metrics (Prometheus text format, parsed strictly)."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PROMPT = "one two three four five"  # the fake counts prompt tokens as words: 5
KEY = "sk-metrics-test-key"


def two_models(**top):
    cfg = {"models": {
        "a": {"cmd": h.fake_cmd(model="a", tokens=7, load_delay_ms=300), "aliases": ["a-alias"]},
        "b": {"cmd": h.fake_cmd(model="b", tokens=3)},
    }}
    cfg.update(top)
    return cfg


def body(model, stream=False):
    b = h.chat_body(model, stream=stream)
    b["messages"] = [{"role": "user", "content": PROMPT}]
    return b


def chat(d, model, stream=False, headers=None):
    if stream:
        s = h.stream_request(d.port, "/v1/chat/completions", body(model, True), headers=headers)
        assert s.status == 200 and s.complete, (s.status, s.error)
        return s
    r = d.request("POST", "/v1/chat/completions", body(model), headers=headers)
    assert r.status == 200, r
    return r


def activity(d, query="", headers=None):
    r = d.request("GET", "/api/metrics/activity" + query, headers=headers)
    assert r.status == 200, r
    assert r.headers.get("content-type", "").startswith("application/json"), r
    return r.json()


# ---------------------------------------------------------------------------------------------
# A strict parser of the Prometheus text exposition format (version 0.0.4).

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_value(text):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$", text):
        raise AssertionError("bad sample value %r" % text)
    return float(text)


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return name


def parse_exposition(text):
    """{family: {"type", "help", "samples": [(name, {labels}, value)]}}; raises on any
    deviation from the format."""
    assert text.endswith("\n"), "exposition must end with a newline"
    fams = {}
    types = {}
    seen_samples = set()  # families whose samples began (HELP/TYPE must come first)
    done = set()          # families whose block ended (samples must be contiguous)
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        assert line, "empty line: " + where
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % NAME, line)
            if not m:
                assert not line.startswith("# HELP") and not line.startswith("# TYPE"), where
                continue
            kind, name, rest = m.groups()
            assert name not in seen_samples and name not in done, \
                "%s after samples of its family: %s" % (kind, where)
            f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if kind == "TYPE":
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), where
                assert f["type"] is None, "duplicate TYPE: " + where
                f["type"] = rest
                types[name] = rest
            else:
                assert f["help"] is None, "duplicate HELP: " + where
                assert rest, "empty HELP: " + where
                f["help"] = rest
            if current is not None and current != name:
                done.add(current)
            current = name
            continue
        m = SAMPLE_RE.match(line)
        assert m, "malformed sample: " + where
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        fam = family_of(name, types)
        assert fam in fams, "sample without HELP/TYPE: " + where
        assert fams[fam]["type"] and fams[fam]["help"], "HELP and TYPE must precede: " + where
        assert fam not in done, "samples of %s not contiguous: %s" % (fam, where)
        if current is not None and current != fam:
            done.add(current)
        current = fam
        seen_samples.add(fam)
        labels = dict(LABEL_RE.findall(labels_text))
        assert len(labels) == len(LABEL_RE.findall(labels_text)), "duplicate label: " + where
        if fams[fam]["type"] == "counter":
            assert name == fam, where
        fams[fam]["samples"].append((name, labels, parse_value(value)))
    for fam, f in fams.items():
        assert f["type"] and f["help"], "family %s lacks HELP or TYPE" % fam
        if f["type"] == "histogram":
            check_histogram(fam, f["samples"])
    return fams


def check_histogram(fam, samples):
    series = {}
    for name, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            assert "le" in labels, (fam, labels)
            s["buckets"].append((parse_value(labels["le"]), value))
        elif name == fam + "_sum":
            s["sum"] = value
        elif name == fam + "_count":
            s["count"] = value
        else:
            raise AssertionError("unexpected sample %s in histogram %s" % (name, fam))
    for key, s in series.items():
        bounds = [b for b, _ in s["buckets"]]
        assert bounds == sorted(bounds), (fam, key, bounds)
        assert bounds and bounds[-1] == float("inf"), "%s %s lacks +Inf bucket" % (fam, key)
        values = [v for _, v in s["buckets"]]
        assert all(x <= y for x, y in zip(values, values[1:])), \
            "%s %s buckets not cumulative: %s" % (fam, key, values)
        assert s["count"] is not None and s["sum"] is not None, (fam, key)
        assert values[-1] == s["count"], "%s %s: +Inf %s != _count %s" % (
            fam, key, values[-1], s["count"])


def value(fams, fam, **labels):
    """The value of the one sample named `fam` whose labels include `labels` (None if none)."""
    found = [v for f in fams.values() for n, l, v in f["samples"]
             if n == fam and all(l.get(k) == str(x) for k, x in labels.items())]
    assert len(found) <= 1, (fam, labels, found)
    return found[0] if found else None


def scrape(d, headers=None):
    r = d.request("GET", "/metrics", headers=headers)
    assert r.status == 200, r
    return r, parse_exposition(r.body.decode())


# ---------------------------------------------------------------------------------------------

class Activity(unittest.TestCase):

    def test_records_newest_first_with_tokens_and_timings(self):
        with h.Daemon(two_models()) as d:
            self.assertEqual(activity(d)["data"], [])
            chat(d, "a")               # loads a (300 ms), not streamed
            chat(d, "a", stream=True)  # streamed, a already loaded
            doc = activity(d)
            self.assertEqual(doc["total"], 2, doc)
            self.assertEqual(doc["page"], 1)
            self.assertEqual(doc["limit"], 25)
            self.assertEqual(doc["total_pages"], 1)
            streamed, plain = doc["data"]
            self.assertGreater(streamed["id"], plain["id"], doc)
            self.assertGreaterEqual(streamed["timestamp"], plain["timestamp"], doc)
            for rec in (streamed, plain):
                self.assertEqual(rec["model"], "a", rec)
                self.assertEqual(rec["req_path"], "/v1/chat/completions", rec)
                self.assertEqual(rec["resp_status_code"], 200, rec)
                self.assertNotIn("error_msg", rec)
                self.assertEqual(rec["tokens"]["input_tokens"], 5, rec)
                self.assertEqual(rec["tokens"]["output_tokens"], 7, rec)
                self.assertGreater(rec["tokens"]["tokens_per_second"], 0, rec)
                self.assertGreater(rec["tokens"]["prompt_per_second"], 0, rec)
                self.assertIsInstance(rec["duration_ms"], int)
                for k in ("id", "timestamp", "has_capture", "resp_content_type"):
                    self.assertIn(k, rec)
            self.assertIn("text/event-stream", streamed["resp_content_type"])
            self.assertIn("application/json", plain["resp_content_type"])

    def test_outcome_of_cut_responses(self):
        # A response that did not reach its end says who cut it, whatever its status was.
        cfg = {"models": {
            "slow": {"cmd": h.fake_cmd(model="slow", tokens=50, tps=20)},
            "dies": {"cmd": h.fake_cmd(model="dies", tokens=50, crash_after_tokens=3)},
        }, "groups": {"g": {"swap": False, "members": ["slow", "dies"]}}}
        with h.Daemon(cfg) as d:
            with h.RawConn(d.port) as c:
                req = json.dumps({"model": "slow", "stream": True,
                                  "messages": [{"role": "user", "content": "hi"}]}).encode()
                c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % len(req) + req)
                c.read_until(b"data: ")  # streaming has begun; then the client leaves
            h.wait_until(lambda: activity(d)["total"] == 1, 10, what="the cut request recorded")
            rec = activity(d)["data"][0]
            self.assertEqual(rec["resp_status_code"], 200, rec)
            self.assertEqual(rec["error_msg"], "response not completed: client_closed", rec)
            s = h.stream_request(d.port, "/v1/chat/completions", body("dies", True))
            self.assertFalse(s.complete, "the upstream died mid-stream")
            h.wait_until(lambda: activity(d)["total"] == 2, 10, what="the broken one recorded")
            rec = activity(d)["data"][0]
            self.assertEqual(rec["model"], "dies", rec)
            self.assertEqual(rec["error_msg"], "response not completed: upstream_failed", rec)

    def test_model_filter_alias_limit_page(self):
        with h.Daemon(two_models()) as d:
            chat(d, "a")
            chat(d, "b")
            chat(d, "a-alias", stream=True)
            chat(d, "b", stream=True)
            doc = activity(d)
            self.assertEqual([r["model"] for r in doc["data"]], ["b", "a", "b", "a"], doc)
            self.assertEqual([r["tokens"]["output_tokens"] for r in doc["data"]], [3, 7, 3, 7], doc)
            ids = [r["id"] for r in doc["data"]]
            self.assertEqual(ids, sorted(ids, reverse=True))
            fa = activity(d, "?model=a-alias")
            self.assertEqual([r["model"] for r in fa["data"]], ["a", "a"], fa)
            self.assertEqual(fa["total"], 2)
            self.assertEqual(activity(d, "?model=a")["total"], 2)
            both = activity(d, "?model=a&model=b")
            self.assertEqual(both["total"], 4, both)
            self.assertEqual(activity(d, "?model=nope")["data"], [])
            p1 = activity(d, "?limit=3")
            self.assertEqual([r["id"] for r in p1["data"]], ids[:3])
            self.assertEqual((p1["limit"], p1["total"], p1["total_pages"]), (3, 4, 2), p1)
            p2 = activity(d, "?limit=3&page=2")
            self.assertEqual([r["id"] for r in p2["data"]], ids[3:], p2)
            self.assertEqual(p2["page"], 2)
            self.assertEqual(activity(d, "?limit=3&page=3")["data"], [])
            fp = activity(d, "?model=b&limit=1&page=2")
            self.assertEqual([r["id"] for r in fp["data"]], [ids[2]], fp)
            self.assertEqual(fp["total_pages"], 2)
            for q, msg in (("?limit=0", "limit must be between 1 and 999"),
                           ("?limit=5000", "limit must be between 1 and 999"),
                           ("?page=0", "page must be >= 1")):
                r = d.request("GET", "/api/metrics/activity" + q)
                self.assertEqual(r.status, 400, (q, r))
                self.assertEqual(r.json()["error"]["message"], msg, (q, r.body))

    def test_unknown_model_not_recorded_start_failure_recorded(self):
        cfg = two_models()
        cfg["models"]["c"] = {"cmd": h.fake_cmd(model="c", crash_at_start=True)}
        with h.Daemon(cfg) as d:
            r = d.chat("no-such-model")
            self.assertEqual(r.status, 404, r)
            self.assertEqual(activity(d)["total"], 0)
            r = d.chat("c", timeout=30)
            self.assertEqual(r.status, 502, r)
            doc = activity(d)
            self.assertEqual(doc["total"], 1, doc)
            rec = doc["data"][0]
            self.assertEqual((rec["model"], rec["resp_status_code"]), ("c", 502), rec)
            self.assertEqual(rec["tokens"]["input_tokens"], 0, rec)
            self.assertEqual(rec["tokens"]["output_tokens"], 0, rec)
            self.assertEqual(rec["tokens"]["cache_tokens"], -1, rec)
            self.assertTrue(rec["error_msg"], rec)
            _, fams = scrape(d)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="c", status=502), 1)
            self.assertIsNone(value(fams, "llamaswap_requests_total", model="no-such-model",
                                    status=404))

    def test_max_in_memory(self):
        with h.Daemon(two_models(metricsMaxInMemory=2)) as d:
            for m in ("b", "b", "b"):
                chat(d, m)
            doc = activity(d)
            self.assertEqual(doc["total"], 2, doc)
            self.assertEqual(len(doc["data"]), 2)
            _, fams = scrape(d)  # the counters are not bounded by the ring
            self.assertEqual(value(fams, "llamaswap_requests_total", model="b", status=200), 3)

    def test_max_in_memory_zero_disables(self):
        with h.Daemon(two_models(metricsMaxInMemory=0)) as d:
            chat(d, "b")
            doc = activity(d)
            self.assertEqual((doc["total"], doc["data"]), (0, []), doc)


class Prometheus(unittest.TestCase):

    def test_exposition_and_counters(self):
        with h.Daemon(two_models()) as d:
            r, fams = scrape(d)
            self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r)
            self.assertEqual(value(fams, "llamaswap_swaps_total"), 0)
            for m in ("a", "b"):
                self.assertEqual(value(fams, "llamaswap_model_state", model=m, state="stopped"),
                                 1, fams["llamaswap_model_state"])
            chat(d, "a")
            chat(d, "a", stream=True)
            r, fams = scrape(d)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="a", status=200), 2)
            self.assertEqual(value(fams, "llamaswap_prompt_tokens_total", model="a"), 10)
            self.assertEqual(value(fams, "llamaswap_generated_tokens_total", model="a"), 14)
            self.assertEqual(value(fams, "llamaswap_model_starts_total", model="a"), 1)
            self.assertEqual(value(fams, "llamaswap_model_state", model="a", state="ready"), 1)
            self.assertEqual(value(fams, "llamaswap_model_state", model="a", state="stopped"), 0)
            self.assertEqual(value(fams, "llamaswap_request_duration_seconds_count", model="a"), 2)
            self.assertEqual(value(fams, "llamaswap_model_load_duration_seconds_count",
                                   model="a"), 1)
            self.assertGreaterEqual(value(fams, "llamaswap_model_load_duration_seconds_sum",
                                          model="a"), 0.25)
            self.assertEqual(value(fams, "llamaswap_swaps_total"), 0)
            self.assertEqual(value(fams, "llamaswap_queue_depth"), 0)
            for m in ("a", "b"):  # one state at a time per model
                states = [v for n, l, v in fams["llamaswap_model_state"]["samples"]
                          if l["model"] == m]
                self.assertEqual(sum(states), 1, (m, states))
            chat(d, "b")  # swaps a out
            _, fams = scrape(d)
            self.assertEqual(value(fams, "llamaswap_swaps_total"), 1)
            self.assertEqual(value(fams, "llamaswap_model_state", model="b", state="ready"), 1)
            self.assertEqual(value(fams, "llamaswap_model_state", model="a", state="ready"), 0)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="b", status=200), 1)
            self.assertEqual(value(fams, "llamaswap_generated_tokens_total", model="b"), 3)
            chat(d, "a")
            _, fams = scrape(d)
            self.assertEqual(value(fams, "llamaswap_swaps_total"), 2)
            self.assertEqual(value(fams, "llamaswap_model_starts_total", model="a"), 2)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="a", status=200), 3)

    def test_promtool_check_metrics(self):
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool not found: install Debian's prometheus package "
                          "(scripts/setup does) to check /metrics with `promtool check metrics`")
        with h.Daemon(failing_models()) as d:
            exercise(d)
            wait_for_sampler(d)
            r, fams = scrape(d)
            for fam in ("llamaswap_build_info", "process_open_fds",
                        "llamaswap_time_to_first_token_seconds",
                        "llamaswap_upstream_failures_total", "llamaswap_memory_total_bytes"):
                self.assertIn(fam, fams)  # the check sees the new families with their samples
            p = subprocess.run([promtool, "check", "metrics"], input=r.body,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout.decode(errors="replace"))

    def test_parser_rejects_bad_expositions(self):
        """The strict parser itself: each of these must be refused."""
        good = ("# HELP x_total X.\n# TYPE x_total counter\nx_total{model=\"a\"} 1\n")
        parse_exposition(good)
        bad = [
            "x_total 1\n",                                              # no HELP/TYPE
            "# TYPE x_total counter\nx_total 1\n",                      # no HELP
            good + "# HELP x_total again\n",                            # HELP after samples
            "# HELP x X.\n# TYPE x gauge\nx{model=a} 1\n",              # unquoted label
            "# HELP x X.\n# TYPE x gauge\nx 1 2 3\n",                   # junk after value
            "# HELP x X.\n# TYPE x gauge\nx 1",                         # no final newline
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
            "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",            # not cumulative
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
            "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",            # +Inf != count
        ]
        for text in bad:
            with self.assertRaises(AssertionError, msg=text):
                parse_exposition(text)


def failing_models():
    """A model that answers, one that never starts, one that dies mid-stream, one too slow to
    answer, and a peer nobody listens for."""
    return {"models": {
        "ok": {"cmd": h.fake_cmd(model="ok", tokens=4)},
        "nostart": {"cmd": h.fake_cmd(model="nostart", crash_at_start=True)},
        "dies": {"cmd": h.fake_cmd(model="dies", tokens=50, crash_after_tokens=3)},
        "slow": {"cmd": h.fake_cmd(model="slow"), "timeouts": {"responseHeader": 1}},
    }, "groups": {"g": {"swap": False, "members": ["ok", "nostart", "dies", "slow"]}},
        "peers": {"gone": {"proxy": "http://127.0.0.1:%d" % closed_port(), "models": ["x"]}}}


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def exercise(d):
    """A few requests of every kind: answered, streamed, and failed for each cause we can make."""
    chat(d, "ok")
    chat(d, "ok", stream=True)
    r = d.chat("nostart", timeout=30)
    assert r.status == 502, r
    s = h.stream_request(d.port, "/v1/chat/completions", body("dies", True))
    assert not s.complete, "the upstream died mid-stream"
    r = d.chat("slow", path="/v1/chat/completions?delay_ms=3000", timeout=15)
    assert r.status == 504, r
    r = d.chat("gone/x", timeout=15)
    assert r.status == 502, r
    # each request ends (and is counted) after its client has its answer
    h.wait_until(lambda: value(scrape(d)[1], "llamaswap_upstream_failures_total", model="dies",
                               cause="cut_mid_stream"), 10, what="the cut stream counted")


def wait_for_sampler(d):
    """The performance sampler's first sample (host gauges) is taken on its worker thread."""
    h.wait_until(lambda: "llamaswap_memory_total_bytes" in scrape(d)[1], 20,
                 what="the performance sampler's first sample in /metrics")


class Exports(unittest.TestCase):
    """llamaswap_build_info, process_*, the first-byte histogram, upstream failures by cause,
    the host gauges; scrapes logged at debug level."""

    def test_build_info_and_process_metrics(self):
        t0 = time.time()
        with h.Daemon(two_models()) as d:
            t1 = time.time()
            _, fams = scrape(d)
            version = subprocess.run([h.LLAMA_SWAP, "--version"], stdout=subprocess.PIPE,
                                     check=True).stdout.decode().split()[-1]
            (name, labels, v), = fams["llamaswap_build_info"]["samples"]
            self.assertEqual(fams["llamaswap_build_info"]["type"], "gauge")
            self.assertEqual((labels["version"], v), (version, 1), labels)
            for k in ("commit", "build_date", "libev", "openssl"):
                self.assertTrue(labels.get(k), (k, labels))
            types = {"process_cpu_seconds_total": "counter", "process_start_time_seconds": "gauge",
                     "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge",
                     "process_max_fds": "gauge", "process_virtual_memory_bytes": "gauge"}
            for fam, t in types.items():
                self.assertEqual(fams[fam]["type"], t, fam)
            self.assertGreater(value(fams, "process_resident_memory_bytes"), 0)
            self.assertGreaterEqual(value(fams, "process_virtual_memory_bytes"),
                                    value(fams, "process_resident_memory_bytes"))
            # btime is whole seconds and starttime in clock ticks: within a second or two
            start = value(fams, "process_start_time_seconds")
            self.assertTrue(t0 - 2 <= start <= t1 + 2, (t0, start, t1))
            # the lowest of a few scrapes: the performance sampler's thread holds a /proc file
            # open for a moment now and then
            fds = min([value(fams, "process_open_fds")] +
                      [value(scrape(d)[1], "process_open_fds") for _ in range(4)])
            with open("/proc/%d/limits" % d.proc.pid) as f:
                limit = [l.split()[3] for l in f if l.startswith("Max open files")][0]
            self.assertEqual(value(fams, "process_max_fds"), float(limit))
            self.assertGreaterEqual(fds, 3)
            # The daemon's descriptors as /proc lists them, its sockets included (five held
            # client connections). Closing connections, the scrape's own and the sampler's
            # thread move the count a little between the listing and the scrape.
            conns = [h.RawConn(d.port) for _ in range(5)]
            try:
                fd_dir = "/proc/%d/fd" % d.proc.pid
                before = len(os.listdir(fd_dir))
                fds = value(scrape(d)[1], "process_open_fds")
                after = len(os.listdir(fd_dir))
                self.assertTrue(min(before, after) - 3 <= fds <= max(before, after) + 3,
                                (before, fds, after))
                self.assertGreaterEqual(fds, 3 + 5)
            finally:
                for c in conns:
                    c.close()
            cpu = value(fams, "process_cpu_seconds_total")
            for _ in range(20):
                chat(d, "b")
            self.assertGreaterEqual(value(scrape(d)[1], "process_cpu_seconds_total"), cpu)

    def test_first_byte_histogram_and_failure_causes(self):
        with h.Daemon(failing_models()) as d:
            exercise(d)
            _, fams = scrape(d)
            self.assertEqual(fams["llamaswap_time_to_first_token_seconds"]["type"], "histogram")
            self.assertEqual(fams["llamaswap_upstream_failures_total"]["type"], "counter")
            ttft = "llamaswap_time_to_first_token_seconds_count"
            self.assertEqual(value(fams, ttft, model="ok"), 2)
            # the cut stream had its first bytes; the refused ones had none
            self.assertEqual(value(fams, ttft, model="dies"), 1)
            self.assertIn(value(fams, ttft, model="slow"), (None, 0))
            self.assertIn(value(fams, ttft, model="nostart"), (None, 0))
            # from arrival, so no longer than the whole request
            self.assertLessEqual(
                value(fams, "llamaswap_time_to_first_token_seconds_sum", model="ok"),
                value(fams, "llamaswap_request_duration_seconds_sum", model="ok"))
            causes = {(l["model"], l["cause"]): v for n, l, v in
                      fams["llamaswap_upstream_failures_total"]["samples"]}
            self.assertEqual(causes, {("nostart", "start_failed"): 1,
                                      ("dies", "cut_mid_stream"): 1,
                                      ("slow", "response_timeout"): 1,
                                      ("gone/x", "connect_failed"): 1}, causes)
            # the answered model has no failures, and its requests still count as before
            self.assertEqual(value(fams, "llamaswap_requests_total", model="ok", status=200), 2)

    def test_host_gauges_from_the_sampler(self):
        with h.Daemon(two_models()) as d:
            wait_for_sampler(d)
            _, fams = scrape(d)
            total = value(fams, "llamaswap_memory_total_bytes")
            self.assertGreater(total, 0)
            self.assertLessEqual(value(fams, "llamaswap_memory_used_bytes"), total)
            self.assertLessEqual(value(fams, "llamaswap_memory_free_bytes"), total)
            for interval in ("1m", "5m", "15m"):
                self.assertGreaterEqual(value(fams, "llamaswap_load_average",
                                              interval=interval), 0)
            cores = [l["core"] for n, l, v in fams["llamaswap_cpu_util_percent"]["samples"]]
            self.assertEqual(cores, [str(i) for i in range(len(cores))])
            self.assertEqual(fams["llamaswap_network_bytes_total"]["type"], "counter")
            for fam in GPU_FAMILIES:  # declared with or without a GPU
                self.assertEqual(fams[fam]["type"], "gauge", fam)
                for n, l, v in fams[fam]["samples"]:
                    self.assertTrue({"id", "name"} <= set(l) <= {"id", "name", "uuid"}, l)
        # performance: {disabled: true}: no sampler, none of its families
        with h.Daemon(two_models(performance={"disabled": True})) as d:
            _, fams = scrape(d)
            self.assertNotIn("llamaswap_memory_total_bytes", fams)
            self.assertNotIn("llamaswap_gpu_util_percent", fams)
            self.assertIn("process_open_fds", fams)

    def test_scrapes_logged_at_debug_level_only(self):
        with h.Daemon(two_models(logLevel="info")) as d:
            scrape(d)
            self.assertEqual(d.request("GET", "/health").status, 200)
            h.wait_until(lambda: '"GET /health ' in d.log(), 5, what="/health logged")
            self.assertNotIn("GET /metrics", d.log())
        with h.Daemon(two_models(logLevel="debug")) as d:
            scrape(d)
            h.wait_until(lambda: '"GET /metrics ' in d.log(), 5, what="/metrics logged")
            line = [l for l in d.log().splitlines() if '"GET /metrics ' in l][0]
            self.assertTrue(line.startswith("[debug] "), line)
            self.assertEqual(d.request("GET", "/health").status, 200)
            h.wait_until(lambda: '"GET /health ' in d.log(), 5, what="/health logged")
            line = [l for l in d.log().splitlines() if '"GET /health ' in l][0]
            self.assertTrue(line.startswith("[info] "), line)


class GpuGauges(unittest.TestCase):
    """The GPU gauges and per-model GPU memory through tests/nvml-stub's libnvidia-ml.so.1
    (see test_gpu.py): the original's names and labels, values as the stub tells them."""

    def test_gpu_gauges_and_model_gpu_memory_through_the_nvml_stub(self):
        import test_gpu as g
        if not os.path.exists(os.path.join(g.STUB_DIR, "libnvidia-ml.so.1")):
            self.skipTest("no stub libnvidia-ml.so.1 in %s (set NVML_STUB_DIR)" % g.STUB_DIR)
        stub = g.StubGpu()
        self.addCleanup(shutil.rmtree, stub.dir, True)
        stub.write()
        with g.StubEnv(stub.env()), h.Daemon(two_models()) as d:
            chat(d, "b")
            (pid,) = [e["pid"] for e in d.running() if e["model"] == "b"]
            stub.write(procs=[(0, pid, 3 * g.GIB), (0, os.getpid(), 7 * g.GIB)])
            labels = 'id="0",name="Stub H200",uuid="GPU-5710b000-0000-0000-0000-000000000001"'
            h.wait_until(lambda: 'llamaswap_model_gpu_memory_bytes{model="b"} '
                         in d.request("GET", "/metrics").body.decode(), g.SAMPLE_WAIT,
                         interval=0.5, what="b's GPU memory in /metrics")
            r, fams = scrape(d)
            self.assertIn("llamaswap_gpu_util_percent{%s} 87\n" % labels, r.body.decode())
            self.assertEqual(value(fams, "llamaswap_model_gpu_memory_bytes", model="b"),
                             3 * g.GIB)
            self.assertIsNone(value(fams, "llamaswap_model_gpu_memory_bytes", model="a"))
            self.assertEqual(value(fams, "llamaswap_gpu_memory_total_bytes", id=0), 140 * g.GIB)
            self.assertEqual(value(fams, "llamaswap_gpu_memory_used_bytes", id=0), 24 * g.GIB)
            for fam in GPU_FAMILIES:
                for n, l, v in fams[fam]["samples"]:
                    self.assertEqual(l, {"id": "0", "name": "Stub H200",
                                         "uuid": "GPU-5710b000-0000-0000-0000-000000000001"})


GPU_FAMILIES = ["llamaswap_gpu_temperature_celsius", "llamaswap_gpu_vram_temperature_celsius",
                "llamaswap_gpu_util_percent", "llamaswap_gpu_memory_util_percent",
                "llamaswap_gpu_memory_used_bytes", "llamaswap_gpu_memory_total_bytes",
                "llamaswap_gpu_fan_speed_percent", "llamaswap_gpu_power_draw_watts"]

# ---------------------------------------------------------------------------------------------
# The Grafana dashboard: every metric its PromQL names must be one the daemon exports.

DASHBOARD = os.path.join(h.ROOT, "contrib", "grafana", "llama-swap.json")
PROMQL_WORDS = {
    # aggregations, functions and keywords that look like names
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2",
}


def dashboard_exprs(doc):
    """Every PromQL expression in a dashboard: panel targets (rows' nested panels too) and
    query variables."""
    exprs = []

    def panels(ps):
        for p in ps:
            for t in p.get("targets", []):
                if t.get("expr"):
                    exprs.append(t["expr"])
            panels(p.get("panels", []))
    panels(doc.get("panels", []))
    for v in doc.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if q:
                exprs.append(q)
    return exprs


def metric_names(expr):
    """The metric names a PromQL expression (or a label_values() variable query) refers to."""
    m = re.match(r"^\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*$", expr, re.S)
    if m:
        expr = m.group(1)
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    e = re.sub(r"\{[^{}]*\}", " ", e)          # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)      # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", e)
    e = re.sub(r"\$\{?\w+(:\w+)?\}?", " ", e)  # Grafana variables
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in PROMQL_WORDS:
            continue
        if re.match(r"^\d", word):
            continue
        prev = e[:m.start()].rstrip()
        if prev and (prev[-1].isdigit() or prev[-1] == "."):
            continue  # the exponent or unit of a number (1e3, 5m)
        names.add(word)
    return names


def exported(name, fams):
    if name in fams:
        return fams[name]["type"] not in ("histogram", "summary")
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and fams.get(base, {}).get("type") == "histogram":
            return True
    return False


class Dashboard(unittest.TestCase):

    def test_promql_parser(self):
        self.assertEqual(metric_names(
            'histogram_quantile(0.95, sum by (le, model) (rate(x_seconds_bucket{model=~"$model",'
            'le!="1"}[$__rate_interval])))'), {"x_seconds_bucket"})
        self.assertEqual(metric_names('sum without (instance) (rate(a_total[5m])) / '
                                      'on(model) group_left b_bytes > bool 1e3'),
                         {"a_total", "b_bytes"})
        self.assertEqual(metric_names("label_values(llamaswap_model_state, model)"),
                         {"llamaswap_model_state"})
        self.assertEqual(metric_names('max by(model) (up{job="x"}) or vector(0)'), {"up"})
        self.assertFalse(exported("x_seconds", {"x_seconds": {"type": "histogram"}}))
        self.assertTrue(exported("x_seconds_bucket", {"x_seconds": {"type": "histogram"}}))
        self.assertFalse(exported("y_bucket", {"y": {"type": "counter"}}))

    def test_every_metric_the_dashboard_uses_is_exported(self):
        with open(DASHBOARD) as f:
            doc = json.load(f)
        exprs = dashboard_exprs(doc)
        self.assertGreater(len(exprs), 20, "the dashboard has its panels' queries")
        used = set()
        for e in exprs:
            used |= metric_names(e)
        # The dashboard covers what the brief asked of it.
        for want in ("llamaswap_requests_total", "llamaswap_generated_tokens_total",
                     "llamaswap_time_to_first_token_seconds_bucket",
                     "llamaswap_model_load_duration_seconds_bucket",
                     "llamaswap_inflight_requests", "llamaswap_queued_requests",
                     "llamaswap_model_state", "llamaswap_model_memory_bytes",
                     "llamaswap_upstream_failures_total", "llamaswap_gpu_util_percent",
                     "llamaswap_gpu_memory_used_bytes", "process_resident_memory_bytes",
                     "process_cpu_seconds_total"):
            self.assertIn(want, used)
        with h.Daemon(failing_models()) as d:
            exercise(d)
            wait_for_sampler(d)
            _, fams = scrape(d)
        missing = sorted(n for n in used if not exported(n, fams))
        self.assertEqual(missing, [], "the dashboard queries metrics /metrics does not have")
        # Every panel shows something and has a unique id; the datasource is a variable.
        ids = []

        def walk(ps):
            for p in ps:
                ids.append(p.get("id"))
                if p.get("type") != "row":
                    self.assertTrue(p.get("targets"), p.get("title"))
                    for t in p["targets"]:
                        self.assertEqual(t.get("datasource", {}).get("uid"), "${datasource}",
                                         p.get("title"))
                walk(p.get("panels", []))
        walk(doc["panels"])
        self.assertEqual(len(ids), len(set(ids)), ids)
        self.assertIn("datasource", [v["name"] for v in doc["templating"]["list"]])


class Auth(unittest.TestCase):

    def test_both_routes_need_a_key(self):
        with h.Daemon(two_models(apiKeys=[KEY])) as d:
            for path in ("/metrics", "/api/metrics/activity", "/api/metrics/activity?limit=1"):
                r = d.request("GET", path)
                self.assertEqual(r.status, 401, (path, r))
                r = d.request("GET", path, headers={"Authorization": "Bearer wrong"})
                self.assertEqual(r.status, 401, (path, r))
                for hdrs in ({"Authorization": "Bearer " + KEY}, {"x-api-key": KEY}):
                    r = d.request("GET", path, headers=hdrs)
                    self.assertEqual(r.status, 200, (path, r))
            auth = {"Authorization": "Bearer " + KEY}
            chat(d, "b", headers=auth)
            self.assertEqual(activity(d, headers=auth)["total"], 1)
            _, fams = scrape(d, headers=auth)
            self.assertEqual(value(fams, "llamaswap_requests_total", model="b", status=200), 1)


if __name__ == "__main__":
    h.main()
