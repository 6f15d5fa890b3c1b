"""asyncio tasks whose time is known, for sonde record (tests/e2e/test_task_record.py).

On one event loop: COMPUTE tasks "comp-K" that each burn the CPU in steps
of about 2 ms between awaits (each measures its own CPU time around every
step with time.thread_time: the ground truth for its cpu_s), WAIT tasks
"wait-K" suspended the whole run in a known chain (park -> hold), and
short tasks started and finished during the run. main() itself awaits a
gather of the computing tasks.

usage: aio_work.py SECONDS [COMPUTE] [WAIT]
Prints "ready" once every task exists, then one JSON line at the end:
{"cpu": {name: seconds}, "ids": {name: id(task)}, "short": N}.
Before 3.8 tasks have no name: the names above are the target's own (in
"ids"); sonde calls those tasks "compute" and "park".
"""
import asyncio
import json
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
COMPUTE = int(sys.argv[2]) if len(sys.argv) > 2 else 4
WAIT = int(sys.argv[3]) if len(sys.argv) > 3 else 4

cpu = {}
ids = {}


def thread_time():
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)  # (time.thread_time: 3.7+)


def burn(n):
    x = 0
    for i in range(n):  # @burn
        x += i & 7
    return x


async def compute(name, until):
    used = 0.0
    while time.monotonic() < until:
        c0 = thread_time()
        burn(20000)
        used += thread_time() - c0
        await asyncio.sleep(0)  # @compute-await
    cpu[name] = used


async def hold(ev):
    await ev.wait()  # @hold


async def park(ev):
    await hold(ev)  # @park


async def short_lived():
    await asyncio.sleep(0.01)


async def main():
    ev = asyncio.Event()
    until = time.monotonic() + SECONDS
    waiters = []
    for k in range(WAIT):
        t = asyncio.ensure_future(park(ev))
        t.set_name("wait-%d" % k) if hasattr(t, "set_name") else None
        ids["wait-%d" % k] = id(t)
        waiters.append(t)
    comps = []
    for k in range(COMPUTE):
        t = asyncio.ensure_future(compute("comp-%d" % k, until))
        t.set_name("comp-%d" % k) if hasattr(t, "set_name") else None
        ids["comp-%d" % k] = id(t)
        comps.append(t)
    await asyncio.sleep(0)
    print("ready", flush=True)
    short = 0

    async def spawner():
        nonlocal short
        while time.monotonic() < until:
            await asyncio.gather(*(short_lived() for _ in range(3)))
            short += 3
            await asyncio.sleep(0.05)

    sp = asyncio.ensure_future(spawner())
    await asyncio.gather(*comps)  # @main-gather
    await sp
    ev.set()
    await asyncio.gather(*waiters)
    print(json.dumps({"cpu": cpu, "ids": ids, "short": short}), flush=True)


if sys.version_info >= (3, 7):
    asyncio.run(main())
else:  # 3.6: no asyncio.run
    asyncio.get_event_loop().run_until_complete(main())
