/* common/utf8: which byte sequences are well-formed, how the rest is
 * repaired, and that truncation never splits a character. */
#include "check.h"

#include "common/utf8.h"

#include <stdlib.h>
#include <string.h>

#define FFFD "\xef\xbf\xbd"

static void repaired(const char *in, size_t n, const char *want)
{
    char out[64];
    size_t len = utf8_sanitize_n(in, n, out, sizeof out);
    CHECK(strcmp(out, want) == 0 && len == strlen(want), "%zu bytes: got \"%s\", want \"%s\"", n,
          out, want);
    CHECK(utf8_valid_n(out, len), "repaired output is not valid: \"%s\"", out);
}

int main(void)
{
    /* well-formed: ASCII, 2, 3 and 4 bytes, the edges of each range */
    const char *good[] = { "", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                           "\xc2\x80", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
                           "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK(utf8_valid_n(good[i], strlen(good[i])), "good[%zu] refused", i);
        repaired(good[i], strlen(good[i]), good[i]);
    }

    /* ill-formed: every bad byte becomes one U+FFFD, good bytes stay */
    repaired("a\xff" "b", 3, "a" FFFD "b");
    repaired("\xc0\xaf", 2, FFFD FFFD);                      /* overlong 2-byte */
    repaired("\xc1\xbf", 2, FFFD FFFD);
    repaired("\xe0\x80\xaf", 3, FFFD FFFD FFFD);             /* overlong 3-byte */
    repaired("\xed\xa0\x80", 3, FFFD FFFD FFFD);             /* surrogate U+D800 */
    repaired("\xf0\x80\x80\xaf", 4, FFFD FFFD FFFD FFFD);    /* overlong 4-byte */
    repaired("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD);    /* above U+10FFFF */
    repaired("\xf5\x80", 2, FFFD FFFD);
    repaired("\x80", 1, FFFD);                               /* lone continuation */
    repaired("x\xe2\x82", 3, "x" FFFD FFFD);                 /* cut at the end */
    repaired("\xf0\x9f\x98" "z", 4, FFFD FFFD FFFD "z");     /* cut before ASCII */
    repaired("a\0b", 3, "a" FFFD "b");                       /* a NUL inside n bytes */
    /* a sequence that would be well-formed if read past n is cut short */
    repaired("\xc3\xa9", 1, FFFD);
    CHECK(!utf8_valid_n("\xc3\xa9", 1), "a cut sequence passed");
    CHECK(!utf8_valid_n("a\0b", 3), "a NUL passed");

    /* truncation keeps whole characters */
    char small[6];
    size_t len = utf8_sanitize("ab\xe2\x82\xac" "cd", small, sizeof small);
    CHECK_STR(small, "ab\xe2\x82\xac");
    CHECK_INT(len, 5);
    len = utf8_sanitize("abcd\xe2\x82\xac", small, sizeof small);
    CHECK_STR(small, "abcd");
    len = utf8_sanitize("abc\xff", small, sizeof small);
    CHECK_STR(small, "abc");
    CHECK_INT(len, 3);

    /* utf8_dup: a plain copy, or a repaired one */
    char *d = utf8_dup("caf\xc3\xa9");
    CHECK(d && strcmp(d, "caf\xc3\xa9") == 0, "dup of good text: %s", d ? d : "(null)");
    free(d);
    d = utf8_dup("\xff\xfe");
    CHECK(d && strcmp(d, FFFD FFFD) == 0, "dup of bad text: %s", d ? d : "(null)");
    free(d);
    d = utf8_dup(NULL);
    CHECK(d && !*d, "dup of NULL");
    free(d);
    return check_done("utf8");
}
