"""Extra helpers for the route/auth/logs/reload/filter/upload integration tests.

Builds on harness.py (imported as h, never modified): a YAML emitter for nested values,
a Daemon with config rewriting and reload helpers, live readers for the daemon's endless
responses (/logs/stream, /api/events), /proc memory readings and a streamed upload.
Python 3 standard library only.
"""

import base64
import http.client
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


# ---------------------------------------------------------------------------------------------
# YAML

class Raw(str):
    """A value written into the YAML as is (e.g. a plain `${macro}` scalar)."""


def _scalar(v):
    if isinstance(v, Raw):
        return str(v)
    return h._yaml_scalar(v)  # the base harness's scalar rules for everything else


def _flow(v):
    """A nested value as a YAML flow (JSON-like) node."""
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (json.dumps(str(k)), _flow(x)) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def to_yaml(obj, indent=0):
    """Block mappings for dicts; lists and anything under them as flow nodes."""
    pad = "  " * indent
    out = []
    for k, v in obj.items():
        key = k if re.match(r"^[A-Za-z0-9_.-]+$", str(k)) else json.dumps(str(k))
        if isinstance(v, dict) and v:
            out.append("%s%s:" % (pad, key))
            out.append(to_yaml(v, indent + 1))
        elif isinstance(v, dict):
            out.append("%s%s: {}" % (pad, key))
        elif isinstance(v, (list, tuple)):
            out.append("%s%s: %s" % (pad, key, _flow(v)))
        else:
            out.append("%s%s: %s" % (pad, key, _scalar(v)))
    return "\n".join(out)


def config_text(cfg, start_port=None):
    """YAML text for a config dict, with logLevel: debug and a random startPort by default."""
    cfg = dict(cfg)
    cfg.setdefault("logLevel", "debug")
    if start_port is not None:
        cfg.setdefault("startPort", start_port)
    else:
        import random
        cfg.setdefault("startPort", random.randint(20000, 50000))
    return to_yaml(cfg) + "\n"


def echo_model(**extra):
    """A model served by the fake upstream whose proxy URL ends in /echo: every request the
    daemon relays (any route, any method) lands on the fake's /echo endpoint, which reports
    the method, the path with its query, the headers and the body's length and SHA-256."""
    m = {"cmd": h.fake_cmd(model=extra.pop("fake_model", "echo")),
         "proxy": "http://127.0.0.1:${PORT}/echo"}
    m.update(extra)
    return m


# ---------------------------------------------------------------------------------------------
# The daemon, with reload helpers

class Daemon(h.Daemon):
    """h.Daemon whose dict configs go through the nested-value YAML emitter above."""

    def __init__(self, config, args=(), ready_timeout=5.0, wait_ready=True):
        if isinstance(config, dict):
            cfg = config
            config = lambda d: config_text(cfg)  # noqa: E731
        super().__init__(config, args, ready_timeout, wait_ready)

    def write_config(self, cfg, atomic=True):
        """Replaces the config file (a dict or YAML text); atomically via rename by default."""
        text = config_text(cfg, start_port=self._start_port()) if isinstance(cfg, dict) else cfg
        if atomic:
            tmp = self.config_path + ".new"
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, self.config_path)
        else:
            with open(self.config_path, "w") as f:
                f.write(text)

    def _start_port(self):
        try:
            with open(self.config_path) as f:
                m = re.search(r"^startPort:\s*(\d+)", f.read(), re.M)
            return int(m.group(1)) if m else None
        except OSError:
            return None

    def reloads(self):
        """(successful, failed) reload counts so far, from the log."""
        log = self.log()
        return (len(re.findall(r"configuration reloaded", log)),
                len(re.findall(r"reload failed", log)))

    def sighup(self, timeout=5.0):
        """Sends SIGHUP and waits until the daemon logged the reload's outcome."""
        ok0, bad0 = self.reloads()
        self.proc.send_signal(signal.SIGHUP)
        h.wait_until(lambda: sum(self.reloads()) > ok0 + bad0, timeout, what="reload to finish")
        return self.reloads()[0] > ok0

    @property
    def pid(self):
        return self.proc.pid  # bash execs the daemon, so the pid is the daemon's

    def mem_kb(self, key="VmRSS"):
        return proc_status_kb(self.pid, key)


def proc_status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


# ---------------------------------------------------------------------------------------------
# Requests

