"""sonde dump --native under every supported CPython (shared libpython and
Debian's static executable): native frames of OpenSSL's SHA-256, zlib's
deflate, the libc wait under time.sleep and a C extension built here with
-g stand inside their Python callers, with the Python stack below them
whole and in order; the interpreter's own frames show with --native-all.
Every path resumes the thread: a normal dump, sonde killed with SIGKILL
while a thread is stopped, the target killed while one is."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time

import pytest


from conftest import (EXIT_OK, EXIT_USAGE, TARGETS, dump_json, markers, recording_meta, run_sonde,
                      wait_for)

SCRIPT = TARGETS / "native_work.py"
S = str(SCRIPT)
M = markers(SCRIPT)
EXT_C = TARGETS / "natext.c"
EXT_LOOP = [n for n, ln in enumerate(open(EXT_C), 1) if "/* @loop */" in ln][0]

# Python frames below each worker's native frames, innermost first
PY_BELOW = {
    "hasher": [("hash_inner", M["hash"]), ("hasher", M["hash_call"])],
    "compressor": [("compress_inner", M["deflate"]), ("compressor", M["deflate_call"])],
    "sleeper": [("sleep_inner", M["sleep"]), ("sleeper", M["sleep_call"])],
    "extthread": [("ext_inner", M["ext"]), ("extthread", M["ext_call"])],
}
# threading's bootstrap frames (2.7: name-mangled)
BOOTS = (["run", "_bootstrap_inner", "_bootstrap"], ["run", "__bootstrap_inner", "__bootstrap"])


def build_ext(cpython, outdir, strip=False):
    r = subprocess.run([cpython.path, "-c", "import sysconfig; print(sysconfig.get_paths()"
                        "['include'])"], capture_output=True, text=True, timeout=30)
    inc = r.stdout.strip()
    assert os.path.exists(os.path.join(inc, "Python.h")), \
        "no Python.h for %s (python3-dev, see scripts/install-deps)" % cpython.path
    so = os.path.join(str(outdir), "natext.so")
    r = subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-o", so, str(EXT_C), "-I" + inc],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    if strip:
        # stripped: its static functions have no symbol left, its unwind
        # information (.eh_frame) stays; the built copy, natext.so.full,
        # keeps the symbols to check against
        shutil.copy(so, so + ".full")
        r = subprocess.run(["strip", "-s", so], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    return str(outdir)


def function_starts(so):
    """{name: offset} of the functions of an ELF file, from its symbols,
    and of its executable sections (the linker's stubs in .plt have an
    unwind entry and no symbol)."""
    r = subprocess.run(["nm", "--defined-only", so], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    starts = {f[2]: int(f[0], 16) for f in (ln.split() for ln in r.stdout.splitlines())
              if len(f) == 3 and f[1] in "tT"}
    r = subprocess.run(["readelf", "-SW", so], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for m in re.finditer(r"\]\s+(\.\S+)\s+PROGBITS\s+([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+(\S+)",
                         r.stdout):
        if "X" in m.group(3):
            starts.setdefault(m.group(1), int(m.group(2), 16))
    return starts


@pytest.fixture
def native_target(cpython, start_target, tmp_path):
    t = start_target([cpython.path, S, build_ext(cpython, tmp_path)])
    assert t.info and len(t.info["tids"]) == 4
    return t


def thread_frames(doc, name):
    for th in doc["threads"]:
        if th["name"] == name:
            return th["frames"]
    return None


def check_python_below(frames, name):
    """The Python frames: the worker's own (markers), then threading's
    bootstrap, in order, with nothing Python in between."""
    py = [(f["function"], f["line"]) for f in frames if not f["native"]]
    want = PY_BELOW[name]
    assert py[:len(want)] == want, (name, py)
    assert [f for f, _ in py[len(want):]] in BOOTS, (name, py)
    for f in frames:
        if not f["native"]:
            assert f["file"] == S or f["file"].endswith("threading.py"), f


def native_above(frames):
    """The native frames before the first Python frame (innermost first)."""
    out = []
    for f in frames:
        if not f["native"]:
            break
        out.append(f)
    return out


def wait_native(sonde_bin, pid, name, pred, *extra):
    """Dump until the thread `name` is caught where pred says (a sample can
    land between two calls); return that thread's frames."""
    last = {}

    def probe():
        doc = dump_json(sonde_bin, pid, "--native", *extra)
        fr = thread_frames(doc, name)
        last["frames"] = fr
        return fr if fr and pred(native_above(fr)) else None
    return wait_for(probe, 60, "thread %s in the expected native code" % name, interval=0.01)


