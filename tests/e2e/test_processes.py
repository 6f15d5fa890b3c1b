"""A recording of several processes (record --subprocesses): every view tells
them apart. The report has a PID column and a process table with each
command and each GIL's own figures; report --json threads carry "pid";
--thread takes PID:NAME and refuses a name several threads share (listing
them); --pid filters report, export and view; the exports label processes
(chrome process names, one HTML flame graph root per process, speedscope
profile names, callgrind's pid per thread file); top's threads pane has a
PID column. Ground truth: the pids the target processes print themselves."""
import json
import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from conftest import EXIT_OK, EXIT_USAGE, SUPPORTED_FOUND, require_enough_versions, run_sonde
from test_export import _DOM_DRIVE, _DOM_STUB

PARENT = r"""
import os, subprocess, sys, time
def parent_only_work(s):
    end = time.monotonic() + s
    while time.monotonic() < end:
        sum(range(1000))
os.write(1, ("parent %d\n" % os.getpid()).encode())  # one write: the children print too
kids = [subprocess.Popen([sys.executable, sys.argv[1], str(i)]) for i in range(2)]
parent_only_work(0.8)
for k in kids:
    k.wait()
"""

CHILD = r"""
import os, sys, threading, time  # threading: the main thread has its name
def child_only_work(s):
    end = time.monotonic() + s
    while time.monotonic() < end:
        sum(range(1000))
os.write(1, ("child %d\n" % os.getpid()).encode())  # one write: its sibling prints too
child_only_work(1.2)
"""


@pytest.fixture(scope="module")
def rec(tmp_path_factory, sonde_bin):
    """(recording, parent pid, [child pids]) of a parent and two children."""
    require_enough_versions()
    found = sorted(SUPPORTED_FOUND, key=lambda i: i.minor)
    py = ([i for i in found if i.path.startswith("/usr/")] or found)[-1]
    d = tmp_path_factory.mktemp("procs")
    (d / "parent.py").write_text(PARENT)
    (d / "child.py").write_text(CHILD)
    out = d / "p.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "--subprocesses", "-o", str(out), "--", py.path,
                        str(d / "parent.py"), str(d / "child.py")],
                       capture_output=True, text=True, timeout=60, cwd=str(d))
    assert r.returncode == EXIT_OK, r.stderr
    pids = {}
    for line in r.stdout.split("\n"):
        if line:
            parts = line.split()
            assert len(parts) == 2, r.stdout
            who, pid = parts
            pids.setdefault(who, []).append(int(pid))
    assert len(pids["parent"]) == 1 and len(pids["child"]) == 2, r.stdout
    db = sqlite3.connect(str(out))
    recorded = {p for (p,) in db.execute("SELECT pid FROM process")}
    db.close()
    assert recorded >= set(pids["parent"] + pids["child"]), (recorded, pids)
    return out, pids["parent"][0], pids["child"]


def report_json(sonde_bin, path, *args):
    r = run_sonde(sonde_bin, "report", "--json", *args, path)
    assert r.returncode == EXIT_OK, r.stderr
    return json.loads(r.stdout)


def test_report_shows_processes(sonde_bin, rec):
    path, parent, children = rec
    r = run_sonde(sonde_bin, "report", path)
    assert r.returncode == EXIT_OK, r.stderr
    lines = r.stdout.split("\n")
    head = next(l for l in lines if l.startswith("THREAD "))
    assert head.split()[:3] == ["THREAD", "PID", "TID"], head
    rows = [l.split() for l in lines[lines.index(head) + 1:] if l.startswith("MainThread ")]
    assert {int(x[1]) for x in rows} >= {parent, *children}, rows
    # the process table: each pid with its own command line
    ptab = {int(l.split()[0]): l for l in lines if re.match(r"^\s+\d+\s+\d+\s", l)}
    assert "parent.py" in ptab[parent]
    for c in children:  # child.py 0 and child.py 1, whichever printed first
        assert re.search(r"child\.py [01]$", ptab[c]) and "parent.py" not in ptab[c], ptab[c]
    # one GIL summary per process, none averaged over them
    for p in (parent, *children):
        assert "GIL of process %d:" % p in r.stdout
    assert "\nGIL: " not in r.stdout


def test_report_json_threads_carry_pid(sonde_bin, rec):
    path, parent, children = rec
    doc = report_json(sonde_bin, path)
    assert {t["pid"] for t in doc["threads"]} >= {parent, *children}
    procs = {p["pid"]: p for p in doc["processes"]}
    assert procs[children[0]]["ppid"] == parent
    assert re.search(r"child\.py [01]$", procs[children[0]]["cmd"]), procs
    # each GIL's own figures: a child spins with its GIL held
    assert procs[children[0]]["gil"]["held_pct"] > 30, procs[children[0]]


