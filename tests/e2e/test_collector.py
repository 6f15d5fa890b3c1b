"""sonde collector / traces / trace, end to end, with real clients.

The OpenTelemetry JS SDK (OTLP/HTTP JSON and protobuf exporters) and
zipkin-js (HTTP transport) are installed from npm into tests/e2e/collector/
by a session fixture (`npm ci`, package-lock.json committed) and send spans
to collectors started here. Skipped only when npm is absent.
"""
import gzip
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_for

CLIENTS = Path(__file__).resolve().parent / "collector"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="session")
def sonde_bin():
    p = os.environ.get("SONDE", str(Path(__file__).resolve().parents[2] / "build" / "sonde"))
    if not os.access(p, os.X_OK):
        pytest.fail("sonde binary %s not found: run 'make build' or set SONDE" % p, pytrace=False)
    return p


@pytest.fixture(scope="session")
def node_clients():
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip("npm / node not installed: the real OpenTelemetry and Zipkin clients need them")
    # npm keeps node_modules/.package-lock.json in step with what it installed:
    # when it is newer than the committed lock file the install is current
    # (this also keeps concurrent test runs from wiping each other's modules)
    hidden, lock = CLIENTS / "node_modules" / ".package-lock.json", CLIENTS / "package-lock.json"
    if hidden.exists() and hidden.stat().st_mtime >= lock.stat().st_mtime:
        return node
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=CLIENTS,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "npm ci failed:\n" + r.stdout + r.stderr
    return node


class Collector:
    def __init__(self, sonde_bin, db, *args):
        self.db = str(db)
        self.errf = open(str(db) + ".stderr", "w+")
        self.p = subprocess.Popen([sonde_bin, "collector", "--listen", "127.0.0.1:0", "--db", self.db]
                                  + [str(a) for a in args],
                                  stdout=subprocess.DEVNULL, stderr=self.errf)
        deadline = time.time() + 10
        self.port = self.zport = None
        while time.time() < deadline:
            self.errf.seek(0)
            text = self.errf.read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", text)
            if m:
                self.port = int(m.group(1))
                z = re.search(r" and 127\.0\.0\.1:(\d+)", text)
                self.zport = int(z.group(1)) if z else None
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        assert self.port, "collector did not start: " + text
        self.url = "http://127.0.0.1:%d" % self.port

    def post(self, path, body, ctype="application/json", headers=None, port=None):
        if isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port or self.port, path), data=body,
                                     method="POST", headers=dict({"Content-Type": ctype}, **(headers or {})))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            self.p.wait(timeout=20)
        self.errf.seek(0)
        return self.errf.read()

    def span_count(self):
        # a read straight from the store (WAL: readers see committed batches)
        with sqlite3.connect(self.db) as c:
            return c.execute("SELECT count(*) FROM span").fetchone()[0]

    def wait_spans(self, n, timeout=10):
        wait_for(lambda: self.span_count() >= n, timeout, "%d spans in the store" % n)

    def barrier(self, n):
        """Post one more span (a new id) and wait until the store holds n
        spans, the n-th being this one: requests before it have been
        handled, so what the store holds now is final. Returns the count."""
        t0 = time.time_ns() - 10**9
        s = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "%016x" % (0xba55 + n), "name": "barrier",
             "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 10**6)}
        assert self.post("/v1/traces", otlp_body(spans=[s]))[0] == 200
        self.wait_spans(n)
        return self.span_count()


@pytest.fixture
def collector(sonde_bin, tmp_path):
    started = []

    def start(*args, name="spans.sonde"):
        c = Collector(sonde_bin, tmp_path / name, *args)
        started.append(c)
        return c
    yield start
    for c in started:
        c.stop()


def sonde(sonde_bin, *args):
    return subprocess.run([sonde_bin] + [str(a) for a in args], capture_output=True, text=True, timeout=30)