def test_native_hashlib_zlib_sleep_ext(sonde_bin, cpython, native_target):
    pid = native_target.pid
    # OpenSSL's SHA-256, or, in an interpreter built without OpenSSL (the
    # pyenv 3.6 here), its own _sha256 module's
    sha = wait_native(sonde_bin, pid, "hasher", lambda nat: any(
        ("libcrypto" in (f["module"] or "") or "/_sha256." in (f["module"] or ""))
        and re.search("sha256", f["function"] or "", re.I)
        for f in nat))
    check_python_below(sha, "hasher")

    dfl = wait_native(sonde_bin, pid, "compressor", lambda nat: any(
        re.search(r"/libz\.so", f["module"] or "") and (f["function"] or "").startswith("deflate")
        for f in nat))
    check_python_below(dfl, "compressor")

    slp = wait_native(sonde_bin, pid, "sleeper", lambda nat: any(
        "/libc.so" in (f["module"] or "") and
        f["function"] in ("clock_nanosleep", "__clock_nanosleep", "__select", "select",
                          "__GI___clock_nanosleep", "__nanosleep") for f in nat))
    check_python_below(slp, "sleeper")
    assert "libc.so" in native_above(slp)[0]["module"]

    ext = wait_native(sonde_bin, pid, "extthread", lambda nat: any(
        f["function"] == "natext_spin_loop" for f in nat))
    check_python_below(ext, "extthread")
    nat = native_above(ext)
    loop = [f for f in nat if f["function"] == "natext_spin_loop"][0]
    assert loop["file"].endswith("natext.c") and loop["line"] == EXT_LOOP, loop
    assert loop["module"].endswith("/natext.so") and re.match(r"^0x[0-9a-f]+$", loop["address"])
    spin = [f["function"] for f in nat]
    assert spin.index("natext_spin_loop") < spin.index("natext_spin"), spin
    # frames outside the interpreter only: no interpreter internals by default
    interp_files = {cpython.path, os.path.realpath(cpython.path)}
    if cpython.shared:
        interp_files.add(os.path.realpath(os.path.join(cpython.libdir, cpython.ldlibrary)))
    for f in nat:
        assert os.path.realpath(f["module"]) not in interp_files or not cpython.shared, f
    # every thread runs again
    assert_all_running(pid)


def test_native_all_shows_interpreter(sonde_bin, cpython, native_target):
    pid = native_target.pid
    ext = wait_native(sonde_bin, pid, "extthread", lambda nat: any(
        f["function"] == "natext_spin_loop" for f in nat), "--native-all")
    check_python_below(ext, "extthread")
    # between natext_spin and the Python caller: the interpreter's call machinery
    nat = native_above(ext)
    names = [f["function"] for f in nat]
    assert names.index("natext_spin") < len(names) - 1, names
    assert all(f["function"] != "_PyEval_EvalFrameDefault" for f in ext), \
        "an evaluation frame stayed: %s" % names


def test_native_text(sonde_bin, cpython, native_target):
    pid = native_target.pid

    def probe():
        r = run_sonde(sonde_bin, "dump", "-p", pid, "--native")
        assert r.returncode == EXIT_OK, r.stderr
        block = r.stdout.split('Thread %d "extthread"' % native_target.info["tids"]["ext"])[1]
        block = block.split("\n\n")[0]
        return block if "natext_spin_loop" in block else None
    block = wait_for(probe, 60, "the extension's loop in the text dump", interval=0.01)
    lines = block.strip().split("\n")
    loop = [ln for ln in lines if "natext_spin_loop" in ln][0]
    assert re.match(r"^\s*natext_spin_loop \(natext\.so\+0x[0-9a-f]+\) at .*natext\.c:%d$"
                    % EXT_LOOP, loop), loop
    assert any(re.match(r"^\s+ext_inner \(%s:%d\)$" % (re.escape(S), M["ext"]), ln)
               for ln in lines), lines
    assert any(re.match(r"^\s+\S+ \(libc\.so\.6\+0x[0-9a-f]+\)", ln) for ln in lines), lines


