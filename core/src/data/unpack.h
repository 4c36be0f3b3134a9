/* distill (internal) — safe unpacking of downloaded archives (libarchive):
 * single .gz files and tar / tar.gz, refusing anything that would write
 * outside the target directory and capping the extracted size. */
#ifndef DD_UNPACK_H
#define DD_UNPACK_H

#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"
#include "base/hash.h"

/** Decompresses the single gzip file `src`. With `dst` non-NULL the payload
 * is written to a temporary file beside `dst` (base/fs's atomic write:
 * mode 0644, fsync'ed) and renamed to `dst` once complete; with `dst`
 * NULL it is only hashed. More than `limit` decompressed bytes is an error
 * (DD_ERR_ARCHIVE). `sha256` (may be NULL) receives the payload digest,
 * `size` (may be NULL) its length. A file that is not gzip, or is truncated
 * or corrupt, gives DD_ERR_ARCHIVE naming `src`. */
DD_INTERNAL dd_status dd_unpack_gz(const char *src, const char *dst, uint64_t limit,
                                   uint8_t sha256[DD_SHA256_SIZE], uint64_t *size);

/** Extracts the tar (plain or compressed) `src` into the existing directory
 * `dst_dir`. Regular files, directories, symbolic links and hard links are
 * supported; the archive is refused (DD_ERR_ARCHIVE, naming the archive and
 * the entry) if an entry has an absolute path or a ".." component, a
 * symbolic link's target is absolute or leaves `dst_dir`, a hard link points
 * outside, an entry would be written through a symbolic link, the entry type
 * is a device/fifo/socket, or more than `limit` bytes would be extracted.
 * Nothing is ever written outside `dst_dir`; after an error, entries already
 * extracted stay inside it (callers mark success separately). `size` (may be
 * NULL) receives the number of bytes extracted. */
DD_INTERNAL dd_status dd_unpack_tar(const char *src, const char *dst_dir, uint64_t limit,
                                    uint64_t *size);

/** As dd_unpack_tar, and also refuses entries whose first path component
 * starts with one of `reserved` (NULL-terminated, may be NULL): the cache
 * keeps its own bookkeeping (downloads/, markers, lock) beside the data. */
DD_INTERNAL dd_status dd_unpack_tar_reserved(const char *src, const char *dst_dir, uint64_t limit,
                                             const char *const *reserved, uint64_t *size);

/** As dd_unpack_tar, for the user's own archives: tar (plain or compressed)
 * or zip, with the same refusals (a zip's symbolic links included). */
DD_INTERNAL dd_status dd_unpack_archive(const char *src, const char *dst_dir, uint64_t limit,
                                        uint64_t *size);

struct archive;
/** The one place libarchive's error text becomes a distill error:
 * DD_ERR_ARCHIVE "<src>: <what>: <archive_error_string>". */
DD_INTERNAL dd_status dd_archive_error(struct archive *a, const char *src, const char *what);

#endif
