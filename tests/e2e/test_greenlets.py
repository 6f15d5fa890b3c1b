"""Greenlets under the in-process agent (tracer/greenlets.c,
python/sonde/_greenlets.py): every greenlet a lane, its CPU exact (charged
at each switch), parked greenlets with the stack where they wait, names,
`report --task` on a greenlet; a program that never imports greenlet is
recorded as before.

Only Debian's python3 has greenlet and gevent (python3-greenlet,
python3-gevent in scripts/install-deps); the pyenv CPythons do not."""
import json
import os
import sqlite3
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


SHORT = """
import greenlet, json, time
class G(greenlet.greenlet):
    pass
cpu = {}
def make(i, steps):
    def work():
        t = 0.0
        for _ in range(steps):
            c0 = time.thread_time()
            x = 0
            for k in range(%(base)d * (5 + i) // 5):
                x += k * k
            t += time.thread_time() - c0
            main.switch()
        cpu[G.getcurrent().name] = t
    # each worker's code is its own (work_0, work_1...): a sample given
    # another greenlet's stack shows
    name = "work_%%d" %% i
    work.__code__ = work.__code__.replace(co_name=name, co_qualname=name)
    return work
main = greenlet.getcurrent()
gs = []
for i in range(%(n)d):
    g = G(make(i, %(steps)d))
    g.name = "w%%d" %% i
    gs.append(g)
while any(not g.dead for g in gs):
    for g in gs:
        if not g.dead:
            g.switch()
print(json.dumps({"cpu": cpu}))
"""


def test_greenlets_exact_cpu_short_yields(sonde_bin, tmp_path):
    """Greenlets that switch every few tens of µs: most switches are charged
    without a read of the thread's CPU clock (tracer/greenlets.h), yet each
    greenlet's CPU stays within 20% of what it measured itself."""
    out = str(tmp_path / "s.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", PY, "-c",
                  SHORT % {"n": 6, "steps": 1500, "base": 1500}, timeout=120)
    work = workload(r)
    gl = lanes(report_json(sonde_bin, out))
    assert len(work["cpu"]) == 6
    for name, cpu in work["cpu"].items():
        g = gl[name]
        assert g["end_s"] is not None, g
        assert abs(g["cpu_s"] - cpu) <= 0.2 * cpu, (name, g["cpu_s"], cpu)
    # samples whose greenlet switched between the read of the switches and
    # the stack read are counted (meta greenlet_races), among the samples
    # that ran (not the suspended ones): 7% here on a plain build; a slow
    # stack read (a sanitizer build) overlaps more switches. Those take the
    # stack where their greenlet parked (greenlet_races_parked) unless the
    # stack read was theirs (greenlet_races_kept), so a greenlet's samples
    # show its own code: a worker's never the main greenlet's loop nor
    # another worker's function, the main greenlet's never a worker's. (The
    # hook reports a switch a few microseconds after it is made: a stack
    # read in that gap is not seen to race: up to 0.5% of the time was seen
    # on a quiet host, 0.8% on a busy one,
    # against 7-16% before the parked stacks; at most 2% may.)
    db = sqlite3.connect(out)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    races, parked = int(meta["greenlet_races"]), int(meta["greenlet_races_parked"])
    kept = int(meta["greenlet_races_kept"])
    ran = db.execute("SELECT count(*) FROM sample WHERE green != 0 AND (flags & 4) = 0").fetchone()[0]
    db.close()
    print("greenlet_races %d of %d: %d kept their stack, %d took their parked stack" %
          (races, ran, kept, parked))
    assert 0 <= kept + parked <= races <= ran, (kept, parked, races, ran)
    mixed = total = 0.0
    for name, g in gl.items():
        if name not in work["cpu"] and name != "(main)":
            continue
        own = "work_" + name[1:] if name in work["cpu"] else "<module>"
        for f in report_json(sonde_bin, out, "--task", str(g["id"]))["functions"]:
            if f["function"] != own and (f["function"] == "<module>" or f["function"].startswith("work_")):
                mixed += f["total_wall_s"]
        total += g["wall_s"] * g["running_pct"] / 100.0
    print("time in another greenlet's code: %.4f s of %.4f s" % (mixed, total))
    assert mixed <= 0.02 * total, (mixed, total)


