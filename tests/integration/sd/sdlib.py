"""Helpers for the systemd-facing integration tests (test_systemd, test_cgroups, test_scope,
test_journal). Python 3 standard library only; builds on harness.py (imported as h).

- SdDaemon: the daemon with several passed sockets, or none (it binds --listen), and an
  extra environment (NOTIFY_SOCKET, WATCHDOG_USEC, XDG_RUNTIME_DIR, ...).
- NotifyListener: a test-owned sd_notify socket (AF_UNIX datagrams with SO_PASSCRED), which
  records every message with the sender's pid.
- read_stream_until: reads an endless response (/logs/stream/...) until a pattern shows up.
- cgroup helpers: find the directories a daemon created, remove leftovers.
- UserManager: a confined `systemd --user` (own cgroups first, private /run/systemd) for
  the scope backend.
"""

import atexit
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import harness as h  # noqa: E402

CGROUP_ROOT = "/sys/fs/cgroup"


# ---------------------------------------------------------------------------------------------
# Teardown on SIGTERM too (meson's timeout): atexit handlers then still run.

def _term_to_exit(signum, frame):  # noqa: ARG001
    raise SystemExit(128 + signum)


def exit_cleanly_on_sigterm():
    signal.signal(signal.SIGTERM, _term_to_exit)


# ---------------------------------------------------------------------------------------------
# sd_notify listener

class NotifyListener:
    """An AF_UNIX SOCK_DGRAM socket at `path` with SO_PASSCRED; every datagram is kept as
    (monotonic time, sender pid, text)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.msgs = []
        self.cond = threading.Condition()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        cred_len = socket.CMSG_SPACE(struct.calcsize("iII"))
        while not self.stop:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(65536, cred_len)
            except socket.timeout:
                continue
            except OSError:
                return
            pid = 0
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:struct.calcsize("iII")])[0]
            with self.cond:
                self.msgs.append((time.monotonic(), pid, data.decode(errors="replace")))
                self.cond.notify_all()

    def messages(self, pid=None):
        with self.cond:
            return [m for m in self.msgs if pid is None or m[1] == pid]

    def texts(self, pid=None):
        return [m[2] for m in self.messages(pid)]

    def wait_for(self, pred, timeout, what="notification", start=0):
        """The first message (index >= start) whose text satisfies pred; returns (index, msg)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.msgs)):
                    if pred(self.msgs[i][2]):
                        return i, self.msgs[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1f s; got %r" % (
                        what, timeout, [m[2] for m in self.msgs][-20:]))
                self.cond.wait(left)

    def count(self, pred):
        with self.cond:
            return sum(1 for m in self.msgs if pred(m[2]))

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def fields(text):
    """'A=1\\nB=2' -> {'A': '1', 'B': '2'}"""
    out = {}
    for line in text.split("\n"):
        if "=" in line:
            k, _, v = line.partition("=")
            out[k] = v
    return out


# ---------------------------------------------------------------------------------------------
# The daemon with several passed sockets, or none

free_port = h.free_port


