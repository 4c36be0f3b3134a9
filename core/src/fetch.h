/* distill (internal) — dataset manifests, download (libcurl), verification
 * and unpacking (libarchive) into the cache. */
#ifndef DD_FETCH_H
#define DD_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"

/** How to obtain one dataset. Every pointer may be NULL. */
typedef struct dd_fetch_options {
    const char *cache_dir;            /**< NULL: $XDG_CACHE_HOME/distill or ~/.cache/distill */
    const char *manifest_dir;         /**< NULL: search the default manifest dirs */
    int offline;                      /**< use the cache only */
    const char *const *extra_mirrors; /**< NULL-terminated; tried before the manifest's */
    const char *local_path;           /**< a directory that already holds the files */
    int verify;                       /**< 1 (default) verify checksums; 0 skip (warned) */
    int quiet;                        /**< no progress bar */
} dd_fetch_options;

/** Makes `dataset` (a manifest name, e.g. "fashion-mnist") available:
 * fetches missing files, verifies, unpacks once; returns in *root (caller
 * frees with free()) the directory the dataset reader should read. */
DD_API dd_status dd_fetch_dataset(const char *dataset, const dd_fetch_options *opt, char **root);

/** One line of `distill datasets`. */
typedef struct dd_dataset_status {
    char name[64];
    char description[160];
    int cached;          /**< all files present and verified/unpacked */
    uint64_t bytes;      /**< size of the cached files (0 if none) */
    uint64_t download_bytes; /**< declared download size (0 if unknown) */
} dd_dataset_status;

/** Lists every manifest found. *out is malloc'ed (caller frees). */
DD_API dd_status dd_fetch_list(const dd_fetch_options *opt, dd_dataset_status **out, size_t *n);

#endif
