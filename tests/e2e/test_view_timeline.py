"""sonde view's timeline pane (5) with more threads than the screen has rows,
driven through tmux: the selection moves through every row (Down, PgDn,
End, Home), the pane scrolls to keep it visible, the title says which rows
it shows ("rows 36-70 of 121"), and Enter filters on the selected thread.

The recording (made once, with the newest CPython: 120 threads is the
heavier case, and the pane does not depend on the version) holds
MainThread and 120 threads named lane-000 .. lane-119, alive together
(and whatever other thread the interpreter runs)."""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import EXIT_OK  # noqa: E402
from test_tui import Tmux, newest_py  # noqa: E402,F401

LANES = 120
WORK = """\
import threading, time
go = threading.Event()
def lane():
    go.wait()
    end = time.monotonic() + 0.01
    while time.monotonic() < end:
        pass
    time.sleep(1.5)
ts = [threading.Thread(target=lane, name="lane-%03d" % i) for i in range({n})]
for t in ts:
    t.start()
go.set()
for t in ts:
    t.join()
""".format(n=LANES)

LANE = re.compile(r"^.lane-(\d{3}) ", re.M)
WHERE = re.compile(r"\[5\] timeline \(rows (\d+)-(\d+) of (\d+)\)")


@pytest.fixture(autouse=True)
def _tmux_installed():
    """tmux is one of scripts/install-deps' packages: its absence is a
    broken setup, not a reason to skip."""
    assert shutil.which("tmux"), "tmux is not installed: run scripts/install-deps"


def selected_line(tmux):
    """The pane's selected row, told by its attributes (bold, and the
    selection's colour or reverse video); "" when none is shown."""
    s = tmux.run("capture-pane", "-t", tmux.t, "-p", "-e").stdout
    for line in s.splitlines()[3:]:
        if re.match(r"(\x1b\[[0-9;]*m)*\x1b\[([0-9]+;)*1m", line) and ("\x1b[43m" in line or "\x1b[7m" in line):
            return re.sub(r"\x1b\[[0-9;]*m", "", line)
    return ""


def where(s):
    m = WHERE.search(s)
    assert m, s
    return tuple(int(g) for g in m.groups())


def test_view_timeline_scrolls_through_every_thread(sonde_bin, newest_py, tmp_path):
    target = tmp_path / "lanes.py"
    target.write_text(WORK)
    rec = tmp_path / "lanes.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "-o", str(rec), "--", newest_py.path, str(target)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    each = subprocess.run([sonde_bin, "report", "--threads", "all", str(rec)], capture_output=True,
                          text=True, timeout=60).stdout
    recorded = set(re.findall(r"lane-(\d{3})", each))
    assert len(recorded) == LANES, each

    tmux = Tmux(tmp_path, width=120, height=40)
    try:
        tmux.type("%s view %s" % (sonde_bin, rec))
        tmux.keys("Enter")
        tmux.wait_for("Thread all", timeout=20)
        tmux.keys("5")
        s = tmux.wait_for(lambda s: WHERE.search(s) and "legend" in s)
        first, last, total = where(s)
        assert first == 1 and total >= LANES + 1, s  # MainThread too
        page = last - first + 1
        assert 10 < page < total, s
        # all rows but maybe MainThread's and the row of the CPU of threads
        # that ended between two samples ("(threads that ended between
        # samples)", there when a lane's end fell between ticks)
        assert len(LANE.findall(s)) >= page - 2, s

        # Down selects the first row; then PgDn page by page: no row is
        # skipped, every thread is seen
        tmux.keys("Down")
        # (the first row: MainThread or a lane, as the pane orders them)
        tmux.wait_for(lambda s: selected_line(tmux).strip() != "")
        seen = set(LANE.findall(s))
        shown = last
        while shown < total:
            tmux.keys("NPage")
            s = tmux.wait_for(lambda s, shown=shown: WHERE.search(s) and where(s)[1] > shown)
            first, last, n = where(s)
            assert 1 < first <= shown + 1 and n == total, s
            shown = last
            seen |= set(LANE.findall(s))
        assert seen == recorded, sorted(recorded - seen)

        # Home, then End: the last row is visible and selected
        tmux.keys("Home")
        tmux.wait_for(lambda s: WHERE.search(s) and where(s)[0] == 1)
        tmux.keys("End")
        s = tmux.wait_for(lambda s: WHERE.search(s) and where(s)[1] == total)
        assert where(s) == (total - page + 1, total, total), s
        rows = s.splitlines()[3:3 + page]
        assert "legend" in s.splitlines()[3 + page], s
        sel = selected_line(tmux)
        assert sel and sel.strip() == rows[-1].strip(), (sel, rows[-1])

        # Up twice: the selection moves within the window, which stays put
        tmux.keys("Up", "Up")
        tmux.wait_for(lambda s: selected_line(tmux).strip() == rows[-3].strip())
        assert where(tmux.screen()) == (total - page + 1, total, total)

        # Enter filters on the selected thread, as before
        name = rows[-3][1:].split(" ")[0]
        tmux.keys("Enter")
        s = tmux.wait_for("Thread %s" % name)
        assert ">" + name in s, s
        tmux.keys("q")
        tmux.assert_restored()
    finally:
        tmux.kill()
