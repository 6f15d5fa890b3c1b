"""sonde top with asyncio tasks, under every supported CPython: the threads
pane lists tasks under their thread and Enter filters the function table on
one (its running samples and where it waits), driven through tmux; the
plain-text mode lists them too, grouped by function past 40 on a thread.

The target (targets/aio_work.py) runs on MainThread: comp-K computing in
burn() called from compute(), wait-K suspended in park -> hold the whole
run. Before 3.8 tasks have no name: sonde calls them by their coroutine
(compute, park), which several share, and they are told apart by the id
both panes show."""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import TARGETS  # noqa: E402
from test_tui import Tmux, newest_py, selected_line  # noqa: E402,F401

pytestmark = pytest.mark.min_python((3, 6), "asyncio tasks are read on 3.6+ (2.7 has no asyncio)")

SCRIPT = TARGETS / "aio_work.py"


@pytest.fixture(autouse=True)
def _tmux_installed():
    """tmux is one of scripts/install-deps' packages: its absence is a
    broken setup, not a reason to skip."""
    assert shutil.which("tmux"), "tmux is not installed: run scripts/install-deps"


def funcs_shown(screen):
    """Function names in the function table (rows after the column header)."""
    out = set()
    for line in screen.splitlines()[4:-1]:
        m = re.match(r"^\s+\d+\.\d\s+\d+\.\d\s+\S+\s+\S+\s+(\S+)", line)
        if m:
            out.add(m.group(1))
    return out


def task_rows(lines, name, plain=False):
    """The threads pane's rows of tasks called name: [(line index, id)]. A
    row is NAME, (the plain mode: ID) (the TUI: no PID) ID."""
    pat = r"^  %s\s+(\d+)\s" if plain else r"^.\s+%s\s+(\d+)\s"
    out = []
    for i, l in enumerate(lines):
        m = re.match(pat % re.escape(name), l)
        if m:
            out.append((i, int(m.group(1))))
    return out


def task_row(lines, name, minor, plain=False):
    """The row of the task the target calls name (comp-0, wait-0): by that
    name from 3.8; before, by its coroutine's, the first of several (the
    target starts 4 of each). (line index, its id)."""
    if minor >= (3, 8):
        (row,) = task_rows(lines, name, plain)
        return row
    func = "compute" if name.startswith("comp-") else "park"
    rows = task_rows(lines, func, plain)
    ids = [i for _, i in rows]
    assert len(rows) == 4 and len(set(ids)) == 4, "\n".join(lines)
    return rows[0]


def select_row(tmux, text, tries=40):
    """Move the threads pane's selection down from the top to the row with
    text (a str, or a compiled pattern)."""
    tmux.keys("Home")
    for _ in range(60):
        tmux.keys("Up")
    for _ in range(tries):
        line = selected_line(tmux)
        if (text.search(line) if isinstance(text, re.Pattern) else text in line):
            return
        prev = selected_line(tmux)
        tmux.keys("Down")
        tmux.wait_for(lambda s: selected_line(tmux) != prev, timeout=5)
    raise AssertionError("no row with %r: %s" % (text, tmux.screen()))


