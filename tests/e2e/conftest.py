"""Shared fixtures of the end-to-end tests.

Interpreters come from scripts/find-pythons. Tests that take the `cpython`
fixture run once per interpreter found for each supported minor version
(2.7, 3.6-3.13); a minor version with no interpreter is skipped. A test of a
feature that a version does not have (asyncio tasks before 3.8, the agent)
says so with @pytest.mark.min_python((3, 8), "why"): it is skipped on older
versions with that reason. Finding fewer
than two supported versions is a failure, not a skip: the suite would prove
too little. `sonde` is the binary in $SONDE (default build/sonde).
"""
import json
import os
import re
import select
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = Path(__file__).resolve().parent / "targets"
SUPPORTED = [(2, 7)] + [(3, m) for m in range(6, 14)]
MIN_SUPPORTED_FOUND = 2

# exit codes: cli/opts.h, docs/exit-codes.md
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOPROC, EXIT_PERM = 0, 1, 2, 3, 4
EXIT_NOTPYTHON, EXIT_UNSUPPORTED, EXIT_EXITED = 5, 6, 7


def wait_for(cond, timeout, what, interval=0.05):
    """Poll cond() until it returns a true value, and return that value; when
    it has not after `timeout` seconds, fail the test naming `what` was
    awaited (and what cond() last returned). Use it instead of a fixed sleep:
    before a "nothing else happened" check, wait for a later event that
    proves the earlier ones were handled (a barrier), not for time to pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            pytest.fail("timed out after %gs waiting for %s (last: %r)" % (timeout, what, v))
        time.sleep(interval)


def holds_for(cond, duration, what, interval=0.05):
    """Poll cond() for `duration` seconds and fail at the first false value,
    naming `what` should have held: for a state that must last (a paused
    display stays frozen), where no later event can serve as a barrier."""
    deadline = time.monotonic() + duration
    while True:
        v = cond()
        if not v:
            pytest.fail("%s stopped holding (got %r)" % (what, v))
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class Interp:
    def __init__(self, path, version, shared, libdir, ldlibrary):
        self.path = path
        self.version = version                      # "3.12.1"
        self.minor = tuple(int(x) for x in version.split(".")[:2])
        self.shared = shared                        # Py_ENABLE_SHARED
        self.libdir = libdir
        self.ldlibrary = ldlibrary

    def __repr__(self):
        return "Interp(%s, %s)" % (self.version, self.path)


_PROBE = ("import sys, sysconfig; v = sys.version_info; "
          "print('%d.%d.%d' % v[:3]); "
          "print(sysconfig.get_config_var('Py_ENABLE_SHARED') or 0); "
          "print(sysconfig.get_config_var('LIBDIR') or ''); "
          "print(sysconfig.get_config_var('LDLIBRARY') or '')")
_PROBE2 = ("import sys; v = sys.version_info; "
           "print('%d.%d.%d' % tuple(v[:3])); print(0); print(''); print('')")


def _probe(path):
    for code in (_PROBE, _PROBE2):
        try:
            out = subprocess.run([path, "-c", code], capture_output=True, text=True,
                                 timeout=30).stdout.split("\n")
        except (OSError, subprocess.TimeoutExpired):
            return None
        if len(out) >= 4 and re.match(r"^\d+\.\d+\.\d+$", out[0]):
            return Interp(path, out[0], out[1].strip() not in ("", "0"), out[2], out[3])
    return None


def _discover():
    try:
        paths = subprocess.run([str(ROOT / "scripts" / "find-pythons")], capture_output=True,
                               text=True, timeout=60).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        paths = []
    found = []
    for p in paths:
        it = _probe(p)
        if it:
            found.append(it)
    return found


ALL = _discover()
SUPPORTED_FOUND = [i for i in ALL if i.minor in SUPPORTED]


def _params():
    params = []
    for mm in SUPPORTED:
        its = [i for i in SUPPORTED_FOUND if i.minor == mm]
        if not its:
            params.append(pytest.param(("missing", mm), id="%d.%d-missing" % mm))
        seen = set()
        for i in its:
            ident = i.version if i.version not in seen else i.version + "-" + i.path.replace("/", "_")
            if i.path.startswith("/usr/"):
                ident = i.version + "-system"
            seen.add(ident)
            params.append(pytest.param(i, id=ident))
    return params


def pytest_generate_tests(metafunc):
    if "cpython" in metafunc.fixturenames:
        metafunc.parametrize("cpython", _params(), indirect=True)


def require_enough_versions():
    versions = sorted({i.minor for i in SUPPORTED_FOUND})
    if len(versions) < MIN_SUPPORTED_FOUND:
        pytest.fail("found %d supported CPython versions (%s), need at least %d: install more "
                    "(pyenv) or fix scripts/find-pythons"
                    % (len(versions), ", ".join("%d.%d" % v for v in versions),
                       MIN_SUPPORTED_FOUND), pytrace=False)


def pytest_configure(config):
    config.addinivalue_line("markers", "min_python(version, reason): the test needs a feature "
                            "sonde reads from that CPython version on (skipped before it)")


@pytest.fixture
def cpython(request):
    require_enough_versions()
    p = request.param
    if isinstance(p, tuple):
        pytest.skip("no CPython %d.%d on this machine" % p[1])
    m = request.node.get_closest_marker("min_python")
    if m and p.minor < tuple(m.args[0]):
        pytest.skip("CPython %s: %s" % (p.version, m.args[1]))
    return p


@pytest.fixture(scope="session")
def sonde_bin():
    p = os.environ.get("SONDE", str(ROOT / "build" / "sonde"))
    if not os.access(p, os.X_OK):
        pytest.fail("sonde binary %s not found: run 'make build' or set SONDE" % p, pytrace=False)
    return p


def run_sonde(sonde_bin, *args, timeout=30, prefix=()):
    """Run sonde; a hang is a test failure (TimeoutExpired propagates)."""
    return subprocess.run(list(prefix) + [sonde_bin] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout)


def dump_json(sonde_bin, pid, *extra):
    r = run_sonde(sonde_bin, "dump", "-p", pid, "--json", *extra)
    assert r.returncode == 0, "sonde dump failed (%d): %s" % (r.returncode, r.stderr)
    assert r.stderr == "", r.stderr
    return json.loads(r.stdout)


def markers(path):
    """{marker: line number} for every '# @marker' comment in a file."""
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            for m in re.findall(r"#\s*@([\w-]+)", line):
                assert m not in out, "marker %s twice in %s" % (m, path)
                out[m] = n
    return out


class Target:
    """A target process that prints one JSON line, then 'ready'."""

    def __init__(self, argv, env=None, timeout=60):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.pid = self.proc.pid
        self.info = None
        self.lines = []
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                pytest.fail("target %s not ready after %ds" % (argv, timeout))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")
                self.kill()
                pytest.fail("target %s exited before ready: %s" % (argv, err))
            buf += chunk
            *done, buf = buf.split(b"\n")
            for line in done:
                line = line.decode().strip()
                if line == "ready":
                    return
                self.lines.append(line)
                if line.startswith("{"):
                    self.info = json.loads(line)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()


@pytest.fixture
def start_target():
    started = []

    def start(argv, **kw):
        t = Target([str(a) for a in argv], **kw)
        started.append(t)
        return t

    yield start
    for t in started:
        t.kill()


class Load:
    """N busy processes that keep CPUs occupied while a test runs: the
    background load the accuracy tests run under."""

    def __init__(self, n):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(n)]

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()


def recording_meta(path):
    """The meta table of a recording, read-only."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return dict(db.execute("SELECT key, value FROM meta"))
    finally:
        db.close()
