"""Target whose function, file and thread names hold terminal escapes.

A function renamed (code.replace) to HOSTILE, with a file name holding one
too, spins on the main thread and on a thread named "thr" + HOSTILE; the
other thread sleeps. Runs for argv[1] seconds (default 600), prints one
JSON line {"name": ..., "thread": ...}, then 'ready'.
"""
import json
import sys
import threading
import time

# OSC 52 (write the clipboard), BEL, clear screen, an 8-bit CSI (C1) and a
# right-to-left override: none may reach a terminal raw.
HOSTILE = "evil\x1b]52;c;cHduZWQ=\x07\x1b[2J\u009b31m\u202eend"


def spin(deadline):
    s = 0
    while time.time() < deadline:
        for i in range(2000):
            s += i * i
    return s


code = spin.__code__.replace(co_name=HOSTILE, co_filename="/tmp/f\x1b]0;title\x07.py")
if hasattr(code, "co_qualname"):
    code = code.replace(co_qualname=HOSTILE)
hostile = type(spin)(code, globals(), HOSTILE)


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 600
    deadline = time.time() + secs
    t = threading.Thread(target=hostile, args=(deadline,), name="thr" + HOSTILE, daemon=True)
    t.start()
    print(json.dumps({"name": HOSTILE, "thread": t.name}))
    print("ready", flush=True)
    hostile(deadline)


main()
