#!/usr/bin/env python3
"""Turns bench/run's raw results into BENCHMARKS.md (printed on stdout).

usage: report.py RESULTS key=value...   (machine facts and run parameters from bench/run)
"""
import statistics
import sys

results_path = sys.argv[1]
meta = dict(a.split("=", 1) for a in sys.argv[2:])


def kv(words):
    out = {}
    for w in words:
        if "=" in w:
            k, v = w.split("=", 1)
            out[k] = v
    return out


wrk, ready, rss, sysc = {}, [], [], {}
bursts, ttfc = {}, {}
large, largesys, many, coldup = {}, {}, {}, {}
sse, sserss = {}, {}
for line in open(results_path):
    p = line.split()
    if not p:
        continue
    if p[0] == "sse":  # sse TARGET streams=.. round=.. chunks=.. p50_us=.. p90_us=.. p99_us=.. ...
        r = kv(p[2:])
        sse.setdefault(int(r["streams"]), {}).setdefault(p[1], []).append(r)
        continue
    if p[0] == "sserss":  # sserss TARGET streams=.. round=.. rss_before_kb=.. rss_mid_kb=..
        r = kv(p[2:])
        sserss.setdefault(int(r["streams"]), {}).setdefault(p[1], []).append(r)
        continue
    if p[0] == "many":  # many N round=.. start_ms=.. cpu_us_per_request=.. requests=..
        many.setdefault(int(p[1]), []).append(kv(p[2:]))
        continue
    if p[0] == "large":  # large KIND TARGET round=.. bytes=.. seconds=.. proxy_cpu_s=..
        large.setdefault(p[1], {}).setdefault(p[2], []).append(kv(p[3:]))
        continue
    if p[0] == "coldupload":  # coldupload TARGET round=.. seconds=.. mb=.. rate_mb=.. load_ms=..
        coldup.setdefault(p[1], []).append(kv(p[2:]))
        continue
    if p[0] == "largesys":  # largesys MODE SYSCALL calls=.. bytes=.. mb=..
        largesys.setdefault(p[1], {})[p[2]] = kv(p[3:])
        continue
    if p[0] == "burst":  # burst SCENARIO TARGET n=.. round=.. wall_ms=.. max_ms=.. ok=..
        r = kv(p[3:])
        bursts.setdefault((p[1], int(r["n"])), {}).setdefault(p[2], []).append(r)
        continue
    if p[0] == "ttfc":  # ttfc TARGET MODE round=.. ms=..
        ttfc.setdefault((p[1], p[2]), []).append(float(kv(p[3:])["ms"]))
        continue
    if p[0] == "wrk" and p[2] != "warmup":
        wrk.setdefault(p[1], []).append(kv(p[3:]))
    elif p[0] == "ready":
        ready.append(kv(p[2:]))
    elif p[0] == "sys" and len(p) >= 4:
        sysc.setdefault(p[1], {})[p[2]] = kv(p[3:])
    elif p[0] == "rss":
        rss.append((p[1], kv(p[2:])))


def rps(r):
    return int(r["requests"]) / (int(r["duration_us"]) / 1e6)


def med(xs):
    return statistics.median(xs)


def ms(us):
    return "%.2f ms" % (us / 1000.0)


out = []
w = out.append
w("# Benchmarks")
w("")
w("Produced by `bench/run` (the whole file is rewritten on every run; do not edit by hand).")
w("")
w("| | |")
w("|---|---|")
w("| date | %s |" % meta.get("date", "?"))
w("| machine | %s cores (`nproc`), %s, %s RAM, %s |" % (meta.get("nproc"), meta.get("cpu"), meta.get("mem"),
                                                    meta.get("kernel")))
dirty = int(meta.get("dirty_src", "0") or 0)
w("| code | commit `%s`%s |" % (meta.get("commit"),
                             " plus %d uncommitted change(s) under src/" % dirty if dirty else ""))
if meta.get("build", "ok") != "ok":
    w("| build | **%s** |" % meta["build"])
w("| load average (1/5/15 min) | %s before the run, %s after (the latter includes this run's own load) |"
  % (meta.get("load_before"), meta.get("load_after")))
w("| tools | nginx %s, wrk %s |" % (meta.get("nginx"), meta.get("wrk")))
w("| command | `bench/run` (BENCH_SECONDS=%s BENCH_ROUNDS=%s BENCH_CONNS=%s BENCH_THREADS=%s "
  "BENCH_READY_REPS=%s BENCH_READY_DELAY=%s BENCH_RSS_REQUESTS=%s BENCH_LARGE_MB=%s BENCH_SSE_CHUNKS=%s) |"
  % (meta.get("seconds"), meta.get("rounds"), meta.get("conns"), meta.get("threads"), meta.get("ready_reps"),
     meta.get("ready_delay"), meta.get("rss_requests"), meta.get("large_mb"), meta.get("sse_chunks")))
w("")
w("The machine is shared and noisy, and the load generator, the proxy and the upstream all run on the same "
  "%s cores, so absolute numbers are only comparable within one run of this file; the ratios between the rows "
  "are the point." % meta.get("nproc"))
w("")