def trace_json(sonde_bin, db, tid):
    r = sonde(sonde_bin, "trace", "--db", db, tid, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def otlp_body(tid=TRACE_ID, spans=None, service="svc", host="h1", t0_ns=None):
    t0 = t0_ns or time.time_ns() - 10**9
    spans = spans or [{"traceId": tid, "spanId": "00f067aa0ba902b7", "name": "op", "kind": 2,
                       "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 5 * 10**6)}]
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}},
                                    {"key": "host.name", "value": {"stringValue": host}}]},
        "scopeSpans": [{"spans": spans}]}]})


def run_node(node, script, *args):
    r = subprocess.run([node, str(CLIENTS / script)] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def check_two_node_trace(sonde_bin, db, sent, offset_us):
    t = trace_json(sonde_bin, db, sent["trace_id"])
    assert t["trace_id"] == sent["trace_id"]
    spans = {s["name"]: s for s in t["spans"]}
    assert set(spans) == {"GET /checkout", "POST /cart", "handle /cart", "SELECT cart"}
    for s in t["spans"]:
        assert set(s) == {"span_id", "parent_id", "name", "service", "node", "kind", "start_us", "end_us",
                          "skew_us", "status", "attributes", "profile"}
        assert s["profile"] is None  # a client without the agent sends no profile
    root, client, server, db_ = (spans[n] for n in ("GET /checkout", "POST /cart", "handle /cart", "SELECT cart"))
    ids = sent["spans"]
    assert root["parent_id"] is None and root["span_id"] == ids["GET /checkout"]
    assert client["parent_id"] == root["span_id"] and server["parent_id"] == client["span_id"]
    assert db_["parent_id"] == server["span_id"]
    assert (root["service"], root["node"], root["kind"]) == ("frontend", "node-a", "server")
    assert (server["service"], server["node"], server["kind"]) == ("backend", "node-b", "server")
    assert root["attributes"] == {"http.method": "GET", "http.status_code": 200}
    assert db_["status"] == "error" and root["status"] == "unset"
    # node-b's clock is offset_us ahead: its spans are centred in the client span (80 ms vs 60 ms)
    assert root["skew_us"] == 0 and client["skew_us"] == 0
    assert server["skew_us"] == -offset_us and db_["skew_us"] == -offset_us
    t0 = sent["t0_us"]
    assert root["start_us"] == t0 and root["end_us"] == t0 + 100000
    assert server["start_us"] == t0 + 20000 and server["end_us"] == t0 + 80000
    assert client["start_us"] <= server["start_us"] and server["end_us"] <= client["end_us"]
    # raw times are kept in the store, the correction recorded next to them (within a second or two)
    with sqlite3.connect(db) as c:
        raw = c.execute("SELECT start_us FROM span WHERE span_id = ?", (server["span_id"],)).fetchone()[0]
    assert raw == t0 + 20000 + offset_us
    def corrected():
        with sqlite3.connect(db) as c:
            k = dict(c.execute("SELECT name, skew_us FROM span WHERE trace_id = ?", (sent["trace_id"],)))
        return k if k["handle /cart"] else None

    skews = wait_for(corrected, 10, "the server span's clock correction in the store")
    assert skews == {"GET /checkout": 0, "POST /cart": 0, "handle /cart": -offset_us, "SELECT cart": -offset_us}
    # the waterfall shows the corrected order
    r = sonde(sonde_bin, "trace", "--db", db, sent["trace_id"])
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if "|" in l]
    assert [n for l in lines for n in spans if " %s " % n in l + " "] == \
        ["GET /checkout", "POST /cart", "handle /cart", "SELECT cart"]
    assert "skew %+dus" % -offset_us in r.stdout


@pytest.mark.parametrize("encoding", ["json", "proto"])
def test_opentelemetry_js_two_nodes_with_clock_offset(sonde_bin, node_clients, collector, encoding):
    c = collector()
    offset_ms = 5000 if encoding == "json" else 3000
    sent = run_node(node_clients, "send_otel.js", c.url, encoding, offset_ms)
    c.wait_spans(4)
    check_two_node_trace(sonde_bin, c.db, sent, offset_ms * 1000)
    r = sonde(sonde_bin, "traces", "--db", c.db, "--json")
    assert r.returncode == 0, r.stderr
    (tr,) = json.loads(r.stdout)["traces"]
    assert tr == {"trace_id": sent["trace_id"], "root_name": "GET /checkout", "services": ["backend", "frontend"],
                  "span_count": 4, "duration_us": 100000, "start_us": sent["t0_us"]}


