#include "common/outfile.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void done(struct outfile *o)
{
    free(o->path);
    free(o->tmp);
    o->f = NULL;
    o->path = o->tmp = NULL;
}

/* Write in place to the character device at path. */
static int open_device(struct outfile *o, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0)
        return se_fail(err, errlen, -errno, "cannot write %.400s: %s", path, strerror(errno));
    if (fstat(fd, &sb) || !S_ISCHR(sb.st_mode)) { /* replaced meanwhile */
        close(fd);
        return se_fail(err, errlen, -EINVAL, "%.400s changed while being opened: not written", path);
    }
    if (!(o->f = fdopen(fd, "wb"))) {
        close(fd);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    return 0;
}

int outfile_open(struct outfile *o, const char *path, int flags, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->flags = flags;
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        if (flags & OUTFILE_NOREPLACE)
            return se_fail(err, errlen, -EEXIST, "%.400s exists: not replaced", path);
        if (S_ISLNK(sb.st_mode))
            return se_fail(err, errlen, -ELOOP,
                           "%.400s is a symbolic link: not writing through it (name the file itself)", path);
        if (S_ISDIR(sb.st_mode))
            return se_fail(err, errlen, -EISDIR, "%.400s is a directory", path);
        if (S_ISCHR(sb.st_mode)) {
            if (!(o->path = strdup(path)))
                return se_fail(err, errlen, -ENOMEM, "out of memory");
            int rc = open_device(o, path, err, errlen);
            if (rc)
                done(o);
            return rc;
        }
        if (!S_ISREG(sb.st_mode))
            return se_fail(err, errlen, -EINVAL, "%.400s is not a regular file: not written", path);
    } else if (errno != ENOENT) {
        return se_fail(err, errlen, -errno, "cannot write %.400s: %s", path, strerror(errno));
    }

    /* DIR/.BASE.XXXXXX next to the destination, so that rename() is atomic */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0, n = strlen(path);
    o->path = strdup(path);
    o->tmp = malloc(n + 10);
    if (!o->path || !o->tmp) {
        done(o);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    memcpy(o->tmp, path, dirlen);
    snprintf(o->tmp + dirlen, n + 10 - dirlen, ".%s.XXXXXX", path + dirlen);
    int fd = mkostemp(o->tmp, O_CLOEXEC); /* O_CREAT | O_EXCL, mode 0600 */
    if (fd < 0) {
        int e = errno;
        done(o);
        return se_fail(err, errlen, -e, "cannot write %.400s: %s", path, strerror(e));
    }
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0644 & ~um) || !(o->f = fdopen(fd, "wb"))) {
        int e = errno ? errno : ENOMEM;
        close(fd);
        unlink(o->tmp);
        done(o);
        return se_fail(err, errlen, -e, "cannot write %.400s: %s", path, strerror(e));
    }
    return 0;
}

/* rename() that never replaces an existing to: -EEXIST. */
static int rename_noreplace(const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
#endif
    /* a file system without RENAME_NOREPLACE: link() never replaces */
    if (link(from, to))
        return -errno;
    unlink(from);
    return 0;
}

int outfile_commit(struct outfile *o, char *err, size_t errlen)
{
    if (!o->f)
        return se_fail(err, errlen, -EINVAL, "output not open");
    int bad = fflush(o->f) != 0 || ferror(o->f);
    int e = bad ? (errno ? errno : EIO) : 0;
    if (fclose(o->f) && !bad)
        bad = 1, e = errno ? errno : EIO;
    o->f = NULL;
    int rc = 0;
    if (bad) {
        rc = se_fail(err, errlen, -EIO, "%.400s: write error: %s", o->path, strerror(e));
    } else if (o->tmp) {
        int r = o->flags & OUTFILE_NOREPLACE ? rename_noreplace(o->tmp, o->path)
                                             : (rename(o->tmp, o->path) ? -errno : 0);
        if (r == -EEXIST)
            rc = se_fail(err, errlen, r, "%.400s appeared meanwhile: not replaced", o->path);
        else if (r)
            rc = se_fail(err, errlen, r, "cannot write %.400s: %s", o->path, strerror(-r));
    }
    if (rc && o->tmp)
        unlink(o->tmp);
    done(o);
    return rc;
}

void outfile_abort(struct outfile *o)
{
    if (o->f)
        fclose(o->f);
    if (o->tmp && o->path)
        unlink(o->tmp);
    done(o);
}
