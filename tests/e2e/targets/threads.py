"""Target for tests/e2e/test_dump.py: four threads parked at known lines.

MainThread sleeps in main_park(); "waiter" blocks on an Event, "sleeper" in
time.sleep() inside a method, "spinner" spins in pure Python. Once every
thread is in place (checked with sys._current_frames()), prints one JSON line
(native thread ids, each worker's stack as Python sees it, threading's file)
then "ready". Lines are found by the '# @marker' comments: keep every call on
one line. Runs on 2.7 and 3.6+ alike.
"""
import json
import os
import sys
import threading
import time

from compat import monotonic, native_id

never = threading.Event()
ids = {}


def waiter_inner():
    never.wait()  # @waiter_inner


def waiter_outer():
    ids["waiter"] = native_id()
    waiter_inner()  # @waiter_call


class Parker:
    def sleep_here(self):
        time.sleep(3600)  # @sleeper_inner


def sleeper_outer():
    ids["sleeper"] = native_id()
    Parker().sleep_here()  # @sleeper_call


def spin_inner():
    n = 0
    while True: n += 1  # @spin


def spin_outer():
    ids["spinner"] = native_id()
    spin_inner()  # @spin_call


def main_park():
    time.sleep(3600)  # @main_park


def stack_of(ident):
    """[(function, file, line)] innermost first, as Python sees the thread."""
    out = []
    f = sys._current_frames().get(ident)
    while f is not None:
        out.append((f.f_code.co_name, f.f_code.co_filename, f.f_lineno))
        f = f.f_back
    return out


def parked(t, func, line):
    st = stack_of(t.ident)
    return any(fn == func and ln == line for fn, _, ln in st[:3])


def main():
    here = open(__file__).read().split("\n")
    line = {}
    for n, text in enumerate(here, 1):
        if "# @" in text:
            line[text.split("# @")[1].strip()] = n
    workers = [
        (threading.Thread(target=waiter_outer, name="waiter"), "waiter_inner", line["waiter_inner"]),
        (threading.Thread(target=sleeper_outer, name="sleeper"), "sleep_here", line["sleeper_inner"]),
        (threading.Thread(target=spin_outer, name="spinner"), "spin_inner", line["spin"]),
    ]
    for t, _, _ in workers:
        t.daemon = True
        t.start()
    deadline = monotonic() + 30
    while not all(parked(t, fn, ln) for t, fn, ln in workers):
        if monotonic() > deadline:
            sys.exit("threads did not park")
        time.sleep(0.01)
    ids["MainThread"] = native_id()
    info = {
        "pid": os.getpid(),
        "tids": ids,
        "version": "%d.%d.%d" % sys.version_info[:3],
        "threading_file": threading._newname.__code__.co_filename,  # (2.7: __file__ is .pyc)
        "stacks": {t.name: stack_of(t.ident) for t, _, _ in workers},
    }
    print(json.dumps(info))
    print("ready")
    sys.stdout.flush()
    main_park()  # @main_call


main()  # @module_call
