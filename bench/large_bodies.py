#!/usr/bin/env python3
"""Large bodies relayed: a download (the fake upstream's /blob, Content-Length) and multipart
uploads with the `model` field first and last, straight to the upstream (*direct*), through
nginx (one worker, buffering off) and through llama-swap with and without its splice relay
(LLAMA_SWAP_NO_SPLICE=1), rounds interleaved; downloads also through bench/splice_relay.c (a
bare TCP relay, no HTTP: what any user-space relay could do here) with a 64 KiB, 256 KiB and
1 MiB pipe and in its recv/send mode (256 KiB buffer); then strace of the daemon during one
download each way: system calls, and bytes that went through its memory, per MB relayed.
Prints result lines for bench/report.py on stdout.

usage: large_bodies.py --daemon PATH --fake PATH --nginx PATH [--rounds N] [--mb MB] [--work DIR]
                       [--relays SPEC]   (SPEC: NAME:PIPE_BYTES[:copy],...; '' for none)

Lines:
  large KIND TARGET round=R bytes=B seconds=S proxy_cpu_s=C client_cpu_s=L upstream_cpu_s=U
        (KIND: download, upload-first, upload-last; C, L, U: CPU time, user + system, of the
        proxy, of curl and of the fake upstream)
  largesys MODE SYSCALL calls=N bytes=B mb=M      (MODE: splice or copy; bytes: returned sizes)
  coldupload TARGET round=R seconds=S mb=M rate_mb=T load_ms=L
        (a multipart upload of M MiB at T MB/s (curl --limit-rate) to a model that is not
        running and takes L ms to load: TARGET model-first or model-last through llama-swap,
        or direct: the same upload to the running upstream, the transfer alone)
Every process it starts is stopped by pid at exit.
"""
import argparse
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import Procs, cpu_ns, free_port, start_nginx_proxy, wait_http

RELAYS = "relay-64k:65536,relay-256k:262144,relay-1m:1048576,relay-copy:262144:copy"
# The cold-model upload: a link of about 1 Gb/s, a model that loads in 1.5 s.
COLD_MB, COLD_RATE_MB, COLD_LOAD_MS = 256, 100, 1500