STORM = """
import greenlet, json, time
def pong():
    while True:
        x = 0
        for k in range(%(work)d):
            x += k
        main.switch()
main = greenlet.getcurrent()
g = greenlet.greenlet(pong)
c0 = time.thread_time()
for _ in range(%(n)d // 2):
    sum(range(30))
    g.switch()
print(json.dumps({"cpu": time.thread_time() - c0, "tracer": repr(greenlet.gettrace())}))
"""


def test_switch_storm_cpu_adds_up(sonde_bin, tmp_path):
    """200,000 switches of a few µs each under the agent's C tracer: the
    greenlets' CPU adds up to their thread's (the clock is read only every
    GREENLET_CPU_READ_NS, the rest charged by wall time)."""
    out = str(tmp_path / "storm.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", PY, "-c",
                  STORM % {"n": 200000, "work": 20}, timeout=120)
    work = workload(r)
    assert "sonde_greenlet_tracer" in work["tracer"], work  # the C tracer, not a Python one
    rep = report_json(sonde_bin, out)
    tid = rep["threads"][0]["tid"]
    thread_cpu = [t for t in rep["threads"] if t["tid"] == tid][0]["cpu_s"]
    gs = [g for g in rep["green_threads"] if g["tid"] == tid]
    assert len(gs) == 2, gs
    total = sum(g["cpu_s"] for g in gs)
    # the storm is in the greenlets; the thread also ran the interpreter's
    # start before the first switch
    assert 0.9 * work["cpu"] <= total <= 1.02 * thread_cpu, (total, work["cpu"], thread_cpu)
    assert all(g["cpu_s"] > 0.2 * work["cpu"] for g in gs), gs


def test_tracer_replaced_by_program(sonde_bin, tmp_path):
    """The program swaps greenlet's tracer out (None) and back in (its own,
    chaining the agent's, as gevent's monitor does): switches made while it
    was out are simply not seen, the recording stays whole, and the lanes
    come back with their CPU once the chain holds the agent's tracer again."""
    out = str(tmp_path / "r.sonde")
    prog = (
        "import gevent, greenlet, json\n"
        "agent = greenlet.gettrace()\n"
        "def spin(n):\n"
        "    for _ in range(n):\n"
        "        sum(range(20000)); gevent.sleep(0)\n"
        "greenlet.settrace(None)\n"
        "g = gevent.spawn(spin, 50); g.name = 'unseen'; g.join()\n"
        "seen = []\n"
        "def mine(ev, args):\n"
        "    seen.append(ev)\n"
        "    return agent(ev, args)\n"
        "greenlet.settrace(mine)\n"
        "gs = [gevent.spawn(spin, 200) for _ in range(3)]\n"
        "for k, g in enumerate(gs): g.name = 'spin%d' % k\n"
        "gevent.joinall(gs)\n"
        "greenlet.settrace(agent)\n"
        "g = gevent.spawn(spin, 200); g.name = 'again'; g.join()\n"
        "print(json.dumps({'seen': len(seen), 'agent': repr(agent)}))\n")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", PY, "-c", prog, timeout=60)
    work = workload(r)
    assert "sonde_greenlet_tracer" in work["agent"] and work["seen"] > 1200, work
    gl = lanes(report_json(sonde_bin, out))
    assert "unseen" not in gl
    for name in ("spin0", "spin1", "spin2", "again"):
        assert gl[name]["function"] == "spin" and gl[name]["cpu_s"] > 0, gl.get(name)
        assert gl[name]["end_s"] is not None


THREADS = """
import greenlet, json, threading, time
agent = greenlet.gettrace()
class G(greenlet.greenlet):
    pass
def one(i):
    greenlet.settrace(agent)  # greenlet's tracer is per thread
    main = greenlet.getcurrent()
    def run():
        for _ in range(3):
            sum(range(2000))
            main.switch()
    g = G(run)
    g.name = "t%%d" %% i
    while not g.dead:
        g.switch()
    time.sleep(0.02)  # alive at a tick after its switches: sampled
for i in range(%(n)d):
    t = threading.Thread(target=one, args=(i,))
    t.start()
    t.join()
print(json.dumps({"done": %(n)d}))
"""


