/* agent: the greenlet switch tracer in C (agent/greentrace.h). */
#include "agent/greentrace.h"

#include "tracer/greenlets.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SEEN 4096       /* greenlets remembered as described (direct-mapped) */
#define METH_VARARGS 1

/* CPython's types, opaque here, and PyMethodDef (stable ABI). */
typedef struct py_object PyObject;
typedef PyObject *(*py_cfunc)(PyObject *, PyObject *);
struct py_methoddef {
    const char *name;
    py_cfunc meth;
    int flags;
    const char *doc;
};

static struct {
    PyObject *(*new_ex)(struct py_methoddef *, PyObject *, PyObject *);
    PyObject *(*getattr)(PyObject *, PyObject *);
    PyObject *(*call)(PyObject *, PyObject *, PyObject *);
    PyObject *(*call_args)(PyObject *, ...);
    PyObject *(*tuple_get)(PyObject *, ssize_t);
    PyObject *(*intern)(const char *);
    void (*incref)(PyObject *);
    void (*decref)(PyObject *);
    void (*err_clear)(void);
    PyObject *none, *true_;
    /* interned names: greenlet passes its own interned "switch" / "throw" */
    PyObject *s_switch, *s_throw, *s_dead, *s_frame;
} api;

/* Everything below is touched holding the GIL only. */
static PyObject *tr_self;      /* the tracer function, kept for good */
static PyObject *tr_describe;  /* describe(g) */
/* the tracer chained after us on this thread, or NULL (greenlet.settrace
 * is per thread: each thread's own, never another thread's) */
static _Thread_local PyObject *tr_prev;
static struct {
    uintptr_t addr;
    uint32_t gen, thread;
} seen[SEEN];
/* the thread's number (from 1), for seen: a greenlet of a thread that
 * ended (its main one) never switches out dead, and its address may serve
 * a greenlet of another thread */
static uint32_t threads_met;
static _Thread_local uint32_t my_thread;

static size_t seen_slot(uintptr_t a)
{
    uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 52) & (SEEN - 1);
}

/* Describe g unless this recording (gen) met it already. */
static void meet(PyObject *g, uint32_t gen, uint32_t thread)
{
    size_t k = seen_slot((uintptr_t)g);
    if (seen[k].addr == (uintptr_t)g && seen[k].gen == gen && seen[k].thread == thread)
        return;
    seen[k].addr = (uintptr_t)g;
    seen[k].gen = gen;
    seen[k].thread = thread;
    PyObject *r = api.call_args(tr_describe, g, (PyObject *)NULL);
    if (r)
        api.decref(r);
    else
        api.err_clear();
}

/* The switch in args = (event, (origin, target)), to the ring. */
static void note(PyObject *args, uint32_t gen)
{
    PyObject *ev = api.tuple_get(args, 0), *pair = ev ? api.tuple_get(args, 1) : NULL;
    PyObject *o = pair ? api.tuple_get(pair, 0) : NULL, *t = o ? api.tuple_get(pair, 1) : NULL;
    if (!t) {
        api.err_clear();
        return;
    }
    if (ev != api.s_switch && ev != api.s_throw)
        return;
    uint32_t me = my_thread ? my_thread : (my_thread = ++threads_met);
    meet(o, gen, me);
    meet(t, gen, me);
    /* The origin just switched out: it is parked in its top frame, or it
     * finished (no frame). `dead` is asked only then: gevent's Greenlet
     * overrides it with Python code (~250 ns), gr_frame is greenlet's own
     * getter. A greenlet parked with no Python frame on its stack (its run
     * a builtin that switched) is told apart by that `dead`. */
    uintptr_t frame = 0;
    int dead = 0;
    PyObject *f = api.getattr(o, api.s_frame);
    if (f) {
        if (f != api.none)
            frame = (uintptr_t)f;
        /* its interpreter frame holds the frame object while it waits */
        api.decref(f);
    } else {
        api.err_clear();
    }
    if (!frame) {
        PyObject *d = api.getattr(o, api.s_dead);
        dead = d == api.true_;
        if (d)
            api.decref(d);
        else
            api.err_clear();
    }
    if (dead) /* its address may serve a new greenlet */
        seen[seen_slot((uintptr_t)o)].addr = 0;
    greenlet_note_switch((uint64_t)(uintptr_t)o, (uint64_t)(uintptr_t)t, frame, dead);
}

static PyObject *tracer(PyObject *self, PyObject *args)
{
    (void)self;
    uint32_t gen = greenlet_generation();
    if (gen)
        note(args, gen);
    if (tr_prev)
        return api.call(tr_prev, args, NULL);
    api.incref(api.none);
    return api.none;
}

static struct py_methoddef tr_def = {
    "sonde_greenlet_tracer", tracer, METH_VARARGS,
    "sonde's greenlet switch hook (then the tracer installed before it)",
};

static int resolve(void)
{
    if (api.s_dead)
        return 0;
#define SYM(field, name)                                     \
    do {                                                     \
        *(void **)&api.field = dlsym(RTLD_DEFAULT, name);    \
        if (!api.field)                                      \
            return -1;                                       \
    } while (0)
    SYM(new_ex, "PyCFunction_NewEx");
    SYM(getattr, "PyObject_GetAttr");
    SYM(call, "PyObject_Call");
    SYM(call_args, "PyObject_CallFunctionObjArgs");
    SYM(tuple_get, "PyTuple_GetItem");
    SYM(intern, "PyUnicode_InternFromString");
    SYM(incref, "Py_IncRef");
    SYM(decref, "Py_DecRef");
    SYM(err_clear, "PyErr_Clear");
    SYM(none, "_Py_NoneStruct");
    SYM(true_, "_Py_TrueStruct");
#undef SYM
    PyObject **names[] = { &api.s_switch, &api.s_throw, &api.s_frame, &api.s_dead };
    const char *strs[] = { "switch", "throw", "gr_frame", "dead" };
    for (int i = 0; i < 4; i++) {
        if (!*names[i] && !(*names[i] = api.intern(strs[i]))) {
            api.err_clear();
            return -1;
        }
    }
    return 0;
}

void *sonde_greenlet_tracer(void *describe, void *prev)
{
    if (!describe || resolve())
        return NULL;
    if (!tr_self && !(tr_self = api.new_ex(&tr_def, NULL, NULL))) {
        api.err_clear();
        return NULL;
    }
    PyObject *p = prev && prev != (void *)api.none && prev != (void *)tr_self ? prev : NULL;
    PyObject *old_d = tr_describe, *old_p = tr_prev;
    api.incref(describe);
    tr_describe = describe;
    if (p)
        api.incref(p);
    tr_prev = p;
    if (old_d)
        api.decref(old_d);
    if (old_p)
        api.decref(old_p);
    /* a new reference for the caller (ctypes takes a returned py_object
     * as one); tr_self keeps its own, so the tracer outlives every copy
     * handed out */
    api.incref(tr_self);
    return tr_self;
}
