"""Outputs are written to a new file renamed into place, never through a
symbolic link someone planted (common/outfile.h): sonde export -o and its
default path, view's e key (which never replaces a file either), and the
collector's --db. A planted link to a victim file leaves the victim as it
was; the refusal is one line and exit 1.
"""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_tui import Tmux  # noqa: E402
from test_waterfall import Collector, otlp_span, resource  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SONDE = os.environ.get("SONDE", str(ROOT / "build" / "sonde"))
MKREC = str(Path(SONDE).resolve().parent / "tests" / "unit" / "mkrec")
VICTIM = b"precious data\n"


def sonde(*args, timeout=60):
    return subprocess.run([SONDE, *map(str, args)], capture_output=True, timeout=timeout)


@pytest.fixture
def rec(tmp_path):
    p = tmp_path / "run.sonde"
    subprocess.run([MKREC, "threads", p, "3000"], check=True, timeout=60)
    return p


@pytest.fixture
def victim(tmp_path):
    v = tmp_path / "victim"
    v.write_bytes(VICTIM)
    return v


def refused(r, what):
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert err.startswith("sonde: ") and err.count("\n") == 1 and what in err, err


@pytest.mark.parametrize("fmt", ["collapsed", "callgrind", "speedscope"])
def test_export_o_symlink(rec, victim, tmp_path, fmt):
    link = tmp_path / "out"
    link.symlink_to(victim)
    refused(sonde("export", "-f", fmt, "-o", link, rec), "symbolic link")
    assert victim.read_bytes() == VICTIM and link.is_symlink()
    # a dangling link: its target is not created
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "created")
    refused(sonde("export", "-f", fmt, "-o", dangling, rec), "symbolic link")
    assert not (tmp_path / "created").exists()


def test_export_default_path_symlink(rec, victim):
    link = rec.with_suffix(".collapsed")  # the default output of run.sonde
    link.symlink_to(victim)
    refused(sonde("export", "-f", "collapsed", rec), "symbolic link")
    assert victim.read_bytes() == VICTIM


def test_export_store_symlink(victim, tmp_path):
    """sonde export on a span store goes through the same writer."""
    c = Collector(SONDE, tmp_path / "spans.sonde")
    try:
        t0 = 1_700_000_000_000_000_000
        c.post("/v1/traces", json.dumps({"resourceSpans": [resource("svc", "node", [
            otlp_span("ab" * 16, "cd" * 8, "", "GET /", 2, t0, t0 + 1_000_000, {})])]}).encode())
        c.wait_spans(1)
    finally:
        c.stop()
    link = tmp_path / "spans.otlp.json"
    link.symlink_to(victim)
    refused(sonde("export", "-f", "otlp", c.db), "symbolic link")
    assert victim.read_bytes() == VICTIM
    link.unlink()
    r = sonde("export", "-f", "otlp", c.db)
    assert r.returncode == 0 and b"GET /" in link.read_bytes(), r.stderr


def test_export_replaces_hard_link_not_its_target(rec, victim, tmp_path):
    """An existing output is replaced by a new file: another name of the
    same inode (a hard link) keeps the old content."""
    out = tmp_path / "out.collapsed"
    os.link(victim, out)
    r = sonde("export", "-f", "collapsed", "-o", out, rec)
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == VICTIM
    assert out.read_bytes() != VICTIM and b";" in out.read_bytes()
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 & ~_umask()
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_export_refuses_fifo_and_directory(rec, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(sonde("export", "-f", "collapsed", "-o", fifo, rec, timeout=20), "not a regular file")
    refused(sonde("export", "-f", "collapsed", "-o", tmp_path, rec), "directory")
    # a character device is written in place
    r = sonde("export", "-f", "collapsed", "-o", "/dev/null", rec)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("suffix", ["", "-wal", "-journal"])
def test_collector_db_symlink(tmp_path, victim, suffix):
    db = tmp_path / "spans.sonde"
    target = tmp_path / "created"
    # a dangling link as the store, or a link to a victim as its companion
    (Path(str(db) + suffix)).symlink_to(target if not suffix else victim)
    r = sonde("collector", "--listen", "127.0.0.1:0", "--db", db, timeout=20)
    refused(r, "symbolic link")
    assert not target.exists() and victim.read_bytes() == VICTIM


def test_collector_db_not_regular(tmp_path):
    r = sonde("collector", "--listen", "127.0.0.1:0", "--db", tmp_path, timeout=20)
    refused(r, "not a regular file")


def test_view_export_never_replaces(rec, victim, tmp_path):
    """e in sonde view: run.callgrind exists (a link to a victim, then a
    file): the export goes to run-2.callgrind, run-3.callgrind, and the
    status line says so."""
    first = tmp_path / "run.callgrind"
    first.symlink_to(victim)
    t = Tmux(tmp_path)
    try:
        t.type("%s view %s" % (SONDE, rec.name))  # the shell runs in tmp_path
        t.keys("Enter")
        t.wait_for("call tree")
        t.keys("e")
        t.wait_for("export as")
        t.keys("c")
        s = t.wait_for("exported:")
        assert "exported: run-2.callgrind (run.callgrind exists: kept)" in s, s
        t.keys("e")
        t.wait_for("export as")
        t.keys("c")
        s = t.wait_for("run-3.callgrind")
        t.keys("q")
        t.assert_restored()
    finally:
        t.kill()
    assert victim.read_bytes() == VICTIM and first.is_symlink()
    for n in ("run-2.callgrind", "run-3.callgrind"):
        assert (tmp_path / n).read_bytes().startswith(b"# callgrind format"), n
