"""Text from outside never reaches a terminal or a text output raw.

Span names, services, nodes and attributes posted to a collector, and the
function, file and thread names of a profiled program, may hold terminal
escapes: OSC 52 (write the clipboard), a clear-screen CSI, an 8-bit CSI
(C1, U+009B) and a right-to-left override. Every text output and the
curses screens show them escaped (\\x1b, \\u009b, \\u202e: common/textesc.h);
JSON outputs keep them JSON-escaped, intact.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import SUPPORTED_FOUND, TARGETS, require_enough_versions  # noqa: E402
from test_tui import Tmux  # noqa: E402
from test_waterfall import Collector, otlp_span, resource  # noqa: E402

HOSTILE = "evil\x1b]52;c;cHduZWQ=\x07\x1b[2J\u009b31m\u202eend"
SHOWN = r"evil\x1b]52;c;cHduZWQ=\x07\x1b[2J\u009b31m\u202eend"
SVC = "svc\x1b]0;pwned\x07"
SVC_SHOWN = r"svc\x1b]0;pwned\x07"
TID = "e5c0000000000000000000000000e5c0"

# bytes that act on a terminal: C0 but newline and tab, DEL, C1 and bidi
# controls encoded in UTF-8
RAW = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def clean(out):
    """out (bytes) holds nothing that acts on a terminal."""
    m = RAW.search(out)
    assert not m, "raw control %r at %d in %r" % (m.group(), m.start(), out[max(0, m.start() - 60):m.start() + 60])
    return out.decode()


def run(sonde_bin, *args, timeout=60):
    return subprocess.run([sonde_bin] + [str(a) for a in args], capture_output=True, timeout=timeout)


# ---- spans: sonde traces, trace, view on a store ----

@pytest.fixture(scope="module")
def sonde_bin():
    p = os.path.abspath(os.environ.get("SONDE", "build/sonde"))
    if not os.access(p, os.X_OK):
        pytest.fail("sonde binary %s not found: set SONDE" % p, pytrace=False)
    return p


@pytest.fixture(scope="module")
def store(sonde_bin, tmp_path_factory):
    c = Collector(sonde_bin, tmp_path_factory.mktemp("esc") / "spans.sonde")
    try:
        t0 = time.time_ns() - 5_000_000_000
        spans = [otlp_span(TID, "e5c0000000000001", "", HOSTILE, 2, t0, t0 + 50_000_000,
                           {"clip": "\x1b]52;c;ZXZpbA==\x07", "rlo": "a\u202eb"}),
                 otlp_span(TID, "e5c0000000000002", "e5c0000000000001", "child\u009b2J", 1,
                           t0 + 10_000_000, t0 + 20_000_000, {})]
        c.post("/v1/traces", json.dumps({"resourceSpans": [resource(SVC, "node\x1b[2J", spans)]}).encode())
        c.wait_spans(2)
    finally:
        c.stop()
    return c.db


def test_traces_and_trace_text(sonde_bin, store):
    r = run(sonde_bin, "traces", "--db", store)
    assert r.returncode == 0, r.stderr
    out = clean(r.stdout)
    assert SHOWN[:30] in out and SVC_SHOWN in out, out
    r = run(sonde_bin, "trace", "--db", store, TID)
    assert r.returncode == 0, r.stderr
    out = clean(r.stdout)
    assert "services: " + SVC_SHOWN in out and r"child\u009b2J" in out, out
    assert SHOWN[:38] in out, out  # the SPAN column is 40 wide, indentation included
    # sonde view on a store, stdout not a terminal: the trace list
    r = run(sonde_bin, "view", store)
    assert r.returncode == 0, r.stderr
    assert SVC_SHOWN in clean(r.stdout)


def test_trace_json_unchanged(sonde_bin, store):
    """JSON outputs carry the text intact, JSON-escaped."""
    r = run(sonde_bin, "trace", "--db", store, TID, "--json")
    assert r.returncode == 0, r.stderr
    clean(r.stdout)
    spans = json.loads(r.stdout)["spans"]
    assert {s["name"] for s in spans} == {HOSTILE, "child\u009b2J"}
    assert {s["service"] for s in spans} == {SVC}
    r = run(sonde_bin, "traces", "--db", store, "--json")
    assert json.loads(clean(r.stdout))["traces"][0]["root_name"] == HOSTILE


def test_waterfall_shows_escapes(sonde_bin, store, tmp_path):
    t = Tmux(tmp_path)
    try:
        t.type("%s view %s" % (sonde_bin, store))
        t.keys("Enter")
        s = t.wait_for("TRACE ID")
        assert r"svc\x1b]0;" in s and r"evil\x1b]52" in s, s
        t.keys("Enter")
        s = t.wait_for("Trace " + TID)
        assert r"evil\x1b]52;c;cHduZWQ=\x07\x1b[2J" in s and r"child\u009b2J" in s, s
        t.keys("d")
        s = t.wait_for("Span details")
        assert r"clip = \x1b]52;c;ZXZpbA==\x07" in s and r"rlo = a\u202eb" in s, s
        assert r"node node\x1b[2J" in s, s
        assert t.display("#{pane_title}") != "pwned"
        t.keys("q")
        t.keys("q")
        t.assert_restored()
    finally:
        t.kill()


# ---- a profiled program: report, view, top, dump, text exports ----

@pytest.fixture(scope="module")
def newest_python():
    require_enough_versions()
    return max(SUPPORTED_FOUND, key=lambda i: i.minor)


@pytest.fixture(scope="module")
def hostile_target(newest_python):
    p = subprocess.Popen([newest_python.path, str(TARGETS / "hostile_names.py"), "120"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    info = json.loads(p.stdout.readline())
    assert p.stdout.readline().strip() == b"ready"
    assert info["name"] == HOSTILE
    yield p
    p.kill()
    p.wait()


@pytest.fixture(scope="module")
def recording(sonde_bin, hostile_target, tmp_path_factory):
    out = tmp_path_factory.mktemp("rec") / "hostile.sonde"
    r = run(sonde_bin, "record", "-p", hostile_target.pid, "-d", "1.5", "-o", out)
    assert r.returncode == 0, r.stderr
    return out


FILE_SHOWN = r"/tmp/f\x1b]0;title\x07.py"


def test_report_and_view_text(sonde_bin, recording):
    for cmd in (("report",), ("report", "--mode", "cpu"), ("view",)):
        r = run(sonde_bin, *cmd, recording)
        assert r.returncode == 0, r.stderr
        out = clean(r.stdout)
        assert "%s (%s:" % (SHOWN, FILE_SHOWN) in out, out
        assert r"threvil\x1b]52" in out, out


def test_report_json_unchanged(sonde_bin, recording):
    r = run(sonde_bin, "report", "--json", recording)
    assert r.returncode == 0, r.stderr
    d = json.loads(clean(r.stdout))
    assert HOSTILE in {f["function"] for f in d["functions"]}
    assert "thr" + HOSTILE in {t["name"] for t in d["threads"]}


@pytest.mark.parametrize("fmt", ["collapsed", "callgrind", "flamegraph"])
def test_text_exports(sonde_bin, recording, fmt):
    r = run(sonde_bin, "export", "-f", fmt, "-o", "-", recording)
    assert r.returncode == 0, r.stderr
    out = clean(r.stdout)
    if fmt == "collapsed":  # ';' separates frames: written as ':'
        assert SHOWN.replace(";", ":") in out, out
        for line in out.splitlines():
            assert re.match(r"^[^\n]+ \d+$", line), line
    elif fmt == "callgrind":
        assert re.search(r"^c?fn=\(\d+\) %s$" % re.escape(SHOWN), out, re.M), out
        assert re.search(r"^c?fl=\(\d+\) %s$" % re.escape(FILE_SHOWN), out, re.M), out
    else:
        assert SHOWN in out


def test_dump_and_top_text(sonde_bin, hostile_target):
    r = run(sonde_bin, "dump", "-p", hostile_target.pid)
    assert r.returncode == 0, r.stderr
    out = clean(r.stdout)
    assert "    %s (%s:" % (SHOWN, FILE_SHOWN) in out, out
    assert 'Thread %d "thr%s"' % (0, SHOWN) in re.sub(r"Thread \d+", "Thread 0", out), out
    r = run(sonde_bin, "dump", "-p", hostile_target.pid, "--json")
    names = {f["function"] for t in json.loads(clean(r.stdout))["threads"] for f in t["frames"]}
    assert HOSTILE in names
    r = run(sonde_bin, "top", "-p", hostile_target.pid, "--duration", "1", "--interval", "1")
    assert r.returncode == 0, r.stderr
    out = clean(r.stdout)
    assert SHOWN in out and r"threvil\x1b]52" in out, out


def test_top_and_view_screens(sonde_bin, hostile_target, recording, tmp_path):
    t = Tmux(tmp_path)
    try:
        t.type("%s top -p %d -i 0.3" % (sonde_bin, hostile_target.pid))
        t.keys("Enter")
        t.wait_for(r"evil\x1b]52;c;cHduZWQ=", timeout=15)
        t.keys("t")
        t.wait_for(r"threvil\x1b]52")
        t.keys("q")
        t.assert_restored()
        t.type("%s view %s" % (sonde_bin, recording))
        t.keys("Enter")
        t.keys("2")  # flat profile
        t.wait_for(r"evil\x1b]52;c;cHduZWQ=")
        t.keys("q")
        t.assert_restored()
    finally:
        t.kill()
