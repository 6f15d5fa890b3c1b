"""Every byte of a recording or a span store is untrusted input.

A real recording (`sonde record` of a small threaded program), a synthetic
one (tests/unit/mkrec) and a real span store (a collector fed over OTLP/HTTP)
are mutated in many deterministic ways: bit flips, truncations, zeroed 4 KiB
pages, tables replaced by views (one of them endless), NULLs, huge, negative
and text values in every column, bad meta rows, and non-regular files (FIFO,
directory, device). The readers: `report` (text and --json), `view` (not on
a terminal: the report or the trace list), every `export` format, `traces`
and `trace` (every output) on stores. Each copy meets one command per way
of opening a file (a recording: report, view and export, which probe for a
span store first; a store: traces, view, export); every copy that one of
them reads meets every reader, so that each output path sees each file that
loads.

Each run must end with exit 0 or 8 (6 only for a file that really claims a
newer schema; 1 only for "no trace" of a trace id that a damaged store no
longer holds), one `sonde:` line on stderr when it fails, within a timeout,
and without a sanitizer report: run it with SONDE pointing at a build with
-Db_sanitize=address,undefined (`make check` does) to catch memory errors
and undefined behaviour that a release build survives silently.
"""
import concurrent.futures
import itertools
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SONDE = os.environ.get("SONDE", str(ROOT / "build" / "sonde"))
MKREC = str(Path(SONDE).resolve().parent / "tests" / "unit" / "mkrec")
TIMEOUT = 30  # seconds per run: a hang fails the test
PAGE = 4096

# any sanitizer report fails the run (exit code 99 and a report on stderr)
ENV = dict(os.environ)
ENV.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
ENV.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1:exitcode=99")
SANITIZER = re.compile(r"runtime error|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer")

WORK = r"""
import threading, time
def f(until):
    s = 0
    while time.monotonic() < until:
        for i in range(1000):
            s += i * i
    return s
end = time.monotonic() + 0.5
ts = [threading.Thread(target=f, args=(end,), name="worker-%d" % i) for i in range(2)]
[t.start() for t in ts]
f(end - 0.2)
[t.join() for t in ts]
"""


def export_formats():
    r = subprocess.run([SONDE, "export", "--help"], capture_output=True, text=True, timeout=30)
    text = r.stdout.split("formats:", 1)[1].split("\n\n", 1)[0]
    names = [line.split()[0] for line in text.strip().splitlines()]
    assert len(names) >= 7, text
    return names


def recording_readers():
    runs = [["report", "--json"], ["view"], ["export", "-f", "chrome", "-o", "-"], ["report"],
            ["report", "--mode", "gil", "-n", "0"]]
    runs += [["export", "-f", f, "-o", "-"] for f in export_formats() if f != "chrome"]
    return [r + ["{file}"] for r in runs]


# the ways a command opens a recording: model_load, then the span-store
# probe before it (view, export)
REC_OPENERS = 3


def store_readers(trace_ids):
    runs = [["traces", "--json", "-n", "0", "--db", "{file}"], ["view", "{file}"],
            ["export", "-f", "html", "-o", "-", "{file}"], ["traces", "--db", "{file}"]]
    for tid in trace_ids:
        runs += [["trace", "--db", "{file}", tid], ["trace", "--json", "--db", "{file}", tid]]
        runs += [["trace", "-f", f, "--db", "{file}", tid] for f in ("otlp", "zipkin", "chrome")]
    runs += [["export", "-f", f, "-o", "-", "{file}"] for f in ("chrome", "otlp", "zipkin")]
    return runs


# the ways a command opens a store: span_store_open (loading every trace),
# the probe before it (view, export)
STORE_OPENERS = 3


def run(args, path):
    argv = [SONDE] + [a.replace("{file}", str(path)) for a in args]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=ENV, timeout=TIMEOUT, start_new_session=True)
    except subprocess.TimeoutExpired:
        return argv, None, "hang (killed after %d s)" % TIMEOUT
    return argv, r.returncode, r.stderr.decode(errors="replace")


