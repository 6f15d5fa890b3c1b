/* tracer/classify: every rule of the thread-state classification, from
 * evidence built by hand (no process involved). */
#include "check.h"

#include "common/state.h"
#include "tracer/classify.h"

#define GIL_LO 0x7f0000001000ull
#define GIL_HI 0x7f0000001100ull

/* a thread in a two-thread process, the GIL at GIL_LO, nothing else known */
static struct classify_evidence base(void)
{
    struct classify_evidence e = {
        .last_state = -1,
        .dcpu = 1000000,
        .gil = { .nthreads = 2, .lo = GIL_LO, .hi = GIL_HI },
        .kstack = PROC_KSTACK_UNKNOWN,
    };
    return e;
}

static struct proc_syscall sys_of(const char *line)
{
    struct proc_syscall s;
    proc_syscall_parse(line, &s);
    return s;
}

/* runnable, seen with kernel stack kstack, not put on a CPU since its
 * previous sample (in state last), nothing in the interval's split */
static struct classify_evidence queued_since(int kstack, int last)
{
    struct classify_evidence e = base();
    e.sys = sys_of("running\n");
    e.kstack = kstack;
    e.did_not_run = 1;
    e.last_state = last;
    e.dcpu = e.ddelay = 0;
    return e;
}

int main(void)
{
    struct classify_carry c = { 0 };
    struct classify_evidence e;

    /* the GIL holder is in gil, whatever else is known; its syscall line is
     * read (for the off-CPU flag), not its kernel stack */
    e = base();
    e.holds_gil = 1;
    e.did_not_run = 1;
    e.last_state = STATE_IDLE;
    CHECK_INT(classify_state(&e, &c), STATE_GIL);
    CHECK(classify_wants_syscall(&e), "holder: syscall wanted");
    e.sys = sys_of("running\n");
    CHECK(!classify_wants_kstack(&e), "holder: no kernel stack");

    /* did not run since an idle or gil_wait sample: unchanged, nothing read */
    int unchanged_states[] = { STATE_IDLE, STATE_GIL_WAIT };
    for (int i = 0; i < 2; i++) {
        e = base();
        e.did_not_run = 1;
        e.last_state = unchanged_states[i];
        e.sys = sys_of("running\n"); /* would say otherwise: not consulted */
        CHECK(!classify_wants_syscall(&e), "unchanged: no syscall read");
        CHECK_INT(classify_state(&e, &c), unchanged_states[i]);
    }
    /* ... but not after a nogil or gil sample: it may have lost the GIL */
    e = base();
    e.did_not_run = 1;
    e.last_state = STATE_NOGIL;
    CHECK(classify_wants_syscall(&e), "after nogil: syscall read");
    e.sys = sys_of("202 0x7f0000001010 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK_INT(classify_state(&e, &c), STATE_GIL_WAIT);

    /* futex inside the GIL: gil_wait; at its first byte too; outside: idle */
    e = base();
    e.sys = sys_of("202 0x7f0000001000 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK(!classify_wants_kstack(&e), "asleep: no kernel stack");
    CHECK_INT(classify_state(&e, &c), STATE_GIL_WAIT);
    e.sys = sys_of("202 0x7f0000001100 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK_INT(classify_state(&e, &c), STATE_IDLE); /* one past the end */
    e.sys = sys_of("202 0x55d0c0de0040 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK_INT(classify_state(&e, &c), STATE_IDLE);
    /* another system call on the GIL's address (not a futex): idle */
    e.sys = sys_of("7 0x7f0000001000 0x1 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK_INT(classify_state(&e, &c), STATE_IDLE);
    /* unreadable syscall file: idle */
    e.sys = sys_of("");
    CHECK_INT(classify_state(&e, &c), STATE_IDLE);

    /* runnable, each kernel-stack class */
    e = base();
    e.sys = sys_of("running\n");
    CHECK(classify_wants_kstack(&e), "runnable: kernel stack wanted");
    e.kstack = PROC_KSTACK_ON_CPU;
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL);
    e.sys = sys_of("-1 0x7ffc 0x7f00\n"); /* outside any call: the same rules */
    CHECK(classify_wants_kstack(&e), "user space: kernel stack wanted");
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL);
    e.sys = sys_of("running\n");

    /* wait-return without a handoff (was idle before): split by deltas */
    e.kstack = PROC_KSTACK_WAIT_RETURN;
    e.last_state = STATE_IDLE;
    e.dcpu = 1000;
    e.ddelay = 0;
    c.run = 0;
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL); /* all on CPU */
    e.dcpu = 0;
    e.ddelay = 1000;
    c.run = 0;
    CHECK_INT(classify_state(&e, &c), STATE_IDLE); /* all queued */

    /* other / unknown kernel stack: the interval's split, diffused so that
     * the totals follow it (a quarter on CPU: one nogil in four) */
    int kinds[] = { PROC_KSTACK_OTHER, PROC_KSTACK_UNKNOWN };
    for (int k = 0; k < 2; k++) {
        e = base();
        e.sys = sys_of("running\n");
        e.kstack = kinds[k];
        e.dcpu = 250;
        e.ddelay = 750;
        c.run = 0;
        int nogil = 0;
        for (int i = 0; i < 400; i++)
            nogil += classify_state(&e, &c) == STATE_NOGIL;
        CHECK_INT(nogil, 100);
        /* no time at all in the interval counts as on CPU */
        e.dcpu = e.ddelay = 0;
        c.run = 0;
        CHECK_INT(classify_state(&e, &c), STATE_NOGIL);
    }

    /* runnable, seen off its CPU and not put on one since its previous
     * (nogil) sample: queued the whole interval, idle, whatever the split
     * (the kernel has not counted the wait in progress yet: empty); having
     * run in between, or with an unreadable kernel stack, or seen on a
     * CPU, the rules above */
    int off_kinds[] = { PROC_KSTACK_OTHER, PROC_KSTACK_WAIT_RETURN };
    for (int k = 0; k < 2; k++) {
        e = queued_since(off_kinds[k], STATE_NOGIL);
        c.run = 0;
        CHECK_INT(classify_state(&e, &c), STATE_IDLE);
        e.did_not_run = 0;
        c.run = 0;
        CHECK_INT(classify_state(&e, &c), STATE_NOGIL);
    }
    /* after a gil sample, or none, the same; a handoff still comes first */
    int lasts[] = { STATE_GIL, -1 };
    for (int k = 0; k < 2; k++) {
        e = queued_since(PROC_KSTACK_OTHER, lasts[k]);
        c = (struct classify_carry){ 0 };
        CHECK_INT(classify_state(&e, &c), STATE_IDLE);
    }
    e.kstack = PROC_KSTACK_WAIT_RETURN;
    e.last_state = STATE_GIL;
    e.gil.switched = 1;
    CHECK_INT(classify_state(&e, &c), STATE_GIL_WAIT);

    /* the wait counted idle is not counted again when the kernel adds it
     * to the interval in which the thread runs: queued 2 ms seen by a
     * tick, then 1 ms on a CPU and the 2 ms wait in ddelay: all on CPU */
    e = queued_since(PROC_KSTACK_OTHER, STATE_NOGIL);
    e.wall = 2000000;
    c = (struct classify_carry){ 0 };
    CHECK_INT(classify_state(&e, &c), STATE_IDLE);
    CHECK_INT(c.queued, 2000000);
    e.did_not_run = 0;
    e.kstack = PROC_KSTACK_UNKNOWN;
    e.dcpu = 1000000;
    e.ddelay = 2000000;
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL);
    CHECK_INT(c.queued, 0);
    /* (without that, a third on CPU: idle) */
    c = (struct classify_carry){ 0 };
    CHECK_INT(classify_state(&e, &c), STATE_IDLE);
    /* a wait longer than counted: the rest stays in the split */
    c = (struct classify_carry){ .queued = 500000 };
    e.dcpu = 1000000;
    e.ddelay = 3500000;
    CHECK_INT(classify_state(&e, &c), STATE_IDLE); /* 1 ms on CPU, 3 ms queued */
    CHECK_INT(c.queued, 0);

    e = queued_since(PROC_KSTACK_UNKNOWN, STATE_NOGIL);
    c.run = 0;
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL); /* kernel stack unknown */
    e.kstack = PROC_KSTACK_ON_CPU;
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL);

    /* handoff rules: a runnable thread back from a wait (kernel stack
     * WAIT_RETURN) waits for the GIL if it waited for it before, or held it
     * and the GIL switched or another thread holds it now */
    struct gil_view g = { .nthreads = 2 };
    CHECK_INT(classify_in_gil_handoff(STATE_GIL_WAIT, &g), 1);
    CHECK_INT(classify_in_gil_handoff(STATE_GIL, &g), 0);
    g.switched = 1;
    CHECK_INT(classify_in_gil_handoff(STATE_GIL, &g), 1);
    g.switched = 0;
    g.holder = 4243;
    CHECK_INT(classify_in_gil_handoff(STATE_GIL, &g), 1);
    g.switched = 1;
    CHECK_INT(classify_in_gil_handoff(STATE_IDLE, &g), 0);
    CHECK_INT(classify_in_gil_handoff(STATE_NOGIL, &g), 0);
    CHECK_INT(classify_in_gil_handoff(-1, &g), 0);
    e = base();
    e.sys = sys_of("running\n");
    e.kstack = PROC_KSTACK_WAIT_RETURN;
    e.last_state = STATE_GIL_WAIT;
    CHECK_INT(classify_state(&e, &c), STATE_GIL_WAIT);
    e.last_state = STATE_GIL;
    e.gil.switched = 1;
    CHECK_INT(classify_state(&e, &c), STATE_GIL_WAIT);
    /* only for WAIT_RETURN: the same thread seen on a CPU runs without it */
    e.kstack = PROC_KSTACK_ON_CPU;
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL);

    /* a single-thread process is never in gil_wait through a handoff, even
     * with a switch counted and a previous gil_wait */
    g = (struct gil_view){ .nthreads = 1, .switched = 1, .holder = 4243 };
    CHECK_INT(classify_in_gil_handoff(STATE_GIL_WAIT, &g), 0);
    CHECK_INT(classify_in_gil_handoff(STATE_GIL, &g), 0);
    e = base();
    e.gil.nthreads = 1;
    e.gil.switched = 1;
    e.sys = sys_of("running\n");
    e.kstack = PROC_KSTACK_WAIT_RETURN;
    e.last_state = STATE_GIL_WAIT;
    e.dcpu = 1000;
    e.ddelay = 0;
    c.run = 0;
    CHECK_INT(classify_state(&e, &c), STATE_NOGIL);

    /* the holder off its CPU: asleep in a call or stopped; not when asleep
     * on the GIL itself (it let it go); runnable: the queued share,
     * diffused; unreadable: not flagged */
    e = base();
    e.holds_gil = 1;
    e.sys = sys_of("0 0x3 0x7ffc 0x1000 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK_INT(classify_holder_off_cpu(&e, &c), 1);
    e.sys = sys_of("-1 0x7ffc 0x7f00\n");
    CHECK_INT(classify_holder_off_cpu(&e, &c), 1);
    e.sys = sys_of("202 0x7f0000001010 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK_INT(classify_holder_off_cpu(&e, &c), 0);
    e.sys = sys_of("202 0x55d0c0de0040 0x80 0x0 0x0 0x0 0x0 0x7ffc 0x7f00\n");
    CHECK_INT(classify_holder_off_cpu(&e, &c), 1);
    e.sys = sys_of("");
    CHECK_INT(classify_holder_off_cpu(&e, &c), 0);
    e.sys = sys_of("running\n");
    e.dcpu = 750;
    e.ddelay = 250;
    c.holder = 0;
    int off = 0;
    for (int i = 0; i < 400; i++)
        off += classify_holder_off_cpu(&e, &c);
    CHECK_INT(off, 100);
    e.dcpu = e.ddelay = 0;
    c.holder = 0;
    CHECK_INT(classify_holder_off_cpu(&e, &c), 0); /* no evidence: on CPU */
    return check_done("classify");
}
