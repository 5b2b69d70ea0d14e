#!/usr/bin/env python3
"""Soak under chaos: every request ends.

One daemon, three fake-upstream models that swap (one group), mixed requests (streamed and
plain chat, completions, embeddings, a few multi-MiB bodies, keep-alive pairs, clients that hang
up early) from SOAK_CONCURRENCY threads, with faults injected while they run: a model that
crashes at start (twice, so the daemon's own retry on another port fails too), one that crashes
mid-stream, one that hangs at start (its health check times out), a stream that stalls
mid-response (?stall_after_tokens: the fake's main loop wedges, found by timeouts.silence), one
that crashes at start once (absorbed by the retry), and a model process that wedges whole
(SIGSTOP). Every request is classified by how it ended:

  ok       2xx, the body complete (a stream ends with data: [DONE] and the final chunk)
  error    status >= 400 with an OpenAI-style {"error": ...} JSON body
  broken   the connection closed in the middle of a response (no final chunk, or a short
           body): the client sees a broken stream, never a silently short success
  HUNG     no byte for SOAK_HANG_S seconds (default 60) and no end

The property: no request hangs, and none ends in a way the client cannot tell from a success
or an explicit error (a clean-looking stream without [DONE], a non-JSON error, a connection
closed before any response byte); afterwards every model still answers. Counts are printed as
TAP comments. The wedged-upstream tests check the same property on one wedge at a time.

Knobs (environment): SOAK_REQUESTS (default 300), SOAK_CONCURRENCY (32), SOAK_HANG_S (60),
SOAK_SEED (random; printed), SOAK_ROUNDS (1: repeat the soak with fresh daemons and seeds
SEED, SEED+1, ...), SOAK_FAULT_CYCLES (1: the six faults that many times, on models picked at
random after the first cycle), SOAK_WEDGE_BOUND_S (45), SOAK_KEEP_LOGS (a directory: every
round's daemon log is copied there; without it a failing round's log is copied to $TMPDIR).
"""

import collections
import json
import os
import random
import shlex
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


MODELS = ("a", "b", "c")
HANG_S = env_float("SOAK_HANG_S", 60)


# ---------------------------------------------------------------------------------------------
# Faults: each model runs through a wrapper that, at every start, takes at most one fault file
# of its model from the fault directory (mv is atomic: exactly one start takes each file).

WRAPPER = r"""#!/bin/sh
# wrapper.sh MODEL PORT [fake-upstream flags...]: one start of a soak model.
m=$1; port=$2; shift 2
dir=%(dir)s
for kind in crash-start hang-start crash-mid; do
  for f in "$dir/$m.$kind".[0-9]*; do
    case $f in *.taken.*) continue;; esac
    [ -e "$f" ] || continue
    if mv "$f" "$f.taken.$$" 2>/dev/null; then
      echo "soak-wrapper: model $m pid $$ starts with fault $kind" >&2
      case $kind in
        crash-start) exec %(fake)s --port "$port" --model "$m" --crash-at-start "$@";;
        hang-start) exec %(fake)s --port "$port" --model "$m" --hang "$@";;
        crash-mid) exec %(fake)s --port "$port" --model "$m" --crash-after-tokens 3 "$@";;
      esac
    fi
  done
done
exec %(fake)s --port "$port" --model "$m" "$@"
"""


class Faults:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0
        self.log = []

    def arm(self, model, kind, starts=1):
        """The next `starts` starts of `model` get `kind`."""
        for _ in range(starts):
            self.n += 1
            path = os.path.join(self.dir, "%s.%s.%d" % (model, kind, self.n))
            with open(path, "w"):
                pass
        self.log.append((time.monotonic(), model, kind, starts))

    def clear(self):
        for f in os.listdir(self.dir):
            if ".taken." not in f:
                try:
                    os.unlink(os.path.join(self.dir, f))
                except OSError:
                    pass

    def taken(self):
        return sorted(f for f in os.listdir(self.dir) if ".taken." in f)


