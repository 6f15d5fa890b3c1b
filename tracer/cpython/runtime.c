#include "tracer/cpython/runtime.h"

#include "common/err.h"
#include "tracer/cpython/debugoffsets.h"
#include "tracer/cpython/frames.h"
#include "tracer/cpython/objects.h"
#include "tracer/proc/elfsym.h"
#include "tracer/proc/maps.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libpython file names tell the minor version when no symbol does. */
static int libpython_version(const char *path, int *major, int *minor)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    return sscanf(b, "libpython%d.%d", major, minor) == 2;
}

static int is_candidate(const struct map_entry *e)
{
    return e->path[0] == '/' && strchr(e->perms, 'x') && strncmp(e->path, "/dev/", 5) != 0 &&
           strstr(e->path, "(deleted)") == NULL;
}

/* Order: libpython*, the executable, then every other mapped file, once each. */
static size_t candidate_files(const struct maps *m, const char *exe, const char **out, size_t max)
{
    size_t n = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < m->n && n < max; i++) {
            const struct map_entry *e = &m->v[i];
            if (!is_candidate(e))
                continue;
            int ma, mi;
            int lib = libpython_version(e->path, &ma, &mi);
            int isexe = strcmp(e->path, exe) == 0;
            if ((pass == 0 && !lib) || (pass == 1 && !isexe) || (pass == 2 && (lib || isexe)))
                continue;
            int dup = 0;
            for (size_t k = 0; k < n; k++)
                dup |= strcmp(out[k], e->path) == 0;
            if (!dup)
                out[n++] = e->path;
        }
    }
    return n;
}

static void local_path(pid_t pid, const char *path, char *out, size_t outlen)
{
    /* Through the target's root, so that containers and chroots work. */
    snprintf(out, outlen, "/proc/%d/root%s", (int)pid, path);
    if (access(out, R_OK) != 0)
        snprintf(out, outlen, "%s", path);
}

int py_runtime_module_symbol(struct py_runtime *rt, const char *stem, const char *name,
                             uint64_t *addr)
{
    struct maps m;
    char err[128];
    *addr = 0;
    int rc = maps_read(&m, rt->pid, err, sizeof err);
    if (rc)
        return rc;
    const char *path = NULL;
    size_t sl = strlen(stem);
    for (size_t i = 0; i < m.n && !path; i++) {
        const char *base = strrchr(m.v[i].path, '/');
        if (base && strncmp(base + 1, stem, sl) == 0 && base[1 + sl] == '.')
            path = m.v[i].path;
    }
    if (!path)
        path = rt->binary; /* built in */
    char lp[PATH_MAX + 32];
    struct elf_info info;
    uint64_t v = 0, bias = 0;
    local_path(rt->pid, path, lp, sizeof lp);
    rc = elf_lookup(lp, &name, &v, 1, &info);
    if (rc >= 0)
        rc = rc == 1 && v ? elf_load_bias(&m, path, &info, &bias) : -ENOENT;
    if (!rc)
        *addr = v + bias;
    maps_fini(&m);
    return rc < 0 ? rc : 0;
}

/* Refine the layout from the target's own _Py_DebugOffsets (3.13+). The
 * fields it carries are authoritative for this exact build. */
static int apply_debug_offsets(struct py_runtime *rt, char *err, size_t errlen)
{
    static uint8_t buf[PY_DBG_MAX_BYTES]; /* attach runs on one thread at a time */
    size_t len = sizeof buf;
    int rc = mem_read(&rt->mem, rt->runtime_addr, buf, len);
    if (rc) /* a runtime smaller than the largest block: read what 3.13's is */
        rc = mem_read(&rt->mem, rt->runtime_addr, buf, len = 584);
    if (rc)
        return se_fail(err, errlen, rc, "cannot read _Py_DebugOffsets: %s", se_str(rc));
    char why[160];
    rc = py_debug_offsets_apply(buf, len, rt->major, rt->minor, &rt->L, why, sizeof why);
    if (rc < 0)
        return se_fail(err, errlen, rc, "unsupported Python version %s in process %d (%s)",
                       rt->version, (int)rt->pid, why);
    rt->debug_offsets = rc == 1;
    return 0;
}