# ------------------------------------------------------------------ throughput
w("## 1. Proxy throughput (small non-streaming JSON POSTs, keep-alive)")
w("")
labels = {
    "direct": "(a) wrk → upstream directly",
    "nginx": "(b) wrk → nginx proxy → upstream",
    "llama-swap": "(c) wrk → llama-swap → upstream",
    "llama-swap-accesslog": "(d) as (c), with llama-swap's default per-request log (`logLevel: info`)",
    "llama-swap-b": "(e) as (c), another binary: `%s`" % meta.get("daemon_b"),
}
w("`wrk -t%s -c%s -d%ss` POSTing a %s-byte chat body to `/v1/chat/completions`, %s rounds interleaved "
  "(a, b, c, d, a, b, c, d, …); each figure is the median of the rounds (the latency percentiles are "
  "medians of each round's percentile)."
  % (meta.get("threads"), meta.get("conns"), meta.get("seconds"), meta.get("body_bytes"), meta.get("rounds")))
w("")
w("| configuration | req/s | p50 latency | p99 latency | proxy CPU per request (user + system) | upstream CPU per request | req/s of each round | socket errors / non-2xx |")
w("|---|---:|---:|---:|---:|---:|---|---|")
tck = float(meta.get("clk_tck", "100"))


def cpu_us(r, key):
    return int(r[key]) / tck * 1e6 / max(1, int(r["requests"]))
med_rps = {}
rng = {}
med_cpu = {}
med_user, med_sys = {}, {}  # the proxy's CPU per request in user space and in the kernel
med_busy, med_idle = {}, {}  # all cores: busy CPU per request, and the idle share
for name in ["direct", "nginx", "llama-swap", "llama-swap-accesslog", "llama-swap-b"]:
    runs = wrk.get(name, [])
    if not runs:
        continue
    rs = [rps(r) for r in runs]
    med_rps[name] = med(rs)
    rng[name] = (min(rs), max(rs))
    errs = sum(int(r[k]) for r in runs for k in ("err_connect", "err_read", "err_write", "err_timeout"))
    non2xx = sum(int(r["non2xx"]) for r in runs)
    if name != "direct":
        med_cpu[name] = med([cpu_us(r, "proxy_cpu_ticks") for r in runs])
    pcpu = "–" if name == "direct" else "%.1f µs" % med_cpu[name]
    if name != "direct" and all("proxy_sys_ticks" in r for r in runs):
        med_user[name] = med([cpu_us(r, "proxy_user_ticks") for r in runs])
        med_sys[name] = med([cpu_us(r, "proxy_sys_ticks") for r in runs])
        pcpu += " (%.1f + %.1f)" % (med_user[name], med_sys[name])
    if all("machine_busy_ticks" in r for r in runs):
        med_busy[name] = med([cpu_us(r, "machine_busy_ticks") for r in runs])
        med_idle[name] = med([int(r["machine_idle_ticks"]) /
                              max(1, int(r["machine_idle_ticks"]) + int(r["machine_busy_ticks"])) for r in runs])
    w("| %s | %.0f | %s | %s | %s | %.1f µs | %s | %d / %d |" % (
        labels[name], med_rps[name], ms(med([int(r["p50_us"]) for r in runs])),
        ms(med([int(r["p99_us"]) for r in runs])), pcpu,
        med([cpu_us(r, "upstream_cpu_ticks") for r in runs]), ", ".join("%.0f" % x for x in rs), errs, non2xx))
w("")
if "nginx" in med_rps and "llama-swap" in med_rps:
    ratio = med_rps["llama-swap"] / med_rps["nginx"]
    overlap = rng["llama-swap"][0] <= rng["nginx"][1] and rng["nginx"][0] <= rng["llama-swap"][1]
    cpu_ls, cpu_ngx = med_cpu.get("llama-swap", 0), med_cpu.get("nginx", 0)
    verdict = "met" if ratio >= 1.2 and cpu_ls < cpu_ngx else "not met"
    w("**llama-swap vs nginx:** llama-swap's median is %.0f req/s, %.0f%% of nginx's %.0f req/s, with "
      "%.1f µs of proxy CPU per request against nginx's %.1f µs (target: at least 1.2× nginx's req/s with "
      "less CPU per request — %s on this run). "
      % (med_rps["llama-swap"], ratio * 100, med_rps["nginx"], cpu_ls, cpu_ngx, verdict) +
      ("The per-round ranges overlap, so the difference is within this machine's run-to-run noise."
       if overlap else "The per-round ranges do not overlap."))
    ceiling = (float(meta.get("nproc") or 0), med_busy.get("llama-swap"), med_sys.get("llama-swap"))
    if all(ceiling) and "nginx" in med_sys and "nginx" in med_idle:
        cores, busy_ls, sys_ls = ceiling
        others = busy_ls - cpu_ls  # wrk, the upstream, and kernel work not charged to the proxy
        budget = cores * 1e6 / (1.2 * med_rps["nginx"])
        allowance = budget - others
        w("")
        w("**What 1.2× nginx would take here.** At %.0f req/s (1.2× nginx's median) the %d cores give a "
          "request at most %.1f µs of CPU in all, with no core ever idle (they were %.0f%% idle through nginx, "
          "%.0f%% through llama-swap). Everything but the proxy (wrk, the upstream, kernel work charged to "
          "neither) took %.1f µs per request in llama-swap's rounds, which leaves %.1f µs for the proxy. "
          "The proxy's kernel time alone, for the same socket calls nginx makes (see the system calls "
          "below), was %.1f µs per request for llama-swap and %.1f µs for nginx. %s"
          % (1.2 * med_rps["nginx"], cores, budget, 100 * med_idle["nginx"], 100 * med_idle.get("llama-swap", 0),
             others, allowance, sys_ls, med_sys["nginx"],
             "So no proxy that reads and writes each request through the kernel as these two do can reach "
             "the req/s target on this machine; what is left to win is user-space CPU (llama-swap %.1f µs, "
             "nginx %.1f µs per request)." % (med_user["llama-swap"], med_user["nginx"])
             if allowance < min(sys_ls, med_sys["nginx"]) else
             "The req/s target is within reach only if llama-swap's user-space CPU per request falls to "
             "%.1f µs (now %.1f µs; nginx %.1f µs)." % (max(0.0, allowance - sys_ls), med_user["llama-swap"],
                                                      med_user["nginx"])))
    if "direct" in med_rps:
        w("")
        w("Proxying costs: nginx reaches %.0f%% and llama-swap %.0f%% of the direct upstream's median."
          % (100 * med_rps["nginx"] / med_rps["direct"], 100 * med_rps["llama-swap"] / med_rps["direct"]))
    if "llama-swap-accesslog" in med_rps:
        w("With its default per-request log line (to a file here) llama-swap reaches %.0f%% of its own "
          "`logLevel: warn` figure." % (100 * med_rps["llama-swap-accesslog"] / med_rps["llama-swap"]))
    if "llama-swap-b" in med_rps:
        w("The other binary (e) reaches %.0f%% of (c) and %.0f%% of nginx."
          % (100 * med_rps["llama-swap-b"] / med_rps["llama-swap"], 100 * med_rps["llama-swap-b"] / med_rps["nginx"]))
