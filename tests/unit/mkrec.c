/* mkrec KIND OUT.sonde [NSAMPLES]: write a synthetic recording (tests and
 * scripts/bench). KIND: recursive, threads, big. */
#include "synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mkrec recursive|threads|big OUT.sonde [NSAMPLES]\n");
        return 2;
    }
    enum synth_kind k;
    if (!strcmp(argv[1], "recursive"))
        k = SYNTH_RECURSIVE;
    else if (!strcmp(argv[1], "threads"))
        k = SYNTH_THREADS;
    else if (!strcmp(argv[1], "big"))
        k = SYNTH_BIG;
    else {
        fprintf(stderr, "mkrec: unknown kind %s\n", argv[1]);
        return 2;
    }
    char err[256] = "";
    if (synth_write(argv[2], k, argc > 3 ? strtoul(argv[3], NULL, 10) : 100000, err, sizeof err)) {
        fprintf(stderr, "mkrec: %s\n", err);
        return 1;
    }
    return 0;
}
