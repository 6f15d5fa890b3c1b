"""Span profiles end to end (docs/store-spans.md, "span profiles"): a program
run under the agent with a collector; the collector's trace --json gives
each span its profile, checked against what the workload measured itself
(tests/e2e/targets/span_profile_work.py): a handler computing while another
thread holds the GIL shows real CPU, its function on top and the GIL wait
the contention caused; a span blocked on a socket shows idle. The exports
of a trace's and a span's profile are read by callgrind_annotate (and
`go tool pprof` when there is one)."""
import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.min_python((3, 8), "the in-process agent (python/sonde) supports 3.8+ only")

from conftest import TARGETS, run_sonde, wait_for
from test_collector import Collector, otlp_body

WORK = str(TARGETS / "span_profile_work.py")


def trace_json(sonde_bin, db, tid):
    r = run_sonde(sonde_bin, "trace", "--db", db, "--json", tid)
    return json.loads(r.stdout) if r.returncode == 0 else None


def span_of(sonde_bin, db, tid, sid):
    t = trace_json(sonde_bin, db, tid)
    for s in (t or {}).get("spans", []):
        if s["span_id"] == sid and s["profile"]:
            return s
    return None


def run_work(sonde_bin, cpython, tmp_path):
    c = Collector(sonde_bin, tmp_path / "spans.sonde")
    try:
        r = run_sonde(sonde_bin, "record", "--agent", "--collector", c.url, "-o", str(tmp_path / "r.sonde"), "--",
                      cpython.path, WORK, "1.5", timeout=120)
        assert r.returncode == 0, r.stderr
        truth = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
        wait_for(lambda: span_of(sonde_bin, c.db, truth["trace"], truth["handle"]) and
                 span_of(sonde_bin, c.db, truth["wait_trace"], truth["wait"]), 20, "both spans' profiles")
    finally:
        c.stop()
    return c.db, truth


def test_span_profiles(sonde_bin, cpython, tmp_path):
    db, truth = run_work(sonde_bin, cpython, tmp_path)
    h = span_of(sonde_bin, db, truth["trace"], truth["handle"])
    p = h["profile"]
    assert set(p) == {"samples", "wall_s", "cpu_s", "gil_pct", "gil_wait_pct", "nogil_pct", "idle_pct", "top"}
    # the summary also travels as OTLP attributes; the samples do not stay there
    assert h["attributes"]["sonde.profile.samples"] == p["samples"]
    assert "sonde.profile.pprof" not in h["attributes"]
    assert p["samples"] >= 20, p
    # real CPU: the handler's own measure of its CPU time in the span
    assert 0.6 * truth["cpu_s"] <= p["cpu_s"] <= 1.5 * truth["cpu_s"] + 0.02, (p, truth)
    assert p["top"][0]["function"] == "compute_prices", p["top"]
    assert p["top"][0]["file"].endswith("span_profile_work.py")
    assert p["top"][0]["self_wall_s"] > 0.5 * p["wall_s"]
    # the handler wanted the GIL all along: it held it or waited for it
    assert p["gil_pct"] + p["gil_wait_pct"] >= 85, p
    # and waited for it the share of the time the hog held it: a thread runs
    # Python only holding the GIL, so the hog's share of the two threads'
    # CPU time is its share of the GIL (the machine's load slows both alike)
    hog_share = 100.0 * truth["hog_cpu_s"] / (truth["hog_cpu_s"] + truth["cpu_s"])
    assert abs(p["gil_wait_pct"] - hog_share) <= 15, (p, truth, hog_share)

    w = span_of(sonde_bin, db, truth["wait_trace"], truth["wait"])["profile"]
    assert w["idle_pct"] >= 80, w
    assert w["cpu_s"] < 0.1 * w["wall_s"], w
    assert w["samples"] >= 10, w


