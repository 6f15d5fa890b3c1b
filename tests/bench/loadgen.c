/* Load generator for `scripts/bench collector`: C threads, one keep-alive
 * HTTP/1.1 connection each, POSTing OTLP JSON batches with unique ids to
 * /v1/traces for a fixed time; a refused request (503 / 429) is followed by
 * a pause of Retry-After seconds on that connection, as exporters do. Prints one line of figures:
 *   requests=N ok=N refused=N errors=N spans=N seconds=S spans_per_s=R p50_ms=X p99_ms=Y
 * With ACKS_FILE, also writes one line "CONNECTION SEQ" per request answered
 * 200; its spans' ids are (1<<63 | CONNECTION<<48 | SEQ<<12 | i), i.e. the
 * first 13 hex digits of each span id are printf("%013llx", 1<<51 |
 * CONNECTION<<36 | SEQ).
 * usage: loadgen HOST PORT CONNECTIONS SECONDS SPANS_PER_REQUEST [ACKS_FILE] */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host;
static int port, seconds, nspans;
static double t_end;

struct worker {
    pthread_t th;
    int id;
    long requests, ok, refused, errors;
    double *lat;
    size_t nlat, cap;
    uint64_t *acked; /* seq of each request answered 200 */
    size_t nacked, acap;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, host, &a.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* body with nspans spans; id fields are patched per request at recorded offsets */
static char *make_body(size_t *len, size_t **tid_off, size_t **sid_off)
{
    size_t cap = 600 * (size_t)nspans + 1024, n = 0;
    char *b = malloc(cap);
    *tid_off = malloc(sizeof(size_t) * (size_t)nspans);
    *sid_off = malloc(sizeof(size_t) * (size_t)nspans);
    n += (size_t)sprintf(b + n, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                                 "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"bench\"}},"
                                 "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"bench-host\"}}]},"
                                 "\"scopeSpans\":[{\"scope\":{\"name\":\"loadgen\"},\"spans\":[");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long t0 = (long long)ts.tv_sec * 1000000000LL;
    for (int i = 0; i < nspans; i++) {
        n += (size_t)sprintf(b + n, "%s{\"traceId\":\"", i ? "," : "");
        (*tid_off)[i] = n;
        n += (size_t)sprintf(b + n, "00000000000000000000000000000000\",\"spanId\":\"");
        (*sid_off)[i] = n;
        n += (size_t)sprintf(b + n, "0000000000000000\",\"name\":\"GET /api/item/%d\",\"kind\":%d,"
                                    "\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\","
                                    "\"attributes\":[{\"key\":\"http.method\",\"value\":{\"stringValue\":\"GET\"}},"
                                    "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"200\"}}],"
                                    "\"status\":{\"code\":1}}",
                             i % 50, i % 5 ? 1 : 2, t0 + i * 1000LL, t0 + i * 1000LL + 500000);
    }
    n += (size_t)sprintf(b + n, "]}]}]}");
    *len = n;
    return b;
}

static void hex(char *out, uint64_t v, int digits)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hx[v & 15];
}

