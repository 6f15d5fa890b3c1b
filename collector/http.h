/* The collector's HTTP front end (libmicrohttpd): OTLP/HTTP POST /v1/traces
 * (JSON and protobuf, gzip/deflate bodies) and Zipkin v2 POST /api/v2/spans,
 * bearer-token check (before any body is read), size and memory limits,
 * decoded batches handed to the ingest pipeline. A request is answered
 * 200 / 202 only once its spans are committed to the store, 503 with
 * Retry-After when the store could not write them. */
#ifndef SONDE_COLLECTOR_HTTP_H
#define SONDE_COLLECTOR_HTTP_H

#include "collector/ingest.h"

#include <stdint.h>

struct http_server;

struct http_opts {
    const char *token;    /* required bearer token, NULL/"" for none (copied) */
    size_t max_body;      /* bytes, compressed and decompressed; default 8 MiB */
    size_t max_spans;     /* per request; default 10000 */
    unsigned threads;     /* worker threads; default: number of CPUs */
    unsigned max_conns;   /* concurrent connections; default 512 */
    unsigned max_conns_per_ip; /* concurrent connections from one address; default 64 */
    size_t body_budget;   /* bytes of request bodies held at once beyond the first
                           * 64 KiB of each; default max(128 MiB, 4 * max_body) */
    unsigned idle_timeout_s; /* a connection silent this long is closed; default 10 */
};

/* Listen on host:port (port 0: any free port; *bound_port gets the port).
 * Returns 0, -EADDRINUSE / -EACCES / other negative errno for the socket, or
 * SE_USAGE for an unresolvable host; err filled. The ingest pipeline is
 * borrowed and must outlive the server. Requests are served by internal
 * threads until http_server_free. */
int http_server_new(const char *host, int port, const struct http_opts *o, struct ingest *in,
                    struct http_server **out, int *bound_port, char *err, size_t errlen);

/* Stop listening, finish in-flight requests and free; NULL is a no-op. */
void http_server_free(struct http_server *s);

/* Whether host (a name or address) resolves only to loopback addresses. */
int http_host_is_loopback(const char *host);

#endif
