"""Several llama-swap hosts behind one front, on a network the test builds itself.

    ns 'front'   192.168.1.10   HAProxy or nginx on :80 (the shipped contrib/ file)
    ns 'gpu1'    192.168.1.11   llama-swap on :8080: llama-a
    ns 'gpu2'    192.168.1.12   llama-swap on :8080: llama-b, llama-c
    ns 'gpu3'    192.168.1.13   llama-swap on :8080: llama-b
    the test     192.168.1.2    the client, and the LAN switch (bridge br0)

The addresses are the ones contrib/haproxy/llama-swap.cfg and contrib/nginx/multi-host.conf
name, so those files run as shipped (only HAProxy's log, chroot and stats socket paths are
substituted). setup(), called once before any thread starts, moves the test process into a
network namespace of its own (unshare(CLONE_NEWNET)) holding the bridge: nothing of the
machine's own network is touched, and the addresses cannot clash with it. Each Cluster
then creates named namespaces (`ip netns add`, under /run/netns) linked to the bridge by
veth pairs, and starts the real daemon in each gpu host: a harness Daemon whose listening
socket is bound, and whose process is forked, inside the host's namespace (see HostDaemon).
Each upstream is the fake upstream started with --model MODEL@HOST, so every reply says
which host served it (served_by()).

    mh.setup()                                   # in __main__, before any thread starts
    with mh.Cluster() as c, mh.HAProxyFront(c) as front:
        r = mh.request(front.address, front.port, "POST", "/v1/chat/completions", body)
        mh.served_by(r.json())                   # 'gpu2'
        c.kill("gpu2")                           # SIGKILL its daemon (by pid)

Everything is torn down when the `with` ends, whatever happened: processes by pid, then
the namespaces. Should the test process itself be killed, the next run deletes the
namespaces left behind (named after their creator's pid) and the processes in them.
Needs root, `ip` (iproute2), and veth and bridge support in the kernel; missing() says what
is lacking. Fronts: HAProxyFront, NginxFront, and PeersFront (llama-swap itself in front,
the hosts as its `peers`).

Python 3 standard library only.
"""

import ctypes
import fcntl
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402
import nginx_front as nf  # noqa: E402

HAPROXY_CFG = os.path.join(h.ROOT, "contrib", "haproxy", "llama-swap.cfg")
HAPROXY_MAP = os.path.join(h.ROOT, "contrib", "haproxy", "models.map")
NGINX_CONF = os.path.join(h.ROOT, "contrib", "nginx", "multi-host.conf")

PREFIX = "lsmh"  # namespace names: lsmh<pid>-<host>
SUBNET = 24
CLIENT_ADDR = "192.168.1.2"
FRONT_ADDR = "192.168.1.10"
DAEMON_PORT = 8080
FRONT_PORT = 80
# host -> (address, models it serves)
HOSTS = {
    "gpu1": ("192.168.1.11", ("llama-a",)),
    "gpu2": ("192.168.1.12", ("llama-b", "llama-c")),
    "gpu3": ("192.168.1.13", ("llama-b",)),
}
# Every reply: a few tokens, quickly (Cluster.restart() gives a host other fake flags).
TOKENS, TPS = 6, 15.0

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_state = None  # None: setup() not called; else [reason it failed, or None]
_live = []     # Clusters and Fronts not torn down yet (for main()'s last resort)


# ---------------------------------------------------------------------------------------------
# The test's own namespace