w("")
prompt_rows = [n for n in ("direct", "nginx", "llama-swap") if wrk.get(n + "-prompt")]
if prompt_rows:
    w("### Large prompts (%s KiB chat bodies)" % meta.get("prompt_kb"))
    w("")
    w("The same wrk load with a user message of about %s KiB (lines of 1000 characters with an escaped "
      "newline each), %s rounds of half the length interleaved: what an agent's context costs. llama-swap "
      "scans every body for `model` as it arrives (16 bytes at a time through the string content) and, "
      "with its defaults, keeps it for `/api/captures` (the body itself, not a copy: one over 16 KiB is "
      "not copied into the capture ring); nginx (no request buffering, as `contrib/nginx/llama-swap.conf` sets it) passes it on." % (
          meta.get("prompt_kb"), len(wrk[prompt_rows[0] + "-prompt"])))
    w("")
    w("| target | req/s | × direct | p50 latency | proxy CPU per request | req/s of each round |")
    w("|---|---:|---:|---:|---:|---|")
    pm = {}
    for n in prompt_rows:
        runs = wrk[n + "-prompt"]
        pm[n] = med([rps(r) for r in runs])
        pcpu = "–" if n == "direct" else "%.1f µs" % med([cpu_us(r, "proxy_cpu_ticks") for r in runs])
        w("| %s | %.0f | %s | %s | %s | %s |" % (
            n, pm[n], "%.2f" % (pm[n] / pm["direct"]) if "direct" in pm else "–",
            ms(med([int(r["p50_us"]) for r in runs])), pcpu, ", ".join("%.0f" % rps(r) for r in runs)))
    w("")
w("")
if sysc and "none" not in sysc:
    w("### System calls per proxied request")
    w("")
    w("`strace -c` attached to the proxy process while `bench/load.py` sends 2000 sequential requests over "
      "10 keep-alive connections (strace slows the process; only the counts matter). Failed calls in brackets.")
    w("")
    cols = [c for c in ("nginx", "llama-swap", "llama-swap-b") if c in sysc]
    names_ = sorted({k for c in cols for k in sysc[c]},
                    key=lambda k: -max(int(sysc[c].get(k, {}).get("calls", 0)) for c in cols))
    w("| system call | " + " | ".join(cols) + " |")
    w("|---|" + "---:|" * len(cols))
    tot = {c: 0 for c in cols}
    for k in names_:
        cells = []
        for c in cols:
            d = sysc[c].get(k)
            if not d:
                cells.append("–")
                continue
            calls, errs = int(d["calls"]), int(d["errors"] or 0)
            tot[c] += calls
            cells.append("%.2f" % (calls / 2000.0) + (" (%.2f)" % (errs / 2000.0) if errs else ""))
        w("| `%s` | %s |" % (k, " | ".join(cells)))
    w("| **total** | " + " | ".join("**%.2f**" % (tot[c] / 2000.0) for c in cols) + " |")
    w("")
elif "none" in sysc:
    w("(strace is not installed: no system-call counts on this run.)")
    w("")
w("How measured:")
w("")
w("- The *same* fast upstream serves every row: an nginx (one worker, `master_process off`) answering "
  "`return 200 '<fixed chat.completion JSON>'` on `POST /v1/chat/completions` and `/health`. The project's "
  "fake upstream (a thread per connection) would be the bottleneck and hide the proxies' cost.")
w("- (b) is a second nginx, one worker, `upstream { keepalive 32; }`, `proxy_http_version 1.1`, "
  "`proxy_set_header Connection \"\"`, `proxy_buffering off`, access log off. One worker because llama-swap "
  "is one event loop.")
w("- (c) is llama-swap with a model `bench` whose `cmd` is `sleep infinity`, `proxy:` the fast upstream and "
  "`checkEndpoint: /health`, so the daemon proxies to that shared upstream; `logLevel: warn` so neither proxy "
  "writes an access log; `concurrencyLimit: 1000` because the default (10, as in the original llama-swap) "
  "answers 429 to a 32-connection load. The model is warmed with one request, and every target gets a 2 s "
  "wrk warm-up before the measured rounds.")
