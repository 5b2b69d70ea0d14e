"""Real nginx in front of the daemon, configured by the shipped contrib/nginx/llama-swap.conf.

The test's own nginx.conf holds only what a distribution's main nginx.conf would (pid, logs,
temp paths, an http block) and `include`s the shipped file, so what is tested is the text
users copy. That file names llama-swap's default address (upstream 127.0.0.1:8080) and
listens on port 80, both taken or privileged on a shared machine; so, when it can, the test
process first moves into a network namespace of its own (root: unshare(CLONE_NEWNET) with
its loopback brought up), where both are free and nothing else can interfere, and the daemon
listens on 127.0.0.1:8080 there. Without one (no privilege, or LLAMA_SWAP_TEST_NETNS=0) the
shipped text is included through a temporary copy in which exactly the lines the file marks
CHANGE for addresses are substituted (the upstream's `server 127.0.0.1:8080;`, `listen 80;`,
`listen [::]:80;`); everything else is the shipped text.

    nginx_front.setup()                          # in __main__, before any thread starts
    with nginx_front.Daemon(cfg) as d, nginx_front.Nginx(d) as ng:
        r = h.request(ng.port, "GET", "/v1/models")

Python 3 standard library only.
"""

import ctypes
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
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402

SNIPPET = os.path.join(h.ROOT, "contrib", "nginx", "llama-swap.conf")
SHIPPED_UPSTREAM = "server 127.0.0.1:8080;"
SHIPPED_LISTEN = ("listen 80;", "listen [::]:80;")
SHIPPED_DAEMON_PORT = 8080
SHIPPED_NGINX_PORT = 80

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_netns = None  # None: setup() not called yet; else True/False


def nginx_path():
    """$NGINX, else nginx on PATH or in /usr/sbin, /usr/local/sbin; None if not there."""
    if "NGINX" in os.environ:
        p = os.environ["NGINX"]
        return p if os.access(p, os.X_OK) else None
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin")


def missing():
    """Why nginx tests cannot run here (a message), or None."""
    if not nginx_path():
        return ("nginx not found (%s; install the nginx package, as scripts/setup does)"
                % ("$NGINX=%s is not executable" % os.environ["NGINX"] if "NGINX" in os.environ
                   else "not on PATH, /usr/sbin or /usr/local/sbin"))
    if not os.path.isfile(SNIPPET):
        return "%s not found" % SNIPPET
    return None


def _loopback_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack("16sH", ifr[:18])[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def setup():
    """Moves this process into a network namespace of its own (once) where the shipped
    addresses are free. Call it before any thread starts: only the calling thread (and the
    threads and processes it creates afterwards) change namespace. True when it did."""
    global _netns
    if _netns is not None:
        return _netns
    _netns = False
    if os.environ.get("LLAMA_SWAP_TEST_NETNS", "1") == "0":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        home = os.open("/proc/self/ns/net", os.O_RDONLY)
    except OSError:
        return False
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            return False
        try:
            _loopback_up()
            # The shipped `listen [::]:80` needs IPv6 on the loopback.
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", 0))
        except OSError:
            # Back to where we came from; the tests substitute the addresses instead.
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the original network namespace")
            return False
    finally:
        os.close(home)
    _netns = True
    return True


def mode():
    return ("the shipped file as is, in a private network namespace" if _netns else
            "a copy of the shipped file with its upstream and listen lines substituted "
            "(no private network namespace here)")


def say_mode():
    """A TAP comment (shown whatever the outcome) saying how the snippet is used."""
    sys.stdout.write("# nginx: %s\n" % mode())
    sys.stdout.flush()


_free_port = h.free_port


# ---------------------------------------------------------------------------------------------
# The daemon on the shipped address

class Daemon(h4.Daemon):
    """h4.Daemon that, in the private namespace, listens on the address the shipped snippet
    names (127.0.0.1:8080); elsewhere on 127.0.0.1:0 like h4.Daemon."""

    @property
    def listen_port(self):
        return SHIPPED_DAEMON_PORT if _netns else 0


# ---------------------------------------------------------------------------------------------
# nginx

MAIN_CONF = """\
# Written by tests/integration/nginx_front.py: what a distribution's nginx.conf provides,
# then the shipped site.
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{
    worker_connections 512;
}}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body_temp;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    include {site};
}}
"""

PROBLEMS = re.compile(r"\[(error|crit|alert|emerg)\]")


class Nginx:
    """nginx in the foreground (single process) in front of daemon d; .port is where it
    listens on 127.0.0.1. Stopped with SIGQUIT (graceful), SIGKILL after 10 s."""

    def __init__(self, d):
        self.d = d
        self.dir = None
        self.proc = None
        self.port = None

    def __enter__(self):
        reason = missing()
        if reason:
            raise AssertionError(reason)
        self.dir = tempfile.mkdtemp(prefix="llama-swap-nginx-")
        try:
            for attempt in range(5):
                if self._start():
                    return self
                if "Address already in use" not in self.error_log() or _netns:
                    break
                self._stop()  # a port race with another process: take another port
                h.diag("nginx: port %d was taken, retrying" % self.port)
            raise AssertionError("nginx did not start (%s):\n%s"
                                 % (mode(), self.error_log()[-3000:]))
        except BaseException:
            self._cleanup(failed=True)
            raise

    def _site(self):
        if _netns:
            self.port = SHIPPED_NGINX_PORT
            return SNIPPET
        with open(SNIPPET) as f:
            text = f.read()
        self.port = _free_port()
        subs = [(SHIPPED_UPSTREAM, "server 127.0.0.1:%d;" % self.d.port),
                (SHIPPED_LISTEN[0], "listen 127.0.0.1:%d;" % self.port),
                (SHIPPED_LISTEN[1], "")]
        for old, new in subs:
            # Exactly one, outside comments: if the shipped file changes, this must too.
            hits = [l for l in text.split("\n") if l.strip() == old]
            assert len(hits) == 1, "the shipped snippet has %d lines %r" % (len(hits), old)
            text = re.sub(r"(?m)^(\s*)" + re.escape(old) + r"\s*$", r"\g<1>" + new, text)
        site = os.path.join(self.dir, "llama-swap.conf")
        with open(site, "w") as f:
            f.write(text)
        return site

    def _start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(MAIN_CONF.format(dir=self.dir, site=self._site()))
        for p in ("nginx.pid", "error.log"):
            try:
                os.unlink(os.path.join(self.dir, p))
            except FileNotFoundError:
                pass
        self._out = open(os.path.join(self.dir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(
            [nginx_path(), "-e", os.path.join(self.dir, "error.log"), "-c", conf,
             "-p", self.dir + "/"],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out,
            start_new_session=True)
        # The pid file is written once every listening socket is bound.
        pid_file = os.path.join(self.dir, "nginx.pid")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if os.path.exists(pid_file) and self._accepts():
                return True
            time.sleep(0.02)
        return False

    def _accepts(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def error_log(self):
        out = ""
        for name in ("error.log", "stdout.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def problems(self):
        """error.log lines at level error or worse."""
        return [l for l in self.error_log().split("\n") if PROBLEMS.search(l)]

    def _stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGQUIT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        self.proc = None

    def stop(self):
        """Graceful stop (the test can look at the logs afterwards)."""
        self._stop()

    def _cleanup(self, failed):
        try:
            self._stop()
        finally:
            if failed and self.dir:
                h.diag("nginx (%s) error.log:\n%s" % (mode(), self.error_log()[-3000:]))
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb):
        self._cleanup(failed=exc_type is not None)
        return False
