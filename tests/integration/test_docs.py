#!/usr/bin/env python3
"""The documentation against the code: the man pages render without warnings; every option
of `llama-swap --help` is in llama-swap(8) (OPTIONS and SYNOPSIS) and README.md, and every
option documented there works; every key the loader accepts is in llama-swap.yaml(5), in
README.md's tables and in the example config (commented-out settings count), and the other
way round; every route of src/api/routes.cc is in llama-swap(8) and README.md; the example
config (with its commented-out settings enabled) and the configurations shown in README.md
and llama-swap.yaml(5) load without a warning; README.md's links resolve.

Which keys exist is asked of the loader itself, not of a list kept here: every identifier-like
string literal in src/ is offered as a key, with a null value, at every level of a config, and
`llama-swap --check-config` says (by line, as "unknown key 'X'") which ones it does not know.
A key added to the loader without documentation therefore fails this test."""

import glob
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

ROOT = h.ROOT
MAN8 = os.path.join(ROOT, "man", "llama-swap.8")
MAN5 = os.path.join(ROOT, "man", "llama-swap.yaml.5")
EXAMPLE = os.path.join(ROOT, "etc", "llama-swap", "config.example.yaml")
STARTER = os.path.join(ROOT, "etc", "llama-swap", "config.yaml")  # installed in /etc
README = os.path.join(ROOT, "README.md")


def run(*args, env=None, timeout=10):
    return subprocess.run([h.LLAMA_SWAP] + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# roff

def roff_text(s):
    """Roff source text to plain text: escapes of fonts, dashes and special characters."""
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)  # font changes
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\").replace("\\%", "")
    s = re.sub(r"\\\((..)", lambda m: {"aq": "'", "dq": '"', "ti": "~", "lq": '"',
                                       "rq": '"', "en": "-", "em": "-"}.get(m.group(1), " "), s)
    return s


def roff_args(line):
    """The arguments of a roff request line (after the request name), quotes resolved."""
    rest = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
    args, i = [], 0
    while i < len(rest):
        if rest[i] in " \t":
            i += 1
            continue
        if rest[i] == '"':
            i += 1
            arg = ""
            while i < len(rest):
                if rest[i] == '"':
                    if rest[i + 1:i + 2] == '"':
                        arg += '"'
                        i += 2
                        continue
                    i += 1
                    break
                arg += rest[i]
                i += 1
            args.append(arg)
        else:
            j = i
            while j < len(rest) and rest[j] not in " \t":
                j += 1
            args.append(rest[i:j])
            i = j
    return args


def bold_words(line):
    """The bold arguments of a .B, .BR or .BI line (the even ones of .BR/.BI), as text."""
    if line.startswith(".B ") or line == ".B":
        return [roff_text(" ".join(roff_args(line)))]
    if line.startswith((".BR ", ".BI ")):
        return [roff_text(a) for a in roff_args(line)[0::2]]
    return []


def man_sections(text):
    """{SECTION NAME: [lines]} of a man page (.SH), names as plain text."""
    sections, name = {}, None
    for line in text.split("\n"):
        if line.startswith(".SH"):
            name = roff_text(line[3:].strip().strip('"'))
            sections[name] = []
        elif name is not None:
            sections[name].append(line)
    return sections


def tagged_keys(lines, base):
    """(path, key) for every key named in the tag of a .TP/.TQ item of `lines`.

    `path` is a tuple of key names from the top of the config ("*" for a model or group id);
    an item inside .RS/.RE below the item of key K has path + (K,); a dotted tag a.b names a
    at the path and b below it."""
    out = []
    stack = []          # paths of the enclosing .RS blocks
    last_key = None     # the first key of the last tag
    path = tuple(base)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith((".TP", ".TQ")) and i + 1 < len(lines):
            i += 1
            words = [w for w in bold_words(lines[i])
                     if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", w)]
            for w in words:
                parts = w.split(".")
                p = path
                for part in parts:
                    out.append((p, part))
                    p = p + (part,)
            last_key = words[0].split(".")[0] if words else None
        elif line.startswith(".RS"):
            stack.append(path)
            path = path + ((last_key or "?"),)
        elif line.startswith(".RE") and stack:
            path = stack.pop()
        i += 1
    return out


def man_render_warnings(path):
    """stderr of rendering `path` with man (or groff when man is missing); None when neither
    is installed."""
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                           env=env, timeout=30, stdin=subprocess.DEVNULL)
        return r.returncode, r.stderr
    if shutil.which("groff"):
        r = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", path], capture_output=True,
                           text=True, env=env, timeout=30, stdin=subprocess.DEVNULL)
        return r.returncode, r.stderr
    return None