w("- CPU per request: user+system time of the proxy process (the nginx worker, or the daemon) and of the "
  "upstream nginx, from `/proc/PID/stat` before and after each round, divided by the round's requests. "
  "All processes share the %s cores with wrk, so this — not req/s alone — shows which proxy is cheaper. "
  "The proxy's time is split into user space and kernel (`utime`, `stime`); the whole machine's busy and "
  "idle time in each round comes from `/proc/stat` (busy: user, nice, system, irq, softirq)."
  % meta.get("nproc"))
w("- Keep-alive everywhere (`keepalive_requests 1000000` on both nginx instances). Latency is wrk's "
  "closed-loop per-request latency.")
w("")

# ------------------------------------------------------------------ readiness
w("## 2. Readiness to first byte (cold model)")
w("")
if ready:
    fb_200 = [(float(r["first_byte"]) - float(r["first_200"])) * 1000 for r in ready]
    fb_rdy = [(float(r["first_byte"]) - float(r["ready_at"])) * 1000 for r in ready]
    total = [(float(r["first_byte"]) - float(r["sent"])) * 1000 for r in ready]
    bad = [r for r in ready if r.get("status") != "200"]
    w("| measure (%d cold starts) | median | max | target |" % len(ready))
    w("|---|---:|---:|---|")
    w("| first byte at the client − upstream's first `200 /health` answer | %.1f ms | %.1f ms | ≤ 20 ms: %s |"
      % (med(fb_200), max(fb_200), "met (max)" if max(fb_200) <= 20 else
         ("met by the median, not the max" if med(fb_200) <= 20 else "not met")))
    acc = [(float(r["accept_at"]) - float(r["first_200"])) * 1000 for r in ready
           if float(r.get("accept_at", 0)) > 0]
    post = [(float(r["post_at"]) - float(r["first_200"])) * 1000 for r in ready if "post_at" in r]
    if acc:
        w("| … of which: upstream accepted the daemon's proxied connection − first 200 answer | %.1f ms | %.1f ms | |"
          % (med(acc), max(acc)))
    if post:
        w("| … of which: upstream's POST handler started − first 200 answer | %.1f ms | %.1f ms | |"
          % (med(post), max(post)))
    w("| first byte − moment the upstream *could* answer 200 (includes the probe interval) | %.1f ms | %.1f ms | |"
      % (med(fb_rdy), max(fb_rdy)))
    w("| first byte − request sent (whole cold start, upstream delay %s s) | %.0f ms | %.0f ms | |"
      % (meta.get("ready_delay"), med(total), max(total)))
    w("")
    w("Each start: " + ", ".join("%.1f" % x for x in fb_200) + " ms (first byte − first 200)." +
      ("" if not bad else " **%d request(s) did not get 200.**" % len(bad)))
w("")
w("How measured: `bench/ready_upstream.py` (Python stdlib, the model's `cmd`) answers `/health` 503 until "
  "%s s after it started, then 200, and writes the `time.time()` of its first 200 answer (and of the moment "
  "it became able to give it) to a file. For each repetition a fresh daemon is started, `bench/ready_client.py` "
  "sends one chat POST (which starts the model) and takes `time.time()` when the first response byte arrives; "
  "the daemon is then stopped, so every repetition is a cold start. Same host, same clock. The first row is "
  "the daemon's reaction time (probe answer read → request forwarded → first byte relayed, including the "
  "Python upstream answering the POST); the two \"of which\" rows split it: up to the moment the upstream "
  "accepted the daemon's new connection (the daemon's own share: it read the probe answer, marked the model "
  "ready and connected), and up to the moment the upstream's POST handler ran (adds Python starting a thread "
  "for the connection). The row after them adds the wait for the daemon's next health probe."
  % meta.get("ready_delay"))
w("")

# ------------------------------------------------------------------ RSS
w("## 3. Memory (RSS)")
w("")
w("| moment | daemon VmRSS | daemon VmHWM | daemon Pss | guard VmRSS | guard Pss |")
w("|---|---:|---:|---:|---:|---:|")
names = {
    "start": "idle after start (3-model config, nothing loaded)",
    "after-%s" % meta.get("rss_requests"): "after %s proxied requests (one model running)" % meta.get("rss_requests"),
    "after-1000-more": "after 1000 proxied requests (captures and the activity log filling up)",
    "after-%s-notify" % meta.get("rss_requests"): "the same with NOTIFY_SOCKET set (libsystemd loaded, as under systemd)",
    "after-wrk": "throughput daemon (c) after all its wrk rounds",
    "after-wrk-accesslog": "throughput daemon (d) after all its wrk rounds",
}
order = ["start", "after-%s" % meta.get("rss_requests"), "after-%s-notify" % meta.get("rss_requests"),
         "after-1000-more",
         "after-wrk", "after-wrk-accesslog"]
for phase, r in sorted(rss, key=lambda x: order.index(x[0]) if x[0] in order else 99):
    w("| %s | %s KiB | %s KiB | %s KiB | %s KiB | %s KiB |" % (
        names.get(phase, phase), r["daemon_rss_kb"], r["daemon_hwm_kb"], r["daemon_pss_kb"],
        r["guard_rss_kb"], r["guard_pss_kb"]))
w("")
idle = [r for p, r in rss if p in ("start", "after-%s" % meta.get("rss_requests"))]
if idle:
    worst = max(int(r["daemon_rss_kb"]) for r in idle)
    w("Target: daemon VmRSS under 4 MiB (4096 KiB) idle and after %s requests — %s (largest: %d KiB). "
      "libsystemd is loaded only when a service manager is there to talk to (src/sd/libsystemd.h), "
      "so the target holds for a daemon started from a shell or a container; the NOTIFY_SOCKET row is "
      "what a systemd service maps." % (meta.get("rss_requests"), "met" if worst < 4096 else "not met", worst))
    g = idle[0]
    w("")
    w("The guard is found as the daemon's child that runs the daemon's own binary (pid %s, comm `%s`); the "
      "model processes (`sleep`) are the other children." % (g["guard_pid"], g["guard_comm"]))
