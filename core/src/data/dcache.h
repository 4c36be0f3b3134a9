/* distill (internal) — the decoded-dataset cache: the images a reader
 * decoded (after crop/resize), one file per split under
 * <cache>/<dataset>/decoded/, keyed by the reader, its options and the
 * identity of its input files (path, size, mtime of each), reused by later
 * runs in RAM or memory-mapped. Files are named by the reader, options and
 * the inputs' location, so changed inputs replace their file.
 * Format, key and verification: dcache.c and docs/datasets.md. */
#ifndef DD_DCACHE_H
#define DD_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "base/export.h"
#include "distill/status.h"

/** dataset.memory: where a loaded split's pixels live. */
typedef enum dd_memory_mode {
    DD_MEMORY_AUTO = 0, /**< mmap when both splits exceed the threshold, else RAM */
    DD_MEMORY_RAM,      /**< always in RAM (read from the cache file when it is valid) */
    DD_MEMORY_MMAP,     /**< always mapped from the cache file (written first if needed) */
} dd_memory_mode;

/** Default dataset.mmap_threshold: 1 GiB of decoded pixels (both splits). */
#define DD_DCACHE_DEFAULT_MMAP_THRESHOLD (INT64_C(1) << 30)

/** What dd_dcache_load should do. */
typedef struct dd_dcache_config {
    const char *dir;      /**< directory of the cache files, created if absent */
    const char *key_text; /**< reader identity and every option that shapes the pixels */
    const char *inputs;   /**< file or directory the reader reads: each file's path
                               relative to it, size and mtime join the key (NULL: none) */
    dd_memory_mode memory;
    int64_t mmap_threshold; /**< bytes; ≤ 0: DD_DCACHE_DEFAULT_MMAP_THRESHOLD */
} dd_dcache_config;

/** What dd_dcache_load did (for logs and tests). */
typedef struct dd_dcache_info {
    int reused;  /**< both splits came from valid cache files; the reader was not called */
    int rebuilt; /**< a cache file was present but bad (warned) and was written anew */
    int written; /**< the reader ran and the cache files were written */
    int mapped;  /**< the returned splits are memory-mapped */
    char train_path[4096], test_path[4096];
} dd_dcache_info;

/** Loads both splits through the cache: valid files for this key are used
 * (mapped or read into RAM per c->memory); otherwise ops->load(req) decodes
 * them and the files are written atomically under <dir>/.lock, so concurrent
 * runs decode once and share the result. A truncated or corrupt file is
 * reported with a warning naming it and rebuilt, never used. When the cache
 * cannot be written the splits stay in RAM with a warning, except for
 * DD_MEMORY_MMAP (an error naming the directory). Caller owns *train and
 * *test; info may be NULL. */
DD_INTERNAL dd_status dd_dcache_load(const dd_dcache_config *c, const dd_dataset_ops *ops,
                                     const dd_dataset_request *req, dd_dataset **train,
                                     dd_dataset **test, dd_dcache_info *info);

/** Writes `d` as a cache file at `path` (temporary, fsync, rename) with the
 * 32-byte `key`. */
DD_INTERNAL dd_status dd_dcache_write(const char *path, const uint8_t key[32], const dd_dataset *d);

/** Opens the cache file at `path` if it holds `key`: mapped read-only when
 * `map`, else read into RAM (then checked against dataset.max_bytes).
 * DD_ERR_NOT_FOUND when absent; DD_ERR_CHECKSUM or DD_ERR_PARSE (message
 * naming the file and what is wrong) when it is truncated, corrupt, of
 * another format version or key; other errors as they come. */
DD_INTERNAL dd_status dd_dcache_open(const char *path, const uint8_t key[32], int map,
                                     dd_dataset **out);

#endif
