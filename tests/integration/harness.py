"""Integration test harness: runs the real llama-swap daemon against the fake upstream.

Python 3 standard library only. Each test file imports this module, defines unittest
TestCases, and ends with `harness.main()`, which prints TAP for `meson test`.

The daemon is started with socket activation: the harness binds 127.0.0.1:0 itself, and the
daemon gets that socket as fd 3 with LISTEN_FDS=1, LISTEN_PID=<its own pid>, so no port is ever
guessed. Every process a test causes (the daemon, the upstreams it spawns, their grandchildren)
is killed on teardown, whether the test passed or not.
"""

import fcntl
import hashlib
import http.client
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LLAMA_SWAP = os.environ.get("LLAMA_SWAP", os.path.join(ROOT, "build", "src", "llama-swap"))
FAKE_UPSTREAM = os.environ.get(
    "FAKE_UPSTREAM", os.path.join(ROOT, "build", "tests", "fake-upstream", "fake-upstream"))

# Diagnostics gathered while a test fails (daemon stderr tails); the TAP result prints them.
_pending_diag = []


def diag(text):
    """Adds text to the diagnostics shown with the current test's result."""
    _pending_diag.append(text)


# ---------------------------------------------------------------------------------------------
# Waiting and process helpers

def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value or timeout seconds pass; returns the value.

    Raises AssertionError on timeout, so a bounded wait that fails is a test failure."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    """A port nothing listens on now (bound, then closed: another process could take it, which
    is unlikely enough on 127.0.0.1 for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        state = stat[stat.rindex(")") + 2]
        return state != "Z"
    except (OSError, ValueError, IndexError):
        return False


def _stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2:].split()
    except (OSError, ValueError):
        return None


def _proc_info(pid):
    """(pgid, cmdline) of a live process, or None."""
    fields = _stat_fields(pid)
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        return int(fields[2]), cmd
    except (OSError, ValueError, IndexError, TypeError):
        return None


def proc_start_time(pid):
    """A process's start time (clock ticks since boot), or None when it is gone: with a pid
    and its start time, a later signal reaches that process and never one that got its pid
    after it died (pids are reused quickly: pid_max may be 32768)."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19])
    except (ValueError, IndexError, TypeError):
        return None


def kill_if_same(pid, started, sig):
    """Sends sig to pid only if it is still the process that started at `started`."""
    if started is not None and proc_start_time(pid) == started:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _has_tag(pid, tag):
    """Whether the process's environment holds LLAMA_SWAP_TEST_TAG=tag (see Daemon)."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return ("LLAMA_SWAP_TEST_TAG=" + tag).encode() in f.read().split(b"\0")
    except OSError:
        return False


def guard_pids(daemon_pid):
    """The daemon's process-group guards: its children named llama-swap-guard."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if "(llama-swap-guar" in stat and int(fields[1]) == daemon_pid:
            out.append(int(pid))
    return out


def kill_daemon_and_guard(daemon_pid):
    """SIGKILLs the daemon and its guard together, as a crash or the OOM killer might: the
    daemon is stopped first, so it cannot start a new guard in between. Returns the guards."""
    guards = guard_pids(daemon_pid)
    os.kill(daemon_pid, signal.SIGSTOP)
    for g in guards:
        os.kill(g, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(g) for g in guards), 5, what="the guard to die")
    os.kill(daemon_pid, signal.SIGKILL)
    return guards


def read_pid_file(path):
    """Pids appended to a fake-upstream --pid-file (one per line, maybe with words around)."""
    try:
        with open(path) as f:
            return [int(x) for x in re.findall(r"\d+", f.read())]
    except OSError:
        return []



# ---------------------------------------------------------------------------------------------
# Requests in flight

class Call:
    """Runs fn in a thread, recording its result (or exception) and when it returned."""

    def __init__(self, fn):
        self.fn = fn
        self.result = None
        self.error = None
        self.started = time.monotonic()
        self.finished = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - reported by get()
            self.error = e
        self.finished = time.monotonic()

    def get(self, timeout=30):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError("call did not return within %s s" % timeout)
        if self.error is not None:
            raise self.error
        return self.result

# ---------------------------------------------------------------------------------------------
# Config building

def _yaml_scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    # JSON strings are valid YAML double-quoted scalars (for the characters we use).
    return json.dumps(str(v))


def to_yaml(obj, indent=0):
    """A tiny YAML emitter for dicts/lists/scalars (block mappings, flow lists)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict):
                if v:
                    out.append("%s%s:" % (pad, k))
                    out.append(to_yaml(v, indent + 1))
                else:
                    out.append("%s%s: {}" % (pad, k))
            elif isinstance(v, (list, tuple)):
                out.append("%s%s: [%s]" % (pad, k, ", ".join(_yaml_scalar(x) for x in v)))
            else:
                out.append("%s%s: %s" % (pad, k, _yaml_scalar(v)))
        return "\n".join(out)
    return pad + _yaml_scalar(obj)


