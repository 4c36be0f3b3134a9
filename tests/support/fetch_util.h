/* tests/support — helpers for the fetch/unpack tests: scratch directories,
 * whole-file I/O, digests as hex, and in-memory tar / tar.gz / gz archives
 * built with libarchive's writer (including deliberately hostile ones). */
#ifndef FETCH_UTIL_H
#define FETCH_UTIL_H

#include <stddef.h>

#include "distill/status.h"

/** A fresh, empty directory under $DISTILL_BINARY_DIR/tmp (or /tmp) whose
 * name contains `tag`. Caller frees the path; NULL on failure. */
char *fetch_tmpdir(const char *tag);

/** Removes `path` recursively without following symbolic links. */
void fetch_rmtree(const char *path);

/** Writes (creating/truncating) a file; 0 on success. */
int fetch_write_file(const char *path, const void *data, size_t n);

/** Reads a whole file (malloc'ed, caller frees); NULL if it cannot. */
unsigned char *fetch_read_file(const char *path, size_t *n);

/** 1 if `path` exists (lstat), else 0. */
int fetch_exists(const char *path);

/** Hex digests of a buffer. */
void fetch_sha256_hex(const void *data, size_t n, char out[65]);
void fetch_md5_hex(const void *data, size_t n, char out[33]);

/** One archive member. */
typedef struct fetch_tar_entry {
    const char *path; /**< stored verbatim, so "../x" and "/abs" are possible */
    char type;        /**< 'f' file, 'd' directory, 'l' symbolic link, 'h' hard link */
    const char *data; /**< 'f': contents (NULL: `size` bytes of a pattern); 'l'/'h': link target */
    size_t size;      /**< 'f': number of bytes */
} fetch_tar_entry;

/** Builds a ustar/pax archive of the entries, gzip'ed if `gzip`. *out is
 * malloc'ed (caller frees). */
dd_status fetch_make_tar(const fetch_tar_entry *entries, size_t n, int gzip, unsigned char **out,
                         size_t *out_n);

/** gzip-compresses a buffer (a single-member .gz). *out is malloc'ed. */
dd_status fetch_make_gz(const void *data, size_t n, unsigned char **out, size_t *out_n);

#endif
