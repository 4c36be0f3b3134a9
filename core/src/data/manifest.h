/* distill (internal) — dataset manifests (datasets/<name>.yaml): the files a
 * dataset consists of, where to download them, their checksums and archive
 * kinds. The format is documented in docs/datasets.md. */
#ifndef DD_MANIFEST_H
#define DD_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"
#include "base/hash.h"

/** How a downloaded file becomes files in the dataset directory. */
typedef enum dd_archive_kind {
    DD_ARCHIVE_NONE = 0, /**< used as is */
    DD_ARCHIVE_GZ,       /**< one gzip'ed file, decompressed to its name minus ".gz" */
    DD_ARCHIVE_TAR,      /**< a tar, extracted */
    DD_ARCHIVE_TAR_GZ,   /**< a gzip'ed tar (tar.gz, tgz), extracted */
} dd_archive_kind;

/** One downloadable file of a dataset. */
typedef struct dd_manifest_file {
    char *name;    /**< file name in the cache (no '/') */
    uint64_t size; /**< declared download size in bytes, 0 = unknown (informational) */
    dd_archive_kind archive;
    int has_sha256, has_md5, has_payload_sha256;
    uint8_t sha256[DD_SHA256_SIZE];         /**< of the download */
    uint8_t md5[DD_MD5_SIZE];               /**< of the download */
    uint8_t payload_sha256[DD_SHA256_SIZE]; /**< of the decompressed payload (gz only) */
    char **mirrors; /**< file-specific URLs: full URLs, or bases ending in '/' */
    size_t n_mirrors;
} dd_manifest_file;

/** A named split and the files it uses (informational for readers). */
typedef struct dd_manifest_split {
    char *name;
    char **files;
    size_t n_files;
} dd_manifest_split;

/** A parsed manifest. Everything is owned by the manifest. */
typedef struct dd_manifest {
    char *origin;            /**< path (or label) it was parsed from */
    char *name;              /**< dataset name, equal to the file's basename */
    char *description;       /**< "" if absent */
    char *reader;            /**< dataset plugin that reads it */
    char *license;           /**< "" if absent */
    char *homepage;          /**< "" if absent */
    uint64_t unpacked_limit; /**< cap on the bytes extracted from any one archive */
    char **mirrors;          /**< dataset-wide base URLs, the file name is appended */
    size_t n_mirrors;
    dd_manifest_file *files;
    size_t n_files;
    dd_manifest_split *splits;
    size_t n_splits;
    /** `input: {channels, height, width, classes}`: the images' native shape
     * and class count, so a pipeline's network can be checked when it is
     * validated; all 0 if the manifest does not say. */
    int input_channels, input_height, input_width, input_classes;
} dd_manifest;

/** Parses manifest text; `origin` names it in error messages
 * ("origin:line:col: ..."). Caller owns *out (dd_manifest_destroy). */
DD_INTERNAL dd_status dd_manifest_parse(const char *text, size_t len, const char *origin,
                                        dd_manifest **out);

/** Reads and parses a manifest file; its `name` must equal the file's
 * basename without ".yaml". Caller owns *out. */
DD_INTERNAL dd_status dd_manifest_load(const char *path, dd_manifest **out);

DD_INTERNAL void dd_manifest_destroy(dd_manifest *m);

/** The directories searched for manifests, in order: `explicit_dir` (may be
 * NULL), each entry of $DISTILL_MANIFEST_PATH (':'-separated), the source
 * tree's datasets/ (build-tree library only), the datasets/ of the prefix
 * the running library is installed in, the configured install prefix's. *dirs is a
 * NULL-terminated malloc'ed array of malloc'ed strings (dd_manifest_dirs_free). */
DD_INTERNAL dd_status dd_manifest_dirs(const char *explicit_dir, char ***dirs);
DD_INTERNAL void dd_manifest_dirs_free(char **dirs);

/** Finds and loads the manifest of dataset `name` from the first search dir
 * that has <name>.yaml. DD_ERR_NOT_FOUND lists the dirs searched. */
DD_INTERNAL dd_status dd_manifest_find(const char *name, const char *explicit_dir,
                                       dd_manifest **out);

/** "none", "gz", "tar", "tar.gz". */
DD_INTERNAL const char *dd_archive_kind_str(dd_archive_kind k);

/** The file that manifest file `f` becomes in the dataset directory for
 * DD_ARCHIVE_NONE and DD_ARCHIVE_GZ ("x.gz" -> "x"); NULL for tars.
 * Returns a pointer into a caller buffer of `cap` bytes. */
DD_INTERNAL const char *dd_manifest_file_output(const dd_manifest_file *f, char *buf, size_t cap);

/** Joins a mirror and a file name: a base (a dataset-wide mirror, or a
 * file mirror ending in '/') gets `file` appended (a '/' is inserted if
 * missing), a full URL is used as is. Caller frees the result. */
DD_INTERNAL dd_status dd_manifest_join_url(const char *mirror, int is_base, const char *file,
                                           char **out);

/** The URLs for `f` in order: the file's own mirrors, then the dataset-wide
 * ones. *urls is NULL-terminated, malloc'ed (free with dd_manifest_dirs_free). */
DD_INTERNAL dd_status dd_manifest_urls(const dd_manifest *m, const dd_manifest_file *f,
                                       char ***urls);

#endif
