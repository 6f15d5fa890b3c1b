#include "ui/tui.h"

#include "common/state.h"
#include "common/textesc.h"

#include <curses.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int active;

int tui_begin(char *err, size_t errlen)
{
    setlocale(LC_ALL, "");
    if (!newterm(NULL, stdout, stdin)) {
        snprintf(err, errlen, "cannot initialize the terminal (TERM=%s)",
                 getenv("TERM") ? getenv("TERM") : "");
        return -1;
    }
    active = 1;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(TUI_C_HEAD, COLOR_BLACK, COLOR_CYAN);
        init_pair(TUI_C_SEL, COLOR_BLACK, COLOR_YELLOW);
        init_pair(TUI_C_GIL, COLOR_GREEN, -1);
        init_pair(TUI_C_WAIT, COLOR_RED, -1);
        init_pair(TUI_C_NOGIL, COLOR_YELLOW, -1);
        init_pair(TUI_C_IDLE, COLOR_BLUE, -1);
        init_pair(TUI_C_TITLE, COLOR_CYAN, -1);
        init_pair(TUI_C_WARN, COLOR_RED, -1);
    }
    return 0;
}

void tui_end(void)
{
    if (!active)
        return;
    active = 0;
    curs_set(1);
    endwin();
    fflush(stdout);
}

void tui_put(int y, int x, int w, const char *s, int pad)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    if (y < 0 || y >= rows || x >= cols || w <= 0)
        return;
    if (x + w > cols)
        w = cols - x;
    /* Whatever s holds (names from a target, a recording or a span store
     * among it), controls, C1, bidi controls and bytes that are not UTF-8
     * are shown escaped (common/textesc.h); other non-ASCII bytes as '?',
     * one per byte, as the callers' byte-counted column widths assume. */
    char esc[2048];
    textesc(s, esc, sizeof esc);
    int n = 0;
    move(y, x);
    for (const unsigned char *p = (const unsigned char *)esc; *p && n < w; p++, n++)
        addch(*p >= 32 && *p < 127 ? *p : '?');
    if (pad)
        for (; n < w; n++)
            addch(' ');
}

void tui_status(const char *msg, const char *keys)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    attron(A_REVERSE);
    tui_put(rows - 1, 0, cols, msg && *msg ? msg : keys, 1);
    attroff(A_REVERSE);
}

void tui_putf(int y, int x, int w, int pad, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    tui_put(y, x, w, buf, pad);
}

char tui_state_char(int state)
{
    switch (state) {
    case STATE_GIL: return '#';
    case STATE_GIL_WAIT: return 'w';
    case STATE_NOGIL: return '=';
    case STATE_IDLE: return '.';
    default: return ' ';
    }
}

int tui_state_pair(int state)
{
    switch (state) {
    case STATE_GIL: return TUI_C_GIL;
    case STATE_GIL_WAIT: return TUI_C_WAIT;
    case STATE_NOGIL: return TUI_C_NOGIL;
    default: return TUI_C_IDLE;
    }
}

void tui_state_bar(int y, int x, int w, const double frac[4])
{
    static const int order[] = { STATE_GIL, STATE_GIL_WAIT, STATE_NOGIL, STATE_IDLE };
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    if (y >= rows || x >= cols || w <= 0)
        return;
    if (x + w > cols)
        w = cols - x;
    move(y, x);
    int drawn = 0;
    double acc = 0;
    for (int i = 0; i < 4; i++) {
        int st = order[i];
        acc += frac[st] > 0 ? frac[st] : 0;
        int upto = (int)(acc * w + 0.5);
        if (upto > w)
            upto = w;
        if (has_colors())
            attron(COLOR_PAIR(tui_state_pair(st)));
        for (; drawn < upto; drawn++)
            addch((chtype)tui_state_char(st));
        if (has_colors())
            attroff(COLOR_PAIR(tui_state_pair(st)));
    }
    for (; drawn < w; drawn++)
        addch(' ');
}

void tui_help(const char *title, const char *const *lines)
{
    int top = 0;
    for (;;) {
        int rows, cols, n = 0;
        getmaxyx(stdscr, rows, cols);
        while (lines[n])
            n++;
        erase();
        attron(A_REVERSE);
        tui_putf(0, 0, cols, 1, " %s  (arrows scroll, any other key closes)", title);
        attroff(A_REVERSE);
        for (int i = 0; i + 1 < rows && top + i < n; i++)
            tui_put(i + 1, 1, cols - 1, lines[top + i], 0);
        refresh();
        int ch = getch();
        if (ch == KEY_RESIZE || ch == ERR)
            continue;
        if (ch == KEY_DOWN && top + rows - 1 < n)
            top++;
        else if (ch == KEY_UP && top > 0)
            top--;
        else if (ch != KEY_DOWN && ch != KEY_UP)
            break;
    }
}

int tui_prompt(const char *prompt, char *buf, size_t buflen)
{
    size_t len = strlen(buf);
    curs_set(1);
    int ok = 0;
    for (;;) {
        int rows, cols;
        getmaxyx(stdscr, rows, cols);
        tui_putf(rows - 1, 0, cols, 1, "%s%s", prompt, buf);
        move(rows - 1, (int)(strlen(prompt) + len) < cols ? (int)(strlen(prompt) + len) : cols - 1);
        refresh();
        int ch = getch();
        if (ch == ERR || ch == KEY_RESIZE)
            continue;
        if (ch == 27) /* Esc */
            break;
        if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
            ok = 1;
            break;
        }
        if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
            if (len)
                buf[--len] = 0;
        } else if (ch >= 32 && ch < 127 && len + 1 < buflen) {
            buf[len++] = (char)ch;
            buf[len] = 0;
        }
    }
    curs_set(0);
    return ok;
}

void tui_fmt_secs(char *out, size_t outlen, double s)
{
    if (s < 0)
        s = 0;
    if (s < 1e-3 && s > 0)
        snprintf(out, outlen, "%.0fus", s * 1e6);
    else if (s < 1)
        snprintf(out, outlen, "%.1fms", s * 1e3);
    else if (s < 100)
        snprintf(out, outlen, "%.2fs", s);
    else if (s < 3600)
        snprintf(out, outlen, "%d:%02dm", (int)s / 60, (int)s % 60);
    else
        snprintf(out, outlen, "%d:%02dh", (int)s / 3600, ((int)s / 60) % 60);
}
