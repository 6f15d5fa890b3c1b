"""sonde view / sonde export on a collector's span store (the waterfall).

A collector on a free loopback port receives, as OTLP JSON over HTTP
(urllib), two traces: "GET /checkout" across two nodes whose clocks differ
by 5 s, and a single-span "GET /health". The checkout trace is built so that
its critical path (from the root, the child that ends last) is known:
GET /checkout -> POST /cart -> handle /cart -> render cart. The store is
then browsed through tmux and exported in every trace format.
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from test_tui import Tmux

TID = "5a1f0c0ffee0000000000000000000a1"
TID2 = "5a1f0c0ffee0000000000000000000b2"
OFFSET_US = 5_000_000  # node-b's clock is 5 s ahead
# name, span id, parent, service, kind, start ms, end ms, attributes (corrected times)
SPANS = [
    ("GET /checkout", "a000000000000001", "", "frontend", 2, 0, 100, {"http.method": "GET"}),
    ("auth check", "a000000000000002", "a000000000000001", "frontend", 1, 2, 8, {}),
    ("POST /cart", "a000000000000003", "a000000000000001", "frontend", 3, 10, 90, {}),
    ("handle /cart", "b000000000000004", "a000000000000003", "backend", 2, 20, 80, {"http.route": "/cart"}),
    ("SELECT cart", "b000000000000005", "b000000000000004", "backend", 3, 25, 40, {"db.system": "sqlite"}),
    ("render cart", "b000000000000006", "b000000000000004", "backend", 1, 45, 75, {"cart.items": 3}),
    ("audit log", "a000000000000007", "a000000000000001", "frontend", 1, 50, 60, {}),
]
TREE_ORDER = ["GET /checkout", "auth check", "POST /cart", "handle /cart", "SELECT cart", "render cart",
              "audit log"]
CRITICAL = {"GET /checkout", "POST /cart", "handle /cart", "render cart"}

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture(scope="module")
def sonde_bin():
    p = os.path.abspath(os.environ.get("SONDE", str(Path(__file__).resolve().parents[2] / "build" / "sonde")))
    if not os.access(p, os.X_OK):
        pytest.fail("sonde binary %s not found: run 'make build' or set SONDE" % p, pytrace=False)
    return p


def run(sonde_bin, *args):
    return subprocess.run([sonde_bin] + [str(a) for a in args], capture_output=True, text=True, timeout=30)


class Collector:
    def __init__(self, sonde_bin, db):
        self.db = str(db)
        self.errf = open(self.db + ".stderr", "w+")
        self.p = subprocess.Popen([sonde_bin, "collector", "--listen", "127.0.0.1:0", "--db", self.db],
                                  stdout=subprocess.DEVNULL, stderr=self.errf)
        deadline, text = time.time() + 10, ""
        self.port = None
        while time.time() < deadline and self.p.poll() is None:
            self.errf.seek(0)
            text = self.errf.read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.02)
        assert self.port, "collector did not start: " + text

    def post(self, path, body):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status in (200, 202), r.read()

    def span_count(self):
        with sqlite3.connect(self.db) as c:
            return c.execute("SELECT count(*) FROM span").fetchone()[0]

    def wait_spans(self, n):
        deadline = time.time() + 10
        while self.span_count() < n:
            assert time.time() < deadline, "store has %d spans, want %d" % (self.span_count(), n)
            time.sleep(0.05)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            self.p.wait(timeout=20)
        self.errf.close()


def resource(service, node, spans):
    return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}},
                                        {"key": "host.name", "value": {"stringValue": node}}]},
            "scopeSpans": [{"spans": spans}]}


def otlp_span(tid, sid, parent, name, kind, start_ns, end_ns, attrs):
    a = [{"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
         for k, v in attrs.items()]
    return {"traceId": tid, "spanId": sid, "parentSpanId": parent, "name": name, "kind": kind,
            "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns), "attributes": a}


@pytest.fixture(scope="module")
def store(sonde_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("wf")
    c = Collector(sonde_bin, d / "spans.sonde")
    try:
        t0_us = time.time_ns() // 1000 - 10_000_000
        by_svc = {}
        for name, sid, parent, svc, kind, s, e, attrs in SPANS:
            skew = OFFSET_US if svc == "backend" else 0
            by_svc.setdefault(svc, []).append(otlp_span(TID, sid, parent, name, kind,
                                                        (t0_us + s * 1000 + skew) * 1000,
                                                        (t0_us + e * 1000 + skew) * 1000, attrs))
        c.post("/v1/traces", json.dumps({"resourceSpans": [resource("frontend", "node-a", by_svc["frontend"]),
                                                             resource("backend", "node-b", by_svc["backend"])]}).encode())
        h0 = t0_us - 2_000_000
        c.post("/v1/traces", json.dumps({"resourceSpans": [resource("frontend", "node-a", [
            otlp_span(TID2, "c000000000000001", "", "GET /health", 2, h0 * 1000, (h0 + 3000) * 1000, {})])]}).encode())
        c.wait_spans(len(SPANS) + 1)
    finally:
        c.stop()
    return c.db


def span_rows(screen):
    """(marker, name) for each waterfall row on the screen, top to bottom."""
    rows = []
    for line in screen.splitlines():
        for n in TREE_ORDER:
            if re.match(r"^[* ] +[-+ ] %s( |$)" % re.escape(n), line):
                rows.append((line[0], n))
    return rows


def test_view_waterfall_in_tmux(sonde_bin, store, tmp_path):
    t = Tmux(tmp_path)
    try:
        t.type("%s view %s" % (sonde_bin, store))
        t.keys("Enter")
        s = t.wait_for("GET /health")
        lines = s.splitlines()
        checkout = [l for l in lines if "GET /checkout" in l]
        assert checkout and "backend,frontend" in checkout[0], s
        assert s.index("GET /checkout") < s.index("GET /health"), "most recent first:\n" + s
        # the waterfall: every span, in tree order, the critical path marked
        t.keys("Enter")
        s = t.wait_for("Trace " + TID)
        rows = span_rows(s)
        assert [n for _, n in rows] == TREE_ORDER, s
        assert {n for m, n in rows if m == "*"} == CRITICAL, s
        assert "|0" in s and "100.000ms" in s
        # collapse POST /cart: its subtree goes, its sibling stays
        t.keys("Down", "Down")
        t.keys("Left")
        s = t.wait_for("handle /cart", absent=True)
        assert [n for _, n in span_rows(s)] == ["GET /checkout", "auth check", "POST /cart", "audit log"], s
        assert re.search(r"^\* +\+ POST /cart", s, re.M), s
        t.keys("Right")
        s = t.wait_for("render cart")
        assert [n for _, n in span_rows(s)] == TREE_ORDER, s
        t.keys("Enter")  # Enter folds too
        t.wait_for("SELECT cart", absent=True)
        t.keys("Enter")
        t.wait_for("SELECT cart")
        # details of the skewed node's span
        t.keys("Down")
        t.keys("d")
        s = t.wait_for("Span details")
        assert "skew_us %d" % -OFFSET_US in s, s
        assert "node node-b" in s and "http.route = /cart" in s and "span_id b000000000000004" in s, s
        assert "parent a000000000000003" in s, s
        # 80x24 with the details pane open: laid out again for 24 rows (the
        # pane takes the 10 rows above the status line), then help, then back
        t.resize(80, 24)
        s = t.wait_for(lambda s: len(s.splitlines()) >= 24 and s.splitlines()[13].startswith(" Span details")
                       and s.splitlines()[23].startswith(" q back"))
        assert "GET /checkout" in s and "skew_us" in s, s
        t.keys("d")
        s = t.wait_for("Span details", absent=True)
        assert "render cart" in s
        t.keys("?")
        t.wait_for("sonde view: trace waterfall")
        t.keys("x")
        t.wait_for("sonde view: trace waterfall", absent=True)
        t.wait_for("Trace " + TID[:8])
        t.keys("q")
        s = t.wait_for("TRACE ID")
        assert "GET /health" in s
        t.resize(120, 40)
        t.keys("q")
        t.assert_restored()
    finally:
        t.kill()


def test_view_waterfall_ctrl_c_restores_the_terminal(sonde_bin, store, tmp_path):
    t = Tmux(tmp_path)
    try:
        t.type("%s view %s" % (sonde_bin, store))
        t.keys("Enter")
        t.wait_for("GET /health")
        t.keys("Enter")
        t.wait_for("Trace " + TID)
        t.keys("C-c")
        t.assert_restored()
        t.type("stty -a | tr ' ' '\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '; echo END")
        t.keys("Enter")
        s = t.wait_for(re.compile(r"^-?icanon -?echo END$", re.M))
        assert re.search(r"^icanon echo END$", s, re.M), "terminal left in raw mode:\n" + s
    finally:
        t.kill()


def test_view_not_a_tty_prints_the_list(sonde_bin, store):
    r = run(sonde_bin, "view", store)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "TRACE ID" in lines[0]
    assert TID in lines[1] and "GET /checkout" in lines[1] and "backend,frontend" in lines[1]
    assert TID2 in lines[2] and "GET /health" in lines[2]


def repost(sonde_bin, tmp_path, path, body):
    c = Collector(sonde_bin, tmp_path / ("again-%s.sonde" % path.strip("/").replace("/", "-")))
    try:
        c.post(path, body)
        c.wait_spans(len(SPANS) + 1)
        time.sleep(0.2)
        return c.span_count()
    finally:
        c.stop()


def test_export_store(sonde_bin, store, tmp_path):
    out = {}
    for f in ("html", "chrome", "otlp", "zipkin"):
        o = tmp_path / ("out." + f)
        r = run(sonde_bin, "export", "-f", f, "-o", o, store)
        assert r.returncode == 0, r.stderr
        out[f] = o.read_text()
    # chrome: one complete event per span
    ch = json.loads(out["chrome"])
    xs = [e for e in ch["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["name"] for e in xs) == sorted(TREE_ORDER + ["GET /health"])
    # otlp / zipkin: a fresh collector takes them back, every span
    otlp = json.loads(out["otlp"])
    assert sum(len(ss["spans"]) for rs in otlp["resourceSpans"] for ss in rs["scopeSpans"]) == len(SPANS) + 1
    assert repost(sonde_bin, tmp_path, "/v1/traces", out["otlp"].encode()) == len(SPANS) + 1
    zk = json.loads(out["zipkin"])
    assert len(zk) == len(SPANS) + 1
    assert repost(sonde_bin, tmp_path, "/api/v2/spans", out["zipkin"].encode()) == len(SPANS) + 1
    # html: self-contained, the spans embedded as JSON (corrected, critical path marked)
    html = out["html"]
    assert "http://" not in html and "https://" not in html
    m = re.search(r'<script type="application/json" id="sonde-traces">(.*?)</script>', html, re.S)
    assert m, html[:500]
    data = json.loads(m.group(1))
    assert [t["trace_id"] for t in data["traces"]] == [TID, TID2]
    spans = data["traces"][0]["spans"]
    assert [s["name"] for s in spans] == TREE_ORDER
    assert {s["name"] for s in spans if s["critical"]} == CRITICAL
    by = {s["name"]: s for s in spans}
    assert by["handle /cart"]["skew_us"] == -OFFSET_US
    assert by["handle /cart"]["start_us"] - by["GET /checkout"]["start_us"] == 20000
    assert data["traces"][0]["services"] == ["backend", "frontend"]
    # one trace, to stdout; a default output name; formats of recordings refused
    r = run(sonde_bin, "export", "-f", "otlp", "--trace", TID2, "-o", "-", store)
    assert r.returncode == 0, r.stderr
    one = json.loads(r.stdout)
    assert [s["name"] for rs in one["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]] == \
        ["GET /health"]
    r = run(sonde_bin, "export", "-f", "html", "--trace", TID, store)
    assert r.returncode == 0, r.stderr
    page = Path(store[:-len(".sonde")] + ".html").read_text()
    assert '"trace_id":"%s"' % TID in page and TID2 not in page
    assert run(sonde_bin, "export", "-f", "callgrind", store).returncode == 2
    assert run(sonde_bin, "view", "--mode", "cpu", store).returncode == 2
    assert run(sonde_bin, "export", "-f", "zipkin", "--trace", "ff" * 16, "-o", "-", store).returncode == 1


def test_export_repairs_text_that_is_not_utf8(sonde_bin, tmp_path):
    """A root name whose last character straddles the summary's 128-byte
    limit, and a span name holding raw bytes that are not UTF-8 (protobuf
    does not check strings; here written into the store directly): every
    export and the trace list keep every span, the bad bytes shown as
    U+FFFD and the long name cut at a character boundary."""
    tid = "5a1f0c0ffee0000000000000000000c3"
    long_name = "x" * 126 + "\u00e9"  # the 2-byte character sits on bytes 126-127
    db = tmp_path / "text.sonde"
    c = Collector(sonde_bin, db)
    try:
        t0 = time.time_ns() - 10_000_000_000
        c.post("/v1/traces", json.dumps({"resourceSpans": [resource("frontend", "node-a", [
            otlp_span(tid, "d000000000000001", "", long_name, 2, t0, t0 + 5_000_000, {}),
            otlp_span(tid, "d000000000000002", "d000000000000001", "child", 1, t0 + 1_000_000,
                      t0 + 2_000_000, {})])]}).encode())
        c.wait_spans(2)
    finally:
        c.stop()
    with sqlite3.connect(str(db)) as s:
        s.execute("UPDATE span SET name = CAST(X'626164ff2062797465' AS TEXT) WHERE name = 'child'")
    bad = "bad\ufffd byte"

    r = run(sonde_bin, "traces", "--json", "--db", db)
    assert r.returncode == 0, r.stderr
    (t,) = json.loads(r.stdout)["traces"]
    assert t["span_count"] == 2 and long_name.startswith(t["root_name"]), t
    assert len(t["root_name"].encode()) <= 127, t
    for f in ("html", "chrome", "otlp", "zipkin"):
        o = tmp_path / ("text." + f)
        r = run(sonde_bin, "export", "-f", f, "-o", o, db)
        assert r.returncode == 0, (f, r.stderr)
        text = o.read_text(encoding="utf-8")  # strict: fails on any bad byte
        if f == "html":
            m = re.search(r'<script type="application/json" id="sonde-traces">(.*?)</script>', text, re.S)
            (tr,) = json.loads(m.group(1))["traces"]
            assert [s["name"] for s in tr["spans"]] == [long_name, bad], tr["spans"]
            assert long_name.startswith(tr["root_name"]), tr["root_name"]
        else:
            assert json.dumps(bad)[1:-1] in text or bad in text, (f, text[:400])
            assert long_name in text, f
