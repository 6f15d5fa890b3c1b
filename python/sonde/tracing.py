"""sonde's tracer: spans from Python, exported by the native agent.

    with sonde.span("handle /cart", kind="server", attributes={"user": 7}) as sp:
        sp.set_attribute("items", 3)
        ...

    @sonde.traced()
    def price_lookup(sku): ...

    sonde.inject(headers)                      # W3C traceparent / tracestate out
    with sonde.span("handle", parent=sonde.extract(request.headers)): ...

The current span follows the code through contextvars: per OS thread, and
per asyncio task (a task created inside a span inherits it). An ended span
goes to libsonde-agent.so in one call; the agent's native thread exports it
(OTLP/HTTP JSON) and, while a recording runs, stores it in the recording,
whose samples carry the span current on their thread, asyncio task or
greenlet (entering and leaving a span tells the agent, keyed by the task's
or greenlet's id()). Nothing here waits on
the network, and a full queue drops the span (counted: stats()).

Configuration, by the OpenTelemetry conventions: OTEL_SERVICE_NAME,
OTEL_RESOURCE_ATTRIBUTES (k=v,k=v; added to every span's attributes, but
service.name and host.name, which name the service and host),
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full URL) or
OTEL_EXPORTER_OTLP_ENDPOINT (the base URL, /v1/traces appended), and
SONDE_COLLECTOR, set by `sonde record --agent --collector URL`. No endpoint:
spans are kept for the recording alone. Without the agent library, spans
still propagate but go nowhere.
"""
import contextvars
import ctypes
import functools
import inspect
import itertools
import json
import os
import random
import socket
import struct
import sys
import time
from urllib.parse import unquote

__all__ = ["span", "traced", "inject", "extract", "current_span", "SpanContext", "Span", "flush", "stats"]

_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_M64 = (1 << 64) - 1
_pack = struct.Struct("<QQQQqqIBBHI").pack
_current = contextvars.ContextVar("sonde_span", default=None)
_numbers = itertools.count(1)
_rng = random.Random()
_bits = _rng.getrandbits
_time_ns = time.time_ns
_set_current = None   # sonde_span_at, or a no-op
_end = None           # sonde_span_end_at, or a no-op
_lib = None
_modules = sys.modules
_nmods = -1           # len(sys.modules) when _green was last chosen
_green = None         # id() of the running asyncio task / greenlet, or None
_M32 = 0xFFFFFFFF


def _choose_green():
    """Choose _green for what is imported now (called again whenever
    sys.modules grew): a function giving the id() of the asyncio task or
    greenlet running here, 0 when none (or the thread's main greenlet), or
    None when neither asyncio nor greenlet is loaded. The id is the key the
    agent follows a task's or greenlet's span by, the object address the
    sampler knows its lane by."""
    global _green, _nmods
    _nmods = len(_modules)
    aio, gl = _modules.get("asyncio"), _modules.get("greenlet")
    loop_of = getattr(getattr(aio, "events", None), "_get_running_loop", None)
    task_of = getattr(getattr(aio, "tasks", None), "current_task", None)
    now = getattr(gl, "getcurrent", None)
    if loop_of is None or task_of is None:
        loop_of = None

    def green():
        if loop_of is not None:
            loop = loop_of()
            if loop is not None:
                t = task_of(loop)
                if t is not None:
                    return id(t)
        if now is not None:
            g = now()
            if g.parent is not None:
                return id(g)
        return 0
    _green = green if loop_of is not None or now is not None else None


def _noop(*a):
    return 0


def _reseed():
    _rng.seed(os.urandom(16))


def _resource():
    """(endpoint, service, host, extra attributes as JSON text or None)."""
    attrs = {}
    for part in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        k, sep, v = part.partition("=")
        if sep and k.strip():
            attrs[unquote(k.strip())] = unquote(v.strip())
    service = os.environ.get("OTEL_SERVICE_NAME") or attrs.pop("service.name", None) or "unknown_service"
    attrs.pop("service.name", None)
    host = attrs.pop("host.name", None) or socket.gethostname()
    ep = os.environ.get("SONDE_COLLECTOR") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not ep:
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        ep = base.rstrip("/") + "/v1/traces" if base else ""
    return ep, service, host, (json.dumps(attrs) if attrs else None)


