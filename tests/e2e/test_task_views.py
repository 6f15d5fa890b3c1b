"""asyncio tasks outside sonde report, under every supported CPython: sonde
export --task for each format (and the per-task tracks, profiles and labels
of a whole export), and sonde view's threads pane listing tasks under their
thread and filtering on one (driven through tmux)."""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import EXIT_OK, EXIT_USAGE, TARGETS, run_sonde  # noqa: E402
from test_tui import Tmux  # noqa: E402

pytestmark = pytest.mark.min_python((3, 8), "asyncio tasks are read on 3.8+ (no Task layout before)")

SCRIPT = TARGETS / "aio_work.py"
FORMATS = ["callgrind", "chrome", "html", "speedscope", "flamegraph", "collapsed", "pprof"]
_recs = {}


@pytest.fixture
def rec(sonde_bin, cpython, tmp_path_factory):
    """One recording of aio_work.py per interpreter: 3 computing tasks
    (comp-K), 3 waiting ones (wait-K), short ones; and its report."""
    key = str(cpython.path)
    if key not in _recs:
        out = tmp_path_factory.mktemp("taskviews") / "aio.sonde"
        r = run_sonde(sonde_bin, "record", "-q", "-r", 200, "-o", out, "--",
                      cpython.path, SCRIPT, 2.5, 3, 3, timeout=60)
        assert r.returncode == EXIT_OK, r.stderr
        r = run_sonde(sonde_bin, "report", "--json", out)
        assert r.returncode == EXIT_OK, r.stderr
        _recs[key] = (out, json.loads(r.stdout))
    return _recs[key]


def export(sonde_bin, path, fmt, *extra):
    r = run_sonde(sonde_bin, "export", "-f", fmt, "-o", "-", *extra, path)
    assert r.returncode == EXIT_OK, r.stderr
    return r.stdout


def green(doc, name):
    (g,) = [g for g in doc["green_threads"] if g["name"] == name]
    return g


def html_data(text):
    return json.loads(re.search(r'id="sonde-data">(.*?)</script>', text, re.S).group(1))


def test_export_task_every_format(sonde_bin, rec):
    path, doc = rec
    comp = green(doc, "comp-0")
    want_us = comp["wall_s"] * 1e6
    for fmt in FORMATS:
        if fmt == "pprof":
            r = subprocess.run([str(sonde_bin), "export", "-f", "pprof", "-o", "-", "--task",
                                "comp-0", str(path)], capture_output=True, timeout=60)
            assert r.returncode == EXIT_OK, r.stderr
            assert gzip.decompress(r.stdout)
            continue
        out = export(sonde_bin, path, fmt, "--task", "comp-0")
        assert "compute" in out, fmt
        if fmt == "collapsed":  # the task's running and suspended time, nothing else
            lines = out.splitlines()
            total = sum(int(l.rsplit(" ", 1)[1]) for l in lines)
            assert abs(total - want_us) <= len(lines) + 1, (total, want_us)
            assert not any("park" in l or "short_lived" in l for l in lines)
        if fmt == "callgrind":
            assert re.search(r"^desc: Task: task comp-0 \(compute\) on MainThread", out, re.M)
    # the task's id works as well as its name
    by_id = export(sonde_bin, path, "collapsed", "--task", str(comp["id"]))
    assert by_id == export(sonde_bin, path, "collapsed", "--task", "comp-0")


def test_export_unknown_task(sonde_bin, rec):
    path, _ = rec
    for fmt in FORMATS:
        r = run_sonde(sonde_bin, "export", "-f", fmt, "-o", "-", "--task", "no-such-task", path)
        assert r.returncode == EXIT_USAGE
        assert r.stderr.count("\n") == 1 and "no-such-task" in r.stderr, r.stderr


