#!/usr/bin/env python3
"""The web UI: its files served from the binary (/ui/, / and /ui redirects, 404s, public even
with apiKeys, the compiled-in libraries with their licenses or their stubs), and the UI driven
in a real browser by tests/e2e/ui.mjs (Debian's Chromium via playwright-core): Models (load,
unload, live states), Logs (a live line), Playground (a streamed reply, Stop), Activity (the
request with its tokens), with and without an API key, and behind real nginx with the shipped
site file; without a key also every richer page and action (a model's details with its log
and requests, markdown and highlighted code, a cut stream's cause, speech and transcription,
statistics, histograms, export, in-flight cancel, captures, Performance, About, the theme
toggle, 390 px); and a daemon without models (what to edit, how to reload, the apiKeys
banner).

Screenshots of each page go to $SCREENSHOT_DIR/<case>/, else to ui-screenshots/<case>/ in the
build directory (or a temp dir); the path is printed."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import nginx_front as nf  # noqa: E402

E2E = os.path.join(h.ROOT, "tests", "e2e")
UI_SCRIPT = os.path.join(E2E, "ui.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
KEY = "sk-ui-test-key"
TOKENS = 30
NODE_TIMEOUT = 80  # seconds for one browser run (about 15, 30 with EXTENDED)
MARKDOWN = "Some **bold** text.\n\n```python\ndef f(x):\n    return x + 1\n```\n"


def ui_config(extended=False, **top):
    cfg = {"models": {
        "alpha": {"cmd": h.fake_cmd(model="alpha", load_delay_ms=500), "name": "Alpha",
                  "description": "loads in half a second", "aliases": ["first"]},
        "beta": {"cmd": h.fake_cmd(model="beta", tokens=TOKENS, tps=15, respond="hi "),
                 "aliases": ["second"]},
        "broken": {"cmd": "/nonexistent/llama-server --port ${PORT}",
                   "description": "its command does not exist"},
    }}
    if extended:
        cfg["models"].update({
            # a markdown answer with a fenced code block, in one token
            "md": {"cmd": h.fake_cmd(model="md", tokens=1, respond=MARKDOWN)},
            # dies after 5 of its 30 tokens: the stream is cut midway
            "crash": {"cmd": h.fake_cmd(model="crash", tokens=30, tps=20, crash_after_tokens=5)},
            # 100 tokens at 10 per second: in flight long enough to be cancelled
            "slow": {"cmd": h.fake_cmd(model="slow", tokens=100, tps=10)},
            # speech and transcription (the playground offers it first for them)
            "voice": {"cmd": h.fake_cmd(model="voice"),
                      "capabilities": {"in": ["text", "audio"], "out": ["text", "audio"]}},
        })
        cfg["captureBuffer"] = 5
    cfg.update(top)
    return cfg


def out(text):
    """A TAP comment now, whatever the result (diagnostics of passing tests are dropped)."""
    for line in text.rstrip("\n").split("\n"):
        sys.stdout.write("# %s\n" % line)
    sys.stdout.flush()


def browser_missing():
    """What the browser cases need and this machine lacks."""
    missing = []
    if not shutil.which("node"):
        missing.append("node (not on PATH)")
    if not os.path.isfile(os.path.join(E2E, "node_modules", "playwright-core", "package.json")):
        missing.append("tests/e2e/node_modules/playwright-core (npm ci in tests/e2e)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("chromium (%s)" % CHROMIUM)
    return missing


def screenshot_dir(case):
    base = os.environ.get("SCREENSHOT_DIR")
    if not base:
        build = os.path.dirname(os.path.dirname(os.path.abspath(h.LLAMA_SWAP)))
        base = os.path.join(build, "ui-screenshots")
        try:
            os.makedirs(base, exist_ok=True)
        except OSError:
            base = os.path.join(tempfile.gettempdir(), "llama-swap-ui-screenshots")
    d = os.path.join(base, case)
    os.makedirs(d, exist_ok=True)
    for name in os.listdir(d):  # no stale screenshot (failure-N.png) from an earlier run
        if name.endswith(".png"):
            os.remove(os.path.join(d, name))
    return d


def run_browser(test, d, case, api_key=None, base_url=None, extended=False, mode="",
                shots_expected=("models.png", "logs.png", "activity.png", "playground.png")):
    """Runs ui.mjs against the daemon (or base_url in front of it); its TAP lines are
    relayed as comments."""
    shots = screenshot_dir(case)
    out("screenshots: %s" % shots)
    env = dict(os.environ)
    env.update({
        "BASE_URL": base_url or "http://127.0.0.1:%d" % d.port,
        "SCREENSHOT_DIR": shots,
        "MODEL_LOAD": "alpha",
        "MODEL_CHAT": "beta",
        "MODEL_BROKEN": "broken",
        "EXPECT_TOKENS": str(TOKENS),
        "TOKEN_TEXT": "hi",
        "CHROMIUM": CHROMIUM,
        "EXTENDED": "1" if extended else "",
        "MODE": mode,
    })
    env.pop("API_KEY", None)
    if api_key:
        env["API_KEY"] = api_key
    # Its own session, so that a run past the deadline is ended with the browser it started.
    p = subprocess.Popen(["node", UI_SCRIPT], cwd=E2E, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        output, _ = p.communicate(timeout=NODE_TIMEOUT)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        output, _ = p.communicate()
    text = output.decode(errors="replace")
    out("ui.mjs (%s):\n%s" % (case, text))
    if timed_out:
        test.fail("ui.mjs did not finish within %d s" % NODE_TIMEOUT)
    plan = re.search(r"^1\.\.(\d+)$", text, re.M)
    oks = re.findall(r"^ok \d+ ", text, re.M)
    test.assertEqual(p.returncode, 0, "ui.mjs failed (exit %s)" % p.returncode)
    test.assertTrue(plan and int(plan.group(1)) == len(oks) > 0,
                    "every planned step passed (%s of %s)" % (len(oks), plan and plan.group(1)))
    for name in shots_expected:
        path = os.path.join(shots, name)
        test.assertTrue(os.path.getsize(path) > 1000, "screenshot %s" % path)


class Assets(unittest.TestCase):
    """Plain HTTP, no browser."""

    def test_files_redirects_and_404(self):
        with h.Daemon(ui_config()) as d:
            r = d.request("GET", "/ui/")
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r)
            html = r.body.decode()
            self.assertIn('src="app.js"', html)
            # Everything the page refers to is served (relative URLs only: no CDN, no fonts).
            refs = re.findall(r'(?:src|href)="([^"]+)"', html)
            local = [x for x in refs if not x.startswith(("#", "data:"))]
            self.assertIn("app.css", local)
            for ref in local:
                self.assertRegex(ref, r"^[a-z0-9._-]+$", "a file of the UI, relative")
                self.assertEqual(d.request("GET", "/ui/" + ref).status, 200, ref)
            self.assertEqual(d.request("GET", "/ui/index.html").body, r.body)

            js = d.request("GET", "/ui/app.js")
            self.assertEqual(js.status, 200, js)
            self.assertRegex(js.headers.get("content-type", ""), r"^(text|application)/javascript")
            css = d.request("GET", "/ui/app.css")
            self.assertEqual(css.status, 200, css)
            self.assertTrue(css.headers.get("content-type", "").startswith("text/css"), css)
            # Network strings never become HTML, and nothing is loaded from elsewhere.
            self.assertNotIn("innerHTML", js.body.decode())
            self.assertNotIn("insertAdjacentHTML", js.body.decode())
            for body in (html, js.body.decode(), css.body.decode()):
                self.assertIsNone(re.search(r"https?://", body))

            r = d.request("GET", "/")
            self.assertEqual(r.status, 302, r)
            self.assertTrue(r.headers.get("location", "").endswith("ui/"), r)
            r = d.request("GET", "/ui")
            self.assertEqual(r.status, 301, r)
            self.assertTrue(r.headers.get("location", "").endswith("ui/"), r)

            r = d.request("GET", "/ui/nope.js")
            self.assertEqual(r.status, 404, r)
            self.assertIn("error", r.json())

    def test_libraries_and_their_licenses(self):
        # Chart.js, marked and highlight.js, compiled in from the system's packages with
        # their notices; a build without one serves a stub, so that the page still loads.
        libs = {"chart.min.js": ("license-chart.txt", "Chart"),
                "marked.min.js": ("license-marked.txt", "marked"),
                "highlight.min.js": ("license-highlight.txt", "hljs")}
        with h.Daemon(ui_config()) as d:
            built_in = []
            for js, (lic, name) in libs.items():
                r = d.request("GET", "/ui/" + js)
                self.assertEqual(r.status, 200, js)
                self.assertRegex(r.headers.get("content-type", ""), r"^text/javascript")
                if len(r.body) < 200:
                    self.assertIn(b"not installed when this llama-swap was built", r.body, js)
                    self.assertEqual(d.request("GET", "/ui/" + lic).status, 404, lic)
                    continue
                built_in.append(js)
                self.assertIn(name.encode(), r.body)
                r = d.request("GET", "/ui/" + lic)
                self.assertEqual(r.status, 200, lic)
                self.assertRegex(r.body.decode(), r"(Expat|MIT|BSD)", lic)
            out("libraries built in: %s" % (", ".join(built_in) or "none"))
            csp = d.request("GET", "/ui/").headers.get("content-security-policy", "")
            self.assertIn("media-src 'self' blob:", csp)  # the playground's speech player
            self.assertIn("default-src 'self'", csp)
        # The stub itself (embed.py NAME=).
        with tempfile.TemporaryDirectory() as tmp:
            gen = os.path.join(tmp, "assets.cc")
            subprocess.run([sys.executable, os.path.join(h.ROOT, "src", "ui", "embed.py"), gen,
                            "chart.min.js="], check=True)
            with open(gen) as f:
                self.assertIn("not installed when this llama-swap was built", f.read())

    def test_assets_public_with_api_keys(self):
        with h.Daemon(ui_config(apiKeys=[KEY])) as d:
            for path in ("/ui/", "/ui/index.html", "/ui/app.js", "/ui/app.css"):
                self.assertEqual(d.request("GET", path).status, 200, path)
            self.assertEqual(d.request("GET", "/").status, 302)
            # A browser opening /logs is sent to the UI's log page, which asks for the key.
            r = d.request("GET", "/logs", headers={"Accept": "text/html,*/*;q=0.8"})
            self.assertEqual((r.status, r.headers.get("location")), (302, "ui/#/logs"), r)
            self.assertEqual(d.request("GET", "/logs").status, 401)
            r = d.request("GET", "/api/events")
            self.assertEqual(r.status, 401, r)
            self.assertIn("basic", r.headers.get("www-authenticate", "").lower())
            self.assertEqual(r.json()["error"]["code"], "unauthorized")
            # With the key, the event stream opens (it never ends: read its head only).
            with d.raw(timeout=5) as c:
                c.send("GET /api/events HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n" % KEY)
                status, headers, _ = c.read_head()
                self.assertEqual(status, 200)
                self.assertTrue(headers.get("content-type", "").startswith("text/event-stream"))
            r = d.request("POST", "/api/models/load/alpha")
            self.assertEqual(r.status, 401, r)
            r = d.request("POST", "/api/models/load/first",
                          headers={"Authorization": "Bearer " + KEY})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["model"], "alpha")


class Browser(unittest.TestCase):
    """tests/e2e/ui.mjs in Chromium."""

    def setUp(self):
        missing = browser_missing()
        if missing:
            self.skipTest("no browser test: missing " + ", ".join(missing))

    def test_ui_without_api_key(self):
        # and every richer page and action (EXTENDED in ui.mjs)
        with h.Daemon(ui_config(extended=True)) as d:
            run_browser(self, d, "no-key", extended=True, shots_expected=(
                "models.png", "model-details.png", "logs.png", "playground.png",
                "playground-markdown.png", "playground-cut.png", "activity.png",
                "activity-stats.png", "performance.png", "narrow-models.png", "narrow-nav.png",
                "narrow-playground.png"))

    def test_ui_without_models(self):
        # The page says what to edit and how to reload, and (opened at a name that is not
        # localhost, while the API needs no key) advises apiKeys.
        with h.Daemon({"models": {}}) as d:
            run_browser(self, d, "no-models", mode="empty",
                        base_url="http://ui.test:%d" % d.port, shots_expected=("no-models.png",))

    def test_ui_with_api_key(self):
        with h.Daemon(ui_config(apiKeys=[KEY])) as d:
            run_browser(self, d, "api-key", api_key=KEY)

    def test_ui_through_nginx_with_api_key(self):
        # Behind real nginx configured by the shipped contrib/nginx/llama-swap.conf: the
        # event and log streams must stay live through it.
        reason = nf.missing()
        if reason:
            self.skipTest(reason)
        nf.say_mode()
        with nf.Daemon(ui_config(apiKeys=[KEY])) as d, nf.Nginx(d) as ng:
            run_browser(self, d, "nginx", api_key=KEY,
                        base_url="http://127.0.0.1:%d" % ng.port)
            ng.stop()
            self.assertEqual(ng.problems(), [], "nginx logged errors")


if __name__ == "__main__":
    nf.setup()
    h.main()
