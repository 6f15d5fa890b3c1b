"""sonde dump reads the asyncio tasks of a live target, under every
supported CPython and on uvloop: ids and names as the interpreter gives
them (id(task), task.get_name(): this checks each version's Task layout),
exact coroutine chains innermost first, the running task, awaited_by
through a plain await, through gather() and through a TaskGroup (3.11+), pure-Python and eager tasks,
and the count asyncio.all_tasks() sees. Before 3.8 tasks have no name:
sonde calls them by their coroutine's __qualname__."""
import json
import os
import select
import signal
import subprocess
import time

import pytest

from conftest import (EXIT_EXITED, EXIT_NOPROC, EXIT_OK, TARGETS, dump_json, markers,
                      run_sonde, wait_for)

pytestmark = pytest.mark.min_python((3, 6), "asyncio tasks are read on 3.6+ (2.7 has no asyncio)")

SCRIPT = TARGETS / "tasks.py"
M = markers(SCRIPT)
S = str(SCRIPT)
SYSTEM_PYTHON = "/usr/bin/python3"


def read_line(t, timeout=20):
    """The next line the target prints after 'ready'."""
    fd = t.proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, "target printed no line"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 1)
            assert chunk, "target exited"
            buf += chunk
    return json.loads(buf)


def frames(g):
    return [(f["function"], f["file"], f["line"]) for f in g["frames"]]


def check_tasks(sonde_bin, t, minor):
    info = t.info
    # after "ready" the main task still has to reach its await, and the
    # main thread waits for the GIL (the spinning loop holds it) to get
    # there: dump until the spinner alone runs
    def settled():
        doc = dump_json(sonde_bin, t.pid)
        running = [g["name"] for g in doc["green_threads"] if g["running"]]
        return doc if running == ["spinner"] else None
    doc = wait_for(settled, 30, "the spinner alone running (the main task at its await)")
    green = doc["green_threads"]
    by_id = {g["id"]: g for g in green}
    assert len(by_id) == len(green), "a task listed twice"
    # every task asyncio.all_tasks() sees in both loops, no other
    assert len(green) == info["count_a"] + info["count_b"], [g["name"] for g in green]
    named = info["tasks"]
    for name, want in named.items():
        assert want["id"] in by_id, "task %s (id %d) missing" % (name, want["id"])
        g = by_id[want["id"]]
        assert g["kind"] == "task"
        assert g["name"] == want["name"]
        assert name == want["name"] or minor < (3, 8)  # named by the target from 3.8
    main_tid, spin_tid = info["tids"]["main"], info["tids"]["spinloop"]
    assert main_tid == t.pid
    # suspended tasks: the interpreter's own chain, exactly
    for name, want in named.items():
        g = by_id[want["id"]]
        if name == "spinner":
            continue
        assert g["tid"] == main_tid, name
        assert g["running"] is False, name
        assert frames(g) == [tuple(f) for f in want["chain"]], name
    assert [f[:2] for f in frames(by_id[named["outer"]["id"]])][1:] == [
        ("leaf_wait", S), ("middle", S), ("outer", S)]
    assert frames(by_id[named["outer"]["id"]])[1][2] == M["leaf"]
    assert frames(by_id[named["pytask"]["id"]])[-1] == ("py_task_body", S, M["pytask"])
    # the running task: the top of its thread's stack, down to its coroutine
    sp = by_id[named["spinner"]["id"]]
    assert sp["running"] is True and sp["tid"] == spin_tid
    # the spinning loop is caught on its body's line or on its `while` (the
    # jump back, one line above)
    fr = frames(sp)
    assert fr[1:] == [("spinner", S, M["spin_call"])] and fr[0][:2] == ("spin_inner", S), fr
    assert fr[0][2] in (M["spin"], M["spin"] - 1), fr
    assert [g["name"] for g in green if g["running"]] == ["spinner"]
    # awaited_by: through a plain await, through gather(), and across the loop's main
    assert by_id[named["awaited"]["id"]]["awaited_by"] == [named["awaiter"]["id"]]
    assert sp["awaited_by"] == [info["b_main"]]
    kids = info["gather_children"]
    assert len(kids) == 2
    for k in kids:
        assert by_id[k]["awaited_by"] == [named["gatherer"]["id"]]
        assert frames(by_id[k])[-1] == ("child", S, M["child"])
    if minor >= (3, 11):
        # a TaskGroup's children are awaited by the task in its __aexit__
        grouper = by_id[named["grouper"]["id"]]
        assert frames(grouper)[-1] == ("grouper", S, M["group"])
        assert frames(grouper)[0][0] == "__aexit__"
        for k in ("tg-1", "tg-2"):
            assert by_id[named[k]["id"]]["awaited_by"] == [grouper["id"]], k
            assert frames(by_id[named[k]["id"]])[-1] == ("child", S, M["child"])
        assert grouper["awaited_by"] == []
    assert by_id[info["main"]["id"]]["awaited_by"] == []
    assert frames(by_id[info["main"]["id"]])[-1] == ("main", S, M["main"])
    assert frames(by_id[info["b_main"]])[-1] == ("b_main", S, M["b_main"])
    if minor >= (3, 12):
        assert "eager" in named
    # names the interpreter gives: read before it is asked (3.12+ keeps
    # "Task-N" as N until get_name()), then asked
    t.proc.send_signal(signal.SIGUSR1)
    names = read_line(t)["names"]
    for g in green:
        if g["tid"] == main_tid:
            assert g["name"] == names[str(g["id"])], g
    # the text form shows them under their thread
    r = run_sonde(sonde_bin, "dump", "-p", t.pid)
    assert r.returncode == EXIT_OK, r.stderr
    out = r.stdout
    spin_at = out.index('Thread %d "spinloop"' % spin_tid)
    assert out.index('Task "spinner" (id 0x%x) running' % sp["id"]) > spin_at
    assert out.index('Task "gatherer"') < spin_at
    assert 'Task "%s" (id 0x%x) suspended, awaiting "%s"' % (
        named["awaiter"]["name"], named["awaiter"]["id"], named["awaited"]["name"]) in out