def test_span_profile_exports(sonde_bin, tmp_path):
    """A trace's and a span's profile through the recording exporters."""
    import conftest
    py = [i for i in conftest.SUPPORTED_FOUND if i.path.startswith("/usr/")] or conftest.SUPPORTED_FOUND
    db, truth = run_work(sonde_bin, py[0], tmp_path)
    for scope in ([], ["--span", truth["handle"]]):
        cg = str(tmp_path / ("t%d.callgrind" % len(scope)))
        r = run_sonde(sonde_bin, "export", "-f", "callgrind", "--trace", truth["trace"], *scope, "-o", cg, db)
        assert r.returncode == 0, r.stderr
        a = subprocess.run(["callgrind_annotate", cg], capture_output=True, text=True, timeout=60)
        assert a.returncode == 0, a.stderr
        assert "compute_prices" in a.stdout and "PROGRAM TOTALS" in a.stdout, a.stdout
        for f in ("speedscope", "flamegraph", "pprof"):
            out = str(tmp_path / ("t%d.%s" % (len(scope), f)))
            r = run_sonde(sonde_bin, "export", "-f", f, "--trace", truth["trace"], *scope, "-o", out, db)
            assert r.returncode == 0, r.stderr
        ss = json.load(open(str(tmp_path / ("t%d.speedscope" % len(scope)))))
        assert any(fr["name"].startswith("compute_prices") for fr in ss["shared"]["frames"]), ss["shared"]
        if shutil.which("go"):
            g = subprocess.run(["go", "tool", "pprof", "-top", str(tmp_path / ("t%d.pprof" % len(scope)))],
                               capture_output=True, text=True, timeout=120)
            assert g.returncode == 0 and "compute_prices" in g.stdout, g.stdout + g.stderr
    # the idle span's profile alone: its trace has no compute_prices
    cg = str(tmp_path / "w.callgrind")
    r = run_sonde(sonde_bin, "export", "-f", "callgrind", "--trace", truth["wait_trace"], "--span", truth["wait"],
                  "-o", cg, db)
    assert r.returncode == 0, r.stderr
    assert "compute_prices" not in open(cg).read()
    # a span that is not in the trace, a bad id, --span without --trace
    r = run_sonde(sonde_bin, "export", "-f", "callgrind", "--trace", truth["trace"], "--span", truth["wait"],
                  "-o", cg, db)
    assert r.returncode == 1 and "no span" in r.stderr, r.stderr
    r = run_sonde(sonde_bin, "export", "-f", "callgrind", "--trace", truth["trace"], "--span", "xyz", "-o", cg, db)
    assert r.returncode == 2 and "invalid span id" in r.stderr, r.stderr
    r = run_sonde(sonde_bin, "export", "-f", "callgrind", "-o", cg, db)
    assert r.returncode == 2 and "--trace" in r.stderr, r.stderr


def test_hostile_profiles(sonde_bin, tmp_path):
    """Profiles that lie or are damaged: their span is refused with the
    reason (OTLP partial success), the others are stored, the collector
    lives on."""
    import base64
    import gzip
    import time
    c = Collector(sonde_bin, tmp_path / "spans.sonde")
    try:
        tid = "5b8efff798038103d269b633813fc60c"
        t0 = time.time_ns() - 10**9
        junk = base64.b64encode(gzip.compress(b"\x0a\x05hello" * 50)).decode()
        bomb = base64.b64encode(gzip.compress(b"\0" * (9 << 20))).decode()

        def span(sid, value):
            return {"traceId": tid, "spanId": sid, "name": "op", "kind": 2, "startTimeUnixNano": str(t0),
                    "endTimeUnixNano": str(t0 + 5 * 10**6),
                    "attributes": [{"key": "sonde.profile.pprof", "value": value}] if value else []}
        spans = [span("00000000000000a1", {"stringValue": junk}), span("00000000000000a2", {"stringValue": bomb}),
                 span("00000000000000a3", {"stringValue": "%%%%"}), span("00000000000000a4", {"intValue": "7"}),
                 span("00000000000000a5", None)]
        code, body, _ = c.post("/v1/traces", otlp_body(tid, spans))
        assert code == 200, body
        ans = json.loads(body)
        assert ans["partialSuccess"]["rejectedSpans"] == 4, ans
        assert "span 00000000000000a" in ans["partialSuccess"]["errorMessage"], ans
        t = trace_json(sonde_bin, c.db, tid)
        assert [s["span_id"] for s in t["spans"]] == ["00000000000000a5"]
        assert t["spans"][0]["profile"] is None
        # still serving
        code, body, _ = c.post("/v1/traces", otlp_body(tid, [span("00000000000000a6", None)]))
        assert code == 200, body
    finally:
        c.stop()


def bar_of(screen, name):
    """The bar of span `name`'s row on a waterfall screen: the text between its |...|."""
    for line in screen.splitlines():
        if re.match(r"^[* ] +[-+ ] %s( |$)" % re.escape(name), line):
            return line[line.index("|") + 1:line.rindex("|")].strip()
    return None