def _ip(*args, check=True):
    r = subprocess.run([_ip_path()] + list(args), stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def _ip_path():
    return shutil.which("ip", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or "ip"


def setup():
    """Moves this process into a network namespace of its own holding the bridge br0 (the
    LAN) with the client's address; deletes namespaces that killed earlier runs left
    behind. Call it in __main__ before any thread starts (a namespace change only reaches
    threads created afterwards). Returns None when done, else why it cannot be done."""
    global _state
    if _state is None:
        _state = [_setup()]
    return _state[0]


def _setup():
    if os.geteuid() != 0:
        return "needs root (network namespaces and veth pairs)"
    if not shutil.which("ip", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        return "ip (iproute2) not found"
    _reap_stale()
    if _libc.unshare(CLONE_NEWNET) != 0:
        return "unshare(CLONE_NEWNET): %s" % os.strerror(ctypes.get_errno())
    try:
        _ip("link", "set", "lo", "up")
        _ip("link", "add", "br0", "type", "bridge")
        _ip("addr", "add", "%s/%d" % (CLIENT_ADDR, SUBNET), "dev", "br0")
        _ip("link", "set", "br0", "up")
        # veth pairs and `ip netns`: try one.
        probe = Netns("probe")
        try:
            probe.plug("192.168.1.250")
        finally:
            probe.delete()
    except (RuntimeError, OSError) as e:
        return "cannot build the test network here: %s" % e
    return None


def _reap_stale():
    """Namespaces named after a process that no longer exists: SIGKILL what still runs in
    them (our daemons, fronts and upstreams: nothing else can be in them) and delete them."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return
    for name in names:
        m = re.match(r"^%s(\d+)-" % PREFIX, name)
        if not m or h.pid_alive(int(m.group(1))):
            continue
        for pid in _ip("netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        _ip("netns", "del", name, check=False)


def missing():
    """Why these tests cannot run here, or None. setup() must have been called."""
    if _state is None:
        return "multihost.setup() was not called"
    if _state[0]:
        return _state[0]
    for name, path in (("llama-swap", h.LLAMA_SWAP), ("fake-upstream", h.FAKE_UPSTREAM)):
        if not os.access(path, os.X_OK):
            return "%s not found at %s" % (name, path)
    return None


# ---------------------------------------------------------------------------------------------
# Named namespaces

class Netns:
    """A named network namespace (lsmh<pid>-<host>) with its loopback up, linked to br0 by a
    veth pair (eth0 inside, v-<host> on the bridge) once plug() gave it an address."""

    def __init__(self, host):
        self.host = host
        self.name = "%s%d-%s" % (PREFIX, os.getpid(), host)
        self.veth = ("v-" + host)[:15]
        self.address = None
        _ip("netns", "add", self.name)
        self.alive = True
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    def plug(self, address):
        self.address = address
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.name)
        _ip("link", "set", self.veth, "master", "br0")
        _ip("link", "set", self.veth, "up")
        _ip("-n", self.name, "addr", "add", "%s/%d" % (address, SUBNET), "dev", "eth0")
        _ip("-n", self.name, "link", "set", "eth0", "up")

    def unplug(self):
        """Takes the host off the network (its link down): packets to it go nowhere, as
        when a machine is switched off; connections neither succeed nor are refused."""
        _ip("-n", self.name, "link", "set", "eth0", "down")

    def sysctl(self, name, value):
        """Sets a sysctl of this namespace (net.* ones are per namespace)."""
        with self.entered():
            with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
                f.write(str(value))

    def entered(self):
        """`with ns.entered():` the calling thread is in this namespace (sockets it creates,
        processes it forks are there); back where it was afterwards."""
        return _Entered(self.name)

    def pids(self):
        r = _ip("netns", "pids", self.name, check=False)
        return [int(p) for p in r.stdout.split() if p.isdigit()]

    def delete(self):
        if not self.alive:
            return
        # Whatever still runs in it was started by this test: SIGKILL it (by pid).
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _ip("link", "del", self.veth, check=False)  # both ends, at once
        _ip("netns", "del", self.name, check=False)
        self.alive = False


class _Entered:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(os.path.join("/run/netns", self.name), os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                os.close(self.home)
                raise OSError(e, "setns %s: %s" % (self.name, os.strerror(e)))
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        try:
            if _libc.setns(self.home, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "setns back: %s" % os.strerror(e))
        finally:
            os.close(self.home)
        return False


# ---------------------------------------------------------------------------------------------
# Clients (the harness's request helpers only speak to 127.0.0.1)

def request(addr, port, method, path, body=None, headers=None, timeout=15.0):
    """As h.request, to addr:port."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return h.Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data, r.reason)
    finally:
        conn.close()


def stream_request(addr, port, path, body, headers=None, timeout=20.0, into=None):
    """As h.stream_request, to addr:port: each line of the response with its arrival time.
    into: an h.Stream to fill (another thread can watch its lines arrive)."""
    s = into if into is not None else h.Stream()
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
        r = conn.getresponse()
        s.status = r.status
        s.headers = {k.lower(): v for k, v in r.getheaders()}
        pending = b""
        try:
            while True:
                data = r.read1(65536)  # one read as it arrived (see h.stream_request)
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


def served_by(doc):
    """The host a reply came from: the fake upstream names itself MODEL@HOST."""
    m = doc.get("model", "") if isinstance(doc, dict) else ""
    return m.rpartition("@")[2] if "@" in m else None


def _accepts(addr, port):
    try:
        socket.create_connection((addr, port), timeout=1).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# The daemon on a host

class HostDaemon(h4.Daemon):
    """The harness's daemon, run on a host: its listening socket is bound on every address
    of the host's namespace (port 8080) and it is forked from a thread inside that
    namespace, so it, its upstreams and its connections to them all live there. Teardown,
    leftover killing and logs are the harness's."""

    def __init__(self, ns, config, listen_port=DAEMON_PORT, **kw):
        self.ns = ns
        self.listen_port = listen_port
        super().__init__(config, **kw)

    @property
    def address(self):
        return self.ns.address

    def start(self):
        # h.Daemon.start, except for the address: it binds 127.0.0.1, which no other host
        # can reach.
        with self.ns.entered():
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind(("0.0.0.0", self.listen_port))
            lsock.listen(128)
            self.port = lsock.getsockname()[1]
            n = fcntl.fcntl(lsock.fileno(), fcntl.F_DUPFD, 20)
            lsock.close()
            env = dict(os.environ)
            env.update({"LISTEN_FDS": "1", "LISTEN_FDNAMES": "http",
                        "LLAMA_SWAP_TEST_TAG": self.tmp})  # see h.Daemon.kill_leftovers
            for k in ("LISTEN_PID", "NOTIFY_SOCKET"):
                env.pop(k, None)
            script = ('exec 3<&%d %d<&-; LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"'
                      % (n, n))
            self._log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    ["/bin/bash", "-c", script, h.LLAMA_SWAP, "-c", self.config_path] + self.args,
                    stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                    pass_fds=(n,), env=env, start_new_session=True)
            finally:
                os.close(n)

    def wait_healthy(self, timeout):
        with self.ns.entered():  # h.Daemon asks 127.0.0.1, which is the host's own there
            super().wait_healthy(timeout)

    def request(self, method, path, body=None, headers=None, timeout=15.0):
        return request(self.address, self.port, method, path, body, headers, timeout)


def host_config(host, models, **flags):
    """A host's config: each model is the fake upstream naming itself MODEL@HOST, with
    these fake-upstream flags (TOKENS tokens at TPS by default)."""
    flags = dict({"tokens": TOKENS, "tps": TPS}, **flags)
    return {"models": {m: {"cmd": h.fake_cmd(model="%s@%s" % (m, host), **flags)}
                       for m in models}}


# ---------------------------------------------------------------------------------------------
# The cluster

class Cluster:
    """The front's namespace and the gpu hosts, each with a daemon serving its models.

    .ns[name] (a Netns), .daemons[name] (a HostDaemon), .front_ns; kill(host) and
    unplug(host) take a host away, restart(host) brings a fresh daemon; started_models(host)
    are the models its daemon started."""

    def __init__(self, hosts=None):
        self.hosts = dict(hosts or HOSTS)
        self.unplugged = set()
        self.ns = {}
        self.daemons = {}
        self.front_ns = None

    def __enter__(self):
        reason = missing()
        if reason:
            raise AssertionError(reason)
        _live.append(self)
        try:
            self.front_ns = Netns("front")
            self.front_ns.plug(FRONT_ADDR)
            for name, (addr, models) in self.hosts.items():
                ns = self.ns[name] = Netns(name)
                ns.plug(addr)
            for name, (addr, models) in self.hosts.items():
                d = HostDaemon(self.ns[name], host_config(name, models))
                self.daemons[name] = d.__enter__()
        except BaseException:
            self._teardown(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self._teardown(failed=exc_type is not None)
        return False

    def _teardown(self, failed):
        if self in _live:
            _live.remove(self)
        try:
            for name, d in list(self.daemons.items()):
                try:
                    if name in self.unplugged:
                        d.kill()
                    d.__exit__(AssertionError if failed else None, None, None)
                except Exception as e:  # noqa: BLE001 - the others must still go
                    h.diag("%s: teardown: %r" % (name, e))
            self.daemons.clear()
        finally:
            for ns in [self.front_ns] + list(self.ns.values()):
                if ns is not None:
                    ns.delete()

    def kill(self, host):
        """SIGKILLs the host's daemon (by pid), and the upstreams it had started."""
        d = self.daemons[host]
        d.kill()
        d.kill_leftovers()

    def restart(self, host, **flags):
        """A fresh daemon on the host (e.g. after kill()): the same models, started with
        these fake-upstream flags; a new log."""
        self.daemons.pop(host).__exit__(None, None, None)
        d = HostDaemon(self.ns[host], host_config(host, self.hosts[host][1], **flags))
        self.daemons[host] = d.__enter__()

    def unplug(self, host):
        """Takes the host off the network (Netns.unplug); its daemon is SIGKILLed at
        teardown, as the connections it still serves can never close."""
        self.ns[host].unplug()
        self.unplugged.add(host)

    def starts(self, host, model=None):
        return self.daemons[host].starts(model)

    def started_models(self, host):
        return sorted(set(re.findall(r"model (\S+): starting pid", self.daemons[host].log())))


# ---------------------------------------------------------------------------------------------
# Fronts

class Front:
    """A process in the front's namespace, answering on FRONT_ADDR:FRONT_PORT.
    Subclasses: missing() (why it cannot run here, or None), command(dir) (its argv, files
    written into dir)."""

    name = "front"
    address = FRONT_ADDR
    port = FRONT_PORT
    stop_signal = signal.SIGTERM

    def __init__(self, cluster):
        self.cluster = cluster
        self.dir = None
        self.proc = None

    @classmethod
    def missing(cls):
        return None

    def command(self, d):
        raise NotImplementedError

    def __enter__(self):
        reason = self.missing()
        if reason:
            raise AssertionError(reason)
        self.dir = tempfile.mkdtemp(prefix="llama-swap-%s-" % self.name)
        _live.append(self)
        try:
            argv = self.command(self.dir)
            self._out = open(os.path.join(self.dir, "output.log"), "ab")
            with self.cluster.front_ns.entered():
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                             stderr=self._out, start_new_session=True,
                                             cwd=self.dir)
            deadline = time.monotonic() + 10
            while not _accepts(self.address, self.port):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("%s did not start:\n%s" % (self.name, self.log()[-3000:]))
                time.sleep(0.02)
        except BaseException:
            self._teardown(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        self._teardown(failed=exc_type is not None)
        return False

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()
        self.proc = None

    def _teardown(self, failed):
        if self in _live:
            _live.remove(self)
        try:
            self.stop()
        finally:
            if failed and self.dir:
                h.diag("%s log:\n%s" % (self.name, self.log()[-4000:]))
            if self.dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        out = ""
        for name in self.log_files():
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def log_files(self):
        return ("output.log",)

    def wait_serving(self, host, timeout=20.0):
        """Returns once the front sends requests to `host` again (after a restart): a front
        with active health checks may have marked it down meanwhile. This one has none."""

    # requests to the front
    def request(self, method, path, body=None, headers=None, timeout=15.0):
        return request(self.address, self.port, method, path, body, headers, timeout)

    def stream(self, path, body, headers=None, timeout=20.0, into=None):
        return stream_request(self.address, self.port, path, body, headers, timeout, into)


def substitute(text, subs, what):
    """Replaces whole lines (indentation kept): each `old` must be exactly one line of text,
    outside comments, so that a change of the shipped file cannot go unnoticed."""
    for old, new in subs:
        hits = [l for l in text.split("\n") if l.strip() == old]
        assert len(hits) == 1, "%s has %d lines %r" % (what, len(hits), old)
        text = re.sub(r"(?m)^(\s*)" + re.escape(old) + r"\s*$", lambda m: m.group(1) + new, text)
    return text


def check_addresses(text, what):
    """The shipped file names the hosts at the addresses the test gives them."""
    for name, (addr, _) in HOSTS.items():
        assert "%s:%d" % (addr, DAEMON_PORT) in text, "%s does not name %s at %s:%d" % (
            what, name, addr, DAEMON_PORT)


def haproxy_path():
    if "HAPROXY" in os.environ:
        p = os.environ["HAPROXY"]
        return p if os.access(p, os.X_OK) else None
    return shutil.which("haproxy", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin")


class HAProxyFront(Front):
    """HAProxy running contrib/haproxy/llama-swap.cfg and models.map as shipped, except for
    three paths: the log goes to its stdout, chroot and stats socket to a temp dir."""

    name = "haproxy"
    SUBS = (("log /dev/log local0", "log stdout format raw local0"),
            ("chroot /var/lib/haproxy", "chroot {dir}"),
            ("stats socket /run/haproxy/admin.sock mode 660 level admin",
             "stats socket {dir}/admin.sock mode 660 level admin"))

    @classmethod
    def missing(cls):
        if not haproxy_path():
            return ("haproxy not found (install the haproxy package, as scripts/setup does; "
                    "or set $HAPROXY)")
        try:
            pwd.getpwnam("haproxy")
        except KeyError:
            return "no user haproxy (the config runs as user haproxy; Debian's package adds it)"
        return None

    def command(self, d):
        with open(HAPROXY_CFG) as f:
            text = f.read()
        check_addresses(text, HAPROXY_CFG)
        text = substitute(text, [(o, n.format(dir=d)) for o, n in self.SUBS], HAPROXY_CFG)
        cfg = os.path.join(d, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(text)
        shutil.copy(HAPROXY_MAP, os.path.join(d, "models.map"))  # default-path config
        # -db: in the foreground, whatever `daemon` says
        return [haproxy_path(), "-db", "-f", cfg]

    def served(self):
        """(backend, server) of each request logged (option httplog), in order."""
        return re.findall(r" llama_swap (\S+?)/(\S+) ", self.log())

    def server_status(self, host):
        """The health-check status of the server `host` ("UP", "DOWN", "UP 1/2", ...), from
        `show stat` on the admin socket; None when it cannot be read."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(os.path.join(self.dir, "admin.sock"))
                s.sendall(b"show stat\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return None
        lines = data.decode(errors="replace").splitlines()
        if not lines or not lines[0].startswith("# "):
            return None
        columns = lines[0][2:].split(",")
        name, status = columns.index("svname"), columns.index("status")
        for line in lines[1:]:
            fields = line.split(",")
            if len(fields) > status and fields[name] == host:
                return fields[status]
        return None

    def wait_serving(self, host, timeout=20.0):
        # Checks every 2 s, 2 failures down, 2 successes up: a restart that took 2 s or more
        # (a loaded machine) leaves the host down for up to 4 s more.
        t0 = time.monotonic()
        was = self.server_status(host)
        h.wait_until(lambda: self.server_status(host) == "UP", timeout, interval=0.1,
                     what="HAProxy to mark %s up" % host)
        if was != "UP":
            h.diag("haproxy: %s was %s after its restart, UP %.2f s later"
                   % (host, was, time.monotonic() - t0))


NGINX_MAIN = """\
# Written by tests/integration/multihost.py: what a distribution's nginx.conf provides,
# then the shipped site, as is.
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{
    worker_connections 512;
}}
http {{
    log_format multihost '$request $status pool=$llama_swap_pool upstream=$upstream_addr';
    access_log {dir}/access.log multihost;
    client_body_temp_path {dir}/client_body_temp;
    proxy_temp_path {dir}/proxy_temp;
    fastcgi_temp_path {dir}/fastcgi_temp;
    uwsgi_temp_path {dir}/uwsgi_temp;
    scgi_temp_path {dir}/scgi_temp;
    include {site};
}}
"""


class NginxFront(Front):
    """nginx (one process, in the foreground) with contrib/nginx/multi-host.conf included
    unmodified, like a site in /etc/nginx/conf.d/, on a front host tuned as the file says:
    the TCP keepalive sysctls it suggests are set in the front's namespace."""

    name = "nginx"
    stop_signal = signal.SIGQUIT

    @staticmethod
    def suggested_sysctls(text):
        """[(name, value)] of the `#     net.ipv4.tcp_keepalive_x = N` lines of the file."""
        return re.findall(r"(?m)^\s*#\s+(net\.ipv4\.tcp_keepalive_\w+)\s*=\s*(\d+)\s*$", text)

    @classmethod
    def missing(cls):
        if not nf.nginx_path():
            return "nginx not found (install the nginx package, as scripts/setup does)"
        return None

    def command(self, d):
        with open(NGINX_CONF) as f:
            text = f.read()
        check_addresses(text, NGINX_CONF)
        sysctls = self.suggested_sysctls(text)
        assert len(sysctls) == 3, "%s suggests %r" % (NGINX_CONF, sysctls)
        for name, value in sysctls:
            self.cluster.front_ns.sysctl(name, value)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_MAIN.format(dir=d, site=NGINX_CONF))
        return [nf.nginx_path(), "-e", os.path.join(d, "error.log"), "-c", conf, "-p", d + "/"]

    def log_files(self):
        return ("error.log", "output.log", "access.log")

    def problems(self):
        return [l for l in self.log().split("\n") if nf.PROBLEMS.search(l)]


class PeersFront(Front):
    """llama-swap itself in the front's namespace on :80, its config naming gpu1..gpu3 as
    `peers` (each with the models it serves). Its upstream keepalive is short (1 s idle,
    then probes) so that a host off the network is found dead in seconds, as the nginx
    front's sysctls do."""

    name = "llama-swap (peers)"

    @staticmethod
    def config():
        return {"peers": {name: {"proxy": "http://%s:%d" % (addr, DAEMON_PORT),
                                 "models": list(models),
                                 "timeouts": {"connect": 3, "keepalive": 1}}
                          for name, (addr, models) in HOSTS.items()}}

    def command(self, d):
        cfg = os.path.join(d, "config.yaml")
        with open(cfg, "w") as f:
            json.dump(self.config(), f)  # JSON is YAML
        return [h.LLAMA_SWAP, "-c", cfg, "--listen", "%s:%d" % (FRONT_ADDR, FRONT_PORT),
                "--log-target", "stderr"]


# ---------------------------------------------------------------------------------------------
# Running the tests

def main():
    """setup(), then h.main(); SIGTERM (meson's timeout) ends the run through the same
    cleanup as a failure: every Cluster's `with` tears its processes and namespaces down."""
    def on_term(signum, frame):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, on_term)
    setup()
    try:
        h.main()
    finally:
        # Only after an interruption (unittest does not run cleanups after
        # KeyboardInterrupt) is anything left here.
        for obj in reversed(list(_live)):
            obj._teardown(failed=True)
