/* Threads named alike, grouped: a thread per request (Thread-N
 * (process_request_thread) x 80) is one row with a count and sums in the
 * report, the live view and the recording browser alike. Pure functions;
 * no state. */
#ifndef SONDE_UI_TGROUP_H
#define SONDE_UI_TGROUP_H

#include <stddef.h>
#include <stdint.h>

/* The pattern hash tgroup_find uses (hmap_hash_str); tests swap it to
 * make patterns collide. */
extern uint64_t (*tgroup_hash)(const char *s);

/* Threads are grouped once this many of one process share a pattern. */
#define TGROUP_MIN 5

/* A name's pattern into out (cap bytes, always terminated): each run of
 * digits as N ("Thread-12 (handle)" -> "Thread-N (handle)"). */
void tgroup_pattern(const char *name, char *out, size_t cap);

/* For n threads (pid[i], name[i]; a NULL name is "?"): head[i] is the index
 * of the first thread of i's group when at least min threads of pid[i]
 * share i's pattern and that pattern has a number in it, else i itself.
 * The caller sizes head (n entries). A group's members are the i with
 * head[i] == h; its head h is its first member. Returns the number of
 * groups, or -ENOMEM (head then says no thread is grouped). */
long tgroup_find(const int *pid, const char *const *name, size_t n, size_t min, size_t *head);

#endif
