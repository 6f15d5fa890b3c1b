"""Bad input: every failure has its own exit code (cli/cli.h, README.md)
and exactly one line on stderr starting with 'sonde:'."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import (EXIT_EXITED, EXIT_NOPROC, EXIT_NOTPYTHON, EXIT_OK, EXIT_PERM,
                      EXIT_UNSUPPORTED, EXIT_USAGE, TARGETS, markers, run_sonde)


def one_line_error(r, code):
    assert r.returncode == code, "exit %d, want %d; stderr %r" % (r.returncode, code, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.split("\n")
    assert len(lines) == 2 and lines[1] == "", "not one line: %r" % r.stderr
    assert lines[0].startswith("sonde: "), r.stderr
    return lines[0]


def dead_pid():
    """A pid that no process has: one we started and reaped."""
    p = subprocess.Popen(["true"])
    p.wait()
    assert not os.path.exists("/proc/%d" % p.pid)
    return p.pid


def test_no_such_process(sonde_bin):
    pid = dead_pid()
    msg = one_line_error(run_sonde(sonde_bin, "dump", "-p", pid), EXIT_NOPROC)
    assert str(pid) in msg
    # also a pid above any pid_max
    one_line_error(run_sonde(sonde_bin, "dump", "-p", 2**30 - 1), EXIT_NOPROC)


def test_not_python(sonde_bin):
    p = subprocess.Popen(["sleep", "100"])
    try:
        time.sleep(0.1)
        msg = one_line_error(run_sonde(sonde_bin, "dump", "-p", p.pid, "--json"), EXIT_NOTPYTHON)
        assert str(p.pid) in msg
    finally:
        p.kill()
        p.wait()


FAKE_NEWER = r"""
/* Looks like a CPython newer than sonde knows: _PyRuntime and a
 * Py_Version of 3.%d.0 final, exported; no interpreter behind them. */
#include <stdio.h>
#include <unistd.h>
__attribute__((visibility("default"))) const unsigned int Py_Version = 0x03%02x00f0u;
__attribute__((visibility("default"))) char _PyRuntime[8192] = "x";
int main(void)
{
    printf("{}\nready\n");
    fflush(stdout);
    for (;;)
        pause();
}
"""


@pytest.mark.parametrize("minor", [14, 20])
def test_unknown_newer_python_unsupported(sonde_bin, start_target, tmp_path, minor):
    """A version with no layout (neither compiled in nor, for 3.14+, one the
    target describes itself that sonde can use): exit 6, naming it."""
    if not shutil.which("cc"):
        pytest.fail("no C compiler (cc): scripts/install-deps installs one")
    src, exe = tmp_path / "fake.c", tmp_path / "fakepython"
    src.write_text(FAKE_NEWER % (minor, minor))
    subprocess.run(["cc", "-rdynamic", "-o", str(exe), str(src)], check=True)
    t = start_target([exe])
    msg = one_line_error(run_sonde(sonde_bin, "dump", "-p", t.pid), EXIT_UNSUPPORTED)
    assert "unsupported Python version 3.%d.0" % minor in msg, msg


def run_as_nobody():
    """A command prefix that drops to user nobody, or None."""
    if os.geteuid() != 0:
        return None
    if shutil.which("setpriv"):
        pre = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    else:
        return None
    r = subprocess.run(pre + ["id", "-u"], capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.strip() == "0":
        return None
    return pre


def test_permission_denied(sonde_bin, cpython, start_target):
    pre = run_as_nobody()
    if pre is None:
        pytest.skip("cannot run a command as user nobody here")
    # nobody must be able to run sonde: copy it somewhere world-readable
    d = tempfile.mkdtemp(prefix="sonde-perm-")
    try:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "sonde")
        shutil.copy(sonde_bin, exe)
        os.chmod(exe, 0o755)
        t = start_target([cpython.path, "-c", "import sys, time; print('ready'); sys.stdout.flush(); time.sleep(100)"])
        r = run_sonde(exe, "dump", "-p", t.pid, prefix=pre)
        msg = one_line_error(r, EXIT_PERM)
        assert str(t.pid) in msg
    finally:
        shutil.rmtree(d)


@pytest.mark.parametrize("argv", [
    ["dump"],
    ["dump", "--json"],
    ["dump", "-p"],
    ["dump", "-p", "abc"],
    ["dump", "-p", "0"],
    ["dump", "-p", "-5"],
    ["dump", "-p", "12", "extra"],
    ["dump", "--bogus"],
    ["dump", "-x", "-p", "1"],
], ids=lambda a: " ".join(a) or "none")
def test_bad_command_line(sonde_bin, argv):
    one_line_error(run_sonde(sonde_bin, *argv), EXIT_USAGE)


@pytest.mark.parametrize("argv", [[], ["frobnicate"]], ids=["no-command", "unknown-command"])
def test_bad_command(sonde_bin, argv):
    one_line_error(run_sonde(sonde_bin, *argv), EXIT_USAGE)


COMMANDS = ["dump", "record", "report", "collector", "traces", "trace", "export", "top", "view"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_option_errors_are_one_line(sonde_bin, cmd):
    """An unknown option or a missing value: one line naming the command and
    pointing at its --help, exit 2, no usage dump."""
    msg = one_line_error(run_sonde(sonde_bin, cmd, "--bogus"), EXIT_USAGE)
    assert msg.startswith("sonde: %s: unrecognized option '--bogus'" % cmd), msg
    assert "sonde %s --help" % cmd in msg
    msg = one_line_error(run_sonde(sonde_bin, cmd, "-Z"), EXIT_USAGE)
    assert "'-Z'" in msg, msg


@pytest.mark.parametrize("argv", [
    ["record"], ["record", "-p", "1", "--", "true"], ["record", "-d"], ["top"], ["top", "-i"],
    ["report"], ["report", "a.sonde", "b.sonde"], ["report", "-n", "x", "a.sonde"],
    ["export", "x.sonde"], ["export", "-f", "pprof"], ["export", "-f"], ["view"],
    ["view", "a", "b"],
], ids=lambda a: " ".join(a))
def test_missing_or_extra_operands_are_one_line(sonde_bin, argv):
    msg = one_line_error(run_sonde(sonde_bin, *argv), EXIT_USAGE)
    assert msg.startswith("sonde: %s: " % argv[0]), msg


@pytest.mark.parametrize("cmd", COMMANDS + ["version", "help"])
def test_every_command_has_help(sonde_bin, cmd):
    r = run_sonde(sonde_bin, cmd, "--help")
    assert r.returncode == EXIT_OK and r.stderr == "", r.stderr
    assert r.stdout.strip(), "%s --help printed nothing" % cmd


@pytest.mark.parametrize("argv", [["report"], ["export", "-f", "pprof"], ["export", "-f", "callgrind", "--per-thread"],
                                  ["view"], ["traces", "--db"], ["trace", "--db"]],
                         ids=lambda a: " ".join(a))
def test_missing_file_is_exit_8(sonde_bin, tmp_path, argv):
    """Every command that reads a file says the same of a missing one."""
    path = tmp_path / "missing.sonde"
    extra = ["0123456789abcdef"] if argv[0] == "trace" else []
    msg = one_line_error(run_sonde(sonde_bin, *argv, path, *extra), 8)
    assert str(path) in msg, msg


@pytest.mark.parametrize("cmd", ["record", "top"])
def test_launching_a_missing_command(sonde_bin, tmp_path, cmd):
    """A command that cannot be executed has its own exit code (10), one line."""
    missing = tmp_path / "no-such-program"
    msg = one_line_error(run_sonde(sonde_bin, cmd, "-d", "1", "--", missing), 10)
    assert "cannot run %s" % missing in msg, msg
    script = tmp_path / "not-executable.py"
    script.write_text("print(1)\n")
    msg = one_line_error(run_sonde(sonde_bin, cmd, "-d", "1", "--", script), 10)
    assert "cannot run" in msg, msg


def test_help_is_not_an_error(sonde_bin):
    r = run_sonde(sonde_bin, "dump", "--help")
    assert r.returncode == EXIT_OK
    assert "-p" in r.stdout and r.stderr == ""


SHORT_LIVED = r"""
import random, sys, threading, time
random.seed(int(sys.argv[1]))
def work(n):
    def inner(k):
        if k:
            return inner(k - 1)
        time.sleep(random.random() * 0.02)
    inner(n)