def test_zipkin_js_shared_span_merged_and_corrected(sonde_bin, node_clients, collector):
    c = collector("--zipkin-listen", "127.0.0.1:0")
    assert c.zport
    sent = run_node(node_clients, "send_zipkin.js", "http://127.0.0.1:%d" % c.zport, 4000)
    c.wait_spans(3)
    t = trace_json(sonde_bin, c.db, sent["trace_id"])
    # client + server halves of the shared span id are one span; the local child hangs under it
    assert [s["span_id"] for s in t["spans"]] == [sent["span_id"], sent["child_id"]]
    shared, child = t["spans"]
    assert shared["name"] == "get /inventory" and shared["service"] == "zback" and shared["kind"] == "server"
    assert shared["start_us"] == sent["t0_us"] and shared["end_us"] == sent["t0_us"] + 100000
    assert shared["attributes"].get("http.path") == "/inventory"
    assert child["parent_id"] == sent["span_id"] and child["node"] == "10.0.0.2"
    assert child["skew_us"] == -4000000
    assert child["start_us"] == sent["t0_us"] + 30000
    r = sonde(sonde_bin, "traces", "--db", c.db, "--service", "zfront")
    assert sent["trace_id"] in r.stdout


def test_malformed_bodies_get_400_and_change_nothing(sonde_bin, collector):
    c = collector("--max-body", "4096")
    assert c.post("/v1/traces", otlp_body())[0] == 200
    c.wait_spans(1)
    bad = [
        ("/v1/traces", b"{not json", "application/json", {}),
        ("/v1/traces", b'{"resourceSpans": {}}', "application/json", {}),
        ("/v1/traces", b"[1, 2]", "application/json", {}),
        ("/v1/traces", b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf", {}),
        ("/v1/traces", b"\x1f\x8b\x08\x00garbage", "application/json", {"Content-Encoding": "gzip"}),
        ("/api/v2/spans", b'{"traceId": "1"}', "application/json", {}),
        ("/api/v2/spans", b"[", "application/json", {}),
        ("/api/v2/spans", b"\xff\xfe\x00", "application/json", {}),
    ]
    for path, body, ctype, headers in bad:
        status, resp, _ = c.post(path, body, ctype, headers)
        assert status == 400, (path, body, status, resp)
    assert c.post("/v1/traces", b"x" * 5000)[0] == 413
    bomb = gzip.compress(b" " * 100000)
    assert c.post("/v1/traces", bomb, headers={"Content-Encoding": "gzip"})[0] == 413
    assert c.post("/nope", b"{}")[0] == 404
    # a good request after the bad ones: once it is in, they have been handled
    assert c.barrier(2) == 2
    assert c.p.poll() is None, "collector died"


def test_responses_partial_success_gzip_and_duplicates(sonde_bin, collector):
    c = collector()
    t0 = time.time_ns() - 10**9
    good = {"traceId": TRACE_ID, "spanId": "00f067aa0ba902b7", "name": "op", "kind": 2,
            "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 10**6)}
    badid = dict(good, spanId="xyz")
    status, resp, _ = c.post("/v1/traces", otlp_body(spans=[good, badid]))
    assert status == 200
    ps = json.loads(resp)["partialSuccess"]
    assert ps["rejectedSpans"] == 1 and ps["errorMessage"]
    # same span again, gzip-compressed: accepted, stored once
    status, resp, _ = c.post("/v1/traces", gzip.compress(otlp_body(spans=[good]).encode()),
                             headers={"Content-Encoding": "gzip"})
    assert (status, json.loads(resp)) == (200, {})
    zip_span = [{"traceId": "463ac35c9f6413ad", "id": "a2fb4a1d1a96d312", "name": "z",
                 "timestamp": t0 // 1000, "duration": 10, "localEndpoint": {"serviceName": "zs"}}]
    status, resp, _ = c.post("/api/v2/spans", json.dumps(zip_span))
    assert (status, resp) == (202, b"")
    c.wait_spans(2)
    # the duplicate was stored once: one more span and the count is 3, not 4
    assert c.barrier(3) == 3
    log = c.stop()
    assert "1 duplicates" in log, log


def test_token_and_loopback_policy(sonde_bin, collector, tmp_path):
    r = sonde(sonde_bin, "collector", "--listen", "0.0.0.0:0", "--db", tmp_path / "x.sonde")
    assert r.returncode == 2 and "--token" in r.stderr
    c = collector("--token", "s3cret")
    status, _, headers = c.post("/v1/traces", otlp_body())
    assert status == 401
    assert c.post("/v1/traces", otlp_body(), headers={"Authorization": "Bearer wrong"})[0] == 401
    assert c.post("/v1/traces", otlp_body(), headers={"Authorization": "Bearer s3cret"})[0] == 200
    c.wait_spans(1)


def test_port_in_use_and_bad_flags(sonde_bin, collector, tmp_path):
    c = collector()
    r = sonde(sonde_bin, "collector", "--listen", "127.0.0.1:%d" % c.port, "--db", tmp_path / "y.sonde")
    assert r.returncode == 1 and "in use" in r.stderr and r.stderr.startswith("sonde: ")
    assert sonde(sonde_bin, "collector", "--listen", "nonsense").returncode == 2
    assert sonde(sonde_bin, "collector", "--max-skew", "5 parsecs").returncode == 2
    assert sonde(sonde_bin, "traces").returncode == 2
    assert sonde(sonde_bin, "trace", "--db", c.db, "not-hex").returncode == 2


def test_bad_db_file(sonde_bin, tmp_path):
    missing = tmp_path / "missing.sonde"
    r = sonde(sonde_bin, "traces", "--db", missing)
    assert r.returncode == 8 and r.stderr.startswith("sonde: ")
    junk = tmp_path / "junk.sonde"
    junk.write_bytes(b"not a database at all" * 100)
    assert sonde(sonde_bin, "traces", "--db", junk).returncode == 8
    assert sonde(sonde_bin, "trace", "--db", junk, TRACE_ID).returncode == 8
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t(x)")
    assert sonde(sonde_bin, "traces", "--db", other).returncode == 8


def test_forward_to_a_second_collector(sonde_bin, node_clients, collector):
    upstream = collector("--token", "up", name="upstream.sonde")
    edge = collector("--forward", upstream.url, "--forward-token", "up", name="edge.sonde")
    sent = run_node(node_clients, "send_otel.js", edge.url, "json", 2000)
    edge.wait_spans(4)
    upstream.wait_spans(4)
    check_two_node_trace(sonde_bin, upstream.db, sent, 2000000)


PROFILED = r'''
import json, time, sonde
with sonde.span("busy") as sp:
    end = time.process_time() + 0.4
    while time.process_time() < end:
        sum(i * i for i in range(300))
print(json.dumps({"trace": "%032x" % sp.trace_id, "span": "%016x" % sp.span_id}))
'''


def test_forward_keeps_span_profiles(sonde_bin, collector, tmp_path):
    """A span with its profile (the agent's sonde.profile.* attributes, the
    samples as sonde.profile.pprof) reaches the upstream through --forward
    with the profile: the same pprof bytes stored at both ends, the same
    summary in both collectors' trace --json."""
    upstream = collector(name="upstream.sonde")
    edge = collector("--forward", upstream.url, name="edge.sonde")
    r = subprocess.run([sonde_bin, "record", "--agent", "--collector", edge.url, "-o", str(tmp_path / "r.sonde"),
                        "--", "/usr/bin/python3", "-c", PROFILED], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    ids = json.loads(r.stdout.strip().splitlines()[-1])

    def profile(db):
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT pprof FROM span_profile WHERE trace_id=? AND span_id=?",
                               (ids["trace"], ids["span"])).fetchone()
        return row and row[0]
    sent = wait_for(lambda: profile(edge.db), 20, "the span's profile at the edge")
    assert wait_for(lambda: profile(upstream.db), 20, "the span's profile at the upstream") == sent

    def summary(db):
        t = subprocess.run([sonde_bin, "trace", "--db", db, "--json", ids["trace"]], capture_output=True,
                           text=True, timeout=30)
        assert t.returncode == 0, t.stderr
        (sp,) = json.loads(t.stdout)["spans"]
        return sp["profile"], {k: v for k, v in sp["attributes"].items() if k.startswith("sonde.profile.")}
    here, there = summary(edge.db), summary(upstream.db)
    assert here[0] and here[0]["samples"] > 0 and there == here


def test_forward_retries_until_upstream_is_up(sonde_bin, collector, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    edge = collector("--forward", "http://127.0.0.1:%d" % port, name="edge.sonde")
    assert edge.post("/v1/traces", otlp_body())[0] == 200
    time.sleep(0.8)  # a few failed attempts with backoff
    late = subprocess.Popen([sonde_bin, "collector", "--listen", "127.0.0.1:%d" % port, "--db",
                             str(tmp_path / "late2.sonde")], stderr=subprocess.DEVNULL)
    def stored():
        try:
            with sqlite3.connect(tmp_path / "late2.sonde") as conn:
                return conn.execute("SELECT count(*) FROM span").fetchone()[0]
        except sqlite3.Error:
            return 0

    try:
        assert wait_for(stored, 15, "the forwarded span at the upstream that came up late") == 1
    finally:
        late.send_signal(signal.SIGINT)
        late.wait(timeout=20)


def test_retention_drops_old_traces(sonde_bin, collector):
    c = collector("--retention", "1h")
    old = time.time_ns() - 2 * 3600 * 10**9
    assert c.post("/v1/traces", otlp_body(tid="0af7651916cd43dd8448eb211c80319c", t0_ns=old))[0] == 200
    assert c.post("/v1/traces", otlp_body())[0] == 200
    deadline = time.time() + 10
    while time.time() < deadline:
        r = sonde(sonde_bin, "traces", "--db", c.db, "--json")
        ids = [t["trace_id"] for t in json.loads(r.stdout)["traces"]]
        if ids == [TRACE_ID]:
            break
        time.sleep(0.2)
    assert ids == [TRACE_ID]


def test_queries_and_exports(sonde_bin, collector):
    c = collector()
    t0 = time.time_ns() - 10**9
    spans = [
        {"traceId": TRACE_ID, "spanId": "00000000000000a1", "name": "root", "kind": 2,
         "startTimeUnixNano": str(t0), "endTimeUnixNano": str(t0 + 300 * 10**6),
         "attributes": [{"key": "k", "value": {"intValue": "7"}}]},
        {"traceId": TRACE_ID, "spanId": "00000000000000a2", "parentSpanId": "00000000000000a1", "name": "kid",
         "startTimeUnixNano": str(t0 + 10**6), "endTimeUnixNano": str(t0 + 2 * 10**6)},
        # parent never arrives: kept, shown as a root
        {"traceId": TRACE_ID, "spanId": "00000000000000a3", "parentSpanId": "00000000000000ff", "name": "orphan",
         "startTimeUnixNano": str(t0 + 5 * 10**6), "endTimeUnixNano": str(t0 + 6 * 10**6)},
    ]
    short = "1234567890abcdef1234567890abcdef"
    assert c.post("/v1/traces", otlp_body(spans=spans, service="api"))[0] == 200
    assert c.post("/v1/traces", otlp_body(tid=short, service="other"))[0] == 200
    c.wait_spans(4)
    # a late span joins its trace
    late = [{"traceId": TRACE_ID, "spanId": "00000000000000a4", "parentSpanId": "00000000000000a1",
             "name": "late", "startTimeUnixNano": str(t0 + 10 * 10**6), "endTimeUnixNano": str(t0 + 11 * 10**6)}]
    assert c.post("/v1/traces", otlp_body(spans=late, service="worker"))[0] == 200
    c.wait_spans(5)

    def traces(*args):
        r = sonde(sonde_bin, "traces", "--db", c.db, "--json", *args)
        assert r.returncode == 0, r.stderr
        return {t["trace_id"]: t for t in json.loads(r.stdout)["traces"]}

    all_ = traces()
    assert set(all_) == {TRACE_ID, short}
    assert all_[TRACE_ID]["span_count"] == 4 and all_[TRACE_ID]["services"] == ["api", "worker"]
    assert all_[TRACE_ID]["duration_us"] == 300000 and all_[TRACE_ID]["root_name"] == "root"
    assert set(traces("--service", "worker")) == {TRACE_ID}
    assert set(traces("--min-duration", "100ms")) == {TRACE_ID}
    assert set(traces("--since", "1h")) == {TRACE_ID, short}
    t = trace_json(sonde_bin, c.db, TRACE_ID)
    assert [s["name"] for s in t["spans"]] == ["root", "kid", "late", "orphan"]
    assert t["spans"][0]["attributes"] == {"k": 7}
    r = sonde(sonde_bin, "traces", "--db", c.db)
    assert TRACE_ID in r.stdout and "root" in r.stdout

    def export(fmt):
        r = sonde(sonde_bin, "trace", "--db", c.db, TRACE_ID, "--format", fmt)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    otlp = export("otlp")
    ospans = [s for rs in otlp["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert sorted(s["name"] for s in ospans) == ["kid", "late", "orphan", "root"]
    zk = export("zipkin")
    assert sorted(s["name"] for s in zk) == ["kid", "late", "orphan", "root"]
    assert all(s["traceId"] == TRACE_ID for s in zk)
    ch = export("chrome")
    xs = [e for e in ch["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == 4 and all(e["dur"] >= 0 for e in xs)
    # the exports are accepted by a collector again (OTLP JSON and Zipkin v2)
    c2 = collector(name="again.sonde")
    assert c2.post("/v1/traces", json.dumps(otlp))[0] == 200
    assert c2.post("/api/v2/spans", json.dumps(zk))[0] == 202
    c2.wait_spans(4)


def test_overload_gets_503_and_loses_no_accepted_span(sonde_bin, collector):
    loadgen = Path(sonde_bin).resolve().parent / "tests" / "bench" / "loadgen"
    if not os.access(loadgen, os.X_OK):
        pytest.skip("load generator not built: %s" % loadgen)
    c = collector("--max-queue", "400")
    r = subprocess.run([str(loadgen), "127.0.0.1", str(c.port), "6", "2", "200"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    figures = dict(kv.split("=") for kv in r.stdout.split())
    ok, refused, errors = int(figures["ok"]), int(figures["refused"]), int(figures["errors"])
    assert ok > 0 and refused > 0 and errors == 0, r.stdout
    log = c.stop()
    m = re.search(r"received (\d+) spans, stored (\d+)", log)
    assert m and int(m.group(1)) == ok * 200 and int(m.group(2)) == ok * 200, log


HOSTILE = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


def stored(db):
    with sqlite3.connect(db) as conn:
        return {r[0]: r[1:] for r in conn.execute("SELECT name, start_us, end_us, attributes FROM span")}


def test_hostile_times_and_attributes(sonde_bin, collector):
    # inputs made by tests/fuzz/gen_hostile.py: times out of range, lone
    # surrogates, numbers beyond int64, deep nesting
    c = collector(name="otlp.sonde")
    status, resp, _ = c.post("/v1/traces", (HOSTILE / "otlp_json" / "hostile_times.json").read_bytes())
    assert status == 200, resp
    ps = json.loads(resp)["partialSuccess"]
    assert ps["rejectedSpans"] == 5 and ("out of range" in ps["errorMessage"] or "invalid" in ps["errorMessage"])
    status, resp, _ = c.post("/v1/traces", (HOSTILE / "otlp_json" / "hostile_attrs.json").read_bytes())
    assert (status, json.loads(resp)) == (200, {})
    c.wait_spans(3)
    rows = stored(c.db)
    assert set(rows) == {"good", "number forms", "attrs"}
    assert all(0 <= r[0] <= r[1] <= 2**63 // 1000 for r in rows.values())
    attrs = json.loads(rows["attrs"][2])  # (same span id as "good": merged in a trace view)
    assert attrs["keep"] == "yes" and attrs["lone"] == "a\ufffdb" and attrs["last"] == 7
    assert attrs["bigint"] is None and attrs["deep"]["d"]["d"]["d"]
    r = sonde(sonde_bin, "trace", "--db", c.db, TRACE_ID, "--format", "otlp")
    assert r.returncode == 0 and 'UnixNano":"-' not in r.stdout
    log = c.stop()
    assert "5 rejected" in log, log

    p = collector(name="proto.sonde")
    status, resp, _ = p.post("/v1/traces", (HOSTILE / "otlp_proto" / "hostile.pb").read_bytes(),
                             "application/x-protobuf")
    assert status == 200 and resp[:1] == b"\x0a" and resp[2:4] == b"\x08\x01", resp  # rejected_spans 1
    p.wait_spans(2)
    r = sonde(sonde_bin, "trace", "--db", p.db, TRACE_ID, "--format", "otlp")
    assert r.returncode == 0 and 'UnixNano":"-' not in r.stdout and '"9223372036854775000"' in r.stdout, r.stdout
    assert "-1000" not in r.stdout
    r = sonde(sonde_bin, "traces", "--db", p.db)
    assert r.returncode == 0 and "2023-11-14" in r.stdout, r.stdout

    z = collector(name="zipkin.sonde")
    status, resp, headers = z.post("/api/v2/spans", (HOSTILE / "zipkin" / "hostile.json").read_bytes())
    assert status == 202, resp
    assert json.loads(resp)["partialSuccess"]["rejectedSpans"] == 6
    bad = [{"traceId": TRACE_ID, "id": "00f067aa0ba902b7", "name": "max", "timestamp": 2**63 - 1,
            "duration": 2**63 - 1},
           {"traceId": TRACE_ID, "id": "00f067aa0ba902b8", "name": "neg", "timestamp": "-9223372036854775808"},
           {"traceId": "xyz", "id": "00f067aa0ba902b9", "name": "badid", "timestamp": 1700000000000000}]
    status, resp, _ = z.post("/api/v2/spans", json.dumps(bad))
    assert status == 400 and "all 3 spans rejected" in json.loads(resp)["message"], resp
    z.wait_spans(2)  # (answers come after the commit: nothing more is on its way)
    rows = stored(z.db)
    assert set(rows) == {"n1", "n7"}, rows
    attrs = json.loads(rows["n1"][2])
    assert attrs["keep"] == "yes" and attrs["lone"] == "a\ufffdb" and attrs["n"] == 3
    r = sonde(sonde_bin, "traces", "--db", z.db)
    assert r.returncode == 0 and "-290308" not in r.stdout and "2023-11-14" in r.stdout, r.stdout
    log = z.stop()
    assert "9 rejected" in log, log


def loadgen_bin(sonde_bin):
    p = Path(sonde_bin).resolve().parent / "tests" / "bench" / "loadgen"
    assert os.access(p, os.X_OK), "load generator not built: %s" % p
    return p


def test_sigkill_loses_no_acknowledged_span(sonde_bin, collector, tmp_path):
    # 6 concurrent senders; the collector is killed with SIGKILL mid-stream:
    # every span of every request answered 200 is in the store afterwards
    c = collector()
    acks = tmp_path / "acks"
    lg = subprocess.Popen([str(loadgen_bin(sonde_bin)), "127.0.0.1", str(c.port), "6", "6", "200", str(acks)],
                          stdout=subprocess.PIPE, text=True)
    # mid-stream: once 10000 spans are stored, or 3.5 s into the 6 s of sending
    deadline = time.time() + 3.5
    while time.time() < deadline and c.span_count() < 10000:
        time.sleep(0.05)
    c.p.kill()
    c.p.wait(timeout=10)
    out, _ = lg.communicate(timeout=60)
    assert lg.returncode == 0, out
    acked = [tuple(int(x) for x in line.split()) for line in acks.read_text().splitlines()]
    assert acked, out
    with sqlite3.connect(c.db) as db:
        got = dict(db.execute("SELECT substr(span_id, 1, 13), count(*) FROM span GROUP BY 1"))
    missing = sum(200 - got.get("%013x" % (1 << 51 | conn << 36 | seq), 0) for conn, seq in acked)
    print("acknowledged %d spans, %d stored, %d of the acknowledged missing"
          % (len(acked) * 200, sum(got.values()), missing))
    assert missing == 0


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs: a store on it fills up for real."""
    if os.geteuid() != 0:
        pytest.fail("mounting a small tmpfs needs root: run the suite as root, as CI does")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_store_full_gets_503_and_nothing_acknowledged_is_lost(sonde_bin, collector, small_fs, tmp_path):
    c = collector(name="small/spans.sonde")
    t0 = time.time_ns() - 10**9
    statuses, retry_after = {}, set()
    for r in range(200):  # 20,000 spans, far more than 2 MiB hold
        spans = [{"traceId": "%032x" % (r + 1), "spanId": "%016x" % (r << 8 | i + 1), "name": "op %d" % i,
                  "kind": 2, "startTimeUnixNano": str(t0 + i), "endTimeUnixNano": str(t0 + i + 1000)}
                 for i in range(100)]
        status, _, headers = c.post("/v1/traces", otlp_body(spans=spans))
        statuses[r] = status
        if status == 503:
            retry_after.add(headers.get("Retry-After"))
    log = c.stop()
    ok = [r for r, s in statuses.items() if s == 200]
    refused = [r for r, s in statuses.items() if s == 503]
    assert ok and refused and len(ok) + len(refused) == 200, statuses
    assert None not in retry_after, retry_after
    # one line when the store started failing, and a non-zero exit (9)
    assert log.count("cannot write to the store") == 1, log
    assert c.p.returncode == 9, log
    # read a copy: the full file system is left alone
    for suffix in ("", "-wal"):
        src = Path(c.db + suffix)
        if src.exists():
            shutil.copy(src, tmp_path / ("copy.sonde" + suffix))
    with sqlite3.connect(str(tmp_path / "copy.sonde")) as db:
        per_trace = dict(db.execute("SELECT trace_id, count(*) FROM span GROUP BY 1"))
    print("%d requests answered 200, %d answered 503" % (len(ok), len(refused)))
    assert all(per_trace.get("%032x" % (r + 1)) == 100 for r in ok), "acknowledged spans missing"
    assert all("%032x" % (r + 1) not in per_trace for r in refused), "refused requests partly stored"


def test_slow_and_stalled_clients_do_not_starve_others(sonde_bin, collector):
    # 600 connections trickling their headers (from 127.0.0.2) and 150 uploads
    # stalled one byte short of 8 MiB (from 127.0.0.3) stay open while
    # ordinary requests are sent from 127.0.0.1
    c = collector()
    helper = Path(__file__).resolve().parents[1] / "bench" / "slowclients.py"
    r = subprocess.run([sys.executable, str(helper), str(c.port), str(c.p.pid), "600", "150", "8", "5"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    print("latencies (ms) %s, collector RSS %d MiB, %d slow and %d stalled connections held"
          % (res["latency_ms"], res["rss_mib"], res["slow_open"], res["uploads_open"]))
    assert res["statuses"] == [200] * 8, res
    assert 0 < res["rss_mib"] < 512, res


def test_token_checked_before_the_body(sonde_bin, collector):
    c = collector("--token", "s3cret")
    s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
    try:
        # headers announce 8 MiB; not one byte of the body is sent
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 8388608\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 401"), "no 401 before the body"
    finally:
        s.close()
