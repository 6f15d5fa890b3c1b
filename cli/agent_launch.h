/* sonde record --agent: the in-process agent (agent/agent.h) put into a
 * command sonde launches (LD_PRELOAD) or into a running process (cli/inject.h). */
#ifndef SONDE_CLI_AGENT_LAUNCH_H
#define SONDE_CLI_AGENT_LAUNCH_H

#include <sys/types.h>

struct agent_req {
    char **cmd;         /* the command to launch, or NULL with pid */
    pid_t pid;          /* the process to load the agent into, or 0 */
    const char *out;    /* NULL: sonde-PID.sonde */
    int rate_hz;
    double duration_s;  /* 0: until the program exits (or Ctrl-C with -p) */
    int quiet;
    int no_tasks;       /* do not record asyncio tasks (launch only) */
    const char *collector; /* launch only: SONDE_COLLECTOR, where the program's spans go (NULL: none) */
    int keep_running;   /* launch only: leave the program running when the recording stops */
};

/* Run the recording and wait for it to be finished: launched, until the
 * command exits (its exit status is noted, as `sonde record` does), or
 * until the duration ends, SIGINT or SIGTERM, which stop the command
 * (cli_stop_launched) unless keep_running;
 * attached, until the duration ends, the process exits, or SIGINT / SIGTERM
 * (which stops the agent the same way, cli/inject.h). Prints the summary or one
 * error line; returns the exit status (cli/opts.h). */
int cli_agent_record(const struct agent_req *rq);

#endif
