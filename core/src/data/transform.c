/* distill — source-dataset transforms (see transform.h). */
#define _POSIX_C_SOURCE 200809L
#include "data/transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/tensor.h"

/* ---- transforms ------------------------------------------------------------ */

static const char *const transform_names[] = {"none", "invert", "rotate90", "hflip"};

const char *dd_transform_name(dd_transform t) {
    return (unsigned)t < sizeof transform_names / sizeof *transform_names ? transform_names[t]
                                                                          : "?";
}

dd_status dd_transform_parse(const char *name, dd_transform *out) {
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, transform_names[i]) == 0) {
            *out = (dd_transform)i;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_INVALID,
                        "unknown transform '%s' (expected none|invert|rotate90|hflip)",
                        name ? name : "(null)");
}

/* Source pixel of output (y, x) under a geometric transform. */
static size_t source_offset(dd_transform t, int W, int y, int x) {
    switch (t) {
    case DD_TRANSFORM_ROTATE90:
        return (size_t)x * W + (size_t)(W - 1 - y);
    case DD_TRANSFORM_HFLIP:
        return (size_t)y * W + (size_t)(W - 1 - x);
    default:
        return (size_t)y * W + x;
    }
}

/* Image i of src, transformed, into image o of d (same dtype). */
static void transform_image(const dd_dataset *src, dd_transform t, int64_t i, dd_dataset *d,
                            int64_t o) {
    const int C = src->channels, H = src->height, W = src->width;
    const size_t hw = (size_t)H * W, D = (size_t)C * hw;
    for (int c = 0; c < C; c++) {
        if (src->dtype == DD_DTYPE_U8) {
            // Inverting a stored pixel p is 255 − p: its normalised value is
            // then what the image writer shows as the inverted picture.
            const uint8_t *ic = (const uint8_t *)src->pixels + (size_t)i * D + (size_t)c * hw;
            uint8_t *oc = (uint8_t *)d->pixels + (size_t)o * D + (size_t)c * hw;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    const uint8_t p = ic[source_offset(t, W, y, x)];
                    oc[(size_t)y * W + x] = t == DD_TRANSFORM_INVERT ? (uint8_t)(255 - p) : p;
                }
        } else {
            const float *ic = (const float *)src->pixels + (size_t)i * D + (size_t)c * hw;
            float *oc = (float *)d->pixels + (size_t)o * D + (size_t)c * hw;
            // Normalised value v of pixel p: v = (p − mean) / std; 1 − p maps v to
            // (1 − 2·mean)/std − v.
            const float inv_off = (1.f - 2.f * src->mean[c]) / src->std[c];
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    const float v = ic[source_offset(t, W, y, x)];
                    oc[(size_t)y * W + x] = t == DD_TRANSFORM_INVERT ? inv_off - v : v;
                }
        }
    }
}

dd_status dd_dataset_transformed(const dd_dataset *src, dd_transform t, const int32_t *classes,
                                 int n_keep, int64_t max_images, uint64_t seed, dd_dataset **out) {
    *out = NULL;
    if (t == DD_TRANSFORM_ROTATE90 && src->height != src->width)
        return dd_error_set(DD_ERR_INVALID, "transform rotate90 needs square images (%s is %d×%d)",
                            src->name ? src->name : "dataset", src->height, src->width);
    for (int i = 0; i < n_keep; i++)
        if (classes[i] < 0 || classes[i] >= src->n_classes)
            return dd_error_set(DD_ERR_INVALID, "pretrain.classes: class %d is outside [0, %d)",
                                (int)classes[i], src->n_classes);
    char *keep = malloc((size_t)(src->n > 0 ? src->n : 1));
    if (!keep) return dd_error_set(DD_ERR_NOMEM, "transform: out of memory");
    int64_t n = 0;
    for (int64_t i = 0; i < src->n; i++) {
        int k = n_keep == 0;
        for (int j = 0; !k && j < n_keep; j++)
            k = src->labels[i] == classes[j];
        keep[i] = (char)k;
        n += k;
    }
    if (max_images > 0 && n > max_images) {
        // A seeded random subset of the kept images, in their original order.
        int64_t *idx = malloc((size_t)n * sizeof *idx);
        if (!idx) {
            free(keep);
            return dd_error_set(DD_ERR_NOMEM, "transform: out of memory");
        }
        int64_t m = 0;
        for (int64_t i = 0; i < src->n; i++)
            if (keep[i]) idx[m++] = i;
        dd_rng r = dd_rng_make(seed, 1);
        dd_rng_shuffle(&r, idx, (size_t)n);
        for (int64_t j = max_images; j < n; j++)
            keep[idx[j]] = 0;
        n = max_images;
        free(idx);
    }
    if (n == 0) {
        free(keep);
        return dd_error_set(DD_ERR_INVALID, "transform: no image of %s is left (pretrain.classes)",
                            src->name ? src->name : "the dataset");
    }
    char name[256];
    snprintf(name, sizeof name, "%s+%s", src->name ? src->name : "dataset", transform_names[t]);
    dd_dataset *d;
    dd_status s = dd_dataset_create(name, src->dtype, n, src->channels, src->height, src->width,
                                    src->n_classes, &d);
    if (s != DD_OK) {
        free(keep);
        return s;
    }
    memcpy(d->mean, src->mean, sizeof d->mean);
    memcpy(d->std, src->std, sizeof d->std);
    for (int k = 0; s == DD_OK && k < src->n_classes; k++)
        if (src->class_names && src->class_names[k])
            s = dd_dataset_set_class_name(d, k, src->class_names[k]);
    int64_t o = 0;
    for (int64_t i = 0; s == DD_OK && i < src->n; i++) {
        if (!keep[i]) continue;
        transform_image(src, t, i, d, o);
        d->labels[o++] = src->labels[i];
    }
    free(keep);
    if (s != DD_OK) {
        dd_dataset_destroy(d);
        return s;
    }
    *out = d;
    return DD_OK;
}
