"""Spans around a CPU-bound function and a sleep (sonde.span), and a call
to a second process carrying the trace (inject / extract).

    span_work.py front SECONDS   prints {"trace", "front", "cpu", "sleep",
                                  "call", "back"} (hex ids) as one JSON line
    span_work.py back            (run by front) a span under the
                                  traceparent in $TRACEPARENT; prints its id
"""
import json
import os
import subprocess
import sys
import time

import sonde


def burn_cpu(seconds):
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        for i in range(2000):
            n += i * i
    return n


def hexid(sp):
    return "%016x" % sp.span_id


def front(seconds):
    os.environ.setdefault("OTEL_SERVICE_NAME", "front")
    with sonde.span("front", kind="server", attributes={"test": "span_work"}) as fr:
        with sonde.span("cpu") as cpu:
            burn_cpu(seconds)
        with sonde.span("sleep") as sl:
            time.sleep(seconds)
        with sonde.span("call", kind="client") as call:
            env = dict(os.environ, OTEL_SERVICE_NAME="back")
            headers = sonde.inject({})
            env["TRACEPARENT"] = headers["traceparent"]
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "back"], env=env,
                                 stdout=subprocess.PIPE, check=True).stdout.decode()
    print(json.dumps({"trace": "%032x" % fr.trace_id, "front": hexid(fr), "cpu": hexid(cpu),
                      "sleep": hexid(sl), "call": hexid(call), "back": out.strip()}), flush=True)


def back():
    parent = sonde.extract({"traceparent": os.environ["TRACEPARENT"]})
    assert parent is not None
    with sonde.span("back", kind="server", parent=parent) as b:
        burn_cpu(0.05)
    print(hexid(b), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "front":
        front(float(sys.argv[2]))
    else:
        back()
