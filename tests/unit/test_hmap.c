/* common/hmap: insert, replace, grow, lookup, delete (with clusters), the
 * -ENOMEM paths of init and growth; common/strtab: interning, and strings
 * whose hashes collide keep ids of their own. */
#include "check.h"

#include "common/hmap.h"
#include "common/strtab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static int allow_allocs = -1; /* < 0: every allocation succeeds */

static void *counting_calloc(size_t n, size_t size)
{
    if (allow_allocs == 0)
        return NULL;
    if (allow_allocs > 0)
        allow_allocs--;
    return calloc(n, size);
}

static uint64_t same_hash(const char *s)
{
    (void)s;
    return 42;
}

static void test_basic(void)
{
    struct hmap h;
    CHECK_INT(hmap_init(&h, 0), 0);
    CHECK(hmap_get(&h, 1, 2) == NULL, "empty map has (1, 2)");
    CHECK_INT(hmap_put(&h, 1, 2, 100), 0);
    CHECK_INT(hmap_put(&h, 2, 1, 200), 0);
    uint64_t *v = hmap_get(&h, 1, 2);
    CHECK(v && *v == 100, "(1, 2) lost");
    v = hmap_get(&h, 2, 1);
    CHECK(v && *v == 200, "(2, 1) lost: keys are ordered pairs");
    CHECK_INT(hmap_put(&h, 1, 2, 101), 0); /* replace */
    CHECK_INT(h.n, 2);
    v = hmap_get(&h, 1, 2);
    CHECK(v && *v == 101, "replacing (1, 2) did not take");
    *v = 7; /* the pointer is the stored value */
    CHECK_INT(*hmap_get(&h, 1, 2), 7);
    hmap_fini(&h);
    CHECK(hmap_get(&h, 1, 2) == NULL, "a finished map still answers");
    hmap_del(&h, 1, 2); /* no-op on an empty map */
}

static void test_grow_and_delete(void)
{
    struct hmap h;
    CHECK_INT(hmap_init(&h, 4), 0);
    size_t cap0 = h.cap;
    enum { N = 5000 };
    for (uint64_t i = 0; i < N; i++)
        CHECK_INT(hmap_put(&h, i, i * 3, i + 1), 0);
    CHECK(h.cap > cap0 && h.n == N && h.n * 2 <= h.cap, "cap %zu n %zu", h.cap, h.n);
    int missing = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t *v = hmap_get(&h, i, i * 3);
        missing += !v || *v != i + 1;
    }
    CHECK_INT(missing, 0);
    CHECK(hmap_get(&h, N, N * 3) == NULL, "a key never put is found");
    /* delete every other key: the rest of each cluster must stay reachable */
    for (uint64_t i = 0; i < N; i += 2)
        hmap_del(&h, i, i * 3);
    CHECK_INT(h.n, N / 2);
    int wrong = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t *v = hmap_get(&h, i, i * 3);
        wrong += i % 2 ? (!v || *v != i + 1) : v != NULL;
    }
    CHECK_INT(wrong, 0);
    hmap_del(&h, 0, 0); /* absent: no-op */
    CHECK_INT(h.n, N / 2);
    hmap_fini(&h);
}

static void test_no_memory(void)
{
    hmap_calloc = counting_calloc;
    struct hmap h;
    allow_allocs = 0;
    CHECK_INT(hmap_init(&h, 10), -ENOMEM);
    CHECK(h.cap == 0 && h.n == 0 && hmap_get(&h, 1, 1) == NULL, "failed init left a map");
    allow_allocs = -1;
    CHECK_INT(hmap_init(&h, 0), 0);
    size_t cap = h.cap;
    uint64_t i = 0;
    for (; (i + 1) * 2 <= cap; i++) /* fill up to just before growth */
        CHECK_INT(hmap_put(&h, i, 0, i), 0);
    allow_allocs = 0;
    CHECK_INT(hmap_put(&h, i, 0, i), -ENOMEM);
    CHECK(h.cap == cap && h.n == i && hmap_get(&h, i, 0) == NULL, "failed growth changed the map");
    int missing = 0;
    for (uint64_t k = 0; k < i; k++)
        missing += hmap_get(&h, k, 0) == NULL;
    CHECK_INT(missing, 0);
    CHECK_INT(hmap_put(&h, 0, 0, 99), 0); /* replacing needs no room */
    allow_allocs = -1;
    CHECK_INT(hmap_put(&h, i, 0, i), 0);
    CHECK(h.cap > cap, "did not grow once memory came back");
    hmap_fini(&h);
    hmap_calloc = calloc;
}

static void test_strtab(void)
{
    struct strtab t;
    uint32_t a, b, c, again;
    int added;
    CHECK_INT(strtab_init(&t, 4), 0);
    CHECK_INT(strtab_intern(&t, "main", &a, &added), 0);
    CHECK_INT(added, 1);
    CHECK_INT(strtab_intern(&t, "work", &b, NULL), 0);
    char buf[8] = "main";
    CHECK_INT(strtab_intern(&t, buf, &again, &added), 0); /* equal text, other pointer */
    CHECK(again == a && !added && a != b, "a=%u b=%u again=%u", a, b, again);
    CHECK_STR(strtab_str(&t, a), "main");
    CHECK(strtab_str(&t, 0) == NULL && strtab_str(&t, 99) == NULL, "unknown ids answer");
    strtab_fini(&t);

    /* every string hashes alike: same length or not, they stay apart */
    CHECK_INT(strtab_init(&t, 4), 0);
    t.hash = same_hash;
    const char *s[] = { "ab", "cd", "abc", "ef", "" };
    uint32_t id[5];
    for (int i = 0; i < 5; i++)
        CHECK_INT(strtab_intern(&t, s[i], &id[i], NULL), 0);
    for (int i = 0; i < 5; i++) {
        CHECK_STR(strtab_str(&t, id[i]), s[i]);
        for (int j = 0; j < i; j++)
            CHECK(id[i] != id[j], "\"%s\" and \"%s\" merged", s[i], s[j]);
    }
    CHECK_INT(strtab_intern(&t, "cd", &c, &added), 0);
    CHECK(c == id[1] && !added, "\"cd\" got a second id");
    /* out of memory while adding: an error, and nothing half-added */
    hmap_calloc = counting_calloc;
    allow_allocs = 0;
    size_t n = t.n;
    int rc = 0;
    for (int i = 0; i < 64 && !rc; i++) {
        char name[16];
        snprintf(name, sizeof name, "fn%d", i);
        rc = strtab_intern(&t, name, &c, NULL);
    }
    CHECK_INT(rc, -ENOMEM);
    CHECK(t.n >= n && t.n < n + 64, "n %zu", t.n);
    for (size_t k = 1; k <= t.n; k++)
        CHECK(strtab_str(&t, (uint32_t)k) != NULL, "id %zu has no string", k);
    allow_allocs = -1;
    hmap_calloc = calloc;
    strtab_fini(&t);
}

int main(void)
{
    test_basic();
    test_grow_and_delete();
    test_no_memory();
    test_strtab();
    return check_done("hmap");
}
