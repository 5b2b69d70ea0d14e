#!/usr/bin/env python3
"""SSE added latency per chunk: streamed chat completions from the fake upstream (one `data:`
event every 20 ms, each alone in its own write, carrying its CLOCK_MONOTONIC send time via
`?stamp=1`), read straight from the upstream (*direct*), through nginx (one worker,
proxy_buffering off, keep-alive upstream) and through llama-swap (its defaults, and with
`captureBuffer: 0`: no copy of the response kept for /api/captures); the client takes
CLOCK_MONOTONIC when the recv() that completes each event returns (same machine, same clock)
and records arrival - send. S concurrent streams of K chunks each, their starts spread evenly
over one chunk interval; rounds interleaved (the order rotates each round).
Prints result lines for bench/report.py on stdout.

usage: sse_latency.py --daemon PATH --fake PATH --nginx PATH [--rounds N] [--chunks K]
                      [--streams 1,32] [--work DIR]

Lines:
  sse TARGET streams=S round=R chunks=N p50_us=.. p90_us=.. p99_us=.. max_us=..
      proxy_cpu_us_per_chunk=C           (N: events measured in the round, all streams; C: the
                                          proxy's CPU time over the round (schedstat) / N)
  sserss TARGET streams=S round=R rss_before_kb=A rss_mid_kb=B   (the proxy's VmRSS before the
                                          round and half-way through it)
Every process it starts is stopped by pid at exit.
"""
import argparse
import os
import re
import selectors
import shutil
import socket
import sys
import tempfile
import time

from benchlib import Procs, cpu_ns, free_port, start_nginx_proxy, wait_http

INTERVAL_MS = 20
STAMP = re.compile(rb'"t_ns":"(\d+)"')
BODY = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"one two three"}]}'


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stream:
    """One streamed request on a connection of its own: an incremental HTTP/1.1 response
    reader (chunked or until close) that splits the body into SSE events."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.req = (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (path.encode(), len(BODY))
                    + BODY)
        self.raw = bytearray()
        self.body = bytearray()
        self.head = None
        self.chunked = False
        self.need = None  # bytes left of the current HTTP chunk (None: at a size line)
        self.done = False
        self.lat_ns = []

    def send(self):
        self.sock.sendall(self.req)  # small: fits the socket buffer

    def feed(self, data, now):
        self.raw += data
        if self.head is None:
            i = self.raw.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = bytes(self.raw[:i]).decode("latin-1")
            del self.raw[:i + 4]
            status = self.head.split(None, 2)[1]
            if status != "200":
                sys.exit("HTTP %s: %s" % (status, self.head))
            self.chunked = bool(re.search(r"(?im)^transfer-encoding:\s*chunked", self.head))
        if not self.chunked:
            self.body += self.raw
            self.raw.clear()
        while self.chunked and not self.done:
            if self.need is None:
                i = self.raw.find(b"\r\n")
                if i < 0:
                    break
                size = int(bytes(self.raw[:i]).split(b";")[0], 16)
                del self.raw[:i + 2]
                if size == 0:
                    self.done = True
                    break
                self.need = size
            if len(self.raw) < self.need + 2:
                break
            self.body += self.raw[:self.need]
            del self.raw[:self.need + 2]
            self.need = None
        while True:
            i = self.body.find(b"\n\n")
            if i < 0:
                break
            ev = bytes(self.body[:i])
            del self.body[:i + 2]
            m = STAMP.search(ev)
            if m:
                self.lat_ns.append(now - int(m.group(1)))
            elif ev.startswith(b"data: [DONE]"):
                self.done = True


def run_streams(port, path, n, on_half=None, half_at=None):
    """n concurrent streams, their requests sent INTERVAL_MS / n apart; returns the latencies
    (ns) of every stamped event. on_half() is called once, half_at seconds after the start."""
    streams = [Stream(port, path) for _ in range(n)]
    sel = selectors.DefaultSelector()
    for s in streams:
        sel.register(s.sock, selectors.EVENT_READ, s)
    t0 = time.monotonic()
    due = [t0 + i * INTERVAL_MS / 1000.0 / n for i in range(n)]
    sent = 0
    live = n
    deadline = t0 + 120
    while live:
        now = time.monotonic()
        while sent < n and due[sent] <= now:
            streams[sent].send()
            sent += 1
        if on_half is not None and now - t0 >= half_at:
            on_half()
            on_half = None
        if now > deadline:
            sys.exit("streams on port %d did not finish within 120 s" % port)
        timeout = 0.05
        if sent < n:
            timeout = min(timeout, max(0.0, due[sent] - now))
        for key, _ in sel.select(timeout):
            s = key.data
            try:
                data = s.sock.recv(65536)
            except BlockingIOError:
                continue
            t = time.monotonic_ns()
            if data:
                s.feed(data, t)
            if not data or s.done:
                if not s.done:
                    sys.exit("stream on port %d closed before its end" % port)
                sel.unregister(s.sock)
                s.sock.close()
                live -= 1
    sel.close()
    return [x for s in streams for x in s.lat_ns]


def pct(sorted_xs, p):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_xs) - 1, int(round(p / 100.0 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunks", type=int, default=120)
    ap.add_argument("--streams", default="1,32")
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sse-", dir=a.work)
    procs = Procs()
    try:
        run(a, work, procs)
    finally:
        procs.stop_all()
        if os.environ.get("BENCH_KEEP") == "1":
            sys.stderr.write("sse_latency: scratch kept in %s\n" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(a, work, procs):
    log = open(os.path.join(work, "procs.log"), "ab")
    up = free_port()
    fake = procs.start([a.fake, "--port", str(up), "--model", "m", "--log-lines", "0",
                        "--tokens", str(a.chunks), "--tps", str(1000 // INTERVAL_MS)], log)
    wait_http("http://127.0.0.1:%d/health" % up, fake, "the fake upstream")

    ngx, ngx_port = start_nginx_proxy(procs, a.nginx, work, up, log, 64)

    targets = [("direct", up, None), ("nginx", ngx_port, ngx.pid)]
    for name, extra in (("llama-swap", ""), ("llama-swap-nocapture", "captureBuffer: 0\n")):
        cfg = os.path.join(work, name + ".yaml")
        with open(cfg, "w") as f:
            f.write("""logLevel: warn
