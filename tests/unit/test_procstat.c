/* tracer/proc: /proc/PID/stat parsing, with a command name that holds
 * spaces and parentheses, the fields the sampler uses (state, ppid, flags,
 * CPU ticks, start time), a short line, and the live file of this very
 * process. */
#include "check.h"

#include "tracer/proc/maps.h"

#include <unistd.h>

int main(void)
{
    struct proc_stat st;
    /* a 52-field line as Linux 6.x writes it; comm "a) b (c" */
    const char *line =
        "4242 (a) b (c) R 17 4242 4242 0 -1 4194560 1000 0 2 0 731 45 0 0 20 0 3 0 "
        "123456 30000000 2000 18446744073709551615 1 1 0 0 0 0 0 16781312 134235650 0 0 0 17 "
        "1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    CHECK_INT(proc_stat_parse(line, &st), 0);
    CHECK_INT(st.state, 'R');
    CHECK_INT(st.ppid, 17);
    CHECK_INT(st.flags, 4194560);
    CHECK_INT(st.utime, 731);
    CHECK_INT(st.stime, 45);
    CHECK_INT(st.starttime, 123456);

    /* cut after the start time: what is there still reads */
    const char *cut = "7 (x) S 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 99 0 0 0 0 0 0";
    CHECK_INT(proc_stat_parse(cut, &st), 0);
    CHECK_INT(st.utime, 5);
    CHECK_INT(st.starttime, 99);

    /* no closing parenthesis, or too few fields: not a stat line */
    CHECK(proc_stat_parse("12 (abc R 1", &st) != 0, "no ')'");
    CHECK(proc_stat_parse("12 (abc) R", &st) != 0, "too short");

    /* this process, right now: running, started before now */
    CHECK_INT(proc_task_stat_read(getpid(), getpid(), &st), 0);
    CHECK_INT(st.state, 'R');
    CHECK(st.starttime > 0 && st.starttime <= proc_boot_ticks_now(), "starttime %llu",
          (unsigned long long)st.starttime);
    return check_done("procstat");
}
