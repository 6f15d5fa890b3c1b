/* An embedding host for tests/e2e/test_embed.py: a program that is not named
 * python, links libpython (shared or static) and runs the Python source
 * given in argv[1] with PyRun_SimpleString. Once that returns, the main
 * thread releases the GIL, prints "ready" and waits in C with no Python
 * frames. */
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRIPT\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    static char code[1 << 16];
    size_t n = fread(code, 1, sizeof code - 1, f);
    fclose(f);
    code[n] = 0;

    Py_Initialize();
    if (PyRun_SimpleString(code) != 0)
        return 1;
    PyThreadState *ts = PyEval_SaveThread(); /* let the Python threads run */
    /* only now is the main thread out of Python for good */
    fputs("ready\n", stdout);
    fflush(stdout);
    for (;;)
        pause();
    PyEval_RestoreThread(ts);
    return 0;
}
