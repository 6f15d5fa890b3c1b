/* Readers of a target's memory. A const vtable because real variants exist:
 * remote (process_vm_readv, never stops the target) and local (the in-process
 * agent reading its own address space). */
#ifndef SONDE_MEM_H
#define SONDE_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mem_reader;

/* One piece of a scattered read. */
struct mem_iov {
    uint64_t addr;
    void *buf;
    size_t len;
};

struct mem_ops {
    /* Read every piece completely, in as few system calls as possible.
     * 0, SE_FAULT (some piece unreadable), SE_EXITED or SE_PERM. */
    int (*readv)(struct mem_reader *m, const struct mem_iov *iov, size_t n);
    /* Read exactly len bytes at addr. 0, SE_FAULT (unmapped or partial),
     * SE_EXITED (target gone) or SE_PERM. */
    int (*read)(struct mem_reader *m, uint64_t addr, void *buf, size_t len);
};

struct mem_reader {
    const struct mem_ops *ops;
    pid_t pid;
    uint64_t reads;   /* counters, for benchmarks and stats */
    uint64_t bytes;
};

/* Set up a reader of process pid's memory through process_vm_readv. */
void mem_init_remote(struct mem_reader *m, pid_t pid);

/* Set up a reader of this process's own memory (agent mode). */
void mem_init_local(struct mem_reader *m);

static inline int mem_read(struct mem_reader *m, uint64_t addr, void *buf, size_t len)
{
    m->reads++;
    m->bytes += len;
    return m->ops->read(m, addr, buf, len);
}

static inline int mem_readv(struct mem_reader *m, const struct mem_iov *iov, size_t n)
{
    m->reads++;
    for (size_t i = 0; i < n; i++)
        m->bytes += iov[i].len;
    return m->ops->readv(m, iov, n);
}

/* Read a pointer-sized (8 byte) value. */
static inline int mem_read_ptr(struct mem_reader *m, uint64_t addr, uint64_t *out)
{
    return mem_read(m, addr, out, sizeof *out);
}

#endif
