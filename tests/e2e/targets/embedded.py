# Run by targets/embedhost.c through PyRun_SimpleString: frames report the
# file "<string>" and lines of this file. Two named threads park at marked
# lines; then one JSON line with their native ids (the host prints "ready"
# once this code has returned). Runs on 2.7 and 3.6+ alike.
import ctypes
import sys
import threading
import time


def native_id():  # (threading.get_native_id is 3.8+; 186: gettid on x86_64)
    f = getattr(threading, "get_native_id", None)
    return f() if f else ctypes.CDLL(None).syscall(186)


now = getattr(time, "monotonic", time.time)

ids = {}
never = threading.Event()


def emb_sleep():
    time.sleep(3600)  # @emb_sleep


def emb_sleeper():
    ids["emb-sleeper"] = native_id()
    emb_sleep()  # @emb_sleep_call


def emb_wait():
    never.wait()  # @emb_wait


def emb_waiter():
    ids["emb-waiter"] = native_id()
    emb_wait()  # @emb_wait_call


def stack_has(ident, func):
    f = sys._current_frames().get(ident)
    while f is not None:
        if f.f_code.co_name == func:
            return True
        f = f.f_back
    return False


workers = [threading.Thread(target=emb_sleeper, name="emb-sleeper"),
           threading.Thread(target=emb_waiter, name="emb-waiter")]
for t in workers:
    t.daemon = True
    t.start()
inner = {"emb-sleeper": "emb_sleep", "emb-waiter": "emb_wait"}
deadline = now() + 30
while not all(stack_has(t.ident, inner[t.name]) for t in workers):
    if now() > deadline:
        raise SystemExit("threads did not park")
    time.sleep(0.01)
ids["MainThread"] = native_id()
vi = tuple(sys.version_info[:3])
sys.stdout.write('{"tids": {%s}, "version": "%d.%d.%d"}\n' % (
    (", ".join('"%s": %d' % kv for kv in sorted(ids.items())),) + vi))
sys.stdout.flush()
