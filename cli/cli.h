/* The subcommands' entry points, one per file in cli/, listed in main.c's
 * command table. Each takes the arguments from its own name on (argv[0] is
 * the command) and returns the exit status. The exit codes and option
 * helpers they share are in cli/opts.h. */
#ifndef SONDE_CLI_H
#define SONDE_CLI_H

#include "cli/opts.h"

int cmd_dump(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_view(int argc, char **argv);
int cmd_collector(int argc, char **argv);
int cmd_traces(int argc, char **argv);
int cmd_trace(int argc, char **argv);

#endif
