"""Target for tests/e2e/test_native.py: threads that spend their time in
native code with the GIL released: OpenSSL's SHA-256 (hashlib on a large
buffer), zlib's deflate, the libc wait under time.sleep, and, when a
directory holding a built `natext` extension is given, that extension's own
C loop. Prints {"tids": {name: tid}} then "ready"."""
import hashlib
import json
import os
import sys
import threading

from compat import native_id
import time
import zlib

if sys.version_info < (3,):
    # 2.7's own SHA-256 (_sha256) keeps the GIL, and 2.7 lets go of it only
    # every 100 bytecodes: a smaller buffer and a check every bytecode, so
    # that the other threads start in time
    sys.setcheckinterval(1)
# Without OpenSSL (2.7 and the pyenv 3.6 here) SHA-256 is the interpreter's
# own _sha256, which keeps the GIL while it hashes: the compressor then
# waits for the GIL nearly all the time (3.6 with a 32 MB buffer: in
# deflate 4% of the time, and a test under load once saw it there in none
# of its dumps for 60 s; 2.7's GIL also goes back to the thread that let go
# of it far more often than to the one waiting). There the hasher hashes a
# smaller buffer and pauses after each hash (3.6: deflate half the time).
try:
    import _hashlib  # noqa: F401 (OpenSSL's: lets go of the GIL while it hashes)
    OWN_SHA = False
except ImportError:
    OWN_SHA = True
PAUSE = 0.002 if OWN_SHA else 0
BUF = b"\x5a" * ((2 if OWN_SHA else 32) << 20)
DATA = bytes(bytearray(range(256))) * 8192
tids = {}


def hash_inner():
    while True:
        hashlib.sha256(BUF).digest()  # @hash
        if PAUSE:
            time.sleep(PAUSE)


def hasher():
    tids["hasher"] = native_id()
    hash_inner()  # @hash_call


def compress_inner():
    while True:
        zlib.compress(DATA, 9)  # @deflate


def compressor():
    tids["compressor"] = native_id()
    compress_inner()  # @deflate_call


def sleep_inner():
    while True:
        time.sleep(100)  # @sleep


def sleeper():
    tids["sleeper"] = native_id()
    sleep_inner()  # @sleep_call


def ext_inner(natext):
    while True:
        natext.spin(1 << 40)  # @ext


def extthread():
    sys.path.insert(0, sys.argv[1])
    import natext
    tids["ext"] = native_id()
    ext_inner(natext)  # @ext_call


workers = [hasher, compressor, sleeper] + ([extthread] if len(sys.argv) > 1 else [])
for w in workers:
    t = threading.Thread(target=w, name=w.__name__)
    t.daemon = True
    t.start()
while len(tids) < len(workers):
    time.sleep(0.01)
print(json.dumps({"tids": tids}))
print("ready")
sys.stdout.flush()
while True:
    time.sleep(100)
