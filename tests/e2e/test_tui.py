"""sonde top and sonde view, driven through tmux as a person would.

The target (targets/tui_work.py) runs three threads with distinctive
function names: MainThread in crunch_alpha_numbers -> crunch_alpha_leaf,
"beta-sleeper" in doze_beta_nap, "gamma-spinner" in spin_gamma_loop ->
spin_gamma_inner. Two interpreters are used (the oldest and the newest
supported minor version found), not every one: the TUI does not depend on
the version, the sampler's own tests cover them.
"""
import os
import re
import shutil
import subprocess
import sqlite3
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import SUPPORTED_FOUND, TARGETS, holds_for, require_enough_versions  # noqa: E402

TARGET = TARGETS / "tui_work.py"
FUNCS = ("crunch_alpha_leaf", "doze_beta_nap", "spin_gamma_inner")

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def _two_pythons():
    by_minor = {}
    for i in SUPPORTED_FOUND:
        by_minor.setdefault(i.minor, i)
    if not by_minor:
        return [pytest.param(None, id="none")]
    keys = sorted(by_minor)
    picks = [by_minor[keys[-1]]] + ([by_minor[keys[0]]] if len(keys) > 1 else [])
    return [pytest.param(p, id=p.version) for p in picks]


PYTHONS = _two_pythons()


@pytest.fixture(params=PYTHONS)
def py(request):
    require_enough_versions()
    return request.param


@pytest.fixture
def newest_py():
    require_enough_versions()
    return PYTHONS[0].values[0]


class Tmux:
    """One tmux server (private socket) with one window running bash."""

    def __init__(self, cwd, width=120, height=40):
        self.sock = "sonde-test-" + uuid.uuid4().hex[:8]
        self.t = "main"
        self.run("new-session", "-d", "-s", self.t, "-x", str(width), "-y", str(height), "-c",
                 str(cwd), "env PS1='$ ' TERM=screen-256color bash --norc --noprofile")
        self.run("set-option", "-t", self.t, "status", "off")
        self.wait_for("$", timeout=5)

    def run(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock] + list(args), capture_output=True,
                              text=True, timeout=10, check=check)

    def keys(self, *keys):
        self.run("send-keys", "-t", self.t, *keys)

    def type(self, text):
        self.run("send-keys", "-t", self.t, "-l", text)

    def screen(self):
        return self.run("capture-pane", "-t", self.t, "-p").stdout

    def display(self, fmt):
        return self.run("display-message", "-t", self.t, "-p", fmt).stdout.strip()

    def resize(self, w, h):
        self.run("resize-window", "-t", self.t, "-x", str(w), "-y", str(h))

    def wait_for(self, what, timeout=10, absent=False):
        """Wait until `what` (str, regex or predicate on the screen) holds."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.screen()
            if callable(what):
                ok = bool(what(s))  # (a predicate's None is a no, not a match)
            elif isinstance(what, re.Pattern):
                ok = bool(what.search(s))
            else:
                ok = what in s
            if ok != absent:
                return s
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %r%s; screen:\n%s"
                                     % (what, " to go" if absent else "", s))
            time.sleep(0.1)

    def assert_restored(self):
        """After q: the shell is back, no alternate screen, output prints normally."""
        deadline = time.monotonic() + 10
        while self.display("#{pane_current_command}") != "bash":
            assert time.monotonic() < deadline, "sonde did not exit: " + self.screen()
            time.sleep(0.1)
        assert self.display("#{alternate_on}") == "0"
        self.type("echo MARK-$((6*7))")
        self.keys("Enter")
        s = self.wait_for("MARK-42\n$")
        assert "MARK-42" in s

    def kill(self):
        self.run("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.kill()


def samples_of(screen):
    m = re.search(r"Samples (\d+)", screen)
    assert m, screen
    return int(m.group(1))


def thread_filter(screen):
    m = re.search(r"Thread (\S+)", screen)
    assert m, screen
    return m.group(1)


def cycle_thread_to(tmux, key, name, tries=6):
    """Press key until the header's thread filter is name (one change at a time)."""
    cur = thread_filter(tmux.screen())
    for _ in range(tries):
        if cur == name:
            return
        tmux.keys(key)
        prev = cur
        tmux.wait_for(lambda s: thread_filter(s) != prev)
        cur = thread_filter(tmux.screen())
    assert cur == name, tmux.screen()


