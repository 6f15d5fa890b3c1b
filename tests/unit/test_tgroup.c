/* ui/tgroup: thread names reduced to patterns, groups of at least min
 * threads of one process, heads are first members, names without a number
 * and other processes' threads stay alone, colliding hashes do not merge
 * patterns. */
#include "check.h"

#include "common/hmap.h"
#include "ui/tgroup.h"

#include <stdio.h>
#include <string.h>

static void test_pattern(void)
{
    char p[32];
    tgroup_pattern("Thread-12 (handle)", p, sizeof p);
    CHECK_STR(p, "Thread-N (handle)");
    tgroup_pattern("w1x22y333", p, sizeof p);
    CHECK_STR(p, "wNxNyN");
    tgroup_pattern(NULL, p, sizeof p);
    CHECK_STR(p, "?");
    tgroup_pattern("abcdefgh", p, 4); /* cut, terminated */
    CHECK_STR(p, "ab");
}

static void test_groups(void)
{
    /* 6 Thread-N of pid 1 (one of them after a stranger), 3 of pid 2, 5 "MainThread" */
    const char *names[] = { "MainThread", "Thread-1 (h)", "Thread-2 (h)", "Thread-3 (h)", "worker",
                            "Thread-4 (h)", "Thread-5 (h)", "Thread-1 (h)", "Thread-2 (h)",
                            "Thread-3 (h)", "Thread-66 (h)", "MainThread", "MainThread",
                            "MainThread", "MainThread" };
    int pids[] = { 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1 };
    size_t n = sizeof pids / sizeof *pids, head[15];
    CHECK_INT(tgroup_find(pids, names, n, TGROUP_MIN, head), 1);
    size_t want[] = { 0, 1, 1, 1, 4, 1, 1, 7, 8, 9, 1, 11, 12, 13, 14 };
    for (size_t i = 0; i < n; i++)
        CHECK(head[i] == want[i], "thread %zu: head %zu, not %zu", i, head[i], want[i]);
    /* min 3: pid 2's three are a group too */
    CHECK_INT(tgroup_find(pids, names, n, 3, head), 2);
    CHECK(head[8] == 7 && head[9] == 7 && head[7] == 7, "pid 2's group");
    CHECK_INT(tgroup_find(pids, names, 0, 3, head), 0);
}

static uint64_t same_hash(const char *s)
{
    (void)s;
    return 7;
}

static void test_collisions(void)
{
    /* every pattern hashes alike: two series stay two groups */
    uint64_t (*saved)(const char *) = tgroup_hash;
    tgroup_hash = same_hash;
    const char *names[12];
    char buf[12][16];
    int pids[12];
    for (int i = 0; i < 12; i++) {
        snprintf(buf[i], sizeof buf[i], "%s-%d", i % 2 ? "odd" : "even", i);
        names[i] = buf[i];
        pids[i] = 5;
    }
    size_t head[12];
    CHECK_INT(tgroup_find(pids, names, 12, TGROUP_MIN, head), 2);
    for (int i = 0; i < 12; i++)
        CHECK(head[i] == (size_t)(i % 2), "thread %d: head %zu", i, head[i]);
    tgroup_hash = saved;
}

int main(void)
{
    test_pattern();
    test_groups();
    test_collisions();
    return check_done("tgroup");
}
