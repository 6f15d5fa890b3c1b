"""The errors counter, explained: the recording keeps errors by kind (they
sum to the total), the report prints the breakdown under its header and in
--json. Real recordings of code that churns its stack as fast as it can
check the sum; a synthetic one checks the wording."""
import json
import os
import sqlite3
import subprocess

import pytest

from conftest import EXIT_OK

CHURN = r"""
import sys, threading, time
def down(n):
    return 0 if n == 0 else down(n - 1) + 1
def churn():
    end = time.time() + 1.5
    while time.time() < end:
        for d in (1, 40, 3, 80, 7, 150):
            down(d)
ts = [threading.Thread(target=churn, name="churn-%d" % i) for i in range(3)]
for t in ts: t.start()
churn()
for t in ts: t.join()
"""

KINDS = ("errors_stack", "errors_thread", "errors_list", "errors_names", "errors_other")


def meta(path):
    db = sqlite3.connect(str(path))
    out = dict(db.execute("SELECT key, value FROM meta"))
    db.close()
    return out


def test_error_kinds_sum_to_total(sonde_bin, cpython, tmp_path):
    target = tmp_path / "churn.py"
    target.write_text(CHURN)
    rec = tmp_path / "churn.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "-r", "1000", "-o", rec, "--", cpython.path,
                        str(target)], capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    m = meta(rec)
    assert all(k in m for k in KINDS), m
    assert int(m["errors"]) == sum(int(m[k]) for k in KINDS), m
    # the stack errors are samples: never more than there are, and each one
    # is a sample marked truncated
    db = sqlite3.connect(str(rec))
    marked = db.execute("SELECT count(*) FROM sample WHERE flags & 1").fetchone()[0]
    db.close()
    assert int(m["errors_stack"]) <= marked, m
    r = subprocess.run([sonde_bin, "report", "--json", rec], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    errs = json.loads(r.stdout)["errors"]
    assert errs["all"] == int(m["errors"])
    assert errs["stack"] + errs["thread"] + errs["list"] + errs["names"] + errs["other"] == errs["all"]


def test_report_explains_errors(sonde_bin, tmp_path):
    mkrec = os.path.join(os.path.dirname(sonde_bin), "tests", "unit", "mkrec")
    rec = tmp_path / "rec.sonde"
    subprocess.run([mkrec, "recursive", str(rec)], check=True, timeout=30)
    db = sqlite3.connect(str(rec))
    for k, v in (("errors", 9), ("errors_stack", 7), ("errors_thread", 2), ("errors_list", 0),
                 ("errors_names", 0), ("errors_other", 0)):
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, str(v)))
    db.commit()
    db.close()
    r = subprocess.run([sonde_bin, "report", rec], capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    assert "9 errors" in r.stdout
    line = [l for l in r.stdout.splitlines() if l.startswith("Errors: ")]
    assert line and "7 stacks changed while read" in line[0] and "2 threads not placed" in line[0]
    assert "thread lists" not in line[0]
    # an older recording has the total alone: no breakdown line, no failure
    db = sqlite3.connect(str(rec))
    db.execute("DELETE FROM meta WHERE key LIKE 'errors_%'")
    db.commit()
    db.close()
    r = subprocess.run([sonde_bin, "report", "--json", rec], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == EXIT_OK
    assert json.loads(r.stdout)["errors"] == {"all": 9}