%smodels:
  m:
    cmd: sleep infinity
    proxy: http://127.0.0.1:%d
    checkEndpoint: /health
    concurrencyLimit: 1000
""" % (extra, up))
        port = free_port()
        p = procs.start([a.daemon, "--config", cfg, "--listen", "127.0.0.1:%d" % port], log)
        wait_http("http://127.0.0.1:%d/health" % port, p, name)
        targets.append((name, port, p.pid))
    path = "/v1/chat/completions?stamp=1"
    for _, port, _ in targets:  # warm: starts the model, opens the proxies' upstream pools
        if not run_streams(port, path, 2):
            sys.exit("no stamped events from port %d" % port)

    streams = [int(x) for x in a.streams.split(",") if x]
    for n in streams:
        for r in range(1, a.rounds + 1):
            k = (r - 1) % len(targets)
            for name, port, pid in targets[k:] + targets[:k]:  # interleaved, order rotating
                c0 = cpu_ns(pid) if pid else 0
                rss0 = rss_kb(pid) if pid else 0
                mid = []
                on_half = (lambda: mid.append(rss_kb(pid))) if pid else None
                lat = sorted(run_streams(port, path, n, on_half, a.chunks * INTERVAL_MS / 2000.0))
                cpu_us = (cpu_ns(pid) - c0) / 1e3 if pid else 0.0
                if len(lat) < n * a.chunks:
                    sys.exit("%s: %d of %d events" % (name, len(lat), n * a.chunks))
                print("sse %s streams=%d round=%d chunks=%d p50_us=%.1f p90_us=%.1f p99_us=%.1f "
                      "max_us=%.1f proxy_cpu_us_per_chunk=%.2f"
                      % (name, n, r, len(lat), pct(lat, 50) / 1e3, pct(lat, 90) / 1e3,
                         pct(lat, 99) / 1e3, lat[-1] / 1e3, cpu_us / len(lat)), flush=True)
                if pid and mid:
                    print("sserss %s streams=%d round=%d rss_before_kb=%d rss_mid_kb=%d"
                          % (name, n, r, rss0, mid[0]), flush=True)


if __name__ == "__main__":
    main()