def children_cpu_s():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def curl(args):
    """Runs curl; returns (bytes, seconds) from its -w output."""
    r = subprocess.run(["curl", "-s", "--max-time", "600", "-w", "%{size_download} %{size_upload}"
                        " %{time_total} %{http_code}"] + args, stdout=subprocess.PIPE,
                       universal_newlines=True)
    fields = r.stdout.split()[-4:]
    down, up, secs, code = int(fields[0]), int(fields[1]), float(fields[2]), fields[3]
    if r.returncode != 0 or code != "200":
        sys.exit("curl %s failed: rc %d, HTTP %s" % (" ".join(args), r.returncode, code))
    return max(down, up), secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mb", type=int, default=2048)
    ap.add_argument("--work", default=None)
    ap.add_argument("--relays", default=RELAYS)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="large-", dir=a.work)
    size = a.mb * 1024 * 1024
    procs = Procs()
    try:
        run(a, work, size, procs)
    finally:
        procs.stop_all()
        if os.environ.get("BENCH_KEEP") == "1":
            sys.stderr.write("large_bodies: scratch kept in %s\n" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(a, work, size, procs):
    log = open(os.path.join(work, "procs.log"), "ab")
    up = free_port()
    fake = procs.start([a.fake, "--port", str(up), "--model", "m", "--log-lines", "0"], log)
    wait_http("http://127.0.0.1:%d/health" % up, fake, "the fake upstream")

    # nginx: one worker, no buffering either way, as the daemon relays.
    ngx, ngx_port = start_nginx_proxy(
        procs, a.nginx, work, up, log, 8, server="        client_max_body_size 0;\n",
        location="""            proxy_request_buffering off;
            proxy_buffer_size 64k;
            proxy_buffers 8 64k;
            proxy_busy_buffers_size 128k;
""")

    cfg = os.path.join(work, "ls.yaml")
    with open(cfg, "w") as f:
        f.write("""logLevel: warn
server:
  maxBodyBytes: %d
  spoolDir: %s
models:
  m:
    cmd: sleep infinity
    proxy: http://127.0.0.1:%d
    checkEndpoint: /health
""" % (size + 1024 * 1024, work, up))
    daemons = {}
    for name, extra in (("llama-swap", {}), ("llama-swap-copy", {"LLAMA_SWAP_NO_SPLICE": "1"})):
        port = free_port()
        env = dict(os.environ, **extra)
        p = procs.start([a.daemon, "--config", cfg, "--listen", "127.0.0.1:%d" % port], log, env)
        wait_http("http://127.0.0.1:%d/health" % port, p, name)
        daemons[name] = (p, port)
        curl(["-o", "/dev/null", "http://127.0.0.1:%d/upstream/m/blob?size=10" % port])  # start

    base = {"direct": "http://127.0.0.1:%d" % up, "nginx": "http://127.0.0.1:%d" % ngx_port}
    for name, (_, port) in daemons.items():
        base[name] = "http://127.0.0.1:%d/upstream/m" % port
    order = ["direct", "nginx", "llama-swap", "llama-swap-copy"]
    pid_of = {"direct": None, "nginx": ngx.pid}
    for name, (p, _) in daemons.items():
        pid_of[name] = p.pid

    # The bare relay, built here (one C file): downloads only.
    relays = [x.split(":") for x in a.relays.split(",") if x]
    relay_bin = os.path.join(work, "splice_relay")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splice_relay.c")
    if relays and (not shutil.which("gcc") or
                   subprocess.run(["gcc", "-O2", "-o", relay_bin, src],
                                  stdout=sys.stderr).returncode != 0):
        sys.stderr.write("large_bodies: cannot build %s: no relay rows\n" % src)
        relays = []
    for spec in relays:
        name, port = spec[0], free_port()
        p = procs.start([relay_bin, str(port), str(up)] + spec[1:], log)
        wait_http("http://127.0.0.1:%d/health" % port, p, name)
        base[name] = "http://127.0.0.1:%d" % port
        pid_of[name] = p.pid
    relay_names = [spec[0] for spec in relays]

    # A sparse file as the upload: reading it costs no disk.
    data = os.path.join(work, "upload.bin")
    with open(data, "wb") as f:
        f.truncate(size)

    def download(target):
        return curl(["-o", "/dev/null", base[target] + "/blob?size=%d" % size])

    def upload(target, model_first):
        parts = ["-F", "model=m", "-F", "file=@%s;type=application/octet-stream" % data]
        if not model_first:
            parts = parts[2:] + parts[:2]
        url = base[target] + "/v1/audio/transcriptions?hash=0"
        if target.startswith("llama-swap"):
            url = "http://127.0.0.1:%d/v1/audio/transcriptions?hash=0" % daemons[target][1]
        return curl(["-o", "/dev/null"] + parts + [url])

    def cpu_s(pid):
        return 0.0 if pid is None else cpu_ns(pid) / 1e9

    # One untimed upload first: the first read of the sparse file ran at a fifth of the
    # speed of the later ones, and it fell on the first round's direct upload.
    upload("direct", True)
    for r in range(1, a.rounds + 1):
        for kind in ("download", "upload-first", "upload-last"):
            # From the second round the order is shuffled (a fixed seed: the same every run),
            # so no target always follows the same one: the one right after nginx's transfer
            # was seen to lose up to a third of its speed to that position alone.
            targets = order + (relay_names if kind == "download" else [])
            if r > 1:
                random.Random("%d %s" % (r, kind)).shuffle(targets)
            for target in targets:
                c0, l0, u0 = cpu_s(pid_of[target]), children_cpu_s(), cpu_s(fake.pid)
                if kind == "download":
                    n, secs = download(target)
                else:
                    n, secs = upload(target, kind == "upload-first")
                cpu = cpu_s(pid_of[target]) - c0
                print("large %s %s round=%d bytes=%d seconds=%.3f proxy_cpu_s=%.2f "
                      "client_cpu_s=%.2f upstream_cpu_s=%.2f"
                      % (kind, target, r, n, secs, cpu, children_cpu_s() - l0,
                         cpu_s(fake.pid) - u0), flush=True)

    # A cold model and a client on a real link: with the model field first the upload and the
    # model's load overlap (the request is taken while its body arrives); last, they add up.
    cold_cfg = os.path.join(work, "ls-cold.yaml")
    with open(cold_cfg, "w") as f:
        f.write("""logLevel: warn
server:
  spoolDir: %s
models:
  cold:
    cmd: %s --port ${PORT} --model cold --log-lines 0 --load-delay-ms %d
    proxy: http://127.0.0.1:${PORT}
""" % (work, a.fake, COLD_LOAD_MS))
    cold_port = free_port()
    cold = procs.start([a.daemon, "--config", cold_cfg, "--listen", "127.0.0.1:%d" % cold_port],
                       log)
    wait_http("http://127.0.0.1:%d/health" % cold_port, cold, "the cold-model daemon")
    cold_data = os.path.join(work, "cold.bin")
    with open(cold_data, "wb") as f:
        f.truncate(COLD_MB << 20)
    rate = ["--limit-rate", "%dM" % COLD_RATE_MB]
    for r in range(1, a.rounds + 1):
        for target in ("direct", "model-first", "model-last"):
            parts = ["-F", "model=cold", "-F", "file=@%s;type=application/octet-stream" % cold_data]
            if target == "model-last":
                parts = parts[2:] + parts[:2]
            if target == "direct":
                url = "http://127.0.0.1:%d/v1/audio/transcriptions?hash=0" % up
            else:
                curl(["-o", "/dev/null", "http://127.0.0.1:%d/unload" % cold_port])  # stopped
                url = "http://127.0.0.1:%d/v1/audio/transcriptions?hash=0" % cold_port
            _, secs = curl(["-o", "/dev/null"] + rate + parts + [url])
            print("coldupload %s round=%d seconds=%.3f mb=%d rate_mb=%d load_ms=%d"
                  % (target, r, secs, COLD_MB, COLD_RATE_MB, COLD_LOAD_MS), flush=True)

    # strace: one download of min(size, 1 GiB) and two uploads (model first, model last) of
    # min(size, 512 MiB) through each daemon, every relay call traced.
    if shutil.which("strace"):
        n = min(size, 1024 * 1024 * 1024)
        n_up = min(size, 512 * 1024 * 1024)
        up_data = os.path.join(work, "upload-strace.bin")
        with open(up_data, "wb") as f:
            f.truncate(n_up)
        for direction in ("download", "upload", "upload-last"):
            for mode, name in (("splice", "llama-swap"), ("copy", "llama-swap-copy")):
                p, port = daemons[name]
                out = os.path.join(work, "strace-%s-%s.txt" % (direction, mode))
                st = procs.start(["strace", "-qq", "-e", "trace=read,recvfrom,recvmsg,readv,write,"
                                  "sendto,sendmsg,writev,pwrite64,splice,sendfile,mmap,munmap,"
                                  "epoll_wait,"
                                  "epoll_ctl", "-o", out, "-p", str(p.pid)], log)
                time.sleep(0.5)
                if direction == "download":
                    curl(["-o", "/dev/null",
                          "http://127.0.0.1:%d/upstream/m/blob?size=%d" % (port, n)])
                else:
                    parts = ["-F", "model=m", "-F",
                             "file=@%s;type=application/octet-stream" % up_data]
                    if direction == "upload-last":
                        parts = parts[2:] + parts[:2]
                    curl(["-o", "/dev/null"] + parts +
                         ["http://127.0.0.1:%d/v1/audio/transcriptions?hash=0" % port])
                time.sleep(0.3)
                procs.stop(st, signal.SIGINT)
                calls, nbytes = {}, {}
                for line in open(out, errors="replace"):
                    m = re.match(r"(\w+)\(.*\)\s+=\s+(-?\d+)", line)
                    if not m:
                        continue
                    sc, ret = m.group(1), int(m.group(2))
                    calls[sc] = calls.get(sc, 0) + 1
                    if ret > 0 and sc not in ("epoll_wait", "epoll_ctl", "mmap", "munmap"):
                        nbytes[sc] = nbytes.get(sc, 0) + ret
                mb = (n if direction == "download" else n_up) >> 20
                for sc in sorted(calls):
                    print("largesys %s%s %s calls=%d bytes=%d mb=%d"
                          % (mode, "" if direction == "download" else "-" + direction, sc,
                             calls[sc], nbytes.get(sc, 0), mb), flush=True)


if __name__ == "__main__":
    main()
