"""sonde's in-process agent, from Python.

    import sonde
    sonde.start(output="run.sonde", rate=100)   # returns at once
    ...                                         # the program runs on
    sonde.stop()                                # finishes run.sonde

The agent is a native library (libsonde-agent.so) loaded through ctypes, so
this one package serves every CPython 3.8 to 3.13 (sonde itself also reads 2.7, 3.6
and 3.7 from outside; the agent does not support them). Its
sampling thread never takes the GIL and never runs Python code; the
recording is the same .sonde file `sonde record` writes (`sonde report`,
`export`, `view` read it). A recording still running when the interpreter
exits is finished then. Greenlets (greenlet, gevent) are recorded as lanes
of their own, through a switch hook installed when greenlet is imported
(sonde._greenlets). The library is looked up in $SONDE_AGENT_LIB, next
to this file (an installed sonde), then in the build tree.
"""
import atexit
import os

__all__ = ["start", "stop", "active", "library_path"]

_lib = None
_atexit = False


def library_path():
    """The path of libsonde-agent.so this package loads."""
    here = os.path.dirname(os.path.abspath(__file__))
    cands = [os.environ.get("SONDE_AGENT_LIB", ""),
             os.path.join(here, "libsonde-agent.so"),
             os.path.join(here, os.pardir, os.pardir, "agent", "libsonde-agent.so")]
    for c in cands:
        if c and os.path.isfile(c):
            return os.path.abspath(c)
    raise OSError("sonde: libsonde-agent.so not found (set SONDE_AGENT_LIB to its path)")


def _load():
    global _lib
    if _lib is None:
        import ctypes  # here, not at import: `import sonde` stays cheap
        lib = ctypes.CDLL(library_path())
        lib.sonde_agent_start.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_double]
        lib.sonde_agent_start.restype = ctypes.c_int
        lib.sonde_agent_stop.argtypes = []
        lib.sonde_agent_stop.restype = ctypes.c_int
        lib.sonde_agent_active.argtypes = []
        lib.sonde_agent_active.restype = ctypes.c_int
        _lib = lib
    return _lib


def start(output=None, rate=100, duration=0.0):
    """Start recording this process into output (default sonde-PID.sonde)
    at rate samples a second per thread, for duration seconds (0: until
    stop() or exit). Returns the recording's absolute path. Raises OSError
    (EBUSY: a recording already runs; EINVAL: a bad rate or duration)."""
    global _atexit
    if output is None:
        output = "sonde-%d.sonde" % os.getpid()
    output = os.path.abspath(os.fspath(output))
    rc = _load().sonde_agent_start(os.fsencode(output), int(rate), float(duration))
    if rc:
        raise OSError(-rc, "sonde: cannot start recording: %s" % os.strerror(-rc), output)
    from sonde import _greenlets
    _greenlets.install(_lib)
    if not _atexit:
        # Python's atexit runs once the program's threads are joined and
        # before the interpreter is torn down: the best moment to finish.
        atexit.register(_stop_at_exit)
        _atexit = True
    return output


def stop():
    """Stop the recording and finish its file (nothing happens when none
    runs). Raises RuntimeError when the recording failed (the agent printed
    why on stderr)."""
    rc = _load().sonde_agent_stop()
    if rc:
        raise RuntimeError("sonde: the recording failed (code %d)" % rc)


def active():
    """True while a recording runs in this process."""
    return bool(_load().sonde_agent_active())


def _stop_at_exit():
    if _lib is not None:
        _lib.sonde_agent_stop()


# The tracer API (spans): python/sonde/tracing.py, imported at the first use
# of one of these names (it imports json, socket, inspect, urllib...: a
# program recorded by `sonde record --agent` that uses no spans does not pay
# for them at start-up).
_TRACING = {"span": "span", "traced": "traced", "inject": "inject", "extract": "extract",
            "current_span": "current_span", "flush_spans": "flush", "span_stats": "stats"}
__all__ += list(_TRACING)


def __getattr__(name):
    if name in _TRACING:
        from . import tracing
        value = getattr(tracing, _TRACING[name])
        globals()[name] = value
        return value
    raise AttributeError("module 'sonde' has no attribute %r" % name)
