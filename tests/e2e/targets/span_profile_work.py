"""Spans whose profiles the test knows (tests/e2e/test_span_profiles.py).

    span_profile_work.py SECONDS

A span "handle" computes in compute_prices for SECONDS while another thread
("hog") keeps the GIL busy in long C calls; then a span "wait" blocks on a socket that never
gets data for SECONDS / 2. Prints one JSON line: the trace and span ids, and
what the workload measured itself over the handler's span: its wall time,
the handler's CPU time and the hog's (a thread runs Python only while it
holds the GIL: the hog's CPU share is time the handler could not have held
it, the handler's is time it did), and the share of the wall time the
handler did not run Python (gaps of more than 1 ms between two iterations
of its loop: waiting for the GIL, or holding it while the machine ran
something else).
"""
import json
import socket
import sys
import threading
import time

import sonde

stop = False
hog_cpu = 0.0


def hog():
    global hog_cpu
    n = 0
    while not stop:
        # one C call holds the GIL throughout (a switch request waits for
        # it to return): the hog holds the GIL far longer than its share
        n += sum(range(400000))
        hog_cpu = time.thread_time()
    return n


def compute_prices(seconds):
    t0 = time.perf_counter()
    last = t0
    gaps = 0.0
    n = 0
    while True:
        for i in range(200):
            n += i * i
        now = time.perf_counter()
        if now - last > 0.001:
            gaps += now - last
        last = now
        if now - t0 >= seconds:
            break
    return gaps, now - t0


def main(seconds):
    global stop
    t = threading.Thread(target=hog, name="hog")
    t.start()
    time.sleep(0.2)
    with sonde.span("handle", kind="server") as h:
        c0, h0 = time.thread_time(), hog_cpu
        gaps, wall = compute_prices(seconds)
        cpu, hcpu = time.thread_time() - c0, hog_cpu - h0
    stop = True
    t.join()
    a, b = socket.socketpair()
    with sonde.span("wait", kind="client") as w:
        a.settimeout(seconds / 2)
        try:
            a.recv(1)
        except socket.timeout:
            pass
    a.close()
    b.close()
    print(json.dumps({"trace": "%032x" % h.trace_id, "handle": "%016x" % h.span_id,
                      "wait_trace": "%032x" % w.trace_id, "wait": "%016x" % w.span_id,
                      "wall_s": wall, "cpu_s": cpu, "hog_cpu_s": hcpu, "not_running_pct": 100.0 * gaps / wall}),
          flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]))
