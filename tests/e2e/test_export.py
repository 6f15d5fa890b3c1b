"""sonde export: every format checked by its real consumer or by a
structural check written from the format's specification.

Synthetic recordings come from build/tests/unit/mkrec (deterministic); real
ones from `sonde record` on tests/e2e/targets/export_work.py under two
CPythons. Totals are compared with the recording itself (read with sqlite3).
"""
import gzip
import json
import os
import re
import shutil
import stat
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SONDE = os.environ.get("SONDE", str(ROOT / "build" / "sonde"))
MKREC = str(Path(SONDE).resolve().parent / "tests" / "unit" / "mkrec")
FORMATS = ["callgrind", "chrome", "html", "speedscope", "flamegraph", "collapsed", "pprof"]
EXT = {"callgrind": ".callgrind", "chrome": ".json", "html": ".html",
       "speedscope": ".speedscope.json", "flamegraph": ".svg", "collapsed": ".collapsed",
       "pprof": ".pb.gz"}


def sonde(*args, timeout=60):
    return subprocess.run([SONDE, *map(str, args)], capture_output=True, timeout=timeout)


def export(rec, fmt, *extra):
    out = Path(str(rec).replace(".sonde", "") + "." + fmt + ".out")
    r = sonde("export", "-f", fmt, "-o", out, *extra, rec)
    assert r.returncode == 0, r.stderr.decode()
    return out


def totals(rec, thread=None):
    """(wall µs, cpu µs, samples) as callgrind counts them: floored per sample."""
    db = sqlite3.connect(str(rec))
    q = "SELECT sum(wall_ns / 1000), sum(cpu_ns / 1000), count(*), sum(wall_ns), sum(cpu_ns) FROM sample"
    row = db.execute(q + (" WHERE thread = ?" if thread else ""), (thread,) if thread else ()).fetchone()
    db.close()
    return tuple(x or 0 for x in row)


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    out = {}
    for kind in ("recursive", "threads", "big"):
        p = d / (kind + ".sonde")
        subprocess.run([MKREC, kind, p, "30000"], check=True, timeout=60)
        out[kind] = p
    return out


# --- checks, one per format --------------------------------------------------

