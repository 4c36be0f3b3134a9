/* distill (internal) — source-dataset transforms that build a domain shift
 * for adaptation experiments (pretrain.transform, docs/plugins.md). */
#ifndef DD_TRANSFORM_H
#define DD_TRANSFORM_H

#include "base/export.h"

#include <stdint.h>

#include "distill/dataset.h"
#include "distill/status.h"

/** Source-dataset transforms (pretrain.transform). */
typedef enum dd_transform {
    DD_TRANSFORM_NONE = 0,
    DD_TRANSFORM_INVERT = 1,   /**< pixel → 1 − pixel (255 − p on stored bytes) */
    DD_TRANSFORM_ROTATE90 = 2, /**< quarter turn counter-clockwise (square images) */
    DD_TRANSFORM_HFLIP = 3,    /**< mirror left-right */
} dd_transform;

DD_INTERNAL dd_status dd_transform_parse(const char *name, dd_transform *out);
/** "none", "invert", "rotate90", "hflip". */
DD_INTERNAL const char *dd_transform_name(dd_transform t);
/** A transformed copy of `src`: only the images whose label is in
 * classes[0..n_keep) (all if n_keep = 0), at most max_images of them (0 = all;
 * a seeded random subset kept in order), each transformed. Labels, class
 * names, normalisation and the stored dtype are kept. Caller owns *out. */
DD_INTERNAL dd_status dd_dataset_transformed(const dd_dataset *src, dd_transform t,
                                             const int32_t *classes, int n_keep, int64_t max_images,
                                             uint64_t seed, dd_dataset **out);

#endif
