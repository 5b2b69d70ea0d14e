#!/usr/bin/env python3
"""The command line: --version, --help, --check-config, bad options."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

EX_CONFIG = 78
GOOD = 'models:\n  m:\n    cmd: "%s"\n' % h.fake_cmd(model="m")


def run(*args, timeout=10):
    return subprocess.run([h.LLAMA_SWAP] + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="llama-swap-cli-")

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.tmp], check=False)

    def write(self, name, text):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def test_version(self):
        for flag in ("--version", "-v", "-version"):
            r = run(flag)
            self.assertEqual(r.returncode, 0, (flag, r))
            self.assertRegex(r.stdout, r"^llama-swap \d+\.\d+\.\d+", flag)

    def test_help(self):
        for flag in ("--help", "-h"):
            r = run(flag)
            self.assertEqual(r.returncode, 0, r)
            for short, long in (("-c", "--config"), ("-l", "--listen"),
                                ("-t", "--check-config"), ("-v", "--version"),
                                ("-h", "--help")):
                self.assertRegex(r.stdout, r"%s,\s+%s\b" % (short, long),
                                 "help does not mention %s/%s" % (short, long))

    def test_check_config_valid(self):
        p = self.write("good.yaml", GOOD)
        r = run("--check-config", "-c", p)
        self.assertEqual(r.returncode, 0, r)
        r = run("-t", "--config", p)
        self.assertEqual(r.returncode, 0, r)

    def test_check_config_does_not_start_models(self):
        pid_file = os.path.join(self.tmp, "pids")
        p = self.write("good.yaml", 'models:\n  m:\n    cmd: "%s"\n'
                       % h.fake_cmd(model="m", pid_file=pid_file))
        r = run("--check-config", "-c", p)
        self.assertEqual(r.returncode, 0, r)
        self.assertFalse(os.path.exists(pid_file))

    def assertConfigError(self, path, r, line=None):
        self.assertEqual(r.returncode, EX_CONFIG, r)
        first = r.stderr.strip().splitlines()[0] if r.stderr.strip() else ""
        m = re.match(r"^%s:(\d+):(\d+): \S" % re.escape(path), first)
        self.assertTrue(m, "stderr does not start with path:line:col: %r" % r.stderr)
        if line is not None:
            self.assertEqual(int(m.group(1)), line, r.stderr)

    def test_check_config_invalid_value(self):
        p = self.write("bad.yaml", GOOD + "    ttl: -5\n")
        self.assertConfigError(p, run("--check-config", "-c", p), line=4)

    def test_check_config_yaml_syntax(self):
        p = self.write("bad.yaml", "models:\n  m: [\n")
        self.assertConfigError(p, run("--check-config", "-c", p))

    def test_check_config_port_without_cmd_port(self):
        p = self.write("bad.yaml", 'models:\n  m:\n    cmd: "/bin/true"\n')
        self.assertConfigError(p, run("-t", "-c", p), line=2)

    def test_check_config_missing_file(self):
        p = os.path.join(self.tmp, "missing.yaml")
        r = run("--check-config", "-c", p)
        self.assertEqual(r.returncode, EX_CONFIG, r)
        self.assertIn(p, r.stderr)

    def test_daemon_refuses_invalid_config(self):
        # Not only --check-config: the daemon itself exits 78 without serving.
        p = self.write("bad.yaml", GOOD + "    ttl: -5\n")
        r = run("-c", p, "-l", "127.0.0.1:0")
        self.assertConfigError(p, r, line=4)

    def test_unknown_option(self):
        r = run("--no-such-option")
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("--help", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_unexpected_argument(self):
        r = run("stray-argument")
        self.assertEqual(r.returncode, 2, r)

    def test_missing_option_value(self):
        r = run("-c")
        self.assertEqual(r.returncode, 2, r)

    def test_listen_flag(self):
        # Without a socket from systemd, --listen binds by itself.
        self.start_output(GOOD, "127.0.0.1")

    def start_output(self, config, listen):
        """What the daemon logs from its start until it serves /health, then stops."""
        port = h.free_port()
        p = self.write("c.yaml", config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        proc = subprocess.Popen([h.LLAMA_SWAP, "-c", p, "-l", "%s:%d" % (listen, port),
                                 "--log-target", "stderr"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, text=True)
        try:
            def healthy():
                try:
                    return h.request(port, "GET", "/health", timeout=1).status == 200
                except OSError:
                    return False
            h.wait_until(healthy, 5, what="the daemon")
            proc.terminate()
            self.assertEqual(proc.wait(10), 0)
            return proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            proc.stdout.close()

    def test_first_run_advice(self):
        # The packaged config: no models, no keys, port 8080 of every address.
        out = self.start_output("models: {}\n", "0.0.0.0")
        self.assertIn("[warn] no models are configured: every model request gets 404. Add "
                      "them to %s" % os.path.join(self.tmp, "c.yaml"), out)
        self.assertIn("systemctl reload llama-swap", out)
        self.assertRegex(out, r"\[warn\] no apiKeys: anyone who can reach \S+:\d+ can use "
                         r"every model")
        # A key, or loopback only, and models: nothing to advise.
        out = self.start_output(GOOD + 'apiKeys: ["k"]\n', "0.0.0.0")
        self.assertNotIn("[warn]", out)
        out = self.start_output(GOOD, "127.0.0.1")
        self.assertNotIn("[warn]", out)


if __name__ == "__main__":
    h.main()
