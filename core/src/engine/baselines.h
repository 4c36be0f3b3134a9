/* distill (internal) — the baselines a distilled set is compared with, each
 * with exactly as many images per step as the distilled set: random real
 * images, per-class average images, per-class k-means centroids. */
#ifndef DD_BASELINES_H
#define DD_BASELINES_H

#include "base/export.h"

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "distill/status.h"
#include "distill/tensor.h"
#include "engine/engine.h"

/** Which baseline. */
typedef enum dd_baseline_kind {
    DD_BASELINE_RANDOM = 0,  /**< random real images of the slot's class */
    DD_BASELINE_AVERAGE = 1, /**< the class's mean image in every slot */
    DD_BASELINE_KMEANS = 2,  /**< k-means++ / Lloyd centroids of the class, k = steps × ipc */
    /** The best of N random subsets on held-out training images (chosen by
     * the evaluation, core/src/engine/evaluate.c; not built here). */
    DD_BASELINE_BEST_OF_RANDOM = 3,
} dd_baseline_kind;

#define DD_BASELINE_COUNT 4

/** "random" | "average" | "kmeans" | "best_of_random". */
DD_INTERNAL dd_status dd_baseline_parse(const char *name, dd_baseline_kind *out);
DD_INTERNAL const char *dd_baseline_name(dd_baseline_kind k);

/** Builds a baseline set shaped like a distilled set (steps, epochs,
 * images_per_class, classes and image shape of `train`) with every step
 * size `lr`. Deterministic in `seed` (whatever nthreads: k-means' threads,
 * 0 = the calling thread's OpenMP default). Caller owns *out. */
DD_INTERNAL dd_status dd_baseline_build(dd_baseline_kind kind, const dd_dataset *train, int steps,
                                        int epochs, int images_per_class, float lr, uint64_t seed,
                                        int nthreads, dd_distilled **out);

/** k-means with k-means++ seeding then Lloyd iterations (at most max_iter,
 * stopping when no assignment changes) on n points of dimension d, on
 * nthreads threads (0: the calling thread's OpenMP default).
 * centroids: k × d (out); assign: n (out, may be NULL). An empty cluster is
 * re-seeded with the point farthest from its centroid. Deterministic in r,
 * whatever the thread count. */
DD_INTERNAL dd_status dd_kmeans(const float *x, int64_t n, size_t d, int k, int max_iter, dd_rng *r,
                                int nthreads, float *centroids, int32_t *assign, double *inertia);

#endif