static void *run(void *arg)
{
    struct worker *w = arg;
    size_t blen, *toff, *soff;
    char *body = make_body(&blen, &toff, &soff);
    char head[256];
    int hlen = snprintf(head, sizeof head,
                        "POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n", host, blen);
    int fd = connect_to();
    char resp[8192];
    uint64_t seq = 0;
    while (now() < t_end) {
        if (fd < 0) {
            w->errors++;
            usleep(10000);
            fd = connect_to();
            continue;
        }
        for (int i = 0; i < nspans; i++) {
            uint64_t trace = ((uint64_t)w->id << 40) | (seq << 4) | (uint64_t)(i / 10);
            hex(body + toff[i] + 16, trace, 16);
            hex(body + toff[i], (uint64_t)w->id + 1, 16);
            hex(body + soff[i], ((uint64_t)w->id << 48) | (seq << 12) | (uint64_t)i | 1ULL << 63, 16);
        }
        uint64_t sent_seq = seq++;
        double t0 = now();
        if (send(fd, head, (size_t)hlen, MSG_MORE) != hlen || send(fd, body, blen, 0) != (ssize_t)blen) {
            close(fd);
            fd = -1;
            continue;
        }
        /* read the status line + headers + body (Content-Length) */
        size_t got = 0;
        long clen = -1;
        char *hend = NULL;
        for (;;) {
            ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            resp[got] = 0;
            if (!hend && (hend = strstr(resp, "\r\n\r\n"))) {
                char *cl = strcasestr(resp, "content-length:");
                clen = cl ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (hend && got >= (size_t)(hend + 4 - resp) + (size_t)clen)
                break;
        }
        if (!hend) {
            close(fd);
            fd = -1;
            w->errors++;
            continue;
        }
        int status = atoi(resp + 9);
        w->requests++;
        if (status == 200) {
            w->ok++;
            if (w->nacked == w->acap) {
                w->acap = w->acap ? w->acap * 2 : 1024;
                w->acked = realloc(w->acked, w->acap * sizeof *w->acked);
            }
            w->acked[w->nacked++] = sent_seq;
        }
        else if (status == 503 || status == 429) {
            w->refused++;
            /* as OTLP exporters do: wait as told (Retry-After seconds) before sending again */
            char *ra = strcasestr(resp, "retry-after:");
            long secs = ra ? strtol(ra + 12, NULL, 10) : 0;
            double until = now() + (secs > 0 ? (double)secs : 0.1);
            while (now() < until && now() < t_end)
                usleep(10000);
        }
        else
            w->errors++;
        if (w->nlat == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 4096;
            w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
        }
        w->lat[w->nlat++] = now() - t0;
        if (strcasestr(resp, "connection: close")) {
            close(fd);
            fd = connect_to();
        }
    }
    if (fd >= 0)
        close(fd);
    free(body);
    free(toff);
    free(soff);
    return NULL;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: loadgen HOST PORT CONNECTIONS SECONDS SPANS_PER_REQUEST [ACKS_FILE]\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    seconds = atoi(argv[4]);
    nspans = atoi(argv[5]);
    struct worker *w = calloc((size_t)conns, sizeof *w);
    double t0 = now();
    t_end = t0 + seconds;
    for (int i = 0; i < conns; i++) {
        w[i].id = i;
        pthread_create(&w[i].th, NULL, run, &w[i]);
    }
    long req = 0, ok = 0, refused = 0, errors = 0;
    size_t nlat = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(w[i].th, NULL);
        req += w[i].requests;
        ok += w[i].ok;
        refused += w[i].refused;
        errors += w[i].errors;
        nlat += w[i].nlat;
    }
    double el = now() - t0;
    if (argc == 7) {
        FILE *f = fopen(argv[6], "w");
        if (!f) {
            perror(argv[6]);
            return 1;
        }
        for (int i = 0; i < conns; i++)
            for (size_t k = 0; k < w[i].nacked; k++)
                fprintf(f, "%d %llu\n", i, (unsigned long long)w[i].acked[k]);
        if (fclose(f)) {
            perror(argv[6]);
            return 1;
        }
    }
    double *all = malloc((nlat + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < conns; i++) {
        memcpy(all + k, w[i].lat, w[i].nlat * sizeof *all);
        k += w[i].nlat;
        free(w[i].lat);
        free(w[i].acked);
    }
    qsort(all, nlat, sizeof *all, cmpd);
    double p50 = nlat ? all[nlat / 2] : 0, p99 = nlat ? all[(size_t)(nlat * 0.99)] : 0;
    printf("requests=%ld ok=%ld refused=%ld errors=%ld spans=%ld seconds=%.2f spans_per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n",
           req, ok, refused, errors, ok * (long)nspans, el, ok * (double)nspans / el, p50 * 1e3, p99 * 1e3);
    free(all);
    free(w);
    return 0;
}
