#!/usr/bin/env python3
"""The official OpenAI Node SDK (tests/e2e/openai_sdk.mjs) against the daemon with apiKeys
set: chat (streamed and not), completions, embeddings, transcription upload, speech, the
model list, an unknown model, a wrong key, and a swap while a stream runs -- once directly,
once through nginx configured by the shipped contrib/nginx/llama-swap.conf."""

import os
import shutil
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402
import nginx_front as nf  # noqa: E402

E2E = os.path.join(h.ROOT, "tests", "e2e")
SCRIPT = os.path.join(E2E, "openai_sdk.mjs")
API_KEY = "sk-llama-swap-sdk-test-3f9a"

# What the fake upstreams answer; the script is told (see its header).
EXPECT = {"MODEL": "main", "MODEL_TOKENS": "5", "TOKEN_TEXT": "tok",
          "MODEL_A": "a", "A_TOKENS": "20", "A_TEXT": "A",
          "MODEL_B": "b", "B_TOKENS": "3", "B_TEXT": "B"}


def cfg(d):
    e = EXPECT
    return h4.config_text({
        "apiKeys": [API_KEY],
        "models": {
            e["MODEL"]: {"cmd": h.fake_cmd(model=e["MODEL"], tokens=e["MODEL_TOKENS"],
                                           respond=e["TOKEN_TEXT"])},
            # A streams for about a second: long enough to ask for B in the middle.
            e["MODEL_A"]: {"cmd": h.fake_cmd(model=e["MODEL_A"], tokens=e["A_TOKENS"], tps=20,
                                             respond=e["A_TEXT"])},
            e["MODEL_B"]: {"cmd": h.fake_cmd(model=e["MODEL_B"], tokens=e["B_TOKENS"],
                                             respond=e["B_TEXT"])}},
        "groups": {"pair": {"swap": True, "exclusive": False,
                            "members": [e["MODEL_A"], e["MODEL_B"]]}}})


def node_missing():
    if not shutil.which("node"):
        return "node not found (install Node.js >= 18)"
    if not os.path.isfile(os.path.join(E2E, "node_modules", "openai", "package.json")):
        return ("tests/e2e/node_modules/openai not found (scripts/setup runs npm ci in "
                "tests/e2e)")
    return None


class OpenAISDK(unittest.TestCase):
    def setUp(self):
        reason = node_missing()
        if reason:
            self.skipTest(reason)

    def run_sdk(self, base_url):
        env = dict(os.environ, BASE_URL=base_url, API_KEY=API_KEY, **EXPECT)
        t0 = time.monotonic()
        try:
            p = subprocess.run(["node", SCRIPT], env=env, cwd=E2E, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=85)
            out, rc = p.stdout.decode(errors="replace"), p.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = (e.stdout or b"").decode(errors="replace") + "\n(killed after 85 s)", None
        # Node's TAP, relayed as diagnostics whatever the outcome.
        sys.stdout.write("".join("# node: %s\n" % l for l in out.rstrip("\n").split("\n")))
        sys.stdout.write("# node ran %.2f s against %s, exit status %s\n"
                         % (time.monotonic() - t0, base_url, rc))
        sys.stdout.flush()
        if rc != 0:
            failed = [l for l in out.split("\n") if l.startswith(("not ok", "Bail out!"))]
            self.fail("node %s exited %s: %s\n%s" % (SCRIPT, rc, failed, out[-4000:]))
        self.assertNotIn("not ok", out)
        self.assertRegex(out, r"(?m)^1\.\.\d+$")

    def test_sdk_direct(self):
        with nf.Daemon(cfg) as d:
            self.run_sdk("http://127.0.0.1:%d" % d.port)

    def test_sdk_through_nginx(self):
        reason = nf.missing()
        if reason:
            self.skipTest(reason)
        nf.say_mode()
        with nf.Daemon(cfg) as d, nf.Nginx(d) as ng:
            self.run_sdk("http://127.0.0.1:%d" % ng.port)
            ng.stop()
            self.assertEqual(ng.problems(), [], "nginx logged errors")


if __name__ == "__main__":
    nf.setup()
    h.main()
