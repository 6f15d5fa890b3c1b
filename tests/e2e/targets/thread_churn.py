"""Workload for tests/e2e/test_top_threads.py: a thread per request.

usage: thread_churn.py COUNTFILE

Three long-lived threads (keeper-alpha, keeper-beta, keeper-gamma) sleep in
keep_alive; the main thread starts "Thread-N (handle)" threads twenty at a
time, each spinning 2 ms in handle then sleeping 30 ms before it ends, and
after each twenty writes how many it started to COUNTFILE (atomically). Runs
until killed. Prints "ready" once the keepers run.
"""
import os
import sys
import threading
import time

from compat import monotonic


def handle(n):
    end = monotonic() + 0.002
    while monotonic() < end:
        pass
    time.sleep(0.03)


def keep_alive():
    while True:
        time.sleep(0.05)


def main():
    out = sys.argv[1]
    for name in ("keeper-alpha", "keeper-beta", "keeper-gamma"):
        t = threading.Thread(target=keep_alive, name=name)
        t.daemon = True
        t.start()
    print("ready")
    sys.stdout.flush()
    n = 0
    while True:
        batch = []
        for _ in range(20):
            n += 1
            t = threading.Thread(target=handle, args=(n,), name="Thread-%d (handle)" % n)
            t.start()
            batch.append(t)
        for t in batch:
            t.join()
        with open(out + ".tmp", "w") as f:
            f.write(str(n))
        os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