def task_states(pid):
    """{tid: (state letter, TracerPid)} of every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        state = re.search(r"^State:\s+(\S)", st, re.M).group(1)
        tracer = int(re.search(r"^TracerPid:\s+(\d+)", st, re.M).group(1))
        out[int(tid)] = (state, tracer)
    return out


def assert_all_running(pid):
    for tid, (state, tracer) in task_states(pid).items():
        assert state not in ("t", "T") and tracer == 0, (tid, state, tracer)


def thread_cpu(pid, tid):
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return int(f.read().split()[0])


def test_sigkill_while_stopped_resumes(sonde_bin, cpython, native_target):
    """sonde killed with SIGKILL while it holds a thread stopped: the kernel
    detaches it (PTRACE_SEIZE without EXITKILL) and it runs on."""
    pid = native_target.pid
    tid = native_target.info["tids"]["hasher"]
    env = dict(os.environ, SONDE_TEST_NATIVE_HOLD_MS="30000")
    p = subprocess.Popen([sonde_bin, "dump", "-p", str(pid), "--native"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # some thread is held in a tracing stop by sonde
        held = wait_for(lambda: [t for t, (s, tr) in task_states(pid).items()
                                 if s == "t" and tr == p.pid], 30, "a thread held stopped")
        assert len(held) == 1, held
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        wait_for(lambda: all(s != "t" and tr == 0 for s, tr in task_states(pid).values()),
                 30, "every thread running again after sonde was killed")
        # the hashing thread makes progress again
        c0 = thread_cpu(pid, tid)
        wait_for(lambda: thread_cpu(pid, tid) > c0 + 20_000_000, 60, "the hasher running")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # and it can be stopped and read again
    doc = dump_json(sonde_bin, pid, "--native")
    assert all(th["native_error"] is None for th in doc["threads"]), doc["threads"]
    assert_all_running(pid)


def test_target_killed_while_stopped(sonde_bin, cpython, native_target):
    """The target dies while sonde holds one of its threads: sonde neither
    hangs nor crashes, and says the process exited."""
    pid = native_target.pid
    env = dict(os.environ, SONDE_TEST_NATIVE_HOLD_MS="500")
    p = subprocess.Popen([sonde_bin, "dump", "-p", str(pid), "--native", "--json"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(s == "t" for s, _ in task_states(pid).values()), 30,
             "a thread held stopped")
    os.kill(pid, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode in (0, 7), (p.returncode, err)   # 7: EXIT_EXITED
    assert "Traceback" not in err and "Sanitizer" not in err, err


NOCFI = TARGETS / "native_nocfi.py"
NOCFI_M = markers(NOCFI)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the target's machine code is x86-64")
def test_no_unwind_info_degrades(sonde_bin, cpython, start_target):
    """A thread in code no module and no CFI covers: its innermost frame is
    that address with no module, the unwind goes on (frame pointers) or
    stops there counted as truncated, the Python stack stays whole, and the
    thread runs on."""
    t = start_target([cpython.path, str(NOCFI)])
    page = t.info["page"]

    def probe():
        doc = dump_json(sonde_bin, t.pid, "--native")
        th = [x for x in doc["threads"] if x["name"] == "spinner"][0]
        fr = th["frames"]
        return (th, fr) if fr and fr[0]["native"] and \
            page <= int(fr[0]["address"], 16) < page + 4096 else None
    th, fr = wait_for(probe, 60, "the spinner caught in its page", interval=0.01)
    # no file behind it (an anonymous shared page reads as "/dev/zero (deleted)")
    assert fr[0]["function"] is None, fr[0]
    assert fr[0]["module"] is None or "(deleted)" in fr[0]["module"], fr[0]
    py = [(f["function"], f["line"]) for f in fr if not f["native"]]
    assert py[:2] == [("spin_inner", NOCFI_M["spin"]), ("spinner", NOCFI_M["spin_call"])], py
    assert [f for f, _ in py[2:]] in BOOTS, py
    reached_start = any(f["native"] and f["function"] in ("start_thread", "__clone3", "clone3",
                                                          "__clone", "clone") for f in fr)
    assert reached_start or th["native_truncated"] is True, fr
    # the text form: no name, an offset
    r = run_sonde(sonde_bin, "dump", "-p", t.pid, "--native")
    assert r.returncode == EXIT_OK, r.stderr
    assert re.search(r"\n\s+\?\? \(.*\+0x[0-9a-f]+\)\n(.*\n)*\s+spin_inner \(", r.stdout), \
        r.stdout
    assert_all_running(t.pid)


def test_thread_held_by_another_tracer(sonde_bin, cpython, native_target):
    """A thread another tracer holds cannot be seized: it keeps its Python
    stack and says why, the other threads get their native frames, exit 0."""
    pid = native_target.pid
    env = dict(os.environ, SONDE_TEST_NATIVE_HOLD_MS="8000")
    p = subprocess.Popen([sonde_bin, "dump", "-p", str(pid), "--native"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        held = wait_for(lambda: [t for t, (s, tr) in task_states(pid).items()
                                 if s == "t" and tr == p.pid], 30, "a thread held stopped")
        r = run_sonde(sonde_bin, "dump", "-p", pid, "--native", "--json", timeout=60)
        assert p.poll() is None, "the holder finished too early for the test to mean anything"
    finally:
        p.kill()
        p.wait()
    assert r.returncode == EXIT_OK, r.stderr
    assert re.match(r"^sonde: dump: 1 of \d+ threads without native frames", r.stderr), r.stderr
    doc = __import__("json").loads(r.stdout)
    by_tid = {th["tid"]: th for th in doc["threads"]}
    th = by_tid[held[0]]
    assert th["native_error"].startswith("cannot trace the thread"), th
    assert th["native_truncated"] is True
    assert th["frames"] and not any(f["native"] for f in th["frames"]), th["frames"]
    others = [x for x in doc["threads"] if x["tid"] != held[0]]
    assert others and all(x["native_error"] is None for x in others), others
    assert all(any(f["native"] for f in x["frames"]) for x in others), others
    wait_for(lambda: all(s != "t" and tr == 0 for s, tr in task_states(pid).values()),
             30, "every thread running again")


# ---- record --native ----

def record_native(sonde_bin, pid, out, *extra, seconds=3):
    r = run_sonde(sonde_bin, "record", "-p", pid, "-d", seconds, "-o", out, "--native", *extra,
                  timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    assert "native stacks:" in r.stderr, r.stderr
    return r


def report_json(sonde_bin, path, *extra):
    r = run_sonde(sonde_bin, "report", "--json", path, *extra)
    assert r.returncode == EXIT_OK, r.stderr
    return json.loads(r.stdout)


def collapsed(sonde_bin, path, *extra):
    """The recording's stacks, outermost first, each a list of frame labels."""
    r = run_sonde(sonde_bin, "export", "-f", "collapsed", "-o", "-", path, *extra)
    assert r.returncode == EXIT_OK, r.stderr
    out = []
    for ln in r.stdout.splitlines():
        stack, _, weight = ln.rpartition(" ")
        out.append((stack.split(";"), int(weight)))
    return out


def is_sha(label):
    """A frame of OpenSSL's SHA-256 (or, without OpenSSL, _sha256's)."""
    return ("(libcrypto." in label or "(_sha256." in label) and (
        re.search("sha256", label, re.I) or "??" in label)


