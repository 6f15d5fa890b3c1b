"""sonde dump on a live multi-threaded target, under every supported CPython:
exact functions, files, lines, thread names, OS thread ids and GIL holder,
in both the JSON and the text output."""
import re
import time

import pytest

from conftest import TARGETS, dump_json, markers, run_sonde

SCRIPT = TARGETS / "threads.py"
M = markers(SCRIPT)
S = str(SCRIPT)


def boot_names(version):
    """Thread's own frames under a thread's function (2.7 spells them __x)."""
    u = "__" if version.startswith("2.") else "_"
    return ["run", u + "bootstrap_inner", u + "bootstrap"]


def expected_stacks(info):
    """Innermost-first [(function, file, line)] per thread name. Our frames
    come from the markers; threading.py's frames from the target's own view
    (sys._current_frames()), which is what the interpreter itself reports."""
    tf = info["threading_file"]
    boot = [tuple(f) for f in info["stacks"]["waiter"] if f[1] == tf][-3:]
    assert [f[0] for f in boot] == boot_names(info["version"]), boot
    waits = [tuple(f) for f in info["stacks"]["waiter"]][:2]
    assert [f[0] for f in waits] == ["wait", "wait"] and all(f[1] == tf for f in waits), waits
    return {
        "MainThread": [("main_park", S, M["main_park"]), ("main", S, M["main_call"]),
                       ("<module>", S, M["module_call"])],
        "waiter": waits + [("waiter_inner", S, M["waiter_inner"]),
                           ("waiter_outer", S, M["waiter_call"])] + boot,
        "sleeper": [("sleep_here", S, M["sleeper_inner"]),
                    ("sleeper_outer", S, M["sleeper_call"])] + boot,
        "spinner": [("spin_inner", S, M["spin"]), ("spin_outer", S, M["spin_call"])] + boot,
    }


def settled(doc, want):
    """The main thread prints 'ready' just before parking: allow it to get there."""
    frames = {t["name"]: t["frames"] for t in doc["threads"]}
    main = frames.get("MainThread") or [{}]
    return len(doc["threads"]) == len(want) and main[0].get("function") == "main_park"


def dump_settled(sonde_bin, pid, want, *extra):
    for _ in range(50):
        doc = dump_json(sonde_bin, pid, *extra)
        if settled(doc, want):
            break
        time.sleep(0.05)
    return doc


@pytest.fixture
def threads_target(cpython, start_target):
    t = start_target([cpython.path, S])
    assert t.info and t.info["version"] == cpython.version
    return t


def test_dump_json(sonde_bin, cpython, threads_target):
    t = threads_target
    want = expected_stacks(t.info)
    # the target's own view of its workers agrees with the markers
    for name in ("waiter", "sleeper", "spinner"):
        assert [tuple(f) for f in t.info["stacks"][name]] == want[name], name

    doc = dump_settled(sonde_bin, t.pid, want)
    assert doc["pid"] == t.pid
    assert doc["python_version"] == cpython.version
    got = {th["name"]: th for th in doc["threads"]}
    assert sorted(got) == sorted(want), [th["name"] for th in doc["threads"]]
    assert len(doc["threads"]) == 4
    # main thread first, OS thread ids as the target saw them
    assert doc["threads"][0]["name"] == "MainThread"
    assert doc["threads"][0]["tid"] == t.pid
    for name, th in got.items():
        assert th["tid"] == t.info["tids"][name], name
        stack = [(f["function"], f["file"], f["line"]) for f in th["frames"]]
        assert stack == want[name], "thread %s:\n got  %s\n want %s" % (name, stack, want[name])
    # GIL: at most one holder, never a thread blocked in sleep or a lock
    holders = [th["name"] for th in doc["threads"] if th["gil"]]
    assert len(holders) <= 1, holders
    for name in ("MainThread", "waiter", "sleeper"):
        assert got[name]["gil"] is False, name


def test_dump_spinner_holds_gil_most_of_the_time(sonde_bin, cpython, threads_target):
    """The spinner is the only thread that runs: whenever anyone holds the
    GIL in a sample it must be the spinner."""
    t = threads_target
    seen = 0
    for _ in range(10):
        doc = dump_json(sonde_bin, t.pid)
        holders = [th["name"] for th in doc["threads"] if th["gil"]]
        assert holders in ([], ["spinner"]), holders
        seen += holders == ["spinner"]
    assert seen >= 1, "the spinning thread was never seen holding the GIL"


LINE_THREAD = re.compile(r'^Thread (\d+) "([^"]*)"( \[holds the GIL\])?$')
LINE_FRAME = re.compile(r"^    (\S+) \((.+):(\d+)\)$")


def parse_text(out):
    lines = out.split("\n")
    head = re.match(r"^Process (\d+): Python (\S+) \((.+)\)$", lines[0])
    assert head, lines[0]
    threads, cur = [], None
    for line in lines[1:]:
        if not line:
            continue
        m = LINE_THREAD.match(line)
        if m:
            cur = {"tid": int(m.group(1)), "name": m.group(2), "gil": bool(m.group(3)),
                   "frames": []}
            threads.append(cur)
            continue
        m = LINE_FRAME.match(line)
        assert m and cur is not None, "unexpected line %r" % line
        cur["frames"].append((m.group(1), m.group(2), int(m.group(3))))
    return head, threads


def test_dump_text(sonde_bin, cpython, threads_target):
    t = threads_target
    want = expected_stacks(t.info)
    for _ in range(50):
        r = run_sonde(sonde_bin, "dump", "-p", t.pid)
        assert r.returncode == 0, r.stderr
        head, threads = parse_text(r.stdout)
        if len(threads) == 4 and threads[0]["frames"][0][0] == "main_park":
            break
        time.sleep(0.05)
    assert int(head.group(1)) == t.pid
    assert head.group(2) == cpython.version
    assert "python" in head.group(3) or "libpython" in head.group(3)
    assert [th["name"] for th in threads][0] == "MainThread"
    assert sorted(th["name"] for th in threads) == sorted(want)
    for th in threads:
        assert th["tid"] == t.info["tids"][th["name"]]
        assert th["frames"] == want[th["name"]], th["name"]
    assert sum(th["gil"] for th in threads) <= 1


def test_dump_qualname(sonde_bin, cpython, threads_target):
    """--qualname: Class.method where CPython has co_qualname (3.11+)."""
    t = threads_target
    doc = dump_json(sonde_bin, t.pid, "--qualname")
    sleeper = [th for th in doc["threads"] if th["name"] == "sleeper"][0]
    want = "Parker.sleep_here" if cpython.minor >= (3, 11) else "sleep_here"
    assert sleeper["frames"][0]["function"] == want
    assert sleeper["frames"][0]["line"] == M["sleeper_inner"]
    boot = [f["function"] for f in sleeper["frames"][-3:]]
    if cpython.minor >= (3, 11):
        assert boot == ["Thread.run", "Thread._bootstrap_inner", "Thread._bootstrap"]
    else:
        assert boot == boot_names(cpython.version)
