#!/usr/bin/env python3
"""Behind an upstream that behaves like llama-server (the fake upstream with its
llama-server flags: a fixed HTTP thread pool holding a thread on each idle keep-alive
connection for 5 s, one or four slots, no TCP_NODELAY), measured straight and through
llama-swap in the same run. Prints result lines for bench/report.py on stdout.

usage: llama_like.py --daemon PATH --fake PATH [--daemon-b PATH] [--rounds N] [--work DIR]

Lines:
  burst SCENARIO TARGET n=N round=R wall_ms=W max_ms=M ok=K
  ttfc TARGET MODE round=R ms=T        (MODE: reused or fresh upstream connection)
Every process it starts is stopped by pid at exit.
"""
import argparse
import http.client
import json
import os
import signal
import sys
import tempfile
import threading
import time

from benchlib import Procs, free_port

SCENARIOS = {
    # llama-server's default on a 2-core machine: max(n_parallel + 2, cores - 1) threads.
    "2core": dict(threads=3, parallel=1),
    # A newer llama-server (4 slots by default) on the same machine.
    "4slots": dict(threads=6, parallel=4),
}
TOKENS, TPS = 5, 1000  # 5 ms of generation per request


def fake_args(fake, port, scenario, tokens=TOKENS, tps=TPS):
    sc = SCENARIOS[scenario]
    return [fake, "--port", str(port), "--model", "m", "--http-threads", str(sc["threads"]),
            "--parallel", str(sc["parallel"]), "--keepalive-ms", "5000", "--llama-log",
            "--no-nodelay", "--no-reuseaddr", "--tokens", str(tokens), "--tps", str(tps)]


def wait_ok(port, path, timeout=30, body=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            if body is None:
                c.request("GET", path)
            else:
                c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("bench: nothing answered 200 on port %d %s" % (port, path))


def chat_body(stream=False):
    return {"model": "m", "stream": stream,
            "messages": [{"role": "user", "content": "one two three"}]}


def one_request(port, stream=False):
    """A request on a connection of its own, closed after (as curl, or a client without a
    pool): the client side never holds a server thread."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request("POST", "/v1/chat/completions", json.dumps(chat_body(stream)),
                  {"Content-Type": "application/json", "Connection": "close"})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def burst(port, n):
    times, statuses = [], []
    lock = threading.Lock()
    gate = threading.Barrier(n + 1)

    def run():
        gate.wait()
        t0 = time.monotonic()
        try:
            st = one_request(port)
        except OSError as e:
            st = str(e)
        with lock:
            times.append(time.monotonic() - t0)
            statuses.append(st)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    gate.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join(120)
    wall = time.monotonic() - t0
    return wall, max(times), sum(1 for s in statuses if s == 200)


def first_chunk_ms(conn):
    """Time from sending a streamed request on `conn` to its first SSE data line."""
    t0 = time.monotonic()
    conn.request("POST", "/v1/chat/completions", json.dumps(chat_body(True)),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    first = None
    while True:
        line = r.readline()
        if not line:
            break
        if first is None and line.startswith(b"data:"):
            first = time.monotonic() - t0
    assert r.status == 200 and first is not None, r.status
    return first * 1000


def daemon_config(path, fake, scenario, extra):
    cmd = " ".join(fake_args(fake, "${PORT}", scenario, tokens=TOKENS, tps=TPS))
    lines = ["logLevel: warn", "models:", "  m:", "    cmd: " + cmd,
             "    proxy: http://127.0.0.1:${PORT}", "    concurrencyLimit: 500"]
    lines += ["    " + x for x in extra]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--daemon-b")
    ap.add_argument("--fake", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work")
    ap.add_argument("--scenarios", help="comma-separated subset of %s; '' for none"
                    % ",".join(SCENARIOS))
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="llama-like.")
    procs = Procs()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        run(a, work, procs)
    finally:
        procs.stop_all()


def start_daemon(procs, binary, cfg, work, name):
    port = free_port()
    log = open(os.path.join(work, name + ".log"), "w")
    p = procs.start([binary, "--config", cfg, "--listen", "127.0.0.1:%d" % port], log)
    wait_ok(port, "/health")
    wait_ok(port, "/v1/chat/completions", timeout=60, body=chat_body())  # loads the model
    return p, port


def run(a, work, procs):
    out = sys.stdout
    scenarios = SCENARIOS if a.scenarios is None else [x for x in a.scenarios.split(",") if x]
    for scenario in scenarios:
        targets = []
        port = free_port()
        log = open(os.path.join(work, "fake-%s.log" % scenario), "w")
        targets.append(("direct", procs.start(fake_args(a.fake, port, scenario), log), port))
        wait_ok(port, "/health")
        for name, binary, extra in (("llama-swap", a.daemon, []),
                                    ("llama-swap-unlimited", a.daemon,
                                     ["upstreamConnections: unlimited"]),
                                    ("llama-swap-b", a.daemon_b, [])):
            if not binary:
                continue
            cfg = os.path.join(work, "%s-%s.yaml" % (name, scenario))
            daemon_config(cfg, a.fake, scenario, extra)
            p, dport = start_daemon(procs, binary, cfg, work, "%s-%s" % (name, scenario))
            targets.append((name, p, dport))
        for n in (20, 100):
            for r in range(1, a.rounds + 1):
                for name, _, tport in targets:  # interleaved
                    if name == "llama-swap-unlimited" and (n != 20 or r != 1):
                        continue  # the stall it shows takes 30 s a round: once is enough
                    wall, slowest, ok = burst(tport, n)
                    print("burst %s %s n=%d round=%d wall_ms=%.1f max_ms=%.1f ok=%d"
                          % (scenario, name, n, r, wall * 1000, slowest * 1000, ok), file=out)
                    out.flush()
                    time.sleep(5.5)  # every keep-alive hold of the last burst has expired
        for _, p, _ in targets:
            procs.stop(p)

    # Time to the first streamed chunk: the upstream writes the response head, then 10 ms
    # later the first chunk, without TCP_NODELAY; on a reused connection the proxy's delayed
    # ACK of the head holds that chunk (Nagle) unless the proxy acknowledges at once.
    for name, binary in (("llama-swap", a.daemon), ("llama-swap-b", a.daemon_b)):
        if not binary:
            continue
        for mode, extra in (("reused", []), ("fresh", ["timeouts:", "  idleConn: 0"])):
            cfg = os.path.join(work, "ttfc-%s-%s.yaml" % (name, mode))
            cmd = " ".join(fake_args(a.fake, "${PORT}", "4slots", tokens=3, tps=100))
            lines = ["logLevel: warn", "models:", "  m:", "    cmd: " + cmd,
                     "    proxy: http://127.0.0.1:${PORT}"] + ["    " + x for x in extra]
            with open(cfg, "w") as f:
                f.write("\n".join(lines) + "\n")
            p, dport = start_daemon(procs, binary, cfg, work, "ttfc-%s-%s" % (name, mode))
            conn = http.client.HTTPConnection("127.0.0.1", dport, timeout=30)
            first_chunk_ms(conn)  # warm
            for r in range(1, 3 * a.rounds + 1):
                print("ttfc %s %s round=%d ms=%.2f" % (name, mode, r, first_chunk_ms(conn)),
                      file=out)
                out.flush()
            conn.close()
            procs.stop(p)


if __name__ == "__main__":
    main()
