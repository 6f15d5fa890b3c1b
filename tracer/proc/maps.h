/* /proc/PID/maps and /proc/PID/task. */
#ifndef SONDE_MAPS_H
#define SONDE_MAPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct map_entry {
    uint64_t start, end, offset;
    char perms[5];
    char *path;            /* owned; "" for anonymous mappings */
};

struct maps {
    struct map_entry *v;
    size_t n;
};

/* Read /proc/pid/maps. 0, SE_NOPROC, SE_PERM or -errno. Free with maps_fini. */
int maps_read(struct maps *m, pid_t pid, char *err, size_t errlen);
void maps_fini(struct maps *m);

/* The lowest mapping of path (its load base candidate), or NULL. */
const struct map_entry *maps_first_of(const struct maps *m, const char *path);

/* Is addr inside any mapping with the given permission char ('r','w','x')? */
int maps_contains(const struct maps *m, uint64_t addr, char perm);

/* The fields of /proc/PID/stat that sonde uses. */
struct proc_stat {
    char state;     /* R, S, D, Z, X, ... */
    pid_t ppid;
    unsigned flags; /* PF_* (PF_KTHREAD = 0x00200000) */
    uint64_t utime, stime; /* CPU in clock ticks: the whole process (threads
                              that ended included) for /proc/PID/stat, one
                              thread for /proc/PID/task/TID/stat */
    uint64_t starttime;    /* clock ticks after boot at which it started */
};

/* Read /proc/PID/stat. 0, or -ENOENT when the process is gone. */
int proc_stat_read(pid_t pid, struct proc_stat *st);

/* Read /proc/PID/task/TID/stat (one thread). 0, or -ENOENT when gone. */
int proc_task_stat_read(pid_t pid, pid_t tid, struct proc_stat *st);

/* Parse the text of a stat file (NUL-terminated). 0 or -EINVAL. */
int proc_stat_parse(const char *buf, struct proc_stat *st);

/* Clock ticks after boot now (the unit of proc_stat.starttime). */
uint64_t proc_boot_ticks_now(void);

/* List thread ids of pid into out (up to max); returns count or -errno. */
int tasks_list(pid_t pid, pid_t *out, int max);

#endif
