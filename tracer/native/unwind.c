/* Native stacks of a remote thread with libdwfl (see unwind.h). */
#include "tracer/native/unwind.h"

#include "common/clock.h"
#include "common/err.h"
#include "common/grow.h"
#include "common/hmap.h"
#include "tracer/native/lines.h"
#include "tracer/proc/mem.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The maps are read again for a frame outside every module at most this
 * often (nat_unwind). */
#define NAT_NOMODULE_REFRESH_NS 20000000ll

/* Reads of the running process an unwind may make past the stack copy. */
#define NAT_LIVE_READS_MAX 4096

/* Modules whose lines are read by nat_lines (lines.h) rather than by
 * libdwfl loading all their DWARF; at most this many, the others by
 * libdwfl. */
#define NAT_LINE_READERS 64

struct line_reader {
    Dwfl_Module *m;
    struct nat_lines *nl; /* NULL: this module's lines come from libdwfl */
};

struct sym_entry {
    struct nat_sym s;
    char *function, *file, *module;
};

struct nat_unwinder {
    pid_t pid;
    Dwfl *dwfl;
    int attached;             /* dwfl_attach_state done */
    struct mem_reader mem;
    char interp[PATH_MAX];    /* realpath of the interpreter's file, "" unknown */
    uint64_t maps_sig;        /* hash of the executable file mappings */
    int64_t last_nomodule_refresh; /* CLOCK_MONOTONIC ns (nat_unwind) */
    int64_t last_forced_refresh;
    /* the unwind under way */
    const struct nat_capture *cur;
    struct nat_frame *out;
    int n, max, live_reads;
    size_t deepest;           /* bytes above sp the last unwind read (nat_unwind_depth) */
    /* symbols by (address, lines) */
    struct hmap syms;
    struct sym_entry **ent;   /* each allocated alone: nat_sym pointers stay valid */
    size_t nent, capent;
    struct nat_stats st;
    struct line_reader lr[NAT_LINE_READERS];
    int nlr;
};

static char *debuginfo_path;

static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* Hash of the executable mappings of files in /proc/pid/maps: what decides
 * which modules there are. */
