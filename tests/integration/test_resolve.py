#!/usr/bin/env python3
"""Upstream host names (`proxy: http://NAME:PORT`) are looked up without blocking the daemon:
a name from /etc/hosts works, a name no server answers for leaves every other request
served while it is looked up, and an unknown name fails the start with a clear error.

The test process first moves into private mount and network namespaces (root only), where
it replaces /etc/hosts and /etc/resolv.conf for itself and the daemon it starts: the DNS
server there is a UDP socket of the test's own that never answers (or refuses at once)."""

import ctypes
import os
import socket
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402
import nginx_front as nf  # noqa: E402

CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE, MS_BIND = 0x4000, 0x40000, 0x1000
NAME = "llama-upstream.test"
SILENT = "silent-dns.test"

_ready = None  # why the namespaces are missing, or "" when set up


def setup():
    """Private network namespace (nginx_front), then a private mount namespace in which
    /etc/hosts names NAME and /etc/resolv.conf points at 127.0.0.1 (nothing there yet)."""
    global _ready
    if not nf.setup():
        _ready = "no private network namespace here (needs root)"
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        _ready = "unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno())
        return
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        _ready = "making / private: %s" % os.strerror(ctypes.get_errno())
        return
    tmp = tempfile.mkdtemp(prefix="llama-swap-resolve-")
    files = {
        "/etc/hosts": "127.0.0.1 localhost\n127.0.0.1 %s\n" % NAME,
        "/etc/resolv.conf": "nameserver 127.0.0.1\noptions timeout:5 attempts:1\n",
    }
    for target, text in files.items():
        src = os.path.join(tmp, os.path.basename(target))
        with open(src, "w") as f:
            f.write(text)
        if libc.mount(src.encode(), target.encode(), None, MS_BIND, None) != 0:
            _ready = "bind-mounting %s: %s" % (target, os.strerror(ctypes.get_errno()))
            return
    _ready = ""


def model(host, **extra):
    m = {"cmd": h.fake_cmd(model="m"), "proxy": "http://%s:${PORT}" % host}
    m.update(extra)
    return m


class Resolve(unittest.TestCase):
    def setUp(self):
        if _ready:
            self.skipTest(_ready)

    def test_name_from_hosts_file(self):
        with h4.Daemon({"models": {"m": model(NAME)}}) as d:
            r = d.chat("m")
            self.assertEqual(r.status, 200, r)
            run = d.running()[0]
            self.assertEqual(run["state"], "ready")
            self.assertTrue(run["proxy"].startswith("http://%s:" % NAME), run)

    def test_lookup_does_not_block_the_daemon(self):
        # A DNS server that receives the query and never answers: the lookup takes the
        # resolver's whole timeout; the daemon answers everything else meanwhile.
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dns.bind(("127.0.0.1", 53))
        cfg = {"healthCheckTimeout": 60,
               "models": {"slow": model(SILENT), "other": {"cmd": h.fake_cmd(model="o")}},
               "groups": {"g": {"swap": False, "members": ["slow", "other"]}}}
        try:
            with h4.Daemon(cfg) as d:
                waiting = h4.Background(lambda: d.chat("slow", timeout=60))
                dns.settimeout(10)
                dns.recvfrom(512)  # the daemon's resolver asked: the lookup is under way
                # Served while the lookup waits out its 5 s: had the daemon blocked on it,
                # these would come after its failure, and `slow` would no longer be starting.
                self.assertEqual(d.request("GET", "/health").status, 200)
                self.assertEqual(d.chat("other").status, 200)
                self.assertEqual({e["model"]: e["state"] for e in d.running()}["slow"],
                                 "starting")
                r = waiting.result()
                self.assertEqual(r.status, 502, r)
                self.assertIn("cannot resolve '%s'" % SILENT, r.json()["error"]["message"])
                self.assertEqual(d.request("GET", "/health").status, 200)
        finally:
            dns.close()

    def test_unknown_name_fails_the_start(self):
        # Nothing listens on 127.0.0.1:53 here: the lookup fails at once.
        with h4.Daemon({"models": {"m": model("no-such-host.invalid")}}) as d:
            r = d.chat("m", timeout=30)
            self.assertEqual(r.status, 502, r)
            self.assertIn("cannot resolve 'no-such-host.invalid'", r.json()["error"]["message"])
            run = d.running()[0]
            self.assertEqual(run["state"], "failed", run)
            self.assertNotIn("pid", run, "the model's process (started meanwhile) is gone")


if __name__ == "__main__":
    setup()
    h.main()
