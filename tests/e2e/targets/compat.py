"""What the test targets need from CPython 3.8 (native thread ids,
time.monotonic, time.thread_time), also on 2.7, 3.6 and 3.7: read from the
kernel where the interpreter has no function for it."""
import ctypes
import os
import platform
import threading
import time

_SYS_GETTID = {"x86_64": 186, "aarch64": 178, "i686": 224, "i386": 224}


def native_id():
    """The OS thread id of the calling thread."""
    f = getattr(threading, "get_native_id", None)
    if f:
        return f()
    return ctypes.CDLL(None, use_errno=True).syscall(_SYS_GETTID[platform.machine()])


def monotonic():
    f = getattr(time, "monotonic", None)
    return f() if f else time.time()


def thread_time():
    """CPU seconds of the calling thread: time.thread_time (3.7+), else the
    kernel's own count (the first field of /proc/self/task/TID/schedstat,
    nanoseconds on a CPU, the same the kernel reports to thread_time)."""
    f = getattr(time, "thread_time", None)
    if f:
        return f()
    with open("/proc/self/task/%d/schedstat" % native_id()) as fh:
        return int(fh.read().split()[0]) / 1e9
