"""asyncio tasks in known states, for sonde dump (tests/e2e/test_tasks.py).

Loop A (main thread): named tasks suspended in known coroutine chains, a
task awaiting another task, a gather of two unnamed tasks, a pure-Python
task (asyncio.tasks._PyTask), an eager task (3.12+), a task waiting on a
TaskGroup of two named children (3.11+). Loop B (thread
"spinloop"): a task computing forever, so it is the running task there.
argv[1] == "uvloop": both loops are uvloop's.

Prints one JSON line (ids, names, the chains as the interpreter itself
reports them: each coroutine's frame then what it awaits, innermost first;
the task count as asyncio.all_tasks() sees it), then "ready". On SIGUSR1
prints {"names": {id: get_name()}} of every task (this materializes the
lazy "Task-N" names of 3.12+: the tests ask only after reading them).

Runs on 3.6 and 3.7 too, where tasks have no name (their name is then their
coroutine's __qualname__, as sonde shows them), asyncio has no run(),
all_tasks() or current_task() (3.6) and threads no native_id.
"""
import asyncio
import asyncio.tasks
import ctypes
import json
import os
import signal
import sys
import threading

USE_UVLOOP = len(sys.argv) > 1 and sys.argv[1] == "uvloop"
if USE_UVLOOP:
    import uvloop

info = {"version": "%d.%d.%d" % sys.version_info[:3], "tasks": {}, "pid": os.getpid()}
registry = {}  # name -> task (for the signal handler)
ev = None
b_ready = threading.Event()
tids = {}
OLD = sys.version_info < (3, 8)


def gettid():
    return ctypes.CDLL(None).syscall(186)  # SYS_gettid (x86_64)


def make_task(loop, coro, name):
    return loop.create_task(coro) if OLD else loop.create_task(coro, name=name)


def task_name(t):
    return t._coro.__qualname__ if OLD else t.get_name()


def all_tasks():
    """The pending tasks of the running loop, as asyncio.all_tasks()."""
    if sys.version_info >= (3, 7):
        return asyncio.all_tasks()
    loop = asyncio.get_event_loop()
    both = asyncio.Task.all_tasks(loop) | asyncio.tasks._PyTask.all_tasks(loop)
    return {t for t in both if not t.done()}


def current_task():
    if sys.version_info >= (3, 7):
        return asyncio.current_task()
    return asyncio.Task.current_task() or asyncio.tasks._PyTask.current_task()


def chain(coro):
    """The coroutine chain as the interpreter reports it, innermost first."""
    out, c = [], coro
    while c is not None:
        f = getattr(c, "cr_frame", None) or getattr(c, "gi_frame", None)
        if f is None:
            break
        out.append([f.f_code.co_name, f.f_code.co_filename, f.f_lineno])
        c = c.cr_await if hasattr(c, "cr_await") else getattr(c, "gi_yieldfrom", None)
    return out[::-1]


async def leaf_wait():
    await ev.wait()  # @leaf


async def middle():
    await leaf_wait()  # @middle


async def outer():
    await middle()  # @outer


async def awaited_one():
    await ev.wait()  # @awaited


async def awaiter(t):
    await t  # @awaiter


async def child(k):
    await leaf_wait()  # @child


async def gatherer():
    await asyncio.gather(child(1), child(2))  # @gather


async def grouper(kids):
    async with asyncio.TaskGroup() as tg:  # @group
        for k in (1, 2):
            kids.append(tg.create_task(child(10 + k), name="tg-%d" % k))


async def py_task_body():
    await middle()  # @pytask


def spin_inner():
    x = 0
    while True:
        x += 1  # @spin


async def spinner():
    info["count_b"] = len(all_tasks())
    b_ready.set()
    spin_inner()  # @spin_call


async def b_main():
    tids["spinloop"] = gettid()
    t = make_task(asyncio.get_event_loop(), spinner(), "spinner")
    info["tasks"]["spinner"] = {"id": id(t), "name": task_name(t)}
    info["b_main"] = id(current_task())
    await t  # @b_main


def loop_b():
    if USE_UVLOOP:
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    loop.run_until_complete(b_main())


def on_usr1():
    names = {str(id(t)): task_name(t) for t in all_tasks()}
    print(json.dumps({"names": names}), flush=True)


async def main():
    global ev
    ev = asyncio.Event()
    loop = asyncio.get_event_loop()
    named = {
        "outer": make_task(loop, outer(), "outer"),
        "awaited": make_task(loop, awaited_one(), "awaited"),
        "gatherer": make_task(loop, gatherer(), "gatherer"),
    }
    named["awaiter"] = make_task(loop, awaiter(named["awaited"]), "awaiter")
    if OLD:
        named["pytask"] = asyncio.tasks._PyTask(py_task_body(), loop=loop)
    else:
        named["pytask"] = asyncio.tasks._PyTask(py_task_body(), loop=loop, name="pytask")
    if sys.version_info >= (3, 12):
        loop.set_task_factory(asyncio.eager_task_factory)
        named["eager"] = loop.create_task(outer(), name="eager")
        loop.set_task_factory(None)
    if sys.version_info >= (3, 11):
        tg_kids = []
        named["grouper"] = loop.create_task(grouper(tg_kids), name="grouper")
    for _ in range(5):
        await asyncio.sleep(0)
    if sys.version_info >= (3, 11):
        named["tg-1"], named["tg-2"] = tg_kids
    for name, t in named.items():
        info["tasks"][name] = {"id": id(t), "name": task_name(t), "chain": chain(t._coro if OLD else t.get_coro()),
                               "python": not isinstance(t, asyncio.tasks.Task)
                               or type(t) is asyncio.tasks._PyTask}
    me = current_task()
    info["main"] = {"id": id(me), "chain": None}
    kids = [t for t in all_tasks() if t not in named.values() and t is not me]
    info["gather_children"] = [id(t) for t in kids]
    info["count_a"] = len(all_tasks())
    threading.Thread(target=loop_b, name="spinloop", daemon=True).start()
    b_ready.wait()
    await asyncio.sleep(0.05)
    info["tids"] = {"spinloop": tids["spinloop"], "main": gettid()}
    loop.add_signal_handler(signal.SIGUSR1, on_usr1)
    print(json.dumps(info), flush=True)
    print("ready", flush=True)
    await asyncio.sleep(3600)  # @main


if USE_UVLOOP:
    uvloop.install()
if sys.version_info >= (3, 7):
    asyncio.run(main())
else:
    asyncio.get_event_loop().run_until_complete(main())
