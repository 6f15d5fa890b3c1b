/* For the model, query and call tree tests: write a synthetic recording
 * (synth.h) in a fresh temporary directory and load it. */
#ifndef SONDE_TEST_SYNTH_LOAD_H
#define SONDE_TEST_SYNTH_LOAD_H

#include "synth.h"

#include "profiler/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The model of a fresh recording of that kind, or NULL (after printing
 * why). path (capacity 256) keeps the file's name for synth_unload. */
static inline struct model *synth_load(enum synth_kind kind, size_t nsamples, char *path)
{
    char dir[] = "/tmp/sonde-test-XXXXXX", err[256];
    struct model *m = NULL;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return NULL;
    }
    snprintf(path, 256, "%s/rec.sonde", dir);
    if (synth_write(path, kind, nsamples, err, sizeof err) ||
        model_load(path, &m, err, sizeof err)) {
        fprintf(stderr, "synthetic recording: %s\n", err);
        return NULL;
    }
    return m;
}

static inline void synth_unload(struct model *m, char *path)
{
    model_free(m);
    unlink(path);
    char *slash = strrchr(path, '/');
    if (slash) {
        *slash = 0;
        rmdir(path);
    }
}

#endif