static void format_version(struct py_runtime *rt, uint32_t hex)
{
    rt->major = (int)(hex >> 24) & 0xff;
    rt->minor = (int)(hex >> 16) & 0xff;
    rt->micro = (int)(hex >> 8) & 0xff;
    int level = (int)(hex >> 4) & 0xf, serial = (int)hex & 0xf;
    const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";
    if (*lv)
        snprintf(rt->version, sizeof rt->version, "%d.%d.%d%s%d", rt->major, rt->minor,
                 rt->micro, lv, serial);
    else
        snprintf(rt->version, sizeof rt->version, "%d.%d.%d", rt->major, rt->minor, rt->micro);
}

static int parse_version_string(struct py_runtime *rt, const char *s)
{
    if (sscanf(s, "%d.%d.%d", &rt->major, &rt->minor, &rt->micro) < 2)
        return -1;
    snprintf(rt->version, sizeof rt->version, "%s", s);
    return 0;
}

static int check_process(pid_t pid, char *err, size_t errlen)
{
    if (pid <= 0)
        return se_fail(err, errlen, SE_NOPROC, "invalid pid %d", (int)pid);
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return se_fail(err, errlen, SE_NOPROC, "no process with pid %d", (int)pid);
    struct proc_stat ps;
    if (proc_stat_read(pid, &ps))
        return se_fail(err, errlen, SE_NOPROC, "no process with pid %d", (int)pid);
    if (ps.state == 'Z' || ps.state == 'X')
        return se_fail(err, errlen, SE_EXITED, "process %d has exited (zombie)", (int)pid);
    return 0;
}

static void version_from_sys(struct py_runtime *rt);

/* PF_KTHREAD in /proc/PID/stat's flags: a kernel thread has no user memory
 * at all (unlike a process that is exiting, whose mappings are gone too). */
static int is_kernel_thread(pid_t pid)
{
    struct proc_stat ps;
    return proc_stat_read(pid, &ps) == 0 && (ps.flags & 0x00200000u) != 0;
}

int py_process_dying(pid_t pid)
{
    char path[64], buf[64];
    if (check_process(pid, NULL, 0) != 0)
        return 1;
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    if (readlink(path, buf, sizeof buf) <= 0)
        return 1;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 1;
    int empty = fgetc(f) == EOF;
    fclose(f);
    return empty;
}

/* Symbols looked up in every candidate file. */
enum {
    S_RUNTIME, S_VERSION, S_GETVERSION, S_INTERP_HEAD, S_TSTATE_CURRENT, S_GIL_LOCKED,
    S_GIL_HOLDER, S_GIL_SWITCHES, S_GIL_MUTEX, S_GIL_COND, S_SWITCH_MUTEX, S_SWITCH_COND,
    S_GIL_DROP, S_INTERPRETER_LOCK, S_UCS2, NSYM
};
static const char *const sym_names[NSYM] = {
    "_PyRuntime", "Py_Version", "Py_GetVersion", "interp_head", "_PyThreadState_Current",
    "gil_locked", "gil_last_holder", "gil_switch_number", "gil_mutex", "gil_cond",
    "switch_mutex", "switch_cond", "gil_drop_request", "interpreter_lock",
    "PyUnicodeUCS2_FromString",
};

