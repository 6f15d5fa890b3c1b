"""Slow and stalled clients against a running `sonde collector` (loopback
only; bounded: everything is closed when it returns).

Opens SLOW connections from 127.0.0.2 that send their request headers one
byte at a time (one byte every TRICKLE seconds) and UPLOADS connections from
127.0.0.3 that send headers for an 8 MiB body and then all of it but the
last byte, then, with all of them open, sends NORMAL ordinary requests from
127.0.0.1 one after the other and prints one JSON line:
  {"statuses": [...], "latency_ms": [...], "rss_mib": N, "slow_open": N, "uploads_open": N}
rss_mib is the collector's resident memory (VmRSS of PID) with everything open.

usage: slowclients.py PORT PID [SLOW UPLOADS NORMAL TRICKLE]
"""
import json
import socket
import sys
import time
import urllib.error
import urllib.request

BODY = 8 << 20


def opened(src, port, timeout=2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None


def alive(s):
    """Whether the collector still holds the connection open and unanswered."""
    try:
        s.setblocking(False)
        s.recv(1, socket.MSG_PEEK)
        return False  # answered (e.g. 503) or closed
    except BlockingIOError:
        return True
    except OSError:
        return False


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return -1


def normal_request(port):
    t0 = time.time_ns() - 10**9
    body = json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "normal"}}]},
        "scopeSpans": [{"spans": [{"traceId": "%032x" % (t0 & (2**128 - 1) | 1), "spanId": "00f067aa0ba902b7",
                                   "name": "op", "kind": 2, "startTimeUnixNano": str(t0),
                                   "endTimeUnixNano": str(t0 + 10**6)}]}]}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % port, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError as e:
        status = "error: %s" % e
    return status, (time.monotonic() - start) * 1000


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    nslow, nup, nnormal, trickle = ([int(a) for a in sys.argv[3:6]] + [float(sys.argv[6])]
                                    if len(sys.argv) > 6 else (600, 150, 8, 5.0))
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    slow = [s for s in (opened("127.0.0.2", port) for _ in range(nslow)) if s]
    for s in slow:
        try:
            s.send(head[:1])
        except OSError:
            pass
    uploads = []
    chunk = b"x" * (1 << 20)
    for _ in range(nup):
        s = opened("127.0.0.3", port)
        if not s:
            continue
        uploads.append(s)
        try:
            s.settimeout(2)
            s.sendall(head + b"Content-Length: %d\r\n\r\n" % BODY)
            for k in range(8):
                s.sendall(chunk if k < 7 else chunk[:-1])
        except OSError:
            pass
    statuses, lat = [], []
    sent = 1
    next_byte = time.monotonic() + trickle
    for _ in range(nnormal):
        if time.monotonic() >= next_byte and sent < len(head):  # the slow ones go on, a byte at a time
            for s in slow:
                try:
                    s.setblocking(False)
                    s.send(head[sent:sent + 1])
                except OSError:
                    pass
            sent += 1
            next_byte += trickle
        st, ms = normal_request(port)
        statuses.append(st)
        lat.append(round(ms, 1))
        time.sleep(0.2)
    out = {"statuses": statuses, "latency_ms": lat, "rss_mib": rss_mib(pid),
           "slow_open": sum(alive(s) for s in slow), "uploads_open": sum(alive(s) for s in uploads)}
    for s in slow + uploads:
        s.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
