/* tracer: the sampler's own types, shared by tracer/sampler.c (the loop,
 * targets, lifetimes) and tracer/tick.c (one tick over one target). Private
 * to those two files: everything here belongs to the sampling thread. */
#ifndef SONDE_SAMPLER_IMPL_H
#define SONDE_SAMPLER_IMPL_H

#include "tracer/sampler.h"
#include "common/clock.h"

#include "tracer/classify.h"
#include "tracer/cpython/threads.h"
#include "tracer/proc/maps.h"
#include "tracer/proc/task.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define MAX_TARGETS 64
#define WIN_ARENA (4 << 20)
#define SLOT_BITS 13 /* 8192 slots for up to PY_MAX_THREADS threads */
#define SIDE_SLOTS 4096 /* frames outside the windows read per tick, at most */
#define SIDE_BYTES 256  /* >= py_side_size() */
#define NAT_MERGED_MAX (512 + PY_MAX_DEPTH) /* a merged stack: NAT_MAX_DEPTH + PY_MAX_DEPTH */

struct tslot {
    pid_t tid;         /* 0: free */
    struct proc_task task; /* its /proc files */
    int64_t last_cpu, last_delay, last_ts, last_pcount;
    /* schedstat's CPU and run count before the frames kept in `frames` were
     * read (the previous tick's: the thread list, whose frame pointers the
     * walk follows, is read before this tick's schedstat). The stack is
     * reused only while they have not moved: a thread that ran between the
     * frame pointer read and this tick's schedstat would otherwise keep a
     * stack it has left (seen: a 0.5 s sleep charged to the function the
     * thread had returned from). */
    int64_t walk_cpu, walk_pcount;
    /* the green thread its last walk was tagged with, and whether a switch
     * raced that walk: a stack used again is theirs */
    uint64_t walk_green_addr;
    int walk_race;
    int last_state;
    struct rec_frame *frames; /* last resolved stack (remember_stack) */
    int fcap, nframes, ftruncated, have_frames;
    uint64_t *side;    /* frames outside the window at the last walk (PY_SIDE_MAX) */
    int nside;
    struct classify_carry carry; /* error diffusion (tracer/classify.h) */
    uint64_t seen_tick;
    uint64_t ident;
    int named;         /* 0: no name recorded; 1: its OS name (osname); 2: its Python name */
    char osname[16];   /* the OS name last recorded (comm: 15 characters) */
};

struct target {
    struct py_runtime rt;
    pid_t pid;
    int alive;
    struct tslot *slots;   /* hash by tid, 1 << SLOT_BITS */
    int nslots, nseen;     /* slots in use; of those, seen at this tick */
    /* the indices of the slots in use (nslots of them), so that closing
     * them all reads those alone: the table is 1 << SLOT_BITS slots whose
     * untouched pages would each fault in */
    uint16_t *occ;
    uint64_t gil_lo, gil_hi, gil_interp;
    uint64_t switches0, switches_last;
    int64_t last_names_ts;
    int64_t names_backoff; /* next name refresh while some thread is unnamed */
    int need_names;
    struct py_snapcache snap;
    /* CPU the kernel counted for the whole process (threads that ended
     * included) against what the samples carried: the difference is CPU of
     * threads that were never sampled or ended between two samples. */
    uint64_t start_ticks;   /* the recording's start, clock ticks after boot */
    int64_t cpu0_ns;        /* at the first tick (0: started after the recording began); -1 unknown */
    int64_t charged_ns;     /* carried by this target's samples */
    int64_t unsampled_ns;   /* already recorded as unsampled */
    int64_t last_unsampled_ts;
    /* the process's CPU and charged_ns as last read together (every 10 ms:
     * a target reaped by its parent as it exits can no longer be read) */
    int fd_stat;
    int64_t stat_cpu_ns, stat_charged_ns, last_stat_ts;
    /* which program image the process runs: an exec replaces it under the
     * same pid (see check_exec) */
    uint64_t image_id;
    int64_t last_exec_check, exec_since;
    int exec_pending; /* 1: waiting for the new image's Python (since exec_since) */
    /* runtimes of images the process left: records still queued for the
     * writer point at their code objects, so they live as long as the sampler */
    struct py_runtime *retired[8];
    int nretired;
    int unsampled_named;
    struct green_state *green; /* its asyncio tasks (tracer/green.c), NULL until asked */
    struct greenlet_state *greenlets; /* its greenlets (tracer/greenlets.c), in-process only */
    void *nat;             /* its native state (sampler_opts.native), NULL: none */
    void *nat_retired[8];  /* of images it left: queued records name their symbols */
    int nnat_retired;
};

