/* distill — allocation of in-memory datasets (distill/dataset.h), the object
 * every dataset reader returns. */
#define _GNU_SOURCE
#include "distill/dataset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset_map.h"

#include "distill/image.h"
#include "distill/limits.h"
#include "distill/tensor.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

size_t dd_dtype_size(dd_dtype dtype) {
    return dtype == DD_DTYPE_U8 ? 1 : dtype == DD_DTYPE_F32 ? sizeof(float) : 0;
}

/* Every dataset is allocated as one of these, so dd_dataset_destroy knows
 * whether its pixels are an allocation or a mapping of the decoded cache
 * without a field in the public struct. */
typedef struct dataset_impl {
    dd_dataset pub; // first: a dd_dataset * from dd_dataset_create is a dataset_impl *
    void *map;      // the mapped cache file holding the pixels, or NULL
    size_t map_len;
    int writable;     // a spill file a reader is still filling (mapped read-write)
    int spill_fd;     // its descriptor while writable, else -1
    char *spill_path; // its name until committed (removed on destroy)
    size_t spill_off; // where its pixels start
} dataset_impl;

/* The spill requested on this thread (dd_dataset_spill_begin), if any. The
 * reader ABI has no allocator in its request, so the decoded cache scopes
 * this to one reader call on the calling thread. */
static _Thread_local const dd_dataset_spill *spill_now;

void dd_dataset_spill_begin(const dd_dataset_spill *s) {
    spill_now = s;
}

void dd_dataset_spill_end(void) {
    spill_now = NULL;
}

/* Pixels of `bytes` in a new file under the spill directory, mapped
 * read-write at the offset the cache format wants. 0 when the spill cannot
 * be made (the caller allocates in RAM instead). */
static int spill_alloc(dataset_impl *impl, const dd_dataset_spill *sp, size_t bytes) {
    const dd_dataset *d = &impl->pub;
    const size_t off = sp->pixel_offset(d->n, d->n_classes);
    const size_t len = off + (bytes > 0 ? bytes : 1);
    size_t plen = strlen(sp->dir) + 32;
    char *path = malloc(plen);
    if (!path) return 0;
    snprintf(path, plen, "%s/.spill.XXXXXX", sp->dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        free(path);
        return 0;
    }
    // Blocks reserved now: a full disk is an error here, not a SIGBUS when
    // the reader writes into a hole of the mapping.
    void *map = MAP_FAILED;
    if (fchmod(fd, 0644) == 0 && posix_fallocate(fd, 0, (off_t)len) == 0)
        map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        unlink(path);
        free(path);
        return 0;
    }
    impl->map = map;
    impl->map_len = len;
    impl->writable = 1;
    impl->spill_fd = fd;
    impl->spill_path = path;
    impl->spill_off = off;
    impl->pub.pixels = (uint8_t *)map + off;
    return 1;
}

/* A dataset of that shape; pixels allocated (zeroed, checked against
 * dataset.max_bytes) when `alloc_pixels`, else left NULL for a mapping. */