/* 2.7 and 3.6: where the GIL's static globals are (see PY_GIL_*). */
static int setup_old_gil(struct py_runtime *rt, const uint64_t *v, uint64_t bias, char *err,
                         size_t errlen)
{
    rt->tstate_current = v[S_TSTATE_CURRENT] + bias;
    if (rt->major == 2) {
        if (!v[S_INTERPRETER_LOCK])
            return se_fail(err, errlen, SE_UNSUPPORTED,
                           "Python %s in process %d: no interpreter_lock symbol", rt->version,
                           (int)rt->pid);
        rt->gil_kind = PY_GIL_LOCK27;
        rt->gil_lo = v[S_INTERPRETER_LOCK] + bias;
        rt->L.gil_size = 32; /* glibc's sem_t */
        rt->unicode_unit = v[S_UCS2] ? 2 : 4;
        return 0;
    }
    static const int need[] = { S_GIL_LOCKED, S_GIL_HOLDER, S_GIL_SWITCHES, S_GIL_MUTEX,
                                S_GIL_COND, S_SWITCH_MUTEX, S_SWITCH_COND, S_GIL_DROP };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!v[need[i]])
            return se_fail(err, errlen, SE_UNSUPPORTED,
                           "Python %s in process %d: no %s symbol", rt->version, (int)rt->pid,
                           sym_names[need[i]]);
    rt->gil_kind = PY_GIL_STATICS;
    rt->gil_locked_at = v[S_GIL_LOCKED] + bias;
    rt->gil_holder_at = v[S_GIL_HOLDER] + bias;
    rt->gil_switch_at = v[S_GIL_SWITCHES] + bias;
    /* Waiters sleep on gil_cond / gil_mutex (and switch_cond with
     * FORCE_SWITCHING): the range spans the four. */
    static const int waits[] = { S_GIL_MUTEX, S_GIL_COND, S_SWITCH_MUTEX, S_SWITCH_COND };
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        uint64_t a = v[waits[i]] + bias;
        lo = a < lo ? a : lo;
        hi = a + 48 > hi ? a + 48 : hi; /* sizeof(pthread_cond_t), >= sizeof(pthread_mutex_t) */
    }
    if (hi - lo > 4096)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "Python %s in process %d: unexpected GIL variables", rt->version,
                       (int)rt->pid);
    rt->gil_lo = lo;
    rt->L.gil_size = (int64_t)(hi - lo);
    return 0;
}

static const char PERM_HINT[] =
    "run sonde as the same user as the target or as root, grant CAP_SYS_PTRACE, "
    "or relax /proc/sys/kernel/yama/ptrace_scope";

