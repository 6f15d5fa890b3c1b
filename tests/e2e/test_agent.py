"""The in-process agent (agent/, python/sonde): `sonde record --agent` launched
and attached, `python -m sonde`, `sonde.start/stop`, on every CPython the
conftest finds; an unprivileged user on a process sonde cannot read from
outside; a well-behaved guest (exit code and output unchanged, a quick exit
and a fork leave a complete recording)."""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import pytest

from conftest import TARGETS, recording_meta, run_sonde
from test_record import CPU_REL, W, report_json

pytestmark = pytest.mark.min_python((3, 8), "the in-process agent (python/sonde) supports 3.8+ only")

AW = str(TARGETS / "agent_work.py")


def pkg_dir(sonde_bin):
    """The folder holding the `sonde` package (the build tree's copy)."""
    d = os.path.join(os.path.dirname(os.path.abspath(sonde_bin)), "python")
    assert os.path.isfile(os.path.join(d, "sonde", "__init__.py")), d
    return d


def thread(rep, name):
    ts = [t for t in rep["threads"] if t["name"] == name]
    assert len(ts) == 1, "thread %r: %r" % (name, rep["threads"])
    return ts[0]


def functions(rep):
    return {f["function"]: f for f in rep["functions"]}


def finished(path):
    """The agent's last act writes the statistics (meta 'ticks')."""
    return "ticks" in recording_meta(path)


# ---------------------------------------------------------------- launched