def _init():
    """Bind the agent's span entry points (once)."""
    global _set_current, _end, _lib
    from . import library_path
    try:
        # PyDLL: the calls keep the GIL (they take nanoseconds; releasing
        # and taking it back would cost more and invite a switch)
        lib = ctypes.PyDLL(library_path())
        # the hot two without argtypes (converting by argtypes costs about
        # 1 us a call): ctypes passes bytes as char * and ints (span
        # numbers < 2**31, lengths < 2**24, keys' 32-bit halves) as int
        lib.sonde_span_at.restype = None
        lib.sonde_span_end_at.restype = ctypes.c_int
        lib.sonde_spans_config.argtypes = [ctypes.c_char_p] * 4
        lib.sonde_spans_config.restype = ctypes.c_int
        lib.sonde_spans_flush.argtypes = [ctypes.c_double]
        lib.sonde_spans_flush.restype = ctypes.c_int
        lib.sonde_spans_stats.argtypes = [ctypes.POINTER(ctypes.c_uint64)]
        lib.sonde_spans_stats.restype = None
        ep, service, host, extra = _resource()
        enc = lambda s: s.encode("utf-8", "replace") if s else None
        lib.sonde_spans_config(enc(ep), enc(service), enc(host), enc(extra))
        _lib = lib
        _set_current, _end = lib.sonde_span_at, lib.sonde_span_end_at
    except OSError:
        _set_current, _end = _noop, _noop
    return _end


class SpanContext:
    """A span's identity as another process gave it (extract), usable as a
    parent. trace_id: 128-bit int, span_id: 64-bit int."""
    __slots__ = ("trace_id", "span_id", "flags", "tracestate")
    no = 0

    def __init__(self, trace_id, span_id, flags=1, tracestate=""):
        self.trace_id, self.span_id, self.flags, self.tracestate = trace_id, span_id, flags, tracestate

    @property
    def traceparent(self):
        return "00-%032x-%016x-%02x" % (self.trace_id, self.span_id, self.flags)


class Span:
    """One span: a context manager (`with`), or start and end() by hand."""
    __slots__ = ("name", "kind", "trace_id", "span_id", "parent_id", "start_ns", "end_ns", "attributes",
                 "status", "status_message", "no", "tracestate", "_token", "_restore", "_green")
    flags = 1

    def __init__(self, name, kind="internal", attributes=None, parent=None):
        if parent is None:
            parent = _current.get()
        k = _KINDS.get(kind) if kind.__class__ is str else None
        if k is None:
            raise ValueError("sonde: kind must be one of %s, not %r" % (", ".join(_KINDS), kind))
        self.name = name
        self.kind = k
        self.span_id = _bits(64) or 1
        if parent is None:
            self.trace_id = _bits(128) or 1
            self.parent_id = 0
            self.tracestate = ""
        else:
            self.trace_id = parent.trace_id
            self.parent_id = parent.span_id
            self.tracestate = parent.tracestate
        self.attributes = dict(attributes) if attributes else None
        self.status = 0
        self.status_message = None
        self.no = next(_numbers) & 0x7FFFFFFF or 1
        self.end_ns = 0
        self._token = None
        self._restore = 0
        self._green = 0
        if _end is None:
            _init()  # (its one-time cost, loading the exporter's libraries, not the span's)
        self.start_ns = _time_ns()

    def set_attribute(self, key, value):
        if self.attributes is None:
            self.attributes = {}
        self.attributes[str(key)] = value
        return self

    def set_status(self, error, message=None):
        """error true: the span failed (message says why); false: it
        succeeded."""
        self.status = 2 if error else 1
        self.status_message = None if message is None else str(message)
        return self

    @property
    def traceparent(self):
        return "00-%032x-%016x-01" % (self.trace_id, self.span_id)

    def __enter__(self):
        prev = _current.get()
        self._token = _current.set(self)
        # the span in force here again at exit: in a task or greenlet, the
        # one entered in it before (one it inherited is its thread's
        # business: the agent falls back to the thread's span)
        if len(_modules) != _nmods:
            _choose_green()
        g = _green
        self._green = k = g() if g is not None else 0
        self._restore = prev.no if prev is not None and prev._green == k else 0
        (_set_current or _init() and _set_current)(self.no, k & _M32, k >> 32)
        return self

    def __exit__(self, et, ev, tb):
        if et is not None and self.status == 0:
            self.set_status(True, "%s: %s" % (et.__name__, ev))
            self.set_attribute("exception.type", et.__name__)
            self.set_attribute("exception.message", str(ev))
        tok = self._token
        if tok is not None:
            self._token = None
            try:
                _current.reset(tok)
            except ValueError:  # left in another context than entered
                pass
        self.end()
        return False

    def end(self):
        """End the span (once; a second call does nothing) and hand it to
        the agent."""
        if self.end_ns:
            return
        self.end_ns = _time_ns()
        a = self.attributes
        if self.status_message is not None:
            a = dict(a or ())
            a["otel.status_description"] = self.status_message
        ab = json.dumps(a, default=str, ensure_ascii=False).encode("utf-8", "replace") if a else b""
        nb = self.name.encode("utf-8", "replace")[:65535] if self.name.__class__ is str else \
            str(self.name).encode("utf-8", "replace")[:65535]
        t = self.trace_id
        rec = _pack(t >> 64, t & _M64, self.span_id, self.parent_id, self.start_ns, self.end_ns, self.no,
                    self.kind, self.status, len(nb), len(ab)) + nb + ab
        k = self._green
        (_end or _init())(rec, len(rec), self._restore, k & _M32, k >> 32)