# ---- sonde top ----

def test_top_live_keys(sonde_bin, py, start_target, tmux):
    t = start_target([py.path, TARGET])
    tmux.type("%s top -p %d -i 0.3" % (sonde_bin, t.pid))
    tmux.keys("Enter")
    s = tmux.wait_for(lambda s: all(f in s for f in FUNCS), timeout=15)
    assert "pid %d" % t.pid in s
    assert "Python " + py.version in s
    for label in ("Samples", "Errors", "CPU", "GIL held", "GIL wait", "Mode wall", "Sort own"):
        assert label in s
    assert "tui_work.py:" in s

    # help
    tmux.keys("?")
    s = tmux.wait_for(lambda s: "CUMULATIVE" in s and "sort by own time" in s)
    assert "pause" in s and "sort by own time" in s
    tmux.keys("x")
    tmux.wait_for("CUMULATIVE", absent=True)

    # sort keys: the header names the column, the sorted column is starred
    tmux.keys("2")
    s = tmux.wait_for(lambda s: "Sort total" in s and "*TOTAL%" in s)
    assert "*TOTAL%" in s
    tmux.keys("3")

    def name_rows(s):
        return [l.split()[4] for l in s.splitlines()[4:-1] if re.match(r"^\s+\d+\.\d", l)]

    s = tmux.wait_for(lambda s: "Sort function" in s and len(name_rows(s)) > 3
                      and name_rows(s) == sorted(name_rows(s)))
    tmux.keys("1")
    tmux.wait_for("Sort own")

    # modes
    tmux.keys("m")
    tmux.wait_for("Mode cpu")
    tmux.keys("m")
    tmux.wait_for("Mode gil")
    tmux.keys("w")
    tmux.wait_for("Mode wall")

    # threads pane and filter
    tmux.keys("t")
    s = tmux.wait_for(lambda s: "beta-sleeper" in s and "gamma-spinner" in s and "MainThread" in s)
    assert "gamma-spinner" in s and "MainThread" in s and "%WAIT" in s
    tmux.keys("Escape")
    tmux.wait_for("OWN%")
    cycle_thread_to(tmux, "]", "beta-sleeper")
    s = tmux.wait_for("doze_beta_nap")
    assert "crunch_alpha_leaf" not in s and "spin_gamma_inner" not in s
    tmux.keys("a")
    tmux.wait_for("Thread all")

    # pause: the numbers freeze; resume: they move again
    tmux.keys("p")
    s = tmux.wait_for("[PAUSED]")
    n = samples_of(s)
    # three refresh intervals (-i 0.3), every screen checked: none may move
    holds_for(lambda: samples_of(tmux.screen()) == n, 1.0, "the paused sample count %d" % n)
    tmux.keys("p")
    tmux.wait_for("[PAUSED]", absent=True)
    tmux.wait_for(lambda s: samples_of(s) > n)

    # resizes
    tmux.resize(80, 24)
    tmux.wait_for("sonde top")
    tmux.resize(40, 10)
    time.sleep(0.5)
    tmux.resize(20, 5)
    time.sleep(0.5)
    tmux.resize(80, 24)
    s = tmux.wait_for("doze_beta_nap")
    assert len(s.splitlines()[0]) <= 80

    tmux.keys("q")
    tmux.assert_restored()
    assert t.proc.poll() is None  # the attached target is left running


def test_top_launch_command(sonde_bin, newest_py, tmux):
    tmux.type("%s top -i 0.3 -- %s %s 3" % (sonde_bin, newest_py.path, TARGET))
    tmux.keys("Enter")
    tmux.wait_for(lambda s: all(f in s for f in FUNCS), timeout=15)
    tmux.wait_for("[sampling ended]", timeout=15)
    tmux.keys("q")
    tmux.assert_restored()