def under(stacks, caller, pred):
    """Weight of the stacks where a frame matching pred stands somewhere
    inside (above) the Python frame `caller` (a label prefix)."""
    w = 0
    for frames, weight in stacks:
        idx = [i for i, f in enumerate(frames) if f.startswith(caller)]
        if idx and any(pred(f) for f in frames[idx[-1] + 1:]):
            w += weight
    return w


def interp_file(pid, cpython):
    """The file holding the interpreter of process pid: its libpython when
    it maps one, else its executable (Debian's static build)."""
    lib = os.path.realpath(os.path.join(cpython.libdir or "", cpython.ldlibrary or ""))
    with open("/proc/%d/maps" % pid) as f:
        mapped = {os.path.realpath(ln.split(None, 5)[5].strip()) for ln in f
                  if len(ln.split(None, 5)) == 6}
    return lib if lib in mapped else os.path.realpath(cpython.path)


def test_record_native(sonde_bin, cpython, native_target, tmp_path):
    pid = native_target.pid
    out = str(tmp_path / "nat.sonde")
    record_native(sonde_bin, pid, out)
    assert_all_running(pid)
    doc = report_json(sonde_bin, out)
    # the GIL states stay as they are: a worker that runs without the GIL
    # in a recording without --native (the extension's loop; the hasher
    # where hashlib releases the GIL, not 3.6's own _sha256) still does,
    # the sleeper idles. (How running time splits into nogil and idle
    # depends on the CPUs the machine leaves the target, not on --native.)
    plain = str(tmp_path / "plain.sonde")
    r = run_sonde(sonde_bin, "record", "-p", pid, "-d", 3, "-o", plain, timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    thr = lambda d, name: [t for t in d["threads"] if t["name"] == name][0]
    held = lambda t: t["gil_pct"] + t["gil_wait_pct"]
    ref = report_json(sonde_bin, plain)
    nogil = [n for n in ("hasher", "compressor", "extthread")
             if thr(ref, n)["nogil_pct"] > 10 and thr(ref, n)["nogil_pct"] > 2 * held(thr(ref, n))]
    assert "extthread" in nogil, ref["threads"]
    for name in nogil:
        t = thr(doc, name)
        assert t["nogil_pct"] > held(t), (name, doc["threads"], ref["threads"])
    for d in (doc, ref):
        t = thr(d, "sleeper")
        assert t["idle_pct"] > 90, d["threads"]
    # native functions in the report: module and address, the extension's
    # own function by name
    nat = [f for f in doc["functions"] if f.get("native")]
    assert nat, doc["functions"]
    for f in nat:
        assert f["module"] and re.match(r"^0x[0-9a-f]+$", f["address"]), f
        assert f["file"] is None and f["line"] is None, f
    assert any(f["function"] == "natext_spin_loop" and f["module"].endswith("/natext.so")
               for f in nat), nat
    assert any("/libz.so" in f["module"] for f in nat), nat
    py = [f for f in doc["functions"] if "native" not in f]
    assert any(f["function"] == "hash_inner" and f["file"] == S for f in py), py
    # each native function inside its Python caller, the Python stack below
    # it whole: the worker, then threading's bootstrap
    stacks = collapsed(sonde_bin, out)
    # (collapsed names each function by its first line, a native one by
    # its module's file name and offset)
    hash_at = "hash_inner (%s:" % S
    assert under(stacks, hash_at, is_sha) > 0, [s for s, _ in stacks if hash_at in ";".join(s)]
    assert under(stacks, "compress_inner (%s:" % S,
                 lambda f: re.search(r" \(libz\.so[.0-9]*\+0x", f)) > 0
    assert under(stacks, "ext_inner (%s:" % S,
                 lambda f: f.startswith("natext_spin_loop ")) > 0
    assert under(stacks, "sleep_inner (%s:" % S,
                 lambda f: re.search(r" \(libc\.so[.0-9]*\+0x", f)) > 0
    for frames, _ in stacks:
        if any(f.startswith(hash_at) for f in frames):
            py = [f.split(" (")[0] for f in frames if re.search(r"\.py:\d+\)$", f)]
            assert py[-2:] == ["hasher", "hash_inner"] and py[0] == "Thread._bootstrap" or \
                py[-5:-2] in [b[::-1] for b in BOOTS], frames
    # the interpreter's own frames stay hidden
    interp = {interp_file(pid, cpython)}
    for f in nat:
        assert os.path.realpath(f["module"]) not in interp, f
    # the text report: function (module+0xOFFSET)
    r = run_sonde(sonde_bin, "report", out)
    assert r.returncode == EXIT_OK, r.stderr
    assert re.search(r"natext_spin_loop \(natext\.so\+0x[0-9a-f]+\)$", r.stdout, re.M), r.stdout
    # the recording says how native sampling went
    c = sqlite3.connect(out)
    meta = dict(c.execute("SELECT key, value FROM meta"))
    kinds = {k for (k,) in c.execute("SELECT DISTINCT kind FROM frame")}
    c.close()
    assert meta["schema_version"] == "4" and int(meta["native_samples"]) > 0, meta
    assert kinds == {0, 1}, kinds
    check_native_exports(sonde_bin, out, tmp_path)


def check_native_exports(sonde_bin, rec, tmp_path):
    """The exports name native frames' object files: callgrind's ob= (as
    callgrind_annotate shows it), pprof's mappings (as go tool pprof reads
    them), the flame graph's own colours."""
    cg = str(tmp_path / "nat.callgrind")
    r = run_sonde(sonde_bin, "export", "-f", "callgrind", "-o", cg, rec)
    assert r.returncode == EXIT_OK, r.stderr
    text = open(cg).read()
    obs = re.findall(r"^c?ob=\(\d+\) (.*)$", text, re.M)
    assert "[python]" in obs and any("/natext.so" in o for o in obs), obs
    r = subprocess.run(["callgrind_annotate", "--inclusive=yes", cg], capture_output=True,
                       text=True, errors="replace", timeout=60)
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr
    # file:function [object]
    assert re.search(r":natext_spin_loop \[\S*/natext\.so\]$", r.stdout, re.M), r.stdout[:3000]
    assert re.search(r":hash_inner \[\[python\]\]$", r.stdout, re.M), r.stdout[:3000]

    pp = str(tmp_path / "nat.pb.gz")
    r = run_sonde(sonde_bin, "export", "-f", "pprof", "-o", pp, rec)
    assert r.returncode == EXIT_OK, r.stderr
    go = shutil.which("go")
    assert go, "go is required (golang-go, see scripts/install-deps)"
    r = subprocess.run([go, "tool", "pprof", "-raw", pp], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    maps = {}
    for mm in re.finditer(r"^(\d+): 0x([0-9a-f]+)/0x([0-9a-f]+)/0x[0-9a-f]+ (\S+)", r.stdout, re.M):
        maps[int(mm.group(1))] = (int(mm.group(2), 16), int(mm.group(3), 16), mm.group(4))
    assert any(p.endswith("/natext.so") for _, _, p in maps.values()), r.stdout[-3000:]
    # the extension's location: an address inside its module's mapping
    loc = re.search(r"^\s+\d+: 0x([0-9a-f]+) M=(\d+) natext_spin_loop ", r.stdout, re.M)
    assert loc, r.stdout[-3000:]
    lo, hi, path = maps[int(loc.group(2))]
    assert path.endswith("/natext.so") and lo <= int(loc.group(1), 16) < hi

    svg = str(tmp_path / "nat.svg")
    r = run_sonde(sonde_bin, "export", "-f", "flamegraph", "-o", svg, rec)
    assert r.returncode == EXIT_OK, r.stderr
    fills = {}
    for g in re.finditer(r'<g class="f"( data-native="1")? [^>]*data-n="([^"]*)".*?fill="rgb\((\d+),'
                         r'(\d+),(\d+)\)"', open(svg).read()):
        fills.setdefault(bool(g.group(1)), []).append((g.group(2), tuple(map(int, g.group(3, 4, 5)))))
    assert any(n.startswith("natext_spin_loop ") for n, _ in fills[True]), fills[True][:20]
    assert not any(n.startswith("natext_spin_loop ") for n, _ in fills.get(False, []))
    # native frames blue, Python ones warm
    assert all(b > r for _, (r, g, b) in fills[True]) and all(r > b for _, (r, g, b) in fills[False])


SLOW_STOP = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import natext
end = time.time() + 4.0
last, gap, n = time.time(), 0.0, 0
while time.time() < end:
    natext.vfork_wait(100)  # the 20 ms a sample waits for the stop run out
    t = time.time()
    while time.time() - t < 0.02:
        pass
    now = time.time()
    gap, last, n = max(gap, now - last), now, n + 1
print(json.dumps({"gap": gap, "n": n}))
"""


def test_record_native_thread_slow_to_stop(sonde_bin, cpython, tmp_path):
    """A thread that reaches its stop only after the sample gave up on it
    (here: in vfork's wait) is let go at the next tick, also when it is the
    only thread and never runs again to be sampled: the program is not held
    stopped for the rest of the recording."""
    out = tmp_path / "slow.sonde"
    r = run_sonde(sonde_bin, "record", "--native", "-q", "-d", "2", "--keep-running", "-o", out, "--",
                  cpython.path, "-c", SLOW_STOP, build_ext(cpython, tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    work = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
    # an iteration takes about 120 ms; held stopped, one took the recording's rest
    # (1.5 s: a loaded host may leave a runnable thread off its CPU for most
    # of a second; a thread held stopped misses the whole rest)
    assert work["gap"] < 1.5 and work["n"] > 10, work


EXIT_WHILE_HELD = r"""
import os, sys, threading, time
sys.path.insert(0, sys.argv[1])
import natext
def leave():
    time.sleep(0.5)
    os._exit(3)
threading.Thread(target=leave).start()
while True:
    natext.vfork_wait(300)  # where a sample gives up on the main thread
"""


def test_record_native_exit_status_kept(sonde_bin, cpython, tmp_path):
    """The launched command ends (exit status 3) while sonde still has its
    main thread seized after a sample gave up on it: sonde lets go of it
    without taking the command's exit status, and says how it exited."""
    out = tmp_path / "exit.sonde"
    r = run_sonde(sonde_bin, "record", "--native", "-d", "20", "-o", out, "--",
                  cpython.path, "-c", EXIT_WHILE_HELD, build_ext(cpython, tmp_path), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "the command exited with status 3" in r.stderr, r.stderr


def test_record_native_all(sonde_bin, cpython, native_target, tmp_path):
    """--native-all keeps the interpreter's own frames (not its evaluation
    loop, which its Python frames replace)."""
    pid = native_target.pid
    out = str(tmp_path / "all.sonde")
    record_native(sonde_bin, pid, out, "--native-all", seconds=2)
    assert_all_running(pid)
    interp = {interp_file(pid, cpython)}
    nat = [f for f in report_json(sonde_bin, out)["functions"] if f.get("native")]
    inside = [f["function"] for f in nat if os.path.realpath(f["module"]) in interp]
    assert inside, nat
    assert "_PyEval_EvalFrameDefault" not in inside, inside


def test_schema_3_still_read(sonde_bin, cpython, native_target, tmp_path):
    """A recording of schema 3 (no frame.module, frame.address) reads as it
    did: its report is a version 4 one's, Python frames only."""
    out = str(tmp_path / "py.sonde")
    r = run_sonde(sonde_bin, "record", "-p", native_target.pid, "-d", 1, "-o", out, timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    want = report_json(sonde_bin, out)
    old = str(tmp_path / "v3.sonde")
    c = sqlite3.connect(out)
    c.execute("VACUUM INTO ?", (old,))
    c.close()
    c = sqlite3.connect(old)
    c.execute("ALTER TABLE frame DROP COLUMN module")
    c.execute("ALTER TABLE frame DROP COLUMN address")
    c.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    c.commit()
    c.close()
    got = report_json(sonde_bin, old)
    assert got["functions"] == want["functions"] and got["threads"] == want["threads"]
    assert all("native" not in f for f in got["functions"])


# a native frame no symbol covers, as every text surface names it
NAMELESS = r"\?\? \(natext\.so\+0x([0-9a-f]+)\)"


def test_record_native_no_symbol_text(sonde_bin, cpython, start_target, tmp_path):
    """A stripped extension's functions have no symbol: the report (function
    and --lines rows), collapsed stacks, speedscope and the view name them
    "?? (natext.so+0xOFFSET)", the form dump --native prints, each offset
    the one the recording holds."""
    t = start_target([cpython.path, S, build_ext(cpython, tmp_path, strip=True)])
    wait_native(sonde_bin, t.pid, "extthread", lambda nat: any(
        f["function"] is None and (f["module"] or "").endswith("/natext.so") for f in nat))
    out = str(tmp_path / "stripped.sonde")
    record_native(sonde_bin, t.pid, out)
    doc = report_json(sonde_bin, out, "--lines")
    offs = {int(f["address"], 16) for f in doc["functions"]
            if f.get("native") and f["function"] is None and f["module"].endswith("/natext.so")}
    assert offs, doc["functions"]
    # one frame per function, whichever of its addresses was sampled: the
    # offset is where the function starts (its unwind entry's start), as
    # the unstripped build's symbols say
    starts = function_starts(os.path.join(str(tmp_path), "natext.so.full"))
    assert offs <= set(starts.values()) and starts["natext_spin_loop"] in offs, (offs, starts)
    lines = [ln for ln in doc["lines"] if ln.get("native") and ln["module"].endswith("/natext.so")]
    assert lines and all(ln["function"] is None and ln["line"] is None for ln in lines), lines
    assert {int(ln["address"], 16) for ln in lines} == offs, (lines, offs)

    def text_offsets(text, where):
        found = {int(x, 16) for x in re.findall(NAMELESS, text)}
        assert found and found <= offs, (where, found, offs, text[:3000])
        return found
    r = run_sonde(sonde_bin, "report", out)
    assert r.returncode == EXIT_OK, r.stderr
    assert re.search(r"^ .*  " + NAMELESS + "$", r.stdout, re.M), r.stdout
    text_offsets(r.stdout, "report")
    r = run_sonde(sonde_bin, "report", "--lines", out)
    assert r.returncode == EXIT_OK, r.stderr
    assert re.search(r"^ .*  " + NAMELESS + "$", r.stdout, re.M), r.stdout
    text_offsets(r.stdout, "report --lines")
    # collapsed: the nameless frames inside their Python caller
    stacks = collapsed(sonde_bin, out)
    assert under(stacks, "ext_inner (%s:" % S, lambda f: re.fullmatch(NAMELESS, f)) > 0, \
        [s for s, _ in stacks if any("natext" in f for f in s)][:10]
    assert not any("natext.so:" in f for s, _ in stacks for f in s), stacks[:10]
    text_offsets("\n".join(";".join(s) for s, _ in stacks), "collapsed")
    # speedscope: the frame's name, its file the module
    r = run_sonde(sonde_bin, "export", "-f", "speedscope", "-o", "-", out)
    assert r.returncode == EXIT_OK, r.stderr
    frames = json.loads(r.stdout)["shared"]["frames"]
    named = [f for f in frames if re.fullmatch(NAMELESS, f["name"])]
    assert named and all(f["file"].endswith("/natext.so") for f in named), frames
    assert not any(f["name"] == "??" for f in frames), frames
    text_offsets("\n".join(f["name"] for f in named), "speedscope")
    # chrome: slices named as the text names them, in category native, with
    # their module and where they stand in args
    r = run_sonde(sonde_bin, "export", "-f", "chrome", "-o", "-", out)
    assert r.returncode == EXIT_OK, r.stderr
    evs = json.loads(r.stdout)
    evs = evs["traceEvents"] if isinstance(evs, dict) else evs
    nat = [e for e in evs if e.get("ph") == "X" and e.get("cat") == "native" and
           re.fullmatch(NAMELESS, e["name"])]
    assert nat and all(e["args"]["module"].endswith("/natext.so") and
                       "(%s)" % e["args"]["at"] in e["name"] for e in nat), nat[:5]
    assert not any(e.get("name") == "??" for e in evs)
    text_offsets("\n".join(e["name"] for e in nat), "chrome")
    # html: the page's frames read "?? (natext.so+0xOFFSET)" (its script run
    # by node with test_export's stand-in for the DOM)
    html = tmp_path / "n.html"
    r = run_sonde(sonde_bin, "export", "-f", "html", "-o", html, out)
    assert r.returncode == EXIT_OK, r.stderr
    text = html.read_text()
    data = re.search(r'<script type="application/json" id="sonde-data">(.*?)</script>', text,
                     re.S).group(1)
    script = re.findall(r"<script>(.*?)</script>", text, re.S)[-1]
    from test_export import _DOM_STUB
    js = tmp_path / "page.js"
    js.write_text("var DATA = %s;\n%s\n%s\n" % (json.dumps(data), _DOM_STUB, script) +
                  "D.funcs.forEach(function (f) { if (f[0] === '??') "
                  "console.log(f[0] + ' (' + floc(f) + ')'); });\n")
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is required (see scripts/install-deps)"
    r = subprocess.run([node, str(js)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "natext.so:" not in r.stdout
    text_offsets(r.stdout, "html")
    # the view's flat pane: "??  natext.so+0xOFFSET"
    assert shutil.which("tmux"), "tmux is required (see scripts/install-deps)"
    from test_tui import Tmux
    tm = Tmux(tmp_path, width=140, height=60)
    try:
        tm.type("%s view %s" % (sonde_bin, out))
        tm.keys("Enter")
        tm.wait_for("call tree", timeout=20)
        tm.keys("2")
        s = tm.wait_for(re.compile(r"\?\? .*natext\.so\+0x[0-9a-f]+"), timeout=20)
        found = {int(x, 16) for x in re.findall(r"\?\? .*natext\.so\+0x([0-9a-f]+)", s)}
        assert found <= offs and "natext.so:" not in s, (found, offs, s)
        tm.keys("q")
    finally:
        tm.kill()


def test_top_native(sonde_bin, cpython, start_target, tmp_path):
    """sonde top --native, driven through tmux: the threads of a target in
    hashlib and zlib show SHA-256's and deflate's native functions in the
    functions pane (its FILE:LINE column says "module+0xOFFSET"), next to
    their Python callers; q leaves every thread of the target
    running."""
    assert shutil.which("tmux"), "tmux is required (see scripts/install-deps)"
    from test_tui import Tmux
    t = start_target([cpython.path, S])  # hasher, compressor, sleeper
    # the pane's FUNCTION and FILE:LINE columns: "SHA256_Update   libcrypto.so.3+0x29f7f0"
    sha = re.compile(r"\S*(?i:sha256)\S* +(?:libcrypto|_sha256)\.\S*\+0x[0-9a-f]+$", re.M)
    defl = re.compile(r" deflate\S* +libz\.so[.0-9]*\+0x[0-9a-f]+$", re.M)
    tm = Tmux(tmp_path, width=160, height=60)
    try:
        tm.type("%s top -p %d -i 0.5 --native" % (sonde_bin, t.pid))
        tm.keys("Enter")
        tm.wait_for("hash_inner", timeout=30)
        tm.keys("2")  # sorted by total time: callers with their callees
        s = tm.wait_for(lambda s: bool("Sort total" in s and sha.search(s) and defl.search(s)),
                        timeout=30)
        assert "compress_inner" in s and "hash_inner" in s, s
        tm.keys("q")
        tm.assert_restored()
    finally:
        tm.kill()
    assert_all_running(t.pid)
    # not on a terminal: the plain table (its 25 top rows by own time: the
    # innermost functions, those without a symbol one row per unwind entry)
    # names them "name (module+0xOFFSET)"
    r = run_sonde(sonde_bin, "top", "-p", t.pid, "--native", "-d", 3, "-i", 1, timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    assert re.search(r"  \S+ \((?:libc|libz|libcrypto|_sha256)\.\S*\+0x[0-9a-f]+\)$", r.stdout,
                     re.M), r.stdout
    assert_all_running(t.pid)


def test_native_refused_in_agent(sonde_bin, tmp_path):
    """--native is out-of-process only: record --agent --native (launched
    or attached) and python -m sonde --native are refused with one sonde:
    line and the usage exit code, before anything runs or is written."""
    from test_agent import pkg_dir
    ran = tmp_path / "ran"
    script = tmp_path / "s.py"
    script.write_text("open(%r, 'w').close()\n" % str(ran))
    out = tmp_path / "a.sonde"
    for args in (["--native", "--", sys.executable, script],
                 ["--native-all", "--", sys.executable, script],
                 ["-p", os.getpid(), "--native"]):
        r = run_sonde(sonde_bin, "record", "--agent", "-o", out, *args)
        assert r.returncode == EXIT_USAGE, (args, r.stderr)
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("sonde: ") and "--native" in lines[0] \
            and "--agent" in lines[0], (args, r.stderr)
    env = dict(os.environ, PYTHONPATH=pkg_dir(sonde_bin))
    for opt in ("--native", "--native-all"):
        r = subprocess.run([sys.executable, "-m", "sonde", "-o", str(out), opt, str(script)],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == EXIT_USAGE, r.stderr
        first = r.stderr.splitlines()[0]
        assert first.startswith("sonde: %s " % opt) and "out-of-process" in first, r.stderr
    assert not ran.exists() and not out.exists()


# ---- libraries loaded and unloaded while sampled ----

DLCHURN = TARGETS / "native_dlchurn.py"
CHURN_C = TARGETS / "churnlib.c"


def build_churn_libs(outdir):
    for name in ("a", "b"):
        so = os.path.join(str(outdir), "libchurn%s.so" % name)
        r = subprocess.run(["gcc", "-g", "-O0", "-shared", "-fPIC", "-DLIBNAME=" + name, "-o", so,
                            str(CHURN_C)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    return str(outdir)


def test_record_native_libraries_replaced(sonde_bin, cpython, start_target, tmp_path):
    """A thread loads libchurna.so, spins in it, unloads it, then the same
    with libchurnb.so, over and over: each library is mapped where the
    other just was, and every one of them after the recording began. A
    native frame may only bear the name of the library the thread was in
    (known from its Python caller, call_a or call_b): a frame that cannot
    be vouched for is dropped (the stack counted as cut short), never named
    after the other library. The old maps, read once a second, named half
    of them wrong."""
    t = start_target([cpython.path, str(DLCHURN), build_churn_libs(tmp_path)])
    # the premise: the two libraries share addresses (the kernel reuses the hole)
    assert t.info["same_address"] >= t.info["rounds"] // 2, t.info
    out = str(tmp_path / "churn.sonde")
    record_native(sonde_bin, t.pid, out, "-r", "300", seconds=3)
    assert_all_running(t.pid)
    named = {"a": 0, "b": 0}
    for frames, weight in collapsed(sonde_bin, out):
        for lib, caller in (("a", "call_a "), ("b", "call_b ")):
            idx = [i for i, f in enumerate(frames) if f.startswith(caller)]
            if not idx:
                continue
            above = frames[idx[-1] + 1:]
            other = "b" if lib == "a" else "a"
            wrong = [f for f in above if "churn_%s_" % other in f or "libchurn%s." % other in f]
            assert not wrong, (caller, above)
            # what libffi called is the library, or nothing named: never a
            # module whose range does not hold it (libdwfl's lookup once
            # answered "_ctypes+0x15616a" for it)
            ffi = [i for i, f in enumerate(above) if "(libffi." in f]
            if ffi:
                called = above[ffi[-1] + 1:]
                wrong = [f for f in called
                         if "(libchurn%s.so+0x" % lib not in f and "(?+0x" not in f]
                assert not wrong, (caller, above)
            if any(f.startswith("churn_%s_" % lib) and "(libchurn%s.so+" % lib in f
                   for f in above):
                named[lib] += weight
    # libraries loaded during the recording are named (the maps read again)
    assert named["a"] > 0 and named["b"] > 0, named
    meta = recording_meta(out)
    assert int(meta["native_samples"]) > 0


# ---- threads that end while they are sampled ----

THREAD_CHURN = TARGETS / "thread_churn.py"


def test_record_native_threads_ending(sonde_bin, cpython, start_target, tmp_path):
    """A thread per request, each living about 32 ms, sampled at 500 Hz
    with native stacks: many end between the thread list's read and their
    stop, or while being stopped. Each such sample is counted (without
    native frames) or taken whole; the recording opens, no thread is left
    stopped, and the target goes on starting threads."""
    count = str(tmp_path / "count")
    t = start_target([cpython.path, str(THREAD_CHURN), count])
    out = str(tmp_path / "threads.sonde")
    record_native(sonde_bin, t.pid, out, "-r", "500", seconds=3)
    assert t.proc.poll() is None
    assert_all_running(t.pid)

    def started():
        try:
            with open(count) as f:
                return int(f.read() or 0)
        except (IOError, OSError, ValueError):
            return 0
    n0 = started()
    wait_for(lambda: started() > n0 + 40, 60, "the target starting threads again")
    meta = recording_meta(out)
    assert int(meta["native_samples"]) > 0, meta
    # the short threads' stacks: native frames (the libc wait under
    # time.sleep) above handle, the Python stack whole below them
    stacks = collapsed(sonde_bin, out)
    slept = under(stacks, "handle ", lambda f: "(libc.so" in f)
    assert slept > 0, [s for s, _ in stacks if any(f.startswith("handle ") for f in s)][:5]
    for frames, _ in stacks:
        idx = [i for i, f in enumerate(frames) if f.startswith("handle ")]
        if idx:
            py = [f.split(" (")[0] for f in frames[:idx[-1]] if not re.search(r"\(\S+\+0x", f)]
            assert py[-3:] == ["_bootstrap", "_bootstrap_inner", "run"] or \
                py[-3:] == ["__bootstrap", "__bootstrap_inner", "run"] or \
                py[-3:] == ["Thread._bootstrap", "Thread._bootstrap_inner", "Thread.run"], frames