w("")
w("How measured: `VmRSS`/`VmHWM` from `/proc/PID/status`, `Pss` from `/proc/PID/smaps_rollup`. The guard is "
  "forked from the daemon before the event loop starts and never execs, so its VmRSS counts pages it still "
  "shares copy-on-write with the daemon (libc, the binary); Pss splits shared pages between the processes "
  "that map them and is the better \"what does it cost\" figure. The requests come from `bench/load.py` "
  "(10 keep-alive connections in turn) through a model proxied to the fast upstream; the reading is taken "
  "0.5 s after start and 0.5 s after the last request. By default the daemon keeps the last requests and "
  "responses for `/api/captures` (`captureBuffer`, 5 MB) and the activity log, so its heap grows with "
  "the requests it has served until those are full: the 1000-request row shows it.")
w("")
# ------------------------------------------------------------------ llama-server-like upstream
w("## 4. Behind an upstream that behaves like llama-server")
w("")
if not bursts and not ttfc:
    w("Not measured in this run (`bench/llama_like.py` was skipped).")
    w("")
else:
    w("`bench/llama_like.py`: the fake upstream with llama-server's ways — a fixed pool of HTTP threads, each "
      "staying with a keep-alive connection until it has been idle 5 s, its slots (`--parallel`), no "
      "`TCP_NODELAY`, its start-up lines — each request 5 ms of generation. *direct*: clients straight to it; "
      "*llama-swap*: through the daemon with the default `upstreamConnections: auto` (the cap learned from "
      "the `http threads: N` line); *unlimited*: `upstreamConnections: unlimited`, what the original and our "
      "earlier releases do (one round only: it waits for the 5-s holds)%s. Every client request uses a "
      "connection of its own, closed after the answer (as curl); bursts of N requests sent at once, %s rounds "
      "interleaved, 5.5 s apart; the median wall time of the rounds (and of the slowest request)."
      % (", and *b*: the other binary `%s`" % meta.get("daemon_b") if meta.get("daemon_b") else "",
         meta.get("rounds")))
    w("")
    scen_label = {"2core": "3 HTTP threads, 1 slot (llama-server's defaults on 2 cores)",
                  "4slots": "6 HTTP threads, 4 slots (a newer llama-server's defaults on 2 cores)"}
    tgt_label = {"direct": "direct", "llama-swap": "llama-swap", "llama-swap-unlimited": "unlimited",
                 "llama-swap-b": "b"}
    w("| upstream | N | target | wall time | slowest request | answered | within 1.5× direct + 100 ms |")
    w("|---|---:|---|---:|---:|---:|---|")
    for (scen, n) in sorted(bursts):
        rows = bursts[(scen, n)]
        direct = med([float(r["wall_ms"]) for r in rows.get("direct", [])]) if rows.get("direct") else None
        for tgt in ("direct", "llama-swap", "llama-swap-unlimited", "llama-swap-b"):
            rs = rows.get(tgt)
            if not rs:
                continue
            wall = med([float(r["wall_ms"]) for r in rs])
            slow = med([float(r["max_ms"]) for r in rs])
            ok = "%d of %d" % (min(int(r["ok"]) for r in rs), n)
            goal = "–"
            if tgt != "direct" and direct is not None:
                goal = "yes" if wall <= 1.5 * direct + 100 else "**no**"
            w("| %s | %d | %s | %.0f ms | %.0f ms | %s | %s |" % (scen_label.get(scen, scen), n,
                                                               tgt_label.get(tgt, tgt), wall, slow, ok, goal))
    w("")
    w("A request that waits longer than 60 s is counted as not answered (the client gives up).")
    w("")
    if ttfc:
        w("Time from sending a streamed chat request to its first `data:` line, through the daemon, on a "
          "*reused* upstream connection (sequential requests, pooled) and on a *fresh* one (`idleConn: 0`). "
          "The upstream writes the response head, then the first chunk 10 ms later, without `TCP_NODELAY`: "
          "without an immediate ACK from the proxy, Nagle holds the chunk until the proxy's delayed ACK "
          "(up to 40 ms). Median of %s requests each." % (3 * int(meta.get("rounds", "3"))))
        w("")
        w("| binary | reused connection | fresh connection |")
        w("|---|---:|---:|")
        for tgt in ("llama-swap", "llama-swap-b"):
            if (tgt, "reused") not in ttfc:
                continue
            label = "this commit" if tgt == "llama-swap" else "b: `%s`" % meta.get("daemon_b")
            w("| %s | %.1f ms | %.1f ms |" % (label, med(ttfc[(tgt, "reused")]),
                                              med(ttfc.get((tgt, "fresh"), [0]))))
        w("")