# ---------------------------------------------------------------------------------------------
# The loader's keys, asked of the binary

# Where keys live: a path from the top of the config, "*" standing for a model or group id.
TOP = ()
MODEL = ("models", "*")
LEVELS = {
    TOP: "the top level",
    MODEL: "a model",
    MODEL + ("capabilities",): "capabilities",
    MODEL + ("filters",): "filters",
    MODEL + ("timeouts",): "timeouts",
    ("server",): "server",
    ("groups", "*"): "a group",
    ("hooks",): "hooks",
    ("hooks", "on_startup"): "hooks.on_startup",
}
# Mappings that hold other levels: given a real mapping value instead of null.
CONTAINERS = {TOP: ("models", "server", "groups", "hooks"),
              MODEL: ("capabilities", "filters", "timeouts"),
              ("hooks",): ("on_startup",)}
BOGUS = "zzNoSuchKey"


def source_candidates():
    """Every identifier-like string literal in src/: a superset of the config keys."""
    names = set()
    for path in glob.glob(os.path.join(ROOT, "src", "**", "*.[ch]*"), recursive=True):
        if not path.endswith((".cc", ".h", ".c", ".cpp", ".hh")):
            continue
        names |= set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"', read(path)))
    return names


def probe_config(candidates):
    """A config offering every candidate (and BOGUS) at every level; returns the text and
    {line number: (path, key)}."""
    lines, where = [], {}
    cands = sorted(candidates | {BOGUS})

    def emit(path, indent):
        pad = "  " * indent
        for k in cands:
            if k in CONTAINERS.get(path, ()):
                continue
            if path == MODEL and k == "cmd":
                continue
            lines.append("%s%s: null" % (pad, k))
            where[len(lines)] = (path, k)
        for k in CONTAINERS.get(path, ()):
            lines.append("%s%s:" % (pad, k))
            where[len(lines)] = (path, k)
            if path == TOP and k == "models":
                lines.append("%s  m:" % pad)
                lines.append("%s    cmd: \"/bin/true --port ${PORT}\"" % pad)
                where[len(lines)] = (MODEL, "cmd")
                emit(MODEL, indent + 2)
            elif path == TOP and k == "groups":
                lines.append("%s  g:" % pad)
                emit(("groups", "*"), indent + 2)
            else:
                emit(path + (k,), indent + 1)

    emit(TOP, 0)
    return "\n".join(lines) + "\n", where


_probe_cache = {}


def loader_keys():
    """{path: {"known": set, "unsupported": set}} as the loader sees them."""
    if _probe_cache:
        return _probe_cache
    text, where = probe_config(source_candidates())
    with tempfile.TemporaryDirectory(prefix="llama-swap-docs-") as tmp:
        path = os.path.join(tmp, "probe.yaml")
        with open(path, "w") as f:
            f.write(text)
        r = run("--check-config", "--config", path)
    if r.returncode != 0:
        raise AssertionError("the probe config does not load: %s" % r.stderr[-2000:])
    warned = {}
    for m in re.finditer(r"^%s:(\d+):\d+: (.*) \(warning\)$" % re.escape(path), r.stderr,
                         re.M):
        warned[int(m.group(1))] = m.group(2)
    result = {p: {"known": set(), "unsupported": set(), "unknown": set()} for p in LEVELS}
    for line, (p, k) in where.items():
        msg = warned.get(line)
        if msg is None:
            result[p]["known"].add(k)
        elif "not supported" in msg:
            result[p]["unsupported"].add(k)
        elif "unknown key" in msg:
            result[p]["unknown"].add(k)
        else:
            raise AssertionError("unexpected warning for %s at %s: %s" % (k, p, msg))
    _probe_cache.update(result)
    return result


