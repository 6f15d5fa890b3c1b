"""Commands that sonde launches (record -- CMD, top -- CMD, record --agent --
CMD): one rule for all. When sonde stops (the duration, Ctrl-C, SIGTERM), the
command stops too: SIGINT, then SIGTERM after a grace period (then SIGKILL),
unless --keep-running. A command that is not Python (a shell, make) is
followed to the Python it runs with --subprocesses; without, sonde says so.
The targets log the signals they get: the ground truth is theirs."""
import os
import re
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import EXIT_NOTPYTHON, EXIT_OK, SUPPORTED_FOUND, require_enough_versions, run_sonde, wait_for

# Logs its pid, then every signal it gets; SIGINT is logged and (argv[2] ==
# "ignore") ignored, SIGTERM logged and obeyed. Spins until stopped.
TARGET = r"""
import os, signal, sys, time
log = open(sys.argv[1], "a", buffering=1)
def on(sig, frame):
    log.write("%s\n" % signal.Signals(sig).name)
    if sig == signal.SIGTERM or sys.argv[2] != "ignore":
        sys.exit(0)
signal.signal(signal.SIGINT, on)
signal.signal(signal.SIGTERM, on)
log.write("pid %d\n" % os.getpid())
def launched_spin():
    while True:
        sum(range(1000))
launched_spin()
"""


@pytest.fixture
def py():
    require_enough_versions()
    found = sorted(SUPPORTED_FOUND, key=lambda i: i.minor)
    system = [i for i in found if i.path.startswith("/usr/")]
    return (system or found)[-1]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def logged(path):
    try:
        return open(path).read().split("\n")
    except FileNotFoundError:
        return []


def target_pid(log):
    lines = wait_for(lambda: [l for l in logged(log) if l.startswith("pid ")], 30, "the target's start")
    return int(lines[0].split()[1])


def write_target(tmp_path):
    t = tmp_path / "target.py"
    t.write_text(TARGET)
    return t


@pytest.mark.parametrize("how", ["record", "top", "agent"])
def test_duration_stops_the_command(sonde_bin, py, tmp_path, how):
    """-d 1: the command is stopped with SIGINT when the recording ends."""
    t, log = write_target(tmp_path), tmp_path / "log"
    out = tmp_path / "r.sonde"
    args = {"record": ["record", "-o", out], "top": ["top"], "agent": ["record", "--agent", "-o", out]}[how]
    r = run_sonde(sonde_bin, *args, "-d", "1", "--", py.path, t, log, "obey", timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    m = re.search(r"^sonde: stopped the command \(pid (\d+)\)", r.stderr, re.M)
    assert m, r.stderr
    pid = int(m.group(1))
    assert not alive(pid), "the launched command %d still runs" % pid
    # SIGINT first (unless it came before the target could log anything)
    lines = logged(log)
    assert lines[:1] in ([], [""], ["pid %d" % pid]), lines
    if lines[:1] == ["pid %d" % pid]:
        assert lines[1] == "SIGINT", lines


def test_sigint_then_sigterm(sonde_bin, py, tmp_path):
    """A command that ignores SIGINT gets SIGTERM after the grace period."""
    t, log = write_target(tmp_path), tmp_path / "log"
    p = subprocess.Popen([sonde_bin, "record", "-q", "-o", str(tmp_path / "r.sonde"), "--", py.path, str(t),
                          str(log), "ignore"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = target_pid(log)  # its handlers are set: a barrier, not a delay
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == EXIT_OK, err
    assert not alive(pid)
    assert logged(log)[1:3] == ["SIGINT", "SIGTERM"], logged(log)


@pytest.mark.parametrize("how", ["record", "agent"])
def test_sigterm_to_sonde_stops_the_command(sonde_bin, py, tmp_path, how):
    t, log = write_target(tmp_path), tmp_path / "log"
    out = tmp_path / "r.sonde"
    p = subprocess.Popen([sonde_bin, "record"] + (["--agent"] if how == "agent" else []) +
                         ["-q", "-o", str(out), "--", py.path, str(t), str(log), "obey"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = target_pid(log)
        wait_for(lambda: out.exists(), 30, "the recording file")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == EXIT_OK, err
    assert not alive(pid)
    assert logged(log)[1] == "SIGINT", logged(log)


@pytest.mark.parametrize("how", ["record", "top", "agent"])
def test_keep_running(sonde_bin, py, tmp_path, how):
    t, log = write_target(tmp_path), tmp_path / "log"
    out = tmp_path / "r.sonde"
    args = {"record": ["record", "-o", out], "top": ["top"], "agent": ["record", "--agent", "-o", out]}[how]
    # the command keeps sonde's stdout and stderr: files, not pipes, to see sonde end
    with open(tmp_path / "out", "w") as o, open(tmp_path / "err", "w") as e:
        p = subprocess.Popen([sonde_bin] + [str(a) for a in args] +
                             ["-d", "1", "--keep-running", "--", py.path, str(t), str(log), "obey"],
                             stdout=o, stderr=e)
    pid = target_pid(log)
    try:
        rc = p.wait(timeout=60)
        err = (tmp_path / "err").read_text()
        assert rc == EXIT_OK, err
        assert alive(pid), "--keep-running stopped the command"
        assert logged(log)[1:] == [""], logged(log)
        if how != "top":
            assert "keeps running" in err, err
    finally:
        os.kill(pid, signal.SIGKILL)
        if p.poll() is None:
            p.kill()
            p.wait()


APP = r"""
import sys, time
def wrapped_%s():
    end = time.monotonic() + 0.8
    while time.monotonic() < end:
        sum(range(1000))
wrapped_%s()
"""


def test_wrapper_followed_with_subprocesses(sonde_bin, py, tmp_path):
    """A shell that runs two Python programs one after the other: both are
    recorded, and the shell's own output and end are its own."""
    (tmp_path / "a.py").write_text(APP % ("one", "one"))
    (tmp_path / "b.py").write_text(APP % ("two", "two"))
    out = tmp_path / "w.sonde"
    cmd = "%s a.py; %s b.py; echo shell done" % (py.path, py.path)
    r = subprocess.run([sonde_bin, "record", "-q", "--subprocesses", "-o", str(out), "--", "sh", "-c", cmd],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == EXIT_OK, r.stderr
    assert "shell done" in r.stdout
    db = sqlite3.connect(str(out))
    names = {n for (n,) in db.execute("SELECT s.s FROM frame f JOIN string s ON s.id = f.name")}
    procs = db.execute("SELECT count(*) FROM process").fetchone()[0]
    db.close()
    assert {"wrapped_one", "wrapped_two"} <= names, sorted(names)
    assert procs >= 2


def test_wrapper_without_subprocesses_says_so(sonde_bin, py, tmp_path):
    (tmp_path / "a.py").write_text(APP % ("one", "one"))
    r = subprocess.run([sonde_bin, "record", "-q", "-o", str(tmp_path / "w.sonde"), "--", "sh", "-c",
                        "%s a.py; echo shell done" % py.path],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == EXIT_NOTPYTHON, r.stderr
    lines = [l for l in r.stderr.split("\n") if l.startswith("sonde:")]
    assert len(lines) == 1 and "not Python" in lines[0] and "--subprocesses" in lines[0], r.stderr
