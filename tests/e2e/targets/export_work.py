"""Target of tests/e2e/test_export.py: a recursive function on the main
thread, two spinning threads fighting for the GIL and one sleeping thread,
for about SECONDS (argv[1], default 1.5)."""
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.5


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def spin(t):
    end = time.time() + t
    while time.time() < end:
        fib(12)


def sleeper(t):
    time.sleep(t)


def main():
    threads = [threading.Thread(target=spin, args=(SECONDS,), name="spinner-%d" % i)
               for i in range(2)]
    threads.append(threading.Thread(target=sleeper, args=(SECONDS,), name="sleeper"))
    for t in threads:
        t.start()
    end = time.time() + SECONDS
    while time.time() < end:
        fib(18)
    for t in threads:
        t.join()


main()
