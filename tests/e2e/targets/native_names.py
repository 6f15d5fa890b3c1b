"""Target for tests/e2e/test_os_names.py: a program that never imports
threading. Its threads come from _thread, so Python has no name for any of
them: "raw-spin" (named through /proc/self/task/TID/comm) spins in pure
Python, another thread keeps the name it inherited and sleeps, and the main
thread sleeps too. Prints one JSON line (native thread ids, whether threading
got imported) then "ready"; exits after argv[1] seconds (0: never)."""
try:
    import _thread
except ImportError:  # 2.7
    import thread as _thread
import json
import os
import sys
import time

ids = {}


def native_id():
    """The OS thread id, without importing threading (compat.py would)."""
    f = getattr(_thread, "get_native_id", None)
    if f:
        return f()
    import ctypes
    return ctypes.CDLL(None).syscall({"x86_64": 186, "aarch64": 178}[os.uname()[4]])


def raw_spin():
    n = 0
    while True: n += 1  # @raw_spin


def spin_main():
    tid = native_id()
    with open("/proc/self/task/%d/comm" % tid, "w") as f:
        f.write("raw-spin")
    ids["spin"] = tid
    raw_spin()


def raw_sleep():
    time.sleep(3600)  # @raw_sleep


def sleep_main():
    ids["sleep"] = native_id()
    raw_sleep()


def main_park(seconds):
    time.sleep(seconds)  # @main_park


_thread.start_new_thread(spin_main, ())
_thread.start_new_thread(sleep_main, ())
while len(ids) < 2:
    time.sleep(0.01)
time.sleep(0.05)  # both threads in their functions
ids["main"] = native_id()
sys.stdout.write(json.dumps({"pid": os.getpid(), "tids": ids, "threading": "threading" in sys.modules})
                 + "\nready\n")
sys.stdout.flush()
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 0
main_park(seconds if seconds > 0 else 3600)

