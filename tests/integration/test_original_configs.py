#!/usr/bin/env python3
"""The original llama-swap's own configs (tests/data/original-configs): each is accepted where
the original accepts it, and refused for the reason the original refuses it (its validation
order: environment variables, then each model, then routing, then selectors and profiles)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DATA = os.path.join(h.ROOT, "tests", "data", "original-configs")
ENV = {"API_KEY_1": "sk-one", "API_KEY_2": "sk-two", "OPENROUTER_API_KEY": "sk-or",
       "VAR_NAME": "value"}

# file -> None (accepted without a warning) or the error it is refused with (after the path).
EXPECTED = {
    "docs-configuration-0.yaml": None,
    "docs-configuration-1.yaml": None,
    "docs-configuration-2.yaml": None,
    "docs-configuration-3.yaml": None,
    "docs-examples-aider-qwq-coder-readme-1.yaml": None,
    "docs-examples-benchmark-snakegame-0.yaml": None,
    "docs-examples-speculative-decoding-0.yaml": None,
    "readme-0.yaml": None,
    # The aider examples still use the profile list syntax the original removed.
    "docs-examples-aider-qwq-coder-llama-swap.yaml":
        r"6:7: profiles.aider: profile must be a mapping with description and pins; the "
        r"legacy list syntax is no longer supported",
    "docs-examples-aider-qwq-coder-readme-2.yaml":
        r"7:5: profiles.aider: profile must be a mapping with description and pins; the "
        r"legacy list syntax is no longer supported",
    # A fixed --port in cmd and the default proxy, http://localhost:${PORT}.
    "docs-examples-speculative-decoding-1.yaml":
        r"3:3: model 'llama-70B': proxy uses \$\{PORT\} but cmd does not",
    # Its "unlisted-model" has no ${PORT} in cmd and the default proxy, as above.
    "config.example.yaml":
        r"458:3: model 'unlisted-model': proxy uses \$\{PORT\} but cmd does not",
}


def check(path, env=None):
    return subprocess.run([h.LLAMA_SWAP, "--check-config", "--config", path],
                          capture_output=True, text=True, timeout=20,
                          env=dict(os.environ, **(env or ENV)))


class OriginalConfigs(unittest.TestCase):
    def test_every_file_is_covered(self):
        self.assertEqual(sorted(f for f in os.listdir(DATA) if f.endswith(".yaml")),
                         sorted(EXPECTED))

    def test_accepted_or_refused_as_the_original(self):
        for name, refusal in sorted(EXPECTED.items()):
            with self.subTest(config=name):
                path = os.path.join(DATA, name)
                r = check(path)
                if refusal is None:
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(r.stderr, "", "warnings for a config the original reads")
                else:
                    self.assertEqual(r.returncode, 78, r.stdout)
                    self.assertRegex(r.stderr.strip(), "^" + re.escape(path) + ":" + refusal)

    def test_example_needs_its_environment_variables(self):
        r = check(os.path.join(DATA, "config.example.yaml"), env={"API_KEY_1": "sk-one"})
        self.assertEqual(r.returncode, 78)
        self.assertIn("environment variable 'API_KEY_2' is not set", r.stderr)

    def test_example_past_its_first_mistake(self):
        """config.example.yaml with unlisted-model given a port: the original's next refusal is
        the scheduler priority of models it never defines (A, B, C, D)."""
        tmp = tempfile.mkdtemp(prefix="llama-swap-example-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(DATA, "config.example.yaml")) as f:
            text = f.read().replace("cmd: some-upstream-server\n",
                                    "cmd: some-upstream-server --port ${PORT}\n")
        path = os.path.join(tmp, "example.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = check(path)
        self.assertEqual(r.returncode, 78, r.stdout)
        self.assertRegex(r.stderr, r"routing\.scheduler\.settings\.fifo\.priority references "
                                   r"unknown model \"A\"")


if __name__ == "__main__":
    h.main()
