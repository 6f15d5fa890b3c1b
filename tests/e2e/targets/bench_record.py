"""Target for `scripts/bench record`: a fixed amount of pure-Python work.

THREADS threads each recurse to a DEPTH-frame-deep stack (counting the
thread's bootstrap frames) and spin ITERATIONS loop iterations there. They
contend for the GIL, so the work is serialized and its wall time is its CPU
time. Prints the wall time of the work alone (threads started to all joined),
in seconds, excluding interpreter start-up.

usage: bench_record.py [ITERATIONS] [THREADS] [DEPTH]
"""
import sys
import threading
import time

ITERATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 3000000
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
DEPTH = int(sys.argv[3]) if len(sys.argv) > 3 else 30


def spin(n):
    x = 0
    for i in range(n):
        x += i & 7
    return x


def recurse(depth, n):
    if depth <= 0:
        return spin(n)
    return recurse(depth - 1, n)


def worker():
    # _bootstrap, _bootstrap_inner, run, worker, then recurse frames, spin
    recurse(DEPTH - 6, ITERATIONS)


def main():
    threads = [threading.Thread(target=worker, name="w%d" % i) for i in range(THREADS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("%.6f" % (time.perf_counter() - t0))


main()
