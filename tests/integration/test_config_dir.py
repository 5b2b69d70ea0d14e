#!/usr/bin/env python3
"""--config-dir: a directory of *.yaml / *.yml files merged into one configuration, alone or
after --config FILE. --check-config names what it loaded and reports a problem of any file at
that file's own path:line:col; the daemon serves the models of every file; SIGHUP and
--watch-config re-read every source (a new, changed or removed file of the directory), while a
file an editor has just truncated, or a directory left empty, does not empty the running
configuration."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import harness4 as h4  # noqa: E402


def run(*args):
    return subprocess.run([h.LLAMA_SWAP] + list(args), capture_output=True, text=True,
                          timeout=20, stdin=subprocess.DEVNULL)


def model_yaml(*names):
    return "models:\n" + "".join("  %s:\n    cmd: %s\n" % (n, h.fake_cmd(model=n))
                                 for n in names)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def write_atomic(path, text):
    """As an editor that saves through a temporary file (not *.yaml) and a rename."""
    write(path + ".tmp", text)
    os.rename(path + ".tmp", path)


class Check(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="llama-swap-cfgdir-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.dir = os.path.join(self.tmp, "conf.d")
        os.mkdir(self.dir)

    def test_dir_alone(self):
        write(os.path.join(self.dir, "a.yaml"), model_yaml("a"))
        write(os.path.join(self.dir, "b.yml"), model_yaml("b") + "apiKeys: [k]\n")
        write(os.path.join(self.dir, "notes.txt"), "not: [yaml\n")
        for flag in ("--config-dir", "-config-dir"):
            r = run("--check-config", flag, self.dir)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "2 files in %s: configuration is valid (2 models, 0 "
                             "warnings)\n" % self.dir)
            self.assertEqual(r.stderr, "")

    def test_file_and_dir(self):
        cfg = write(os.path.join(self.tmp, "config.yaml"),
                    "macros:\n  ctx: 4096\n" + model_yaml("a") + "globalTTL: 60\n")
        write(os.path.join(self.dir, "10-b.yaml"), model_yaml("b") + "globalTTL: 60\n")
        write(os.path.join(self.dir, "20-c.yaml"),
              "models:\n  c:\n    cmd: %s --ctx ${ctx}\n    tll: 5\n" % h.fake_cmd(model="c"))
        r = run("-t", "-c", cfg, "-config-dir", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "%s + 2 files in %s: configuration is valid (3 models, 1 "
                         "warning)\n" % (cfg, self.dir))
        c = os.path.join(self.dir, "20-c.yaml")
        self.assertEqual(r.stderr, "%s:4:5: unknown key 'tll' (did you mean 'ttl'?) (warning)\n"
                         % c)
        r = run("--check-config", "--strict", "--config", cfg, "--config-dir", self.dir)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("%s + 2 files in %s: 1 warning, which --strict makes errors" %
                      (cfg, self.dir), r.stderr)
        # An empty directory next to a file is fine.
        empty = os.path.join(self.tmp, "empty.d")
        os.mkdir(empty)
        r = run("--check-config", "--config", cfg, "--config-dir", empty)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("+ 0 files in %s: configuration is valid (1 model," % empty, r.stdout)

    def test_errors_at_their_own_file(self):
        cfg = write(os.path.join(self.tmp, "config.yaml"), model_yaml("a", "dup"))
        b = write(os.path.join(self.dir, "b.yaml"), "# second\n" + model_yaml("b", "dup"))
        r = run("--check-config", "--config", cfg, "--config-dir", self.dir)
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, '%s:5:3: duplicate models "dup" (already defined at %s:4:3)\n'
                         % (b, cfg))
        # A scalar conflict names both files.
        write(b, "# second\nglobalTTL: 200\n")
        write(cfg, "globalTTL: 100\n")
        r = run("--check-config", "--config", cfg, "--config-dir", self.dir)
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr, '%s:2:1: conflict at "globalTTL": %s sets 200, %s set 100\n'
                         % (b, b, cfg))
        # A mistake the loader finds after the merge is at its own file too.
        write(b, "# second\n\nmodels:\n  x:\n    cmd: ''\n")
        r = run("--check-config", "--config", cfg, "--config-dir", self.dir)
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr, "%s:5:10: model 'x': cmd is empty\n" % b)
        # A syntax error too.
        write(b, "models:\n  x: [\n")
        r = run("--check-config", "--config", cfg, "--config-dir", self.dir)
        self.assertEqual(r.returncode, 78)
        self.assertTrue(r.stderr.startswith(b + ":3:1: "), r.stderr)

    def test_source_errors(self):
        r = run("--check-config", "--config-dir", self.dir)
        self.assertEqual((r.returncode, r.stderr),
                         (78, "%s: no configuration sources found\n" % self.dir))
        missing = os.path.join(self.tmp, "missing")
        r = run("--check-config", "--config-dir", missing)
        self.assertEqual((r.returncode, r.stderr),
                         (78, "%s: cannot read config directory: No such file or directory\n"
                          % missing))
        inside = write(os.path.join(self.dir, "main.yaml"), model_yaml("a"))
        r = run("--check-config", "--config", inside, "--config-dir", self.dir)
        self.assertEqual((r.returncode, r.stderr),
                         (78, "--config %s is also present in --config-dir %s; remove it from "
                          "one\n" % (inside, self.dir)))
        r = run("--check-config", "--config-dir", "")
        self.assertEqual(r.returncode, 2, r.stderr)


def with_dir(files, main=("a",)):
    """A Daemon config callable: the file gets the models `main`, conf.d/ (passed with
    --config-dir) the `files` ({name: text}); returns the file's text."""
    def make(d):
        os.mkdir(os.path.join(d.tmp, "conf.d"))
        d.args = ["--config-dir", os.path.join(d.tmp, "conf.d")] + d.args
        for name, text in files.items():
            write(os.path.join(d.tmp, "conf.d", name), text)
        return h4.config_text({"models": {m: {"cmd": h.fake_cmd(model=m)} for m in main}})
    return make


