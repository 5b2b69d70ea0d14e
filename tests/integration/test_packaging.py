#!/usr/bin/env python3
"""The Debian package and the RPM, built from this source tree by the scripts users run
(scripts/build-deb, scripts/build-rpm) and checked:

- .deb: lintian has no error (E:) tag; the package holds the daemon, the units, sysusers.d
  and tmpfiles.d files, both man pages and /etc/llama-swap/config.yaml as a conffile.
- Installed with dpkg (root, a machine without a running systemd only: see below): the
  llama-swap user exists (sysusers ran), /run/llama-swap is its (tmpfiles ran),
  llama-swap.socket is enabled and the service is not, nothing was started;
  /usr/bin/llama-swap --version and --check-config of the shipped config pass; the
  installed binary serves /health, /v1/models, a chat and /ui/ when socket-activated;
  installing it again (the upgrade paths of the scripts) keeps a locally edited conffile.
- Purged: every file, the conffile, /etc/llama-swap and the unit symlinks are gone. The
  llama-swap system user stays (Debian leaves system users in place); this test removes
  it (and a render group sysusers created) afterwards when they did not exist before.
- .rpm: rpm -qpl lists the same files (units in /usr/lib/systemd/system), the config is
  %config(noreplace), and the scriptlets run systemd-sysusers and the systemd_post /
  systemd_preun / systemd_postun_with_restart steps for the socket and the service.

Both packages are built without their test suites (the .deb with the nocheck option), so
this file takes about 1.5 minutes on 2 cores. Installing stays off machines where systemd
is PID 1 (the package would enable and start a real llama-swap.socket there) unless
LLAMA_SWAP_TEST_DPKG_INSTALL=1. A policy-rc.d that forbids service starts is put in place
for the installation when the machine has none. Any llama-swap package installed before the
test (an aborted run) is purged first, and the test always purges what it installed."""

import glob
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
PKG = "llama-swap"
INSTALLED_BIN = "/usr/bin/llama-swap"
CONFIG = "/etc/llama-swap/config.yaml"
EXAMPLE = "/usr/share/doc/llama-swap/examples/config.example.yaml"  # the starter names it
POLICY_RC_D = "/usr/sbin/policy-rc.d"
BUILD_TIMEOUT = 420


def _term_to_exit(signum, frame):
    # meson test's timeout sends SIGTERM: unwind, so that the finally blocks purge the
    # package and remove what the test created.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _term_to_exit)


def meson_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        m = re.search(r"project\([^)]*?\bversion:\s*'([^']+)'", f.read(), re.S)
    assert m, "no project version in meson.build"
    return m.group(1)