static int maps_signature(pid_t pid, uint64_t *sig)
{
    char path[64], line[PATH_MAX + 128];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    uint64_t h = 1469598103934665603ULL;
    while (fgets(line, sizeof line, f)) {
        char perms[8] = "";
        int pathat = 0;
        if (sscanf(line, "%*x-%*x %7s %*x %*x:%*x %*u %n", perms, &pathat) < 1)
            continue;
        if (perms[2] != 'x' || pathat <= 0 || line[pathat] != '/')
            continue;
        for (const char *p = line; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    }
    fclose(f);
    *sig = h;
    return 0;
}

static void syms_clear(struct nat_unwinder *u)
{
    for (size_t i = 0; i < u->nent; i++) {
        free(u->ent[i]->function);
        free(u->ent[i]->file);
        free(u->ent[i]->module);
        free(u->ent[i]);
    }
    u->nent = 0;
    hmap_fini(&u->syms);
    hmap_init(&u->syms, 1024);
}

/* Forget the lookups, keep the entries: callers may still hold symbols
 * returned before a refresh (a dump merges a whole stack after symbolizing
 * it); the entries are freed with the unwinder. */
static void syms_forget(struct nat_unwinder *u)
{
    hmap_fini(&u->syms);
    hmap_init(&u->syms, 1024);
}

/* Drop the line readers: libdwfl may drop the modules they belong to. */
static void line_readers_clear(struct nat_unwinder *u)
{
    for (int i = 0; i < u->nlr; i++)
        nat_lines_close(u->lr[i].nl);
    u->nlr = 0;
}

/* The line reader of module m (the file that holds its DWARF, mapped at
 * the addresses of the module: main bias), or NULL to ask libdwfl. Called
 * after dwfl_module_addrinfo, which found the separate debug file if the
 * module's symbols are in one. */
static struct nat_lines *line_reader(struct nat_unwinder *u, Dwfl_Module *m, Elf *main_elf)
{
    for (int i = 0; i < u->nlr; i++)
        if (u->lr[i].m == m)
            return u->lr[i].nl;
    if (u->nlr >= NAT_LINE_READERS)
        return NULL;
    const char *mainfile = NULL, *debugfile = NULL;
    dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, &mainfile, &debugfile);
    struct nat_lines *nl = NULL;
    uint64_t dv, mv = 0;
    if (debugfile) {
        nl = nat_lines_open(debugfile);
        /* the debug file must have its module's addresses */
        size_t n = 0;
        int have_mv = 0;
        if (main_elf && !elf_getphdrnum(main_elf, &n))
            for (size_t i = 0; i < n && !have_mv; i++) {
                GElf_Phdr ph;
                if (gelf_getphdr(main_elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
                    mv = ph.p_vaddr;
                    have_mv = 1;
                }
            }
        if (nl && (!have_mv || nat_lines_first_vaddr(nl, &dv) || dv != mv)) {
            nat_lines_close(nl);
            nl = NULL;
        }
    } else if (mainfile) {
        nl = nat_lines_open(mainfile);
    }
    u->lr[u->nlr].m = m;
    u->lr[u->nlr].nl = nl;
    u->nlr++;
    return nl;
}

static int open_elf(Dwfl_Module *m, void **userdata, const char *name, Dwarf_Addr start,
                    void *arg)
{
    (void)userdata;
    (void)name;
    (void)start;
    (void)arg;
    GElf_Addr bias;
    dwfl_module_getelf(m, &bias);
    return DWARF_CB_OK;
}

/* Read the process's modules. Each one's file is opened now (libdwfl
 * keeps the files of modules still mapped from the last time), so that
 * its build-id is known when a stopped thread's pc is checked against it
 * (nat_check_pc), which must not open files while the thread waits. */
static int report(struct nat_unwinder *u)
{
    dwfl_report_begin(u->dwfl);
    int rc = dwfl_linux_proc_report(u->dwfl, u->pid);
    if (dwfl_report_end(u->dwfl, NULL, NULL) != 0 && rc == 0)
        rc = -1;
    if (rc == 0)
        dwfl_getmodules(u->dwfl, open_elf, NULL, 0);
    return rc;
}

/* --- libdwfl's thread callbacks: one thread, the capture under way --- */

static pid_t cb_next_thread(Dwfl *dwfl, void *dwfl_arg, void **thread_argp)
{
    (void)dwfl;
    (void)dwfl_arg;
    (void)thread_argp;
    return 0; /* threads are only asked for by id */
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *dwfl_arg, void **thread_argp)
{
    (void)dwfl;
    struct nat_unwinder *u = dwfl_arg;
    if (!u->cur || u->cur->tid != tid)
        return false;
    *thread_argp = u;
    return true;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *dwfl_arg)
{
    (void)dwfl;
    struct nat_unwinder *u = dwfl_arg;
    const struct nat_capture *c = u->cur;
    if (addr >= c->sp && addr - c->sp < NAT_STACK_COPY && addr - c->sp + 8 > u->deepest)
        u->deepest = (size_t)(addr - c->sp) + 8;
    if (addr >= c->stack_lo && c->stack_len >= 8 && addr - c->stack_lo <= c->stack_len - 8) {
        memcpy(result, c->stack + (addr - c->stack_lo), 8);
        return true;
    }
    if (u->live_reads >= NAT_LIVE_READS_MAX)
        return false;
    u->live_reads++;
    u->st.live_reads++;
    uint64_t v;
    if (mem_read(&u->mem, addr, &v, sizeof v))
        return false;
    *result = v;
    return true;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
    struct nat_unwinder *u = thread_arg;
    const struct nat_capture *c = u->cur;
    Dwarf_Word regs[NAT_NREGS];
    for (int i = 0; i < c->nregs; i++)
        regs[i] = c->regs[i];
    if (!dwfl_thread_state_registers(thread, 0, (unsigned)c->nregs, regs))
        return false;
    dwfl_thread_state_register_pc(thread, c->pc);
    return true;
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
    .next_thread = cb_next_thread,
    .get_thread = cb_get_thread,
    .memory_read = cb_memory_read,
    .set_initial_registers = cb_set_initial_registers,
    .detach = NULL,
    .thread_detach = NULL,
};

static int frame_cb(Dwfl_Frame *state, void *arg)
{
    struct nat_unwinder *u = arg;
    Dwarf_Addr pc;
    bool act;
    if (!dwfl_frame_pc(state, &pc, &act) || pc == 0)
        return DWARF_CB_ABORT;
    if (u->n >= u->max)
        return DWARF_CB_ABORT;
    /* the same return address many times over: a loop in a torn stack */
    if (u->n >= 8 && u->out[u->n - 1].pc == pc && u->out[u->n - 2].pc == pc &&
        u->out[u->n - 3].pc == pc && u->out[u->n - 4].pc == pc)
        return DWARF_CB_ABORT;
    u->out[u->n].pc = pc;
    u->out[u->n].activation = act;
    u->n++;
    return DWARF_CB_OK;
}

struct nat_unwinder *nat_unwinder_new(pid_t pid, const char *interp_path, char *err,
                                      size_t errlen)
{
    struct nat_unwinder *u = calloc(1, sizeof *u);
    if (!u) {
        se_fail(err, errlen, -ENOMEM, "out of memory");
        return NULL;
    }
    u->pid = pid;
    u->last_nomodule_refresh = mono_ns();
    mem_init_remote(&u->mem, pid);
    if (interp_path && !realpath(interp_path, u->interp))
        snprintf(u->interp, sizeof u->interp, "%s", interp_path);
    if (hmap_init(&u->syms, 1024)) {
        free(u);
        se_fail(err, errlen, -ENOMEM, "out of memory");
        return NULL;
    }
    u->dwfl = dwfl_begin(&proc_callbacks);
    if (!u->dwfl) {
        se_fail(err, errlen, -ENOMEM, "libdwfl: %s", dwfl_errmsg(-1));
        goto fail;
    }
    maps_signature(pid, &u->maps_sig);
    int rc = report(u);
    if (rc) {
        se_fail(err, errlen, rc > 0 ? -rc : SE_EXITED, "cannot read the modules of process %d: %s",
                (int)pid, rc > 0 ? strerror(rc) : dwfl_errmsg(-1));
        goto fail;
    }
    if (!dwfl_attach_state(u->dwfl, NULL, pid, &thread_callbacks, u)) {
        se_fail(err, errlen, SE_UNSUPPORTED, "libdwfl cannot unwind process %d: %s", (int)pid,
                dwfl_errmsg(-1));
        goto fail;
    }
    u->attached = 1;
    return u;
fail:
    nat_unwinder_free(u);
    return NULL;
}

void nat_unwinder_free(struct nat_unwinder *u)
{
    if (!u)
        return;
    syms_clear(u);
    line_readers_clear(u);
    hmap_fini(&u->syms);
    free(u->ent);
    if (u->dwfl)
        dwfl_end(u->dwfl);
    free(u);
}

/* Re-read the modules when the maps changed, or always when force. */
static int refresh(struct nat_unwinder *u, int force)
{
    uint64_t sig;
    int rc = maps_signature(u->pid, &sig);
    if (rc)
        return rc;
    if (sig == u->maps_sig && !force)
        return 0;
    u->maps_sig = sig;
    u->st.refreshes++;
    syms_forget(u);
    line_readers_clear(u);
    if (report(u))
        return SE_EXITED;
    return 1;
}

int nat_refresh(struct nat_unwinder *u)
{
    return refresh(u, 0);
}

/* The module libdwfl has at address a, or NULL. libdwfl's own lookup
 * (elfutils 0.188) was seen to answer, after libraries were unloaded and
 * others loaded, with a module whose range does not hold a: a library
 * mapped in the hole after _ctypes was named "_ctypes+0x15616a", its build-id
 * check passed (it checked _ctypes), and the maps were never read again
 * for it. The answer is taken only when its range holds a. */
static Dwfl_Module *module_at(struct nat_unwinder *u, uint64_t a)
{
    Dwfl_Module *m = dwfl_addrmodule(u->dwfl, a);
    Dwarf_Addr lo = 0, hi = 0;
    if (m && (!dwfl_module_info(m, NULL, &lo, &hi, NULL, NULL, NULL, NULL) || a < lo || a >= hi))
        return NULL;
    return m;
}

/* Module checks per unwind: distinct modules checked one by one past this. */
#define NAT_CHECK_MODULES 32

/* Where module m's GNU build-id is in the process, and what it is: its
 * length, or 0 when libdwfl has none for it (or it is too long). */
static int module_id(Dwfl_Module *m, const unsigned char **bits, uint64_t *vaddr)
{
    GElf_Addr va = 0;
    int len = dwfl_module_build_id(m, bits, &va);
    if (len <= 0 || len > 64 || !*bits || !va)
        return 0;
    *vaddr = va;
    return len;
}

/* (unwind.h) */
void nat_check_pc(struct nat_unwinder *u, struct nat_capture *c)
{
    c->pc_module = -1;
    if (c->nregs == 0)
        return;
    Dwfl_Module *m = module_at(u, c->pc);
    const unsigned char *bits;
    uint64_t vaddr;
    int len = m ? module_id(m, &bits, &vaddr) : 0;
    if (!len)
        return;
    unsigned char got[64];
    c->pc_module = mem_read(&u->mem, vaddr, got, (size_t)len) == 0 &&
                   !memcmp(got, bits, (size_t)len);
}

static Dwfl_Module *frame_module(struct nat_unwinder *u, const struct nat_frame *f)
{
    return module_at(u, f->activation || f->pc == 0 ? f->pc : f->pc - 1);
}

/* Is every frame of fr[0, n) in the file libdwfl has at its address? The
 * maps are re-read only now and then (nsample.c), so a library unloaded
 * and another loaded in its place (dlclose, dlopen: the kernel reuses the
 * hole) would otherwise be named, and unwound, with the other's symbols
 * and CFI. Each module's GNU build-id is where libdwfl says it is in the
 * process's memory: one read per distinct module, all in one system call.
 * skip: a module already checked (while the thread was stopped), or NULL.
 * Returns -1 when all are, else the index of the first frame whose module
 * is not (or cannot be read). Frames outside every module (the first one's
 * index in *nomod, n when none), modules without a build-id and those past
 * the first NAT_CHECK_MODULES are taken as they are. */
static int modules_check(struct nat_unwinder *u, const struct nat_frame *fr, int n,
                         Dwfl_Module *skip, int *nomod)
{
    Dwfl_Module *mod[NAT_CHECK_MODULES];
    int first[NAT_CHECK_MODULES];
    unsigned char got[NAT_CHECK_MODULES][64];
    const unsigned char *want[NAT_CHECK_MODULES];
    struct mem_iov iov[NAT_CHECK_MODULES];
    int nm = 0;
    *nomod = n;
    for (int k = 0; k < n; k++) {
        Dwfl_Module *m = frame_module(u, &fr[k]);
        if (!m && *nomod == n)
            *nomod = k;
        if (!m || m == skip || nm >= NAT_CHECK_MODULES)
            continue;
        int seen = 0;
        for (int j = 0; j < nm && !seen; j++)
            seen = mod[j] == m;
        if (seen)
            continue;
        uint64_t vaddr;
        int len = module_id(m, &want[nm], &vaddr);
        if (!len)
            continue;
        mod[nm] = m;
        first[nm] = k;
        iov[nm] = (struct mem_iov){ .addr = vaddr, .buf = got[nm], .len = (size_t)len };
        nm++;
    }
    if (!nm)
        return -1;
    int all_read = mem_readv(&u->mem, iov, (size_t)nm) == 0;
    int bad = -1;
    for (int j = 0; j < nm; j++) {
        int ok = (all_read || mem_read(&u->mem, iov[j].addr, got[j], iov[j].len) == 0) &&
                 !memcmp(got[j], want[j], iov[j].len);
        if (!ok && (bad < 0 || first[j] < bad))
            bad = first[j];
    }
    return bad;
}

static int unwind_once(struct nat_unwinder *u, const struct nat_capture *c,
                       struct nat_frame *out, int max, int *truncated)
{
    u->cur = c;
    u->out = out;
    u->n = 0;
    u->max = max;
    u->live_reads = 0;
    u->deepest = 0;
    u->st.unwinds++;
    int rc = dwfl_getthread_frames(u->dwfl, c->tid, frame_cb, u);
    u->cur = NULL;
    if (u->n == 0) { /* not even the pc: keep it, the stack is one frame */
        out[0].pc = c->pc;
        out[0].activation = 1;
        u->n = 1;
    }
    if (u->n >= max)
        *truncated = NAT_TRUNC_DEPTH;
    else if (rc != 0)
        *truncated = NAT_TRUNC_BROKEN;
    return u->n;
}

int nat_unwind(struct nat_unwinder *u, const struct nat_capture *c, struct nat_frame *out,
               int max, int *truncated)
{
    *truncated = 0;
    if (max > NAT_MAX_DEPTH)
        max = NAT_MAX_DEPTH;
    if (c->nregs == 0 || max <= 0)
        return 0;
    int n = 0, bad = 0, k = 0;
    /* The module of the pc, checked while the thread stood still, was not
     * the one libdwfl has there: nothing of this stack can be named. */
    if (c->pc_module != 0) {
        n = unwind_once(u, c, out, max, truncated);
        /* the other modules are checked now, after the thread ran on: one
         * it has left and unloaded since reads as changed, and is dropped */
        bad = modules_check(u, out, n, c->pc_module == 1 ? module_at(u, c->pc) : NULL,
                            &k);
    }
    if (bad >= 0) {
        /* a module changed since the maps were read: they are read again
         * for the next stacks; this one keeps its frames inside the first
         * wrong one. Unwinding it again with what the maps say now could
         * name a library loaded after the thread was stopped. */
        u->st.module_changes++;
        /* (at most every NAT_NOMODULE_REFRESH_NS: a module that stays
         * unlike its file, one libdwfl keeps by name and range, must not
         * cost a refresh per stack) */
        int64_t now = mono_ns();
        if (now - u->last_forced_refresh >= NAT_NOMODULE_REFRESH_NS) {
            u->last_forced_refresh = now;
            refresh(u, 1);
        }
        n = bad;
        *truncated = NAT_TRUNC_BROKEN;
    } else {
        /* A frame outside every module: code the process made (a JIT, a
         * trampoline) or a library mapped since the maps were read. Read
         * them again (at most every NAT_NOMODULE_REFRESH_NS); a module
         * there now may not have been there when the thread was stopped,
         * so the frames from there outwards are dropped, and the next
         * stacks are named. */
        int64_t now = k < n ? mono_ns() : 0;
        if (k < n && now - u->last_nomodule_refresh >= NAT_NOMODULE_REFRESH_NS) {
            u->last_nomodule_refresh = now;
            uint8_t had[NAT_MAX_DEPTH];
            for (int j = k; j < n; j++)
                had[j] = frame_module(u, &out[j]) != NULL;
            if (refresh(u, 0) == 1)
                for (int j = k; j < n; j++)
                    if (!had[j] && frame_module(u, &out[j])) {
                        u->st.module_changes++;
                        n = j;
                        *truncated = NAT_TRUNC_BROKEN;
                        break;
                    }
        }
    }
    if (*truncated)
        u->st.truncated++;
    return n;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int is_eval_name(const char *fn)
{
    return fn && (!strcmp(fn, "_PyEval_EvalFrameDefault") || !strcmp(fn, "PyEval_EvalFrameEx"));
}

/* Size of a value of DWARF pointer encoding enc in .eh_frame_hdr, 0 for
 * one this reader does not take (absolute or pc-relative, direct only). */
static size_t eh_enc_size(unsigned enc)
{
    if ((enc & 0x70) > 0x10 || (enc & 0x80))
        return 0;
    switch (enc & 0x0f) {
    case 0x00: case 0x04: case 0x0c: return 8;
    case 0x02: case 0x0a: return 2;
    case 0x03: case 0x0b: return 4;
    default: return 0;
    }
}

/* (unwind.h) */
int nat_eh_hdr_start(Elf *elf, uint64_t x, uint64_t *start)
{
    size_t shstrndx;
    /* the table is read as little-endian 64-bit words: the files this
     * host's processes map; any other is left alone */
    const char *id = elf ? elf_getident(elf, NULL) : NULL;
    if (!id || id[EI_CLASS] != ELFCLASS64 || id[EI_DATA] != ELFDATA2LSB ||
        elf_getshdrstrndx(elf, &shstrndx))
        return -1;
    for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
        GElf_Shdr sh;
        const char *name;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
            !(name = elf_strptr(elf, shstrndx, sh.sh_name)) || strcmp(name, ".eh_frame_hdr"))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf || d->d_size < 4)
            return -1;
        const unsigned char *b = d->d_buf;
        size_t pz = eh_enc_size(b[1]), cz = eh_enc_size(b[2]);
        /* version 1; count absolute; table: datarel sdata4 pairs */
        if (b[0] != 1 || !pz || !cz || (b[2] & 0x70) || b[3] != 0x3b || d->d_size < 4 + pz + cz)
            return -1;
        uint64_t n = 0;
        memcpy(&n, b + 4 + pz, cz); /* little-endian host and file */
        if (cz == 2)
            n &= 0xffff;
        else if (cz == 4)
            n &= 0xffffffffu;
        size_t at = 4 + pz + cz;
        if (n == 0 || n > (d->d_size - at) / 8)
            return -1;
        size_t lo = 0, hi = (size_t)n; /* first entry whose start exceeds x */
        uint64_t best = 0;
        int found = 0;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int32_t rel;
            memcpy(&rel, b + at + 8 * mid, 4);
            uint64_t st = sh.sh_addr + (uint64_t)(int64_t)rel;
            if (st <= x) {
                best = st;
                found = 1;
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (!found)
            return -1;
        *start = best;
        return 0;
    }
    return -1;
}