ts = [threading.Thread(target=work, args=(i * 5,), name="t%d" % i) for i in range(4)]
for t in ts:
    t.start()
print("ready")
sys.stdout.flush()
time.sleep(random.random() * 0.02)
"""


def test_process_exits_while_read(sonde_bin, cpython):
    """Dump processes that exit at random moments (threads ending, the
    interpreter finalizing, the process gone or a zombie): sonde must exit 0
    with valid JSON, 3 or 7, never crash and never hang."""
    seen = {}
    for i in range(40):
        p = subprocess.Popen([cpython.path, "-c", SHORT_LIVED, str(i)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        try:
            assert p.stdout.readline().strip() == b"ready"
            if i % 4 == 1:
                time.sleep(0.005 * (i % 7))
            r = run_sonde(sonde_bin, "dump", "-p", p.pid, "--json", timeout=20)
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
        seen[r.returncode] = seen.get(r.returncode, 0) + 1
        assert r.returncode in (EXIT_OK, EXIT_NOPROC, EXIT_EXITED), \
            "run %d: exit %d: %s" % (i, r.returncode, r.stderr)
        if r.returncode == EXIT_OK:
            doc = json.loads(r.stdout)
            assert doc["pid"] == p.pid
            for th in doc["threads"]:
                assert len(th["frames"]) <= 1024
        else:
            assert r.stderr.startswith("sonde: ") and r.stderr.count("\n") == 1, r.stderr
    print("exit codes seen:", seen)


def test_zombie(sonde_bin, cpython):
    """A Python process that has exited but not been reaped."""
    p = subprocess.Popen([cpython.path, "-c", "pass"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open("/proc/%d/stat" % p.pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    try:
        r = run_sonde(sonde_bin, "dump", "-p", p.pid)
        msg = one_line_error(r, r.returncode)
        assert r.returncode in (EXIT_NOPROC, EXIT_EXITED), msg
    finally:
        p.wait()


DEEP = TARGETS / "deep.py"


def test_deep_stack(sonde_bin, cpython, start_target):
    m = markers(DEEP)
    t = start_target([cpython.path, DEEP, "1500"])
    r = run_sonde(sonde_bin, "dump", "-p", t.pid, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    main = doc["threads"][0]
    assert main["name"] == "MainThread"
    frames = main["frames"]
    assert len(frames) == 1024  # PY_MAX_DEPTH in tracer/cpython/frames.h
    assert (frames[0]["function"], frames[0]["line"]) == ("recurse", m["bottom"])
    assert all((f["function"], f["file"], f["line"]) == ("recurse", str(DEEP), m["recurse"])
               for f in frames[1:])
    r = run_sonde(sonde_bin, "dump", "-p", t.pid)
    assert r.returncode == 0, r.stderr
    assert "    ... (stack truncated)" in r.stdout
    assert r.stdout.count("    recurse (") == 1024