def test_dump_tasks(sonde_bin, cpython, start_target):
    t = start_target([cpython.path, S])
    assert t.info["version"] == cpython.version
    check_tasks(sonde_bin, t, cpython.minor)


def test_dump_tasks_uvloop(sonde_bin, start_target):
    """uvloop's loop (Debian's python3-uvloop for /usr/bin/python3) runs
    asyncio.Task too."""
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import uvloop, sys; print(sys.version_info[1])"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, "python3-uvloop missing: run scripts/install-deps"
    t = start_target([SYSTEM_PYTHON, S, "uvloop"])
    check_tasks(sonde_bin, t, (3, int(probe.stdout)))


def test_no_tasks(sonde_bin, cpython, start_target):
    t = start_target([cpython.path, S])
    doc = dump_json(sonde_bin, t.pid, "--no-tasks")
    assert "green_threads" not in doc
    assert {th["tid"] for th in doc["threads"]} == set(t.info["tids"].values())
    r = run_sonde(sonde_bin, "dump", "-p", t.pid, "--no-tasks")
    assert r.returncode == EXIT_OK and "Task \"" not in r.stdout


EXITING = r"""
import asyncio, sys, time
async def parked(ev):
    await ev.wait()
async def main():
    ev = asyncio.Event()
    ts = [asyncio.ensure_future(parked(ev)) for _ in range(20000)]
    await asyncio.sleep(0)
    print("ready", flush=True)
    await asyncio.sleep(float(sys.argv[1]))
    sys.exit(0)
if sys.argv[2] == "run":
    asyncio.run(main())
else:  # the tasks outlive the modules: they are freed as the interpreter finalizes
    asyncio.get_event_loop().run_until_complete(main())
"""


@pytest.mark.parametrize("how", ["run", "run_until_complete"])
def test_target_exits_during_dump(sonde_bin, cpython, start_target, how):
    """Dumps of a target with many tasks that exits meanwhile (through
    asyncio.run, which cancels them first, or out of run_until_complete):
    each one succeeds, or says the process exited (7) or is gone (3); never
    a crash, a hang or a second line of complaint."""
    if how == "run" and cpython.minor < (3, 7):
        pytest.skip("no asyncio.run before 3.7")
    t = start_target([cpython.path, "-c", EXITING, "0.3", how])
    codes = []
    while t.proc.poll() is None or not codes:
        r = run_sonde(sonde_bin, "dump", "-p", t.pid, "--json")
        codes.append(r.returncode)
        assert r.returncode in (EXIT_OK, EXIT_EXITED, EXIT_NOPROC), (r.returncode, r.stderr)
        if r.returncode == EXIT_OK:
            doc = json.loads(r.stdout)
            assert all(g["kind"] == "task" for g in doc["green_threads"])
        else:
            assert r.stderr.count("\n") == 1, r.stderr
    assert codes[-1] in (EXIT_OK, EXIT_EXITED, EXIT_NOPROC)
