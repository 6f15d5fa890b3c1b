"""Many threads: a thread per request makes one report row per request.
Threads of a process named alike (Thread-N (handle), 5 or more) are one row
with their count and sums; --threads all lists each; names show whole."""
import re
import subprocess

from conftest import EXIT_OK

WORK = r"""
import threading, time
def handle(n):
    end = time.time() + 0.02
    while time.time() < end:
        pass
    time.sleep(0.05)
def a_thread_with_a_rather_long_descriptive_name():
    time.sleep(0.6)
t = threading.Thread(target=a_thread_with_a_rather_long_descriptive_name,
                     name="a-thread-with-a-rather-long-name")
t.start()
ts = []
for i in range(30):
    ts.append(threading.Thread(target=handle, args=(i,), name="Thread-%d (handle)" % (i + 1)))
    ts[-1].start()
    time.sleep(0.01)
for x in ts: x.join()
t.join()
"""

ROW = r"^(?P<name>.+?)\s+(?P<pid>\d+)\s+(?P<tid>x?\d+)\s+(?P<samples>\d+)\s+(?P<wall>[\d.]+)\s+(?P<cpu>[\d.]+)"


def rows(text):
    out = {}
    body = text.split("THREAD", 1)[1].splitlines()[1:]
    for l in body:
        m = re.match(ROW, l)
        if not m:
            break
        out.setdefault(m.group("name"), []).append(m.groupdict())
    return out


def test_threads_grouped(sonde_bin, cpython, tmp_path):
    target = tmp_path / "many.py"
    target.write_text(WORK)
    rec = tmp_path / "many.sonde"
    r = subprocess.run([sonde_bin, "record", "-q", "-r", "1000", "-o", rec, "--", cpython.path, str(target)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == EXIT_OK, r.stderr
    g = subprocess.run([sonde_bin, "report", rec], capture_output=True, text=True, timeout=60)
    a = subprocess.run([sonde_bin, "report", "--threads", "all", rec], capture_output=True, text=True,
                       timeout=60)
    assert g.returncode == EXIT_OK and a.returncode == EXIT_OK, g.stderr + a.stderr
    grouped, each = rows(g.stdout), rows(a.stdout)
    singles = [n for n in each if re.fullmatch(r"Thread-\d+ \(handle\)", n)]
    assert len(singles) >= 5, a.stdout
    assert not any(re.fullmatch(r"Thread-\d+ \(handle\)", n) for n in grouped), g.stdout
    grp = grouped["Thread-N (handle)"]
    assert len(grp) == 1 and grp[0]["tid"] == "x%d" % len(singles), g.stdout
    # the group's sums are its members'
    assert int(grp[0]["samples"]) == sum(int(each[n][0]["samples"]) for n in singles)
    assert abs(float(grp[0]["wall"]) - sum(float(each[n][0]["wall"]) for n in singles)) <= 0.002 * len(singles)
    assert abs(float(grp[0]["cpu"]) - sum(float(each[n][0]["cpu"]) for n in singles)) <= 0.002 * len(singles)
    assert "--threads all lists each" in g.stdout
    # a long name is shown whole
    assert "a-thread-with-a-rather-long-name" in grouped, g.stdout
    # asking for one thread of the group still shows it alone
    one = singles[0]
    r = subprocess.run([sonde_bin, "report", "--thread", one, rec], capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_OK, r.stderr
    assert one in rows(r.stdout), r.stdout
    r = subprocess.run([sonde_bin, "report", "--threads", "some", rec], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("sonde: report:"), r.stderr
