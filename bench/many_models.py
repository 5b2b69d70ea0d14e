#!/usr/bin/env python3
"""Many models configured: the daemon's start-up (exec to its first answer on /health) and its
CPU per proxied request with 10 and with 1,000 models in the config (each with an alias), the
requests going to one of them, rounds interleaved. Prints result lines for bench/report.py.

usage: many_models.py --daemon PATH --fake PATH [--rounds N] [--requests N] [--work DIR]

Lines:
  many N round=R start_ms=S cpu_us_per_request=C requests=K
Every process it starts is stopped by pid at exit.
"""
import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_seconds, free_port


def write_config(path, n, fake):
    with open(path, "w") as f:
        f.write("logLevel: warn\nmodels:\n")
        for i in range(n):
            f.write("  model-%d:\n    cmd: %s --port ${PORT} --model model-%d --log-lines 0\n"
                    "    aliases: [alias-%d]\n" % (i, fake, i, i))


def load(port, model, n, conns=10):
    body = ('{"model":"%s","messages":[{"role":"user","content":"hello"}]}' % model).encode()
    per = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
    for count in per:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(count):
            c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                sys.exit("HTTP %d from the daemon" % r.status)
        c.close()


def one(daemon, cfg, n, rnd, requests):
    port = free_port()
    t0 = time.monotonic()
    p = subprocess.Popen([daemon, "--config", cfg, "--listen", "127.0.0.1:%d" % port],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        started = None
        while time.monotonic() - t0 < 10:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    started = time.monotonic()
                    break
            except OSError:
                time.sleep(0.001)
        if started is None:
            sys.exit("the daemon with %d models did not answer /health within 10 s" % n)
        load(port, "model-5", 50)  # the model starts; connections warm
        c0 = cpu_seconds(p.pid)
        load(port, "model-5", requests)
        cpu = cpu_seconds(p.pid) - c0
        print("many %d round=%d start_ms=%.1f cpu_us_per_request=%.1f requests=%d"
              % (n, rnd, (started - t0) * 1000, cpu / requests * 1e6, requests), flush=True)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="many-", dir=a.work)
    try:
        cfgs = {}
        for n in (10, 1000):
            cfgs[n] = os.path.join(work, "models-%d.yaml" % n)
            write_config(cfgs[n], n, a.fake)
        for r in range(1, a.rounds + 1):
            for n in (10, 1000):
                one(a.daemon, cfgs[n], n, r, a.requests)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
