"""Many threads in sonde top and sonde view, driven through tmux.

top: a thread per request (targets/thread_churn.py: three keepers, then
Thread-N (handle) threads twenty at a time, each living ~35 ms) must not
grow the threads pane or sonde's memory with every thread that ever ran:
threads named alike are one row with their count, threads that ended leave
the list a few seconds later and are counted in a "+N ended" row, and the
aggregator drops them (its unit test, tests/unit/test_live.c, checks the
tables; here sonde's RSS is compared after 600 and after 2600 threads).

view: a recording of 30 Thread-N (handle) threads shows one group row
(Enter lists them), and --pid says which process "all threads" means."""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import EXIT_OK, TARGETS  # noqa: E402
from test_tui import Tmux, newest_py, selected_line  # noqa: E402,F401

CHURN = TARGETS / "thread_churn.py"
KEEPERS = ("keeper-alpha", "keeper-beta", "keeper-gamma")
ONE = re.compile(r"Thread-\d+ \(handle\)")


@pytest.fixture(autouse=True)
def _tmux_installed():
    """tmux is one of scripts/install-deps' packages: its absence is a
    broken setup, not a reason to skip."""
    assert shutil.which("tmux"), "tmux is not installed: run scripts/install-deps"


def started(countfile):
    try:
        with open(countfile) as f:
            return int(f.read() or 0)
    except (IOError, OSError, ValueError):
        return 0


def wait_started(countfile, n, timeout=240):
    deadline = time.monotonic() + timeout
    while started(countfile) < n:
        assert time.monotonic() < deadline, "the target started %d threads, not %d" % (started(countfile), n)
        time.sleep(0.1)


def select_row(tmux, pattern, tries=40):
    """Move the pane's selection down from the top to the row matching pattern."""
    tmux.keys("Home")
    for _ in range(tries):
        if re.search(pattern, selected_line(tmux)):
            return
        prev = selected_line(tmux)
        tmux.keys("Down")
        tmux.wait_for(lambda s: selected_line(tmux) != prev, timeout=5)
    raise AssertionError("no row matching %r: %s" % (pattern, tmux.screen()))


def pane_rows(screen):
    """The threads pane's rows (between its column header and the status line)."""
    lines = screen.splitlines()
    head = [i for i, l in enumerate(lines) if l.lstrip().startswith("THREAD")]
    assert head, screen
    return [l for l in lines[head[0] + 1:-1] if l.strip()]


def ended_count(screen):
    m = re.search(r"^\s*\+(\d+) ended\b", screen, re.M)
    return int(m.group(1)) if m else 0