class SdDaemon(h.Daemon):
    """h.Daemon with:
      env:      extra environment for the daemon (NOTIFY_SOCKET, XDG_RUNTIME_DIR, ...; a value
                of None removes the variable)
      unix:     names of extra unix stream sockets passed after the TCP one (fds 4, 5, ...);
                their paths are self.unix_paths[name]
      activate: False: no socket is passed, the daemon binds --listen 127.0.0.1:<free port>
                itself (retried on a port conflict), or `listen` when given ("{tmp}" in it
                is the test's temp dir; no port then, so use wait_ready=False)
      watchdog_pid_self: WATCHDOG_PID is set to the daemon's own pid
      listen_pid: a fixed LISTEN_PID instead of the daemon's pid (to test a mismatch)"""

    def __init__(self, config, args=(), env=None, unix=(), activate=True,
                 watchdog_pid_self=False, listen_pid=None, listen=None, **kw):
        super().__init__(config, args=args, **kw)
        self.extra_env = dict(env or {})
        self.unix_names = list(unix)
        self.unix_paths = {}
        self.activate = activate
        self.watchdog_pid_self = watchdog_pid_self
        self.listen_pid = listen_pid
        self.listen = listen
        self.stderr_path = None

    def _env(self):
        env = dict(os.environ)
        env["LLAMA_SWAP_TEST_TAG"] = self.tmp  # see h.Daemon.kill_leftovers
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC",
                  "WATCHDOG_PID", "JOURNAL_STREAM"):
            env.pop(k, None)
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def _spawn(self, script, extra_args, env, fds):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", script, h.LLAMA_SWAP, "-c", self.config_path] + extra_args
            + self.args,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            pass_fds=fds, env=env, start_new_session=True)

    def start(self):
        env = self._env()
        wd = "WATCHDOG_PID=$$; export WATCHDOG_PID; " if self.watchdog_pid_self else ""
        if not self.activate and self.listen:
            self.listen = self.listen.replace("{tmp}", self.tmp)
            self._spawn(wd + 'exec "$0" "$@"', ["--listen", self.listen], env, ())
            return
        if not self.activate:
            # The daemon binds --listen itself: a free port, retried if someone took it.
            for attempt in range(5):
                self.port = free_port()
                self._spawn(wd + 'exec "$0" "$@"', ["--listen", "127.0.0.1:%d" % self.port],
                            env, ())
                if self._listening_or_conflict():
                    return
                self._log.close()
            raise AssertionError("could not find a free port for --listen")
        socks = []
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(128)
        self.port = tcp.getsockname()[1]
        socks.append(tcp)
        for name in self.unix_names:
            path = os.path.join(self.tmp, name + ".sock")
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            u.bind(path)
            u.listen(128)
            self.unix_paths[name] = path
            socks.append(u)
        high = []
        for s in socks:
            high.append(fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 20))
            s.close()
        moves = " ".join("%d<&%d" % (3 + i, n) for i, n in enumerate(high))
        closes = " ".join("%d<&-" % n for n in high)
        lp = str(self.listen_pid) if self.listen_pid is not None else "$$"
        script = ('exec %s %s; LISTEN_PID=%s; export LISTEN_PID; %sexec "$0" "$@"'
                  % (moves, closes, lp, wd))
        env["LISTEN_FDS"] = str(len(socks))
        env["LISTEN_FDNAMES"] = ":".join(["http"] + self.unix_names)
        try:
            self._spawn(script, [], env, tuple(high))
        finally:
            for n in high:
                os.close(n)

    def _listening_or_conflict(self):
        """True once the daemon answers; False if it exited because the port was taken."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "Address already in use" in self.log():
                    with open(self.log_path, "ab") as f:
                        f.write(b"(test: port conflict, retrying)\n")
                    return False
                return True  # wait_healthy reports the failure
            try:
                if h.request(self.port, "GET", "/health", timeout=1.0).status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return True

    @property
    def pid(self):
        return self.proc.pid


def unix_request(path, method, target, timeout=5.0):
    """One HTTP/1.1 request over a unix stream socket; returns (status, body bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(("%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                   % (method, target)).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def read_stream_until(port, path, pattern, timeout=10.0):
    """GETs an endless response (e.g. /logs/stream/m) and reads until the regex `pattern`
    (bytes) matches what arrived; returns the text read. Raises AssertionError on timeout."""
    rx = re.compile(pattern)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        while not rx.search(data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("%r not seen in %s within %.1f s; got %r"
                                     % (pattern, path, timeout, data[-2000:]))
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError("%s ended before %r; got %r" % (path, pattern, data[-2000:]))
            data += chunk
    finally:
        s.close()
    return data.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# cgroups

def cgroup_layout():
    """'v2' (pure cgroup2 at /sys/fs/cgroup), 'hybrid' (v1 controllers + unified), 'v1', or
    None."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers")):
        return "v2"
    if os.path.isdir(os.path.join(CGROUP_ROOT, "memory")):
        if os.path.exists(os.path.join(CGROUP_ROOT, "unified", "cgroup.controllers")):
            return "hybrid"
        return "v1"
    return None


def own_cgroup(controller):
    """This process's cgroup path in a v1 hierarchy ('memory'), or the v2 one ('')."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller == "" and ctrls == "":
                return path
            if controller and controller in ctrls.split(","):
                return path
    return None


def memory_parent_dir():
    """Where the daemon (our child) creates model memory cgroups."""
    layout = cgroup_layout()
    if layout == "v2":
        return CGROUP_ROOT + (own_cgroup("") or "/").rstrip("/")
    if layout in ("hybrid", "v1"):
        return os.path.join(CGROUP_ROOT, "memory") + (own_cgroup("memory") or "/").rstrip("/")
    return None


def cgroups_usable():
    """None when the daemon can create memory cgroups here, else why not."""
    if os.geteuid() != 0:
        return "not root: cannot create cgroups"
    layout = cgroup_layout()
    if layout is None:
        return "no cgroup file system with a memory controller at /sys/fs/cgroup"
    parent = memory_parent_dir()
    if layout == "v2":
        try:
            with open(os.path.join(CGROUP_ROOT, "cgroup.controllers")) as f:
                if "memory" not in f.read().split():
                    return "cgroup v2 without the memory controller"
        except OSError as e:
            return "cannot read cgroup.controllers: %s" % e
    probe = os.path.join(parent, "llama-swap-test-probe-%d" % os.getpid())
    try:
        os.mkdir(probe)
    except OSError as e:
        return "%s is not writable (%s)" % (parent, e.strerror)
    os.rmdir(probe)
    return None


def find_cgroup_dirs(pattern, max_depth=7):
    """Every directory under /sys/fs/cgroup whose name matches the regex `pattern`."""
    rx = re.compile(pattern)
    out = []
    base_depth = CGROUP_ROOT.rstrip("/").count("/")
    for root, dirs, _files in os.walk(CGROUP_ROOT):
        depth = root.rstrip("/").count("/") - base_depth
        for d in dirs:
            if rx.fullmatch(d):
                out.append(os.path.join(root, d))
        if depth >= max_depth:
            dirs[:] = []
    return sorted(out)


def daemon_cgroup_pattern(daemon_pid, model_id=None):
    mid = re.escape(re.sub(r"[^A-Za-z0-9.-]", "_", model_id)) if model_id else r".+"
    return r"llama-swap-%s-%d-\d+" % (mid, daemon_pid)


def remove_cgroup_dirs(dirs):
    """rmdir deepest first; processes left inside are SIGKILLed first. Returns what stayed."""
    left = []
    for d in sorted(dirs, key=lambda p: -p.count("/")):
        for _ in range(40):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        for p in f.read().split():
                            try:
                                os.kill(int(p), signal.SIGKILL)
                            except OSError:
                                pass
                except OSError:
                    pass
                time.sleep(0.05)
        else:
            left.append(d)
    return left


def read_int(path):
    try:
        with open(path) as f:
            t = f.read().strip()
        return int(t) if t.isdigit() else t
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------
# A confined systemd user manager

_USER_MANAGER_SCRIPT = r'''
# $1: the cgroup name; the rest: hierarchy directories. Join our own cgroup in every one of
# them BEFORE the manager starts: a manager in the root cgroup adopts every process.
cg=$1; shift
for dir in "$@"; do
    echo $$ > "$dir/$cg/cgroup.procs" || { echo "cannot join $dir/$cg" >&2; exit 97; }
done
exec unshare -m --propagation private sh -c \
  'mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec /lib/systemd/systemd --user'
'''


class UserManager:
    """`systemd --user` in its own cgroups (one per hierarchy, made by us), with a private
    /run/systemd (so that it believes systemd is booted) and its own XDG_RUNTIME_DIR (a
    private temp directory, so that parallel runs never share or remove one another's).
    start() returns None, or why it cannot run (the tests then skip)."""

    def __init__(self):
        self.proc = None
        self.runtime = None
        self.cg_name = None
        self.cg_dirs = []
        self.log = None

    @staticmethod
    def _hierarchies():
        if cgroup_layout() == "v2":
            return [CGROUP_ROOT]
        out = []
        # cpuset is left out: a new v1 cpuset group takes no process until it gets cpus/mems.
        for name in ("systemd", "unified", "memory", "pids", "cpu", "cpuacct", "blkio",
                     "devices", "freezer"):
            d = os.path.join(CGROUP_ROOT, name)
            if os.path.exists(os.path.join(d, "cgroup.procs")) and not os.path.islink(d):
                out.append(d)
        return out

    def start(self, timeout=15.0):
        if os.geteuid() != 0:
            return "not root"
        for tool in ("/lib/systemd/systemd", shutil.which("unshare"), shutil.which("systemctl")):
            if not tool or not os.access(tool, os.X_OK):
                return "needs /lib/systemd/systemd, unshare and systemctl"
        if os.path.exists("/run/systemd/private"):
            return ("this host runs a system manager (/run/systemd/private): the daemon would use "
                    "it instead of the test's user manager")
        if cgroup_layout() is None:
            return "no cgroup file system"
        hier = self._hierarchies()
        if not any(os.path.basename(d) in ("systemd", "unified") for d in hier) and hier != [CGROUP_ROOT]:
            return "no name=systemd or unified cgroup hierarchy to confine the manager in"
        self.runtime = tempfile.mkdtemp(prefix="lsum-")
        os.chmod(self.runtime, 0o700)
        self.cg_name = "test-usermgr-llama-swap-%d-%d" % (os.getpid(), int(time.time() * 1000) % 100000)
        try:
            for d in hier:
                p = os.path.join(d, self.cg_name)
                os.mkdir(p)
                self.cg_dirs.append(p)
        except OSError as e:
            self.stop()
            return "cannot create cgroup %s: %s" % (p, e.strerror)
        env = dict(os.environ)
        env["XDG_RUNTIME_DIR"] = self.runtime
        for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "DBUS_SESSION_BUS_ADDRESS"):
            env.pop(k, None)
        self.log_path = os.path.join(self.runtime, "manager.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", _USER_MANAGER_SCRIPT, "usermgr", self.cg_name] + hier,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env,
            start_new_session=True)
        private = os.path.join(self.runtime, "systemd", "private")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                why = "the user manager exited with %s: %s" % (self.proc.returncode, self.log_text()[-500:])
                self.stop()
                return why
            if os.path.exists(private):
                r = self.systemctl("is-system-running")
                if r.stdout.strip():  # "running", "degraded", "offline", ...: it answers
                    return None
            time.sleep(0.05)
        self.stop()
        return "the user manager did not come up within %.0f s" % timeout

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    def env(self):
        return {"XDG_RUNTIME_DIR": self.runtime}

    def systemctl(self, *args, timeout=10):
        env = dict(os.environ)
        env["XDG_RUNTIME_DIR"] = self.runtime
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return subprocess.run(["systemctl", "--user", "--no-pager"] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, env=env, timeout=timeout)

    def stop(self):
        """Stops the manager (by pid), kills what is left in its cgroups (only processes it
        started for us), removes the cgroups deepest first and the runtime directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        all_dirs = []
        for top in self.cg_dirs:
            for root, dirs, _ in os.walk(top):
                all_dirs.extend(os.path.join(root, d) for d in dirs)
        left = remove_cgroup_dirs(all_dirs + self.cg_dirs)
        if left:
            sys.stderr.write("user manager teardown: could not remove %s\n" % left)
        self.cg_dirs = []
        if self.log:
            self.log.close()
            self.log = None
        if self.runtime:
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.runtime = None


_manager = None
_manager_error = None


def user_manager():
    """The module's user manager, started on first use (None + reason when unavailable)."""
    global _manager, _manager_error
    if _manager is None and _manager_error is None:
        m = UserManager()
        _manager_error = m.start()
        if _manager_error is None:
            _manager = m
            atexit.register(m.stop)
    return _manager, _manager_error
