#include "common/thread.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static id_t self(void)
{
    return (id_t)syscall(SYS_gettid);
}

int thread_nice(void)
{
    int saved = errno;
    errno = 0;
    int v = getpriority(PRIO_PROCESS, self());
    if (errno)
        v = 0;
    errno = saved;
    return v;
}

int thread_set_nice(int nice)
{
    return setpriority(PRIO_PROCESS, self(), nice) == 0 ? 0 : -errno;
}

void thread_renice(int delta)
{
    int v = thread_nice() + delta;
    (void)thread_set_nice(v > 19 ? 19 : v);
}
