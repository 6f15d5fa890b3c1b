"""A Go program that embeds CPython through cgo (targets/gohost.go, built
here with the Debian Go toolchain against a pyenv CPython's shared
libpython): goroutines locked to OS threads run Python through
PyGILState_Ensure. sonde sees each of those threads' Python stack, names them
from the OS (prctl in Go, or the binary's name for the main thread), and sees
the GIL waits of the threads that contend with a spinning one, against the
wait the program measures itself around PyEval_RestoreThread."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import SUPPORTED_FOUND, TARGETS, dump_json, markers, run_sonde, wait_for
from test_record import report_json

GO_SRC = TARGETS / "gohost.go"
PY_SRC = TARGETS / "gohost.py"
M = markers(PY_SRC)
ROLES = ("go-spin", "go-sleep", "go-tick-1", "go-tick-2")
# |sonde's GIL-wait share - the measured one| for the ticking threads
WAIT_ABS = 0.15


def _hosts():
    """The oldest CPython from 3.8 and the newest with a shared libpython and
    its python3.X-config: two frame layouts (frame objects, interpreter
    frames). The host embeds CPython 3 (gohost.py is 3.8+ code)."""
    its = [i for i in SUPPORTED_FOUND if i.shared and not i.path.startswith("/usr/")
           and os.path.exists(i.path + "-config") and i.minor >= (3, 8)]
    its.sort(key=lambda i: i.minor)
    picked = its[:1] + its[-1:] if len(its) > 1 else its
    return [pytest.param(i, id=i.version) for i in picked] or \
        [pytest.param(None, id="no-shared-cpython")]


@pytest.fixture(scope="module")
def gocache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("gocache"))


@pytest.fixture(scope="module", params=_hosts())
def gohost(request, gocache, tmp_path_factory):
    it = request.param
    if it is None:
        pytest.fail("no CPython with a shared libpython and python3.X-config found")
    go = shutil.which("go")
    assert go, "no Go toolchain: scripts/install-deps installs golang-go"
    cfg = it.path + "-config"
    cflags = subprocess.run([cfg, "--cflags"], capture_output=True, text=True).stdout.strip()
    ldflags = subprocess.run([cfg, "--ldflags", "--embed"], capture_output=True,
                             text=True).stdout.strip()
    # an rpath, so that the host finds this libpython and no other
    ldflags += " -Wl,-rpath," + it.libdir
    out = str(tmp_path_factory.mktemp("gohost") / "gohost")
    env = dict(os.environ, CGO_ENABLED="1", CGO_CFLAGS=cflags, CGO_LDFLAGS=ldflags,
               GOCACHE=gocache, GO111MODULE="off", GOPATH=gocache + "/path", GOFLAGS="")
    r = subprocess.run([go, "build", "-o", out, str(GO_SRC)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, "go build failed:\n%s" % r.stderr
    home = os.path.dirname(os.path.dirname(it.path))
    return it, out, dict(os.environ, PYTHONHOME=home)


def os_name(pid, tid):
    with open("/proc/%d/task/%d/comm" % (pid, tid)) as f:
        return f.read().rstrip("\n")


def test_gohost_dump(sonde_bin, gohost, start_target):
    it, exe, env = gohost
    t = start_target([exe, PY_SRC, "0"], env=env)
    assert t.info["version"].split()[0] == it.version
    tids = t.info["tids"]
    # names as /proc gives them: the ones Go set, the binary's for main
    for role in ROLES:
        assert os_name(t.pid, tids[role]) == t.info["comm"][role] == role
    assert os_name(t.pid, tids["main"]) == "gohost"
    want = {tids[r]: r for r in ROLES}
    want[tids["main"]] = "MainThread" if t.info["threading"] else "gohost"

    def placed():
        d = dump_json(sonde_bin, t.pid)
        th = {x["tid"]: x for x in d["threads"]}
        ok = all(th.get(tids[r], {}).get("frames") for r in ("go-spin", "go-sleep"))
        return ok and d

    doc = wait_for(placed, 10, "go-spin and go-sleep inside Python")
    assert doc["python_version"] == it.version
    got = {th["tid"]: th for th in doc["threads"]}
    assert {tid: th["name"] for tid, th in got.items()} == want
    fr = lambda role: [(f["function"], f["file"], f["line"]) for f in got[tids[role]]["frames"]]
    assert fr("go-spin") == [("go_spin", "<string>", M["go_spin"])]
    assert fr("go-sleep") == [("go_sleep", "<string>", M["go_sleep"])]
    for role in ("go-tick-1", "go-tick-2"):  # between calls, or inside go_tick (its loop or its return)
        assert fr(role) in ([], [("go_tick", "<string>", M["go_tick"])],
                            [("go_tick", "<string>", M["go_tick"] + 1)]), fr(role)
    assert got[tids["main"]]["frames"] == []
    assert not got[tids["go-sleep"]]["gil"] and not got[tids["main"]]["gil"]
    assert sum(th["gil"] for th in doc["threads"]) <= 1

    r = run_sonde(sonde_bin, "dump", "-p", t.pid)
    assert r.returncode == 0, r.stderr
    for role in ROLES:
        assert '\nThread %d "%s"' % (tids[role], role) in r.stdout, r.stdout


def test_gohost_record_gil_waits(sonde_bin, gohost, tmp_path):
    it, exe, env = gohost
    out = str(tmp_path / "go.sonde")
    r = run_sonde(sonde_bin, "record", "-o", out, "--", exe, PY_SRC, "3", timeout=120)
    assert r.returncode == 0, r.stderr
    docs = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    info, truth = docs[0], docs[-1]["truth"]
    tids = info["tids"]
    rep = report_json(sonde_bin, out)
    th = {t["tid"]: t for t in rep["threads"]}
    for role in ROLES:
        assert th[tids[role]]["name"] == role, rep["threads"]
    main = th[tids["main"]]["name"]
    assert main == ("MainThread" if info["threading"] else "gohost")
    fs = {f["function"] for f in rep["functions"]}
    assert {"go_spin", "go_sleep", "go_tick"} <= fs, sorted(fs)

    spin, sleep = th[tids["go-spin"]], th[tids["go-sleep"]]
    figures = ["go-spin gil %.1f%% wait %.1f%%" % (spin["gil_pct"], spin["gil_wait_pct"]),
               "go-sleep idle %.1f%%" % sleep["idle_pct"]]
    for role in ("go-tick-1", "go-tick-2"):
        t, w = th[tids[role]], truth[role]
        share = w["gil_wait_s"] / w["life_s"]
        figures.append("%s: sonde wait %.1f%%, measured %.1f%% (%d calls)"
                       % (role, t["gil_wait_pct"], 100 * share, w["calls"]))
        # the workload itself: a thread that must wait for the spinner
        assert share > 0.3, figures
        assert abs(t["gil_wait_pct"] / 100 - share) <= WAIT_ABS, figures
    print("\n".join(figures))
    assert sleep["idle_pct"] > 90, figures
    assert spin["gil_pct"] > max(th[tids[r]]["gil_pct"] for r in ("go-tick-1", "go-tick-2")), \
        figures