def level_name(path):
    return LEVELS.get(path, ".".join(path) or "the top level")


# ---------------------------------------------------------------------------------------------
# A little YAML reading for the example config (block mappings only, which is what it uses)

def uncomment_examples(text):
    """Enables the commented-out settings of the example config: a line `#key:` (no blank
    after the #, at any indentation) starts one, and the lines after it that are `#` followed
    by two blanks or more, or by `-`, continue it."""
    out, active = [], False
    for line in text.split("\n"):
        m = re.match(r"^(\s*)#([A-Za-z_][\w.-]*:.*)$", line)
        if m:
            out.append(m.group(1) + m.group(2))
            active = True
            continue
        m = re.match(r"^(\s*)#((?:  |-).*)$", line)
        if active and m:
            out.append(m.group(1) + m.group(2))
            continue
        active = False
        out.append(line)
    return "\n".join(out)


def yaml_key_paths(text):
    """(path, key, line number) of every block-mapping key, with "*" for model and group
    ids; block scalars (| and >) are skipped."""
    out = []
    stack = []          # (indent, key)
    scalar_indent = None
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        if not stripped.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if scalar_indent is not None:
            if indent > scalar_indent:
                continue
            scalar_indent = None
        m = re.match(r"^(\s*)(?:- )?([A-Za-z_][\w.-]*|\$\{[\w.-]+\}[\w.-]*):(\s|$)(.*)", line)
        if not m:
            continue
        key = m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(k for _, k in stack)
        if len(path) >= 2 and path[0] in ("models", "groups"):
            path = (path[0], "*") + path[2:]
        out.append((path, key, n))
        stack.append((indent, key))
        if re.match(r"^[|>][-+0-9]*\s*(#.*)?$", m.group(4).strip()):
            scalar_indent = indent
    return out


# ---------------------------------------------------------------------------------------------

class ManPages(unittest.TestCase):
    def test_render_without_warnings(self):
        for page in (MAN8, MAN5):
            r = man_render_warnings(page)
            if r is None:
                self.skipTest("neither man nor groff is installed")
            rc, err = r
            self.assertEqual(rc, 0, "%s: %s" % (page, err))
            self.assertEqual(err.strip(), "", "%s renders with warnings:\n%s" % (page, err))

    def test_sections(self):
        s8 = man_sections(read(MAN8))
        for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS",
                     "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
            self.assertIn(name, s8, "llama-swap.8 has no section %s" % name)
        s5 = man_sections(read(MAN5))
        for name in ("NAME", "SYNOPSIS", "DESCRIPTION", "TOP-LEVEL KEYS", "MODEL KEYS",
                     "FILTERS", "GROUPS", "SERVER KEYS", "EXAMPLES", "SEE ALSO"):
            self.assertIn(name, s5, "llama-swap.yaml.5 has no section %s" % name)


def help_options():
    """[(short or None, long)] from `llama-swap --help`."""
    r = run("--help")
    assert r.returncode == 0, r
    opts = []
    for line in r.stdout.split("\n"):
        m = re.match(r"^\s+(?:(-[A-Za-z0-9]),\s+)?(--[A-Za-z0-9][\w-]*)\b", line)
        if m:
            opts.append((m.group(1), m.group(2)))
    assert len(opts) >= 5, r.stdout
    return opts


