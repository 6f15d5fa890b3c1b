#include "tracer/proc/mem.h"

#include "common/err.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>
#include <signal.h>
#include <string.h>

static int remote_read(struct mem_reader *m, uint64_t addr, void *buf, size_t len)
{
    if (len == 0)
        return 0;
    if (addr < 4096)
        return SE_FAULT;
    struct iovec local = { buf, len };
    struct iovec remote = { (void *)(uintptr_t)addr, len };
    ssize_t n = process_vm_readv(m->pid, &local, 1, &remote, 1, 0);
    if (n == (ssize_t)len)
        return 0;
    if (n >= 0)
        return SE_FAULT;
    switch (errno) {
    case ESRCH:
        return SE_EXITED;
    case EPERM:
        /* A zombie or a vanished process can also answer EPERM. */
        if (kill(m->pid, 0) != 0 && errno == ESRCH)
            return SE_EXITED;
        return SE_PERM;
    default:
        return SE_FAULT;
    }
}

static const struct mem_ops remote_ops = { remote_read };

void mem_init_remote(struct mem_reader *m, pid_t pid)
{
    memset(m, 0, sizeof *m);
    m->ops = &remote_ops;
    m->pid = pid;
}

/* In-process reads still go through process_vm_readv on ourselves: it turns
 * a torn pointer into an error code instead of a SIGSEGV. */
static int local_read(struct mem_reader *m, uint64_t addr, void *buf, size_t len)
{
    return remote_read(m, addr, buf, len);
}

static const struct mem_ops local_ops = { local_read };

void mem_init_local(struct mem_reader *m)
{
    memset(m, 0, sizeof *m);
    m->ops = &local_ops;
    m->pid = getpid();
}
