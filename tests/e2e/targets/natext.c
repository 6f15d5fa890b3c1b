/* A C extension for tests/e2e/test_native.py, built by the test with -g:
 * natext.spin(n) loops n times in its own function with the GIL released,
 * so that a native stack shows natext's names and lines; natext.vfork_wait(ms)
 * keeps its thread in the kernel's vfork wait for ms milliseconds, where no
 * ptrace interrupt stops it. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) static long natext_spin_loop(long n)
{
    volatile long acc = 0;
    for (long i = 0; i < n; i++) acc += i ^ (acc >> 3); /* @loop */
    return acc;
}

static PyObject *natext_spin(PyObject *self, PyObject *arg)
{
    (void)self;
    long n = PyLong_AsLong(arg), r; /* (2.7: an int is taken too) */
    if (n == -1 && PyErr_Occurred())
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    r = natext_spin_loop(n);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(r);
}

static PyObject *natext_vfork_wait(PyObject *self, PyObject *arg)
{
    (void)self;
    long ms = PyLong_AsLong(arg);
    if (ms == -1 && PyErr_Occurred())
        return NULL;
    pid_t c;
    Py_BEGIN_ALLOW_THREADS
    c = vfork();
    if (c == 0) {
        struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&d, NULL);
        _exit(0);
    }
    if (c > 0)
        waitpid(c, NULL, 0);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong((long)c);
}

static PyMethodDef methods[] = {
    { "spin", natext_spin, METH_O, "loop n times" },
    { "vfork_wait", natext_vfork_wait, METH_O, "stay in vfork's wait for ms milliseconds" },
    { NULL, NULL, 0, NULL },
};

#if PY_MAJOR_VERSION >= 3
static struct PyModuleDef module = { PyModuleDef_HEAD_INIT, "natext", NULL, -1, methods,
                                     NULL, NULL, NULL, NULL };

PyMODINIT_FUNC PyInit_natext(void)
{
    return PyModule_Create(&module);
}
#else
PyMODINIT_FUNC initnatext(void)
{
    Py_InitModule("natext", methods);
}
#endif