def test_thread_selector(sonde_bin, rec):
    path, parent, children = rec
    r = run_sonde(sonde_bin, "report", "--thread", "MainThread", path)
    assert r.returncode == EXIT_USAGE and r.stdout == ""
    msg = r.stderr.strip()
    assert msg.startswith("sonde: ") and "\n" not in msg, msg
    for p in (parent, *children):
        assert "%d:MainThread" % p in msg, msg
    doc = report_json(sonde_bin, path, "--thread", "%d:MainThread" % children[1])
    assert [t["pid"] for t in doc["threads"]] == [children[1]]
    funcs = {f["function"] for f in doc["functions"]}
    assert "child_only_work" in funcs and "parent_only_work" not in funcs, sorted(funcs)
    r = run_sonde(sonde_bin, "report", "--thread", "%d:MainThread" % (max(children) + 100000), path)
    assert r.returncode == EXIT_USAGE


def test_pid_filter(sonde_bin, rec, tmp_path):
    path, parent, children = rec
    doc = report_json(sonde_bin, path, "--pid", parent)
    assert {t["pid"] for t in doc["threads"]} == {parent}
    assert [p["pid"] for p in doc["processes"]] == [parent]
    funcs = {f["function"] for f in doc["functions"]}
    assert "parent_only_work" in funcs and "child_only_work" not in funcs, sorted(funcs)
    r = run_sonde(sonde_bin, "export", "-f", "collapsed", "--pid", children[0], "-o", "-", path)
    assert r.returncode == EXIT_OK, r.stderr
    assert "child_only_work" in r.stdout and "parent_only_work" not in r.stdout
    r = run_sonde(sonde_bin, "view", "--pid", children[0], path)  # not a terminal: the report
    assert r.returncode == EXIT_OK, r.stderr
    assert "child_only_work" in r.stdout and "parent_only_work" not in r.stdout
    r = run_sonde(sonde_bin, "report", "--pid", "1", path)
    assert r.returncode == EXIT_USAGE and str(parent) in r.stderr, r.stderr


def export(sonde_bin, path, fmt, *args):
    r = run_sonde(sonde_bin, "export", "-f", fmt, *args, "-o", "-", path)
    assert r.returncode == EXIT_OK, r.stderr
    return r.stdout


def test_speedscope_and_chrome_name_processes(sonde_bin, rec):
    path, parent, children = rec
    doc = json.loads(export(sonde_bin, path, "speedscope"))
    names = [p["name"] for p in doc["profiles"]]
    for p in (parent, *children):
        assert "%d:MainThread (%d)" % (p, p) in names, names
    doc = json.loads(export(sonde_bin, path, "chrome"))
    pnames = {e["pid"]: e["args"]["name"] for e in doc["traceEvents"]
              if e.get("ph") == "M" and e["name"] == "process_name"}
    assert "parent.py" in pnames[parent], pnames
    for c in children:
        assert "child.py" in pnames[c] and "parent.py" not in pnames[c], pnames


def test_html_one_root_per_process(sonde_bin, rec, tmp_path):
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "node is needed (scripts/install-deps installs nodejs)"
    path, parent, children = rec
    text = export(sonde_bin, path, "html")
    data = re.search(r'<script type="application/json" id="sonde-data">(.*?)</script>', text, re.S).group(1)
    script = re.findall(r"<script>(.*?)</script>", text, re.S)[-1]
    js = tmp_path / "page.js"
    js.write_text("var DATA = %s;\n%s\n%s\n%s\nconsole.log(JSON.stringify(Array.from(root.kids.values())"
                  ".map(function (k) { return k.name; })));"
                  % (json.dumps(data), _DOM_STUB, script, _DOM_DRIVE))
    r = subprocess.run([node, str(js)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stderr
    roots = json.loads(r.stdout.split("\n")[1])
    for p in (parent, *children):
        assert any(n.startswith("process %d:" % p) for n in roots), roots


def test_callgrind_per_thread_names_the_right_pid(sonde_bin, rec, tmp_path):
    path, parent, children = rec
    out = tmp_path / "cg"
    r = run_sonde(sonde_bin, "export", "-f", "callgrind", "--per-thread", "-o", out, path)
    assert r.returncode == EXIT_OK, r.stderr
    seen = set()
    for f in sorted(tmp_path.glob("cg-*")):
        text = f.read_text()
        pid = int(re.search(r"^pid: (\d+)$", text, re.M).group(1))
        desc = re.search(r"^desc: Thread: (\d+):", text, re.M)
        assert desc and int(desc.group(1)) == pid, (f, pid)
        seen.add(pid)
    assert seen >= {parent, *children}


def test_top_threads_pane_has_pid(sonde_bin, tmp_path):
    require_enough_versions()
    found = sorted(SUPPORTED_FOUND, key=lambda i: i.minor)
    py = ([i for i in found if i.path.startswith("/usr/")] or found)[-1]
    (tmp_path / "c.py").write_text(CHILD)
    r = run_sonde(sonde_bin, "top", "-d", "1", "-i", "0.5", "--", py.path, tmp_path / "c.py", timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    pid = int(re.search(r"^child (\d+)$", r.stdout, re.M).group(1)) if "child " in r.stdout else None
    head = next(l for l in r.stdout.split("\n") if l.startswith("THREAD "))
    assert head.split()[:3] == ["THREAD", "PID", "TID"], head
    rows = [l.split() for l in r.stdout.split("\n") if l.startswith("MainThread ")]
    assert rows and all(x[1] == x[2] for x in rows), rows  # the main thread's tid is its pid
    if pid:
        assert all(int(x[1]) == pid for x in rows)
