/* Shared curses helpers for the terminal UIs (sonde top, sonde view):
 * terminal setup and restore, colours per thread state, clipped text,
 * a help screen and a one-line prompt. Only for the thread that owns the
 * terminal. */
#ifndef SONDE_TUI_H
#define SONDE_TUI_H

#include <stddef.h>
#include <stdint.h>

/* Colour pairs (used only when the terminal has colours). */
enum { TUI_C_HEAD = 1, TUI_C_SEL, TUI_C_GIL, TUI_C_WAIT, TUI_C_NOGIL, TUI_C_IDLE, TUI_C_TITLE,
       TUI_C_WARN };

/* Enter curses mode (alternate screen, no echo, keypad, hidden cursor).
 * 0, or -1 when the terminal cannot be initialized (message in err). */
int tui_begin(char *err, size_t errlen);

/* Leave curses mode and restore the terminal. Safe to call twice. */
void tui_end(void);

/* Write s at (y, x), at most w columns, padded with spaces to w when pad.
 * Controls and the like in s are shown escaped (common/textesc.h), so any
 * text may be passed as is; printable non-ASCII bytes show as '?'. */
void tui_put(int y, int x, int w, const char *s, int pad);

/* The status line (the last row, reversed): msg when it is set, else the
 * key hints. */
void tui_status(const char *msg, const char *keys);

/* Like tui_put with printf formatting. */
void tui_putf(int y, int x, int w, int pad, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Character and colour pair of a thread state (enum sample_state). */
char tui_state_char(int state);
int tui_state_pair(int state);

/* Draw a bar of width w at (y, x) split by the fractions of the four
 * states (indexed by enum sample_state; they need not sum to 1). */
void tui_state_bar(int y, int x, int w, const double frac[4]);

/* Show a full-screen help (NULL-terminated lines) until a key is pressed.
 * Redraws on resize. */
void tui_help(const char *title, const char *const *lines);

/* Read a line on the last screen row after prompt. 1 if confirmed with
 * Enter (text in buf), 0 if cancelled with Esc. */
int tui_prompt(const char *prompt, char *buf, size_t buflen);

/* Format a duration in seconds compactly: "12.3ms", "4.56s", "1:02m". */
void tui_fmt_secs(char *out, size_t outlen, double s);

#endif
