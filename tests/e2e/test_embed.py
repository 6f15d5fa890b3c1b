"""sonde dump on an embedding host: a C program named 'embhost' that links
libpython (shared, with an rpath, or statically) and starts Python threads
through PyRun_SimpleString. The runtime must be found from ELF symbols, not
from the executable's name."""
import os
import shutil
import subprocess

import pytest

from conftest import TARGETS, dump_json, markers, run_sonde

HOST_C = TARGETS / "embedhost.c"
CODE = TARGETS / "embedded.py"
M = markers(CODE)

CONFIG = ("import sysconfig as s, os; g = s.get_config_var; "
          "print(g('INCLUDEPY')); print(g('LIBDIR') or ''); print(g('LDLIBRARY') or ''); "
          "print(os.path.join(g('LIBPL') or '', g('LIBRARY') or '')); "
          "print(g('LIBS') or ''); print(g('SYSLIBS') or ''); print(g('LINKFORSHARED') or ''); "
          "print('%d.%d' % __import__('sys').version_info[:2]); print(g('MODLIBS') or '')")


def build_host(cpython, kind, outdir):
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    r = subprocess.run([cpython.path, "-c", CONFIG], capture_output=True, text=True, timeout=30)
    inc, libdir, ldlib, static_lib, libs, syslibs, linkforshared, mm, modlibs = \
        r.stdout.split("\n")[:9]
    if not os.path.exists(os.path.join(inc, "Python.h")):
        pytest.skip("no Python.h for %s" % cpython.path)
    exe = os.path.join(outdir, "embhost-%s" % kind)
    cmd = ["gcc", "-O1", "-o", exe, str(HOST_C), "-I" + inc]
    if kind == "shared":
        so = os.path.join(libdir, "libpython%s.so" % mm)
        if not cpython.shared or not os.path.exists(so):
            pytest.skip("%s has no shared libpython" % cpython.path)
        cmd += ["-L" + libdir, "-Wl,-rpath," + libdir, "-lpython" + mm]
    else:
        if not os.path.isfile(static_lib):
            pytest.skip("%s has no static libpython" % cpython.path)
        # non-PIE: Debian's libpython3.11.a is not position independent, and
        # an ET_EXEC host (no load bias) is one more case for sonde
        cmd += ["-no-pie", static_lib] + linkforshared.split() + modlibs.split()
    cmd += libs.split() + syslibs.split() + ["-lpthread", "-lm", "-lutil", "-ldl"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "building the host failed: %s\n%s" % (" ".join(cmd), r.stderr)
    return exe


@pytest.mark.parametrize("kind", ["shared", "static"])
def test_embedding_host(sonde_bin, cpython, start_target, tmp_path, kind):
    exe = build_host(cpython, kind, str(tmp_path))
    assert "python" not in os.path.basename(exe)
    env = dict(os.environ, PYTHONHOME=os.path.dirname(os.path.dirname(cpython.path))
               if not cpython.path.startswith("/usr/") else "/usr")
    t = start_target([exe, CODE], env=env)
    assert t.info and t.info["version"] == cpython.version

    doc = dump_json(sonde_bin, t.pid)
    assert doc["python_version"] == cpython.version
    got = {th["name"]: th for th in doc["threads"]}
    assert sorted(got) == ["MainThread", "emb-sleeper", "emb-waiter"]
    for name, th in got.items():
        assert th["tid"] == t.info["tids"][name], name
    # the host's main thread returned to C: no Python frames, no GIL
    assert got["MainThread"]["frames"] == []
    assert got["MainThread"]["tid"] == t.pid
    sl = [(f["function"], f["file"], f["line"]) for f in got["emb-sleeper"]["frames"]]
    assert sl[:2] == [("emb_sleep", "<string>", M["emb_sleep"]),
                      ("emb_sleeper", "<string>", M["emb_sleep_call"])]
    boot = ["run", "__bootstrap_inner", "__bootstrap"] if cpython.minor < (3, 0) else \
        ["run", "_bootstrap_inner", "_bootstrap"]  # (2.7 spells them __x)
    assert [f[0] for f in sl[2:]] == boot
    wt = [(f["function"], f["file"], f["line"]) for f in got["emb-waiter"]["frames"]]
    assert [f[0] for f in wt[:2]] == ["wait", "wait"]
    assert wt[2:4] == [("emb_wait", "<string>", M["emb_wait"]),
                       ("emb_waiter", "<string>", M["emb_wait_call"])]
    assert [f[0] for f in wt[4:]] == boot
    assert not any(th["gil"] for th in doc["threads"])

    # text output names the host binary or libpython, never a guess from the name
    r = run_sonde(sonde_bin, "dump", "-p", t.pid)
    assert r.returncode == 0, r.stderr
    first = r.stdout.split("\n")[0]
    assert first.startswith("Process %d: Python %s (" % (t.pid, cpython.version)), first
    if kind == "static":
        assert first.endswith("(%s)" % exe), first
    assert "    (no Python frames)" in r.stdout


@pytest.mark.parametrize("kind", ["shared", "static"])
def test_embedding_host_native(sonde_bin, cpython, start_target, tmp_path, kind):
    """dump --native of the embedding host: the host's main thread is all
    native (the libc wait under the host's own main), the Python threads
    have the libc wait above their Python frames and the thread start
    below them. On a static host the interpreter and the host's own code
    are one file: the host's functions are among the interpreter's,
    hidden without --native-all."""
    exe = build_host(cpython, kind, str(tmp_path))
    env = dict(os.environ, PYTHONHOME=os.path.dirname(os.path.dirname(cpython.path))
               if not cpython.path.startswith("/usr/") else "/usr")
    t = start_target([exe, CODE], env=env)
    doc = dump_json(sonde_bin, t.pid, "--native")
    got = {th["name"]: th for th in doc["threads"]}
    assert all(th["native_error"] is None for th in doc["threads"]), doc["threads"]
    main = got["MainThread"]["frames"]
    assert main and all(f["native"] for f in main), main
    assert "libc.so" in main[0]["module"] and "pause" in main[0]["function"], main[0]
    has_main = [f for f in main if f["function"] == "main"]
    if kind == "shared":
        assert has_main and os.path.realpath(has_main[0]["module"]) == os.path.realpath(exe), main
    else:
        assert not has_main, main
        full = dump_json(sonde_bin, t.pid, "--native", "--native-all")
        fm = [th for th in full["threads"] if th["name"] == "MainThread"][0]["frames"]
        assert any(f["function"] == "main" and os.path.realpath(f["module"]) ==
                   os.path.realpath(exe) for f in fm), fm
    sl = got["emb-sleeper"]["frames"]
    py = [i for i, f in enumerate(sl) if not f["native"]]
    assert py and py == list(range(py[0], py[-1] + 1)), sl  # the Python frames in one run
    above, below = sl[:py[0]], sl[py[-1] + 1:]
    assert above and all(f["native"] for f in above)
    assert any("libc.so" in (f["module"] or "") and f["function"] in
               ("clock_nanosleep", "__clock_nanosleep", "__select", "select", "__nanosleep")
               for f in above), above
    assert [(f["function"], f["line"]) for f in sl[py[0]:py[0] + 2]] == \
        [("emb_sleep", M["emb_sleep"]), ("emb_sleeper", M["emb_sleep_call"])], sl
    assert any(f["function"] in ("start_thread", "__clone3", "clone3", "__clone", "clone")
               for f in below), below
