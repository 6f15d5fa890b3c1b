"""Workload for `sonde record` accuracy tests (tests/e2e/test_record.py).

Threads, named for the report:
  spin-a, spin-b  pure Python, contend for the GIL (on CPU only while holding it)
  sleeper         naps in long intervals (idle)
  hasher          hashes large buffers with hashlib, which releases the GIL
                  while hashing; off CPU it waits to take the GIL back. A
                  CPython built without OpenSSL (pyenv's 2.7 and 3.6 here)
                  has only the builtin sha1, which keeps the GIL: there it
                  compresses with bz2 instead, which releases it

Every thread measures its own CPU time (time.thread_time, or on 2.7 and 3.6
the first field of its /proc schedstat) and lifetime (time.monotonic); at the
end the main thread prints one JSON line:
{"pid": ..., "threads": {name: {"tid", "cpu_s", "wall_s", "queued_s",
"start_slop_s", "fn_wall_s", "loops"}}}.

wall_s runs from the thread's first Python statement to its last one. The
thread exists a little longer: it is created, then takes the GIL for the
first time, before it runs any Python (with three threads contending, that
first GIL wait can take tens of milliseconds), and it exits after wall_s
ends. start_slop_s is the time from Thread.start() in the main thread to the
thread's first statement, the most its unmeasured start can add. Everything
that may release the GIL (the schedstat read) happens inside wall_s, so the
unmeasured end is only a dict store and the thread's teardown. fn_wall_s
is the time spent in the thread's work function alone.

usage: record_work.py SECONDS [DELAY]   DELAY: pause before the threads start
"""
import hashlib
import json
import os
import sys
import threading
import time

from compat import monotonic, native_id, thread_time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
results = {}


def run_delay_s():
    """Seconds this thread spent runnable but waiting for a CPU (the kernel's
    own accounting: field 2 of /proc/thread-self/schedstat)."""
    try:
        with open("/proc/self/task/%d/schedstat" % native_id()) as f:
            return int(f.read().split()[1]) / 1e9
    except (IOError, OSError, IndexError, ValueError):
        return 0.0


def measured(fn):
    def run(stop_at, launched):
        t0 = monotonic()
        c0, q0 = thread_time(), run_delay_s()
        f0 = monotonic()
        loops = fn(stop_at)
        f1 = monotonic()
        q1 = run_delay_s()
        c1 = thread_time()
        t1 = monotonic()
        name = threading.current_thread().name
        results[name] = {
            "tid": native_id(), "cpu_s": c1 - c0, "wall_s": t1 - t0,
            "queued_s": q1 - q0, "start_slop_s": t0 - launched[name], "fn_wall_s": f1 - f0, "loops": loops}
    return run


def spin_work(stop_at):  # @spin_work
    n = 0
    while monotonic() < stop_at:
        for i in range(2000):
            n += i * i
    return n


def nap(stop_at):  # @nap
    n = 0
    while monotonic() < stop_at - 0.5:
        time.sleep(0.5)
        n += 1
    return n


def hash_buffers(stop_at):  # @hash_buffers
    try:
        import _hashlib  # noqa: F401  (OpenSSL's hashes release the GIL)
    except ImportError:
        return compress_buffers(stop_at)
    buf = os.urandom(1 << 16) * 32  # 2 MiB: hashing it takes ~10 ms without the GIL
    n = 0
    while monotonic() < stop_at:
        h = hashlib.sha1()
        h.update(buf)
        h.digest()
        n += 1
    return n


def compress_buffers(stop_at):
    import bz2
    buf = os.urandom(1 << 16)  # ~10-20 ms to compress without the GIL
    n = 0
    while monotonic() < stop_at:
        bz2.compress(buf, 1)
        n += 1
    return n


def main():  # @main
    time.sleep(DELAY)
    stop_at = monotonic() + SECONDS
    launched = {}
    threads = [threading.Thread(target=measured(fn), args=(stop_at, launched), name=name)
               for fn, name in ((spin_work, "spin-a"), (spin_work, "spin-b"),
                                (nap, "sleeper"), (hash_buffers, "hasher"))]
    for t in threads:
        launched[t.name] = monotonic()
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"pid": os.getpid(), "main_tid": native_id(),
                      "threads": results}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
