"""Workload for the agent tests (tests/e2e/test_agent.py).

usage: agent_work.py SECONDS [EXIT_CODE [how]]   how: exit (sys.exit, default),
       osexit (os._exit), fork (a forked child works too, then exits)

A thread "worker" and the main thread each spin in their own function for
SECONDS; the program prints two fixed lines and {"pid", "worker_tid"} as
JSON on stdout, then ends with EXIT_CODE."""
import json
import os
import sys
import threading
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
CODE = int(sys.argv[2]) if len(sys.argv) > 2 else 0
HOW = sys.argv[3] if len(sys.argv) > 3 else "exit"
tids = {}


def agent_worker_spin(s):
    tids["worker"] = threading.get_native_id()
    t = time.monotonic()
    while time.monotonic() - t < s:
        pass


def agent_main_spin(s):
    t = time.monotonic()
    while time.monotonic() - t < s:
        pass


print("agent_work starting")
th = threading.Thread(target=agent_worker_spin, args=(SECONDS,), name="worker")
th.start()
agent_main_spin(SECONDS)
th.join()
if HOW == "fork":
    child = os.fork()
    if child == 0:
        agent_main_spin(0.3)
        sys.exit(0)
    os.waitpid(child, 0)
print(json.dumps({"pid": os.getpid(), "worker_tid": tids["worker"], "child": child if HOW == "fork" else 0}))
print("agent_work done", flush=True)
if HOW == "osexit":
    os._exit(CODE)
sys.exit(CODE)