static dd_status create(const char *name, dd_dtype dtype, int64_t n, int channels, int height,
                        int width, int n_classes, int alloc_pixels, dd_dataset **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_dataset_create: NULL argument");
    *out = NULL;
    const char *shown = name ? name : "dataset";
    const size_t es = dd_dtype_size(dtype);
    if (es == 0)
        return dd_error_set(DD_ERR_INVALID, "dataset %s: unknown dtype %d (expected u8 or f32)",
                            shown, (int)dtype);
    if (n < 0 || channels < 1 || channels > DD_MAX_CHANNELS || height < 1 || width < 1 ||
        n_classes < 1)
        return dd_error_set(
            DD_ERR_INVALID, "dataset %s: bad shape n=%lld %dx%dx%d, %d classes (channels 1..%d)",
            shown, (long long)n, channels, height, width, n_classes, DD_MAX_CHANNELS);
    size_t per = (size_t)channels * (size_t)height * (size_t)width;
    if ((uint64_t)height * (uint64_t)width > SIZE_MAX / DD_MAX_CHANNELS ||
        (n > 0 && (uint64_t)n > SIZE_MAX / sizeof(float) / per))
        return dd_error_set(DD_ERR_NOMEM, "dataset %s: %lld images of %zu values overflow", shown,
                            (long long)n, per);
    // A mapped set is paged in and out by the kernel: the RAM budget does not
    // apply to it, nor to one spilled to a file while it is decoded.
    const dd_dataset_spill *sp = alloc_pixels ? spill_now : NULL;
    const double want = (double)n * channels * height * width * (double)es;
    if (sp && want < (double)sp->min_bytes) sp = NULL;
    if (alloc_pixels && !sp) DD_TRY(dd_limits_check_dataset(shown, n, channels, height, width, es));
    dataset_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return dd_error_set(DD_ERR_NOMEM, "dataset %s: out of memory", shown);
    dd_dataset *d = &impl->pub;
    d->n = n;
    d->channels = channels;
    d->height = height;
    d->width = width;
    d->n_classes = n_classes;
    d->dtype = dtype;
    d->name = dup_str(shown);
    impl->spill_fd = -1;
    const size_t bytes = (size_t)n * per * es;
    if (sp && !spill_alloc(impl, sp, bytes)) {
        // no spill file after all: an ordinary split, held to the RAM budget
        dd_status ls = dd_limits_check_dataset(shown, n, channels, height, width, es);
        if (ls != DD_OK) {
            free(d->name);
            free(impl);
            return ls;
        }
    }
    if (alloc_pixels && !impl->map) d->pixels = dd_alloc_aligned(bytes > 0 ? bytes : 1); // zeroed
    d->labels = calloc(n > 0 ? (size_t)n : 1, sizeof(int32_t));
    d->class_names = calloc((size_t)n_classes, sizeof(char *));
    int ok = d->name && (d->pixels || !alloc_pixels) && d->labels && d->class_names;
    for (int k = 0; ok && k < n_classes; k++) {
        char buf[24];
        snprintf(buf, sizeof buf, "%d", k);
        ok = (d->class_names[k] = dup_str(buf)) != NULL;
    }
    if (!ok) {
        dd_dataset_destroy(d);
        return dd_error_set(DD_ERR_NOMEM,
                            "dataset %s: out of memory for %lld images of %zu values (%zu bytes)",
                            shown, (long long)n, per, bytes);
    }
    for (int c = 0; c < DD_MAX_CHANNELS; c++)
        d->std[c] = 1.0f;
    *out = d;
    return DD_OK;
}

dd_status dd_dataset_create(const char *name, dd_dtype dtype, int64_t n, int channels, int height,
                            int width, int n_classes, dd_dataset **out) {
    return create(name, dtype, n, channels, height, width, n_classes, 1, out);
}

dd_status dd_dataset_create_mapped(const char *name, dd_dtype dtype, int64_t n, int channels,
                                   int height, int width, int n_classes, void *map, size_t map_len,
                                   size_t pixel_offset, dd_dataset **out) {
    if (!map || !out)
        return dd_error_set(DD_ERR_INVALID, "dd_dataset_create_mapped: NULL argument");
    DD_TRY(create(name, dtype, n, channels, height, width, n_classes, 0, out));
    if (pixel_offset + dd_dataset_bytes(*out) > map_len) {
        dd_dataset_destroy(*out);
        *out = NULL;
        return dd_error_set(DD_ERR_INVALID, "dataset %s: pixels do not fit the mapping",
                            name ? name : "dataset");
    }
    dataset_impl *impl = (dataset_impl *)*out;
    impl->map = map;
    impl->map_len = map_len;
    impl->pub.pixels = (uint8_t *)map + pixel_offset;
    return DD_OK;
}

int dd_dataset_is_mapped(const dd_dataset *d) {
    return d && ((const dataset_impl *)d)->map != NULL && !((const dataset_impl *)d)->writable;
}