def test_chrome_task_tracks(sonde_bin, rec):
    path, doc = rec
    ev = json.loads(export(sonde_bin, path, "chrome"))["traceEvents"]
    tracks = {e["args"]["name"]: e["tid"] for e in ev
              if e["ph"] == "M" and e["name"] == "thread_name"}
    main_tid = green(doc, "comp-0")["tid"]
    assert main_tid in tracks.values()

    def slices(name):
        tid = tracks[name]
        return [e for e in ev if e["ph"] == "X" and e["tid"] == tid]

    comp = slices("task comp-0 (compute)")
    assert {e["name"] for e in comp} == {"running", "suspended"}
    assert all(e["cat"] == "task" for e in comp)
    run_us = sum(e["dur"] for e in comp if e["name"] == "running")
    # running: its thread's samples while it ran, about its running share
    assert run_us > 0.3 * green(doc, "comp-0")["running_pct"] / 100 * green(doc, "comp-0")["wall_s"] * 1e6
    wait = slices("task wait-0 (park)")
    assert wait and {e["name"] for e in wait} == {"suspended"}
    # sorted under its thread: after the thread's own tracks
    order = {e["tid"]: e["args"]["sort_index"] for e in ev
             if e["ph"] == "M" and e["name"] == "thread_sort_index"}
    assert order[tracks["task comp-0 (compute)"]] > order[main_tid]
    # --task: that task's track alone
    ev = json.loads(export(sonde_bin, path, "chrome", "--task", "wait-0"))["traceEvents"]
    names = [e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"]
    assert "task wait-0 (park)" in names
    assert not any(n.startswith("task ") and n != "task wait-0 (park)" for n in names)


def test_html_task_rows(sonde_bin, rec):
    path, _ = rec
    d = html_data(export(sonde_bin, path, "html"))
    susp = d["states"].index("suspended")
    rows = {t["name"]: t for t in d["threads"]}
    comp = rows["  task comp-0 (compute)"]
    wait = rows["  task wait-0 (park)"]
    assert comp.get("task") == 1 and wait.get("task") == 1
    states = lambda t: {t["runs"][k + 2] for k in range(0, len(t["runs"]), 5)}
    assert susp in states(comp) and states(comp) - {susp}
    assert states(wait) == {susp}
    # a task row comes after its thread's
    names = [t["name"] for t in d["threads"]]
    main = [n for n in names if n.startswith("MainThread")][0]
    assert names.index("  task comp-0 (compute)") > names.index(main)
    d = html_data(export(sonde_bin, path, "html", "--task", "comp-0"))
    assert len(d["threads"]) == 1, [t["name"] for t in d["threads"]]
    assert d["threads"][0]["name"].startswith("task comp-0 (compute) on MainThread")
    assert "task" not in d["threads"][0]  # its own row feeds the flame graph


def test_speedscope_task_profiles(sonde_bin, rec):
    path, doc = rec
    prof = json.loads(export(sonde_bin, path, "speedscope"))["profiles"]
    names = [p["name"] for p in prof]
    comp = [p for p in prof if p["name"].startswith("task comp-0 (compute) on MainThread")]
    assert len(comp) == 1, names
    assert any(n.startswith("MainThread") for n in names)  # the threads' too
    assert any(n.startswith("task wait-1 (park) on MainThread") for n in names)
    want = green(doc, "comp-0")["wall_s"] * 1e9
    assert abs(sum(comp[0]["weights"]) - want) <= 1e6, (sum(comp[0]["weights"]), want)
    only = json.loads(export(sonde_bin, path, "speedscope", "--task", "comp-0"))["profiles"]
    assert [p["name"] for p in only] == [comp[0]["name"]]


def test_pprof_task_label(sonde_bin, rec, tmp_path):
    path, _ = rec
    go = shutil.which("go")
    assert go, "go is not installed (golang-go, scripts/install-deps)"

    def tags(*extra):
        out = tmp_path / "p.pb.gz"
        r = run_sonde(sonde_bin, "export", "-f", "pprof", "-o", out, *extra, path)
        assert r.returncode == EXIT_OK, r.stderr
        r = subprocess.run([go, "tool", "pprof", "-tags", str(out)], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    t = tags()
    assert re.search(r"^\s*task: Total", t, re.M), t
    assert "comp-0 (compute)" in t and "comp-2 (compute)" in t
    assert "wait-0 (park)" not in t  # never ran: suspended samples only under --task
    t = tags("--task", "wait-0")
    assert "wait-0 (park)" in t and "comp-0" not in t


def test_view_lists_and_filters_tasks(sonde_bin, rec, tmp_path):
    path, _ = rec
    tmux = Tmux(tmp_path)
    try:
        tmux.type("%s view %s" % (sonde_bin, path))
        tmux.keys("Enter")
        tmux.wait_for("[1] call tree")
        tmux.keys("4")
        s = tmux.wait_for("(all threads)")
        lines = s.splitlines()

        def row_of(lines, pat):
            top = [i for i, l in enumerate(lines) if "(all threads)" in l][0]
            hit = [i for i, l in enumerate(lines) if re.search(pat, l)]
            return hit[0] - top if hit else None

        main = row_of(lines, r"^.MainThread ")
        assert main is not None, s
        # tasks under their thread: one by one, or by function past 40
        if row_of(lines, r"^.\s+comp-0\s") is None:
            grp = row_of(lines, r"^\s+\+ 3 tasks .*\bcompute$")
            assert grp is not None and grp > main, s
            tmux.keys(*["Down"] * grp, "Enter")
            s = tmux.wait_for(re.compile(r"comp-0\s"))
            lines = s.splitlines()
            tmux.keys("Up")
        else:
            tmux.keys("Up")
        task = row_of(lines, r"^.\s+comp-0\s")
        assert task is not None and task > main, s
        # back to the top, then down to the task
        tmux.keys(*["Up"] * 60)
        tmux.keys(*["Down"] * task, "Enter")
        s = tmux.wait_for("Thread task comp-0 (compute)")
        tmux.keys("1")
        s = tmux.wait_for(lambda s: "[1] call tree" in s and "compute" in s)
        assert "park" not in s and "short_lived" not in s, s
        tmux.keys("q")
        tmux.wait_for("$ ")
    finally:
        tmux.kill()