static int attach(struct py_runtime *rt, pid_t pid, int self, char *err, size_t errlen)
{
    memset(rt, 0, sizeof *rt);
    rt->pid = pid;
    rt->pthread_tid_off = -1;
    if (self || pid == getpid()) /* the agent's sampler attaches to its own pid */
        mem_init_local(&rt->mem);
    else
        mem_init_remote(&rt->mem, pid);
    rt->codes = py_codecache_new();
    if (!rt->codes)
        return se_fail(err, errlen, -ENOMEM, "out of memory");

    int rc = check_process(pid, err, errlen);
    if (rc)
        return rc;
    struct maps m;
    rc = maps_read(&m, pid, err, errlen);
    if (rc == SE_PERM)
        return se_fail(err, errlen, SE_PERM, "permission denied reading process %d: %s",
                       (int)pid, PERM_HINT);
    if (rc == SE_EXITED && is_kernel_thread(pid))
        return se_fail(err, errlen, SE_NOTPYTHON,
                       "process %d is not a Python process (a kernel thread: no memory mappings)",
                       (int)pid);
    if (rc)
        return rc;

    char exe[PATH_MAX] = "", link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t el = readlink(link, exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = 0;

    const char *files[512];
    size_t nf = candidate_files(&m, exe, files, 512);
    char why_unsupported[64] = "";
    uint64_t v[NSYM] = { 0 }, bias = 0;
    /* The first runtime found, kept while a later file may hold the live
     * one: a host that links libpython statically can still map a
     * libpython*.so that extension modules (before 3.8) link against, whose
     * own runtime nobody initialized. */
    struct py_runtime *first = NULL;
    uint64_t first_v[NSYM], first_bias = 0;
    rc = SE_NOTPYTHON;
    for (size_t i = 0; i < nf; i++) {
        char lp[PATH_MAX + 32];
        local_path(pid, files[i], lp, sizeof lp);
        struct elf_info info;
        int found = elf_lookup(lp, sym_names, v, NSYM, &info);
        if (found <= 0)
            continue;
        int ma = 0, mi = -1;
        int islib = libpython_version(files[i], &ma, &mi);
        /* 2.7 and 3.6 have no _PyRuntime: their interpreter list starts at
         * the static interp_head, found in the symbol table (.symtab). */
        int old = !v[S_RUNTIME] && v[S_INTERP_HEAD] && v[S_TSTATE_CURRENT] && v[S_GETVERSION];
        if (!v[S_RUNTIME] && !old) {
            if (v[S_GETVERSION] || islib) {
                /* A Python too old to have _PyRuntime, without the symbol
                 * table that would place its interpreter (a stripped build). */
                char vs[32] = "";
                if (elf_find_version_string(lp, islib ? mi : -1, vs, sizeof vs) != 0 && islib)
                    snprintf(vs, sizeof vs, "%d.%d", ma, mi);
                if (*vs)
                    snprintf(why_unsupported, sizeof why_unsupported, "%s", vs);
            }
            continue;
        }
        if (elf_load_bias(&m, files[i], &info, &bias) != 0)
            continue;
        rt->runtime_addr = (old ? v[S_INTERP_HEAD] : v[S_RUNTIME]) + bias;
        snprintf(rt->binary, sizeof rt->binary, "%s", files[i]);
        if (v[S_VERSION]) {
            uint32_t hex;
            rc = mem_read(&rt->mem, v[S_VERSION] + bias, &hex, sizeof hex);
            if (rc == SE_PERM)
                goto perm;
            if (rc)
                goto readfail;
            format_version(rt, hex);
        } else {
            char vs[32];
            if (elf_find_version_string(lp, islib ? mi : -1, vs, sizeof vs) == 0)
                parse_version_string(rt, vs);
            else if (islib) {
                rt->major = ma;
                rt->minor = mi;
                snprintf(rt->version, sizeof rt->version, "%d.%d", ma, mi);
            }
        }
        rc = 0;
        const struct py_layout *PL = py_layout_for(rt->major, rt->minor);
        uint64_t live = 0;
        if (!PL || mem_read_ptr(&rt->mem, rt->runtime_addr + (uint64_t)PL->rt_interpreters_head,
                                &live) || live)
            break; /* (what is wrong with it is told below) */
        if (!first && (first = malloc(sizeof *first)) != NULL) {
            *first = *rt;
            memcpy(first_v, v, sizeof v);
            first_bias = bias;
        }
        rc = SE_NOTPYTHON;
    }
    if (rc == SE_NOTPYTHON && first) {
        /* none is live: the first, whose interpreter may be starting */
        *rt = *first;
        memcpy(v, first_v, sizeof v);
        bias = first_bias;
        rc = 0;
    }
    free(first);
    first = NULL;
    maps_fini(&m);
    if (rc == SE_NOTPYTHON && !self && py_process_dying(pid)) {
        /* Its memory is going away: a kernel thread, or a process that is
         * exiting. Tell them apart by waiting a bit. */
        for (int tries = 0; tries < 20; tries++) {
            if (check_process(pid, NULL, 0) != 0)
                return se_fail(err, errlen, SE_EXITED, "process %d exited while being read",
                               (int)pid);
            usleep(10000);
        }
    }
    if (rc == SE_NOTPYTHON) {
        if (*why_unsupported)
            return se_fail(err, errlen, SE_UNSUPPORTED,
                           "unsupported Python version %s in process %d (sonde reads 2.7 and 3.6 "
                           "to 3.14; before 3.7 it needs the interpreter's symbol table, which "
                           "this build lacks)",
                           why_unsupported, (int)pid);
        return se_fail(err, errlen, SE_NOTPYTHON,
                       "process %d (%s) is not a Python process: no CPython runtime found",
                       (int)pid, *exe ? exe : "?");
    }
    if (!rt->major)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "cannot tell the Python version of process %d (%s)", (int)pid, rt->binary);
    /* 3.14 has no compiled-in table: 3.13's, with every field its
     * _Py_DebugOffsets carry taken from the target */
    int dbg_only = rt->major == 3 && rt->minor == PY_DBG_NEWEST_MINOR;
    const struct py_layout *L = py_layout_for(rt->major, dbg_only ? 13 : rt->minor);
    if (!L)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "unsupported Python version %s in process %d (sonde reads 2.7 and 3.6 "
                       "to 3.14)",
                       rt->version, (int)pid);
    rt->L = *L;
    if (L->rt_size < 0) {
        rc = setup_old_gil(rt, v, bias, err, errlen);
        if (rc)
            return rc;
    }
    if (rt->major == 3 && rt->minor >= 13) {
        rc = apply_debug_offsets(rt, err, errlen);
        if (rc == SE_PERM)
            goto perm;
        if (rc)
            return rc;
        if (dbg_only && !rt->debug_offsets)
            return se_fail(err, errlen, SE_UNSUPPORTED,
                           "unsupported Python version %s in process %d: no _Py_DebugOffsets "
                           "of its version in _PyRuntime (sonde reads 3.14 only through them)",
                           rt->version, (int)pid);
        /* the frame sizes' fields are not among them: kept only where the
         * code objects are laid out as the compiled-in table says */
        if (dbg_only || rt->L.co_code_adaptive != L->co_code_adaptive ||
            rt->L.co_firstlineno != L->co_firstlineno)
            rt->L.co_framesize = rt->L.co_nlocalsplus = rt->L.co_stacksize =
                rt->L.frame_specials = -1;
    }
    /* One read proves that we may read the target at all. */
    uint64_t head;
    rc = mem_read_ptr(&rt->mem, rt->runtime_addr + (uint64_t)rt->L.rt_interpreters_head, &head);
    if (rc == SE_PERM)
        return se_fail(err, errlen, SE_PERM, "permission denied reading process %d: %s",
                       (int)pid, PERM_HINT);
    if (rc == SE_EXITED)
        return se_fail(err, errlen, SE_EXITED, "process %d exited while being read", (int)pid);
    if (rc)
        return se_fail(err, errlen, rc, "cannot read the runtime of process %d", (int)pid);
    /* No interpreter: still starting, or finalized and about to exit. Both
     * are transient: give it a moment to start or to go away. */
    for (int tries = 0; head == 0 && tries < 20; tries++) {
        usleep(10000);
        if (!self && (rc = check_process(pid, NULL, 0)) != 0)
            return se_fail(err, errlen, SE_EXITED, "process %d exited while being read", (int)pid);
        rc = mem_read_ptr(&rt->mem, rt->runtime_addr + (uint64_t)rt->L.rt_interpreters_head, &head);
        if (rc)
            return se_fail(err, errlen, SE_EXITED, "process %d exited while being read", (int)pid);
    }
    if (head == 0)
        return se_fail(err, errlen, SE_NOTPYTHON,
                       "process %d has no Python interpreter running (not started or finalized)",
                       (int)pid);
    if (!strchr(strchr(rt->version, '.') + 1, '.'))
        version_from_sys(rt);
    return 0;

