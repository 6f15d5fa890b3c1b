/* agent: the greenlet switch tracer in C (agent/greentrace.c).
 *
 * The Python package (python/sonde/_greenlets.py) installs with
 * greenlet.settrace the builtin function sonde_greenlet_tracer returns.
 * It runs at every switch holding the GIL and stays in C: the origin's
 * `dead` and `gr_frame`, then greenlet_note_switch (tracer/greenlets.h).
 * Only a greenlet the current recording has not met yet costs a call back
 * into Python (describe(g): its name and function). The tracer that was
 * installed before it (gevent's monitor, the program's own) is called
 * after it with the same arguments, and its result returned.
 *
 * The library does not link libpython (one library serves every CPython
 * from 3.8): the few C-API functions it needs are found with
 * dlsym(RTLD_DEFAULT), in the python executable (Debian's is static and
 * exports them) or in the libpython it loaded. Only functions of the
 * stable ABI are used, and references are counted through Py_IncRef and
 * Py_DecRef, never by hand (3.12+ immortal objects). */
#ifndef SONDE_GREENTRACE_H
#define SONDE_GREENTRACE_H

/* The tracer, a new builtin function object (a PyObject *), chaining prev
 * (a callable, or None / NULL for nothing) and calling describe(g) (a
 * callable) the first time a recording meets greenlet g; prev is the
 * calling thread's (each thread chains its own). Called from
 * Python holding the GIL (ctypes.PyDLL, py_object arguments). Another call
 * replaces describe and prev of the tracer already built and returns it
 * again (each call returns a new reference: the library keeps one of its
 * own, so the tracer lives on whatever its callers drop). NULL (with no
 * Python error set) when the interpreter lacks one of
 * the functions it needs: the caller then keeps a tracer of its own. */
void *sonde_greenlet_tracer(void *describe, void *prev);

#endif
