/* distill (internal) — the distilled set: S steps of images (and optional
 * soft labels) with their E × S learned step sizes, and its files on disk
 * (IDX images and labels, lrs.csv, distilled.json; docs/output.md). */
#ifndef DD_DISTILLED_H
#define DD_DISTILLED_H

#include "base/export.h"

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Distilled (or baseline) training set: S steps of M = images_per_class ×
 * n_classes images; image j of every step has class j % n_classes. */
typedef struct dd_distilled {
    int steps, epochs, images_per_class, n_classes;
    int channels, height, width;
    int64_t per_step; /**< M */
    int n_outputs;    /**< soft-label width (model output dim) */
    float *images;    /**< S × M × C×H×W, normalised like the dataset (owned) */
    int32_t *labels;  /**< M hard labels, the same for every step (owned) */
    float *soft;      /**< S × M × n_outputs learned labels, or NULL (owned) */
    float *lrs;       /**< E × S step sizes, k = e·S + s (owned) */
    float mean[DD_MAX_CHANNELS], std[DD_MAX_CHANNELS];
} dd_distilled;

/** Allocates an empty set (zero images, labels j % n_classes, lrs `lr`,
 * mean 0 and std 1). Caller owns *out (dd_distilled_destroy). */
DD_INTERNAL dd_status dd_distilled_create(int steps, int epochs, int images_per_class,
                                          int n_classes, int channels, int height, int width,
                                          float lr, dd_distilled **out);
/** Frees the set; NULL is a no-op. */
DD_INTERNAL void dd_distilled_destroy(dd_distilled *d);
/** Deep copy. Caller owns *out. */
DD_INTERNAL dd_status dd_distilled_clone(const dd_distilled *d, dd_distilled **out);
/** Floats per image (C × H × W). */
DD_INTERNAL size_t dd_distilled_image_size(const dd_distilled *d);

/** Writes the set into the existing directory `dir`, each file atomically:
 * distilled-images.idx (float32 IDX, N×H×W for one channel or N×C×H×W; N =
 * steps × per_step in step order; values in the dataset's normalised units),
 * distilled-labels.idx (uint8 IDX; only for ≤ 256 classes),
 * [distilled-soft-labels.idx], lrs.csv, distilled.npz (the same as NumPy
 * arrays, docs/output.md) and distilled.json. `class_names`
 * (n_classes entries, borrowed) may be NULL: the classes are then named by
 * their index. */
DD_INTERNAL dd_status dd_distilled_save(const dd_distilled *set, const char *const *class_names,
                                        const char *dir);

/** Reads a set written by dd_distilled_save back from `dir` (images, labels,
 * the soft labels when distilled-soft-labels.idx is there, and step sizes;
 * mean/std are left at 0/1 for the caller to set). Caller
 * owns *out. DD_ERR_NOT_FOUND names a missing file, DD_ERR_PARSE a corrupt
 * or inconsistent one. */
DD_INTERNAL dd_status dd_distilled_load(const char *dir, dd_distilled **out);

/** Reads a set from an .npz in the distilled.npz layout (docs/output.md),
 * written by distill or by another tool: `images` float (N, C, H, W),
 * `labels` integer (N,) or float (N, K), `lrs` float (epochs, steps), all
 * > 0 and finite; optional `step` integer (N,) (the images of each step are
 * taken in file order; without it image i belongs to step i / (N/steps)),
 * and `mean`/`std` float (C,) (then *has_norm = 1; else mean 0, std 1).
 * Steps and epochs come from the shape of `lrs`, the class count from the
 * labels (largest hard label + 1, or K) and images_per_class is the images
 * per step over it, or 0 when they are not a multiple of it (for the caller
 * to report against the dataset); every step must hold the same hard labels
 * in the same order. Every error is DD_ERR_PARSE naming `path` and the
 * array (DD_ERR_NOT_FOUND / DD_ERR_ARCHIVE for the file itself). Caller
 * owns *out. has_norm may be NULL. */
DD_INTERNAL dd_status dd_distilled_load_npz(const char *path, dd_distilled **out, int *has_norm);

#ifdef __cplusplus
}
#endif
#endif
