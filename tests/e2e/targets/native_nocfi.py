"""Target for tests/e2e/test_native.py: a thread spinning in machine code
that no file maps and no unwind information covers (an anonymous executable
page holding `jmp .`, called through ctypes, which releases the GIL), below
a Python caller. Prints {"tid": tid, "page": address} then "ready"."""
import ctypes
import json
import mmap
import sys
import threading

from compat import native_id
import time

page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(b"\xeb\xfe")  # x86-64: jmp to itself
addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
spin = ctypes.CFUNCTYPE(None)(addr)
info = {}


def spin_inner():
    spin()  # @spin


def spinner():
    info["tid"] = native_id()
    spin_inner()  # @spin_call


t = threading.Thread(target=spinner, name="spinner")
t.daemon = True
t.start()
while "tid" not in info:
    time.sleep(0.01)
info["page"] = addr
print(json.dumps(info))
print("ready")
sys.stdout.flush()
while True:
    time.sleep(100)