class Options(unittest.TestCase):
    def man_options(self):
        lines = man_sections(read(MAN8))["OPTIONS"]
        opts = []
        for i, line in enumerate(lines):
            if line.startswith((".TP", ".TQ")) and i + 1 < len(lines):
                found = []
                for w in bold_words(lines[i + 1]):
                    found += re.findall(r"(?<![\w-])(--?[A-Za-z0-9][\w-]*)", w)
                if found:
                    short = next((o for o in found if not o.startswith("--")), None)
                    long = next((o for o in found if o.startswith("--")), None)
                    opts.append((short, long))
        return opts

    def test_help_options_in_man_page(self):
        man = self.man_options()
        for opt in help_options():
            self.assertIn(opt, man, "option %s of --help is not an item of OPTIONS in "
                          "llama-swap.8 (items there: %s)" % (opt, man))

    def test_man_page_options_in_help(self):
        helped = help_options()
        for opt in self.man_options():
            self.assertIn(opt, helped, "llama-swap.8 documents %s, which --help does not list"
                          % (opt,))

    def test_man_page_options_work(self):
        # Every documented option is accepted by the binary (with --check-config, nothing
        # runs): a documented option that was removed fails here.
        with tempfile.TemporaryDirectory(prefix="llama-swap-docs-") as tmp:
            cfg = os.path.join(tmp, "c.yaml")
            with open(cfg, "w") as f:
                f.write("models: {}\n")
            confd = os.path.join(tmp, "conf.d")  # empty: the file alone is the config
            os.mkdir(confd)
            values = {"--config": cfg, "--listen": "127.0.0.1:0", "--log-target": "stderr",
                      "--config-dir": confd, "--tls-cert-file": "/nonexistent.pem",
                      "--tls-key-file": "/nonexistent.key"}
            # Options that go together (--check-config reads no certificate).
            partners = {"--tls-cert-file": ["--tls-key-file", "/nonexistent.key"],
                        "--tls-key-file": ["--tls-cert-file", "/nonexistent.pem"]}
            for short, long in self.man_options():
                if long in ("--help", "--version", "--check-config", "--config"):
                    continue
                for flag in filter(None, (short, long)):
                    args = [flag] + ([values[long]] if long in values else [])
                    args += partners.get(long, [])
                    r = run("--check-config", "--config", cfg, *args)
                    self.assertEqual(r.returncode, 0, (args, r))

    def test_synopsis_mentions_every_option(self):
        synopsis = roff_text("\n".join(man_sections(read(MAN8))["SYNOPSIS"]))
        for short, long in help_options():
            self.assertRegex(synopsis, r"(?<![\w-])%s(?![\w-])" % re.escape(short or long),
                             "SYNOPSIS of llama-swap.8 lacks %s" % (short or long))

    def test_readme_command_line(self):
        text = read(README)
        section = text.split("\n## Command line", 1)[1].split("\n## ", 1)[0]
        for short, long in help_options():
            for o in filter(None, (short, long)):
                self.assertIn("`%s" % o, section, "README's Command line lacks %s" % o)


class ConfigKeys(unittest.TestCase):
    def test_probe_works_at_every_level(self):
        keys = loader_keys()
        for path, name in LEVELS.items():
            self.assertIn(BOGUS, keys[path]["unknown"], "no unknown-key warning in %s" % name)
        # A few that must be found, or the probe itself is broken.
        for path, k in ((TOP, "healthCheckTimeout"), (MODEL, "cmd"), (MODEL, "gpus"),
                        (("server",), "maxBodyBytes"), (("groups", "*"), "members"),
                        (("hooks", "on_startup"), "preload"), (MODEL + ("timeouts",), "connect"),
                        (MODEL + ("filters",), "setParams"),
                        (MODEL + ("capabilities",), "tools")):
            self.assertIn(k, keys[path]["known"], "%s not found in %s" % (k, level_name(path)))

    def man5_keys(self):
        s = man_sections(read(MAN5))
        tagged = []
        for section, base in (("TOP-LEVEL KEYS", TOP), ("MODEL KEYS", MODEL),
                              ("FILTERS", MODEL + ("filters",)), ("GROUPS", ("groups", "*")),
                              ("SERVER KEYS", ("server",))):
            tagged += tagged_keys(s[section], base)
        return tagged

    def test_every_key_documented_in_man5(self):
        documented = set(self.man5_keys())
        missing = []
        for path, ks in loader_keys().items():
            for k in sorted(ks["known"]):
                if (path, k) not in documented:
                    missing.append("%s in %s" % (k, level_name(path)))
        self.assertEqual(missing, [], "keys the loader reads but llama-swap.yaml.5 does not "
                         "document (as an item of its section)")

    def test_man5_documents_only_known_keys(self):
        keys = loader_keys()
        wrong = []
        for path, k in self.man5_keys():
            if path not in keys or k not in keys[path]["known"]:
                wrong.append("%s in %s" % (k, level_name(path)))
        self.assertEqual(wrong, [], "llama-swap.yaml.5 documents keys the loader does not read")

    def test_unsupported_keys_documented(self):
        section = roff_text("\n".join(man_sections(read(MAN5))["NOT SUPPORTED"]))
        missing = ["%s in %s" % (k, level_name(path)) for path, ks in loader_keys().items()
                   for k in sorted(ks["unsupported"])
                   if not re.search(r"\b%s\b" % re.escape(k), section)]
        self.assertEqual(missing, [], "keys accepted as unsupported that NOT SUPPORTED of "
                         "llama-swap.yaml.5 does not name")

    def test_readme_lists_top_level_and_model_keys(self):
        # Each one in the first column of a table of README's Configuration section.
        section = read(README).split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
        first_cells = " ".join(re.findall(r"^\|([^|\n]*)\|", section, re.M))
        keys = loader_keys()
        missing = ["%s in %s" % (k, level_name(path)) for path in (TOP, MODEL)
                   for k in sorted(keys[path]["known"]) if "`%s`" % k not in first_cells]
        self.assertEqual(missing, [], "keys README.md's Configuration tables do not list")


