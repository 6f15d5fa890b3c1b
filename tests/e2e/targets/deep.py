"""Target for the depth test: recurse DEPTH frames deep, then sleep. Prints
one JSON line, then "ready" once the innermost frame is in place. Runs on
2.7 and 3.6+ alike."""
import json
import sys
import threading
import time

from compat import native_id

DEPTH = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
sys.setrecursionlimit(DEPTH + 1000)
at_bottom = threading.Event()


def recurse(n):
    if n <= 1:
        at_bottom.set()
        time.sleep(3600)  # @bottom
    return recurse(n - 1) + 1  # @recurse


def announce():
    at_bottom.wait()
    time.sleep(0.05)  # let the main thread reach time.sleep()
    print(json.dumps({"depth": DEPTH, "tid": native_id()}))
    print("ready")
    sys.stdout.flush()


announcer = threading.Thread(target=announce, name="announcer")
announcer.daemon = True
announcer.start()
recurse(DEPTH)  # @module