def ids(d):
    return sorted(m["id"] for m in d.request("GET", "/v1/models").json()["data"])


class Daemon(unittest.TestCase):
    def start(self, files, watch=False):
        return h4.Daemon(with_dir(files), args=["--watch-config"] if watch else [])

    def confd(self, d, name):
        return os.path.join(d.tmp, "conf.d", name)

    def test_serves_models_of_every_file(self):
        with self.start({"b.yaml": model_yaml("b")}) as d:
            self.assertEqual(ids(d), ["a", "b"])
            for m in ("a", "b"):
                r = d.chat(m)
                self.assertEqual(r.status, 200, r)
            self.assertEqual(d.reloads(), (0, 0))

    def test_sighup_rereads_the_directory(self):
        with self.start({"b.yaml": model_yaml("b")}) as d:
            self.assertEqual(d.chat("a").status, 200)
            pid = {e["model"]: e["pid"] for e in d.running()}["a"]
            write(self.confd(d, "c.yaml"), model_yaml("c"))
            self.assertTrue(d.sighup())
            self.assertEqual(ids(d), ["a", "b", "c"])
            self.assertEqual({e["model"]: e["pid"] for e in d.running()}["a"], pid)
            self.assertEqual(d.chat("c").status, 200)
            # A broken addition is refused at its own position; the running config stays.
            bad = write(self.confd(d, "d.yaml"), "# x\n" + model_yaml("c"))
            self.assertFalse(d.sighup())
            self.assertIn('%s:3:3: duplicate models "c" (already defined at %s:2:3)' %
                          (bad, self.confd(d, "c.yaml")), d.log())
            self.assertEqual(ids(d), ["a", "b", "c"])
            # A removed file takes its models away.
            os.unlink(bad)
            os.unlink(self.confd(d, "b.yaml"))
            self.assertTrue(d.sighup())
            self.assertEqual(ids(d), ["a", "c"])

    def test_watch_picks_up_a_new_file(self):
        with self.start({"b.yaml": model_yaml("b")}, watch=True) as d:
            time.sleep(0.2)
            write_atomic(self.confd(d, "c.yaml"), model_yaml("c"))
            h.wait_until(lambda: d.reloads()[0] >= 1, 10, interval=0.1,
                         what="--watch-config to see the new file")
            self.assertEqual(ids(d), ["a", "b", "c"])
            self.assertEqual(d.chat("c").status, 200)
            # A changed file (written in place) is seen too.
            write(self.confd(d, "c.yaml"), model_yaml("c", "c2"))
            h.wait_until(lambda: d.reloads()[0] >= 2, 10, interval=0.1,
                         what="--watch-config to see the changed file")
            self.assertEqual(ids(d), ["a", "b", "c", "c2"])
            # And a removed one.
            os.unlink(self.confd(d, "c.yaml"))
            h.wait_until(lambda: d.reloads()[0] >= 3, 10, interval=0.1,
                         what="--watch-config to see the removed file")
            self.assertEqual(ids(d), ["a", "b"])

    def test_truncated_file_and_emptied_dir_keep_the_config(self):
        with self.start({"b.yaml": model_yaml("b"), "c.yaml": model_yaml("c")},
                        watch=True) as d:
            self.assertEqual(d.chat("b").status, 200)
            time.sleep(0.2)
            # An editor truncates b.yaml and writes it a while later.
            write(self.confd(d, "b.yaml"), "")
            time.sleep(4.5)  # two scans of the directory and the settle delay
            self.assertEqual(d.reloads(), (0, 0), d.log()[-2000:])
            self.assertEqual(ids(d), ["a", "b", "c"])
            self.assertEqual(d.chat("b").status, 200)
            self.assertIn("b.yaml is empty, not reloading", d.log())
            write(self.confd(d, "b.yaml"), model_yaml("b", "b2"))
            h.wait_until(lambda: d.reloads()[0] >= 1, 10, interval=0.1,
                         what="the reload once the file is written")
            self.assertEqual(ids(d), ["a", "b", "b2", "c"])
            # The directory emptied: no reload (the models of the file and of the directory
            # stay) until a file appears in it again.
            os.unlink(self.confd(d, "b.yaml"))
            os.unlink(self.confd(d, "c.yaml"))
            time.sleep(4.5)
            self.assertEqual(d.reloads(), (1, 0))
            self.assertEqual(ids(d), ["a", "b", "b2", "c"])
            write_atomic(self.confd(d, "z.yaml"), model_yaml("z"))
            h.wait_until(lambda: d.reloads()[0] >= 2, 10, interval=0.1,
                         what="the reload once a file is back")
            self.assertEqual(ids(d), ["a", "z"])
            # The file truncated is ignored as it always was.
            write(d.config_path, "")
            time.sleep(3)
            self.assertEqual(d.reloads(), (2, 0))
            self.assertEqual(ids(d), ["a", "z"])


if __name__ == "__main__":
    h.main()
