#!/usr/bin/env python3
"""systemd integration without systemd: socket activation with several sockets (TCP and
unix), binding --listen without LISTEN_FDS, sd_notify to a test-owned NOTIFY_SOCKET (READY,
STATUS, RELOADING/MONOTONIC_USEC, STOPPING, WATCHDOG), upstream readiness through the
daemon's own notify socket and through readyPattern, and `systemd-analyze verify` of the
shipped units."""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "sd"))
import sdlib  # noqa: E402
from sdlib import h  # noqa: E402

Background = h.Call  # runs a request in a thread (see harness.py)

ROOT = os.path.dirname(os.path.dirname(HERE))

# A path the fake upstream answers with 404: readiness can only come from elsewhere.
NEVER = "/never-answers"


def m_cfg(**models):
    return {"models": models}


def maps_libsystemd(pid):
    """Whether the process has libsystemd mapped (the daemon loads it only to talk to a
    service manager: src/sd/libsystemd.h)."""
    with open("/proc/%d/maps" % pid) as f:
        return "libsystemd.so" in f.read()


class NotifyTest(unittest.TestCase):
    """Owns a NOTIFY_SOCKET listener in a temp dir for each test."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="llama-swap-notify-")
        self.notify = sdlib.NotifyListener(os.path.join(self.dir, "notify.sock"))

    def tearDown(self):
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def daemon(self, cfg, env=None, **kw):
        e = {"NOTIFY_SOCKET": self.notify.path}
        e.update(env or {})
        return sdlib.SdDaemon(cfg, env=e, **kw)

    def assert_only_from(self, pid):
        senders = {m[1] for m in self.notify.messages()}
        self.assertEqual(senders - {pid}, set(),
                         "notifications from other pids than the daemon's %d: %r"
                         % (pid, [m for m in self.notify.messages() if m[1] != pid]))


# ---------------------------------------------------------------------------------------------
class SocketActivation(unittest.TestCase):
    def test_tcp_and_unix_sockets_passed(self):
        # Two sockets (fds 3 and 4, LISTEN_FDNAMES=http:ctl): both serve. --listen names a
        # path that cannot be bound: were it used, the daemon would exit 1.
        d = sdlib.SdDaemon(m_cfg(m={"cmd": h.fake_cmd(model="m")}), unix=["ctl"],
                           args=["--listen", "unix:/nonexistent-dir/ignored.sock"])
        with d:
            self.assertEqual(d.request("GET", "/health").status, 200)
            status, body = sdlib.unix_request(d.unix_paths["ctl"], "GET", "/health")
            self.assertEqual((status, body), (200, b"OK"))
            status, body = sdlib.unix_request(d.unix_paths["ctl"], "GET", "/running")
            self.assertEqual(status, 200)
            self.assertEqual(d.chat("m").status, 200)
            log = d.log()
            self.assertIn("listening on http", log)
            self.assertIn("listening on ctl", log)
            self.assertNotIn("ignored.sock", log)
            self.assertTrue(maps_libsystemd(d.pid), "socket-activated without libsystemd?")
            self.assertEqual(d.terminate(), 0)

    def test_listen_ignored_when_sockets_passed(self):
        # --listen names a unix path in the test's temp dir: it must never be created.
        def cfg(dd):
            dd.args = ["--listen", "unix:" + os.path.join(dd.tmp, "listen.sock")]
            return m_cfg(m={"cmd": h.fake_cmd(model="m")})
        with sdlib.SdDaemon(cfg) as d:
            self.assertEqual(d.request("GET", "/health").status, 200)
            self.assertFalse(os.path.exists(os.path.join(d.tmp, "listen.sock")),
                             "--listen was used although a socket was passed")

    def test_binds_listen_without_listen_fds(self):
        d = sdlib.SdDaemon(m_cfg(m={"cmd": h.fake_cmd(model="m")}), activate=False)
        with d:
            self.assertEqual(d.request("GET", "/health").status, 200)
            self.assertEqual(d.chat("m").status, 200)
            self.assertIn("listening on 127.0.0.1:%d" % d.port, d.log())
            if os.path.exists("/run/systemd/private"):
                print("test_binds_listen_without_listen_fds: a system manager socket is here, "
                      "so the scope backend loads libsystemd: not checking that it is unmapped",
                      file=sys.stderr)
            else:
                self.assertFalse(maps_libsystemd(d.pid),
                                 "libsystemd loaded with no service manager to talk to")
            self.assertEqual(d.terminate(), 0)

    def test_binds_unix_listen_without_listen_fds(self):
        d = sdlib.SdDaemon(m_cfg(m={"cmd": h.fake_cmd(model="m")}), activate=False,
                           listen="unix:{tmp}/api.sock", wait_ready=False)
        with d:
            path = os.path.join(d.tmp, "api.sock")
            status, body = h.wait_until(
                lambda: (lambda r: r if r[0] == 200 else None)(_try_unix(path)), 5,
                what="/health over the unix socket")
            self.assertEqual(body, b"OK")
            self.assertEqual(d.terminate(), 0)

    def test_listen_pid_mismatch_ignores_passed_socket(self):
        # LISTEN_PID names another process: the fds are not ours, --listen is used instead.
        def cfg(dd):
            dd.args = ["--listen", "unix:" + os.path.join(dd.tmp, "own.sock")]
            return m_cfg(m={"cmd": h.fake_cmd(model="m")})
        d = sdlib.SdDaemon(cfg, listen_pid=1, wait_ready=False)
        with d:
            path = os.path.join(d.tmp, "own.sock")
            h.wait_until(lambda: _try_unix(path)[0] == 200, 5,
                         what="/health over --listen's unix socket")
            self.assertNotIn("listening on http", d.log())


def _try_unix(path):
    try:
        return sdlib.unix_request(path, "GET", "/health", timeout=1)
    except (OSError, ValueError, IndexError):
        return (0, b"")


# ---------------------------------------------------------------------------------------------
class Notify(NotifyTest):
    def test_ready_with_status_after_listening(self):
        d = self.daemon(m_cfg(m={"cmd": h.fake_cmd(model="m")}), activate=False,
                        listen="unix:{tmp}/api.sock", wait_ready=False)
        with d:
            _, (_, pid, text) = self.notify.wait_for(lambda t: "READY=1" in t.split("\n"), 10,
                                                     what="READY=1")
            self.assertEqual(pid, d.pid, "READY=1 from another process")
            self.assertIn("STATUS", sdlib.fields(text), text)
            # READY=1 comes once the listener is up: it answers right away.
            status, _ = sdlib.unix_request(os.path.join(d.tmp, "api.sock"), "GET", "/health")
            self.assertEqual(status, 200)
            self.notify.wait_for(lambda t: sdlib.fields(t).get("STATUS") == "0 running", 5,
                                 what="STATUS=0 running")
            self.assertEqual(self.notify.count(lambda t: "READY=1" in t.split("\n")), 1)
            self.assert_only_from(d.pid)
            self.assertTrue(maps_libsystemd(d.pid))

    def test_status_loading_then_running(self):
        cfg = m_cfg(m={"cmd": h.fake_cmd(model="m", load_delay_ms=1500)})
        with self.daemon(cfg) as d:
            self.notify.wait_for(lambda t: "READY=1" in t, 5, what="READY=1")
            call = Background(lambda: d.chat("m", timeout=30))
            i, (_, _, text) = self.notify.wait_for(
                lambda t: "loading m" in sdlib.fields(t).get("STATUS", ""), 10,
                what="STATUS with 'loading m'")
            self.assertRegex(sdlib.fields(text)["STATUS"], r"^0 running; loading m \(\d+\.\d s\)$")
            # Refreshed while it loads (about once a second): the elapsed time grows.
            self.notify.wait_for(
                lambda t: re.search(r"loading m \((?!0\.)\d+\.\d s\)",
                                    sdlib.fields(t).get("STATUS", "")), 10,
                what="a refreshed loading time", start=i + 1)
            self.assertEqual(call.get().status, 200)
            self.notify.wait_for(lambda t: sdlib.fields(t).get("STATUS") == "1 running: m", 5,
                                 what="STATUS=1 running: m")
            self.assertEqual(d.request("POST", "/api/models/unload").status, 200)
            self.notify.wait_for(lambda t: sdlib.fields(t).get("STATUS") == "0 running", 5,
                                 what="STATUS=0 running after the unload", start=i + 1)
            self.assert_only_from(d.pid)

    def test_sighup_reloading_then_ready(self):
        with self.daemon(m_cfg(m={"cmd": h.fake_cmd(model="m")})) as d:
            self.notify.wait_for(lambda t: "READY=1" in t, 5, what="READY=1")
            n = len(self.notify.messages())
            before = time.monotonic()
            d.proc.send_signal(signal.SIGHUP)
            i, (_, pid, text) = self.notify.wait_for(lambda t: "RELOADING=1" in t.split("\n"),
                                                     5, what="RELOADING=1", start=n)
            after = time.monotonic()
            self.assertEqual(pid, d.pid)
            f = sdlib.fields(text)
            self.assertRegex(f.get("MONOTONIC_USEC", ""), r"^\d+$", text)
            # CLOCK_MONOTONIC, the clock time.monotonic() reads: between our two readings.
            usec = int(f["MONOTONIC_USEC"])
            self.assertGreaterEqual(usec, int(before * 1e6) - 1000)
            self.assertLessEqual(usec, int(after * 1e6) + 1000)
            self.notify.wait_for(lambda t: "READY=1" in t.split("\n"), 5,
                                 what="READY=1 after RELOADING=1", start=i + 1)
            self.assertEqual(d.request("GET", "/health").status, 200)

    def test_broken_reload_still_ready(self):
        with self.daemon(m_cfg(m={"cmd": h.fake_cmd(model="m")})) as d:
            self.notify.wait_for(lambda t: "READY=1" in t, 5, what="READY=1")
            with open(d.config_path, "w") as f:
                f.write("models: [this is: not valid\n")
            n = len(self.notify.messages())
            d.proc.send_signal(signal.SIGHUP)
            i, _ = self.notify.wait_for(lambda t: "RELOADING=1" in t, 5, what="RELOADING=1",
                                        start=n)
            self.notify.wait_for(lambda t: "READY=1" in t.split("\n"), 5,
                                 what="READY=1 after a failed reload", start=i + 1)
            self.assertEqual(d.chat("m").status, 200)

    def test_sigterm_stopping(self):
        with self.daemon(m_cfg(m={"cmd": h.fake_cmd(model="m")})) as d:
            self.notify.wait_for(lambda t: "READY=1" in t, 5, what="READY=1")
            self.assertEqual(d.chat("m").status, 200)
            d.proc.send_signal(signal.SIGTERM)
            _, (_, pid, text) = self.notify.wait_for(lambda t: "STOPPING=1" in t.split("\n"), 5,
                                                     what="STOPPING=1")
            self.assertEqual(pid, d.pid)
            d.proc.wait(10)
            self.assertEqual(d.proc.returncode, 0)
            self.assert_only_from(d.pid)

    def test_watchdog_pings(self):
        env = {"WATCHDOG_USEC": "400000"}
        with self.daemon(m_cfg(m={"cmd": h.fake_cmd(model="m")}), env=env,
                         watchdog_pid_self=True) as d:
            h.wait_until(lambda: self.notify.count(lambda t: t.strip() == "WATCHDOG=1") >= 3, 3,
                         what="3 WATCHDOG=1 pings (every 0.2 s expected)")
            self.assertIn("watchdog enabled", d.log())
            self.assert_only_from(d.pid)

    def test_watchdog_for_another_pid_is_ignored(self):
        env = {"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}
        with self.daemon(m_cfg(m={"cmd": h.fake_cmd(model="m")}), env=env) as d:
            self.notify.wait_for(lambda t: "READY=1" in t, 5, what="READY=1")
            time.sleep(1.0)
            self.assertEqual(self.notify.count(lambda t: "WATCHDOG=1" in t), 0)
            self.assertNotIn("watchdog enabled", d.log())

    def test_upstream_ready_by_sd_notify(self):
        # The upstream notifies the daemon's own socket (not the daemon's NOTIFY_SOCKET): the
        # model is ready by READY=1 although its checkEndpoint never answers 200.
        cfg = m_cfg(n={"cmd": h.fake_cmd(model="n", notify_ready=True, load_delay_ms=300),
                       "checkEndpoint": NEVER})
        with self.daemon(cfg) as d:
            r = d.chat("n", timeout=20)
            self.assertEqual(r.status, 200, r)
            self.assertRegex(d.log(), r"model n: ready after [\d.]+ s \(sd_notify READY=1\)")
            out = sdlib.read_stream_until(d.port, "/logs/stream/n", rb"status: ready")
            self.assertIn("status: loading", out)
            # Every message on the test's socket is the daemon's own.
            self.assert_only_from(d.pid)
            self.assertFalse(any("STATUS=loading" == t or "STATUS=ready" in t
                                 for t in self.notify.texts()))

    def test_check_endpoint_really_never_answers(self):
        # The premise of the two readiness tests: the fake upstream answers NEVER with 404.
        import http.client
        port = sdlib.free_port()
        p = subprocess.Popen([h.FAKE_UPSTREAM, "--port", str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            def get():
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", NEVER)
                    return c.getresponse().status
                except OSError:
                    return None
            self.assertEqual(h.wait_until(get, 5, what="the fake upstream"), 404)
        finally:
            p.kill()
            p.wait()


class ReadyPattern(unittest.TestCase):
    def test_ready_pattern(self):
        cfg = m_cfg(r={"cmd": h.fake_cmd(model="r", load_delay_ms=300), "checkEndpoint": NEVER,
                       "readyPattern": "server is listening on"})
        with sdlib.SdDaemon(cfg) as d:
            r = d.chat("r", timeout=20)
            self.assertEqual(r.status, 200, r)
            self.assertRegex(d.log(), r"model r: ready after [\d.]+ s \(readyPattern matched\)")


# ---------------------------------------------------------------------------------------------
class Units(unittest.TestCase):
    def verify(self, unit_dir, *units):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no"]
                           + [os.path.join(unit_dir, u) for u in units],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, cwd=unit_dir, timeout=60)
        ours = [line for line in r.stdout.splitlines()
                if "llama-swap" in line or unit_dir in line]
        return r.returncode, ours, r.stdout

    def setUp(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        self.dir = tempfile.mkdtemp(prefix="llama-swap-units-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def copy_units(self, service_edit=None):
        """Copies the shipped units (the service with ExecStart= at the build's binary);
        returns their names."""
        names = ["llama-swap.socket", "llama-swap.service"]
        for extra in sorted(os.listdir(os.path.join(ROOT, "systemd"))):
            if extra.startswith("llama-swap") and extra.endswith((".slice", ".target",
                                                                 ".timer", ".path")):
                names.append(extra)
        for n in names:
            if n != "llama-swap.service":
                shutil.copy(os.path.join(ROOT, "systemd", n), self.dir)
        with open(os.path.join(ROOT, "systemd", "llama-swap.service")) as f:
            text = f.read()
        # The packaged path (/usr/bin/llama-swap) is not installed here: point at the build.
        text, n = re.subn(r"(?m)^ExecStart=\S+", "ExecStart=" + h.LLAMA_SWAP, text)
        self.assertEqual(n, 1, "llama-swap.service has no single ExecStart= line")
        if service_edit:
            text = service_edit(text)
        with open(os.path.join(self.dir, "llama-swap.service"), "w") as f:
            f.write(text)
        return names

    def test_units_verify_clean(self):
        names = self.copy_units()
        rc, ours, out = self.verify(self.dir, *names)
        self.assertEqual(ours, [], "systemd-analyze verify complains about our units:\n" + out)
        self.assertEqual(rc, 0, out)

    def test_verify_catches_a_broken_unit(self):
        # The check above is only worth something if verify reports problems here at all.
        self.copy_units(lambda t: t.replace("Type=notify", "Type=notifyy"))
        rc, ours, out = self.verify(self.dir, "llama-swap.socket", "llama-swap.service")
        self.assertTrue(any("notifyy" in line for line in ours), out)

    def test_service_unit_semantics(self):
        # What the daemon's behaviour relies on.
        with open(os.path.join(ROOT, "systemd", "llama-swap.service")) as f:
            svc = f.read()
        with open(os.path.join(ROOT, "systemd", "llama-swap.socket")) as f:
            sock = f.read()
        self.assertRegex(svc, r"(?m)^Type=notify$")  # READY=1 / RELOADING=1 / STOPPING=1
        self.assertRegex(svc, r"(?m)^ExecReload=.*-HUP \$MAINPID")  # SIGHUP reloads
        self.assertRegex(svc, r"(?m)^RestartPreventExitStatus=.*\b78\b")  # invalid config
        self.assertRegex(svc, r"(?m)^Requires=.*llama-swap\.socket")
        self.assertRegex(sock, r"(?m)^Accept=no$")  # listening sockets, not connections


# ---------------------------------------------------------------------------------------------
class RestartUnderSocket(unittest.TestCase):
    """Under a socket unit the listening socket belongs to the service manager: while the
    daemon restarts, new connections wait in the kernel's backlog and the next daemon answers
    them. Here the test plays the manager: it keeps the socket across two daemons."""

    def start(self, fd, config_path, log):
        env = dict(os.environ)
        for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
            env.pop(k, None)
        env.update({"LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"})
        script = 'exec 3<&%d %d<&-; LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"' % (fd, fd)
        return subprocess.Popen(["/bin/bash", "-c", script, h.LLAMA_SWAP, "-c", config_path],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(fd,),
                                env=env, start_new_session=True)

    def wait_health(self, port, proc):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "the daemon exited early")
            try:
                if h.request(port, "GET", "/health", timeout=1.0).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.fail("the daemon never answered /health")

    def test_connection_queued_during_restart_is_served(self):
        tmp = tempfile.mkdtemp(prefix="llama-swap-restart-")
        procs = []
        try:
            cfg = os.path.join(tmp, "config.yaml")
            with open(cfg, "w") as f:
                f.write("models:\n  m:\n    cmd: %s\n" % h.fake_cmd(model="m"))
            log = open(os.path.join(tmp, "daemon.log"), "ab")
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            port = listener.getsockname()[1]
            fd = fcntl.fcntl(listener.fileno(), fcntl.F_DUPFD, 20)
            first = self.start(fd, cfg, log)
            procs.append(first)
            self.wait_health(port, first)
            first.send_signal(signal.SIGTERM)
            self.assertEqual(first.wait(timeout=20), 0)
            # No daemon runs now: the connection is accepted by the kernel and waits.
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            second = self.start(fd, cfg, log)
            procs.append(second)
            reply = b""
            while True:
                chunk = client.recv(4096)
                if not chunk:
                    break
                reply += chunk
            client.close()
            self.assertTrue(reply.startswith(b"HTTP/1.1 200"), "reply: %r" % reply[:200])
            self.assertTrue(reply.endswith(b"OK"), "reply: %r" % reply[-50:])
            os.close(fd)
            listener.close()
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        p.kill()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    h.main()
