"""report --lines: line-level rows. The workload times its two hot lines
itself (a loop over each line, timed around it), and sonde's self time per
line must match those times; the call site's line carries the total."""
import json
import subprocess

from conftest import EXIT_OK

WORK = r"""
import json, sys, time
def work(seconds):
    spent = [0.0, 0.0]
    end = time.time() + seconds
    a = b = 0
    while time.time() < end:
        t0 = time.time()
        for i in range(3000): a += i  # @short
        t1 = time.time()
        for i in range(9000): b += i  # @long
        t2 = time.time()
        spent[0] += t1 - t0
        spent[1] += t2 - t1
    return spent
time.sleep(1.0)  # sonde launched this: let it attach before the timed work
spent = work(2.0)  # @call
sys.stdout.write(json.dumps(spent) + "\n")
"""


def line_of(tag):
    for n, l in enumerate(WORK.splitlines()):
        if "# @" + tag in l:
            return n + 1
    raise KeyError(tag)


def test_report_lines(sonde_bin, cpython, tmp_path):
    target = tmp_path / "lines_work.py"
    target.write_text(WORK)
    rec = tmp_path / "lines.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "-r", "500", "-o", rec, "--", cpython.path, str(target)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    short_s, long_s = json.loads(r.stdout.strip().splitlines()[-1])
    r = subprocess.run([sonde_bin, "report", "--lines", "--json", rec], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    lines = {(l["file"], l["line"]): l for l in json.loads(r.stdout)["lines"]}
    f = str(target)
    short, long_ = lines[(f, line_of("short"))], lines[(f, line_of("long"))]
    assert short["function"].endswith("work") and short["fn_line"] == 3
    # self time of each line against the time the workload measured there
    # (timer reads between the loops fall to neither: a few percent)
    for got, want in ((short["self_wall_s"], short_s), (long_["self_wall_s"], long_s)):
        assert abs(got - want) <= 0.2 * want + 0.05, (got, want, short, long_)
    # the call site: on the stack all along, never running itself
    call = lines[(f, line_of("call"))]
    assert call["total_wall_s"] >= short["self_wall_s"] + long_["self_wall_s"] - 0.02, call
    assert call["self_wall_s"] <= 0.05, call
    # the text: lines ranked by self time, the long loop's line first
    # (by CPU time: the wall time of the sleep before the work is idle)
    r = subprocess.run([sonde_bin, "report", "--lines", "--mode", "cpu", "--limit", "3", rec],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    rows = r.stdout.split("Top lines by CPU time", 1)[1].splitlines()[2:5]
    assert rows[0].endswith("(%s:%d)" % (f, line_of("long"))), r.stdout
    assert rows[1].endswith("(%s:%d)" % (f, line_of("short"))), r.stdout