/* Where the function holding a starts, relative to its module, when no
 * symbol covers it: the start of its unwind table entry, which compilers
 * emit one per function. So every address sampled in one nameless
 * function is one frame, named by its start as a named function is.
 * fallback when no unwind information covers a, or the file has no table
 * of its entries. */
static uint64_t unnamed_start(Dwfl_Module *m, Elf *main_elf, uint64_t main_bias, uint64_t a,
                              uint64_t fallback)
{
    Dwarf_Addr bias = 0;
    Dwarf_CFI *cfi = dwfl_module_eh_cfi(m, &bias);
    Dwarf_Frame *fr = NULL;
    int covered = cfi && a >= bias && dwarf_cfi_addrframe(cfi, a - bias, &fr) == 0;
    free(fr);
    uint64_t start;
    if (!covered || a < main_bias || nat_eh_hdr_start(main_elf, a - main_bias, &start))
        return fallback;
    return start;
}

const struct nat_sym *nat_symbolize(struct nat_unwinder *u, uint64_t pc, int activation,
                                    int lines)
{
    static const struct nat_sym unknown = { 0 };
    /* a return address points after its call: look up the call itself */
    uint64_t a = activation || pc == 0 ? pc : pc - 1;
    uint64_t *v = hmap_get(&u->syms, a, (uint64_t)(lines != 0));
    if (v)
        return &u->ent[*v]->s;
    Dwfl_Module *m = module_at(u, a);
    struct sym_entry e = { 0 };
    if (m) {
        const char *mname = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        GElf_Addr bias = 0;
        Elf *main_elf = dwfl_module_getelf(m, &bias);
        GElf_Off off;
        GElf_Sym sym;
        const char *fn = dwfl_module_addrinfo(m, a, &off, &sym, NULL, NULL, NULL);
        e.module = dup_or_null(mname);
        e.function = dup_or_null(fn);
        char *at = e.function ? strchr(e.function, '@') : NULL;
        if (at && at != e.function)
            *at = 0; /* a symbol version: clock_nanosleep@GLIBC_2.2.5 */
        e.s.offset = pc - bias;
        e.s.func_offset = fn ? a - off - bias : unnamed_start(m, main_elf, bias, a, e.s.offset);
        e.s.is_eval = (uint8_t)is_eval_name(fn);
        char real[PATH_MAX];
        e.s.is_interp = u->interp[0] && mname &&
                        (!strcmp(mname, u->interp) ||
                         (realpath(mname, real) && !strcmp(real, u->interp)));
        if (lines) {
            /* the unit of a only (lines.h), else all the module's DWARF */
            struct nat_lines *nl = line_reader(u, m, main_elf);
            int line = 0;
            const char *src = NULL;
            if (!nl || !nat_lines_find(nl, a - bias, &src, &line)) {
                Dwfl_Line *ln = dwfl_module_getsrc(m, a);
                src = ln ? dwfl_lineinfo(ln, NULL, &line, NULL, NULL, NULL) : NULL;
            }
            if (src && line > 0) {
                e.file = strdup(src);
                e.s.line = line;
            }
        }
    } else {
        e.s.offset = pc;
        e.s.func_offset = pc;
    }
    e.s.function = e.function;
    e.s.file = e.file;
    e.s.module = e.module;
    struct sym_entry *pe = malloc(sizeof *pe);
    if (!pe || grow_array((void **)&u->ent, &u->capent, u->nent + 1, sizeof *u->ent) ||
        hmap_put(&u->syms, a, (uint64_t)(lines != 0), u->nent)) {
        free(pe);
        free(e.function);
        free(e.file);
        free(e.module);
        return &unknown;
    }
    *pe = e;
    u->ent[u->nent++] = pe;
    return &pe->s;
}

size_t nat_unwind_depth(const struct nat_unwinder *u)
{
    return u->deepest;
}

void nat_unwinder_stats(const struct nat_unwinder *u, struct nat_stats *st)
{
    *st = u->st;
}