# ---------------------------------------------------------------------------------------------
# A client that reads a response byte by byte as it comes, knows how it ended, and notices
# silence.

class Hung(Exception):
    pass


class Reader:
    def __init__(self, sock, hang_s):
        self.sock = sock
        self.hang_s = hang_s
        self.buf = b""
        self.eof = False
        self.total = 0
        self.last_byte = time.monotonic()
        sock.settimeout(0.5)

    def fill(self):
        if self.eof:
            return False
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if time.monotonic() - self.last_byte >= self.hang_s:
                    raise Hung()
                continue
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.eof = True
                return False
            self.buf += data
            self.total += len(data)
            self.last_byte = time.monotonic()
            return True

    def until(self, marker):
        while marker not in self.buf:
            if not self.fill():
                return None
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Outcome:
    """How one request ended."""
    __slots__ = ("n", "kind", "model", "cls", "status", "detail", "t0", "t1", "first_byte",
                 "last_byte", "bytes", "conn_reused")

    def __init__(self, n, kind, model):
        self.n = n
        self.kind = kind
        self.model = model
        self.cls = None
        self.status = None
        self.detail = ""
        self.t0 = time.monotonic()
        self.t1 = None
        self.first_byte = None
        self.last_byte = None
        self.bytes = 0
        self.conn_reused = False

    def __repr__(self):
        return ("#%d %s model=%s -> %s status=%s bytes=%d %.1fs%s %s"
                % (self.n, self.kind, self.model, self.cls, self.status, self.bytes,
                   (self.t1 or time.monotonic()) - self.t0,
                   " (reused connection)" if self.conn_reused else "", self.detail))


# Classes. The property allows only the first four (and clients' own hang-ups).
OK, ERROR, BROKEN, ABANDONED = "ok", "error", "broken", "abandoned"
HUNG = "HUNG"
NO_RESPONSE = "NO_RESPONSE"      # closed before any byte of a response
SILENT_TRUNCATION = "SILENT_TRUNCATION"  # a 2xx stream that ended cleanly without [DONE]
BAD_ERROR = "BAD_ERROR"          # status >= 400 without an OpenAI-style JSON error
BAD_BODY = "BAD_BODY"            # 2xx whose body is not what the endpoint answers
ALLOWED = {OK, ERROR, BROKEN, ABANDONED}


