"""The in-process agent (agent/, python/sonde): `sonde record --agent` launched
and attached, `python -m sonde`, `sonde.start/stop`, on every CPython the
conftest finds; an unprivileged user on a process sonde cannot read from
outside; a well-behaved guest (exit code and output unchanged, a quick exit
and a fork leave a complete recording)."""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time
import pytest

from conftest import TARGETS, recording_meta, run_sonde, wait_for
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

# The program works until its stdin closes: a program with a fixed life
# could end before the recording on a busy host.
LONG = ("import sys, threading, time\n"
        "def attached_work():\n    t = time.monotonic()\n    while time.monotonic() - t < 0.05: pass\n"
        "done = threading.Event()\n"
        "threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()\n"
        "print('ready', flush=True)\n"
        "while not done.is_set(): attached_work()\nprint('bye', flush=True)\nsys.exit(6)\n")


def test_agent_attach(sonde_bin, cpython, tmp_path):
    """-p PID: sonde loads the agent (dlopen in the program's main thread,
    cli/inject.h), which records for -d seconds while the program runs on
    to its own end and exit code."""
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


# The main thread sleeps (a system call the kernel restarts through its
# restart block when interrupted) and checks float arithmetic between
# sleeps (vector registers in use); another thread blocks in a read.
SLEEPER = ("import sys, threading, time\n"
           "def check():\n    s = 0.0\n    for i in range(2000): s += i * 0.5\n    return s == 999500.0\n"
           "done = threading.Event()\n"
           "threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()\n"
           "print('ready', flush=True)\n"
           "n = 0\n"
           "while not done.is_set():\n"
           "    time.sleep(0.003)\n"
           "    if not check(): print('corrupt', flush=True); sys.exit(3)\n"
           "    n += 1\n"
           "print('bye', flush=True)\nsys.exit(6)\n")


