"""Target for tests/e2e/test_native.py: one thread loads two libraries in
turn (churnlib.c built as libchurna.so and libchurnb.so in the directory
argv[1]), spins in the loaded one with the GIL released (ctypes), then
unloads it, over and over: each is mapped where the other just was. Which
library a sample's native frames are in is known from its Python caller,
call_a or call_b. Prints {"tids": {...}, "rounds": N, "same_address": K}
(of N first rounds, K put the two libraries' functions at one address),
then "ready"."""
import ctypes
import _ctypes
import json
import os
import sys
import threading
import time

from compat import native_id

LIBS = {"a": os.path.join(sys.argv[1], "libchurna.so"),
        "b": os.path.join(sys.argv[1], "libchurnb.so")}
SPIN = 300000
tids = {}
first = []
counted = threading.Event()  # the first 20 rounds counted


def call_a(f):
    return f(SPIN)  # @call_a


def call_b(f):
    return f(SPIN)  # @call_b


def one_round():
    """Each library once: load, spin in it, unload. Returns the addresses
    of their spin functions."""
    addrs = []
    for k, call in (("a", call_a), ("b", call_b)):
        lib = ctypes.CDLL(LIBS[k])
        f = getattr(lib, "churn_%s_spin" % k)
        f.argtypes = [ctypes.c_long]
        f.restype = ctypes.c_long
        addrs.append(ctypes.cast(f, ctypes.c_void_p).value)
        call(f)
        handle = lib._handle
        del f, lib
        _ctypes.dlclose(handle)
    return addrs


def churn():
    tids["churn"] = native_id()
    while True:
        a, b = one_round()
        if len(first) < 20:
            first.append(a == b)
            if len(first) == 20:
                counted.set()


t = threading.Thread(target=churn, name="churn")
t.daemon = True
t.start()
counted.wait()
print(json.dumps({"tids": tids, "rounds": len(first), "same_address": sum(first)}))
print("ready")
sys.stdout.flush()
while True:
    time.sleep(100)