/* What pass 1 of a tick learns about one thread, for passes 2 and 3. */
struct thread_tick {
    struct tslot *sl;
    int64_t dcpu, wall;
    int state, reuse, flags;
    int64_t prev_cpu, prev_pcount; /* the slot's schedstat at the previous tick */
    size_t raw_first; /* its frames in sampler.rawall (pass 3) */
    int nraw, truncated;
    int native;       /* 1: its stack is merged with native frames: nmg of them
                         from sampler.mgall[mg_first] (pass 3) */
    int nmg;
    size_t mg_first;
    uint32_t green;   /* the green thread running on it (tracer/green.c), 0 none */
    uint64_t green_addr; /* that green thread's object address (its span's key) */
    /* an asyncio task's coroutine frame: the walk looks for it (pass 3),
     * and its stack is the task's only when it was met (0: not known) */
    uint64_t green_frame;
    int green_seen;   /* 1 met, 0 not met, -1 not looked for */
    int span_race;    /* a switch raced the stack read: the sample's span is
                         not known (it carries none; sampler_stats.span_races) */
    uint32_t span0;   /* its span looked up before the stack read: another after
                         it says the span began or ended meanwhile (a race) */
    int no_reuse;     /* its greenlet switched around the stack read: the stack
                         is not reused for a later tick (greenlets_recheck) */
    uint64_t bottom;  /* its walk's outermost frame (py_runtime.walk_bottom), 0 none */
    /* a loop thread's: the task registries' version at the start of the
     * window its stack read must have seen no switch in (ver_from), and
     * right after its walk (ver: green_walked, or stack_again for a stack
     * read again); ver_ok 1 when both were read, else 0 */
    uint64_t ver_from, ver;
    int ver_ok;
};

/* A descendant that --subprocesses could not sample: not looked at again
 * while it runs the same program image (proc_image_id: an exec changes
 * it), after TRANSIENT_TRIES scans for errors that may pass (a process
 * caught between fork and exec, or exiting, or a Python still starting). */
struct rejected {
    pid_t pid;
    uint64_t image;
    int tries;
};

struct sampler {
    struct sampler_opts o;
    pthread_mutex_t wake_mu; /* o.wakeable: the sleep between ticks (sampler_wake) */
    pthread_cond_t wake_cv;  /* on CLOCK_MONOTONIC */
    int woken;
    struct sample_queue *q;
    struct target *targets[MAX_TARGETS];
    int ntargets;
    pid_t roots[MAX_TARGETS];
    int nroots;
    struct rejected rejected[256];
    int nrejected;
    struct batch *cur;
    int64_t cur_since;
    int64_t t0;           /* monotonic ns at start */
    uint64_t t0_ticks;    /* the start in clock ticks after boot (thread start times) */
    struct sampler_stats st;  /* the sampling thread's own */
    uint32_t green_next;  /* the last green thread id given (ids are unique for the run) */
    /* st as of the end of the last tick, for other threads (sampler_get_stats) */
    pthread_mutex_t pub_mu;
    struct sampler_stats pub;
    struct py_thread threads[PY_MAX_THREADS];
    struct py_rawframe *rawall; /* every thread's frames at this tick */
    size_t rawcap, rawused;
    struct rec_frame *mgall;    /* with native frames: every thread's merged stack */
    size_t mgcap, mg_used;
    /* one scattered read per tick for every thread's top frame and window */
    struct py_stack_src src[PY_MAX_THREADS];
    struct thread_tick tick[PY_MAX_THREADS];
    int64_t winoff[PY_MAX_THREADS];
    struct mem_iov iov[2 * PY_MAX_THREADS + SIDE_SLOTS];
    uint8_t winbuf[WIN_ARENA];
    /* copies of frames outside the windows: thread i's are side_addr and
     * sidebuf entries [side_first[i], side_first[i] + side_count[i]) */
    int side_first[PY_MAX_THREADS], side_count[PY_MAX_THREADS];
    uint64_t side_addr[SIDE_SLOTS];
    uint8_t sidebuf[SIDE_SLOTS][SIDE_BYTES];
    struct py_side side;
    char names[PY_MAX_THREADS][PY_NAME_MAX];
};

