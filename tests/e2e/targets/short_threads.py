"""Workload for the CPU accounting tests (tests/e2e/test_trust.py): many
threads that each burn a little CPU and end, most of them between two of
sonde's ticks.

usage: short_threads.py FIFO NTHREADS CPU_MS [PARALLEL [LINGER_MS]]

Prints "ready" with its own CPU time so far, then blocks opening FIFO (no
CPU) until the test, once sonde is attached, writes to it. Then it runs
NTHREADS threads, PARALLEL at a time, each spinning until its own thread
CPU time has grown by CPU_MS, then sleeping LINGER_MS (default 0) before it
ends, and prints one JSON line. The test takes the
process's whole CPU from the kernel when it reaps it.
"""
import json
import os
import sys
import threading
import time

from compat import monotonic, thread_time


def burn(ms, linger_ms):
    end = thread_time() + ms / 1000.0
    n = 0
    while thread_time() < end:
        n += 1
    if linger_ms:
        time.sleep(linger_ms / 1000.0)
    return n


def main():
    fifo, nthreads, cpu_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    parallel = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    linger_ms = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    ru = os.times()
    print(json.dumps({"ready": True, "cpu_s": ru.user + ru.system}))
    sys.stdout.flush()
    with open(fifo) as f:
        f.read()
    t0 = monotonic()
    done = 0
    while done < nthreads:
        batch = [threading.Thread(target=burn, args=(cpu_ms, linger_ms), name="short-%d" % (done + i))
                 for i in range(min(parallel, nthreads - done))]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        done += len(batch)
    print(json.dumps({"threads": done, "wall_s": monotonic() - t0}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