def run(cmd, timeout=60, check=True, **kw):
    """Runs cmd in its own session (its whole process group is killed on a timeout or an
    exception); returns the CompletedProcess with stdout and stderr merged."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, universal_newlines=True,
                         start_new_session=True, **kw)
    try:
        out, _ = p.communicate(timeout=timeout)
    except BaseException:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
        raise
    r = subprocess.CompletedProcess(cmd, p.returncode, out, None)
    if check and r.returncode != 0:
        raise AssertionError("%s exited with %d:\n%s"
                             % (" ".join(cmd), r.returncode, out[-6000:]))
    return r


# ---------------------------------------------------------------------------------------------
# Building (once per file: each test asks for the artifacts)

_tmp = None
_builds = {}  # kind -> (artifact paths, None) | (None, skip reason) | AssertionError


def tmp_dir():
    global _tmp
    if _tmp is None:
        _tmp = tempfile.mkdtemp(prefix="llama-swap-packaging-")
    return _tmp


def build(kind):
    """Builds the 'deb' or the 'rpm' once; returns the artifact paths, skips when the tools
    are missing, fails (every time it is asked) when the build failed."""
    if kind not in _builds:
        tools = {"deb": ["dpkg-buildpackage", "dh", "dpkg-parsechangelog"],
                 "rpm": ["rpmbuild", "rpm"]}[kind]
        missing = [t for t in tools if not shutil.which(t)]
        if missing:
            _builds[kind] = (None, "%s not installed (scripts/setup installs it)"
                             % ", ".join(missing))
        else:
            out = os.path.join(tmp_dir(), kind)
            env = dict(os.environ, TMPDIR=tmp_dir())
            env.pop("MAKEFLAGS", None)
            env.pop("MESON_TESTTHREADS", None)
            env.pop("MALLOC_PERTURB_", None)
            cmd = {"deb": [os.path.join(ROOT, "scripts", "build-deb"), "--no-check", out],
                   "rpm": [os.path.join(ROOT, "scripts", "build-rpm"), out]}[kind]
            try:
                r = run(cmd, timeout=BUILD_TIMEOUT, check=False, env=env)
            except subprocess.TimeoutExpired:
                _builds[kind] = AssertionError("%s took more than %d s" % (cmd[0], BUILD_TIMEOUT))
            else:
                if r.returncode != 0:
                    _builds[kind] = AssertionError("%s failed (%d):\n%s"
                                                   % (cmd[0], r.returncode, r.stdout[-8000:]))
                else:
                    _builds[kind] = (sorted(glob.glob(os.path.join(out, "*"))), None)
    b = _builds[kind]
    if isinstance(b, AssertionError):
        raise b
    if b[1]:
        raise unittest.SkipTest(b[1])
    return b[0]


def one(paths, pattern):
    found = [p for p in paths if re.search(pattern, os.path.basename(p))]
    assert len(found) == 1, "expected one artifact matching %r, have %r" % (pattern, paths)
    return found[0]


def deb():
    return one(build("deb"), r"^llama-swap_[^_]+_[a-z0-9]+\.deb$")


def dpkg_status(pkg=PKG):
    """dpkg's status words for pkg ('install ok installed', 'deinstall ok config-files'),
    or None when dpkg does not know it."""
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False)
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def running_installed_daemons():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % d).startswith(INSTALLED_BIN):
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def unit_dirs():
    return ["/lib/systemd/system", "/usr/lib/systemd/system"]


# ---------------------------------------------------------------------------------------------

class Deb(unittest.TestCase):
    def test_01_built_with_project_version(self):
        path = deb()
        r = run(["dpkg-deb", "-f", path, "Package", "Version", "Architecture", "Depends"])
        fields = dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())
        self.assertEqual(fields["Package"], PKG)
        self.assertEqual(fields["Version"].split("-")[0], meson_version())
        # libraries from ${shlibs:Depends}, systemd-sysusers from ${misc:Depends}; libsystemd0
        # by hand (it is loaded with dlopen(): src/sd/libsystemd.h)
        for dep in ("libsystemd0", "libev4", "libyaml-0-2", "libcjson1", "libstdc++6",
                    "systemd"):
            self.assertIn(dep, fields["Depends"])
        # OpenSSL is loaded with dlopen(), so ${shlibs:Depends} cannot name it
        self.assertIn("libssl3 | libssl3t64", fields["Depends"])

    def test_02_lintian_has_no_errors(self):
        if not shutil.which("lintian"):
            self.skipTest("lintian not installed (scripts/setup installs it)")
        changes = one(build("deb"), r"\.changes$")
        r = run(["lintian", "--pedantic", "-I", "--tag-display-limit", "0", changes],
                check=False, timeout=180)
        tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
        h.diag("lintian:\n" + ("\n".join(tags) or "(no tags)"))
        errors = [line for line in tags if line.startswith("E: ")]
        self.assertEqual(errors, [], "lintian errors:\n" + r.stdout[-4000:])
        # exit status 2: lintian itself failed (not a tag)
        self.assertNotEqual(r.returncode, 2, r.stdout[-4000:])

    def test_03_contents(self):
        r = run(["dpkg-deb", "-c", deb()])
        files = {re.sub(r"^\./", "/", line.split()[-1]) for line in r.stdout.splitlines()}
        for p in (INSTALLED_BIN, CONFIG, "/usr/lib/sysusers.d/llama-swap.conf",
                  "/usr/lib/tmpfiles.d/llama-swap.conf",
                  "/usr/share/man/man8/llama-swap.8.gz",
                  "/usr/share/man/man5/llama-swap.yaml.5.gz",
                  "/usr/share/doc/llama-swap/copyright", EXAMPLE):
            self.assertIn(p, files)
        for unit in ("llama-swap.service", "llama-swap.socket", "llama-swap.slice"):
            self.assertTrue(any(os.path.join(d, unit) in files for d in unit_dirs()),
                            "%s not in a systemd unit directory: %s" % (unit, sorted(files)))
        ctrl = tempfile.mkdtemp(dir=tmp_dir())
        run(["dpkg-deb", "-e", deb(), ctrl])
        with open(os.path.join(ctrl, "conffiles")) as f:
            self.assertEqual(f.read().split(), [CONFIG])

    def test_04_maintainer_scripts(self):
        ctrl = tempfile.mkdtemp(dir=tmp_dir())
        run(["dpkg-deb", "-e", deb(), ctrl])
        with open(os.path.join(ctrl, "postinst")) as f:
            postinst = f.read()
        # the user before the tmpfiles line that names it
        self.assertRegex(postinst, r"(?s)systemd-sysusers .*llama-swap\.conf.*"
                                   r"systemd-tmpfiles .*--create llama-swap\.conf")
        # the socket is enabled and started; the service only tracked and try-restarted
        self.assertIn("deb-systemd-helper enable 'llama-swap.socket'", postinst)
        self.assertIn("deb-systemd-invoke start 'llama-swap.socket'", postinst)
        self.assertIn("deb-systemd-invoke try-restart 'llama-swap.service'", postinst)
        self.assertNotRegex(postinst, r"deb-systemd-invoke (start|restart) 'llama-swap\.service'")
        self.assertNotIn("llama-swap.slice", postinst)


class DebInstall(unittest.TestCase):
    """dpkg -i, the checks on the installed system, dpkg --purge: one test, in order."""

    def setUp(self):
        if not shutil.which("dpkg") or not shutil.which("dpkg-query"):
            self.skipTest("dpkg is not installed")
        if os.geteuid() != 0:
            self.skipTest("not root: cannot install the package with dpkg")
        if (os.path.isdir("/run/systemd/system")
                and os.environ.get("LLAMA_SWAP_TEST_DPKG_INSTALL") != "1"):
            self.skipTest("systemd runs this machine: installing would enable a real "
                          "llama-swap.socket (set LLAMA_SWAP_TEST_DPKG_INSTALL=1 to do it)")
        self.path = deb()
        self.created_policy = False
        self.user_before = self._exists(pwd.getpwnam, "llama-swap")
        self.group_before = self._exists(grp.getgrnam, "llama-swap")
        self.render_before = self._exists(grp.getgrnam, "render")
        self.run_dir_before = os.path.exists("/run/llama-swap")

    @staticmethod
    def _exists(lookup, name):
        try:
            lookup(name)
            return True
        except KeyError:
            return False

    def purge(self):
        if dpkg_status() is not None:
            run(["dpkg", "--purge", PKG], timeout=120)

    def restore_machine(self):
        self.purge()
        if self.created_policy:
            os.unlink(POLICY_RC_D)
        if not self.user_before and self._exists(pwd.getpwnam, "llama-swap"):
            run(["userdel", "llama-swap"], check=False)
        if not self.group_before and self._exists(grp.getgrnam, "llama-swap"):
            run(["groupdel", "llama-swap"], check=False)
        if not self.render_before and self._exists(grp.getgrnam, "render"):
            run(["groupdel", "render"], check=False)
        if not self.run_dir_before and os.path.isdir("/run/llama-swap"):
            shutil.rmtree("/run/llama-swap", ignore_errors=True)

    def test_install_run_purge(self):
        if dpkg_status() is not None:
            h.diag("purging a llama-swap package left installed (%s)" % dpkg_status())
            self.purge()
        if not os.path.exists(POLICY_RC_D):
            with open(POLICY_RC_D, "w") as f:
                f.write("#!/bin/sh\n# created by tests/integration/test_packaging.py\nexit 101\n")
            os.chmod(POLICY_RC_D, 0o755)
            self.created_policy = True
        try:
            self.install_and_check()
            self.reinstall_keeps_local_config()
            self.purge_and_check()
        finally:
            self.restore_machine()

    def install_and_check(self):
        r = run(["dpkg", "-i", self.path], timeout=120, check=False,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(r.returncode, 0, "dpkg -i failed:\n" + r.stdout[-4000:])
        self.assertEqual(dpkg_status(), "install ok installed")

        listed = set(run(["dpkg", "-L", PKG]).stdout.split())
        for p in (INSTALLED_BIN, CONFIG, "/usr/lib/sysusers.d/llama-swap.conf",
                  "/usr/lib/tmpfiles.d/llama-swap.conf", "/usr/share/man/man8/llama-swap.8.gz",
                  "/usr/share/man/man5/llama-swap.yaml.5.gz"):
            self.assertIn(p, listed)
            self.assertTrue(os.path.exists(p), p)
        unit_dir = [d for d in unit_dirs() if os.path.join(d, "llama-swap.service") in listed]
        self.assertEqual(len(unit_dir), 1, "llama-swap.service in no unit directory")
        self.unit_dir = unit_dir[0]
        if shutil.which("pkg-config"):
            want = run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                       check=False).stdout.strip()
            if want:
                self.assertEqual(self.unit_dir, want, "not where systemd.pc says")
        for unit in ("llama-swap.socket", "llama-swap.slice"):
            self.assertIn(os.path.join(self.unit_dir, unit), listed)

        conffiles = run(["dpkg-query", "-W", "-f=${Conffiles}", PKG]).stdout
        self.assertRegex(conffiles, r"(?m)^ %s [0-9a-f]{32}$" % re.escape(CONFIG))

        # sysusers: the user, its group, GPU groups; tmpfiles: /run/llama-swap is its own
        pw = pwd.getpwnam("llama-swap")
        self.assertEqual(pw.pw_dir, "/var/lib/llama-swap")
        self.assertLess(pw.pw_uid, 1000, "not a system user")
        self.assertEqual(grp.getgrgid(pw.pw_gid).gr_name, "llama-swap")
        for g in ("video", "render"):
            self.assertIn("llama-swap", grp.getgrnam(g).gr_mem, "not in group " + g)
        st = os.stat("/run/llama-swap")
        self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid))

        # the socket is enabled, the service is not, and nothing was started
        self.assertTrue(os.path.islink("/etc/systemd/system/sockets.target.wants/"
                                       "llama-swap.socket"), "llama-swap.socket not enabled")
        self.assertFalse(os.path.lexists("/etc/systemd/system/multi-user.target.wants/"
                                         "llama-swap.service"), "the service is enabled")
        self.assertEqual(running_installed_daemons(), [], "installing started the daemon")

        r = run([INSTALLED_BIN, "--version"])
        self.assertEqual(r.stdout.strip(), "llama-swap " + meson_version())
        r = run([INSTALLED_BIN, "--check-config", "--config", CONFIG], check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        # the installed config starts no model that cannot run: none until the user adds some
        self.assertIn("(0 models, 0 warnings)", r.stdout)
        with open(CONFIG) as f:
            self.assertIn(EXAMPLE, f.read(), "the starter config names the example")
        r = run([INSTALLED_BIN, "--check-config", "--config", EXAMPLE], check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        # shared libstdc++ (-Dstatic_libstdcxx=false), as Debian links C++
        self.assertIn("libstdc++.so.6", run(["ldd", INSTALLED_BIN]).stdout)

        self.serve_with_installed_binary()

    def serve_with_installed_binary(self):
        """The installed binary, socket-activated as llama-swap.socket does (LISTEN_FDS,
        FileDescriptorName=http), with one fake-upstream model."""
        cfg = {"models": {"pkg": {"cmd": h.fake_cmd(model="pkg"), "ttl": 0}}}
        saved = h.LLAMA_SWAP
        h.LLAMA_SWAP = INSTALLED_BIN
        try:
            with h.Daemon(cfg, ready_timeout=10) as d:
                self.assertEqual(d.request("GET", "/health").status, 200)
                r = d.request("GET", "/v1/models")
                self.assertEqual(r.status, 200, r)
                self.assertEqual([m["id"] for m in r.json()["data"]], ["pkg"])
                r = d.chat("pkg")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["model"], "pkg")
                # the web UI's assets were compiled in at package build time
                r = d.request("GET", "/ui/")
                self.assertEqual(r.status, 200, r)
                self.assertIn("text/html", r.headers.get("content-type", ""))
                self.assertIn("listening on", d.log())
                self.assertEqual(d.terminate(), 0, d.log()[-3000:])
        finally:
            h.LLAMA_SWAP = saved

    def reinstall_keeps_local_config(self):
        """dpkg -i over the installed package runs the upgrade paths of the maintainer
        scripts (postinst configure OLD-VERSION); a locally edited conffile is kept."""
        edit = "\n# local edit by test_packaging.py\n"
        with open(CONFIG, "a") as f:
            f.write(edit)
        r = run(["dpkg", "-i", self.path], timeout=120, check=False,
                env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        self.assertEqual(r.returncode, 0, "dpkg -i (again) failed:\n" + r.stdout[-4000:])
        self.assertEqual(dpkg_status(), "install ok installed")
        with open(CONFIG) as f:
            self.assertTrue(f.read().endswith(edit), "the local edit of the conffile is lost")
        self.assertTrue(os.path.islink("/etc/systemd/system/sockets.target.wants/"
                                       "llama-swap.socket"))
        self.assertEqual(running_installed_daemons(), [], "reinstalling started the daemon")

    def purge_and_check(self):
        r = run(["dpkg", "--purge", PKG], timeout=120, check=False)
        self.assertEqual(r.returncode, 0, "dpkg --purge failed:\n" + r.stdout[-4000:])
        self.assertIsNone(dpkg_status(), "dpkg still knows the package")
        for p in (INSTALLED_BIN, CONFIG, "/etc/llama-swap",
                  "/usr/lib/sysusers.d/llama-swap.conf", "/usr/lib/tmpfiles.d/llama-swap.conf",
                  "/usr/share/man/man8/llama-swap.8.gz", "/usr/share/doc/llama-swap",
                  os.path.join(self.unit_dir, "llama-swap.service"),
                  os.path.join(self.unit_dir, "llama-swap.socket"),
                  "/etc/systemd/system/sockets.target.wants/llama-swap.socket",
                  "/run/llama-swap", "/var/cache/llama-swap"):
            self.assertFalse(os.path.lexists(p), "%s is left after purge" % p)
        # Debian policy: system users are not removed with the package.
        self.assertTrue(self._exists(pwd.getpwnam, "llama-swap"),
                        "purge removed the llama-swap user")


class Rpm(unittest.TestCase):
    def rpm(self):
        return one(build("rpm"), r"^llama-swap-\d[^/]*\.rpm$")

    def query(self, *args):
        return run(["rpm", "-qp"] + list(args) + [self.rpm()]).stdout

    def test_version(self):
        self.assertEqual(self.query("--qf", "%{NAME} %{VERSION}"),
                         "llama-swap " + meson_version())

    def test_requires_the_dlopened_libraries(self):
        # OpenSSL and libsystemd are loaded with dlopen(): the automatic soname requirements
        # miss them
        requires = self.query("--requires")
        self.assertIn("libssl.so.3", requires)
        self.assertIn("libsystemd.so.0", requires)

    def test_files(self):
        files = set(self.query("-l").split())
        for p in (INSTALLED_BIN, CONFIG, EXAMPLE, "/usr/lib/systemd/system/llama-swap.service",
                  "/usr/lib/systemd/system/llama-swap.socket",
                  "/usr/lib/systemd/system/llama-swap.slice",
                  "/usr/lib/sysusers.d/llama-swap.conf", "/usr/lib/tmpfiles.d/llama-swap.conf"):
            self.assertIn(p, files)
        for man in ("/usr/share/man/man8/llama-swap.8", "/usr/share/man/man5/llama-swap.yaml.5"):
            self.assertTrue(man in files or man + ".gz" in files, "%s not in %s" % (man, files))
        # %config(noreplace): the flags c (config) and n (noreplace)
        flags = dict(line.split(" ", 1) for line in
                     self.query("--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]").splitlines())
        self.assertIn("c", flags[CONFIG])
        self.assertIn("n", flags[CONFIG])
        self.assertEqual(self.query("-c").split(), [CONFIG])

    def test_scriptlets(self):
        text = self.query("--scripts")
        parts = dict(re.findall(
            r"(?ms)^(\w+) scriptlet \(using [^)]*\):\n(.*?)(?=^\w+ scriptlet|\Z)", text))
        self.assertIn("postinstall", parts, text)
        post = parts["postinstall"]
        preun = parts.get("preuninstall", "")
        postun = parts.get("postuninstall", "")
        self.assertIn("systemd-sysusers", post)
        self.assertIn("systemd-tmpfiles --create llama-swap.conf", post)
        # %systemd_post: presets for both units
        self.assertRegex(post, r"llama-swap\.socket llama-swap\.service")
        # %systemd_preun: both disabled and stopped on removal
        self.assertRegex(preun, r"llama-swap\.service llama-swap\.socket")
        # %systemd_postun_with_restart for the service only
        self.assertRegex(postun, r"try-restart\b.*llama-swap\.service")
        self.assertNotRegex(postun, r"try-restart\b.*llama-swap\.socket")


def tearDownModule():
    if _tmp:
        shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        h.main()
    finally:
        tearDownModule()