perm:
    free(first);
    maps_fini(&m);
    return se_fail(err, errlen, SE_PERM, "permission denied reading process %d: %s", (int)pid,
                   PERM_HINT);
readfail:
    free(first);
    maps_fini(&m);
    if (rc == SE_EXITED)
        return se_fail(err, errlen, SE_EXITED, "process %d exited while being read", (int)pid);
    return se_fail(err, errlen, rc, "cannot read process %d: %s", (int)pid, se_str(rc));
}

/* The full version from sys.version, for builds whose binary does not carry
 * it as data (3.8 - 3.10 fold the literal into code). Best effort. */
static void version_from_sys(struct py_runtime *rt)
{
    uint64_t interp = py_runtime_main_interp(rt), modules, sys, md, ver;
    char buf[256];
    if (!interp || mem_read_ptr(&rt->mem, interp + (uint64_t)rt->L.is_modules, &modules) ||
        !modules || py_dict_get_str(rt, modules, "sys", &sys) || !sys ||
        mem_read_ptr(&rt->mem, sys + (uint64_t)rt->L.mod_dict, &md) || !md ||
        py_dict_get_str(rt, md, "version", &ver) || !ver || py_str_read(rt, ver, buf, sizeof buf))
        return;
    buf[strcspn(buf, " ")] = 0;
    buf[sizeof rt->version - 1] = 0;
    int ma, mi, mc;
    if (sscanf(buf, "%d.%d.%d", &ma, &mi, &mc) == 3 && ma == rt->major && mi == rt->minor) {
        rt->micro = mc;
        memcpy(rt->version, buf, sizeof rt->version);
    }
}

int py_runtime_attach(struct py_runtime *rt, pid_t pid, char *err, size_t errlen)
{
    return attach(rt, pid, 0, err, errlen);
}

int py_runtime_attach_self(struct py_runtime *rt, char *err, size_t errlen)
{
    return attach(rt, getpid(), 1, err, errlen);
}

void py_runtime_fini(struct py_runtime *rt)
{
    py_codecache_free(rt->codes);
    rt->codes = NULL;
}

uint64_t py_runtime_main_interp(struct py_runtime *rt)
{
    uint64_t head = 0;
    if (mem_read_ptr(&rt->mem, rt->runtime_addr + (uint64_t)rt->L.rt_interpreters_head, &head))
        return 0;
    return head;
}
