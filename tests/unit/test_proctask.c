/* tracer/proc/task: the schedstat, syscall and kernel-stack parsers on
 * lines as Linux writes them (and damaged ones), and the readers on this
 * very thread. */
#include "check.h"

#include "tracer/proc/task.h"

#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* The OS thread name: this thread's (read through /proc/self), a child
 * process's (through /proc/PID), and none for a thread that is not there. */
static void test_comm(void)
{
    char name[64];
    pid_t me = (pid_t)syscall(SYS_gettid);
    CHECK_INT(prctl(PR_SET_NAME, "sonde-comm-t", 0, 0, 0), 0);
    proc_task_comm(getpid(), me, name, sizeof name);
    CHECK_STR(name, "sonde-comm-t");
    proc_task_comm(getpid(), me, name, 5); /* cut to the buffer */
    CHECK_STR(name, "sond");
    proc_task_comm(getpid(), 0, name, sizeof name);
    CHECK_STR(name, "");
    proc_task_comm(getpid(), 0x7ffffff0, name, sizeof name);
    CHECK_STR(name, "");

    int p[2];
    CHECK_INT(pipe(p), 0);
    pid_t child = fork();
    if (child == 0) {
        prctl(PR_SET_NAME, "other-proc", 0, 0, 0);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    CHECK_INT(read(p[0], &c, 1), 1);
    proc_task_comm(child, child, name, sizeof name);
    CHECK_STR(name, "other-proc");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    struct proc_schedstat ss;
    proc_schedstat_parse("123456789 2345 67\n", &ss);
    CHECK_INT(ss.cpu_ns, 123456789);
    CHECK_INT(ss.delay_ns, 2345);
    CHECK_INT(ss.pcount, 67);
    proc_schedstat_parse("42\n", &ss); /* cut short: the rest unknown */
    CHECK_INT(ss.cpu_ns, 42);
    CHECK_INT(ss.delay_ns, -1);
    CHECK_INT(ss.pcount, -1);
    proc_schedstat_parse("garbage", &ss);
    CHECK_INT(ss.cpu_ns, -1);
    proc_schedstat_parse("18446744073709551615 0 0", &ss); /* wraps, no crash */
    CHECK_INT(ss.delay_ns, 0);

    struct proc_syscall sc;
    proc_syscall_parse("running\n", &sc);
    CHECK_INT(sc.kind, PROC_SYS_RUNNING);
    proc_syscall_parse("-1 0x7ffd8c0c8e38 0x7f1e0d2a1e9d\n", &sc);
    CHECK_INT(sc.kind, PROC_SYS_USER);
    proc_syscall_parse("202 0x7f1e0c0013a8 0x189 0x0 0x0 0x0 0xffffffff 0x7ffd 0x7f1e\n", &sc);
    CHECK_INT(sc.kind, PROC_SYS_CALL);
    CHECK_INT(sc.nr, 202);
    CHECK_INT(sc.has_arg0, 1);
    CHECK(sc.arg0 == 0x7f1e0c0013a8ull, "arg0 %llx", (unsigned long long)sc.arg0);
    proc_syscall_parse("7 0X1F 0x1", &sc); /* upper-case prefix */
    CHECK_INT(sc.nr, 7);
    CHECK(sc.arg0 == 0x1f, "arg0 %llx", (unsigned long long)sc.arg0);
    proc_syscall_parse("202", &sc); /* cut after the number */
    CHECK_INT(sc.kind, PROC_SYS_CALL);
    CHECK_INT(sc.nr, 202);
    CHECK_INT(sc.has_arg0, 0);
    proc_syscall_parse("202 zz", &sc); /* no address: matches none */
    CHECK_INT(sc.has_arg0, 1);
    CHECK(sc.arg0 == ~0ull, "arg0 %llx", (unsigned long long)sc.arg0);
    proc_syscall_parse("??", &sc);
    CHECK_INT(sc.kind, PROC_SYS_CALL);
    CHECK_INT(sc.nr, -1);
    CHECK_INT(sc.has_arg0, 0);
    proc_syscall_parse("", &sc);
    CHECK_INT(sc.kind, PROC_SYS_UNKNOWN);

    CHECK_INT(proc_kstack_classify(""), PROC_KSTACK_ON_CPU);
    CHECK_INT(proc_kstack_classify("[<0>] futex_wait_queue+0x60/0x90\n[<0>] futex_wait+0x185/0x270\n"
                                   "[<0>] do_futex+0x106/0x1b0\n[<0>] __x64_sys_futex+0x8e/0x1d0\n"
                                   "[<0>] do_syscall_64+0x5b/0x110\n"),
              PROC_KSTACK_WAIT_RETURN);
    CHECK_INT(proc_kstack_classify("[<0>] exit_to_user_mode_loop+0xd0/0x130\n"
                                   "[<0>] do_syscall_64+0x87/0x110\n"),
              PROC_KSTACK_WAIT_RETURN);
    CHECK_INT(proc_kstack_classify("[<0>] exit_to_user_mode_loop+0xd0/0x130\n"
                                   "[<0>] irqentry_exit_to_user_mode+0x9/0x20\n"
                                   "[<0>] asm_sysvec_apic_timer_interrupt+0x1a/0x20\n"),
              PROC_KSTACK_OTHER);
    /* a syscall return interrupted: preempted, not a wait's return */
    CHECK_INT(proc_kstack_classify("[<0>] irqentry_exit+0x1/0x2\n[<0>] do_syscall_64+0x5b/0x110\n"),
              PROC_KSTACK_OTHER);

    /* this thread, now: it has spent CPU */
    struct proc_task t;
    pid_t tid = (pid_t)syscall(SYS_gettid);
    proc_task_open(&t, getpid(), tid);
    proc_task_schedstat(&t, &ss);
    CHECK(ss.cpu_ns > 0, "cpu_ns %lld", (long long)ss.cpu_ns);
    CHECK(ss.pcount > 0, "pcount %lld", (long long)ss.pcount);
    proc_task_syscall(&t, &sc);
    /* reading its own syscall file, it is in that very read */
    CHECK(sc.kind == PROC_SYS_CALL && sc.nr == SYS_pread64, "kind %d nr %lld", sc.kind,
          (long long)sc.nr);
    proc_task_close(&t);
    proc_task_close(&t); /* idempotent */
    proc_task_schedstat(&t, &ss); /* closed: unknown, no crash */
    CHECK_INT(ss.cpu_ns, -1);
    /* a thread that does not exist: every read unknown */
    proc_task_open(&t, getpid(), 0x7ffffff0);
    proc_task_syscall(&t, &sc);
    CHECK_INT(sc.kind, PROC_SYS_UNKNOWN);
    CHECK_INT(proc_task_kstack(&t), PROC_KSTACK_UNKNOWN);
    proc_task_close(&t);

    CHECK(proc_ppid(getpid()) == getppid(), "ppid");
    CHECK(!proc_gone(getpid()), "this process is not gone");
    CHECK(proc_image_id(getpid()) != 0, "image id");
    CHECK(proc_image_id(getpid()) == proc_image_id(getpid()), "image id stable");
    char cmd[256];
    proc_cmdline(getpid(), cmd, sizeof cmd);
    CHECK(strstr(cmd, "test_proctask") != NULL, "cmdline '%s'", cmd);

    /* the mapped files' identity: stable while the heap grows, changed by
     * loading a library (jansson: a build dependency, not linked here) */
    uint64_t m0 = proc_maps_files_id(getpid());
    CHECK(m0 != 0, "maps id");
    void *big = malloc(64 << 20); /* an anonymous mapping */
    CHECK_INT(proc_maps_files_id(getpid()) == m0, 1);
    void *lib = dlopen("libjansson.so.4", RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != NULL, "dlopen: %s", dlerror());
    CHECK(proc_maps_files_id(getpid()) != m0, "a new library changes the maps id");
    if (lib)
        dlclose(lib);
    free(big);
    CHECK_INT(proc_maps_files_id(0x7ffffff0), 0); /* no such process */
    test_comm();
    return check_done("proctask");
}