def test_rings_of_ended_threads_reused(sonde_bin, tmp_path):
    """400 threads one after the other, each switching greenlets: far more
    than the agent's GREENLET_THREADS (256) rings, so more than 256 of them
    only get lanes when the rings of threads that ended are handed over. (A
    thread the sampler misses, under load, has no samples, hence no lane:
    most, not all, must be there.)"""
    out = str(tmp_path / "th.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", PY, "-c",
                  THREADS % {"n": 400}, timeout=180)
    assert workload(r) == {"done": 400}
    gl = lanes(report_json(sonde_bin, out))
    there = [i for i in range(400) if "t%d" % i in gl]
    assert len(there) > 320, (len(there), sorted(set(range(400)) - set(there)))
    assert len([i for i in there if i >= 350]) > 35, there
    assert len({gl["t%d" % i]["tid"] for i in there}) == len(there)  # one thread each
    assert all(gl["t%d" % i]["end_s"] is not None for i in there)


def test_tracer_asked_for_twice(sonde_bin):
    """The C tracer handed out twice, every copy dropped, then asked for
    again and used: it is still alive (each call returns a reference of the
    caller's own)."""
    prog = (
        "import ctypes, gc, greenlet, sonde\n"
        "lib = sonde._load()\n"
        "api = ctypes.PyDLL(lib._name, handle=lib._handle).sonde_greenlet_tracer\n"
        "api.argtypes = [ctypes.py_object, ctypes.py_object]\n"
        "api.restype = ctypes.py_object\n"
        "t1 = api(lambda g: None, None)\n"
        "t2 = api(lambda g: None, None)\n"
        "assert t1 is t2\n"
        "del t1, t2\n"
        "gc.collect()\n"
        "for _ in range(3):\n"
        "    greenlet.settrace(api(lambda g: None, None))\n"
        "    greenlet.greenlet(lambda: 1).switch()\n"
        "    greenlet.settrace(None)\n"
        "    gc.collect()\n"
        "print(repr(api(lambda g: None, None)))\n")
    env = dict(os.environ, PYTHONPATH=pkg_dir(sonde_bin))
    r = subprocess.run([PY, "-c", prog], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and "sonde_greenlet_tracer" in r.stdout, (r.returncode, r.stdout, r.stderr)


def test_threads_keep_their_own_tracers(sonde_bin, tmp_path):
    """The main thread's own greenlet tracer sees the main thread's
    switches only: a thread started later gets sonde's hook chained to its
    own tracer (none here), never to the main thread's."""
    out = str(tmp_path / "t.sonde")
    prog = (
        "import greenlet, json, threading, sonde\n"
        "seen = set()\n"
        "greenlet.settrace(lambda ev, args: seen.add(threading.get_ident()))\n"
        "sonde.start(output=%r, rate=200)\n"
        "def work():\n"
        "    for _ in range(200):\n"
        "        greenlet.greenlet(lambda: sum(range(1000))).switch()\n"
        "t = threading.Thread(target=work)\n"
        "t.start(); t.join()\n"
        "greenlet.greenlet(lambda: None).switch()\n"
        "sonde.stop()\n"
        "print(json.dumps({'main': threading.get_ident(), 'other': t.ident, 'seen': sorted(seen)}))\n" % out)
    env = dict(os.environ, PYTHONPATH=pkg_dir(sonde_bin))
    r = subprocess.run([PY, "-c", prog], capture_output=True, text=True, timeout=60, env=env)
    work = workload(r)
    assert work["seen"] == [work["main"]], work


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
        "print(json.dumps({'seen': len(seen), 'tracer': repr(greenlet.gettrace())}))\n" % out)
    env = dict(os.environ, PYTHONPATH=pkg_dir(sonde_bin))
    r = subprocess.run([PY, "-c", prog], capture_output=True, text=True, timeout=60, env=env)
    work = workload(r)
    # the program's tracer still sees every switch, behind the agent's C one
    assert work["seen"] > 800 and "sonde_greenlet_tracer" in work["tracer"], work
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


