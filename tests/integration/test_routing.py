#!/usr/bin/env python3
"""Today's llama-swap configs against the real binary: routing.router with settings.groups and
settings.matrix, scheduler priorities, our starvation bound under a traffic pattern that starves
the original, selectors (pin, warm, spillover), profiles (API, events, pins in requests and
/upstream paths, defaultProfile) and the listing of selectors and pins in /v1/models."""

import os
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402


def models(*ids, **extra):
    return {m: dict({"cmd": h.fake_cmd(model=m)}, **extra) for m in ids}


def served_by(r):
    """The model the fake upstream says it is (its --model), and the `model` it was sent."""
    assert r.status == 200, r
    doc = r.json()
    return doc["model"], doc.get("request_model")


def start_order(d):
    """Model ids in the order the daemon started them."""
    import re
    return re.findall(r"model (\S+): starting pid", d.log())


class Routing(unittest.TestCase):
    def test_routing_groups_keep_a_swap_false_group_together(self):
        # The headline bug: a v250 config's groups under routing.router.settings.
        cfg = {"models": models("a", "b", "c"),
               "routing": {"router": {"use": "group", "settings": {"groups": {
                   "together": {"swap": False, "exclusive": False, "members": ["a", "b"]}}}}}}
        with h4.Daemon(cfg) as d:
            for m in ("a", "b"):
                self.assertEqual(d.chat(m, timeout=30).status, 200)
            self.assertEqual(d.running_models(), ["a", "b"])
            self.assertEqual(d.chat("a").status, 200)
            self.assertEqual((d.starts("a"), d.starts("b")), (1, 1), "they swapped each other")

    def test_matrix_router_keeps_a_set_and_evicts_for_a_loner(self):
        cfg = {"models": models("a", "b", "c"),
               "routing": {"router": {"use": "matrix", "settings": {"matrix": {
                   "vars": {"A": "a", "B": "b"},
                   "sets": {"pair": "A & B"}}}}}}
        with h4.Daemon(cfg) as d:
            for m in ("a", "b"):
                self.assertEqual(d.chat(m, timeout=30).status, 200)
            self.assertEqual(d.running_models(), ["a", "b"])
            self.assertEqual(d.chat("c", timeout=30).status, 200)  # c is in no set: alone
            self.assertEqual(d.running_models(), ["c"])

    def test_legacy_and_routing_mixed_is_refused(self):
        import subprocess
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(h4.to_yaml({"models": models("a"), "groups": {"g": {"members": ["a"]}},
                                "routing": {"router": {"use": "group"}}}) + "\n")
        try:
            r = subprocess.run([h.LLAMA_SWAP, "--check-config", "--config", f.name],
                               capture_output=True, text=True, timeout=20)
        finally:
            os.unlink(f.name)
        self.assertEqual(r.returncode, 78)
        self.assertIn("please migrate the top-level keys into 'routing.router'", r.stderr)

    def test_priority_orders_the_waiting_models(self):
        cfg = {"models": models("a", "b", "c"),
               "routing": {"scheduler": {"settings": {"fifo": {"priority": {"c": 5}}}}}}
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("a", timeout=30).status, 200)
            busy = h.Call(lambda: d.chat("a", path="/v1/chat/completions?delay_ms=1000",
                                         timeout=30))
            h.wait_until(lambda: any(e["model"] == "a" and e["inFlight"] == 1
                                     for e in d.running()), 10, what="a busy")
            low = h.Call(lambda: d.chat("b", timeout=30))
            time.sleep(0.2)
            high = h.Call(lambda: d.chat("c", timeout=30))
            for call in (busy, low, high):
                self.assertEqual(call.get().status, 200)
            self.assertEqual(start_order(d)[1:], ["c", "b"], "c (priority 5) goes before b")


class Starvation(unittest.TestCase):
    """The original's #612/#790: a model with never-ending traffic keeps a waiting model out
    for as long as the traffic lasts. Here the waiting model gets in within maxWait."""

    MAX_WAIT = 1.5
    TRAFFIC = 12.0  # seconds of overlapping requests for a

    def test_a_waiting_model_gets_in_while_the_other_keeps_busy(self):
        cfg = {"models": models("a", "b", concurrencyLimit=50),
               "routing": {"scheduler": {"settings": {"fifo": {"maxWait": self.MAX_WAIT}}}}}
        with h4.Daemon(cfg) as d:
            self.assertEqual(d.chat("a", timeout=30).status, 200)
            stop = time.monotonic() + self.TRAFFIC
            served = []  # (start, end, status) of a's requests
            lock = threading.Lock()

            def traffic(offset):  # staggered loops: a request of a is always in flight
                time.sleep(offset)
                while time.monotonic() < stop:
                    t0 = time.monotonic()
                    r = d.chat("a", path="/v1/chat/completions?delay_ms=300", timeout=60)
                    with lock:
                        served.append((t0, time.monotonic(), r.status))

            loops = [threading.Thread(target=traffic, args=(i * 0.1,), daemon=True)
                     for i in range(3)]
            for t in loops:
                t.start()
            time.sleep(1.0)
            b_sent = time.monotonic()
            rb = d.chat("b", timeout=60)
            b_done = time.monotonic()
            for t in loops:
                t.join(60)
            self.assertEqual(rb.status, 200, rb)
            h.diag("b answered after %.2f s (maxWait %.1f s); a's traffic ran %.0f s"
                   % (b_done - b_sent, self.MAX_WAIT, self.TRAFFIC))
            self.assertLess(b_done, stop, "b waited for a's traffic to end: starved")
            with lock:
                collated = [s for s in served if b_sent < s[0] < b_sent + self.MAX_WAIT * 0.8]
                self.assertTrue(all(s[2] == 200 for s in served), served)
            self.assertTrue(collated, "a's own requests were not served while b waited "
                                      "(no collation)")