def check_callgrind(path, rec, thread=None):
    assert shutil.which("callgrind_annotate"), "valgrind's callgrind_annotate is required"
    wall, cpu, n = totals(rec, thread)[:3]
    for inclusive in ("no", "yes"):
        r = subprocess.run(["callgrind_annotate", "--inclusive=" + inclusive, str(path)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "WARNING" not in r.stderr, r.stderr
        c = r"([\d,]+)(?: \([\d.]+%\))?\s+"
        m = re.search(r"^\s*" + c * 3 + "PROGRAM TOTALS",
                      r.stdout, re.M)
        assert m, r.stdout[:2000]
        got = tuple(int(x.replace(",", "")) for x in m.groups())
        assert got == (wall, cpu, n)
        # per function: inclusive never exceeds the total (recursion is not inflated)
        for line in r.stdout.split("PROGRAM TOTALS", 1)[1].splitlines():
            fm = re.match(r"^\s*([\d,]+) \(", line)
            if fm:
                assert int(fm.group(1).replace(",", "")) <= wall, line
    return r.stdout


def check_pprof(path, rec):
    with gzip.open(path) as f:
        assert len(f.read()) > 0
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not installed (golang-go)")
    wall_us, cpu_us, n, wall_ns, cpu_ns = totals(rec)
    r = subprocess.run([go, "tool", "pprof", "-raw", str(path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"samples/count wall/nanoseconds(\[dflt\])? cpu/nanoseconds", r.stdout)
    sums = [0, 0, 0]
    for m in re.finditer(r"^\s+(\d+)\s+(\d+)\s+(\d+): [\d ]+", r.stdout, re.M):
        for i in range(3):
            sums[i] += int(m.group(i + 1))
    assert sums == [n, wall_ns, cpu_ns]
    for index, want in (("wall", wall_ns), ("cpu", cpu_ns)):
        r = subprocess.run([go, "tool", "pprof", "-top", "-unit=ns", "-sample_index=" + index,
                            str(path)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        m = re.search(r"of ([\d.e+]+)ns total", r.stdout)
        assert m, r.stdout[:1000]
        assert abs(float(m.group(1)) - want) <= max(1, want * 1e-4)
    return r.stdout


def check_speedscope(path):
    doc = json.loads(path.read_text())
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = doc["shared"]["frames"]
    assert frames and all(isinstance(f["name"], str) for f in frames)
    for f in frames:
        assert set(f) <= {"name", "file", "line", "col"}
        assert isinstance(f.get("file", ""), str) and isinstance(f.get("line", 0), int)
    assert doc["profiles"]
    assert 0 <= doc.get("activeProfileIndex", 0) < len(doc["profiles"])
    for p in doc["profiles"]:
        assert p["type"] == "sampled" and isinstance(p["name"], str)
        assert p["unit"] in ("none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes")
        assert len(p["samples"]) == len(p["weights"])
        assert p["endValue"] - p["startValue"] == sum(p["weights"])
        assert all(w > 0 for w in p["weights"])
        for s in p["samples"]:
            assert s and all(isinstance(i, int) and 0 <= i < len(frames) for i in s)
    return doc


def check_chrome(path, nthreads=None):
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    assert isinstance(events, list) and events
    names = {}
    open_be = {}
    for e in events:
        assert e["ph"] in ("X", "M", "B", "E"), e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "thread_sort_index")
            if e["name"] == "thread_name":
                names[(e["pid"], e["tid"])] = e["args"]["name"]
            continue
        assert isinstance(e["name"], str) and isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        if e["ph"] == "X":
            assert e["dur"] > 0, e
        else:
            open_be[(e["pid"], e["tid"])] = open_be.get((e["pid"], e["tid"]), 0) + (1 if e["ph"] == "B" else -1)
    assert all(v == 0 for v in open_be.values())
    # slices of one track nest properly: sorted by start, each one ends within its parent
    tracks = {}
    for e in events:
        if e["ph"] == "X":
            tracks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], -e["dur"], e))
    for key, evs in tracks.items():
        assert key in names, "track without a name: %r" % (key,)
        stack = []
        for ts, negdur, e in sorted(evs, key=lambda x: (x[0], x[1])):
            end = ts - negdur
            while stack and stack[-1] <= ts + 1e-6:
                stack.pop()
            if stack:
                assert end <= stack[-1] + 1e-3, (key, e)
            stack.append(end)
    gil_tracks = [n for n in names.values() if n.startswith("GIL: ")]
    if nthreads is not None:
        assert len(gil_tracks) == nthreads
    states = {e["name"] for e in events if e["ph"] == "X" and e.get("cat") == "gil"}
    assert states and states <= {"idle", "gil", "gil_wait", "nogil"}
    return doc


def check_svg(path):
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == ns + "svg"
    assert root.find(ns + "script") is not None
    groups = [g for g in root.iter(ns + "g") if g.get("class") == "f"]
    assert groups
    for g in groups:
        assert g.find(ns + "title") is not None and g.find(ns + "rect") is not None
        assert float(g.find(ns + "rect").get("width")) > 0
    text = path.read_text()
    assert not re.search(r"(src|href)=\"https?://", text)
    return groups


def check_html(path):
    text = path.read_text()
    assert not re.search(r"https?://", text), "the page must not reference the network"
    m = re.search(r'<script type="application/json" id="sonde-data">(.*?)</script>', text, re.S)
    assert m
    data = json.loads(m.group(1))
    for key in ("funcs", "stacks", "threads", "states", "t0", "t1"):
        assert key in data
    for t in data["threads"]:
        runs = t["runs"]
        assert len(runs) % 5 == 0
        for i in range(0, len(runs), 5):
            a, b, state, stack = runs[i:i + 4]
            assert a <= b and 0 <= state < 4 and 0 <= stack < len(data["stacks"])
    for parent, func in data["stacks"][1:]:
        assert 0 <= parent < len(data["stacks"]) and 0 <= func < len(data["funcs"])
    return data


def check_collapsed(path, rec, mode="wall"):
    total = 0
    for line in path.read_text().splitlines():
        m = re.match(r"^(\S.*) (\d+)$", line)
        assert m, line
        assert all(f for f in m.group(1).split(";"))
        total += int(m.group(2))
    lines = len(path.read_text().splitlines())
    want = totals(rec)[3 if mode == "wall" else 4] / 1000
    assert abs(total - want) <= lines
    return total


# --- synthetic recordings ------------------------------------------------------

@pytest.mark.parametrize("kind", ["recursive", "threads", "big"])
def test_callgrind_annotate_totals(recs, kind):
    out = check_callgrind(export(recs[kind], "callgrind"), recs[kind])
    if kind == "recursive":
        assert "rec.py:f" in out


def test_callgrind_recursion_not_inflated(recs):
    r = subprocess.run(["callgrind_annotate", "--inclusive=yes",
                        str(export(recs["recursive"], "callgrind"))],
                       capture_output=True, text=True, check=True)
    wall = totals(recs["recursive"])[0]
    f = re.search(r"^\s*([\d,]+) .*:f$", r.stdout, re.M)
    # f is on the stack of 7 of every 8 samples
    assert f and int(f.group(1).replace(",", "")) <= wall
    assert int(f.group(1).replace(",", "")) > wall * 0.8


def test_callgrind_per_thread(recs, tmp_path):
    out = tmp_path / "callgrind.out.4242"
    r = sonde("export", "-f", "callgrind", "--per-thread", "-o", out, recs["threads"])
    assert r.returncode == 0, r.stderr
    parts = sorted(tmp_path.glob("callgrind.out.4242-*"))
    assert [p.name[-3:] for p in parts] == ["-01", "-02", "-03"]
    for i, p in enumerate(parts, 1):
        text = p.read_text()
        assert ("part: %d\n" % i) in text and "thread: " in text
        check_callgrind(p, recs["threads"], thread=i)


def test_callgrind_cpu_mode_puts_cpu_first(recs):
    text = export(recs["threads"], "callgrind", "--mode", "cpu").read_text()
    assert "events: cpu_us wall_us samples" in text


@pytest.mark.parametrize("kind", ["recursive", "threads", "big"])
def test_pprof_go_tool(recs, kind):
    check_pprof(export(recs[kind], "pprof"), recs[kind])


def test_pprof_thread_labels(recs):
    go = shutil.which("go")
    if not go:
        pytest.skip("go is not installed (golang-go)")
    path = export(recs["threads"], "pprof")
    r = subprocess.run([go, "tool", "pprof", "-top", "-unit=ns", "-tagfocus=thread=worker-1",
                        str(path)], capture_output=True, text=True, check=True)
    m = re.search(r"accounting for ([\d.e+]+)ns", r.stdout)
    assert m and float(m.group(1)) == totals(recs["threads"], 2)[3]


@pytest.mark.parametrize("kind", ["recursive", "threads", "big"])
def test_speedscope_schema(recs, kind):
    doc = check_speedscope(export(recs[kind], "speedscope"))
    assert len(doc["profiles"]) == {"recursive": 1, "threads": 3, "big": 4}[kind]
    assert sum(sum(p["weights"]) for p in doc["profiles"]) == totals(recs[kind])[3]


def test_speedscope_cpu_mode(recs):
    doc = check_speedscope(export(recs["threads"], "speedscope", "--mode", "cpu"))
    assert sum(sum(p["weights"]) for p in doc["profiles"]) == totals(recs["threads"])[4]


@pytest.mark.parametrize("kind", ["recursive", "threads", "big"])
def test_chrome_trace(recs, kind):
    check_chrome(export(recs[kind], "chrome"), {"recursive": 1, "threads": 3, "big": 4}[kind])


def test_chrome_spans_track(recs):
    doc = check_chrome(export(recs["threads"], "chrome"))
    assert any(e["ph"] == "X" and e.get("cat") == "span" for e in doc["traceEvents"])


@pytest.mark.parametrize("kind", ["recursive", "threads", "big"])
def test_flamegraph_svg(recs, kind):
    groups = check_svg(export(recs[kind], "flamegraph"))
    if kind == "recursive":
        assert any(g.find("{http://www.w3.org/2000/svg}title").text.startswith("f (/app/rec.py:3)")
                   for g in groups)


@pytest.mark.parametrize("kind", ["recursive", "threads", "big"])
def test_html_offline(recs, kind):
    data = check_html(export(recs[kind], "html"))
    assert len(data["threads"]) == {"recursive": 1, "threads": 3, "big": 4}[kind]


@pytest.mark.parametrize("mode", ["wall", "cpu"])
def test_collapsed(recs, mode):
    for kind in ("recursive", "threads", "big"):
        check_collapsed(export(recs[kind], "collapsed", "--mode", mode), recs[kind], mode)


def test_collapsed_recursive_paths(recs):
    text = export(recs["recursive"], "collapsed").read_text()
    assert ("<module> (/app/rec.py:1);main (/app/rec.py:22);f (/app/rec.py:3);"
            "f (/app/rec.py:3);f (/app/rec.py:3) ") in text


# --- command line ------------------------------------------------------------------

def test_default_output_names(recs, tmp_path):
    rec = tmp_path / "run.sonde"
    shutil.copy(recs["recursive"], rec)
    for fmt in FORMATS:
        r = sonde("export", "-f", fmt, rec)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / ("run" + EXT[fmt])).stat().st_size > 0


def test_stdout(recs):
    r = sonde("export", "-f", "collapsed", "-o", "-", recs["recursive"])
    assert r.returncode == 0 and r.stdout.count(b"\n") > 3
    r = sonde("export", "-f", "pprof", "-o", "-", recs["recursive"])
    assert r.returncode == 0 and gzip.decompress(r.stdout)


def test_thread_filter(recs):
    r = sonde("export", "-f", "speedscope", "-o", "-", "--thread", "worker-2", recs["threads"])
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [p["name"] for p in doc["profiles"]] == ["worker-2 (4251)"]
    r = sonde("export", "-f", "speedscope", "-o", "-", "--thread", "4250", recs["threads"])
    assert [p["name"] for p in json.loads(r.stdout)["profiles"]] == ["worker-1 (4250)"]


def test_errors(recs, tmp_path):
    assert sonde("export", "-f", "nope", recs["recursive"]).returncode == 2
    assert sonde("export", recs["recursive"]).returncode == 2
    assert sonde("export", "-f", "chrome", "--mode", "idle", recs["recursive"]).returncode == 2
    assert sonde("export", "-f", "chrome", "--thread", "nobody", "-o", "-", recs["threads"]).returncode == 2
    bad = tmp_path / "bad.sonde"
    bad.write_bytes(b"not a database at all" * 100)
    r = sonde("export", "-f", "chrome", bad)
    assert r.returncode == 8 and r.stderr.startswith(b"sonde: ")
    r = sonde("export", "-f", "chrome", tmp_path / "missing.sonde")
    assert r.returncode != 0 and r.stderr.startswith(b"sonde: ")
    assert not (tmp_path / "missing.json").exists()


def test_full_disk(recs, tmp_path):
    """A write that fails (a full device, to a file or to stdout) gives a
    one-line error and exit 1; the output is removed only when it is a
    regular file, never when it is a device."""
    with open("/dev/full", "wb") as full:
        r = subprocess.run([SONDE, "export", "-f", "collapsed", "-o", "-", recs["big"]],
                           stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith(b"sonde: stdout: write error"), r.stderr
    if os.geteuid() != 0:
        pytest.skip("a device node of our own (mknod) needs root")
    dev = tmp_path / "full"
    os.mknod(str(dev), 0o600 | stat.S_IFCHR, os.makedev(1, 7))  # like /dev/full
    r = sonde("export", "-f", "speedscope", "-o", dev, recs["big"])
    assert r.returncode == 1 and b"write error" in r.stderr, r.stderr
    assert stat.S_ISCHR(os.stat(str(dev)).st_mode), "the device was removed"


# --- real recordings ------------------------------------------------------------------

def _pythons():
    out = subprocess.run([str(ROOT / "scripts" / "find-pythons")], capture_output=True, text=True).stdout.split()
    chosen, seen = [], set()
    for py in out:
        r = subprocess.run([py, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True)
        v = r.stdout.strip()
        if v in ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13") and v not in seen:
            seen.add(v)
            chosen.append(py)
    return chosen


@pytest.fixture(scope="module")
def real_recs(tmp_path_factory):
    # sonde record is part of sonde: a broken one fails here, it is no reason to skip
    r = sonde("record", "--help", timeout=10)
    assert r.returncode == 0, "sonde record --help: exit %d\n%s" % (r.returncode, r.stderr.decode(errors="replace"))
    pys = _pythons()
    assert len(pys) >= 2, "need at least two CPythons (scripts/find-pythons)"
    d = tmp_path_factory.mktemp("real")
    recs = []
    for py in [pys[0], pys[-1]]:   # newest and oldest supported
        out = d / ("work-%s.sonde" % Path(py).name)
        r = sonde("record", "-q", "-r", "200", "-o", out, "--", py,
                  ROOT / "tests" / "e2e" / "targets" / "export_work.py", "1.0", timeout=90)
        assert r.returncode == 0, r.stderr.decode()
        recs.append(out)
    return recs


def test_real_recordings_every_format(real_recs):
    for rec in real_recs:
        wall, cpu, n = totals(rec)[:3]
        assert n > 50
        out = check_callgrind(export(rec, "callgrind"), rec)
        assert "export_work.py:fib" in out
        check_pprof(export(rec, "pprof"), rec)
        doc = check_speedscope(export(rec, "speedscope"))
        names = {p["name"].split(" (")[0] for p in doc["profiles"]}
        # four threads; their names are the recorder's business (a thread it has
        # not named yet is "thread TID")
        assert len(doc["profiles"]) >= 4 and "MainThread" in names, names
        check_chrome(export(rec, "chrome"))
        groups = check_svg(export(rec, "flamegraph"))
        assert any("fib (" in g.get("data-n") for g in groups)
        check_html(export(rec, "html"))
        check_collapsed(export(rec, "collapsed"), rec)
        check_collapsed(export(rec, "collapsed", "--mode", "cpu"), rec, "cpu")


# --- the pages' scripts run (node, with a minimal stand-in for the DOM) ----------------

_DOM_STUB = r"""
var handlers = {}, els = {};
function el(id) {
  return {id: id, textContent: '', style: {}, clientWidth: 1000, width: 0, height: 0,
    firstChild: {style: {}}, appendChild: function () {},
    addEventListener: function (t, f) { handlers[id + ':' + t] = f; },
    getContext: function () {
      return new Proxy({measureText: function (s) { return {width: s.length * 6}; }},
        {get: function (o, k) { return k in o ? o[k] : function () {}; },
         set: function () { return true; }});
    }};
}
var document = {
  getElementById: function (i) {
    if (i === 'sonde-data') return {textContent: DATA};
    return els[i] || (els[i] = el(i));
  },
  createElement: function () { return el('x'); },
  createTextNode: function () { return {}; }};
var window = {devicePixelRatio: 1, addEventListener: function (t, f) { handlers['win:' + t] = f; }};
"""

_DOM_DRIVE = r"""
;handlers['tl:wheel']({preventDefault: function () {}, offsetX: 500, deltaY: -1});
handlers['tl:mousemove']({offsetX: 600, offsetY: 30});
handlers['tl:dblclick']({});
handlers['fg:mousemove']({offsetX: 100, offsetY: 5});
handlers['fg:click']({offsetX: 100, offsetY: 5});
if (!boxes.length || !els['details'].textContent) throw new Error('nothing drawn');
console.log('ok ' + boxes.length);
"""


@pytest.mark.parametrize("kind", ["recursive", "threads"])
def test_html_script_runs(recs, kind, tmp_path):
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.skip("node is not installed")
    text = export(recs[kind], "html").read_text()
    data = re.search(r'<script type="application/json" id="sonde-data">(.*?)</script>', text, re.S).group(1)
    script = re.findall(r"<script>(.*?)</script>", text, re.S)[-1]
    js = tmp_path / "page.js"
    js.write_text("var DATA = %s;\n%s\n%s\n%s" % (json.dumps(data), _DOM_STUB, script, _DOM_DRIVE))
    r = subprocess.run([node, str(js)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr


def test_svg_script_parses(recs, tmp_path):
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.skip("node is not installed")
    text = export(recs["recursive"], "flamegraph").read_text()
    js = tmp_path / "svg.js"
    js.write_text(re.search(r"<!\[CDATA\[(.*?)\]\]>", text, re.S).group(1))
    r = subprocess.run([node, "--check", str(js)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_svg_long_title_stays_clear_of_buttons(recs, tmp_path):
    """A long command line is cut in the title (whole in its tooltip), and the
    buttons have a row of their own, so the two never overlap."""
    rec = tmp_path / "long.sonde"
    shutil.copy(recs["recursive"], rec)
    cmd = "python3 -c " + "x = 1; " * 60 + "print('\u00e9t\u00e9')"
    db = sqlite3.connect(str(rec))
    db.execute("UPDATE meta SET value = ? WHERE key = 'cmd'", (cmd,))
    db.commit()
    db.close()
    root = ET.parse(export(rec, "flamegraph")).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = {t.get("id"): t for t in root.iter(ns + "text") if t.get("id")}
    title = texts["title"]
    shown = "".join(title.itertext())[len(title.find(ns + "title").text):]
    assert title.find(ns + "title").text.endswith(cmd)
    assert shown.endswith("\u2026") and len(shown) <= 111
    assert shown[:-1] in title.find(ns + "title").text
    for b in ("search", "unzoom"):
        assert texts[b].get("y") != title.get("y")


def test_pprof_keeps_module_names(recs, tmp_path):
    """go tool pprof drops a function name wholly inside <...> (it reads it
    as a C++ template argument): <module> must reach it under a name it keeps."""
    go = shutil.which("go")
    assert go, "go is not installed (scripts/install-deps installs golang-go)"
    rec = tmp_path / "mod.sonde"
    shutil.copy(recs["recursive"], rec)
    db = sqlite3.connect(str(rec))
    sid = db.execute("SELECT name FROM frame ORDER BY id LIMIT 1").fetchone()[0]
    db.execute("UPDATE string SET s = '<module>' WHERE id = ?", (sid,))
    db.commit()
    db.close()
    r = subprocess.run([go, "tool", "pprof", "-top", "-nodecount=1000", str(export(rec, "pprof"))],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"\s\(module\)$", r.stdout, re.M), r.stdout
    assert "<unknown>" not in r.stdout


def test_gil_mode_every_export(recs):
    """--mode gil weighs each sample by its wall time when its thread held
    the GIL, and nothing otherwise: every format's total is that sum."""
    rec = recs["threads"]
    db = sqlite3.connect(str(rec))
    gil_ns, gil_us, all_ns = db.execute(
        "SELECT sum(CASE WHEN state = 1 THEN wall_ns END), sum(CASE WHEN state = 1 THEN wall_ns / 1000 END),"
        " sum(wall_ns) FROM sample").fetchone()
    db.close()
    assert 0 < gil_ns < all_ns
    # callgrind: gil_us first, then wall, cpu, samples
    wall_us, cpu_us, n = totals(rec)[:3]
    r = subprocess.run(["callgrind_annotate", str(export(rec, "callgrind", "--mode", "gil"))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "WARNING" not in r.stderr, r.stderr
    c = r"([\d,]+)(?: \([\d.]+%\))?\s+"
    m = re.search(r"^\s*" + c * 4 + "PROGRAM TOTALS", r.stdout, re.M)
    assert m, r.stdout[:2000]
    assert tuple(int(x.replace(",", "")) for x in m.groups()) == (gil_us, wall_us, cpu_us, n)
    # collapsed: microseconds, rounded per stack
    out = export(rec, "collapsed", "--mode", "gil")
    lines = out.read_text().splitlines()
    assert abs(sum(int(x.rsplit(" ", 1)[1]) for x in lines) - gil_ns / 1000) <= len(lines)
    # speedscope: nanosecond weights
    doc = check_speedscope(export(rec, "speedscope", "--mode", "gil"))
    assert sum(sum(p["weights"]) for p in doc["profiles"]) == gil_ns
    # pprof: a fourth sample type, the default
    go = shutil.which("go")
    assert go, "go is not installed (scripts/install-deps installs golang-go)"
    r = subprocess.run([go, "tool", "pprof", "-raw", str(export(rec, "pprof", "--mode", "gil"))],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"samples/count wall/nanoseconds cpu/nanoseconds gil/nanoseconds\[dflt\]",
                     r.stdout), r.stdout[:500]
    got = sum(int(m.group(1)) for m in re.finditer(r"^\s+\d+\s+\d+\s+\d+\s+(\d+): [\d ]+",
                                                   r.stdout, re.M))
    assert got == gil_ns
    # flame graph and html: the mode is named
    assert "GIL-held time" in export(rec, "flamegraph", "--mode", "gil").read_text()
    assert '"mode":"gil"' in export(rec, "html", "--mode", "gil").read_text()
    r = sonde("export", "-f", "collapsed", "--mode", "idle", "-o", "-", rec)
    assert r.returncode == 2 and b"wall, cpu or gil" in r.stderr


def test_html_timeline_axis_ticks(recs, tmp_path):
    """The timeline's axis has ticks at round steps in the unit of the time
    shown (a 2 s view reads 0.0 s ... 2.0 s, never "0.0 us")."""
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is required (scripts/install-deps installs nodejs)"
    text = export(recs["threads"], "html").read_text()
    m = re.search(r"function axisTicks.*?return out;\}", text, re.S)
    assert m
    js = tmp_path / "ticks.js"
    js.write_text(m.group(0) + "\nconsole.log(JSON.stringify([axisTicks(0,2e9,10),"
                  "axisTicks(0,3.5e6,8),axisTicks(1234567,1239567,5),axisTicks(0,0,5)]));")
    r = subprocess.run([node, str(js)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    s2, ms, fine, empty = json.loads(r.stdout)
    assert [l for _, l in s2] == ["%.1f s" % (i / 5) for i in range(11)]
    assert [l for _, l in ms] == ["%.1f ms" % (i / 2) for i in range(8)]
    assert [l for _, l in fine] == ["1.%03d ms" % i for i in range(235, 240)]
    assert [v for v, _ in fine] == [1235000 + 1000 * i for i in range(5)]
    assert empty == [[0, "0 ns"]]