def test_top_lists_and_filters_tasks(sonde_bin, cpython, tmp_path):
    tmux = Tmux(tmp_path)
    try:
        tmux.type("%s top -i 0.3 -- %s %s 30 4 4" % (sonde_bin, cpython.path, SCRIPT))
        tmux.keys("Enter")
        tmux.wait_for("burn", timeout=20)
        # counters from here: the waiting tasks ran their one step (into
        # park, then hold) before the computing ones' first, and no more
        tmux.keys("R")
        tmux.wait_for("counters reset")
        tmux.keys("t")
        old = cpython.minor < (3, 8)
        # the thread's name (its comm until sonde reads threading's) and
        # every task of the target listed
        main_named = lambda s: re.search(r"^.MainThread\s", s, re.M)
        if old:
            s = tmux.wait_for(lambda s: main_named(s) and len(task_rows(s.splitlines(), "compute")) == 4
                              and len(task_rows(s.splitlines(), "park")) == 4, timeout=15)
        else:
            s = tmux.wait_for(lambda s: main_named(s) and "comp-0" in s and "wait-0" in s, timeout=15)
        lines = s.splitlines()
        main = [i for i, l in enumerate(lines) if re.match(r"^.MainThread\s", l)]
        assert main, s
        ids, label = {}, {}
        for name, func in (("comp-0", "compute"), ("wait-0", "park")):
            row, ids[name] = task_row(lines, name, cpython.minor)
            assert row > main[0], s
            # indented under its thread, with its function and running share
            assert lines[row][1] == " ", lines[row]
            assert func in lines[row] and "run" in lines[row], lines[row]
            # the filter's label: its name and id
            label[name] = "Task %s (%d)" % (func if old else name, ids[name])
        row_pat = {n: re.compile(r"^.\s+%s\s+%d\s" % ((f if old else n), ids[n]))
                   for n, f in (("comp-0", "compute"), ("wait-0", "park"))}

        # a waiting task: where it waits, none of the computing
        select_row(tmux, row_pat["wait-0"])
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: label["wait-0"] in s and {"park", "hold"} <= funcs_shown(s))
        assert "burn" not in funcs_shown(s), s

        # a computing task: its own samples while running
        tmux.keys("t")
        tmux.wait_for("(all threads)")
        select_row(tmux, row_pat["comp-0"])
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: label["comp-0"] in s and {"burn", "compute"} <= funcs_shown(s))
        assert not {"park", "hold"} & funcs_shown(s), s

        # the thread and every thread: no suspended task's samples
        tmux.keys("t")
        tmux.wait_for("(all threads)")
        select_row(tmux, "MainThread")
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: "Thread MainThread" in s and "burn" in funcs_shown(s))
        assert not {"park", "hold"} & funcs_shown(s), s
        tmux.keys("a")
        s = tmux.wait_for(lambda s: "Thread all" in s and "burn" in funcs_shown(s))
        assert not {"park", "hold"} & funcs_shown(s), s

        tmux.keys("q")
        tmux.assert_restored()
    finally:
        tmux.kill()


def test_top_groups_tasks(sonde_bin, newest_py, tmp_path):
    """45 waiting tasks on MainThread: one row "+ 45 tasks ... park" that
    Enter lists (then a task in it filters) and folds."""
    tmux = Tmux(tmp_path)
    try:
        tmux.type("%s top -i 0.3 -- %s %s 30 2 45" % (sonde_bin, newest_py.path, SCRIPT))
        tmux.keys("Enter")
        tmux.wait_for("burn", timeout=20)
        tmux.keys("t")
        s = tmux.wait_for(re.compile(r"\+ 45 tasks\s.*\spark"), timeout=15)
        assert "wait-0" not in s
        select_row(tmux, "45 tasks")
        tmux.keys("Enter")
        s = tmux.wait_for(re.compile(r"- 45 tasks\s.*\spark"))
        assert len(re.findall(r"^.\s+wait-\d+\s", s, re.M)) >= 10, s
        select_row(tmux, "wait-")
        name = re.search(r"(wait-\d+)", selected_line(tmux)).group(1)
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: "Task %s " % name in s and {"park", "hold"} <= funcs_shown(s))
        tmux.keys("t")
        select_row(tmux, "45 tasks")
        tmux.keys("Enter")
        tmux.wait_for(re.compile(r"\+ 45 tasks\s.*\spark"))
        tmux.wait_for(re.compile(r"^.\s+wait-\d+\s", re.M), absent=True)
        tmux.keys("q")
        tmux.assert_restored()
    finally:
        tmux.kill()


def test_top_plain_lists_tasks(sonde_bin, cpython):
    def run(*extra, waiters=4):
        r = subprocess.run([sonde_bin, "top", "-i", "0.5", "-d", "2", *extra, "--", cpython.path,
                            str(SCRIPT), "30", "4", str(waiters)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.split("sonde top: pid ")[-1]

    old = cpython.minor < (3, 8)
    last = run()
    lines = last.splitlines()
    (main,) = [i for i, l in enumerate(lines) if l.startswith("MainThread ")]
    for name, func in (("comp-0", "compute"), ("wait-0", "park")):
        row, _ = task_row(lines, name, cpython.minor, plain=True)
        assert row > main and lines[row].rstrip().endswith(func), last
        assert re.search(r"running \d+\.\d%", lines[row]), lines[row]

    # past 40 tasks on a thread: one row per function, with a count
    last = run(waiters=45)
    assert re.search(r"^  \+ 45 tasks\s.*\spark$", last, re.M), last
    assert not task_rows(last.splitlines(), "park" if old else "wait-0", plain=True), last
    assert "wait-0" not in last

    # --no-tasks: the threads alone
    last = run("--no-tasks")
    assert "MainThread" in last
    for name in ("compute", "park") if old else ("comp-0", "wait-0"):
        assert not task_rows(last.splitlines(), name, plain=True), last
    assert "comp-0" not in last and "wait-0" not in last
