"""Work in a rhythm that a sampler on a fixed grid would alias with, for
sonde record (tests/e2e/test_trust.py, test_task_record.py).

Time is cut into STEP-long slots of CLOCK_MONOTONIC; a slot is spent
busy in one function (threads mode: tick on even slots, tock on odd ones)
or one asyncio task (tasks mode: N tasks take turns, each busy to the end
of its slot, then awaiting). Sampled every 2*STEP on a fixed grid, every
tick would land in the same function or in the same few tasks. Each
function and task measures its own CPU (the ground truth).

usage: rhythm.py threads|tasks SECONDS STEP_MS [TASKS]   (tasks: 3.7+)
Prints one JSON line at the end: {"cpu": {name: seconds}}.
Runs on 2.7 too (threads mode).
"""
import json
import sys
import time

MODE = sys.argv[1]
SECONDS = float(sys.argv[2])
STEP = float(sys.argv[3]) / 1000.0
NTASKS = int(sys.argv[4]) if len(sys.argv) > 4 else 4

clock = getattr(time, "monotonic", time.time)


def _clock_gettime():
    if hasattr(time, "clock_gettime"):
        return lambda: time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)
    # 2.7: the same clock through libc (/proc's schedstat is only brought up
    # to date at the scheduler's events, too coarse for a slot)
    import ctypes

    class timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    ts = timespec()

    def read():
        if libc.clock_gettime(3, ctypes.byref(ts)):  # CLOCK_THREAD_CPUTIME_ID
            raise OSError(ctypes.get_errno(), "clock_gettime")
        return ts.tv_sec + ts.tv_nsec / 1e9
    return read


thread_time = _clock_gettime()


def slot_end():
    return (int(clock() / STEP) + 1) * STEP


def tick(end):
    while clock() < end:  # @tick
        pass


def tock(end):
    while clock() < end:  # @tock
        pass


def threads_mode():
    cpu = {"tick": 0.0, "tock": 0.0}
    until = clock() + SECONDS
    while clock() < until:
        end = slot_end()
        odd = int(end / STEP + 0.5) % 2
        c0 = thread_time()
        (tock if odd else tick)(end)
        cpu["tock" if odd else "tick"] += thread_time() - c0
    return cpu


if __name__ == "__main__":
    if MODE == "threads":
        cpu = threads_mode()
    else:  # (a module of its own: 2.7 cannot compile async def)
        from rhythm_tasks import tasks_mode
        cpu = tasks_mode()
    print(json.dumps({"cpu": cpu}))
    sys.stdout.flush()
