"""Greenlets for tests/e2e/test_greenlets.py: N gevent greenlets, each busy
in its own function (work_<i>, from its own file name), measuring its own
CPU (time.thread_time around each step between switches); three parked
greenlets waiting on an Event. Prints the measurements as one JSON line."""
import json
import sys
import time

import gevent
import gevent.event

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def make(i):
    # a fixed number of steps of several milliseconds (whatever the load),
    # so that a switch's own cost (gevent's and the hook's) and the
    # greenlet's start and end are a small part of its CPU
    src = (
        "def work_%d(cpu, name, steps):\n"
        "    t = 0.0\n"
        "    for _ in range(steps):\n"
        "        c0 = time.thread_time()\n"
        "        x = 0\n"
        "        for k in range(%d):\n"
        "            x += k * k\n"
        "        t += time.thread_time() - c0\n"
        "        gevent.sleep(0)\n"
        "    cpu[name] = t\n" % (i, 60000 + 12000 * (i % 10)))
    ns = {"time": time, "gevent": gevent}
    exec(compile(src, "work_%d.py" % i, "exec"), ns)
    return ns["work_%d" % i]


def parked(ev):
    ev.wait()


cpu = {}
ev = gevent.event.Event()
ps = [gevent.spawn(parked, ev) for _ in range(3)]
for k, p in enumerate(ps):
    p.name = "parker%d" % k
gs = []
for i in range(N):
    g = gevent.spawn(make(i), cpu, "w%d" % i, STEPS)
    g.name = "w%d" % i
    gs.append(g)
gevent.joinall(gs)
ev.set()
gevent.joinall(ps)
print(json.dumps({"cpu": cpu}), flush=True)
