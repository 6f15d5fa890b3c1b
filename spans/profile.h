/* A span's profile (docs/store-spans.md, "span profiles"): the samples
 * taken while one span was current on its thread, aggregated per (stack,
 * thread state), with their count, wall and CPU time. The agent builds one
 * per ended span and sends it gzipped in pprof's profile.proto (sample
 * types samples/count, wall/nanoseconds, cpu/nanoseconds; every sample
 * labelled state = idle|gil|gil_wait|nogil, trace_id and span_id); the
 * collector checks it as hostile input (sprof_decode) and stores the bytes
 * with the span; readers decode them again for the summary (sprof_summarize)
 * and the exports. */
#ifndef SONDE_SPANS_PROFILE_H
#define SONDE_SPANS_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#define SPROF_SAMPLES_MAX 4096     /* distinct (stack, state) a profile holds */
#define SPROF_FRAMES_MAX 4096      /* distinct frames */
#define SPROF_DEPTH_MAX 512        /* frames per stack */
#define SPROF_BYTES_MAX (1 << 20)  /* an encoded (gzipped) profile */
#define SPROF_RAW_MAX (8 << 20)    /* the same unpacked */
#define SPROF_UNPACK_MAX (64 << 20) /* memory protobuf-c may take to unpack it */
#define SPROF_TEXT_MAX 4096        /* a function's or file's name */
#define SPROF_TOP 5                /* hottest functions in a summary */

struct sprof_frame {
    const char *name, *file; /* never NULL */
    int64_t line;            /* the line executing */
    int64_t fn_line;         /* the function's first line */
};

struct sprof_sample {
    uint32_t off, n;   /* its frames: stack[off .. off+n), innermost first */
    uint8_t state;     /* enum sample_state */
    int64_t count, wall_ns, cpu_ns;
};

struct sprof {
    char trace_id[33], span_id[17];
    int64_t duration_ns;
    struct sprof_frame *frames; size_t nframes, capframes;
    uint32_t *stack;            size_t nstack, capstack;
    struct sprof_sample *samples; size_t nsamples, capsamples;
    void *msg;                  /* the unpacked message the strings of a decoded profile live in */
};

struct sprof_top {
    const char *function, *file;
    int64_t line, self_wall_ns;
};

struct sprof_summary {
    int64_t samples, wall_ns, cpu_ns;
    int64_t state_ns[4];        /* wall per enum sample_state */
    size_t ntop;
    struct sprof_top top[SPROF_TOP]; /* by self wall time, highest first */
};

/* Initialise / release (strings of frames added by the caller stay the
 * caller's). */
void sprof_init(struct sprof *p);
void sprof_fini(struct sprof *p);

/* A frame's index in p (added unless there; the strings are borrowed and
 * must outlive p): 0 .. nframes-1, or -ENOSPC (SPROF_FRAMES_MAX) / -ENOMEM. */
int sprof_frame(struct sprof *p, const char *name, const char *file, int64_t line, int64_t fn_line);

/* Add one observation: frames (indices from sprof_frame, innermost first,
 * n of them), its state, count, wall and CPU. Merged with an equal (stack,
 * state); when p holds SPROF_SAMPLES_MAX already, it goes to the sample
 * without frames of its state. 0 or -EINVAL / -ENOMEM. */
int sprof_add(struct sprof *p, const uint32_t *frames, size_t n, int state, int64_t count, int64_t wall_ns,
              int64_t cpu_ns);

/* Encode p as gzipped pprof into a malloc'd *out (*len bytes), labelled
 * with p's trace_id and span_id. 0, -E2BIG (over SPROF_BYTES_MAX) or
 * -ENOMEM. */
int sprof_encode(const struct sprof *p, unsigned char **out, size_t *len);

/* Decode and check len bytes of gzipped (or plain) pprof written by
 * sprof_encode or anyone else, as hostile input: sizes within the limits
 * above, every index and id resolving, the three sample types, one state
 * label per sample naming a state, values that are not negative and whose
 * sums fit, and, when trace_id / span_id are not NULL, labels that name that
 * span; with duration_ns >= 0 (the span's), a wall time within 4x the
 * span's duration plus one second and a CPU time within the wall time plus
 * one second. Fills p (sprof_init'd by the call; sprof_fini it whatever the
 * result). 0, or -EINVAL / -E2BIG / -ENOMEM with a one-line reason in err. */
int sprof_decode(const void *buf, size_t len, const char *trace_id, const char *span_id, int64_t duration_ns,
                 struct sprof *p, char *err, size_t errlen);

/* The totals, each state's share and the hottest functions (self wall
 * time by function name and file, at its first line). Strings point into p. */
void sprof_summarize(const struct sprof *p, struct sprof_summary *s);

/* The summary as the JSON text trace --json prints for "profile": {"samples",
 * "wall_s", "cpu_s", "gil_pct", "gil_wait_pct", "nogil_pct", "idle_pct",
 * "top": [{"function", "file", "line", "self_wall_s"}]}; malloc'd, NULL
 * without memory. */
char *sprof_summary_json(const struct sprof_summary *s);

/* Base64 (RFC 4648, with padding) of n bytes, malloc'd and NUL-terminated;
 * and back: 0 and a malloc'd *out, -EINVAL (not base64) or -ENOMEM. */
char *sprof_b64(const unsigned char *in, size_t n);
int sprof_unb64(const char *in, size_t n, unsigned char **out, size_t *outlen);

#endif