def test_top_plain_snapshots(sonde_bin, newest_py):
    r = subprocess.run([sonde_bin, "top", "-i", "0.5", "--", newest_py.path, str(TARGET), "2.5"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    snaps = r.stdout.split("sonde top: pid ")[1:]
    assert len(snaps) >= 3, r.stdout
    assert "\x1b" not in r.stdout
    last = snaps[-1]
    assert "(sampling ended)" in last
    for f in FUNCS:
        assert f in last
    assert re.search(r"OWN%\s+TOTAL%\s+OWN\s+TOTAL\s+FUNCTION", last)
    assert "beta-sleeper" in last and "gamma-spinner" in last
    # own = innermost, total = anywhere on the stack
    pct = {}
    for line in last.splitlines():
        m = re.match(r"^\s*(\d+\.\d)\s+(\d+\.\d)\s+\S+\s+\S+\s+(\S+) \(", line)
        if m:
            pct.setdefault(m.group(3), (float(m.group(1)), float(m.group(2))))
    leaf, caller = pct["crunch_alpha_leaf"], pct["crunch_alpha_numbers"]
    assert leaf[0] > 15 and abs(leaf[0] - leaf[1]) < 0.2, pct
    assert caller[0] < 5 and caller[1] >= leaf[1], pct


def test_top_plain_duration_attached(sonde_bin, newest_py, start_target):
    t = start_target([newest_py.path, TARGET])
    t0 = time.monotonic()
    r = subprocess.run([sonde_bin, "top", "-p", str(t.pid), "-i", "0.5", "-d", "1.5", "-m", "cpu"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 10
    assert "mode cpu" in r.stdout and "crunch_alpha_leaf" in r.stdout
    assert t.proc.poll() is None


# ---- sonde view ----

@pytest.fixture(scope="module")
def recording(tmp_path_factory, sonde_bin):
    require_enough_versions()
    py = PYTHONS[0].values[0]
    out = tmp_path_factory.mktemp("view") / "work.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "-o", out, "--", py.path, str(TARGET), "2.5"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out


def selected_line(tmux):
    """The selected row: tmux shows attributes only with -e; find it by colour codes."""
    s = tmux.run("capture-pane", "-t", tmux.t, "-p", "-e").stdout
    for line in s.splitlines()[3:]:
        if "\x1b[1m" in line and ("\x1b[30m" in line or "\x1b[43m" in line or "\x1b[7m" in line):
            return re.sub(r"\x1b\[[0-9;]*m", "", line)
    return ""


def test_view_keys(sonde_bin, recording, tmux):
    tmux.type("%s view %s" % (sonde_bin, recording))
    tmux.keys("Enter")
    s = tmux.wait_for("call tree")
    assert "TOTAL%" in s and "SELF%" in s
    # the hottest path is expanded: several "- " rows and a leaf below them
    assert len(re.findall(r"\s- \S", s)) >= 2, s
    assert "doze_beta_nap" in s or "crunch_alpha_leaf" in s or "spin_gamma_inner" in s

    # help
    tmux.keys("?")
    s = tmux.wait_for(lambda s: "hottest path" in s and "search" in s)
    assert "callers/callees" in s and "search" in s
    tmux.keys("z")
    tmux.wait_for("[1] call tree")

    # expand / collapse the first row
    tmux.keys("Home")
    before = tmux.screen()
    first = [l for l in before.splitlines()[3:] if l.strip()][0]
    assert " - " in first, first
    tmux.keys("Left")
    s = tmux.wait_for(lambda s: " + " in [l for l in s.splitlines()[3:] if l.strip()][0])
    assert len([l for l in s.splitlines()[3:-1] if l.strip()]) < \
        len([l for l in before.splitlines()[3:-1] if l.strip()])
    tmux.keys("Right")
    tmux.wait_for(lambda s: " - " in [l for l in s.splitlines()[3:] if l.strip()][0])

    # search: finds a function collapsed away, expands its callers, selects it
    tmux.keys("x")
    tmux.wait_for("crunch_alpha_leaf", absent=True)
    tmux.keys("/")
    tmux.type("alpha_LEAF")
    tmux.keys("Enter")
    s = tmux.wait_for(lambda s: "match 1/" in s and "crunch_alpha_numbers" in s)
    assert "crunch_alpha_leaf" in s and "crunch_alpha_numbers" in s
    assert "crunch_alpha_leaf" in selected_line(tmux)

    # callers / callees of the selection
    tmux.keys("3")
    s = tmux.wait_for(lambda s: "CALLERS of crunch_alpha_leaf" in s and "<- crunch" in s)
    assert re.search(r"<- crunch_alpha_numbers", s), s
    tmux.keys("/")
    tmux.type("crunch_alpha_numbers")
    tmux.keys("Enter")
    s = tmux.wait_for(lambda s: "CALLEES of crunch_alpha_numbers" in s and "-> crunch" in s)
    assert re.search(r"-> crunch_alpha_leaf", s) and re.search(r"<- main", s), s

    # flat list
    tmux.keys("2")
    s = tmux.wait_for(lambda s: "[2] flat" in s and all(f in s for f in FUNCS))
    for f in FUNCS:
        assert f in s

    # threads
    tmux.keys("4")
    s = tmux.wait_for(lambda s: "[4] threads" in s and "gamma-spinner" in s)
    for name in ("MainThread", "beta-sleeper", "gamma-spinner"):
        assert name in s
    assert "%WAIT" in s

    # timeline: one row per thread, state characters across the width
    tmux.keys("5")
    s = tmux.wait_for(lambda s: "[5] timeline" in s and "legend" in s)
    rows = [l for l in s.splitlines() if re.match(r"^.(MainThread|beta-sleeper|gamma-spinner)", l)]
    assert len(rows) == 3, s
    assert all(re.search(r"[#w=.]{20}", r[22:]) for r in rows), rows
    assert "legend" in s

    # thread filter and mode switch
    tmux.keys("1")
    tmux.wait_for("[1] call tree")
    cycle_thread_to(tmux, "t", "beta-sleeper")
    s = tmux.wait_for("Thread beta-sleeper")
    assert "doze_beta_nap" in s and "crunch_alpha_leaf" not in s
    tmux.keys("a")
    tmux.wait_for("Thread all")
    tmux.keys("m")
    tmux.wait_for("Mode cpu")
    tmux.keys("m")
    s = tmux.wait_for("Mode gil")
    tmux.keys("w")
    tmux.wait_for("Mode wall")

    # export from inside the view
    tmux.keys("e")
    tmux.wait_for("export as")
    tmux.keys("c")
    s = tmux.wait_for(re.compile(r"export(ed|er not available)"))
    if "exported" in s:
        out = str(recording)[:-len(".sonde")] + ".callgrind"
        assert os.path.exists(out)
        with open(out) as f:
            assert "crunch_alpha_leaf" in f.read()

    # resizes
    tmux.resize(80, 24)
    tmux.wait_for("sonde view")
    tmux.resize(30, 8)
    time.sleep(0.4)
    tmux.resize(12, 4)
    time.sleep(0.4)
    tmux.resize(80, 24)
    tmux.keys("5")
    tmux.wait_for("[5] timeline")
    tmux.keys("q")
    tmux.assert_restored()


def test_view_plain_prints_report(sonde_bin, recording):
    r = subprocess.run([sonde_bin, "view", str(recording)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "Top functions by wall time" in r.stdout
    for f in FUNCS:
        assert f in r.stdout
    assert "\x1b" not in r.stdout


def test_view_bad_file(sonde_bin, tmp_path):
    bad = tmp_path / "bad.sonde"
    bad.write_text("not a recording")
    r = subprocess.run([sonde_bin, "view", str(bad)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 8, (r.returncode, r.stderr)
    assert r.stderr.startswith("sonde: ")


def test_view_callers_callees_with_recursion(sonde_bin, tmp_path, tmux):
    """Synthetic recording (tests/unit/mkrec recursive): main -> f -> f -> ...,
    f -> g -> f, main -> leaf. A recursive call edge counts once per path."""
    mkrec = os.path.join(os.path.dirname(sonde_bin), "tests", "unit", "mkrec")
    if not os.access(mkrec, os.X_OK):
        pytest.skip("mkrec not built")
    rec = tmp_path / "rec.sonde"
    subprocess.run([mkrec, "recursive", str(rec)], check=True, timeout=30)
    tmux.type("%s view %s" % (sonde_bin, rec))
    tmux.keys("Enter")
    tmux.wait_for("[1] call tree")
    tmux.keys("2")
    tmux.wait_for("[2] flat")
    tmux.keys("/")
    tmux.type("f")
    tmux.keys("Enter")
    tmux.wait_for("match 1/")
    tmux.keys("Enter")
    s = tmux.wait_for(lambda s: "CALLEES of f " in s and "-> g" in s)

    def row(arrow, name):
        m = re.search(r"^\s*(\d+\.\d)\s.*%s %s\s" % (arrow, name), s, re.M)
        assert m, (arrow, name, s)
        return float(m.group(1))

    assert row("<-", "main") == 87.5
    assert row("<-", "f") == 75.0
    assert row("<-", "g") == 12.5
    assert row("->", "f") == 75.0
    assert row("->", "g") == 12.5
    assert "-> leaf" not in s
    tmux.keys("q")
    tmux.assert_restored()


def test_top_duration_on_a_terminal(sonde_bin, newest_py, start_target, tmux):
    t = start_target([newest_py.path, TARGET])
    tmux.type("%s top -p %d -i 0.3 -d 2; echo EXIT-$?" % (sonde_bin, t.pid))
    tmux.keys("Enter")
    tmux.wait_for("crunch_alpha_leaf", timeout=15)
    tmux.wait_for("EXIT-0", timeout=15)
    assert tmux.display("#{alternate_on}") == "0"
    assert t.proc.poll() is None


def test_view_deep_tree_shows_depth(sonde_bin, newest_py, tmp_path, tmux):
    """Past the indent the width allows, rows of a deep call tree show their
    depth ([N]) instead of all sitting at one indent."""
    target = tmp_path / "deep_spin.py"
    target.write_text(
        "import time\n"
        "def down(n):\n"
        "    if n == 0:\n"
        "        end = time.time() + 1.5\n"
        "        while time.time() < end:\n"
        "            pass\n"
        "        return 0\n"
        "    return down(n - 1) + 1\n"
        "down(60)\n")
    rec = tmp_path / "deep.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "-o", rec, "--", newest_py.path, str(target)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    tmux.type("%s view %s" % (sonde_bin, rec))
    tmux.keys("Enter")
    tmux.wait_for("[1] call tree")
    tmux.keys("End")
    s = tmux.wait_for(lambda s: re.search(r"\[\d+\] [-+ ] down ", s))
    depths = [int(d) for d in re.findall(r"\[(\d+)\] [-+ ] down ", s)]
    # consecutive rows of the hot path, one level apart, down to the bottom
    assert depths == list(range(depths[0], depths[0] + len(depths))), s
    assert depths[-1] >= 60, s
    tmux.keys("q")
    tmux.assert_restored()


def test_view_title_keeps_version_with_long_command(sonde_bin, tmp_path, tmux):
    """A long command line is what the title cuts, never the Python version."""
    mkrec = os.path.join(os.path.dirname(sonde_bin), "tests", "unit", "mkrec")
    rec = tmp_path / "rec.sonde"
    subprocess.run([mkrec, "recursive", str(rec)], check=True, timeout=30)
    db = sqlite3.connect(str(rec))
    db.execute("UPDATE meta SET value = ? WHERE key = 'cmd'",
               ("python3 -c " + "x = 1; " * 40,))
    version = db.execute("SELECT value FROM meta WHERE key = 'python_version'").fetchone()[0]
    db.commit()
    db.close()
    tmux.resize(120, 30)
    tmux.type("%s view %s" % (sonde_bin, rec))
    tmux.keys("Enter")
    s = tmux.wait_for("[1] call tree")
    title = [l for l in s.splitlines() if "sonde view" in l][0]
    assert "Python %s " % version in title, title
    assert "pid 4242" in title, title
    tmux.keys("q")
    tmux.assert_restored()