class ExampleConfig(unittest.TestCase):
    def check(self, path, env=None):
        r = run("--check-config", "--config", path, env=env)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stderr, "", "warnings for %s" % path)

    def test_loads_without_warnings(self):
        self.check(EXAMPLE)

    def test_commented_settings_load_too(self):
        text = uncomment_examples(read(EXAMPLE))
        self.assertNotEqual(text, read(EXAMPLE), "no commented-out settings found")
        with tempfile.TemporaryDirectory(prefix="llama-swap-docs-") as tmp:
            p = os.path.join(tmp, "config.yaml")
            with open(p, "w") as f:
                f.write(text)
            env = dict(os.environ)
            for name in set(re.findall(r"\$\{env\.(\w+)\}", text)):
                env[name] = "docs-test-" + name.lower()
            self.check(p, env=env)

    def test_mentions_every_key(self):
        # Commented-out settings count: they are part of the example.
        found = {(p, k) for p, k, _ in yaml_key_paths(uncomment_examples(read(EXAMPLE)))}
        missing = []
        for path, ks in loader_keys().items():
            for k in sorted(ks["known"]):
                if (path, k) not in found:
                    missing.append("%s in %s" % (k, level_name(path)))
        self.assertEqual(missing, [], "keys the example config does not show")

    def test_installed_starter_runs_nothing_and_warns_about_keys(self):
        # The packaged /etc/llama-swap/config.yaml: no model that cannot start, the way to
        # the full example, and the API-key advice where nobody misses it.
        r = run("--check-config", "--config", STARTER)
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("(0 models, 0 warnings)", r.stdout)
        text = read(STARTER)
        self.assertIn("/usr/share/doc/llama-swap/examples/config.example.yaml", text)
        self.assertIn("systemctl reload llama-swap", text)
        self.assertIn("SECURITY", text)
        # Its commented model, enabled as it says (replacing "models: {}"), loads.
        enabled = uncomment_examples(text.replace("\nmodels: {}\n", "\n"))
        with tempfile.TemporaryDirectory(prefix="llama-swap-docs-") as tmp:
            p = os.path.join(tmp, "config.yaml")
            with open(p, "w") as f:
                f.write(enabled)
            env = dict(os.environ, LLAMA_SWAP_KEY="k")
            r = run("--check-config", "--config", p, env=env)
            self.assertEqual(r.returncode, 0, r)
            self.assertIn("(1 model, 0 warnings)", r.stdout)

    def test_only_known_keys(self):
        keys = loader_keys()
        wrong = []
        for path, k, n in yaml_key_paths(uncomment_examples(read(EXAMPLE))):
            if path in keys and k not in keys[path]["known"]:
                wrong.append("line %d: %s in %s" % (n, k, level_name(path)))
        self.assertEqual(wrong, [])


