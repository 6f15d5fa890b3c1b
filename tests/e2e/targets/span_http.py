"""A Python backend and frontend talking HTTP with sonde's inject / extract.

    span_http.py back PORTFILE   serves GET /work on 127.0.0.1 (its port
                                 written to PORTFILE): a server span under
                                 the request's traceparent computing in
                                 handle_work; answers {"trace", "span",
                                 "parent"} (hex); GET /quit ends it
    span_http.py front URL       a server span "front" whose client span
                                 "call" GETs URL/work with the traceparent;
                                 prints {"trace", "front", "call", "reply"}
"""
import http.server
import json
import os
import sys
import time
import urllib.request

import sonde


def handle_work():
    end = time.process_time() + 0.05
    n = 0
    while time.process_time() < end:
        n += sum(i * i for i in range(500))
    return n


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/quit":
            body = b"{}"
            self.server.quitting = True
        else:
            parent = sonde.extract(self.headers)
            with sonde.span("GET /work", kind="server", parent=parent) as sp:
                handle_work()
            body = json.dumps({"trace": "%032x" % sp.trace_id, "span": "%016x" % sp.span_id,
                               "parent": "%016x" % sp.parent_id}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def back(portfile):
    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    srv.quitting = False
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, portfile)
    while not srv.quitting:
        srv.handle_request()
    srv.server_close()
    print("served", flush=True)


def front(url):
    with sonde.span("front", kind="server") as fr:
        with sonde.span("call", kind="client") as call:
            req = urllib.request.Request(url + "/work", headers=sonde.inject({}))
            reply = json.loads(urllib.request.urlopen(req, timeout=30).read())
    print(json.dumps({"trace": "%032x" % fr.trace_id, "front": "%016x" % fr.span_id,
                      "call": "%016x" % call.span_id, "reply": reply}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "back":
        back(sys.argv[2])
    else:
        front(sys.argv[2])
