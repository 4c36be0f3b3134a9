/* distill — helpers shared by the dataset reader plugins (compiled into each
 * plugin; not part of libdistill): whole-file reads with .gz fallback, path
 * joining, text index files split into numbered lines, option access,
 * dataset allocation and a parallel per-image loop that keeps error messages. */
#ifndef DD_READER_COMMON_H
#define DD_READER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "distill/param.h"
#include "distill/status.h"

/** A whole file in memory. */
typedef struct rd_buf {
    uint8_t *data; /**< malloc'ed; one extra NUL byte after len */
    size_t len;
    char *path; /**< the file actually read (path or path.gz), malloc'ed */
} rd_buf;

/** Reads `path`; if it does not exist and `allow_gz`, reads and gunzips
 * `path`.gz instead. DD_ERR_NOT_FOUND names both candidates. */
dd_status rd_read_file(const char *path, int allow_gz, rd_buf *out);
void rd_buf_free(rd_buf *b);

/** malloc'ed printf; NULL (error set) on OOM. */
char *rd_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** 1 if `path` exists (any type). */
int rd_exists(const char *path);
/** 1 if `path` is a directory. */
int rd_is_dir(const char *path);
/** 1 if a relative path is safe to join under a root: not absolute, no ".."
 * component, no NUL/control characters. */
int rd_safe_relpath(const char *rel);

/** A text file split into its non-blank lines (trailing CR/space stripped,
 * the buffer is modified in place). */
typedef struct rd_lines {
    size_t n;
    char **text; /**< n pointers into the rd_buf */
    int *lineno; /**< 1-based line numbers */
} rd_lines;

dd_status rd_split_lines(rd_buf *b, rd_lines *out);
void rd_lines_free(rd_lines *l);

/** Option accessors that tolerate a NULL options object (then: the default). */
int64_t rd_opt_int(const dd_options *o, const char *key, int64_t def);
const char *rd_opt_str(const dd_options *o, const char *key, const char *def);

/** Creates "<dataset>/<split>" of `dtype` with the given shape, class names
 * (n_classes strings, copied) and normalization constants. */
dd_status rd_dataset_new(const char *dataset, const char *split, dd_dtype dtype, int64_t n,
                         int channels, int height, int width, int n_classes,
                         const char *const *class_names, const float *mean, const float *std,
                         dd_dataset **out);

/** Calls fn(ctx, i) for i in [0, n) on OpenMP threads. If any call fails,
 * the error with the smallest index is the one reported (so messages do not
 * depend on scheduling); remaining work is skipped. */
typedef dd_status (*rd_item_fn)(void *ctx, int64_t i);
dd_status rd_parallel_for(int64_t n, rd_item_fn fn, void *ctx);

/** Decodes the JPEG at `path`, optionally crops it to the rectangle
 * crop[0..3] = {x, y, w, h} (clamped to the image; an empty result is an
 * error), resizes to out_w×out_h (antialiased) and writes its RGB pixels as
 * planar CHW bytes to dst (a DD_DTYPE_U8 image). If expect_w/expect_h are
 * > 0 the decoded size must match them (the annotation's size); errors name
 * `path`. */
dd_status rd_load_jpeg(const char *path, const int *crop, int expect_w, int expect_h, int out_w,
                       int out_h, uint8_t *dst);

/** Interleaved HWC bytes → planar CHW bytes (dst must not overlap src). */
void rd_planar_u8(const uint8_t *hwc, int width, int height, int channels, uint8_t *chw);

/** Target size for readers whose native size varies (VOC, CUB): height/width
 * from the request, a missing one copies the other, both missing → def. */
void rd_target_size(const dd_dataset_request *req, int def, int *h, int *w);

#endif