def test_waterfall_states(sonde_bin, tmp_path):
    """sonde view: a profiled span's bar is split by state in the proportions
    of its profile, its details list its top functions; the HTML export
    draws the same (its script run by node against a small DOM)."""
    import conftest
    from test_tui import Tmux
    py = [i for i in conftest.SUPPORTED_FOUND if i.path.startswith("/usr/")] or conftest.SUPPORTED_FOUND
    db, truth = run_work(sonde_bin, py[0], tmp_path)
    hp = span_of(sonde_bin, db, truth["trace"], truth["handle"])["profile"]
    t = Tmux(tmp_path)
    try:
        t.type("%s view %s" % (sonde_bin, db))
        t.keys("Enter")
        t.wait_for("TRACE ID")
        t.keys("Enter")  # the most recent trace: the idle span
        s = t.wait_for("Trace " + truth["wait_trace"])
        bar = bar_of(s, "wait")
        # mostly idle; its first moments run Python (a sample may hold the GIL)
        assert bar and set(bar) <= {".", "=", "#", "w"} and bar.count(".") >= 0.8 * len(bar), s
        t.keys("q")
        t.wait_for("TRACE ID")
        t.keys("Down", "Enter")
        s = t.wait_for("Trace " + truth["trace"])
        bar = bar_of(s, "handle")
        assert bar and set(bar) <= set("#w=."), s
        # the cells are the profile's shares (cells are rounded: one each)
        n = len(bar)
        assert abs(bar.count("#") - hp["gil_pct"] * n / 100) <= 1.5, (bar, hp)
        assert abs(bar.count("w") - hp["gil_wait_pct"] * n / 100) <= 1.5, (bar, hp)
        t.keys("d")
        s = t.wait_for("Span details")
        assert "top 1: compute_prices" in s and "span_profile_work.py" in s, s
        assert re.search(r"profile: %d samples" % hp["samples"], s), s
        t.keys("q", "q")
    finally:
        t.kill()

    # the HTML page's script, under node with a minimal DOM
    if not shutil.which("node"):
        pytest.fail("node is needed (scripts/install-deps installs nodejs)")
    page = str(tmp_path / "t.html")
    r = run_sonde(sonde_bin, "export", "-f", "html", "--trace", truth["trace"], "-o", page, db)
    assert r.returncode == 0, r.stderr
    html = open(page).read()
    data = re.search(r'<script type="application/json" id="sonde-traces">(.*?)</script>', html, re.S).group(1)
    script = re.search(r"<script>\n(.*?)</script>", html, re.S).group(1)
    js = DOM_STUB + "const DATA=" + json.dumps(data) + ";\n" + script + """
const rows = byId.wf.children;
const row = rows.find(r => r.children[0].text().includes('handle'));
const bar = row.children[3].children[0];
row.onclick();
console.log(JSON.stringify({bg: bar.style.background, title: bar.title, details: byId.details.text(),
                            legend: byId.legend.text()}));
"""
    jf = tmp_path / "page.js"
    jf.write_text(js)
    r = subprocess.run(["node", str(jf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["bg"].startswith("linear-gradient(to right,"), out
    assert "GIL wait %d%%" % round(hp["gil_wait_pct"]) in out["title"], out
    assert "compute_prices" in out["details"] and "Top functions" in out["details"], out
    assert "GIL held" in out["legend"], out


DOM_STUB = """
class E { constructor(t){this.tag=t;this.children=[];this.style={};this.dataset={};this.className='';this._t='';}
  appendChild(c){this.children.push(c);return c;}
  set textContent(v){this._t=String(v);this.children=[];} get textContent(){return this._t;}
  text(){return this._t+this.children.map(c=>c.text()).join(' ');} }
const byId = {};
for (const k of ['list','info','legend','wf','details']) byId[k] = new E('div');
const document = { createElement: t => new E(t), createTextNode: t => { const e = new E('#text'); e.textContent = t; return e; },
  getElementById: id => id === 'sonde-traces' ? { textContent: DATA } : byId[id] };
"""


CROWD = r'''
import asyncio, json, sonde

async def one(i, started):
    with sonde.span("t%d" % i):
        started.append(i)
        await asyncio.sleep(1.5)     # suspended inside its span: its samples are the span's

async def main(n):
    started = []
    await asyncio.gather(*(one(i, started) for i in range(n)))
    return len(started)

print("started", asyncio.run(main(N_TASKS)))
sonde.flush_spans(30)
print("STATS " + json.dumps(sonde.span_stats()))
'''


def crowd_stats(sonde_bin, cpython, tmp_path, n):
    r = run_sonde(sonde_bin, "record", "--agent", "-o", str(tmp_path / ("r%d.sonde" % n)), "--",
                  cpython.path, "-c", CROWD.replace("N_TASKS", str(n)), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "started %d" % n in r.stdout, r.stdout
    return json.loads([l for l in r.stdout.splitlines() if l.startswith("STATS ")][-1][6:])


def test_profiles_dropped_in_span_stats(sonde_bin, cpython, tmp_path):
    """sonde.span_stats() shows the span profiles dropped: 50 tasks each
    suspended in its own span all have a profile (none dropped); 700 at
    once are more than the 512 profiles built at once, so the samples of
    those that found no room are counted."""
    few = crowd_stats(sonde_bin, cpython, tmp_path, 50)
    assert few["ended"] == 50 and few["profiles_dropped"] == 0, few
    many = crowd_stats(sonde_bin, cpython, tmp_path, 700)
    assert many["ended"] == 700 and many["profiles_dropped"] >= 700 - 512, many