/* ---- batch output ---- */

static inline void flush_batch(struct sampler *s)
{
    if (s->cur && s->cur->len) {
        squeue_push(s->q, s->cur);
        s->cur = NULL;
    }
}

/* Room for a record of size bytes, or NULL (sample dropped: consumer behind). */
static inline void *reserve(struct sampler *s, size_t size, int64_t now)
{
    size = (size + 7) & ~(size_t)7;
    if (s->cur && (s->cur->len + size > s->cur->cap || now - s->cur_since > 200000000))
        flush_batch(s);
    if (!s->cur) {
        s->cur = squeue_get_free(s->q);
        if (!s->cur)
            return NULL;
        s->cur_since = now;
    }
    if (size > s->cur->cap)
        return NULL;
    void *p = s->cur->buf + s->cur->len;
    s->cur->len += size;
    struct rec_hdr *h = p;
    h->size = (uint16_t)size;
    return p;
}

/* tracer/sampler.c */
/* What follows an attach (at the start, or to the new image after an
 * exec): the GIL's address, the switch counter, the process record. */
void target_setup(struct sampler *s, struct target *t, int64_t now);

/* tracer/tick.c */
/* One tick over one target: its threads' states, stacks and samples. */
void sample_target(struct sampler *s, struct target *t, int64_t now);
/* Record the CPU the kernel counted for t that no sample carried. */
void record_unsampled(struct sampler *s, struct target *t, int64_t now);
/* Resolve raw frames (innermost first) into records' frames: out[0..k)
 * with k <= n; a frame whose code object cannot be read is left out (the
 * caller marks the sample truncated when k < n). */
int frames_resolve(struct py_runtime *rt, const struct py_rawframe *raw, int n,
                   struct rec_frame *out);
/* Close one thread slot's files and free its memory. */
void slot_close(struct tslot *sl);

/* tracer/green.c */
/* After pass 1 (states) of a tick: tag each thread's tick with the task its
 * loop runs (s->tick[i].green), and scan the tasks when one is due. */
void green_tick(struct sampler *s, struct target *t, int n, int64_t now);
/* After the stacks were read (samples carrying spans only): a thread's
 * stack is its running task's when the walk met that task's coroutine
 * frame. When it did not (a switch raced the read), or, the frame not
 * known, the running task changed since green_tick read it, or a task
 * started running on a thread that had none then, the stack may be
 * another task's or the loop's: the sample's span is not known
 * (thread_tick.span_race). */
void green_recheck(struct sampler *s, struct target *t, int n);
/* Around the stack reads (samples carrying spans only): the task
 * registries' version right before the first read of the tick
 * (green_walks), and right after the walk of each thread that runs tasks
 * (green_walked): a thread whose version did not change meanwhile was
 * read while no task switched on any loop. */
void green_walks(struct sampler *s, struct target *t);
void green_walked(struct sampler *s, struct target *t, int i);
/* Forget t's tasks (it is freed, or runs a new image). */
void green_free(struct target *t);
/* Thread tid has ended (the kernel has it no more): it runs no tasks. */
void green_thread_ended(struct target *t, pid_t tid);

/* tracer/greenlets.c */
/* After green_tick, in the sampler's own process: split each thread's tick
 * by the greenlet switches the hook reported (exact CPU per greenlet), tag
 * it with the greenlet running now, emit lanes and suspended samples. */
void greenlets_tick(struct sampler *s, struct target *t, int n, int64_t now);
/* After the stacks were read (samples carrying spans only): a thread whose
 * hook reported a switch since greenlets_tick drained its ring has a stack
 * that may be either greenlet's: the sample's span is not known
 * (thread_tick.span_race). */
void greenlets_recheck(struct sampler *s, struct target *t, int n);
/* Between ticks: when the rings of t's greenlet hook are next due to be
 * read (INT64_MAX: not before the next tick), and the read itself (the
 * switches charged to their greenlets, nothing emitted). */
int64_t greenlets_drain_due(struct target *t);
void greenlets_drain(struct sampler *s, struct target *t, int64_t now);
/* Forget t's greenlets; the hook stops reporting until the next recording. */
void greenlets_free(struct target *t);

#endif