def newer_schema(path):
    """Does the file (still readable by sqlite3) claim a schema (of its
    samples or, since span stores read older versions too, of its spans)
    newer than 1?"""
    try:
        c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        vs = [r[0] for r in c.execute("SELECT value FROM meta WHERE key IN ('schema_version',"
                                      " 'spans_schema_version')")]
        c.close()
        return any(str(v).isdigit() and int(v) > 1 for v in vs)
    except Exception:
        return False


def verdict(argv, rc, err, path):
    """None if this run behaved, else why not."""
    if rc is None:
        return err
    if SANITIZER.search(err):
        return "sanitizer report:\n" + err[-3000:]
    if rc < 0:
        return "killed by signal %s" % signal.Signals(-rc).name
    ok = {0, 8}
    if rc == 6 and newer_schema(path):
        ok.add(6)
    if rc == 1 and re.search(r"^sonde: (no trace \w+ in the store|.* holds no trace)$", err.strip()):
        ok.add(1)  # a trace looked up by id that the damaged store no longer holds
    if rc not in ok:
        return "exit %d: %s" % (rc, err.strip()[-2000:])
    if rc and (err.count("\n") != 1 or not err.startswith("sonde: ")):
        return "exit %d without exactly one 'sonde:' line: %r" % (rc, err[-2000:])
    return None


def check_all(mutants, readers, openers):
    """Run readers on every mutant (in parallel) and fail with the list of
    misbehaving runs. Every mutant gets the openers (one per way a command
    opens its input); a mutant that any of them reads (exit 0) gets every
    reader, so that each output path meets each file that loads."""
    bad = []
    runs = 0

    def judge(jobs):
        nonlocal runs
        runs += len(jobs)
        loaded = set()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
            futs = {ex.submit(run, args, m): (m, name) for name, m, args in jobs}
            for fut in concurrent.futures.as_completed(futs):
                m, name = futs[fut]
                argv, rc, err = fut.result()
                why = verdict(argv, rc, err, m)
                if why:
                    bad.append("%s: %s\n  %s" % (name, " ".join(argv[1:]), why))
                elif rc == 0:
                    loaded.add(name)
        return loaded
    loaded = judge([(name, m, args) for name, m in mutants for args in openers])
    judge([(name, m, args) for name, m in mutants if name in loaded for args in readers if args not in openers])
    assert not bad, "%d of %d runs misbehaved:\n%s" % (len(bad), runs, "\n".join(sorted(bad)[:30]))
    assert loaded, "no mutant was readable: the readers' outputs were never exercised"


# ---- mutations ---------------------------------------------------------