def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def err_code(r):
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def stream_upload(port, method, path, headers, chunks, length, timeout=120.0, sndbuf=None):
    """Sends a body given as an iterator of byte chunks with a Content-Length computed up front;
    returns an h.Response. sndbuf: SO_SNDBUF for the client socket (a fast sender)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.connect()
        if sndbuf:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        sent = 0
        for c in chunks:
            conn.send(c)
            sent += len(c)
        assert sent == length, "generated %d bytes, announced %d" % (sent, length)
        r = conn.getresponse()
        data = r.read()
        return h.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data, r.reason)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Live readers for endless responses

class LiveResponse:
    """GETs path on a raw socket and decodes the (chunked) body in a background thread; the
    decoded body accumulates in .body (.text), as it arrived in .chunks."""

    def __init__(self, port, path, headers=None, timeout=30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % path
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode())
        self.status = None
        self.headers = {}
        self.raw_head = ""
        self.body = b""
        self.chunks = []  # [(arrival time, bytes)]
        self.ended = False  # terminating chunk or EOF seen
        self.error = None
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # -- reader thread
    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except OSError as e:
            if not self._stop:
                self.error = e
            return b""
        return data

    def _run(self):
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = self._recv()
                if not d:
                    raise EOFError("no response head")
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            head = head.decode("latin-1")
            lines = head.split("\r\n")
            with self._cv:
                self.raw_head = head
                self.status = int(lines[0].split(" ")[1])
                for l in lines[1:]:
                    k, _, v = l.partition(":")
                    self.headers[k.strip().lower()] = v.strip()
                self._cv.notify_all()
            chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
            length = int(self.headers.get("content-length", "-1"))
            if not chunked:
                while length < 0 or len(buf) < length:
                    self._add(buf)
                    buf = b""
                    d = self._recv()
                    if not d:
                        break
                    buf = d
                self._add(buf)
                return
            while True:
                while b"\r\n" not in buf:
                    d = self._recv()
                    if not d:
                        return
                    buf += d
                size_line, buf = buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0].strip(), 16)
                while len(buf) < size + 2:
                    d = self._recv()
                    if not d:
                        self._add(buf)
                        return
                    buf += d
                if size == 0:
                    return
                self._add(buf[:size])
                buf = buf[size + 2:]
        except Exception as e:  # noqa: BLE001 - recorded for the test to look at
            if not self._stop:
                self.error = e
        finally:
            with self._cv:
                self.ended = True
                self._cv.notify_all()

    def _add(self, data):
        if not data:
            return
        with self._cv:
            self.body += data
            self.chunks.append((time.monotonic(), data))
            self._cv.notify_all()

    # -- test side
    @property
    def text(self):
        with self._cv:
            return self.body.decode(errors="replace")

    def complete_lines(self):
        """The body's finished lines (text)."""
        return self.text.split("\n")[:-1]

    def wait_head(self, timeout=5.0):
        with self._cv:
            self._cv.wait_for(lambda: self.status is not None or self.ended, timeout)
        if self.status is None:
            raise AssertionError("no response head within %.1f s (%r)" % (timeout, self.error))
        return self.status

    def wait_for(self, pred, timeout, what="stream content"):
        """Waits until pred(text) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                v = pred(self.body.decode(errors="replace"))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    raise AssertionError("timed out after %.1f s waiting for %s; got %d bytes: %r"
                                         % (timeout, what, len(self.body), self.body[-1500:]))
                self._cv.wait(min(left, 0.2))

    def wait_text(self, needle, timeout=5.0):
        return self.wait_for(lambda t: needle in t, timeout, what=repr(needle))

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class EventStream(LiveResponse):
    """/api/events: decodes `event:`/`data:` frames; .events() gives [(type, inner data)] with
    the inner `data` string parsed as JSON."""

    def frames(self):
        out = []
        text = self.text
        for block in text.split("\n\n")[:-1]:  # the last piece is unfinished
            ev = {"event": None, "data": None, "comment": None}
            for line in block.split("\n"):
                if line.startswith(":"):
                    ev["comment"] = line[1:].strip()
                elif line.startswith("event:"):
                    ev["event"] = line[6:].strip()
                elif line.startswith("data:"):
                    ev["data"] = line[5:].strip()
            out.append(ev)
        return out

    def events(self):
        out = []
        for f in self.frames():
            if f["data"] is None:
                continue
            outer = json.loads(f["data"])
            inner = outer["data"]
            out.append((outer["type"], json.loads(inner), f["event"]))
        return out

    def wait_event(self, pred, timeout, what="event"):
        """Waits until pred(events list) is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            v = pred(self.events())
            if v:
                return v
            if time.monotonic() >= deadline or self.ended:
                raise AssertionError("timed out after %.1f s waiting for %s; events: %r"
                                     % (timeout, what, [(t, d) for t, d, _ in self.events()][-20:]))
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Threads for requests in flight

class Background:
    """h.Call with the names these tests use: .t0/.t1, done(), result()."""

    def __init__(self, fn):
        self._call = h.Call(fn)

    @property
    def t0(self):
        return self._call.started

    @property
    def t1(self):
        return self._call.finished

    def done(self):
        return not self._call.thread.is_alive()

    def result(self, timeout=30.0):
        return self._call.get(timeout)