def read_response(rd, out, expect_sse, abandon=None):
    """Reads one response from rd into out; returns True when the connection may be reused.

    abandon: None, "head" (hang up once the head is in) or "chunk" (after the first body
    bytes)."""
    head = rd.until(b"\r\n\r\n")
    if head is None:
        out.cls = NO_RESPONSE if rd.total == 0 else BROKEN
        out.detail = "connection closed before a response head (%d bytes)" % rd.total
        return False
    out.first_byte = rd.last_byte
    lines = head.decode("latin-1").split("\r\n")
    try:
        out.status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        out.cls = BAD_BODY
        out.detail = "bad status line %r" % lines[0]
        return False
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k:
            headers[k.strip().lower()] = v.strip()
    if abandon == "head":
        out.cls = ABANDONED
        return False
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    body = b""
    complete = False
    if chunked:
        while True:
            size_line = rd.until(b"\r\n")
            if size_line is None:
                break
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                out.cls = BAD_BODY
                out.detail = "bad chunk size line %r" % size_line[:80]
                return False
            if size == 0:
                while True:
                    t = rd.until(b"\r\n")
                    if t is None or t == b"\r\n":
                        break
                complete = t == b"\r\n"
                break
            data = rd.exact(size)
            if data is None or rd.exact(2) is None:
                if data:
                    body += data
                break
            body += data
            if abandon == "chunk":
                out.cls = ABANDONED
                return False
    elif "content-length" in headers:
        n = int(headers["content-length"])
        data = rd.exact(n)
        complete = data is not None
        body = data if data is not None else rd.buf
    else:
        while rd.fill():
            pass
        body = rd.buf
        complete = True  # read until close: the end is the close
    out.bytes = rd.total
    out.last_byte = rd.last_byte
    if abandon == "chunk" and not complete:
        out.cls = ABANDONED
        return False
    if not complete:
        out.cls = BROKEN
        out.detail = "body cut after %d bytes (%s)" % (len(body),
                                                        "chunked" if chunked else "length")
        return False
    if out.status >= 400:
        try:
            doc = json.loads(body.decode())
            ok = isinstance(doc, dict) and isinstance(doc.get("error"), dict) and \
                "message" in doc["error"]
        except (ValueError, UnicodeDecodeError):
            ok = False
        out.cls = ERROR if ok else BAD_ERROR
        if ok:
            out.detail = "%s: %s" % (doc["error"].get("code") or doc["error"].get("type"),
                                     doc["error"]["message"][:160])
        else:
            out.detail = "body %r" % body[:200]
    elif 200 <= out.status < 300:
        if expect_sse and "text/event-stream" in headers.get("content-type", ""):
            if b"data: [DONE]" in body:
                out.cls = OK
            else:
                out.cls = SILENT_TRUNCATION
                out.detail = "stream ended cleanly without [DONE]: ...%r" % body[-200:]
        elif expect_sse is False:
            try:
                json.loads(body.decode())
                out.cls = OK
            except (ValueError, UnicodeDecodeError):
                out.cls = BAD_BODY
                out.detail = "not JSON: %r" % body[:200]
        else:
            out.cls = OK
    else:
        out.cls = BAD_BODY
        out.detail = "status %d" % out.status
    return "close" not in headers.get("connection", "").lower()


# ---------------------------------------------------------------------------------------------
# The soak

