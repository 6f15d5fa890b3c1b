/* Output files written safely: a new file, renamed into place at the end.
 *
 * The destination is never opened through a symbolic link, never written in
 * place (a hard link to it, or a file planted there by someone else, is left
 * as it was), and never left half-written: the data goes to a temporary
 * file created exclusively in the same directory (mode 0644 minus the
 * umask) and rename()d over the destination once complete. A destination
 * that exists and is a symbolic link, a directory, a FIFO, a socket or a
 * block device is refused; a character device (/dev/null, a terminal) is
 * written in place, opened without following links. */
#ifndef SONDE_OUTFILE_H
#define SONDE_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

enum {
    OUTFILE_NOREPLACE = 1, /* never replace an existing destination (commit: -EEXIST) */
};

struct outfile {
    FILE *f;    /* write here */
    char *path; /* the destination */
    char *tmp;  /* the temporary file; NULL when written in place (a device) */
    int flags;
};

/* Start writing a new version of path. 0, or a negative errno with a
 * one-line message in err: -ELOOP for a symbolic link, -EISDIR for a
 * directory, -EINVAL for another kind of file that is not written to,
 * -EEXIST under OUTFILE_NOREPLACE when path exists, or what creating the
 * temporary file gave (-EACCES, -ENOENT...). */
int outfile_open(struct outfile *o, const char *path, int flags, char *err, size_t errlen);

/* Flush and close o->f and put the file in place. 0, or a negative errno
 * with a message in err (-EIO when a write failed earlier, -EEXIST under
 * OUTFILE_NOREPLACE when path appeared meanwhile); on failure the
 * temporary file is removed and the destination is as it was. Frees o. */
int outfile_commit(struct outfile *o, char *err, size_t errlen);

/* Give up: close o->f and remove the temporary file; the destination is
 * as it was. Frees o. No-op on an outfile not opened or already done. */
void outfile_abort(struct outfile *o);

#endif