def test_top_threads_pane_stays_bounded(sonde_bin, cpython, start_target, tmp_path):
    count = tmp_path / "count"
    t = start_target([cpython.path, CHURN, count])
    tmux = Tmux(tmp_path, width=140, height=30)
    try:
        tmux.type("%s top -p %d -i 0.3" % (sonde_bin, t.pid))
        tmux.keys("Enter")
        tmux.wait_for("Samples", timeout=20)
        tmux.keys("t")
        wait_started(count, 300)
        # a few seconds after their end, threads leave the list for the "+N ended" row
        s = tmux.wait_for(lambda s: ended_count(s) > 0 and "Thread-N (handle)" in s, timeout=60)
        rows = pane_rows(s)
        assert rows[0].strip().startswith("(all threads)"), s
        for k in KEEPERS + ("MainThread",):
            assert any(k in r for r in rows), s
        # the workers: one row with their count, none listed one by one
        grp = [r for r in rows if "Thread-N (handle)" in r]
        assert len(grp) == 1 and re.search(r"\sx(\d+)\s", grp[0]), s
        assert not any(ONE.search(r) for r in rows), s
        shown = int(re.search(r"\sx(\d+)\s", grp[0]).group(1)) + ended_count(s)
        assert shown <= started(count) + 20, s  # 20: a batch started since the count was written
        # the list: a handful of rows, not a row per thread that ever ran
        # (a thread that ended before its name was read is a "?" row of its
        # own until it is dropped: a few at most, and within the screen)
        named = [r for r in rows if not r.strip().startswith("?")]
        assert len(named) <= 10 and len(rows) <= 30 - 5, s

        # Enter on the group lists its members (alive or ended lately), within the screen
        select_row(tmux, r"Thread-N \(handle\)")
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: any(ONE.search(r) for r in pane_rows(s)), timeout=10)
        assert "- Thread-N (handle)" in s
        assert len(s.splitlines()) <= 30
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "+ Thread-N (handle)" in s and not any(ONE.search(r) for r in pane_rows(s)),
                      timeout=10)

        # the ended row filters the function table on the dropped threads: handle is theirs
        select_row(tmux, r"\+\d+ ended")
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: "ended threads)" in s and "handle" in s, timeout=10)
        assert "keep_alive" not in s, s
        tmux.keys("q")
        tmux.assert_restored()
    finally:
        tmux.kill()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def test_top_memory_does_not_follow_ended_threads(sonde_bin, newest_py, start_target, tmp_path):
    """sonde top's memory after 600 and after 2600 threads of a thread per
    request: kept, each would cost about 1 kB (threads, call-tree cells,
    maps: measured at 0.95 kB a thread with the dropping disabled), so 2000
    more would add about 2 MB; dropped, the two differ by little."""
    count = tmp_path / "count"
    t = start_target([newest_py.path, CHURN, count])
    # a sanitizer build keeps freed memory in quarantine (its RSS grows with
    # every free): no quarantine here, so RSS is what sonde holds
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:
        env["ASAN_OPTIONS"] += ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    top = subprocess.Popen([sonde_bin, "top", "-p", str(t.pid), "-i", "1"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=env)
    try:
        wait_started(count, 600)
        first = rss_kb(top.pid)
        wait_started(count, 2600)
        second = rss_kb(top.pid)
        assert top.poll() is None, top.stderr.read()
        print("sonde top RSS: %d kB after 600 threads, %d kB after 2600" % (first, second))
        assert second - first < 1024, "sonde top grew by %d kB over 2000 threads" % (second - first)
    finally:
        top.kill()
        top.wait()
        top.stderr.close()


# the report's thread-per-request workload (30 Thread-N (handle) and a
# long-named thread)
from test_report_threads import WORK  # noqa: E402



def test_view_groups_threads_and_names_the_pid(sonde_bin, cpython, tmp_path):
    target = tmp_path / "many.py"
    target.write_text(WORK)
    rec = tmp_path / "many.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "-r", "1000", "-o", str(rec), "--", cpython.path, str(target)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    each = subprocess.run([sonde_bin, "report", "--threads", "all", str(rec)], capture_output=True, text=True,
                          timeout=60).stdout
    n = len(set(ONE.findall(each)))
    assert n >= 5, each
    pid = int(re.search(r"^MainThread\s+(\d+)", each, re.M).group(1))

    tmux = Tmux(tmp_path, width=140, height=30)
    try:
        tmux.type("%s view --pid %d %s" % (sonde_bin, pid, rec))
        tmux.keys("Enter")
        s = tmux.wait_for("Thread all", timeout=20)
        # --pid: the filter says which process "all" is
        assert "Thread all (pid %d)" % pid in s, s
        tmux.keys("4")
        s = tmux.wait_for("(all threads of pid %d)" % pid)
        rows = pane_rows(s)
        grp = [l for l in rows if "Thread-N (handle)" in l]
        assert len(grp) == 1 and re.search(r"\s%d\s+x%d\s" % (pid, n), grp[0]), s
        assert not any(ONE.search(l) for l in rows), s
        # Enter lists the group's threads, Enter again folds them
        select_row(tmux, r"Thread-N \(handle\)")
        tmux.keys("Enter")
        s = tmux.wait_for(lambda s: "- Thread-N (handle)" in s)
        assert len(set(ONE.findall(s))) >= min(n, 20), s
        tmux.keys("Enter")
        tmux.wait_for(lambda s: "+ Thread-N (handle)" in s and not ONE.search(s))
        tmux.keys("q")
        tmux.assert_restored()

        # without --pid: "all" as before
        tmux.type("%s view %s" % (sonde_bin, rec))
        tmux.keys("Enter")
        s = tmux.wait_for("Thread all", timeout=20)
        assert "(pid" not in s.splitlines()[1], s
        tmux.keys("q")
        tmux.assert_restored()
    finally:
        tmux.kill()