def fake_cmd(**flags):
    """The `cmd:` for a model served by the fake upstream on the daemon-chosen ${PORT}.

    fake_cmd(model="a", load_delay_ms=500, ignore_sigterm=True) ->
    '/path/fake-upstream --port ${PORT} --model a --load-delay-ms 500 --ignore-sigterm'"""
    words = [shlex.quote(FAKE_UPSTREAM), "--port", "${PORT}"]
    for k, v in flags.items():
        if v is None or v is False:
            continue
        words.append("--" + k.replace("_", "-"))
        if v is not True:
            words.append(shlex.quote(str(v)))
    return " ".join(words)


# ---------------------------------------------------------------------------------------------
# HTTP helpers

def one_model_config(**server):
    """A config with one fake-upstream model `m`, and these `server:` settings."""
    c = {"models": {"m": {"cmd": fake_cmd(model="m")}}}
    if server:
        c["server"] = server
    return c


class Response:
    def __init__(self, status, headers, body, reason=""):
        self.status = status
        self.headers = headers  # dict, lower-case names -> last value
        self.body = body
        self.reason = reason

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "Response(%d, %r, %r)" % (self.status, self.headers, self.body[:500])


def request(port, method, path, body=None, headers=None, timeout=15.0):
    """One request on a fresh connection via http.client; returns a Response."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return Response(r.status, hdrs, data, r.reason)
    finally:
        conn.close()


class RawConn:
    """A raw TCP connection with an HTTP/1.1 response parser (Content-Length, chunked,
    read-until-close, 1xx interim responses). For malformed requests and pipelining."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_until(self, marker):
        while marker not in self.buf:
            if not self._fill():
                raise EOFError("connection closed before %r (have %r)" % (marker, self.buf[:200]))
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError("connection closed with %d of %d bytes" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_all(self):
        """Everything until the peer closes (bounded by the socket timeout)."""
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def read_head(self):
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, lines[0]

    def read_response(self, method="GET", allow_interim=False):
        """Reads one response. Interim (1xx) responses are returned when allow_interim."""
        while True:
            status, headers, line = self.read_head()
            if 100 <= status < 200 and not allow_interim:
                continue
            break
        if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
            return Response(status, headers, b"", line)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size_line = self.read_until(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers until an empty line
                    while self.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                body += self.read_exact(size)
                self.read_exact(2)
            return Response(status, headers, body, line)
        if "content-length" in headers:
            return Response(status, headers, self.read_exact(int(headers["content-length"])), line)
        return Response(status, headers, self.read_all(), line)


def raw_exchange(port, data, timeout=10.0):
    """Sends raw bytes, reads one response."""
    with RawConn(port, timeout) as c:
        c.send(data)
        return c.read_response()


class Stream:
    """A streamed (SSE) response: each line with its arrival time (time.monotonic())."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.lines = []        # [(t, line-bytes)]
        self.error = None      # exception that broke the stream, if any
        self.complete = False  # the chunked body ended with its terminating chunk

    def data_lines(self):
        return [(t, l[5:].strip()) for t, l in self.lines if l.startswith(b"data:")]


def stream_request(port, path, body, headers=None, timeout=20.0):
    """POSTs body and reads the response line by line, timestamping each line."""
    s = Stream()
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
        r = conn.getresponse()
        s.status = r.status
        s.headers = {k.lower(): v for k, v in r.getheaders()}
        # read1, not readline: HTTPResponse.readline swallows the IncompleteRead of a chunked
        # body cut short, and we must tell a broken stream from a finished one.
        pending = b""
        try:
            while True:
                data = r.read1(65536)
                now = time.monotonic()
                if not data:
                    break
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    s.lines.append((now, line.rstrip(b"\r")))
            if pending:
                s.lines.append((time.monotonic(), pending))
            s.complete = True
        except (http.client.IncompleteRead, ConnectionError, socket.timeout, OSError) as e:
            s.error = e
    finally:
        conn.close()
    return s


def chat_body(model, stream=False, **extra):
    b = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]}
    b.update(extra)
    return b


def multipart(fields, boundary="----llamaswaptestboundary"):
    """(body bytes, content-type) for a multipart/form-data body; fields: name -> str|bytes|
    (filename, bytes)."""
    out = b""
    for name, value in fields.items():
        out += b"--" + boundary.encode() + b"\r\n"
        if isinstance(value, tuple):
            fname, data = value
            out += ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: application/octet-stream\r\n\r\n' % (name, fname)).encode()
            out += data
        else:
            out += ('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode()
            out += value if isinstance(value, bytes) else value.encode()
        out += b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, "multipart/form-data; boundary=" + boundary


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# The daemon

_sanitized = None


def address_sanitized():
    """True when $LLAMA_SWAP was built with AddressSanitizer, whose shadow memory and
    quarantine make the daemon's RSS say nothing about the daemon itself."""
    global _sanitized
    if _sanitized is None:
        try:
            with open(LLAMA_SWAP, "rb") as f:
                _sanitized = b"__asan_init" in f.read()
        except OSError:
            _sanitized = False
    return _sanitized


def assert_memory_below(test, kb, limit_kb, what):
    """test.assertLess(kb, limit_kb), unless the daemon is an AddressSanitizer build: then
    the bound is not checked and a TAP comment says so."""
    if address_sanitized():
        sys.stdout.write("# %s: %d kB, bound of %d kB not checked: AddressSanitizer build\n"
                         % (what, kb, limit_kb))
        return
    test.assertLess(kb, limit_kb, "%s: %d kB (bound %d kB)" % (what, kb, limit_kb))


SANITIZER_REPORT = re.compile(r"(ERROR: (Address|Leak|Thread)Sanitizer[^\n]*|"
                              r"[^\n]*runtime error: [^\n]*)")


class Daemon:
    """Runs llama-swap with a config, socket-activated on 127.0.0.1:0.

        with Daemon({"models": {"a": {"cmd": fake_cmd(model="a")}}}) as d:
            r = d.request("GET", "/health")

    `config` is a dict (emitted as YAML, with logLevel: debug and a random startPort added
    unless given), a YAML string written as is, or a callable taking the Daemon and returning
    either (so that it can use d.pid_file(...) paths inside the test's temp dir)."""

    def __init__(self, config, args=(), ready_timeout=5.0, wait_ready=True):
        self.config = config
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.wait_ready = wait_ready
        self.tmp = None
        self.proc = None
        self.port = None
        self.log_path = None
        self.pid_files = []
        self.extra_pids = set()
        self.exit_code = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="llama-swap-it-")
        self.config_path = os.path.join(self.tmp, "config.yaml")
        cfg = self.config
        if callable(cfg):
            cfg = cfg(self)  # may call self.pid_file() now that the temp dir exists
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            cfg.setdefault("logLevel", "debug")
            # Upstream ports come from startPort; a random base keeps test files that meson
            # runs in parallel from racing for the same ports (the daemon also skips busy ones).
            cfg.setdefault("startPort", random.randint(20000, 50000))
            text = to_yaml(cfg) + "\n"
        else:
            text = cfg
        with open(self.config_path, "w") as f:
            f.write(text)
        self.log_path = os.path.join(self.tmp, "daemon.log")
        try:
            self.start()
            if self.wait_ready:
                self.wait_healthy(self.ready_timeout)
        except BaseException:
            self._teardown(failed=True)
            raise
        return self

    # The port the daemon is socket-activated on; 0: one the kernel picks (race-free).
    listen_port = 0
    # The socket's FileDescriptorName=; with --tls-cert-file every socket but "http" is TLS.
    fd_name = "http"

    def start(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("127.0.0.1", self.listen_port))
        lsock.listen(128)
        self.port = lsock.getsockname()[1]
        # A high fd number so that `exec 3<&N N<&-` never clobbers itself (bash, not dash:
        # dash only takes one-digit fd numbers).
        n = fcntl.fcntl(lsock.fileno(), fcntl.F_DUPFD, 20)
        lsock.close()
        env = dict(os.environ)
        env.update({"LISTEN_FDS": "1", "LISTEN_FDNAMES": self.fd_name,
                    "LLAMA_SWAP_TEST_TAG": self.tmp})
        for k in ("LISTEN_PID", "NOTIFY_SOCKET"):
            env.pop(k, None)
        script = 'exec 3<&%d %d<&-; LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"' % (n, n)
        self._log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                ["/bin/bash", "-c", script, LLAMA_SWAP, "-c", self.config_path] + self.args,
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                pass_fds=(n,), env=env, start_new_session=True)
        finally:
            os.close(n)  # only the daemon holds the listening socket now

    def wait_healthy(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %s before becoming healthy:\n%s"
                                     % (self.proc.returncode, self.log()[-3000:]))
            try:
                r = request(self.port, "GET", "/health", timeout=1.0)
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise AssertionError("daemon not healthy after %.1f s (last: %r)" % (timeout, last))

    def __exit__(self, exc_type, exc, tb):
        self._teardown(failed=exc_type is not None)
        return False

    def terminate(self, timeout=10.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill(self):
        """SIGKILL the daemon and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.exit_code = self.proc.returncode

    def _teardown(self, failed):
        sanitizer = None
        try:
            if self.proc is not None:
                self.terminate(10.0)
        finally:
            self.kill_leftovers()
            if getattr(self, "_log", None):
                self._log.close()
            if self.log_path:
                # A sanitizer build (scripts/setup -Db_sanitize=address,undefined) reports
                # into the log: any report fails the test that ran the daemon.
                m = SANITIZER_REPORT.search(self.log())
                if m:
                    sanitizer = m.group(0)
                    failed = True
            if failed and self.log_path:
                diag("daemon log (%s), last 4000 bytes:\n%s" % (self.log_path, self.log()[-4000:]))
            if self.tmp:
                subprocess.run(["rm", "-rf", self.tmp], check=False)
        if sanitizer:
            raise AssertionError("the daemon's sanitizer reported: " + sanitizer)

    def upstream_pids(self):
        """Every pid this daemon reported starting, plus pid-file pids and extra_pids."""
        pids = set(self.extra_pids)
        for m in re.finditer(r"starting pid (\d+)", self.log()):
            pids.add(int(m.group(1)))
        for p in self.pid_files:
            pids.update(read_pid_file(p))
        return pids

    def kill_leftovers(self):
        """SIGKILLs whatever this test started that is still alive: the recorded pids and any
        process in their process groups, but only fake-upstream processes (a pid could have
        been recycled by an unrelated process)."""
        pids = self.upstream_pids()
        if not pids:
            return
        victims = set()
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            info = _proc_info(pid)
            if info is None:
                continue
            pgid, cmd = info
            # The model processes inherit the daemon's environment, tag included: a pid that
            # another test's process got since (pids are reused quickly) is not ours.
            if (pid in pids or pgid in pids) and FAKE_UPSTREAM in cmd and _has_tag(pid, self.tmp):
                victims.add(pid)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if victims:
            diag("teardown killed leftover upstream processes: %s" % sorted(victims))

    # -- helpers ------------------------------------------------------------------------------
    def pid_file(self, name):
        """A path for a fake-upstream --pid-file; its pids are killed on teardown."""
        p = os.path.join(self.tmp, name + ".pids")
        self.pid_files.append(p)
        return p

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except (OSError, TypeError):
            return ""

    def request(self, method, path, body=None, headers=None, timeout=15.0):
        return request(self.port, method, path, body, headers, timeout)

    def chat(self, model, timeout=15.0, path="/v1/chat/completions", **extra):
        return self.request("POST", path, chat_body(model, **extra), timeout=timeout)

    def running(self):
        r = self.request("GET", "/running")
        assert r.status == 200, r
        return r.json()["running"]

    def running_models(self):
        return sorted(e["model"] for e in self.running())

    def raw(self, timeout=10.0):
        return RawConn(self.port, timeout)

    def starts(self, model=None):
        """Number of 'starting pid' lines in the log (for one model or all)."""
        pat = r"model %s: starting pid \d+" % (re.escape(model) if model else r"\S+")
        return len(re.findall(pat, self.log()))


# ---------------------------------------------------------------------------------------------
# A test runner that speaks TAP

class TapResult(unittest.TestResult):
    def __init__(self, stream):
        super().__init__()
        self.out = stream
        self.n = 0
        self.any_failed = False

    def _name(self, test):
        return "%s.%s" % (type(test).__name__, test._testMethodName)

    def _diag(self, text):
        for line in text.rstrip("\n").split("\n"):
            self.out.write("# %s\n" % line)

    def _flush_pending(self):
        while _pending_diag:
            self._diag(_pending_diag.pop(0))

    def startTest(self, test):
        super().startTest(test)
        _pending_diag.clear()
        self.t0 = time.monotonic()

    def _emit(self, test, ok, suffix="", err=None):
        self.n += 1
        name = self._name(test)
        dt = time.monotonic() - self.t0
        self.out.write("%s %d - %s%s\n" % ("ok" if ok else "not ok", self.n, name, suffix))
        if err is not None:
            self._diag(self._exc_info_to_string(err, test))
        if not ok:
            self._flush_pending()
        else:
            _pending_diag.clear()
        self._diag("%s took %.2f s" % (name, dt))
        self.out.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._emit(test, True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.any_failed = True
        self._emit(test, False, err=err)

    def addError(self, test, err):
        super().addError(test, err)
        self.any_failed = True
        self._emit(test, False, err=err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._emit(test, True, " # SKIP %s" % reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._emit(test, True, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.any_failed = True
        self._emit(test, False, " # unexpected success")


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


def main():
    """Runs the __main__ module's tests (or those named in argv) and prints TAP."""
    loader = unittest.TestLoader()
    mod = sys.modules["__main__"]
    if len(sys.argv) > 1:
        suite = loader.loadTestsFromNames(sys.argv[1:], mod)
    else:
        suite = loader.loadTestsFromModule(mod)
    tests = list(_flatten(suite))
    out = sys.stdout
    for name, path in (("llama-swap", LLAMA_SWAP), ("fake-upstream", FAKE_UPSTREAM)):
        if not os.access(path, os.X_OK):
            out.write("1..0 # SKIP %s binary not found at %s\n" % (name, path))
            sys.exit(0)
    out.write("1..%d\n" % len(tests))
    out.flush()
    result = TapResult(out)
    for t in tests:
        try:
            t.run(result)
        except Exception:  # never let one test stop the plan
            result.addError(t, sys.exc_info())
    out.flush()
    sys.exit(1 if result.any_failed else 0)
