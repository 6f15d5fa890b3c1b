// A Go program that embeds CPython for tests/e2e/test_gohost.py, built by
// the test with cgo and the standard library only against one CPython's
// shared libpython (CGO_CFLAGS / CGO_LDFLAGS from python3.X-config).
//
// Usage: gohost SCRIPT SECONDS. It runs SCRIPT (targets/gohost.py) in
// __main__, then starts goroutines, each locked to its own OS thread, named
// through prctl, entering Python with PyGILState_Ensure:
//   - go-spin: go_spin(), a pure-Python loop (holds the GIL most of the time)
//   - go-sleep: go_sleep(), time.sleep (idle, no GIL)
//   - go-tick-1, go-tick-2: a loop that sleeps 1 ms in Go without the GIL,
//     takes the GIL back (PyEval_RestoreThread, timed: the ground truth of its
//     GIL wait) and calls go_tick(), a short pure-Python loop.
// The main thread keeps its OS name (the binary's) and leaves Python. Prints
// one JSON line (pid, tids by role, the names /proc gives them, whether
// threading got imported, which names the main thread), "ready",
// and after SECONDS (0: never) one JSON line with each ticking thread's
// measured GIL wait and lifetime, then exits.
package main

/*
#include <Python.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int set_thread_name(const char *n) { return prctl(PR_SET_NAME, n, 0, 0, 0); }
static long thread_id(void) { return syscall(SYS_gettid); }

// Call __main__.name(); 0 on success (an exception is printed).
static int call_main(const char *name)
{
    PyObject *m = PyImport_AddModule("__main__");
    PyObject *fn = m ? PyObject_GetAttrString(m, name) : NULL;
    PyObject *r = fn ? PyObject_CallObject(fn, NULL) : NULL;
    Py_XDECREF(fn);
    if (!r) {
        PyErr_Print();
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

// Is __main__.name true? -1 if it cannot be read.
static int main_flag(const char *name)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *m = PyImport_AddModule("__main__");
    PyObject *v = m ? PyObject_GetAttrString(m, name) : NULL;
    int r = v ? PyObject_IsTrue(v) : -1;
    Py_XDECREF(v);
    PyErr_Clear();
    PyGILState_Release(g);
    return r;
}
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

func init() {
	// Py_Initialize and PyEval_SaveThread on one OS thread: the main one
	runtime.LockOSThread()
}

type started struct {
	role string
	tid  int
}

type tickStats struct {
	waitNs, lifeNs, calls int64
}

func comm(tid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", tid))
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\n")
}

func enter(role string, ch chan<- started) {
	runtime.LockOSThread() // never unlocked: the thread ends with the program
	name := C.CString(role)
	C.set_thread_name(name)
	C.free(unsafe.Pointer(name))
	C.PyGILState_Ensure()
	// reported once the thread has its thread state, which sonde lists:
	// "ready" means every role is there to be seen
	ch <- started{role, int(C.thread_id())}
}

func runForever(role, fn string, ch chan<- started) {
	enter(role, ch)
	f := C.CString(fn)
	C.call_main(f) // does not return
	os.Exit(3)
}

func tick(role string, ch chan<- started, st *tickStats) {
	enter(role, ch)
	f := C.CString("go_tick")
	t0 := time.Now()
	for {
		ts := C.PyEval_SaveThread()
		time.Sleep(time.Millisecond)
		a := time.Now()
		C.PyEval_RestoreThread(ts)
		atomic.AddInt64(&st.waitNs, int64(time.Since(a)))
		if C.call_main(f) != 0 {
			os.Exit(3)
		}
		atomic.AddInt64(&st.calls, 1)
		atomic.StoreInt64(&st.lifeNs, int64(time.Since(t0)))
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gohost SCRIPT SECONDS")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	seconds, err := strconv.ParseFloat(os.Args[2], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	C.Py_Initialize()
	code := C.CString(string(src))
	if C.PyRun_SimpleString(code) != 0 {
		os.Exit(1)
	}
	C.PyEval_SaveThread() // the goroutine threads take the GIL from here on
	flag := C.CString("THREADING")
	threading := C.main_flag(flag) == 1

	ch := make(chan started)
	stats := map[string]*tickStats{"go-tick-1": {}, "go-tick-2": {}}
	go runForever("go-spin", "go_spin", ch)
	go runForever("go-sleep", "go_sleep", ch)
	for role, st := range stats {
		go tick(role, ch, st)
	}
	tids := map[string]int{"main": int(C.thread_id())}
	for i := 0; i < 4; i++ {
		s := <-ch
		tids[s.role] = s.tid
	}
	names := map[string]string{}
	for role, tid := range tids {
		names[role] = comm(tid)
	}
	info, _ := json.Marshal(map[string]interface{}{
		"pid": os.Getpid(), "tids": tids, "comm": names, "threading": threading,
		"version": C.GoString(C.Py_GetVersion()),
	})
	fmt.Println(string(info))
	fmt.Println("ready")
	if seconds <= 0 {
		select {}
	}
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	out := map[string]map[string]float64{}
	for role, st := range stats {
		out[role] = map[string]float64{
			"gil_wait_s": float64(atomic.LoadInt64(&st.waitNs)) / 1e9,
			"life_s":     float64(atomic.LoadInt64(&st.lifeNs)) / 1e9,
			"calls":      float64(atomic.LoadInt64(&st.calls)),
		}
	}
	res, _ := json.Marshal(map[string]interface{}{"truth": out})
	fmt.Println(string(res))
	os.Exit(0)
}