class Soak:
    def __init__(self, n_requests, concurrency, seed, hang_s=HANG_S):
        self.n = n_requests
        self.concurrency = concurrency
        self.rng = random.Random(seed)
        self.seed = seed
        self.hang_s = hang_s
        self.outcomes = []
        self.lock = threading.Lock()
        self.next = 0
        self.specs = []
        self.fault_at = {}
        self.frozen = []  # (model, pid) SIGSTOPped
        self.port = None

    # -- the configuration ---------------------------------------------------------------------
    def config(self, d):
        fdir = os.path.join(d.tmp, "faults")
        os.mkdir(fdir)
        self.faults = Faults(fdir)
        wrapper = os.path.join(d.tmp, "wrapper.sh")
        with open(wrapper, "w") as f:
            f.write(WRAPPER % {"dir": shlex.quote(fdir), "fake": shlex.quote(h.FAKE_UPSTREAM)})
        os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
        models = {}
        flags = {
            "a": "--tokens 8 --tps 200",
            "b": "--tokens 8 --tps 100",
            # llama-server's ways: a fixed HTTP thread pool (the daemon caps its connections to
            # it at threads - 2) and 2 slots.
            "c": "--tokens 6 --tps 150 --llama-log --http-threads 6 --parallel 2",
        }
        for m in MODELS:
            models[m] = {"cmd": "/bin/sh %s %s ${PORT} %s" % (shlex.quote(wrapper), m, flags[m]),
                         "unloadTimeout": 2,
                         # every client may wait (the default, 10, answers most of them 429)
                         "concurrencyLimit": 64,
                         # a wedged upstream is found after 5 s of silence (and 5 s of check)
                         "timeouts": {"silence": 5}}
        return {
            "healthCheckTimeout": 15,   # the minimum: a start that hangs fails after 15 s
            "queueTimeout": 25,
            "models": models,
            "groups": {"swapping": {"swap": True, "exclusive": True,
                                    "members": list(MODELS)}},
            # collation bounded at 2 s: traffic that moves between models swaps often
            "routing": {"scheduler": {"settings": {"fifo": {"maxWait": 2}}}},
        }

    # -- the requests --------------------------------------------------------------------------
    KINDS = [  # (kind, weight)
        ("chat_stream", 30), ("chat", 18), ("completion", 9), ("completion_stream", 5),
        ("embedding", 14), ("delayed_chat", 5), ("abandon_queued", 6), ("abandon_head", 5),
        ("abandon_chunk", 5), ("keepalive_pair", 3), ("big_chat", 1),
    ]

    def plan(self):
        kinds = [k for k, _ in self.KINDS]
        weights = [w for _, w in self.KINDS]
        hot = self.rng.choice(MODELS)
        for i in range(self.n):
            if self.rng.random() < 0.08:
                hot = self.rng.choice(MODELS)  # traffic moves: swaps
            model = hot if self.rng.random() < 0.6 else self.rng.choice(MODELS)
            self.specs.append((self.rng.choices(kinds, weights)[0], model))
        # Six faults, spread over the run (SOAK_FAULT_CYCLES times six, on models picked at
        # random after the first cycle).
        cycles = max(1, env_int("SOAK_FAULT_CYCLES", 1))
        first = [("a", "crash-start", 2),   # the start fails, retry included: 502s
                 ("b", "crash-mid", 1),     # dies 3 tokens into some completion
                 ("c", "hang-start", 1),    # health check times out after 15 s: 502s
                 ("stall", None, 1),        # one stream stalls mid-response
                 ("c", "crash-start", 1),   # absorbed by the retry on another port
                 ("freeze", None, 1)]       # the ready model's process wedges (SIGSTOP)
        faults = list(first)
        for _ in range(cycles - 1):
            for m, kind, starts in first:
                faults.append((m if kind is None else self.rng.choice(MODELS), kind, starts))
        step = self.n / (len(faults) + 1)
        self.fault_at = {int(step * (k + 0.5)) + 1: f for k, f in enumerate(faults)}

    def take(self):
        with self.lock:
            if self.next >= len(self.specs):
                return None
            i = self.next
            self.next += 1
        fault = self.fault_at.get(i)
        if fault:
            model, kind, starts = fault
            if model == "stall":
                return i, "stall", self.specs[i][1]
            if model == "freeze":
                self.freeze()
            else:
                self.faults.arm(model, kind, starts)
        return (i,) + self.specs[i]

    def freeze(self):
        """SIGSTOPs the process of the model that is ready (waiting up to 3 s for one)."""
        for _ in range(30):
            try:
                run = h.request(self.port, "GET", "/running", timeout=10).json()["running"]
            except (OSError, ValueError, KeyError):
                run = []
            for e in run:
                if e.get("state") == "ready" and e.get("pid"):
                    try:
                        os.kill(e["pid"], signal.SIGSTOP)
                    except OSError:
                        continue
                    self.frozen.append((e["model"], e["pid"]))
                    return
            time.sleep(0.1)

    def body_for(self, kind, model):
        if kind in ("chat_stream", "abandon_chunk"):
            return "/v1/chat/completions", h.chat_body(model, stream=True), True
        if kind in ("chat", "abandon_queued", "abandon_head", "keepalive_pair"):
            return "/v1/chat/completions", h.chat_body(model), False
        if kind == "delayed_chat":
            return ("/v1/chat/completions?delay_ms=%d" % self.rng.randint(200, 1500),
                    h.chat_body(model), False)
        if kind == "completion":
            return "/v1/completions", {"model": model, "prompt": "hi"}, False
        if kind == "completion_stream":
            return "/v1/completions", {"model": model, "prompt": "hi", "stream": True}, True
        if kind == "big_chat":  # spooled (over 1 MiB): sent with sendfile
            return "/v1/chat/completions", h.chat_body(model, pad="z" * (2 << 20)), False
        if kind == "embedding":
            return "/v1/embeddings", {"model": model, "input": ["x", "y"]}, False
        raise ValueError(kind)

    def one(self, port, n, kind, model, conn):
        """Runs one request; returns the connection to reuse (or None)."""
        out = Outcome(n, kind, model)
        try:
            if kind == "stall":  # two tokens, then the fake's main loop wedges
                path, body, sse = ("/v1/chat/completions?stall_after_tokens=2",
                                   h.chat_body(model, stream=True), True)
            else:
                path, body, sse = self.body_for(kind, model)
            data = json.dumps(body).encode()
            keep = conn is not None or kind == "keepalive_pair"
            if conn is None:
                conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            else:
                out.conn_reused = True
            # the User-Agent names the request in the daemon's access log
            req = ("POST %s HTTP/1.1\r\nHost: soak\r\nUser-Agent: soak/%d\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n"
                   % (path, n, len(data)))
            if not keep:
                req += "Connection: close\r\n"
            conn.sendall(req.encode() + b"\r\n" + data)
            if kind == "abandon_queued":
                time.sleep(self.rng.uniform(0, 0.4))
                if self.rng.random() < 0.5:  # a reset instead of a FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                conn.close()
                out.cls = ABANDONED
                return None
            rd = Reader(conn, self.hang_s)
            abandon = {"abandon_head": "head", "abandon_chunk": "chunk"}.get(kind)
            reusable = read_response(rd, out, sse, abandon)
            if reusable and keep and not rd.buf and out.cls in (OK, ERROR):
                return conn
            conn.close()
            return None
        except Hung:
            out.cls = HUNG
            out.bytes = rd.total
            out.detail = "no byte for %.0f s (%d bytes before)" % (self.hang_s, rd.total)
            conn.close()
            return None
        except OSError as e:
            out.cls = NO_RESPONSE
            out.detail = "socket error: %r" % e
            if conn is not None:
                conn.close()
            return None
        finally:
            out.t1 = time.monotonic()
            with self.lock:
                self.outcomes.append(out)

    def worker(self, port):
        conn = None
        while True:
            item = self.take()
            if item is None:
                break
            n, kind, model = item
            conn = self.one(port, n, kind, model, conn if kind != "stall" else None)
            if kind == "keepalive_pair" and conn is not None:
                # the second request on the same connection, for the same model
                conn = self.one(port, n, "chat", model, conn)
            if conn is not None and self.rng.random() < 0.5:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def run(self, d):
        self.port = d.port
        self.plan()
        threads = [threading.Thread(target=self.worker, args=(d.port,), daemon=True)
                   for _ in range(self.concurrency)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        # Every request ends: a hung one ends the reader after hang_s, so the bound is the
        # number of requests a thread can run one after another, each hanging at worst.
        bound = self.hang_s * (self.n // self.concurrency + 3) + 120
        for t in threads:
            t.join(max(1, bound - (time.monotonic() - t0)))
        self.elapsed = time.monotonic() - t0
        alive = [t for t in threads if t.is_alive()]
        return not alive

    def tally(self):
        c = collections.Counter(o.cls for o in self.outcomes)
        return c

    def summary(self):
        c = self.tally()
        order = [OK, ERROR, BROKEN, ABANDONED, HUNG, NO_RESPONSE, SILENT_TRUNCATION, BAD_ERROR,
                 BAD_BODY]
        parts = ["%s %d" % (k, c[k]) for k in order if c[k]]
        errs = collections.Counter(o.detail.split(":")[0] for o in self.outcomes
                                   if o.cls == ERROR)
        return ("%d requests (seed %d, concurrency %d) in %.1f s: %s; errors by code: %s; "
                "faults taken: %s"
                % (len(self.outcomes), self.seed, self.concurrency, self.elapsed,
                   ", ".join(parts), dict(errs),
                   ", ".join(self.faults.taken() + ["%s.freeze.pid%d" % f
                                                    for f in self.frozen]) or "none"))


def keep_log(d, name):
    dest_dir = os.environ.get("SOAK_KEEP_LOGS") or tempfile.gettempdir()
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, name)
    try:
        shutil.copyfile(d.log_path, dest)
    except OSError:
        return None
    return dest


class SoakTest(unittest.TestCase):
    def soak(self, n, concurrency, seed, round_no=0):
        s = Soak(n, concurrency, seed)
        failed = True
        with h.Daemon(s.config, ready_timeout=10) as d:
            try:
                finished = s.run(d)
                sys.stdout.write("# round %d: %s\n" % (round_no, s.summary()))
                sys.stdout.flush()
                bad = [o for o in s.outcomes if o.cls not in ALLOWED]
                self.assertTrue(finished, "client threads still running after the bound")
                self.assertEqual(sorted({o.n for o in s.outcomes}), list(range(n)),
                                 "every request has an outcome")
                # The daemon is still whole: each model answers once the chaos is over (and
                # the faults not taken yet are withdrawn).
                s.faults.clear()
                for m in MODELS:
                    # (a process frozen while nothing was in flight on it is found by this
                    # request's silence: 504, and the next one is served by a new process)
                    for _ in range(3):
                        r = d.request("POST", "/v1/embeddings", {"model": m, "input": "x"},
                                      timeout=60)
                        if r.status == 200:
                            break
                    if r.status != 200:
                        bad.append("after the soak, model %s answered %r" % (m, r))
                self.assertEqual(bad, [], "requests that did not end as they must:\n" +
                                 "\n".join(map(repr, bad[:40])))
                failed = False
            finally:
                if os.environ.get("SOAK_KEEP_LOGS") or failed:
                    where = keep_log(d, "soak-daemon-seed%d-round%d.log" % (seed, round_no))
                    if failed and where:
                        h.diag("the whole daemon log: %s" % where)
                if failed:
                    for o in s.outcomes:
                        if o.cls not in ALLOWED:
                            h.diag(repr(o))
                    h.diag(s.summary())
        return s

    # -- a wedged upstream (SIGSTOP: alive, its sockets open, nothing read or answered, as a
    #    llama-server stuck in the GPU driver or a frozen cgroup) -----------------------------
    WEDGE_BOUND_S = env_float("SOAK_WEDGE_BOUND_S", 45)

    def wedge_daemon(self, **server):
        cfg = {"healthCheckTimeout": 15, "queueTimeout": 20, "server": server,
               "models": {"a": {"cmd": h.fake_cmd(model="a", tokens=400, tps=20),
                                "unloadTimeout": 2},
                          "b": {"cmd": h.fake_cmd(model="b"), "unloadTimeout": 2}}}
        for m in cfg["models"].values():
            m["timeouts"] = {"silence": 3}
        return h.Daemon(cfg)

    def wedge_client(self, d, results, name, path, body, sse):
        """Sends one request on its own connection (in a thread) and records its Outcome."""
        def run():
            out = Outcome(0, name, body.get("model"))
            data = json.dumps(body).encode()
            conn = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            rd = Reader(conn, self.WEDGE_BOUND_S)
            try:
                conn.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                              % (path, len(data))).encode() + data)
                rd.last_byte = time.monotonic()  # the bound counts from the request sent
                read_response(rd, out, sse)
            except Hung:
                out.cls = HUNG
                out.bytes = rd.total
                out.detail = "no byte for %.0f s (%d bytes before)" % (self.WEDGE_BOUND_S,
                                                                      rd.total)
            except OSError as e:
                out.cls = NO_RESPONSE
                out.detail = "socket error: %r" % e
            finally:
                out.t1 = time.monotonic()
                conn.close()
                results[name] = out
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def assert_all_ended(self, results, names, threads):
        for t in threads:
            t.join(self.WEDGE_BOUND_S + 30)
        sys.stdout.write("# wedge: %s\n" % "; ".join(
            "%s -> %r" % (k, results[k]) for k in sorted(results)))
        self.assertEqual(sorted(results), sorted(names))
        hung = {k: v for k, v in results.items() if v.cls not in ALLOWED}
        self.assertEqual(hung, {}, "requests that did not end within %.0f s of a wedged "
                                   "upstream (timeouts.silence 3)" % self.WEDGE_BOUND_S)

    def test_wedged_upstream_requests_end(self):
        """A stream is under way when its model's process wedges: the stream, a request sent
        to the model after the wedge and a request for the other model (which waits for the
        swap) all end (broken, JSON error or 2xx) within a bound, not hang."""
        daemon = self.wedge_daemon()
        with daemon as d:
            r = d.request("POST", "/v1/embeddings", {"model": "a", "input": "x"})
            self.assertEqual(r.status, 200, r)
            pid = d.running()[0]["pid"]
            started = h.proc_start_time(pid)
            results = {}
            threads = [self.wedge_client(d, results, "stream", "/v1/chat/completions",
                                         h.chat_body("a", stream=True), True)]
            h.wait_until(lambda: any(r.get("inFlight", 0) > 0 for r in d.running()) or None,
                         5, what="the stream to be in flight")
            time.sleep(0.3)  # a few tokens went out
            os.kill(pid, signal.SIGSTOP)
            try:
                threads.append(self.wedge_client(d, results, "after_the_wedge",
                                                 "/v1/embeddings",
                                                 {"model": "a", "input": "x"}, False))
                time.sleep(0.2)
                threads.append(self.wedge_client(d, results, "other_model",
                                                 "/v1/chat/completions", h.chat_body("b"),
                                                 False))
                self.assert_all_ended(results, ["stream", "after_the_wedge", "other_model"], threads)
            finally:
                # The daemon has killed it by now, and its pid may be another's.
                h.kill_if_same(pid, started, signal.SIGKILL)

    def test_wedged_upstream_large_body_ends(self):
        """A request whose body is larger than the socket buffers take is the only one on a
        model whose process wedges: it must end (504 upstream_stalled) within a bound, and the
        request for the other model, which waits for the swap, must not time out behind it.
        A 6 MiB body spooled to disk (sent with sendfile), then one held in memory."""
        failures = []
        for where, server in (("spooled", {}), ("memory", {"bodyMemoryBytes": 16 << 20})):
            daemon = self.wedge_daemon(**server)
            with daemon as d:
                r = d.request("POST", "/v1/embeddings", {"model": "a", "input": "x"})
                self.assertEqual(r.status, 200, r)
                pid = d.running()[0]["pid"]
                started = h.proc_start_time(pid)
                os.kill(pid, signal.SIGSTOP)
                try:
                    results = {}
                    name = where + "_body"
                    threads = [self.wedge_client(d, results, name, "/v1/chat/completions",
                                                 h.chat_body("a", pad="z" * (6 << 20)), False)]
                    time.sleep(0.5)
                    threads.append(self.wedge_client(d, results, "other_model",
                                                     "/v1/chat/completions", h.chat_body("b"),
                                                     False))
                    try:
                        self.assert_all_ended(results, [name, "other_model"], threads)
                        self.assertEqual(results["other_model"].cls, OK,
                                         "the other model's request waited behind the wedged "
                                         "one: %r" % results["other_model"])
                    except AssertionError as e:
                        failures.append("%s body: %s" % (where, e))
                finally:
                    h.kill_if_same(pid, started, signal.SIGKILL)  # its pid may be another's
        self.assertEqual(failures, [])

    def test_every_request_ends(self):
        n = env_int("SOAK_REQUESTS", 300)
        concurrency = env_int("SOAK_CONCURRENCY", 32)
        rounds = env_int("SOAK_ROUNDS", 1)
        base = env_int("SOAK_SEED", random.randrange(1 << 30))
        for r in range(rounds):
            self.soak(n, concurrency, base + r, r)


if __name__ == "__main__":
    h.main()