def byte_mutants(base, out, seed, flips=32):
    data = base.read_bytes()
    rnd = random.Random(seed)
    n = len(data)
    res = []

    def put(name, b):
        p = out / (name + ".sonde")
        p.write_bytes(b)
        res.append((name, p))
    for i in range(flips):
        b = bytearray(data)
        # half of them in the first pages: the header, the schema, the meta and small tables
        pos = rnd.randrange(min(n, 3 * PAGE)) if i % 2 else rnd.randrange(n)
        b[pos] ^= 1 << rnd.randrange(8)
        put("flip%02d-%d" % (i, pos), bytes(b))
    for i in range(8):
        b = bytearray(data)
        for _ in range(16):
            b[rnd.randrange(n)] = rnd.randrange(256)
        put("scramble%d" % i, bytes(b))
    for cut in sorted({0, 1, 15, 16, 99, 100, 512, PAGE, PAGE + 1, n // 2, n - PAGE, n - 1}):
        if 0 <= cut < n:
            put("trunc%d" % cut, data[:cut])
    for pg in range((n + PAGE - 1) // PAGE):
        put("zeropage%d" % pg, data[:pg * PAGE] + bytes(min(PAGE, n - pg * PAGE)) + data[(pg + 1) * PAGE:])
    return res


def tables_of(path):
    c = sqlite3.connect(str(path))
    tabs = {}
    for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"):
        tabs[t] = [r[1] for r in c.execute('PRAGMA table_info("%s")' % t)]
    c.close()
    return tabs


def sql_mutant(base, out, name, sql):
    p = out / (name + ".sonde")
    shutil.copyfile(base, p)
    c = sqlite3.connect(str(p), isolation_level=None)
    c.executescript(sql)
    c.close()
    return (name, p)


def loose(t):
    """SQL that makes table t a copy without constraints (so that any value
    fits any column, ids included)."""
    return ('CREATE TABLE "x_%s" AS SELECT * FROM "%s"; DROP TABLE "%s"; ALTER TABLE "x_%s" RENAME TO "%s";'
            % (t, t, t, t, t))


VALUES = [("null", "NULL"), ("max", str(2**63 - 1)), ("min", str(-2**63)), ("neg", "-1"),
          ("big", str(2**40 + 7)), ("text", "'x\x1b]0;pwned\x07'"), ("real", "1e300"), ("blob", "x'00ff80'")]


def schema_mutants(base, out):
    res = []
    rot = itertools.count()
    tabs = tables_of(base)
    for t, cols in tabs.items():
        res.append(sql_mutant(base, out, "view-%s" % t, 'ALTER TABLE "%s" RENAME TO "old_%s"; '
                              'CREATE VIEW "%s" AS SELECT * FROM "old_%s";' % (t, t, t, t)))
        sel = ", ".join("x AS %s" % c for c in cols)
        res.append(sql_mutant(base, out, "endless-view-%s" % t, 'DROP TABLE "%s"; CREATE VIEW "%s" AS WITH '
                              'RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT %s FROM r;'
                              % (t, t, sel)))
        res.append(sql_mutant(base, out, "dropped-%s" % t, 'DROP TABLE "%s";' % t))
        res.append(sql_mutant(base, out, "empty-%s" % t, 'DELETE FROM "%s";' % t))
        res.append(sql_mutant(base, out, "generated-%s" % t,
                              loose(t) + 'ALTER TABLE "%s" RENAME TO "g_%s"; CREATE TABLE "%s"(%s, pad GENERATED '
                              'ALWAYS AS (zeroblob(1000000000))); INSERT INTO "%s" SELECT * FROM "g_%s";'
                              % (t, t, t, ", ".join(cols), t, t)))
        for c in cols:
            # NULL in every row, and one other value (in turn) in the first row
            k = next(rot)
            for vname, v in (VALUES[0], VALUES[1 + k % (len(VALUES) - 1)]):
                where = "" if vname == "null" else ' WHERE rowid = (SELECT min(rowid) FROM "%s")' % t
                res.append(sql_mutant(base, out, "%s-%s-%s" % (t, c, vname),
                                      loose(t) + 'UPDATE "%s" SET "%s" = %s%s;' % (t, c, v, where)))
    return res


def meta_mutants(base, out, keys):
    res = []
    for k in keys:
        for vname, v in [("null", "NULL"), ("other", "'other'"), ("newer", "'999'"), ("neg", "'-1'"),
                         ("text", "'abc'"), ("huge", "'99999999999999999999999'")]:
            res.append(sql_mutant(base, out, "meta-%s-%s" % (k, vname),
                                  "UPDATE meta SET value = %s WHERE key = '%s';" % (v, k)))
    for k, v in [("duration_ns", "-9223372036854775808"), ("rate_hz", "0"), ("rate_hz", "-5"),
                 ("gil_switches", "-1"), ("max_skew_us", "-9223372036854775808"),
                 ("max_skew_us", "9223372036854775807"), ("start_unix_ns", "1e400")]:
        res.append(sql_mutant(base, out, "meta-%s-%s" % (k, v),
                              "INSERT OR REPLACE INTO meta VALUES('%s', '%s');" % (k, v)))
    return res


# ---- the files ---------------------------------------------------------

@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-rec")
    real = d / "real.sonde"
    r = subprocess.run([SONDE, "record", "-q", "-r", "1000", "-o", real, "--", sys.executable, "-c", WORK],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    c = sqlite3.connect(str(real))
    counts = [c.execute("SELECT count(*) FROM %s" % t).fetchone()[0] for t in ("sample", "stack", "gil")]
    c.close()
    assert min(counts) > 0, "the recording to mutate is empty: %s" % counts
    synth = d / "synth.sonde"
    subprocess.run([MKREC, "threads", synth, "300"], check=True, timeout=60)
    return [real, synth]


def post(port, body):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % port, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A span store written by a real collector: three traces over two
    nodes, with attributes."""
    d = tmp_path_factory.mktemp("hostile-store")
    db = d / "spans.sonde"
    errf = open(d / "collector.stderr", "w+")
    p = subprocess.Popen([SONDE, "collector", "--listen", "127.0.0.1:0", "--db", db],
                         stdout=subprocess.DEVNULL, stderr=errf)
    port, deadline = None, time.time() + 20
    while time.time() < deadline and port is None and p.poll() is None:
        errf.seek(0)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", errf.read())
        port = int(m.group(1)) if m else None
        time.sleep(0.02)
    assert port, "collector did not start"
    ids = ["%032x" % (0x4bf92f3577b34da6a3ce929d0e0e4736 + i) for i in range(3)]
    t0 = time.time_ns() - 10**9
    try:
        for i, tid in enumerate(ids):
            for host, span, parent, off in (("h1", "00f067aa0ba902b7", "", 0), ("h2", "00f067aa0ba902b8",
                                                                                "00f067aa0ba902b7", 1)):
                s = {"traceId": tid, "spanId": span, "name": "op-%d-%s" % (i, host), "kind": 2 if not parent else 3,
                     "startTimeUnixNano": str(t0 + off * 10**6), "endTimeUnixNano": str(t0 + (5 - off) * 10**6),
                     "attributes": [{"key": "http.route", "value": {"stringValue": "/x/%d" % i}},
                                    {"key": "n", "value": {"intValue": "42"}}]}
                if parent:
                    s["parentSpanId"] = parent
                post(port, json.dumps({"resourceSpans": [{
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc-" + host}},
                                                {"key": "host.name", "value": {"stringValue": host}}]},
                    "scopeSpans": [{"spans": [s]}]}]}))
        deadline = time.time() + 20
        while time.time() < deadline:
            with sqlite3.connect(str(db)) as c:
                if c.execute("SELECT count(*) FROM span").fetchone()[0] >= 2 * len(ids):
                    break
            time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
    c = sqlite3.connect(str(db), isolation_level=None)
    assert c.execute("SELECT count(*) FROM span").fetchone()[0] == 2 * len(ids)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(db) + suffix):
            os.unlink(str(db) + suffix)
    return db, ids


# ---- the tests ---------------------------------------------------------

def test_intact_files_read_fine(recordings, store):
    """The unmutated files pass every reader with exit 0: the mutants below
    start from files the readers really read."""
    db, ids = store
    for files, readers in ((recordings, recording_readers()), ([db], store_readers(ids))):
        for f in files:
            for args in readers:
                argv, rc, err = run(args, f)
                assert rc == 0 and not SANITIZER.search(err), (argv, rc, err)


def rec_check(mutants):
    readers = recording_readers()
    check_all(mutants, readers, readers[:REC_OPENERS])


def store_check(mutants, ids):
    readers = store_readers(ids[:1])
    check_all(mutants, readers, readers[:STORE_OPENERS])


@pytest.mark.parametrize("which", ["real", "synth"])
def test_damaged_recordings(recordings, tmp_path, which):
    base = recordings[0 if which == "real" else 1]
    rec_check(byte_mutants(base, tmp_path, seed=1 if which == "real" else 2, flips=32 if which == "real" else 8))


def test_crafted_recordings(recordings, tmp_path):
    base = recordings[0]
    mutants = schema_mutants(base, tmp_path)
    mutants += meta_mutants(base, tmp_path, ["format", "schema_version"])
    # samples whose times would overflow a sum, or make one sample a year long
    for name, sql in [("ts-huge", "UPDATE sample SET ts = 9223372036854775807 - rowid;"),
                      ("ts-neg", "UPDATE sample SET ts = -9223372036854775807 + rowid;"),
                      ("wall-huge", "UPDATE sample SET wall_ns = 4611686018427387904;"),
                      ("cpu-huge", "UPDATE sample SET cpu_ns = 4611686018427387904;"),
                      ("wall-year", "UPDATE sample SET wall_ns = 31536000000000000;"),
                      ("tid-max", "UPDATE thread SET tid = 2147483647, pid = 2147483647;"),
                      ("stack-cycle", "UPDATE stack SET parent = id;"),
                      # one chain 5000 deep (every node on top of the one before), every sample on it
                      ("stack-deep", "INSERT INTO stack(id, parent, frame) WITH RECURSIVE r(i) AS (SELECT 1 UNION"
                                     " ALL SELECT i + 1 FROM r WHERE i < 5000) SELECT (SELECT max(id) FROM stack)"
                                     " + i, (SELECT max(id) FROM stack) + i - 1, 1 FROM r;"
                                     " UPDATE sample SET stack = (SELECT max(id) FROM stack);"),
                      ("ids-sparse", "UPDATE string SET id = id + 100000000 WHERE id = (SELECT max(id) FROM string);"),
                      ("frame-bad-string", "UPDATE frame SET name = 4000000000;"),
                      ("gil-holder", "UPDATE gil SET holder = 99999, waiters = -5;")]:
        mutants.append(sql_mutant(base, tmp_path, name, loose("sample") + loose("thread") + sql))
    rec_check(mutants)


def test_damaged_span_store(store, tmp_path):
    db, ids = store
    store_check(byte_mutants(db, tmp_path, seed=3), ids)


def test_crafted_span_store(store, tmp_path):
    db, ids = store
    mutants = schema_mutants(db, tmp_path)
    mutants += meta_mutants(db, tmp_path, ["spans_schema_version"])
    for name, sql in [("times-max", "UPDATE span SET start_us = 9223372036854775807, end_us = -9223372036854775808;"),
                      ("skew-far", "UPDATE span SET start_us = 0 WHERE node = 'h2';"),
                      ("utf8", "UPDATE span SET name = CAST(x'fffec328eda080' AS TEXT),"
                               " service = CAST(x'c0af' AS TEXT), attributes = CAST(x'7b22ff223a317d' AS TEXT);"),
                      ("not-hex", "UPDATE span SET span_id = 'zzzzzzzzzzzzzzzz', parent_id = '\x1b[2J';"),
                      ("trace-null", "UPDATE trace SET trace_id = NULL;")]:
        mutants.append(sql_mutant(db, tmp_path, name, loose("span") + loose("trace") + sql))
    store_check(mutants, ids)


def test_not_regular_files(recordings, store, tmp_path):
    """A FIFO (which would block an open for reading forever), a directory
    and a device: exit 8 with one line, at once."""
    fifo = tmp_path / "fifo.sonde"
    os.mkfifo(fifo)
    link = tmp_path / "link.sonde"
    link.symlink_to(fifo)
    d = tmp_path / "dir.sonde"
    d.mkdir()
    db, ids = store
    # (export -f otlp / zipkin on what is not a store is a usage error, exit 2)
    readers = recording_readers() + [r for r in store_readers(ids[:1]) if r[:3] not in
                                     (["export", "-f", "otlp"], ["export", "-f", "zipkin"])]
    bad = []
    for f in (fifo, link, d, Path("/dev/zero"), Path("/dev/null")):
        for args in readers:
            argv, rc, err = run(args, f)
            why = verdict(argv, rc, err, f)
            if why is None and rc != 8:
                why = "exit %d, not 8" % rc
            if why:
                bad.append("%s: %s" % (" ".join(argv[1:]), why))
    assert not bad, "\n".join(bad[:30])
