"""asyncio tasks outside sonde report, under every supported CPython: sonde
export --task for each format (and the per-task tracks, profiles and labels
of a whole export), and sonde view's threads pane listing tasks under their
thread and filtering on one (driven through tmux). Tasks are found by
address (the target prints id(task)); before 3.8 they have no name: sonde
calls them by their coroutine, several tasks share that name, and every
label of one adds its id ("task compute #3 (compute)") so they stay apart."""
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

pytestmark = pytest.mark.min_python((3, 6), "asyncio tasks are read on 3.6+ (2.7 has no asyncio)")

SCRIPT = TARGETS / "aio_work.py"
FORMATS = ["callgrind", "chrome", "html", "speedscope", "flamegraph", "collapsed", "pprof"]
_recs = {}


class Rec:
    """A recording of aio_work.py, its report and the tasks' ids."""

    def __init__(self, path, doc, truth, minor):
        self.path, self.doc, self.truth, self.minor = path, doc, truth, minor

    def green(self, name):
        """The lane of the task the target calls name (comp-0, wait-1)."""
        (g,) = [g for g in self.doc["green_threads"] if g["address"] == self.truth["ids"][name]]
        func = "compute" if name.startswith("comp-") else "park"
        assert g["name"] == (name if self.minor >= (3, 8) else func), g
        return g

    def arg(self, name):
        """What --task takes for it: its name from 3.8, else (a name several
        tasks share) its id."""
        return name if self.minor >= (3, 8) else str(self.green(name)["id"])

    def tag(self, name):
        """Its pprof label: "comp-0 (compute)", before 3.8 "compute #3 (compute)"."""
        g = self.green(name)
        if self.minor >= (3, 8):
            return "%s (%s)" % (name, g["function"])
        return "%s #%d (%s)" % (g["name"], g["id"], g["function"])

    def title(self, name):
        """Its label in every view: "task " + its tag."""
        return "task " + self.tag(name)


@pytest.fixture
def rec(sonde_bin, cpython, tmp_path_factory):
    """One recording of aio_work.py per interpreter: 3 computing tasks
    (comp-K), 3 waiting ones (wait-K), short ones; its report; the ids the
    target printed."""
    key = str(cpython.path)
    if key not in _recs:
        out = tmp_path_factory.mktemp("taskviews") / "aio.sonde"
        r = run_sonde(sonde_bin, "record", "-q", "-r", 200, "-o", out, "--",
                      cpython.path, SCRIPT, 2.5, 3, 3, timeout=60)
        assert r.returncode == EXIT_OK, r.stderr
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        assert lines, r.stdout
        truth = json.loads(lines[-1])
        r = run_sonde(sonde_bin, "report", "--json", out)
        assert r.returncode == EXIT_OK, r.stderr
        _recs[key] = Rec(out, json.loads(r.stdout), truth, cpython.minor)
    return _recs[key]


def export(sonde_bin, path, fmt, *extra):
    r = run_sonde(sonde_bin, "export", "-f", fmt, "-o", "-", *extra, path)
    assert r.returncode == EXIT_OK, r.stderr
    return r.stdout


def html_data(text):
    return json.loads(re.search(r'id="sonde-data">(.*?)</script>', text, re.S).group(1))


def test_export_task_every_format(sonde_bin, rec):
    path = rec.path
    comp = rec.green("comp-0")
    want_us = comp["wall_s"] * 1e6
    for fmt in FORMATS:
        if fmt == "pprof":
            r = subprocess.run([str(sonde_bin), "export", "-f", "pprof", "-o", "-", "--task",
                                rec.arg("comp-0"), str(path)], capture_output=True, timeout=60)
            assert r.returncode == EXIT_OK, r.stderr
            assert gzip.decompress(r.stdout)
            continue
        out = export(sonde_bin, path, fmt, "--task", rec.arg("comp-0"))
        assert "compute" in out, fmt
        if fmt == "collapsed":  # the task's running and suspended time, nothing else
            lines = out.splitlines()
            total = sum(int(l.rsplit(" ", 1)[1]) for l in lines)
            assert abs(total - want_us) <= len(lines) + 1, (total, want_us)
            assert not any("park" in l or "short_lived" in l for l in lines)
        if fmt == "callgrind":
            assert re.search(r"^desc: Task: %s on MainThread" % re.escape(rec.title("comp-0")), out,
                             re.M), out[:500]
    # the task's id works as well as its name; before 3.8 its name is its
    # coroutine's, which the three computing tasks share: refused
    by_id = export(sonde_bin, path, "collapsed", "--task", str(comp["id"]))
    assert by_id == export(sonde_bin, path, "collapsed", "--task", rec.arg("comp-0"))
    r = run_sonde(sonde_bin, "export", "-f", "collapsed", "-o", "-", "--task", comp["name"], path)
    if rec.minor >= (3, 8):
        assert r.returncode == EXIT_OK and r.stdout == by_id, r.stderr
    else:
        assert r.returncode == EXIT_USAGE and "3 green threads are named 'compute'" in r.stderr, r.stderr


def test_export_unknown_task(sonde_bin, rec):
    path = rec.path
    for fmt in FORMATS:
        r = run_sonde(sonde_bin, "export", "-f", fmt, "-o", "-", "--task", "no-such-task", path)
        assert r.returncode == EXIT_USAGE
        assert r.stderr.count("\n") == 1 and "no-such-task" in r.stderr, r.stderr