class Selectors(unittest.TestCase):
    def test_pin_warm_spillover_and_not_via_upstream(self):
        cfg = {"models": models("a", "b", "c"),
               "groups": {"pool": {"swap": False, "exclusive": False, "members": ["a", "b"]}},
               "selectors": {
                   "public": {"strategy": "pin", "targets": ["b", "a"], "name": "Public"},
                   "coder": {"strategy": "warm", "targets": ["a", "b"]},
                   "workers": {"strategy": "spillover", "targets": ["a", "b"],
                               "settings": {"spillover": 1}},
               }}
        with h4.Daemon(cfg) as d:
            self.assertEqual(served_by(d.chat("public", timeout=30)), ("b", "b"),
                             "the body names the target, not the selector")
            self.assertEqual(served_by(d.chat("coder", timeout=30)), ("b", "b"),
                             "warm: b is the ready one")
            d.request("POST", "/api/models/unload")
            h.wait_until(lambda: d.running_models() == [], 20, what="all stopped")
            slow = "/v1/chat/completions?delay_ms=800"
            calls = [h.Call(lambda: d.chat("workers", path=slow, timeout=30)) for _ in range(2)]
            got = sorted(served_by(c.get())[0] for c in calls)
            self.assertEqual(got, ["a", "b"], "spillover 1: the second request starts b")
            r = d.request("POST", "/upstream/public/v1/chat/completions", h.chat_body("public"))
            self.assertEqual(r.status, 404, r)
            listed = {m["id"]: m for m in d.request("GET", "/v1/models").json()["data"]}
            self.assertEqual(listed["public"]["meta"]["llamaswap"]["type"], "selector")
            self.assertEqual(listed["public"]["meta"]["llamaswap"]["targets"], ["b", "a"])
            self.assertEqual(listed["public"]["name"], "Public")
            self.assertEqual(listed["workers"]["meta"]["llamaswap"]["spillover"], 1)


class Profiles(unittest.TestCase):
    def config(self, **top):
        cfg = {"models": models("real", "other", "hidden"),
               "selectors": {"sel": {"strategy": "pin", "targets": ["other"]}},
               "profiles": {"coding": {"description": "Coding", "pins": {
                   "public": "real", "via-sel": "sel", "other": "", "expose": "hidden"}}}}
        cfg["models"]["hidden"]["unlisted"] = True
        cfg.update(top)
        return cfg

    def test_api_events_and_requests(self):
        with h4.Daemon(self.config()) as d:
            r = d.request("GET", "/api/profiles")
            self.assertEqual(r.json(), {"active": None, "profiles": [{
                "id": "coding", "description": "Coding",
                "pins": {"expose": "hidden", "other": "", "public": "real", "via-sel": "sel"}}]})
            self.assertEqual(d.chat("public").status, 404, "no profile active: no pin")
            with h4.EventStream(d.port, "/api/events") as ev:
                ev.wait_event(lambda es: any(t == "profileChanged" for t, _, _ in es), 5)
                r = d.request("PUT", "/api/profiles/active", {"name": "coding"})
                self.assertEqual((r.status, r.json()), (200, {"active": "coding"}))
                es = ev.wait_event(lambda es: [x for x in es if x[0] == "profileChanged" and
                                               x[1] == {"active": "coding"}] and es, 5)
                kinds = [t for t, _, _ in es]
                last = len(kinds) - 1 - kinds[::-1].index("profileChanged")
                self.assertEqual(kinds[last + 1:last + 2], ["modelStatus"],
                                 "a fresh modelStatus follows profileChanged")
            self.assertEqual(served_by(d.chat("public", timeout=30)), ("real", "real"))
            self.assertEqual(served_by(d.chat("via-sel", timeout=30)), ("other", "other"))
            r = d.chat("other")
            self.assertEqual(r.status, 404, r)
            self.assertIn("disabled by the active profile 'coding'", r.json()["error"]["message"])
            # /upstream paths follow the pins too (the body stays as it is).
            r = d.request("POST", "/upstream/public/v1/chat/completions", h.chat_body("public"))
            self.assertEqual(served_by(r), ("real", "public"))
            ids = [m["id"] for m in d.request("GET", "/v1/models").json()["data"]]
            self.assertEqual(ids, ["expose", "public", "real", "sel", "via-sel"],
                             "pins listed, the disabled 'other' and unlisted 'hidden' not")
            for body, status in ((b"[1]", 400), (b"{}", 400), (b'{"name": 5}', 400),
                                 (b'{"name": "missing"}', 404), (b"not json", 400)):
                r = d.request("PUT", "/api/profiles/active", body,
                              headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, status, (body, r))
            r = d.request("PUT", "/api/profiles/active", {"name": None})
            self.assertEqual(r.json(), {"active": None})
            self.assertEqual(d.chat("public").status, 404)

    def test_default_profile_is_active_at_start_and_after_reload(self):
        with h4.Daemon(self.config(defaultProfile="coding")) as d:
            self.assertEqual(d.request("GET", "/api/profiles").json()["active"], "coding")
            self.assertEqual(served_by(d.chat("public", timeout=30))[0], "real")
            d.request("PUT", "/api/profiles/active", {"name": None})
            self.assertTrue(d.sighup())
            self.assertEqual(d.request("GET", "/api/profiles").json()["active"], "coding")


if __name__ == "__main__":
    h.main()