THREADED = """
import greenlet, json, threading, time
class G(greenlet.greenlet):
    pass
cpu = {}
def make(name, n):
    def run():
        t = 0.0
        for _ in range(%(steps)d):
            c0 = time.thread_time()
            x = 0
            for k in range(n):
                x += k * k
            t += time.thread_time() - c0
            other[name].switch()
        cpu[name] = t
    return run
other = {}
def thread_main():
    hub = greenlet.getcurrent()
    a = G(make("work_a", %(base)d))
    b = G(make("work_b", 2 * %(base)d))
    a.name, b.name = "work_a", "work_b"
    other["work_a"], other["work_b"] = b, a
    # a and b take turns; whichever ends first hands back to the thread
    a.parent = b.parent = hub
    a.switch()
    while not (a.dead and b.dead):
        (a if not a.dead else b).switch()
    cpu["tid"] = threading.get_native_id()
t = threading.Thread(target=thread_main, name="greens")
t.start()
t.join()
print(json.dumps({"cpu": {k: v for k, v in cpu.items() if k != "tid"}, "tid": cpu["tid"]}))
"""


def test_greenlets_in_a_second_thread(sonde_bin, tmp_path):
    """greenlet is imported by the main thread, whose switches are hooked
    then; greenlets switching in a threading.Thread started later are lanes
    of their own too, on that thread, each with its own CPU."""
    out = str(tmp_path / "t.sonde")
    r = run_sonde(sonde_bin, "record", "--agent", "-o", out, "--", PY, "-c",
                  THREADED % {"steps": 40, "base": 40000}, timeout=120)
    work = workload(r)
    gl = lanes(report_json(sonde_bin, out))
    for name, cpu in work["cpu"].items():
        g = gl.get(name)
        assert g, "no lane %s: %s" % (name, sorted(gl))
        assert g["kind"] == "greenlet", g
        assert g["tid"] == work["tid"], (g, work["tid"])
        assert abs(g["cpu_s"] - cpu) <= 0.2 * cpu, (name, g["cpu_s"], cpu)


ATTACHED = """
import gevent, sys, threading
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
def work(i):
    while True:
        x = 0
        for k in range(20000 * (i + 1)):
            x += k
        gevent.sleep(0)
def parked():
    while True:
        gevent.sleep(0.2)  # (a greenlet that never switches after the attach stays unseen)
gs = [gevent.spawn(work, i) for i in range(3)] + [gevent.spawn(parked)]
for i, g in enumerate(gs):
    g.name = "w%d" % i if i < 3 else "parker"
print("ready", flush=True)
while not done.is_set():
    gevent.sleep(0.01)
print("bye", flush=True)
"""


def test_greenlets_attached(sonde_bin, tmp_path):
    """--agent -p on a gevent program already running: the agent hooks its
    greenlet switches from the main thread (a pending call, run between two
    of the program's bytecodes): every greenlet is a lane, named, with its
    function, the busiest with the most CPU, the parked one with none; the
    program's __main__ gains no name, and it ends as it would have."""
    src = tmp_path / "attached.py"
    src.write_text(ATTACHED + "print(sorted(k for k in globals() if not k.startswith('__')), flush=True)\n")
    p = subprocess.Popen([PY, str(src)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    try:
        assert p.stdout.readline() == "ready\n"
        out = str(tmp_path / "a.sonde")
        r = run_sonde(sonde_bin, "record", "--agent", "-q", "-p", p.pid, "-d", "1.5", "-o", out,
                      timeout=120)
        assert r.returncode == 0, r.stderr
        p.stdin.close()
        assert p.wait(timeout=30) == 0, p.stderr.read()
        rest = p.stdout.read().splitlines()
        assert rest[0] == "bye"
        assert rest[1] == "['done', 'g', 'gevent', 'gs', 'i', 'parked', 'sys', 'threading', 'work']", rest
        assert p.stderr.read() == ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    rep = report_json(sonde_bin, out)
    gl = lanes(rep)
    assert all(g["kind"] == "greenlet" for g in rep["green_threads"]), rep["green_threads"]
    for i in range(3):
        assert gl["w%d" % i]["function"] == "work", gl
    assert gl["w2"]["cpu_s"] > gl["w0"]["cpu_s"] > 0.01, gl
    assert gl["parker"]["function"] == "parked" and gl["parker"]["cpu_s"] < 0.01, gl["parker"]
    assert "(hub)" in gl