def test_chrome_task_tracks(sonde_bin, rec):
    path = rec.path
    ev = json.loads(export(sonde_bin, path, "chrome"))["traceEvents"]
    named = [(e["args"]["name"], e["tid"]) for e in ev if e["ph"] == "M" and e["name"] == "thread_name"]
    tracks = dict(named)
    assert len(tracks) == len(named), named  # one name per track: every task's its own
    main_tid = rec.green("comp-0")["tid"]
    assert main_tid in tracks.values()

    def slices(name):
        tid = tracks[name]
        return [e for e in ev if e["ph"] == "X" and e["tid"] == tid]

    comp = slices(rec.title("comp-0"))
    assert {e["name"] for e in comp} == {"running", "suspended"}
    assert all(e["cat"] == "task" for e in comp)
    run_us = sum(e["dur"] for e in comp if e["name"] == "running")
    # running: its thread's samples while it ran, about its running share
    g = rec.green("comp-0")
    assert run_us > 0.3 * g["running_pct"] / 100 * g["wall_s"] * 1e6
    wait = slices(rec.title("wait-0"))
    assert wait and {e["name"] for e in wait} == {"suspended"}
    # sorted under its thread: after the thread's own tracks
    order = {e["tid"]: e["args"]["sort_index"] for e in ev
             if e["ph"] == "M" and e["name"] == "thread_sort_index"}
    assert order[tracks[rec.title("comp-0")]] > order[main_tid]
    # --task: that task's track alone
    ev = json.loads(export(sonde_bin, path, "chrome", "--task", rec.arg("wait-0")))["traceEvents"]
    names = [e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"]
    assert rec.title("wait-0") in names
    assert not any(n.startswith("task ") and n != rec.title("wait-0") for n in names)


def test_html_task_rows(sonde_bin, rec):
    path = rec.path
    d = html_data(export(sonde_bin, path, "html"))
    susp = d["states"].index("suspended")
    rows = {t["name"]: t for t in d["threads"]}
    assert len(rows) == len(d["threads"]), [t["name"] for t in d["threads"]]
    comp = rows["  " + rec.title("comp-0")]
    wait = rows["  " + rec.title("wait-0")]
    assert comp.get("task") == 1 and wait.get("task") == 1
    states = lambda t: {t["runs"][k + 2] for k in range(0, len(t["runs"]), 5)}
    assert susp in states(comp) and states(comp) - {susp}
    assert states(wait) == {susp}
    # a task row comes after its thread's
    names = [t["name"] for t in d["threads"]]
    main = [n for n in names if n.startswith("MainThread")][0]
    assert names.index("  " + rec.title("comp-0")) > names.index(main)
    d = html_data(export(sonde_bin, path, "html", "--task", rec.arg("comp-0")))
    assert len(d["threads"]) == 1, [t["name"] for t in d["threads"]]
    assert d["threads"][0]["name"].startswith(rec.title("comp-0") + " on MainThread")
    assert "task" not in d["threads"][0]  # its own row feeds the flame graph


def test_speedscope_task_profiles(sonde_bin, rec):
    path = rec.path
    prof = json.loads(export(sonde_bin, path, "speedscope"))["profiles"]
    names = [p["name"] for p in prof]
    assert len(set(names)) == len(names), names
    comp = [p for p in prof if p["name"].startswith(rec.title("comp-0") + " on MainThread")]
    assert len(comp) == 1, names
    assert any(n.startswith("MainThread") for n in names)  # the threads' too
    assert any(n.startswith(rec.title("wait-1") + " on MainThread") for n in names)
    want = rec.green("comp-0")["wall_s"] * 1e9
    assert abs(sum(comp[0]["weights"]) - want) <= 1e6, (sum(comp[0]["weights"]), want)
    only = json.loads(export(sonde_bin, path, "speedscope", "--task", rec.arg("comp-0")))["profiles"]
    assert [p["name"] for p in only] == [comp[0]["name"]]


def test_pprof_task_label(sonde_bin, rec, tmp_path):
    path = rec.path
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
    # every computing task its own value
    for k in range(3):
        assert re.search(r"^.*%%\): %s$" % re.escape(rec.tag("comp-%d" % k)), t, re.M), t
    assert rec.tag("wait-0") not in t  # never ran: suspended samples only under --task
    t = tags("--task", rec.arg("wait-0"))
    assert rec.tag("wait-0") in t and rec.tag("comp-0") not in t


def test_view_lists_and_filters_tasks(sonde_bin, rec, tmp_path):
    path = rec.path
    # the task's row: NAME PID ID (its name, before 3.8 its coroutine's with its id)
    g = rec.green("comp-0")
    pat = r"^.\s+comp-0\s" if rec.minor >= (3, 8) else r"^.\s+compute\s+\d+\s+%d\s" % g["id"]
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
        if row_of(lines, pat) is None:
            grp = row_of(lines, r"^\s+\+ 3 tasks .*\bcompute$")
            assert grp is not None and grp > main, s
            tmux.keys(*["Down"] * grp, "Enter")
            s = tmux.wait_for(re.compile(pat, re.M))
            lines = s.splitlines()
            tmux.keys("Up")
        else:
            tmux.keys("Up")
        task = row_of(lines, pat)
        assert task is not None and task > main, s
        # back to the top, then down to the task
        tmux.keys(*["Up"] * 60)
        tmux.keys(*["Down"] * task, "Enter")
        s = tmux.wait_for("Thread " + rec.title("comp-0"))
        tmux.keys("1")
        s = tmux.wait_for(lambda s: "[1] call tree" in s and "compute" in s)
        assert "park" not in s and "short_lived" not in s, s
        tmux.keys("q")
        tmux.wait_for("$ ")
    finally:
        tmux.kill()
