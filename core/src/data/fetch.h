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

/** How to obtain one dataset. Every pointer may be NULL. Start from
 * dd_fetch_options_init(), which sets verify = 1: a zeroed struct has
 * verify = 0. The fields after `quiet` were appended for tuning and tests;
 * 0 selects their default. */
typedef struct dd_fetch_options {
    const char *cache_dir;            /**< NULL: $XDG_CACHE_HOME/distill or ~/.cache/distill */
    const char *manifest_dir;         /**< NULL: search the default manifest dirs */
    int offline;                      /**< use the cache only */
    const char *const *extra_mirrors; /**< NULL-terminated base URLs; tried before the manifest's */
    const char *local_path;           /**< a directory that already holds the files */
    int verify;                       /**< 1 (default) verify checksums; 0 skip (warned) for files
                                           from local_path or extra_mirrors only — files from the
                                           manifest's own mirrors are always verified */
    int quiet;                        /**< no progress bar */
    long connect_timeout_s;           /**< 0: 30 s */
    long low_speed_limit;             /**< bytes/s below which a transfer is "too slow"; 0: 1024 */
    long low_speed_time_s;            /**< seconds a transfer may stay too slow; 0: 60 */
    int retries;                      /**< extra attempts per mirror; 0: 3; negative: none */
    long backoff_ms;                  /**< wait before the first retry, doubled each time (capped
                                           at 60 s); 0: 1000 ms */
} dd_fetch_options;

/** Fills `o` with the defaults (all NULL/0 except verify = 1). */
DD_API void dd_fetch_options_init(dd_fetch_options *o);

/** Makes `dataset` (a manifest name, e.g. "fashion-mnist") available:
 * fetches missing files, verifies, unpacks once; returns in *root (caller
 * frees with free()) the directory the dataset reader should read.
 *
 * With local_path set nothing is downloaded: if local_path holds every file
 * in its final form (plain files, and .gz files already decompressed) that
 * directory itself is returned; otherwise archives found there are verified
 * and unpacked into the cache's dataset directory, which is returned.
 * Errors: DD_ERR_NOT_FOUND (no manifest, offline and not cached),
 * DD_ERR_NETWORK (every mirror failed; the message lists each URL and why),
 * DD_ERR_CHECKSUM, DD_ERR_ARCHIVE, DD_ERR_IO. */
DD_API dd_status dd_fetch_dataset(const char *dataset, const dd_fetch_options *opt, char **root);

/** Lists every manifest found, sorted by name (a manifest that does not
 * parse is skipped with a warning), with its state in the cache
 * (dd_dataset_status, data/cache.h). *out is malloc'ed (caller frees). */
DD_API dd_status dd_fetch_list(const dd_fetch_options *opt, dd_dataset_status **out, size_t *n);

/** The cache root the options select (opt->cache_dir, else
 * $XDG_CACHE_HOME/distill, else $HOME/.cache/distill). Caller frees *out. */
DD_API dd_status dd_fetch_cache_root(const dd_fetch_options *opt, char **out);

#endif
