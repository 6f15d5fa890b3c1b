"""Target for scripts/bench: 'deep' parks the main thread DEPTH frames deep;
'threads' parks N threads, each a few frames deep. Prints "ready"."""
import sys
import threading
import time


def recurse(n):
    if n <= 1:
        time.sleep(3600)
    return recurse(n - 1)


mode = sys.argv[1]
count = int(sys.argv[2])
if mode == "deep":
    # the main thread's stack is <module> + count - 1 recurse frames
    threading.Timer(0.2, lambda: print("ready", flush=True)).start()
    recurse(count - 1)
else:
    for i in range(count):
        threading.Thread(target=recurse, args=(10,), name="worker-%d" % i, daemon=True).start()
    time.sleep(0.2)
    print("ready", flush=True)
    time.sleep(3600)