CONFIG_BLOCK = re.compile(r"^(models|macros|groups|hooks|server|apiKeys|healthCheckTimeout):",
                          re.M)


def readme_config_blocks():
    """The ```yaml blocks of README.md that are llama-swap configurations."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", read(README), re.M | re.S)
    return [b for b in blocks if CONFIG_BLOCK.search(b)]


def man5_example_blocks():
    """The .EX blocks of EXAMPLES in llama-swap.yaml.5, as plain text."""
    lines = man_sections(read(MAN5))["EXAMPLES"]
    blocks, cur = [], None
    for line in lines:
        if line.startswith(".EX"):
            cur = []
        elif line.startswith(".EE"):
            blocks.append(roff_text("\n".join(cur)) + "\n")
            cur = None
        elif cur is not None:
            cur.append(line)
    return blocks


class Examples(unittest.TestCase):
    """Configurations shown in README.md and in EXAMPLES of llama-swap.yaml(5) load as they
    are, without a warning."""

    def check_blocks(self, blocks, where):
        self.assertGreater(len(blocks), 0, "no configuration examples found in %s" % where)
        with tempfile.TemporaryDirectory(prefix="llama-swap-docs-") as tmp:
            for i, text in enumerate(blocks):
                p = os.path.join(tmp, "example%d.yaml" % i)
                with open(p, "w") as f:
                    f.write(text)
                env = dict(os.environ)
                for name in set(re.findall(r"\$\{env\.(\w+)\}", text)):
                    env[name] = "docs-test-" + name.lower()
                r = run("--check-config", "--config", p, env=env)
                self.assertEqual((r.returncode, r.stderr), (0, ""),
                                 "example %d of %s:\n%s" % (i + 1, where, text))

    def test_readme_examples_load(self):
        self.check_blocks(readme_config_blocks(), "README.md")

    def test_man5_examples_load(self):
        self.check_blocks(man5_example_blocks(), "EXAMPLES of llama-swap.yaml.5")


class Readme(unittest.TestCase):
    def test_links_resolve(self):
        # In-page anchors name a heading (GitHub's rule: lower case, punctuation dropped,
        # blanks to hyphens); relative links name a file of the tree.
        text = read(README)
        body = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
        anchors = set()
        for title in re.findall(r"^#+ (.*)$", body, re.M):
            a = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
            anchors.add(a)
        bad = []
        for target in re.findall(r"\]\(([^)\s]+)\)", body):
            if target.startswith("#"):
                if target[1:] not in anchors:
                    bad.append(target)
            elif not re.match(r"^[a-z]+:", target):
                if not os.path.exists(os.path.join(ROOT, target.split("#")[0])):
                    bad.append(target)
        self.assertEqual(bad, [], "README.md links to nothing")


def source_routes():
    """Fixed paths and path prefixes of the route table (src/api/routes.cc)."""
    text = read(os.path.join(ROOT, "src", "api", "routes.cc"))
    paths = set(re.findall(r'"(/[A-Za-z0-9_./-]+)"', text))
    return sorted(paths)


class Routes(unittest.TestCase):
    def test_routes_documented(self):
        man = roff_text("\n".join(man_sections(read(MAN8))["DESCRIPTION"]))
        readme = read(README).split("\n## HTTP API", 1)[1].split("\n## ", 1)[0]
        routes = source_routes()
        self.assertIn("/v1/chat/completions", routes)
        missing = []
        for path in routes:
            # a prefix route "/x/" is documented as /x/<something>
            pat = r"(?<![\w/.-])%s(?![\w-])" % re.escape(path.rstrip("/"))
            if not re.search(pat, man):
                missing.append("%s in llama-swap.8 (HTTP API)" % path)
            if not re.search(pat, readme):
                missing.append("%s in README.md (HTTP API)" % path)
        self.assertEqual(missing, [], "routes of src/api/routes.cc not documented")


if __name__ == "__main__":
    h.main()
