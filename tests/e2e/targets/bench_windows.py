"""Target for `scripts/bench record` (paired windows): the work of
bench_record.py, in small chunks, for SECONDS seconds.

THREADS threads recurse to DEPTH frames and spin there in chunks of CHUNK
iterations; each finished chunk is counted in the WIN_MS-long window of
CLOCK_MONOTONIC (time.monotonic_ns) it ends in. Prints "ready" once the
threads run, then, at the end, one JSON object {window index: chunks}.

usage: bench_windows.py SECONDS WIN_MS [THREADS] [DEPTH] [CHUNK]
"""
import json
import sys
import threading
import time

SECONDS = float(sys.argv[1])
WIN_NS = int(float(sys.argv[2]) * 1e6)
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
DEPTH = int(sys.argv[4]) if len(sys.argv) > 4 else 30
CHUNK = int(sys.argv[5]) if len(sys.argv) > 5 else 2000

stop = False
counts = [dict() for _ in range(THREADS)]


def spin(n):
    x = 0
    for i in range(n):
        x += i & 7
    return x


def work(k):
    c, mono = counts[k], time.monotonic_ns
    while not stop:
        spin(CHUNK)
        w = mono() // WIN_NS
        c[w] = c.get(w, 0) + 1


def recurse(depth, k):
    if depth <= 0:
        return work(k)
    return recurse(depth - 1, k)


def worker(k):
    # _bootstrap, _bootstrap_inner, run, worker, then recurse frames, spin
    recurse(DEPTH - 6, k)


def main():
    global stop
    threads = [threading.Thread(target=worker, args=(k,), name="w%d" % k) for k in range(THREADS)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    time.sleep(SECONDS)
    stop = True
    for t in threads:
        t.join()
    total = {}
    for c in counts:
        for w, n in c.items():
            total[w] = total.get(w, 0) + n
    print(json.dumps(total), flush=True)


main()
