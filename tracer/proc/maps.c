#include "tracer/proc/maps.h"

#include "common/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int maps_read(struct maps *m, pid_t pid, char *err, size_t errlen)
{
    char path[64];
    m->v = NULL;
    m->n = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return se_fail(err, errlen, SE_NOPROC, "no process with pid %d", (int)pid);
        if (errno == EACCES || errno == EPERM)
            return se_fail(err, errlen, SE_PERM, "cannot read %s", path);
        return se_fail(err, errlen, -errno, "cannot read %s: %s", path, strerror(errno));
    }
    size_t cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    int rc = 0;
    while (getline(&line, &linecap, f) > 0) {
        uint64_t start, end, off;
        char perms[8];
        int pathpos = 0;
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %*s %n",
                   &start, &end, perms, &off, &pathpos) < 4)
            continue;
        if (m->n == cap) {
            cap = cap ? cap * 2 : 256;
            struct map_entry *nv = realloc(m->v, cap * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            m->v = nv;
        }
        char *p = pathpos ? line + pathpos : line + strlen(line);
        size_t pl = strcspn(p, "\n");
        p[pl] = 0;
        struct map_entry *e = &m->v[m->n];
        e->start = start;
        e->end = end;
        e->offset = off;
        memcpy(e->perms, perms, 4);
        e->perms[4] = 0;
        e->path = strdup(p);
        if (!e->path) {
            rc = -ENOMEM;
            break;
        }
        m->n++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && m->n == 0) {
        /* An empty maps file: a zombie or a kernel thread. */
        return se_fail(err, errlen, SE_EXITED, "process %d has no memory mappings (exited?)", (int)pid);
    }
    if (rc)
        maps_fini(m);
    return rc;
}

void maps_fini(struct maps *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

const struct map_entry *maps_first_of(const struct maps *m, const char *path)
{
    const struct map_entry *best = NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].path, path) == 0 && (!best || m->v[i].start < best->start))
            best = &m->v[i];
    return best;
}

int maps_contains(const struct maps *m, uint64_t addr, char perm)
{
    for (size_t i = 0; i < m->n; i++) {
        const struct map_entry *e = &m->v[i];
        if (addr >= e->start && addr < e->end)
            return strchr(e->perms, perm) != NULL;
    }
    return 0;
}

int tasks_list(pid_t pid, pid_t *out, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        char *end;
        long t = strtol(de->d_name, &end, 10);
        if (*end == 0 && t > 0)
            out[n++] = (pid_t)t;
    }
    closedir(d);
    return n;
}

int proc_stat_parse(const char *buf, struct proc_stat *st)
{
    /* the command name may hold spaces and parentheses: parse after the last ')' */
    const char *rp = strrchr(buf, ')');
    int ppid, pgrp, session, tty, tpgid;
    unsigned long long minflt, cminflt, majflt, cmajflt, ut, stt, cut, cst, start;
    long long prio, nice, nthreads, itreal;
    memset(st, 0, sizeof *st);
    if (!rp)
        return -EINVAL;
    int k = sscanf(rp + 1,
                   " %c %d %d %d %d %d %u %llu %llu %llu %llu %llu %llu %llu %llu %lld %lld %lld"
                   " %lld %llu",
                   &st->state, &ppid, &pgrp, &session, &tty, &tpgid, &st->flags, &minflt,
                   &cminflt, &majflt, &cmajflt, &ut, &stt, &cut, &cst, &prio, &nice, &nthreads,
                   &itreal, &start);
    if (k < 7)
        return -EINVAL;
    st->ppid = ppid;
    if (k == 20) {
        st->utime = ut;
        st->stime = stt;
        st->starttime = start;
    }
    return 0;
}

static int stat_file(const char *path, struct proc_stat *st)
{
    char buf[1024];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -ENOENT;
    buf[n] = 0;
    return proc_stat_parse(buf, st) ? -ENOENT : 0;
}

int proc_stat_read(pid_t pid, struct proc_stat *st)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    return stat_file(path, st);
}

int proc_task_stat_read(pid_t pid, pid_t tid, struct proc_stat *st)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    return stat_file(path, st);
}

uint64_t proc_boot_ticks_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        hz = 100;
    return (uint64_t)ts.tv_sec * (uint64_t)hz + (uint64_t)ts.tv_nsec / (1000000000u / (uint64_t)hz);
}