def test_agent_record_accuracy(sonde_bin, cpython, tmp_path):
    """record --agent of the accuracy workload: the right threads and
    functions, each thread's CPU against what the thread measured itself,
    and no thread but the program's (the agent's own are left out)."""
    out = str(tmp_path / "a.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", cpython.path, W, 3, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    assert lines, r.stdout + r.stderr
    work = json.loads(lines[-1])
    assert recording_meta(out)["recorded_by"] == "agent"
    assert finished(out)
    rep = report_json(sonde_bin, out)
    ctx = "\nworkload %s\nreport %s" % (json.dumps(work), json.dumps(rep["threads"]))
    for name, w in work["threads"].items():
        t = thread(rep, name)
        assert t["tid"] == w["tid"], ctx
        if w["cpu_s"] > 0.2:
            assert abs(t["cpu_s"] - w["cpu_s"]) <= CPU_REL * w["cpu_s"], "%s%s" % (name, ctx)
    known = {w["tid"] for w in work["threads"].values()} | {work["pid"], 0}
    assert {t["tid"] for t in rep["threads"]} <= known, ctx
    # the CPU nothing sampled carried (threads that ended between samples)
    # does not hold the agent's own threads' CPU either
    unsampled = [t for t in rep["threads"] if t["tid"] == 0]
    total = sum(w["cpu_s"] for w in work["threads"].values())
    assert sum(t["cpu_s"] for t in unsampled) <= 0.05 * total + 0.03, ctx
    fs = functions(rep)
    assert {"spin_work", "nap", "hash_buffers", "main"} <= set(fs), sorted(fs)


def test_agent_exit_code_output_and_quick_exit(sonde_bin, cpython, tmp_path):
    """The program's exit code and stdout are its own; a program that runs
    0.3 s and calls sys.exit leaves a finished recording of its functions."""
    plain = subprocess.run([cpython.path, AW, "0.3", "3"], capture_output=True, text=True, timeout=30)
    out = str(tmp_path / "q.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", cpython.path, AW, "0.3", "3")
    assert plain.returncode == 3 and plain.stderr == ""
    strip = lambda s: [l for l in s.splitlines() if not l.startswith("{")]
    assert strip(r.stdout) == strip(plain.stdout)
    assert r.returncode == 0 and "exited with status 3" in r.stderr, r.stderr
    assert finished(out)
    rep = report_json(sonde_bin, out)
    fs = functions(rep)
    assert fs["agent_main_spin"]["total_wall_s"] > 0.15, fs
    assert fs["agent_worker_spin"]["total_wall_s"] > 0.15, fs
    assert {"MainThread", "worker"} <= {t["name"] for t in rep["threads"]}


def test_agent_entry_point_script_and_shell(sonde_bin, cpython, tmp_path):
    """An entry-point script (#! line) and a shell that runs Python: the
    agent records the Python process, not the shell."""
    ep = tmp_path / "entry"
    ep.write_text("#!%s\nimport runpy, sys\nsys.argv = [%r, '0.3']\nrunpy.run_path(%r, run_name='__main__')\n"
                  % (cpython.path, AW, AW))
    ep.chmod(0o755)
    for i, cmd in enumerate(([str(ep)], ["sh", "-c", "%s %s 0.3; true" % (cpython.path, AW)])):
        out = str(tmp_path / ("e%d.sonde" % i))
        r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", *cmd)
        assert r.returncode == 0, r.stderr
        rep = report_json(sonde_bin, out)
        assert "agent_main_spin" in functions(rep), (cmd, sorted(functions(rep)))


def test_agent_os_exit_leaves_readable_file(sonde_bin, cpython, tmp_path):
    """os._exit skips exit(): the file holds what was committed, opens,
    and is said to be unfinished."""
    out = str(tmp_path / "o.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", cpython.path, AW, "0.6", "0", "osexit")
    assert r.returncode == 0, r.stderr
    assert "unfinished" in r.stderr, r.stderr
    rep = report_json(sonde_bin, out)
    assert "agent_main_spin" in functions(rep)


def test_agent_fork_child_records_nothing(sonde_bin, cpython, tmp_path):
    """A forked child inherits no recording: the parent's file is finished
    and holds the parent only; the child leaves no file of its own."""
    out = str(tmp_path / "f.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", cpython.path, AW, "0.3", "0", "fork")
    assert r.returncode == 0, r.stderr
    info = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
    assert info["child"] > 0
    assert finished(out)
    rep = report_json(sonde_bin, out)
    assert info["child"] not in {t["tid"] for t in rep["threads"]}
    assert sorted(os.listdir(tmp_path)) == ["f.sonde"], os.listdir(tmp_path)


# ---------------------------------------------------------------- python -m sonde, import sonde

def test_python_m_sonde(sonde_bin, cpython, tmp_path):
    env = dict(os.environ, PYTHONPATH=pkg_dir(sonde_bin))
    out = str(tmp_path / "m.sonde")
    plain = subprocess.run([cpython.path, AW, "0.3", "4"], capture_output=True, text=True, timeout=30)
    r = subprocess.run([cpython.path, "-m", "sonde", "-o", out, "-r", "200", AW, "0.3", "4"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 4, r.stderr
    strip = lambda s: [l for l in s.splitlines() if not l.startswith("{")]
    assert strip(r.stdout) == strip(plain.stdout)
    assert r.stderr == "sonde: wrote %s\n" % out
    assert finished(out) and recording_meta(out)["rate_hz"] == "200"
    assert "agent_worker_spin" in functions(report_json(sonde_bin, out))
    # -m module, with its own arguments
    (tmp_path / "pkg").mkdir()
    shutil.copy(AW, tmp_path / "pkg" / "__main__.py")
    (tmp_path / "pkg" / "__init__.py").write_text("")
    out2 = str(tmp_path / "m2.sonde")
    r = subprocess.run([cpython.path, "-m", "sonde", "-q", "-o", out2, "-m", "pkg", "0.3", "5"],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=30)
    assert r.returncode == 5 and r.stderr == "", r.stderr
    assert "agent_main_spin" in functions(report_json(sonde_bin, out2))


def test_sonde_start_stop(sonde_bin, cpython, tmp_path):
    """start() records from then on; stop() finishes the file while the
    program runs on, and what runs after is not in it."""
    out = str(tmp_path / "s.sonde")
    code = ("import sonde, time\n"
            "def recorded():\n    t = time.monotonic()\n    while time.monotonic() - t < 0.4: pass\n"
            "def after():\n    t = time.monotonic()\n    while time.monotonic() - t < 0.4: pass\n"
            "p = sonde.start(output=%r, rate=100)\nassert sonde.active()\nrecorded()\nsonde.stop()\n"
            "assert not sonde.active()\nimport sqlite3\n"
            "db = sqlite3.connect(p)\nassert db.execute(\"SELECT value FROM meta WHERE key='ticks'\").fetchone()\n"
            "db.close()\nafter()\nprint('ok')\n" % out)
    r = subprocess.run([cpython.path, "-c", code], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=pkg_dir(sonde_bin)))
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    fs = functions(report_json(sonde_bin, out))
    assert "recorded" in fs and "after" not in fs, sorted(fs)


# ---------------------------------------------------------------- attach

# The program works until its stdin closes: gdb's attach takes seconds on a
# busy host, and a program with a fixed life could end before the recording.
LONG = ("import sys, threading, time\n"
        "def attached_work():\n    t = time.monotonic()\n    while time.monotonic() - t < 0.05: pass\n"
        "done = threading.Event()\n"
        "threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()\n"
        "print('ready', flush=True)\n"
        "while not done.is_set(): attached_work()\nprint('bye', flush=True)\nsys.exit(6)\n")


def test_agent_attach(sonde_bin, cpython, tmp_path):
    """-p PID: gdb loads the agent, which records for -d seconds while the
    program runs on to its own end and exit code."""
    if not shutil.which("gdb"):
        pytest.fail("gdb is missing: scripts/install-deps installs it")
    src = tmp_path / "long.py"
    src.write_text(LONG)
    p = subprocess.Popen([cpython.path, str(src)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         universal_newlines=True)
    try:
        assert p.stdout.readline() == "ready\n"
        out = str(tmp_path / "p.sonde")
        r = run_sonde(sonde_bin, "record", "--agent", "-p", p.pid, "-d", "1", "-o", out, timeout=120)
        assert r.returncode == 0, r.stderr
        assert finished(out)
        assert p.poll() is None, "the program ended while the agent recorded it"
        rep = report_json(sonde_bin, out)
        assert "attached_work" in functions(rep)
        main = [t for t in rep["threads"] if t["tid"] == p.pid]
        # -d 1 counts from the agent's first sample
        assert main and 0.7 <= main[0]["wall_s"] <= 1.3, rep["threads"]
        p.stdin.close()
        assert p.wait(timeout=30) == 6 and p.stdout.read() == "bye\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---------------------------------------------------------------- no privileges

ND = ("import ctypes, sys, time\n"
      "ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no process_vm_readv from outside\n"
      "def guarded():\n    t = time.monotonic()\n    while time.monotonic() - t < 0.05: pass\n"
      "print('ready', flush=True)\nend = time.monotonic() + float(sys.argv[1])\n"
      "while time.monotonic() < end: guarded()\n")


@pytest.fixture
def nobody_dir():
    """A folder `nobody` may write in (pytest's own are root's alone)."""
    d = tempfile.mkdtemp(prefix="sonde-agent-")
    os.chmod(d, 0o777)
    yield pathlib.Path(d)
    shutil.rmtree(d)


def test_agent_unprivileged(sonde_bin, nobody_dir):
    """As `nobody`, against a program that made itself non-dumpable (as
    services holding secrets do: then only CAP_SYS_PTRACE may read it from
    outside, whatever the Yama scope, which this kernel may not even have):
    sonde from outside and --agent -p are refused with one line (exit 4);
    --agent -- CMD records it, since a process may always read itself.
    Debian's python3 (the pyenv builds live under /root, closed to nobody)."""
    if os.geteuid() != 0:
        pytest.fail("run as root: the test drops to nobody with setpriv")
    py, tmp_path = "/usr/bin/python3", nobody_dir
    src = tmp_path / "nd.py"
    src.write_text(ND)
    src.chmod(0o644)
    nobody = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    out = str(tmp_path / "n.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-q", "-o", out, "--", py, str(src), "1",
                  prefix=nobody)
    assert r.returncode == 0, r.stderr
    assert "guarded" in functions(report_json(sonde_bin, out))
    p = subprocess.Popen(nobody + [py, str(src), "20"], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        r = run_sonde(sonde_bin, "record", "-q", "-o", str(tmp_path / "x.sonde"), "-p", p.pid, prefix=nobody)
        assert r.returncode == 4 and "permission denied" in r.stderr, r.stderr
        r = run_sonde(sonde_bin, "record", "--agent", "-o", str(tmp_path / "y.sonde"), "-p", p.pid,
                      prefix=nobody)
        assert r.returncode == 4 and r.stderr.count("\n") == 1 and "ptrace refused" in r.stderr, r.stderr
    finally:
        p.kill()
        p.wait()
