/* distill (internal) — the filesystem helpers every subsystem shares:
 * mkdir -p, reading a whole file, and atomic writes (a temporary file beside
 * the target, flushed and fsync'ed, then renamed over it), so a crash or a
 * full disk never leaves a half-written output where a good one was. */
#ifndef DD_FS_H
#define DD_FS_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "distill/status.h"

/** Creates `path` and its missing parents (mode 0777 & ~umask). DD_ERR_IO
 * names the component that could not be made or is not a directory. */
dd_status dd_fs_mkdir_p(const char *path);
/** As dd_fs_mkdir_p, creating the missing directories with `mode` & ~umask
 * (the dataset cache uses 0755, so a lax umask never opens it to others). */
dd_status dd_fs_mkdir_p_mode(const char *path, mode_t mode);

/** "<dir>/<name>" in a malloc'ed string (caller frees); NULL when out of
 * memory. */
char *dd_fs_join(const char *dir, const char *name);

/** 1 if `path` is an existing regular file. */
int dd_fs_is_file(const char *path);

/** Reads the whole file into a malloc'ed, NUL-terminated buffer (*len
 * without the NUL; len may be NULL). Files over max_bytes are refused with
 * DD_ERR_INVALID. Caller owns *out. */
dd_status dd_fs_read_file(const char *path, size_t max_bytes, char **out, size_t *len);

/** An atomic write in progress: write through `f`, then dd_fs_atomic_commit
 * (or _abort). */
typedef struct dd_fs_atomic {
    FILE *f;
    char *path; /**< target (owned) */
    char *tmp;  /**< temporary beside it (owned) */
} dd_fs_atomic;

/** Opens a temporary file beside `path` (mode 0644) for writing. */
dd_status dd_fs_atomic_open(dd_fs_atomic *a, const char *path);
/** As dd_fs_atomic_open, but the file gets `mode` & ~umask, as open(2)
 * would give it, instead of 0644 whatever the umask: for files that must
 * not be more open than the user asked (the dataset cache). */
dd_status dd_fs_atomic_open_mode(dd_fs_atomic *a, const char *path, mode_t mode);
/** Flushes, fsyncs and renames the temporary over the target, then fsyncs
 * the directory so the rename survives a crash; on any failure
 * the temporary is removed and the target is left as it was. */
dd_status dd_fs_atomic_commit(dd_fs_atomic *a);
/** Removes the temporary; the target is left as it was. */
void dd_fs_atomic_abort(dd_fs_atomic *a);

/** Removes the temporaries that interrupted atomic writes of `path` left
 * beside it. Only for a caller that knows no other write of `path` is under
 * way (the dataset cache, under its lock): a retried write would otherwise
 * leave one more stale temporary each time it was interrupted. */
void dd_fs_atomic_remove_stale(const char *path);

/** Writes `len` bytes to `path` atomically. */
dd_status dd_fs_write_file(const char *path, const void *data, size_t len);
/** Same, the file getting `mode` & ~umask (see dd_fs_atomic_open_mode). */
dd_status dd_fs_write_file_mode(const char *path, const void *data, size_t len, mode_t mode);

#endif