int dd_dataset_spill_file(const dd_dataset *d, int *fd, const char **path, size_t *pixel_offset) {
    const dataset_impl *impl = (const dataset_impl *)d;
    if (!d || !impl->writable) return 0;
    *fd = impl->spill_fd;
    *path = impl->spill_path;
    *pixel_offset = impl->spill_off;
    return 1;
}

void dd_dataset_spill_committed(dd_dataset *d) {
    dataset_impl *impl = (dataset_impl *)d;
    if (!d || !impl->writable) return;
    (void)mprotect(impl->map, impl->map_len, PROT_READ);
    impl->writable = 0;
    close(impl->spill_fd);
    impl->spill_fd = -1;
    free(impl->spill_path);
    impl->spill_path = NULL;
}

void dd_dataset_destroy(dd_dataset *d) {
    if (!d) return;
    dataset_impl *impl = (dataset_impl *)d;
    for (int k = 0; d->class_names && k < d->n_classes; k++)
        free(d->class_names[k]);
    free(d->class_names);
    free(d->labels);
    if (impl->map)
        munmap(impl->map, impl->map_len);
    else
        dd_free(d->pixels);
    if (impl->spill_fd >= 0) close(impl->spill_fd);
    if (impl->spill_path) unlink(impl->spill_path); // never committed: garbage
    free(impl->spill_path);
    free(d->name);
    free(impl);
}

dd_status dd_dataset_set_class_name(dd_dataset *d, int k, const char *name) {
    if (!d || !name)
        return dd_error_set(DD_ERR_INVALID, "dd_dataset_set_class_name: NULL argument");
    if (k < 0 || k >= d->n_classes)
        return dd_error_set(DD_ERR_INVALID, "dataset %s: class %d not in 0..%d", d->name, k,
                            d->n_classes - 1);
    char *s = dup_str(name);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "dataset %s: out of memory", d->name);
    free(d->class_names[k]);
    d->class_names[k] = s;
    return DD_OK;
}

size_t dd_dataset_image_size(const dd_dataset *d) {
    return d ? (size_t)d->channels * (size_t)d->height * (size_t)d->width : 0;
}

size_t dd_dataset_bytes(const dd_dataset *d) {
    return d ? (size_t)d->n * dd_dataset_image_size(d) * dd_dtype_size(d->dtype) : 0;
}

uint8_t *dd_dataset_u8(dd_dataset *d, int64_t i) {
    if (!d || d->dtype != DD_DTYPE_U8 || i < 0 || i >= d->n || dd_dataset_is_mapped(d)) return NULL;
    return (uint8_t *)d->pixels + (size_t)i * dd_dataset_image_size(d);
}

float *dd_dataset_f32(dd_dataset *d, int64_t i) {
    if (!d || d->dtype != DD_DTYPE_F32 || i < 0 || i >= d->n || dd_dataset_is_mapped(d))
        return NULL;
    return (float *)d->pixels + (size_t)i * dd_dataset_image_size(d);
}

/* ---- the accessor: normalised float32 images ------------------------------ */

/* The normalised value of every byte, per channel: dd_image_normalize itself
 * applied to the 256 possible pixels, so a gathered value is the very float
 * the old decode-to-float path stored (same expression, same contraction). */
typedef struct norm_lut {
    float v[DD_MAX_CHANNELS][256];
} norm_lut;

static void lut_make(const dd_dataset *d, norm_lut *t) {
    uint8_t all[256];
    for (int p = 0; p < 256; p++)
        all[p] = (uint8_t)p;
    for (int c = 0; c < d->channels; c++)
        dd_image_normalize(all, 256, 1, 1, &d->mean[c], &d->std[c], t->v[c]);
}

