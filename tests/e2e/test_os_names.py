"""Threads Python has no name for take their OS name (/proc/PID/task/TID/comm):
a program that never imported threading, whose threads come from _thread
(targets/native_names.py, run with -S: a site .pth can import threading). dump, record/report, top and the exports, from
outside and under the agent; a name is never "?" nor empty."""
import json
import os
import subprocess

import pytest

from conftest import TARGETS, dump_json, markers, run_sonde, wait_for
from test_record import report_json

NN = TARGETS / "native_names.py"
M = markers(NN)


def comm(pid, tid):
    with open("/proc/%d/task/%d/comm" % (pid, tid)) as f:
        return f.read().rstrip("\n")


def launched_comm(cpython):
    """The name the kernel gives a program's threads: its file's, cut to 15."""
    return os.path.basename(cpython.path)[:15]


def test_dump_names_from_os(sonde_bin, cpython, start_target):
    t = start_target([cpython.path, "-S", NN])
    assert t.info["threading"] is False
    tids = t.info["tids"]
    want = {tid: comm(t.pid, tid) for tid in tids.values()}
    assert want[tids["spin"]] == "raw-spin"

    def parked():
        # after "ready" the main thread waits for the GIL (raw-spin holds
        # it) before it calls main_park: dump until it is there
        doc = dump_json(sonde_bin, t.pid)
        got = {th["tid"]: th for th in doc["threads"]}
        main = got.get(tids["main"])
        return doc if main and main["frames"] and main["frames"][0]["function"] == "main_park" \
            else None
    doc = wait_for(parked, 30, "the main thread in main_park", interval=0.05)
    got = {th["tid"]: th for th in doc["threads"]}
    assert {tid: th["name"] for tid, th in got.items()} == want
    fr = [(f["function"], f["line"]) for f in got[tids["spin"]]["frames"]]
    assert fr[0] == ("raw_spin", M["raw_spin"])
    assert got[tids["sleep"]]["frames"][0]["function"] == "raw_sleep"
    assert got[tids["main"]]["frames"][0]["function"] == "main_park"

    r = run_sonde(sonde_bin, "dump", "-p", t.pid)
    assert r.returncode == 0, r.stderr
    for tid, name in want.items():
        assert '\nThread %d "%s"' % (tid, name) in r.stdout, r.stdout
    assert '"?"' not in r.stdout


def check_report(sonde_bin, out, want):
    rep = report_json(sonde_bin, out)
    names = {t["tid"]: t["name"] for t in rep["threads"] if t["tid"]}
    for tid, name in want.items():
        assert names.get(tid) == name, (tid, name, rep["threads"])
    assert all(n and n != "?" for n in names.values()), names
    text = run_sonde(sonde_bin, "report", out).stdout
    assert "raw-spin" in text and "\n?" not in text, text


def test_record_attached_names_from_os(sonde_bin, cpython, start_target, tmp_path):
    t = start_target([cpython.path, "-S", NN])
    tids = t.info["tids"]
    want = {tid: comm(t.pid, tid) for tid in tids.values()}
    out = str(tmp_path / "r.sonde")
    r = run_sonde(sonde_bin, "record", "-d", "1", "-o", out, "-p", t.pid, timeout=60)
    assert r.returncode == 0, r.stderr
    check_report(sonde_bin, out, want)
    # the exports that name threads
    for fmt, opener in (("speedscope", "rb"), ("chrome", "rb"), ("pprof", "rb"), ("html", "rb")):
        dst = str(tmp_path / ("x." + fmt))
        r = run_sonde(sonde_bin, "export", "-f", fmt, "-o", dst, out)
        assert r.returncode == 0, r.stderr
        data = open(dst, opener).read()
        if fmt == "pprof":
            import gzip
            data = gzip.decompress(data)
        assert b"raw-spin" in data, fmt
        assert want[tids["main"]].encode() in data, fmt
    sp = json.load(open(str(tmp_path / "x.speedscope")))
    assert not any(p["name"].startswith("?") for p in sp["profiles"]), sp["profiles"]


@pytest.mark.min_python((3, 8), "the in-process agent (python/sonde) supports 3.8+ only")
def test_record_launched_and_agent_names_from_os(sonde_bin, cpython, tmp_path):
    base = launched_comm(cpython)
    for how in ((), ("--agent",)):
        out = str(tmp_path / ("l%d.sonde" % len(how)))
        r = run_sonde(sonde_bin, "record", *how, "-o", out, "--", cpython.path, "-S", NN, "1.5",
                      timeout=60)
        assert r.returncode == 0, r.stderr
        info = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
        tids = info["tids"]
        assert info["threading"] is False
        want = {tids["spin"]: "raw-spin", tids["sleep"]: base, tids["main"]: base}
        check_report(sonde_bin, out, want)


def test_top_names_from_os(sonde_bin, cpython, start_target):
    t = start_target([cpython.path, "-S", NN])
    tids = t.info["tids"]
    want = {tid: comm(t.pid, tid) for tid in tids.values()}
    r = run_sonde(sonde_bin, "top", "-d", "1.5", "-i", "0.5", "-p", t.pid, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        # NAME PID TID ...: the name is what comes before the PID
        if len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit() and int(parts[2]) in want:
            rows[int(parts[2])] = line[:line.index(" " + parts[1] + " ")].strip()
    assert rows == want, r.stdout
