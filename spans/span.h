/* The trace model's span (spans/: below collector/, formats/ and ui/),
 * shared by the collector's decoders, assembly, the span store,
 * forwarder and the formats/ exporters. Plain structs; strings are owned by
 * the span_batch (or trace) arena that holds the span. */
#ifndef SONDE_SPANS_SPAN_H
#define SONDE_SPANS_SPAN_H

#include <stddef.h>
#include <stdint.h>

/* OTLP numbering. */
enum span_kind {
    SPAN_KIND_UNSPECIFIED = 0,
    SPAN_KIND_INTERNAL = 1,
    SPAN_KIND_SERVER = 2,
    SPAN_KIND_CLIENT = 3,
    SPAN_KIND_PRODUCER = 4,
    SPAN_KIND_CONSUMER = 5,
};

enum span_status { SPAN_STATUS_UNSET = 0, SPAN_STATUS_OK = 1, SPAN_STATUS_ERROR = 2 };

struct span {
    char trace_id[33];  /* 32 lowercase hex digits */
    char span_id[17];   /* 16 lowercase hex digits */
    char parent_id[17]; /* "" for a root */
    const char *name;     /* never NULL */
    const char *service;  /* never NULL ("" when unknown) */
    const char *node;     /* clock domain: host / service.instance.id / ip; never NULL */
    const char *attrs;    /* compact JSON object text, never NULL ("{}") */
    int kind;             /* enum span_kind */
    int shared;           /* Zipkin "shared": server half of a client's span id */
    int status;           /* enum span_status */
    int64_t start_us, end_us; /* raw, as reported, µs since the epoch */
    int64_t skew_us;      /* correction added by assembly (0 when none) */
    uint64_t hash;        /* span_content_hash, when computed already; 0: not yet */
    const unsigned char *pprof; /* its profile (spans/profile.h), checked, or NULL */
    size_t pprof_len;
};

/* Span times are microseconds since the epoch in [0, SPAN_TIME_MAX_US]:
 * their nanoseconds fit an int64 (1970 to 2262), so an export may multiply
 * by 1000 and any difference or sum of two times fits. Decoders reject a
 * span whose times fall outside (span_times_check); whoever reads spans
 * from elsewhere (a store) clamps them (span_time_clamp). */
#define SPAN_TIME_MAX_US (INT64_MAX / 1000)

/* us clamped into [0, SPAN_TIME_MAX_US]. */
int64_t span_time_clamp(int64_t us);

/* A span's corrected start and end (raw time + skew_us, without overflow,
 * clamped into the valid range; the end never before the start). */
int64_t span_cstart(const struct span *s);
int64_t span_cend(const struct span *s);

/* A growable array of spans plus the arena that owns their strings. */
struct span_batch {
    struct span *spans;
    size_t n, cap;
    struct arena_chunk *chunks;
    size_t rejected; /* spans dropped by the decoder (invalid ids, limits) */
    char reject_msg[128];
};

/* Initialise / release a caller-embedded batch (fini frees every string). */
void span_batch_init(struct span_batch *b);
void span_batch_fini(struct span_batch *b);

/* Append a zeroed span with empty strings; NULL on allocation failure. */
struct span *span_batch_add(struct span_batch *b);

/* Copy n bytes of s (or strlen(s) if n == (size_t)-1) into the batch arena,
 * NUL-terminated. Returns NULL on allocation failure. */
const char *span_batch_strdup(struct span_batch *b, const char *s, size_t n);

/* Copy n bytes of binary data into the batch arena, as they are. NULL on
 * allocation failure. */
const unsigned char *span_batch_memdup(struct span_batch *b, const void *s, size_t n);

/* Move every span of src to the end of dst (src's arena is handed over);
 * src is left empty. Returns 0 or -ENOMEM. */
int span_batch_move(struct span_batch *dst, struct span_batch *src);

/* 64-bit FNV-1a of every stored field (ids, name, service, node, attributes,
 * kind, shared, status, raw times): the store's exact-duplicate key. */
uint64_t span_content_hash(const struct span *s);

/* Validate and lowercase a hex id of exactly `digits` digits (a shorter
 * Zipkin 64-bit trace id is left-padded with zeros when pad is set).
 * Returns 0, or -EINVAL for a bad or all-zero id. */
int span_parse_hex_id(char *out, const char *s, size_t len, size_t digits, int pad);

/* "server", "client", ... and back (unknown names give UNSPECIFIED). */
const char *span_kind_name(int kind);
int span_kind_from_name(const char *s);
const char *span_status_name(int status);

#endif
