"""Runs inside `unshare -m --propagation private` (test_journal.py starts it): a private
journald on tmpfs mounts, the daemon with --log-target journal against it, a short scenario
(load a model, swap it for another, an unload, a 404, shutdown), then `journalctl -o json` of what the
daemon logged. Writes one JSON document to the path in argv[1]:

  {"daemon_pid": N, "stderr": "...", "all": [entries], "model": [entries of MODEL_ID=jm]}

Exit status 77 (with the reason on stderr) when the facility is missing. Everything it
starts (journald, the daemon, the upstream) is stopped by pid before it exits, and the
mounts vanish with the mount namespace."""

import json
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdlib  # noqa: E402
from sdlib import h  # noqa: E402

JOURNALD = "/lib/systemd/systemd-journald"
MODEL = "jm"
OTHER = "jm2"


def skip(why):
    sys.stderr.write("SKIP: %s\n" % why)
    sys.exit(77)


def mount_tmpfs(path):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", path], check=True)


def private_mounts():
    # Only ever called in a private mount namespace: make sure of it before mounting anything.
    # (unshare execs us without forking: our parent is the test, in the original namespace.)
    mine = os.readlink("/proc/self/ns/mnt")
    if mine == os.readlink("/proc/%d/ns/mnt" % os.getppid()):
        skip("not in a private mount namespace (run me under unshare -m)")
    # All of /run: a fresh /run/systemd (journal sockets) and /run/log (volatile journal).
    mount_tmpfs("/run")
    os.makedirs("/run/systemd", exist_ok=True)
    os.makedirs("/run/log", exist_ok=True)
    if os.path.isdir("/var/log/journal"):
        mount_tmpfs("/var/log/journal")  # else the persistent journal would be the host's


def journalctl(*match):
    r = subprocess.run(["journalctl", "--no-pager", "-o", "json"] + list(match),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=30)
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def main():
    out_path = sys.argv[1]
    if not os.access(JOURNALD, os.X_OK):
        skip("%s is not installed" % JOURNALD)
    try:
        private_mounts()
    except (subprocess.CalledProcessError, OSError) as e:
        skip("cannot mount tmpfs in the private namespace: %s" % e)
    jd = subprocess.Popen([JOURNALD], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    try:
        try:
            h.wait_until(lambda: os.path.exists("/run/systemd/journal/socket")
                         or jd.poll() is not None, 10, what="journald's socket")
        except AssertionError:
            skip("journald did not create its socket")
        if jd.poll() is not None:
            skip("systemd-journald exited: %s" % jd.stderr.read().decode(errors="replace")[-500:])

        cfg = {"backend": "fork", "logLevel": "info",
               "models": {MODEL: {"cmd": h.fake_cmd(model=MODEL, log_lines=3)},
                          OTHER: {"cmd": h.fake_cmd(model=OTHER)}}}
        d = sdlib.SdDaemon(cfg, args=["--log-target", "journal"])
        with d:
            r = d.chat(MODEL)
            assert r.status == 200, r
            r = d.chat(OTHER)  # swaps MODEL out
            assert r.status == 200, r
            r = d.request("POST", "/api/models/unload")
            assert r.status == 200, r
            r = d.chat("no-such-model")
            assert r.status == 404, r
            code = d.terminate(15)
            assert code == 0, code
            daemon_pid = d.pid
            stderr = d.log()

        def stopped():
            return any(e.get("EVENT") == "model_stopped" for e in journalctl("MODEL_ID=" + MODEL))
        try:
            h.wait_until(stopped, 10, interval=0.1, what="model_stopped in the journal")
        except AssertionError:
            pass  # the test reports what is missing
        doc = {"daemon_pid": daemon_pid, "stderr": stderr,
               "all": journalctl("SYSLOG_IDENTIFIER=llama-swap"),
               "model": journalctl("MODEL_ID=" + MODEL)}
        with open(out_path, "w") as f:
            json.dump(doc, f)
    finally:
        if jd.poll() is None:
            jd.send_signal(signal.SIGTERM)
            try:
                jd.wait(5)
            except subprocess.TimeoutExpired:
                jd.kill()
                jd.wait(5)


if __name__ == "__main__":
    main()