def span(name, kind="internal", attributes=None, parent=None):
    """A new span, child of parent (a Span or SpanContext; None: the
    current span, or a new trace). Use it with `with`."""
    return Span(name, kind, attributes, parent)


def traced(name=None, kind="internal"):
    """Decorator: each call of the function runs in a span (named after its
    qualified name unless name is given); coroutine functions too."""
    def wrap(fn):
        nm = name or getattr(fn, "__qualname__", getattr(fn, "__name__", "function"))
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def acall(*a, **kw):
                with Span(nm, kind):
                    return await fn(*a, **kw)
            return acall

        @functools.wraps(fn)
        def call(*a, **kw):
            with Span(nm, kind):
                return fn(*a, **kw)
        return call
    if callable(name):  # @traced without parentheses
        fn, name = name, None
        return wrap(fn)
    return wrap


def current_span():
    """The span current here (this thread or asyncio task), or None."""
    return _current.get()


def inject(headers, span=None):
    """Write the W3C traceparent (and tracestate) of span (default: the
    current one) into the dict-like headers; returns headers."""
    s = span if span is not None else _current.get()
    if s is not None:
        headers["traceparent"] = s.traceparent
        if s.tracestate:
            headers["tracestate"] = s.tracestate
    return headers


def _header(headers, key):
    try:
        v = headers.get(key)
    except AttributeError:
        v = None
    if v is None:
        try:
            for k, val in headers.items():
                if k.lower() == key:
                    return val
        except AttributeError:
            return None
    return v


def extract(headers):
    """The SpanContext in the W3C traceparent of headers, or None when it is
    missing or malformed (as the W3C rules say: version 00 exactly as
    specified, later versions by their first four fields)."""
    tp = _header(headers, "traceparent")
    if isinstance(tp, bytes):
        tp = tp.decode("latin-1")
    if not isinstance(tp, str):
        return None
    parts = tp.strip().split("-")
    if len(parts) < 4:
        return None
    ver, tid, sid, fl = parts[:4]
    if len(ver) != 2 or ver.lower() == "ff" or (ver == "00" and len(parts) != 4):
        return None
    if len(tid) != 32 or len(sid) != 16 or len(fl) != 2:
        return None
    try:
        int(ver, 16)
        t, s, f = int(tid, 16), int(sid, 16), int(fl, 16)
    except ValueError:
        return None
    if not t or not s or tid != tid.lower() or sid != sid.lower():
        return None
    ts = _header(headers, "tracestate")
    if isinstance(ts, bytes):
        ts = ts.decode("latin-1")
    return SpanContext(t, s, f, ts.strip()[:512] if isinstance(ts, str) else "")


def flush(timeout=2.0):
    """Wait up to timeout seconds for the ended spans to be exported.
    True when every one was (or was dropped), False on timeout."""
    if _lib is None:
        _init()
    return _lib is None or _lib.sonde_spans_flush(float(timeout)) == 0


def stats():
    """{"ended", "exported", "dropped_queue", "dropped_export",
    "not_kept", "profiles_dropped"}: the agent's span figures for this
    process (profiles_dropped: samples of spans whose profile found no room
    among the 512 built at once, and profiles that could not be encoded)."""
    if _lib is None:
        _init()
    out = (ctypes.c_uint64 * 6)()
    if _lib is not None:
        _lib.sonde_spans_stats(out)
    return dict(zip(("ended", "exported", "dropped_queue", "dropped_export", "not_kept", "profiles_dropped"), out))


_reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
