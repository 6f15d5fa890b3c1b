"""Greenlets under the in-process agent (tracer/greenlets.c,
python/sonde/_greenlets.py): every greenlet a lane, its CPU exact (charged
at each switch), parked greenlets with the stack where they wait, names,
`report --task` on a greenlet; a program that never imports greenlet is
recorded as before.

Only Debian's python3 has greenlet and gevent (python3-greenlet,
python3-gevent in scripts/install-deps); the pyenv CPythons do not."""
import json
import os
import subprocess

from conftest import TARGETS, run_sonde
from test_agent import pkg_dir
from test_record import report_json

PY = "/usr/bin/python3"
GW = str(TARGETS / "greenlet_work.py")
N = 50
CPU_REL = 0.10


def workload(r):
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    assert r.returncode == 0 and lines, r.stdout + r.stderr
    return json.loads(lines[-1])


def lanes(rep):
    return {g["name"]: g for g in rep["green_threads"]}


def test_greenlets_exact_cpu_names_parked(sonde_bin, tmp_path):
    out = str(tmp_path / "g.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", PY, GW, N, 10, timeout=120)
    work = workload(r)
    rep = report_json(sonde_bin, out)
    gl = lanes(rep)
    assert all(g["kind"] == "greenlet" for g in rep["green_threads"])
    assert len(work["cpu"]) == N
    tid = rep["threads"][0]["tid"]
    for name, cpu in work["cpu"].items():
        g = gl.get(name)
        assert g, "no lane %s: %s" % (name, sorted(gl))
        i = int(name[1:])
        assert g["function"] == "work_%d" % i
        assert g["tid"] == tid
        assert g["end_s"] is not None, g  # it finished: the lane ended
        assert abs(g["cpu_s"] - cpu) <= CPU_REL * cpu, (name, g["cpu_s"], cpu)
    assert gl["(hub)"]["function"] == "Hub.run"
    assert "(main)" in gl
    for k in range(3):
        p = gl["parker%d" % k]
        assert p["function"] == "parked"
        assert p["cpu_s"] < 0.01 and p["running_pct"] < 5, p
        assert p["wall_s"] > 0.5 * rep["threads"][0]["wall_s"], p  # parked all along
        # where it waits: report --task on it
        one = report_json(sonde_bin, out, "--task", str(p["id"]))
        assert [g["id"] for g in one["green_threads"]] == [p["id"]]
        fns = {f["function"]: f for f in one["functions"]}
        assert "parked" in fns, one["functions"]
        assert fns["parked"]["total_wall_s"] > 0.8 * p["wall_s"], fns["parked"]
    # a worker by name: its own function under it
    one = report_json(sonde_bin, out, "--task", "w7")
    assert [g["name"] for g in one["green_threads"]] == ["w7"]
    assert "work_7" in {f["function"] for f in one["functions"]}


def test_sonde_start_chains_tracer(sonde_bin, tmp_path):
    """sonde.start() in a program that already set its own greenlet tracer:
    both see the switches."""
    out = str(tmp_path / "s.sonde")
    prog = (
        "import gevent, greenlet, json, sonde\n"
        "seen = []\n"
        "greenlet.settrace(lambda ev, args: seen.append(ev))\n"
        "sonde.start(output=%r, rate=200)\n"
        "def spin(n):\n"
        "    for _ in range(n):\n"
        "        sum(range(20000)); gevent.sleep(0)\n"
        "gs = [gevent.spawn(spin, 200) for _ in range(4)]\n"
        "for k, g in enumerate(gs): g.name = 'spin%%d' %% k\n"
        "gevent.joinall(gs)\n"
        "sonde.stop()\n"
        "print(json.dumps({'seen': len(seen)}))\n" % out)
    env = dict(os.environ, PYTHONPATH=pkg_dir(sonde_bin))
    r = subprocess.run([PY, "-c", prog], capture_output=True, text=True, timeout=60, env=env)
    assert workload(r)["seen"] > 800
    gl = lanes(report_json(sonde_bin, out))
    for k in range(4):
        assert gl["spin%d" % k]["function"] == "spin"
        assert gl["spin%d" % k]["cpu_s"] > 0


def test_plain_threads_program_unchanged(sonde_bin, tmp_path):
    """Under record --agent, a program that never imports greenlet does not
    get it imported, and has no green thread."""
    out = str(tmp_path / "t.sonde")
    prog = ("import sys, threading, json\n"
            "t = threading.Thread(target=lambda: sum(range(3000000))); t.start(); t.join()\n"
            "print(json.dumps({'greenlet': 'greenlet' in sys.modules}))\n")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", PY, "-c", prog, timeout=60)
    assert workload(r) == {"greenlet": False}
    assert report_json(sonde_bin, out)["green_threads"] == []