static void copy_image(const dd_dataset *d, const norm_lut *t, int64_t i, float *dst) {
    const size_t D = dd_dataset_image_size(d);
    if (d->dtype == DD_DTYPE_F32) {
        memcpy(dst, (const float *)d->pixels + (size_t)i * D, D * sizeof(float));
        return;
    }
    const size_t hw = (size_t)d->height * (size_t)d->width;
    const uint8_t *src = (const uint8_t *)d->pixels + (size_t)i * D;
    for (int c = 0; c < d->channels; c++) {
        const float *lut = t->v[c];
        const uint8_t *s = src + (size_t)c * hw;
        float *o = dst + (size_t)c * hw;
        for (size_t p = 0; p < hw; p++)
            o[p] = lut[s[p]];
    }
}

/* Below this many values a gather runs on the calling thread. */
#define GATHER_PARALLEL_MIN (1 << 18)

static dd_status gather(const dd_dataset *d, const int64_t *idx, int64_t first, int64_t n,
                        float *out) {
    if (!d || n < 0 || (n > 0 && !out) || (!idx && (first < 0 || first > d->n - n)))
        return dd_error_set(DD_ERR_INVALID, "dataset %s: bad gather of %lld images from %lld",
                            d && d->name ? d->name : "?", (long long)n, (long long)first);
    for (int64_t j = 0; idx && j < n; j++)
        if (idx[j] < 0 || idx[j] >= d->n)
            return dd_error_set(DD_ERR_INVALID, "dataset %s: image %lld is not in 0..%lld",
                                d->name ? d->name : "?", (long long)idx[j], (long long)d->n - 1);
    norm_lut t;
    if (d->dtype == DD_DTYPE_U8) lut_make(d, &t);
    const size_t D = dd_dataset_image_size(d);
#pragma omp parallel for schedule(static) if ((size_t)n * D >= GATHER_PARALLEL_MIN)
    for (int64_t j = 0; j < n; j++)
        copy_image(d, &t, idx ? idx[j] : first + j, out + (size_t)j * D);
    return DD_OK;
}

dd_status dd_dataset_gather(const dd_dataset *d, const int64_t *idx, int64_t n, float *out) {
    if (n > 0 && !idx) return dd_error_set(DD_ERR_INVALID, "dd_dataset_gather: NULL indices");
    return gather(d, idx, 0, n, out);
}

dd_status dd_dataset_gather_range(const dd_dataset *d, int64_t first, int64_t n, float *out) {
    return gather(d, NULL, first, n, out);
}

dd_status dd_dataset_subset(const dd_dataset *src, const int64_t *idx, int64_t n, const char *name,
                            dd_dataset **out) {
    if (!src || !out || (n > 0 && !idx))
        return dd_error_set(DD_ERR_INVALID, "dd_dataset_subset: NULL argument");
    *out = NULL;
    for (int64_t j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= src->n)
            return dd_error_set(DD_ERR_INVALID, "dataset %s: image %lld is not in 0..%lld",
                                src->name ? src->name : "?", (long long)idx[j],
                                (long long)src->n - 1);
    dd_dataset *d;
    DD_TRY(dd_dataset_create(name ? name : src->name, src->dtype, n, src->channels, src->height,
                             src->width, src->n_classes, &d));
    dd_status s = DD_OK;
    for (int k = 0; s == DD_OK && src->class_names && k < src->n_classes; k++)
        if (src->class_names[k]) s = dd_dataset_set_class_name(d, k, src->class_names[k]);
    if (s != DD_OK) {
        dd_dataset_destroy(d);
        return s;
    }
    const size_t bytes = dd_dataset_image_size(src) * dd_dtype_size(src->dtype);
    for (int64_t j = 0; j < n; j++) {
        memcpy((uint8_t *)d->pixels + (size_t)j * bytes,
               (const uint8_t *)src->pixels + (size_t)idx[j] * bytes, bytes);
        d->labels[j] = src->labels[idx[j]];
    }
    memcpy(d->mean, src->mean, sizeof d->mean);
    memcpy(d->std, src->std, sizeof d->std);
    *out = d;
    return DD_OK;
}
