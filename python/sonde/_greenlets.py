"""sonde's greenlet switch hook: every greenlet (greenlet, gevent) as a lane.

install(lib) chains a tracer in front of whatever greenlet.settrace held
(gevent's monitor, for one) as soon as greenlet is imported: now if it is,
else at its import; in the thread that imports it, and in each
threading.Thread started later (greenlet.settrace is per OS thread). The tracer is the agent's own, in C
(agent/greentrace.c): on each switch it hands the agent the origin and
target greenlets, the frame where the origin parked, and whether it
finished, without running Python code. A greenlet is described (name,
function, by _describe here) the first time the current recording meets
it. Should the agent's tracer be unavailable, the Python one below does the
same through ctypes, at a much higher cost per switch. Neither this module
nor install_at_import imports ctypes: the process `sonde record --agent`
starts pays for it only once greenlet is imported.
"""
import sys

_installed = False


def _describe(lib, g):
    name = func = ""
    try:
        run = None
        if getattr(g, "parent", 0) is None:
            name = "(main)"
        else:
            mod = type(g).__module__ or ""
            if mod.startswith("gevent") and type(g).__name__ == "Hub":
                name = "(hub)"
            else:
                n = getattr(g, "name", None)
                name = n if isinstance(n, str) else ""
            run = getattr(g, "_run", None) or getattr(g, "run", None)
        if run is not None:
            run = getattr(run, "__func__", run)
            func = getattr(run, "__qualname__", "") or getattr(run, "__name__", "") or ""
            if not isinstance(func, str):
                func = ""
        if not name:
            name = func or type(g).__name__
    except Exception:
        name = name or "greenlet"
    lib.sonde_greenlet_name(id(g), name.encode("utf-8", "replace")[:63],
                            func.encode("utf-8", "replace")[:63])


def _make_tracer(lib, prev):
    switch = lib.sonde_greenlet_switch
    seen = set()
    gen = [0]

    def tracer(event, args):
        if event == "switch" or event == "throw":
            o, t = args
            io, it = id(o), id(t)
            if io not in seen:
                _describe(lib, o)
                seen.add(io)
            if it not in seen:
                _describe(lib, t)
                seen.add(it)
            dead = o.dead
            if dead:
                seen.discard(io)
                g = switch(io, it, 0, 1)
            else:
                f = o.gr_frame
                g = switch(io, it, id(f) if f is not None else 0, 0)
            if g != gen[0]:
                # a new recording: describe them again
                gen[0] = g
                seen.clear()
                if g:
                    for x in (o, t):
                        _describe(lib, x)
                        seen.add(id(x))
                    if dead:
                        seen.discard(io)
        if prev is not None:
            return prev(event, args)

    return tracer


def _hook_now(lib):
    """Hook this thread's switches, and those of the threads started from
    now on (greenlet.settrace is per OS thread)."""
    global _installed
    if _installed:
        return
    import ctypes
    import greenlet
    import weakref
    lib.sonde_greenlet_switch.argtypes = [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64,
                                          ctypes.c_int]
    lib.sonde_greenlet_switch.restype = ctypes.c_uint32
    lib.sonde_greenlet_name.argtypes = [ctypes.c_uint64, ctypes.c_char_p, ctypes.c_char_p]
    lib.sonde_greenlet_name.restype = None
    prev = greenlet.gettrace()
    tracer = api = None

    def describe(g):
        _describe(lib, g)
    try:
        # PyDLL: the call keeps the GIL (the function builds Python objects)
        api = ctypes.PyDLL(lib._name, handle=lib._handle).sonde_greenlet_tracer
        api.argtypes = [ctypes.py_object, ctypes.py_object]
        api.restype = ctypes.py_object
        tracer = api(describe, prev)
    except (AttributeError, ValueError):
        api = None
    if tracer is None:
        api = None
        tracer = _make_tracer(lib, prev)
    greenlet.settrace(tracer)
    ours = weakref.WeakSet([tracer])

    def hook_this_thread():
        """The hook on a thread just started, chained in front of the
        thread's own tracer if it has one, never another thread's (the C
        tracer is one function for the whole process that keeps each
        thread's predecessor apart)."""
        mine = greenlet.gettrace()
        if mine is not None and mine in ours:
            return
        if api is not None:
            greenlet.settrace(api(describe, mine))
            return
        t = _make_tracer(lib, mine)
        ours.add(t)
        greenlet.settrace(t)

    _hook_new_threads(hook_this_thread)
    _installed = True


def _hook_new_threads(hook):
    """Run hook first in every threading.Thread started from now on.
    Threads already running keep no tracer of ours (the hook can only be
    installed from inside a thread), nor do threads started by other means
    than threading."""
    import threading
    cls = threading.Thread
    orig = getattr(cls, "_bootstrap_inner", None)
    if orig is None or getattr(orig, "_sonde_hook", False):
        return

    def _bootstrap_inner(self):
        try:
            hook()
        except Exception:
            pass
        return orig(self)

    _bootstrap_inner._sonde_hook = True
    cls._bootstrap_inner = _bootstrap_inner


class _Finder:
    """Installs the hook right after greenlet is imported. lib is the
    agent's CDLL, or a function that returns it (or None: no hook) when
    greenlet is imported."""

    def __init__(self, lib):
        self.lib = lib

    def find_spec(self, name, path=None, target=None):
        if name != "greenlet":
            return None
        import importlib.util
        sys.meta_path.remove(self)
        lib = self.lib
        if callable(lib):
            try:
                lib = lib()
            except Exception:
                lib = None
            if lib is None:
                return None
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader

        class _Loader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                try:
                    _hook_now(lib)
                except Exception:
                    pass

        spec.loader = _Loader()
        return spec


def _loaded_agent(path):
    """The agent library at path as a CDLL if this process has it loaded
    and it records, else None."""
    import ctypes
    import os
    dll = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    dll.sonde_agent_active.restype = ctypes.c_int
    return dll if dll.sonde_agent_active() else None


def install_at_import(path):
    """Hook greenlet switches into the agent library at path, already loaded
    (LD_PRELOAD), once greenlet is imported, if the agent records then."""
    if _installed:
        return
    if "greenlet" in sys.modules:
        lib = _loaded_agent(path)
        if lib is not None:
            install(lib)
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(lambda: _loaded_agent(path)))


def install(lib):
    """Hook greenlet switches into the agent library lib (a ctypes CDLL)."""
    if _installed:
        return
    if "greenlet" in sys.modules:
        try:
            _hook_now(lib)
        except Exception:
            pass
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder(lib))