def attach_and_end(sonde_bin, cpython, tmp_path, code, loads, seconds, exit_code, before=None):
    """Run code (it prints "ready", works until its stdin closes, then
    prints "bye" and exits with exit_code), load the agent into it `loads`
    times (a recording of `seconds` each), then let it end: each load must
    succeed and leave a finished recording, and the program's exit code,
    output and stderr must be its own. The last recording's path."""
    src = tmp_path / "prog.py"
    src.write_text(code)
    p = subprocess.Popen([cpython.path, str(src)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    try:
        assert p.stdout.readline() == "ready\n"
        if before:
            before(p)
        for k in range(loads):
            out = str(tmp_path / ("l%d.sonde" % k))
            r = run_sonde(sonde_bin, "record", "--agent", "-q", "-p", p.pid, "-d", seconds, "-o", out,
                          timeout=120)
            assert r.returncode == 0, r.stderr
            assert finished(out)
            assert p.poll() is None, p.stdout.read() + p.stderr.read()
        p.stdin.close()
        assert p.wait(timeout=30) == exit_code, p.stdout.read() + p.stderr.read()
        assert p.stdout.read() == "bye\n"
        assert p.stderr.read() == ""
        return out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_agent_attach_leaves_the_program_unharmed(sonde_bin, cpython, tmp_path):
    """Loading the agent calls functions in the program's main thread,
    stopped wherever it was: in a sleep (its system call restarted after),
    or in the middle of arithmetic (every register, vector ones included,
    put back). Five loads, a recording each; the program's sleeps, reads
    and sums stay right, and it ends by itself with its own exit code. (gdb
    13, which sonde used before, could not put the vector registers back
    on this kernel: the sleep it interrupted failed with errno 514 and
    killed the program.)"""
    out = attach_and_end(sonde_bin, cpython, tmp_path, SLEEPER, 5, "0.3", 6)
    assert "<module>" in functions(report_json(sonde_bin, out))


# The main thread allocates and frees all the time: stopped anywhere, it is
# often inside malloc or free, holding the arena's lock.
BUSY_ALLOC = ("import sys, threading\n"
              "done = threading.Event()\n"
              "threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()\n"
              "print('ready', flush=True)\n"
              "n = 0\n"
              "while not done.is_set():\n"
              "    b = [bytearray(40000 + (n % 8) * 1000) for _ in range(8)]\n"
              "    n += 1\n"
              "print('bye', flush=True)\n")

# The main thread sleeps 5 s at a time in C (libc's sleep: a relative
# clock_nanosleep, restarted through the kernel's restart block), running
# no Python code for longer than sonde waits for it to.
SLEEPY = ("import ctypes, sys, threading, time\n"
          "libc = ctypes.CDLL(None)\n"
          "done = threading.Event()\n"
          "threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()\n"
          "print('ready', flush=True)\n"
          "while not done.is_set():\n"
          "    t = time.monotonic()\n"
          "    left = libc.sleep(5)\n"
          "    took = time.monotonic() - t\n"
          "    if left != 0 or took < 4.9: print('short', left, took, flush=True); sys.exit(3)\n"
          "print('bye', flush=True)\n")


def test_agent_attach_never_deadlocks_the_program(sonde_bin, cpython, tmp_path):
    """The agent is loaded by Python code that the main thread runs between
    two of its bytecodes (a pending call), never by calling dlopen wherever
    the thread was stopped: stopped inside free, holding the arena's lock,
    the thread waited for itself forever. Six loads into a program whose
    main thread allocates and frees all the time: each returns, and the
    program ends as its own."""
    attach_and_end(sonde_bin, cpython, tmp_path, BUSY_ALLOC, 6, "0.2", 0)


def asleep_in_c(pid):
    """Is thread pid in a nanosleep or clock_nanosleep system call?"""
    with open("/proc/%d/syscall" % pid) as f:
        return f.read().split()[0] in ("35", "230")


def test_agent_attach_main_thread_in_c(sonde_bin, cpython, tmp_path):
    """A main thread that runs no Python code for seconds (asleep in C)
    does not run the pending call: after 3 s sonde stops it where it
    waits, in the system call, calls dlopen and the agent there, puts
    every register back, and the sleep goes on to its full length."""
    attach_and_end(sonde_bin, cpython, tmp_path, SLEEPY, 1, "0.5", 0,
                   before=lambda p: wait_for(lambda: asleep_in_c(p.pid), 30,
                                             "the main thread in its first sleep"))


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


def test_agent_attach_refuses_old_pythons(sonde_bin, tmp_path):
    """The agent's package needs 3.8+: --agent -p on an older Python (2.7,
    3.6, 3.7) says so in one line with exit code 6 and loads nothing (the
    code it would queue there cannot even be decoded: before, it raised
    into the program); the program runs on, its output its own."""
    import conftest
    old = [i for i in conftest.ALL if i.minor < (3, 8)]
    assert old, "no Python older than 3.8 on this machine (scripts/find-pythons)"
    for it in old:
        p = subprocess.Popen([it.path, "-c", "import sys\nsys.stdout.write('ready\\n')\n"
                              "sys.stdout.flush()\nsys.stdin.read()\nsys.stdout.write('bye\\n')\n"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True)
        try:
            assert p.stdout.readline() == "ready\n"
            out = str(tmp_path / "old.sonde")
            r = run_sonde(sonde_bin, "record", "--agent", "-p", p.pid, "-d", "0.3", "-o", out)
            assert r.returncode == 6, (it.version, r.returncode, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and "the agent supports 3.8 and later" in lines[0], r.stderr
            assert not os.path.exists(out)
            p.stdin.close()
            assert p.wait(timeout=30) == 0
            assert p.stdout.read() == "bye\n"
            assert p.stderr.read() == ""
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_agent_attach_never_waits_forever(sonde_bin, tmp_path):
    """An attached agent whose recording cannot end (here its process is
    stopped right after the load) is waited for the recording's length and
    30 s more, then said in one line with exit code 1: sonde never hangs
    (a CI run once saw `record --agent -p PID -d 0.3` still waiting after
    120 s). The program, continued, ends by itself unharmed."""
    src = tmp_path / "prog.py"
    src.write_text(SLEEPER)
    py = "/usr/bin/python3"
    p = subprocess.Popen([py, str(src)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    try:
        assert p.stdout.readline() == "ready\n"
        out = str(tmp_path / "stuck.sonde")
        s = subprocess.Popen([sonde_bin, "record", "--agent", "-p", str(p.pid), "-d", "0.5", "-o", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        line = s.stderr.readline()
        assert "agent recording process" in line, line
        os.kill(p.pid, signal.SIGSTOP)
        t0 = time.time()
        try:
            _, err = s.communicate(timeout=90)
        finally:
            if s.poll() is None:
                s.kill()
            os.kill(p.pid, signal.SIGCONT)
        waited = time.time() - t0
        assert s.returncode == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "did not finish its 0.5 s recording within 30 s more" in lines[0], err
        assert 25 < waited < 60, waited
        p.stdin.close()
        assert p.wait(timeout=30) == 6, p.stdout.read() + p.stderr.read()
        assert p.stdout.read() == "bye\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
