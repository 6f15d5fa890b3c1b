"""sonde top with asyncio tasks, under every supported CPython: the threads
pane lists tasks under their thread and Enter filters the function table on
one (its running samples and where it waits), driven through tmux; the
plain-text mode lists them too, grouped by function past 40 on a thread.

The target (targets/aio_work.py) runs on MainThread: comp-K computing in
burn() called from compute(), wait-K suspended in park -> hold the whole
run."""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import TARGETS  # noqa: E402
from test_tui import Tmux, newest_py, selected_line  # noqa: E402,F401

pytestmark = pytest.mark.min_python((3, 8), "asyncio tasks are read on 3.8+ (no Task layout before)")

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


def select_row(tmux, text, tries=40):
    """Move the threads pane's selection down from the top to the row with text."""
    tmux.keys("Home")
    for _ in range(60):
        tmux.keys("Up")
    for _ in range(tries):
        if text in selected_line(tmux):
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
        tmux.keys("t")
        s = tmux.wait_for(lambda s: "comp-0" in s and "wait-0" in s, timeout=15)
        lines = s.splitlines()
        main = [i for i, l in enumerate(lines) if re.match(r"^.MainThread\s", l)]
        assert main, s
        for name, func in (("comp-0", "compute"), ("wait-0", "park")):
            (row,) = [i for i, l in enumerate(lines) if re.search(r"\s%s\s" % name, l)]
            assert row > main[0], s
            # indented under its thread, with its function and running share
            assert re.match(r"^.\s+%s\s" % name, lines[row]) and lines[row][1] == " ", lines[row]
            assert func in lines[row] and "run" in lines[row], lines[row]

        # a waiting task: where it waits, none of the computing
        select_row(tmux, "wait-0")
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: "Task wait-0" in s and {"park", "hold"} <= funcs_shown(s))
        assert "burn" not in funcs_shown(s), s

        # a computing task: its own samples while running
        tmux.keys("t")
        tmux.wait_for("(all threads)")
        select_row(tmux, "comp-0")
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: "Task comp-0" in s and {"burn", "compute"} <= funcs_shown(s))
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

    last = run()
    lines = last.splitlines()
    (main,) = [i for i, l in enumerate(lines) if l.startswith("MainThread ")]
    for name, func in (("comp-0", "compute"), ("wait-0", "park")):
        (row,) = [i for i, l in enumerate(lines) if l.startswith("  %s " % name)]
        assert row > main and lines[row].rstrip().endswith(func), last
        assert re.search(r"running \d+\.\d%", lines[row]), lines[row]

    # past 40 tasks on a thread: one row per function, with a count
    last = run(waiters=45)
    assert re.search(r"^  \+ 45 tasks\s.*\spark$", last, re.M), last
    assert "wait-0" not in last

    # --no-tasks: the threads alone
    last = run("--no-tasks")
    assert "comp-0" not in last and "wait-0" not in last and "MainThread" in last
