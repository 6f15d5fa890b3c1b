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

#define IOV_CHUNK 512

static int remote_readv(struct mem_reader *m, const struct mem_iov *iov, size_t n)
{
    struct iovec local[IOV_CHUNK], remote[IOV_CHUNK];
    for (size_t off = 0; off < n; off += IOV_CHUNK) {
        size_t k = n - off < IOV_CHUNK ? n - off : IOV_CHUNK;
        size_t want = 0;
        for (size_t i = 0; i < k; i++) {
            const struct mem_iov *v = &iov[off + i];
            if (v->addr < 4096 && v->len)
                return SE_FAULT;
            local[i].iov_base = v->buf;
            local[i].iov_len = v->len;
            remote[i].iov_base = (void *)(uintptr_t)v->addr;
            remote[i].iov_len = v->len;
            want += v->len;
        }
        ssize_t got = process_vm_readv(m->pid, local, k, remote, k, 0);
        if (got == (ssize_t)want)
            continue;
        if (got >= 0)
            return SE_FAULT;
        if (errno == ESRCH)
            return SE_EXITED;
        if (errno == EPERM)
            return kill(m->pid, 0) != 0 && errno == ESRCH ? SE_EXITED : SE_PERM;
        return SE_FAULT;
    }
    return 0;
}

static const struct mem_ops remote_ops = { remote_readv, remote_read };

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

static const struct mem_ops local_ops = { remote_readv, local_read };

void mem_init_local(struct mem_reader *m)
{
    memset(m, 0, sizeof *m);
    m->ops = &local_ops;
    m->pid = getpid();
}