if large:
    w("## 5. Large bodies")
    w("")
    w("One %s MiB transfer at a time over loopback, %s rounds interleaved, the order shuffled from the second round on (a fixed seed; `bench/large_bodies.py`): a download "
      "(the fake upstream's `/blob`, `Content-Length`, through `/upstream/<model>/` for llama-swap) and a "
      "multipart upload to `/v1/audio/transcriptions` with the `model` field first or last (a sparse file "
      "sent by `curl -F`; the upstream counts the bytes without hashing them). *direct*: curl to the "
      "upstream; *nginx*: one worker, `proxy_buffering off`, `proxy_request_buffering off`, 64 KiB "
      "buffers; *llama-swap*: this build, splice relay on; *copy*: the same daemon with "
      "`LLAMA_SWAP_NO_SPLICE=1`; *relay …* (downloads only): `bench/splice_relay.c`, a bare TCP relay "
      "with no HTTP at all (one connection at a time, poll-driven, non-blocking), moving the bytes with "
      "`splice` through a pipe of the size named (`F_SETPIPE_SZ`; the daemon asks for 256 KiB), or with "
      "`recv`/`send` through a 256 KiB buffer (*relay, recv/send*): the most any user-space relay can "
      "be expected to do on this machine. Median MB/s of the rounds, the ratio to *direct* of the same "
      "kind, the proxy's CPU time (user + system) per GB, and that of all the processes in the path "
      "(curl + the fake upstream + the proxy)." % (meta.get("large_mb"), meta.get("rounds")))
    w("")
    w("| transfer | target | MB/s (median) | × direct | proxy CPU per GB | all CPU per GB | MB/s of each round |")
    w("|---|---|---:|---:|---:|---:|---|")
    labels = {"download": "download", "upload-first": "upload, `model` first",
              "upload-last": "upload, `model` last"}
    tnames = {"direct": "direct", "nginx": "nginx", "llama-swap": "llama-swap",
              "llama-swap-copy": "copy", "relay-copy": "relay, recv/send"}

    def tname(t):  # relay-64k: "relay, splice, 64 KiB pipe"
        if t in tnames:
            return tnames[t]
        size = t[6:].upper().replace("K", " KiB").replace("M", " MiB")
        return "relay, splice, %s pipe" % size

    def relay_bytes(t):
        n = t[6:].lower()
        mult = {"k": 1 << 10, "m": 1 << 20}.get(n[-1:], 1)
        return int(n.rstrip("km")) * mult if n.rstrip("km").isdigit() else 0

    def mbs(r):
        return int(r["bytes"]) / float(r["seconds"]) / 1e6

    def all_cpu_gb(r):
        if "client_cpu_s" not in r:
            return None
        return sum(float(r[k]) for k in ("proxy_cpu_s", "client_cpu_s", "upstream_cpu_s")) / (
            int(r["bytes"]) / 1e9)
    relay_speed = {}
    for kind in ("download", "upload-first", "upload-last"):
        rows = large.get(kind, {})
        direct = med([mbs(r) for r in rows.get("direct", [])]) if rows.get("direct") else None
        relays = sorted((t for t in rows if t.startswith("relay-") and t != "relay-copy"),
                        key=relay_bytes)
        relays += ["relay-copy"] if "relay-copy" in rows else []
        for tgt in ["direct", "nginx", "llama-swap", "llama-swap-copy"] + relays:
            rs = rows.get(tgt)
            if not rs:
                continue
            speed = med([mbs(r) for r in rs])
            if tgt.startswith("relay-") and kind == "download":
                relay_speed[tgt] = speed
            cpu_gb = med([float(r["proxy_cpu_s"]) / (int(r["bytes"]) / 1e9) for r in rs])
            all_gb = [x for x in (all_cpu_gb(r) for r in rs) if x is not None]
            w("| %s | %s | %.0f | %s | %s | %s | %s |" % (
                labels[kind], tname(tgt), speed,
                "%.2f×" % (speed / direct) if direct else "–",
                "–" if tgt == "direct" else "%.2f s" % cpu_gb,
                "%.2f s" % med(all_gb) if all_gb else "–",
                ", ".join("%.0f" % mbs(r) for r in rs)))
    w("")
    dl = large.get("download", {})
    if relay_speed and dl.get("direct") and dl.get("llama-swap"):
        best = max(relay_speed, key=relay_speed.get)
        d = med([mbs(r) for r in dl["direct"]])
        ls_ = med([mbs(r) for r in dl["llama-swap"]])
        w("**Download vs the bare relay:** the best bare relay (%s) reaches %.2f× direct, llama-swap "
          "%.2f× direct, %.0f%% of that relay (target: 0.9× direct — %s on this run; %s)."
          % (tname(best), relay_speed[best] / d, ls_ / d, 100 * ls_ / relay_speed[best],
             "met" if ls_ / d >= 0.9 else "not met",
             "no user-space relay reached it here either" if relay_speed[best] / d < 0.9
             else "a bare relay does reach it here"))
        d_cpu = [x for x in (all_cpu_gb(r) for r in dl["direct"]) if x is not None]
        b_cpu = [x for x in (all_cpu_gb(r) for r in dl[best]) if x is not None]
        if d_cpu and b_cpu:
            w("")
            busy, cores = med(d_cpu) * d / 1000, float(meta.get("nproc") or 0)
            w("*Direct* kept %.1f of the %s cores busy (its CPU per GB × GB/s). A relay adds a third busy "
              "process and a second loopback TCP hop: all the processes of the relayed path took %.2f s of "
              "CPU per GB against direct's %.2f s, so %s %.2f×."
              % (busy, meta.get("nproc", "?"), med(b_cpu), med(d_cpu),
                 "with the cores saturated the best relay's ratio to direct can be no better than"
                 if cores and busy >= 0.8 * cores else
                 "had direct saturated the cores, a relay's ratio could be no better than",
                 med(d_cpu) / med(b_cpu)))
        w("")
    if coldup:
        first = next(iter(coldup.values()))[0]
        w("### An upload to a model that is not running")
        w("")
        w("A %s MiB multipart upload sent at %s MB/s (`curl --limit-rate`, about a 1 Gb/s link) to "
          "`/v1/audio/transcriptions` of a model that is stopped before each round (`/unload`) and "
          "takes %s ms to load (the fake upstream's `--load-delay-ms`). *direct*: the same upload to "
          "the running upstream (the transfer alone). With the `model` field first the request is "
          "taken while its body arrives: the model loads, and the file goes upstream, during the "
          "upload; last, the load starts only after it. Median of %d rounds."
          % (first["mb"], first["rate_mb"], first["load_ms"], len(coldup.get("direct", []))))
        w("")
        w("| order | seconds (median) | vs direct | each round |")
        w("|---|---:|---:|---|")
        d = med([float(r["seconds"]) for r in coldup.get("direct", [])]) if coldup.get("direct") else None
        for t in ("direct", "model-first", "model-last"):
            rs = coldup.get(t)
            if not rs:
                continue
            s = med([float(r["seconds"]) for r in rs])
            w("| %s | %.2f s | %s | %s |" % (t, s, "+%.2f s" % (s - d) if d and t != "direct" else "–",
                                             ", ".join("%.2f" % float(r["seconds"]) for r in rs)))
        w("")
    for suffix, what in (("", "downloaded"), ("-upload", "uploaded, `model` first"),
                         ("-upload-last", "uploaded, `model` last")):
        copy_k, splice_k = "copy" + suffix, "splice" + suffix
        if copy_k not in largesys and splice_k not in largesys:
            continue
        w("### System calls and bytes through the daemon's memory, per MB %s" % what)
        w("")
        if suffix == "-upload":
            w("`strace` on the daemon during one multipart upload each way, its `model` field first (every relay "
              "call traced, so slower than the runs above). *copy* (`LLAMA_SWAP_NO_SPLICE=1`) reads the body "
              "into the spool file whole (`recvfrom` + `pwrite64`), then sends it with `sendfile`; *splice* "
              "sends the spool's first part with `sendfile` and the rest client socket → pipe → upstream "
              "socket. *bytes copied* counts what went through the daemon's memory (`recvfrom`, `pwrite64`, "
              "`sendto`); `splice` and `sendfile` move bytes inside the kernel.")
        elif suffix:
            w("The same with the `model` field last: the body must be read whole before it goes upstream. "
              "*copy* reads it into the spool (`recvfrom` + `pwrite64`); *splice* moves it socket → pipe → "
              "spool file (`splice` twice; the kernel's one copy, into the page cache) and the model scanner "
              "reads the pages where they lie (`mmap`/`munmap` of each piece, counted as calls, no bytes); "
              "both then send it with `sendfile`.")
        else:
            w("`strace` on the daemon during one download each way (every relay call traced, so slower than the "
              "runs above); *bytes* are the sizes the calls returned: for `recvfrom`/`sendto` bytes copied "
              "into and out of the daemon, for `splice` bytes moved between sockets and pipe inside the kernel.")
        w("")
        w("| system call | copy: calls/MB | copy: bytes copied/MB | splice: calls/MB | splice: bytes copied/MB |")
        w("|---|---:|---:|---:|---:|")
        scs = sorted(set(largesys.get(copy_k, {})) | set(largesys.get(splice_k, {})))
        tot = {copy_k: [0.0, 0.0], splice_k: [0.0, 0.0]}
        for sc in scs:
            cells = []
            for mode in (copy_k, splice_k):
                r = largesys.get(mode, {}).get(sc)
                if not r:
                    cells += ["–", "–"]
                    continue
                mb = float(r["mb"])
                calls = int(r["calls"]) / mb
                copied = 0.0 if sc in ("splice", "sendfile", "mmap", "munmap") else int(r["bytes"]) / mb
                tot[mode][0] += calls
                tot[mode][1] += copied
                cells += ["%.2f" % calls, "%.0f" % copied if copied else "0"]
            w("| `%s` | %s |" % (sc, " | ".join(cells)))
        w("| **total** | **%.2f** | **%.0f** | **%.2f** | **%.0f** |" % (
            tot[copy_k][0], tot[copy_k][1], tot[splice_k][0], tot[splice_k][1]))
        w("")

