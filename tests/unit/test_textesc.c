/* common/textesc: what is shown escaped on a terminal or in a text output,
 * what is copied as is, and that a cut never splits an escape or a
 * character. */
#include "check.h"

#include "common/textesc.h"

#include <stdlib.h>
#include <string.h>

static void rendered(const char *in, const char *want)
{
    char out[256];
    size_t n = textesc(in, out, sizeof out);
    CHECK(strcmp(out, want) == 0 && n == strlen(want), "\"%s\": got \"%s\", want \"%s\"", in, out, want);
    CHECK(textesc_needed(in) == (strcmp(in, want) != 0), "textesc_needed(\"%s\")", in);
    char *d = textesc_dup(in);
    CHECK(d && strcmp(d, want) == 0, "textesc_dup(\"%s\")", in);
    free(d);
    char buf[256];
    const char *s = textesc_str(in, buf, sizeof buf);
    CHECK(strcmp(s, want) == 0, "textesc_str(\"%s\") = \"%s\"", in, s);
    FILE *f = tmpfile();
    textesc_fputs(in, f);
    long len = ftell(f);
    rewind(f);
    char got[256] = "";
    size_t r = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    CHECK(len == (long)strlen(want) && r == strlen(want) && !memcmp(got, want, r),
          "textesc_fputs(\"%s\") = \"%s\"", in, got);
}

int main(void)
{
    /* copied as is: ASCII, accented, CJK, emoji, a 3-byte char next to C1 */
    rendered("", "");
    rendered("main.py:handle_request", "main.py:handle_request");
    rendered("caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80");
    rendered("\xc2\xa0nbsp \xc2\xbf", "\xc2\xa0nbsp \xc2\xbf"); /* U+00A0, U+00BF: printable */

    /* C0 and DEL: \xNN */
    rendered("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"); /* OSC 52: clipboard */
    rendered("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H");                     /* clear the screen */
    rendered("a\nb\tc\rd\x7f", "a\\x0ab\\x09c\\x0dd\\x7f");
    rendered("\x01\x1f", "\\x01\\x1f");

    /* C1: \u0080-\u009f (0x9b is CSI, 0x9d is OSC for 8-bit terminals) */
    rendered("\xc2\x9b" "2J", "\\u009b2J");
    rendered("\xc2\x9d" "0;pwned\xc2\x9c", "\\u009d0;pwned\\u009c");
    rendered("\xc2\x80\xc2\x9f", "\\u0080\\u009f");

    /* bidi controls and separators: \uNNNN */
    rendered("admin\xe2\x80\xae" "txt.exe", "admin\\u202etxt.exe");
    rendered("\xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa9\xe2\x80\x8f\xd8\x9c\xe2\x80\xa8",
             "\\u202a\\u2066\\u2069\\u200f\\u061c\\u2028");
    rendered("\xe2\x80\xa7\xe2\x81\xaa", "\xe2\x80\xa7\xe2\x81\xaa"); /* U+2027, U+206A: neighbours stay */

    /* backslash doubled, so "\x1b" typed in a name differs from ESC */
    rendered("C:\\tmp", "C:\\\\tmp");
    rendered("\\x1b", "\\\\x1b");

    /* bytes that are not UTF-8: \xNN (raw 8-bit C1 bytes included) */
    rendered("a\x9b" "b\xff", "a\\x9bb\\xff");
    rendered("\xc2", "\\xc2");                       /* cut short */
    rendered("\xe2\x80", "\\xe2\\x80");
    rendered("\xc0\x9b", "\\xc0\\x9b");              /* overlong */
    rendered("\xed\xa0\x80", "\\xed\\xa0\\x80");     /* surrogate */

    /* a small buffer: cut before an escape or a character that does not fit */
    char out[8];
    CHECK_INT(textesc("ab\x1b" "cd", out, 6), 2);
    CHECK_STR(out, "ab");
    CHECK_INT(textesc("ab\x1b" "cd", out, 7), 6);
    CHECK_STR(out, "ab\\x1b");
    CHECK_INT(textesc("a\xe4\xb8\xad", out, 4), 1);
    CHECK_STR(out, "a");
    CHECK_INT(textesc("abc", out, 0), 0);
    CHECK_STR(textesc_str(NULL, out, sizeof out), "");
    CHECK(!textesc_needed(NULL), "NULL needs nothing");

    /* the size bound: the worst input for each rule */
    const char *worst[] = { "\x1b\x1b\x1b", "\\\\", "\xff\xff", "\xc2\x9b\xc2\x9b", "\xe2\x80\xae" };
    for (size_t i = 0; i < sizeof worst / sizeof worst[0]; i++) {
        char big[64];
        size_t n = textesc(worst[i], big, sizeof big);
        CHECK(n + 1 <= TEXTESC_SIZE(strlen(worst[i])), "worst[%zu]: %zu bytes", i, n);
    }
    /* textesc_whole: the input itself, its rendering in buf, or a whole
     * rendering allocated when buf is too small */
    {
        char buf[16], *owned;
        const char *plain = "plain";
        CHECK(textesc_whole(plain, buf, sizeof buf, &owned) == plain && !owned, "whole: plain");
        const char *r = textesc_whole("a\x1b" "b", buf, sizeof buf, &owned);
        CHECK(r == buf && !owned && strcmp(r, "a\\x1bb") == 0, "whole: in buf: %s", r);
        char big[64];
        memset(big, 0x1b, sizeof big - 1);
        big[sizeof big - 1] = 0;
        r = textesc_whole(big, buf, sizeof buf, &owned);
        CHECK(owned && r == owned && strlen(r) == 4 * (sizeof big - 1), "whole: allocated %zu",
              strlen(r));
        free(owned);
    }
    return check_done("textesc");
}
