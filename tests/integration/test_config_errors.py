#!/usr/bin/env python3
"""Config mistakes people make, as the binary reports them: an unknown key with a "did you
mean" guess and its position, a tab in the indentation named as such, the warning count of
--check-config, and --strict, where warnings fail the check, the start and a reload."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402

MISTAKES = """healthCheckTimeot: 60
models:
  m:
    cmd: %s
    tll: 5
    CheckEndpoint: /health
    timeouts:
      conect: 3
  n:
    cmd: %s
    sendLodingState: true
""" % (h.fake_cmd(model="m"), h.fake_cmd(model="n"))


def run(*args):
    return subprocess.run([h.LLAMA_SWAP] + list(args), capture_output=True, text=True,
                          timeout=20, stdin=subprocess.DEVNULL)


class ConfigErrors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="llama-swap-cfgerr-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, text, name="config.yaml"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_unknown_keys_get_a_guess_and_a_position(self):
        path = self.write(MISTAKES)
        r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = [
            "%s:1:1: unknown key 'healthCheckTimeot' (did you mean 'healthCheckTimeout'?)",
            "%s:5:5: unknown key 'tll' (did you mean 'ttl'?)",
            "%s:6:5: unknown key 'CheckEndpoint' (did you mean 'checkEndpoint'?)",
            "%s:8:7: unknown key 'conect' (did you mean 'connect'?)",
            "%s:11:5: unknown key 'sendLodingState' (did you mean 'sendLoadingState'?)",
        ]
        for line in expected:
            self.assertIn(line % path + " (warning)", r.stderr)
        self.assertIn("configuration is valid (2 models, 5 warnings)", r.stdout)

    def test_no_guess_for_a_key_unlike_any(self):
        path = self.write("models:\n  m:\n    cmd: %s\n    frobnicate: 1\n"
                          % h.fake_cmd(model="m"))
        r = run("--check-config", "--config", path)
        self.assertIn("%s:4:5: unknown key 'frobnicate' (warning)" % path, r.stderr)

    def test_tab_in_indentation_is_named(self):
        path = self.write("models:\n  m:\n\tcmd: x\n")
        r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr.strip(), "%s:3:1: a tab character in the indentation: YAML "
                                           "indents with spaces only" % path)

    def test_strict_check_fails_on_warnings(self):
        path = self.write(MISTAKES)
        r = run("--check-config", "--strict", "--config", path)
        self.assertEqual(r.returncode, 78, r.stdout)
        self.assertIn("%s: 5 warnings, which --strict makes errors" % path, r.stderr)
        clean = self.write("models:\n  m:\n    cmd: %s\n" % h.fake_cmd(model="m"), "clean.yaml")
        r = run("--check-config", "--strict", "--config", clean)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration is valid (1 model, 0 warnings)", r.stdout)

    def test_strict_daemon_refuses_to_start_with_warnings(self):
        path = self.write(MISTAKES)
        r = run("--strict", "--config", path, "--listen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("which --strict makes errors", r.stderr)

    def test_strict_reload_keeps_the_running_config(self):
        good = {"models": {"m": {"cmd": h.fake_cmd(model="m")}}}
        with h4.Daemon(good, args=("--strict",)) as d:
            self.assertEqual(d.chat("m", timeout=30).status, 200)
            d.write_config({"models": {"m": {"cmd": h.fake_cmd(model="m"), "tll": 5},
                                       "n": {"cmd": h.fake_cmd(model="n")}}})
            self.assertFalse(d.sighup(), "a reload with a warning was applied under --strict")
            self.assertIn("reload failed, keeping the running configuration: 1 warning(s)",
                          d.log())
            self.assertEqual(d.chat("n").status, 404, "the new model must not exist")
            self.assertEqual(d.chat("m").status, 200)


if __name__ == "__main__":
    h.main()