if many:
    w("## 6. Many models")
    w("")
    w("The same daemon with 10 and with 1,000 models in its config (each with an alias; `bench/many_models.py`), "
      "%s rounds interleaved: the time from starting the process to its first 200 on `/health`, and the "
      "daemon's CPU time per proxied chat request (%s requests over 10 keep-alive connections, one model "
      "running; the fake upstream answers)." % (meta.get("rounds"), next(iter(many.values()))[0]["requests"]))
    w("")
    w("| models | start to first answer (median) | CPU per request (median) | vs 10 models | each round (start ms / CPU µs) |")
    w("|---:|---:|---:|---:|---|")
    base = med([float(r["cpu_us_per_request"]) for r in many.get(10, [])]) if many.get(10) else None
    for n in sorted(many):
        rs = many[n]
        cpu = med([float(r["cpu_us_per_request"]) for r in rs])
        w("| %d | %.0f ms | %.0f µs | %s | %s |" % (
            n, med([float(r["start_ms"]) for r in rs]), cpu,
            "%.2f×" % (cpu / base) if base else "–",
            ", ".join("%s / %s" % (r["start_ms"], r["cpu_us_per_request"]) for r in rs)))
    w("")

if sse:
    w("## 7. SSE added latency per chunk")
    w("")
    w("`bench/sse_latency.py`: the fake upstream streams chat completions (`text/event-stream`, chunked), one "
      "`data:` event every 20 ms, each in a write of its own (`TCP_NODELAY`), %s events per stream; with "
      "`?stamp=1` each event carries its `CLOCK_MONOTONIC` send time, taken just before the write. The "
      "client (Python, one thread, `epoll`) takes `CLOCK_MONOTONIC` when the `recv` that completes an event "
      "returns: *latency* = arrival − send, same machine, same clock. S concurrent streams, each on a "
      "connection of its own, their starts spread evenly over one 20 ms interval; *direct*: straight to the "
      "upstream; *nginx*: one worker, `proxy_buffering off`, keep-alive upstream (`keepalive 64`); "
      "*llama-swap*: this build, a model proxied to the same upstream, its defaults (so it keeps a copy of "
      "each response for `/api/captures`, `captureBuffer` 5 MB); *no capture*: the same with "
      "`captureBuffer: 0`. %s rounds interleaved (the order "
      "rotates each round). Each figure is the median over the rounds of that round's percentile over "
      "all its events; *added* is the median over the rounds of (target's percentile − direct's percentile "
      "in the same round): a difference of percentiles, not a percentile of per-event differences (events "
      "cannot be paired across targets). Proxy CPU per event: the proxy's CPU time over the round / "
      "events." % (meta.get("sse_chunks", "?"), meta.get("rounds")))
    w("")
    w("| streams | target | p50 | p90 | p99 | added p50 | added p90 | added p99 | proxy CPU per event "
      "| p50 of each round |")
    w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    verdicts = []
    sse_names = {"llama-swap-nocapture": "llama-swap, no capture"}
    for n in sorted(sse):
        rows = sse[n]
        direct = {r["round"]: r for r in rows.get("direct", [])}
        added = {}
        for tgt in ("direct", "nginx", "llama-swap", "llama-swap-nocapture"):
            rs = rows.get(tgt)
            if not rs:
                continue
            cells = []
            for q in ("p50_us", "p90_us", "p99_us"):
                cells.append("%.0f µs" % med([float(r[q]) for r in rs]))
            diffs = {}
            for q in ("p50_us", "p90_us", "p99_us"):
                ds = [float(r[q]) - float(direct[r["round"]][q]) for r in rs if r["round"] in direct]
                diffs[q] = ds
            added[tgt] = diffs
            for q in ("p50_us", "p90_us", "p99_us"):
                cells.append("–" if tgt == "direct" or not diffs[q] else "%+.0f µs" % med(diffs[q]))
            cpu = "–" if tgt == "direct" else "%.1f µs" % med([float(r["proxy_cpu_us_per_chunk"])
                                                                for r in rs])
            w("| %d | %s | %s | %s | %s |" % (n, sse_names.get(tgt, tgt), " | ".join(cells), cpu,
                                              ", ".join("%.0f" % float(r["p50_us"]) for r in rs)))
        if added.get("nginx", {}).get("p50_us") and added.get("llama-swap", {}).get("p50_us"):
            a_ls, a_ng = added["llama-swap"]["p50_us"], added["nginx"]["p50_us"]
            overlap = min(a_ls) <= max(a_ng) and min(a_ng) <= max(a_ls)
            verdicts.append((n, med(a_ls), med(a_ng), med(a_ls) <= med(a_ng), overlap))
    w("")
    if verdicts:
        ok = all(v[3] for v in verdicts)
        w("**Target: added latency per chunk ≤ nginx's at p50 — %s on this run** (%s)."
          % ("met" if ok else "not met",
             "; ".join("%d stream%s: llama-swap %+.0f µs, nginx %+.0f µs, per-round ranges %s"
                       % (n, "" if n == 1 else "s", a, b, "overlap (within this machine's noise)"
                          if ov else "do not overlap") for n, a, b, _, ov in verdicts)))
        w("")
    if sserss:
        n = max(sserss)
        parts = []
        for tgt in ("nginx", "llama-swap", "llama-swap-nocapture"):
            rs = sorted(sserss[n].get(tgt, []), key=lambda r: int(r["round"]))
            if rs:
                parts.append("%s %.1f KiB" % (sse_names.get(tgt, tgt),
                                              (int(rs[0]["rss_mid_kb"]) - int(rs[0]["rss_before_kb"])) / n))
        if parts:
            w("Memory per stream: %s (the proxy's VmRSS half-way through the first %d-stream round − just "
              "before it, / %d; later rounds reuse what the first one freed, so only the first counts; "
              "llama-swap's default figure includes the responses so far copied for `/api/captures`, "
              "which grow until `captureBuffer` is full)." % (", ".join(parts), n, n))
            w("")

w("## Looking for hot spots")
w("")
w("- `BENCH_DAEMON_B=/path/to/patched/llama-swap bench/run` adds row (e) to the throughput table (and a column "
  "to the system-call table): a change measured in the same run, against the same upstream, interleaved "
  "with the others. Compare CPU per request and system calls first; req/s moves with the machine's load.")
w("- `perf record -e cpu-clock -F 4000 -p <daemon pid>` during a wrk run, then `perf report --sort dso,symbol` "
  "(hardware counters are not available on this VM; `cpu-clock` sampling works). Dividing samples by the "
  "requests of the run gives µs per request per symbol, comparable with the nginx worker's.")
w("- `valgrind --tool=callgrind` on the daemon while `bench/load.py` drives it counts user-space instructions "
  "per request exactly (noise-free), but says nothing about the kernel side, which is most of a proxy's cost.")
w("")
print("\n".join(out))
