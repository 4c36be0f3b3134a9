/* distill (internal) — the dataset cache. <root>/<dataset>/ holds what a
 * reader reads and, beside it, the cache's own bookkeeping: downloads/ (the
 * downloaded files), .lock (one fetch of a dataset at a time), and per file
 * .verified-<file> (size and mtime of the download when its checksum passed)
 * and .unpacked-<file> (how it was installed), and decoded/ (the decoded
 * images, dcache.h). See docs/datasets.md. */
#ifndef DD_CACHE_H
#define DD_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "distill/status.h"
#include "data/manifest.h"
#include "distill/host.h"

/** The cache root: `cache_dir` if set, else $XDG_CACHE_HOME/distill (an
 * absolute XDG_CACHE_HOME only), else $HOME/.cache/distill. Caller frees
 * *out. DD_ERR_INVALID when none can be chosen. */
dd_status dd_cache_root(const char *cache_dir, char **out);

/** A dataset's directory in the cache, locked while open. A zeroed struct
 * is a closed one. */
typedef struct dd_cache_dataset {
    char *dir;       /**< <root>/<dataset> (owned; a caller may take it and leave NULL) */
    char *downloads; /**< <dir>/downloads (owned), NULL when opened without it */
    int lock_fd;     /**< valid while `locked` */
    int locked;
} dd_cache_dataset;

/** Creates <root>/<name> (and its downloads/ when `downloads`) with mode
 * 0755 and takes the dataset's lock, waiting (and saying so) while another
 * process holds it. Close with dd_cache_close, also after a failure. */
dd_status dd_cache_open(const char *root, const char *name, int downloads, dd_cache_dataset *d);

/** Releases the lock and frees the paths; d is zeroed. NULL is a no-op. */
void dd_cache_close(dd_cache_dataset *d);

/** Takes an exclusive flock(2) on `path` (created 0644 if absent), waiting
 * while another process holds it and saying so at info level: "waiting for
 * another distill process that is <waiting> (<path>)". *fd holds the lock
 * until dd_cache_unlock. */
dd_status dd_cache_lock(const char *path, const char *waiting, int *fd);
/** Releases a lock from dd_cache_lock; fd < 0 is a no-op. */
void dd_cache_unlock(int fd);

/** The two per-file markers. */
typedef enum dd_cache_marker {
    DD_CACHE_VERIFIED, /**< .verified-<file>: the stamp of the verified download */
    DD_CACHE_UNPACKED, /**< .unpacked-<file>: how the file was installed */
} dd_cache_marker;

/** <dir>/.<kind>-<file>, malloc'ed; NULL when out of memory. */
char *dd_cache_marker_path(const char *dir, dd_cache_marker kind, const char *file);

/** 1 if the marker exists and holds exactly `content`. */
int dd_cache_marker_is(const dd_cache_dataset *d, dd_cache_marker kind, const char *file,
                       const char *content);

/** Removes a marker (absent is fine). */
void dd_cache_unmark(const dd_cache_dataset *d, dd_cache_marker kind, const char *file);

/** 1 if downloads/<file> is a regular file that the .verified marker
 * describes as it is now (same size and mtime). */
int dd_cache_download_verified(const dd_cache_dataset *d, const char *file);

/** 1 if downloads/<file> is a regular file (not followed through a link). */
int dd_cache_download_present(const dd_cache_dataset *d, const char *file);

/** Records that downloads/<file> passed verification, as it is now. */
dd_status dd_cache_mark_verified(const dd_cache_dataset *d, const char *file);

/** 1 if the .unpacked marker of `f` starts with `origin` ("cache " or
 * "local "), says "verified" when `need_verified`, and the file it installed
 * (for plain and .gz files) is still there. */
int dd_cache_installed(const dd_cache_dataset *d, const dd_manifest_file *f, const char *origin,
                       int need_verified);

/** Turns the checked file `src` into the dataset directory's files (plain:
 * hard link or copy; gz: decompressed; tar: extracted, never over the
 * cache's own names), then writes `marker` as its .unpacked marker. The old
 * marker is removed first, so an interrupted install is redone. */
dd_status dd_cache_install(const dd_cache_dataset *d, const dd_manifest *m,
                           const dd_manifest_file *f, const char *src, const char *marker);

/** Makes <dir>/<name> a symbolic link to `target` (replacing what is there). */
dd_status dd_cache_link(const dd_cache_dataset *d, const char *name, const char *target);

/** One row per manifest found in `manifest_dirs` (NULL-terminated; the
 * first of a name wins; one that does not parse is skipped with a warning),
 * with what `root` holds of it, sorted by name. *out is malloc'ed (caller
 * frees). */
dd_status dd_cache_list(char *const *manifest_dirs, const char *root, dd_dataset_status **out,
                        size_t *n);

#endif
