/* distill (internal) — making a dataset available: its manifest, download
 * from the mirrors (data/transport), verification, unpacking (data/unpack)
 * into the cache (data/cache), and the listing of `distill datasets`. See
 * docs/datasets.md. */
#ifndef DD_FETCH_H
#define DD_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"
#include "data/cache.h"
#include "distill/host.h"
#include "base/export.h"

/** The directory a reader of the user's own files (DD_DATASET_LOCAL) reads
 * for dataset `name` at `path`: the directory itself; without `unpack`, a
 * regular file as it is (a reader that opens its own file, e.g. a .npz); or — with `unpack`
 * and `path` a .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz or .zip file — the tree
 * unpacked (dd_unpack_archive's protections, at most 16 × the archive's size
 * and at least 64 MiB) into <cache>/+local/<name>-<16 hex of sha256(abs
 * path)>/tree, under the cache lock. It is unpacked again, into a temporary
 * directory renamed over the old tree, when the archive's size or mtime
 * changed. Nothing is downloaded. *root is malloc'ed (caller frees).
 * DD_ERR_NOT_FOUND names `path` when it is neither a directory nor a file;
 * with `unpack`, a file that is not an archive is DD_ERR_INVALID. */
DD_INTERNAL dd_status dd_fetch_local_path(const char *name, const char *path,
                                          const dd_fetch_options *opt, int unpack, char **root);

#endif
