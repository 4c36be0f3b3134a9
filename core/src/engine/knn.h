/* distill (internal) — nearest-neighbour classification with a distilled
 * (or baseline) set as the reference: the paper's kNN comparison. */
#ifndef DD_KNN_H
#define DD_KNN_H

#include "base/export.h"

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "distill/status.h"
#include "engine/distilled.h"

typedef enum dd_knn_distance {
    DD_KNN_EUCLIDEAN = 0, /**< squared L2 on the normalised pixels */
    DD_KNN_COSINE = 1,    /**< 1 − cosine similarity */
} dd_knn_distance;

/** "euclidean" | "cosine". */
DD_INTERNAL dd_status dd_knn_distance_parse(const char *name, dd_knn_distance *out);
DD_INTERNAL const char *dd_knn_distance_name(dd_knn_distance d);

/** Classifies each of the n query images (d floats each) by the k nearest of
 * the n_ref reference images: majority vote, a tie broken by the smaller sum
 * of the tied classes' distances, then by the smaller class index. Equal
 * distances rank the earlier reference first. pred: n labels (out).
 * Deterministic whatever the thread count. */
DD_INTERNAL dd_status dd_knn_predict(const float *ref, const int32_t *ref_labels, int64_t n_ref,
                                     int n_classes, const float *query, int64_t n, size_t d, int k,
                                     dd_knn_distance dist, int32_t *pred);

/** Accuracy on `test` of kNN with every image of `set` (all steps) as the
 * reference, labelled by its hard label (argmax of its soft label when the
 * set learned labels). */
DD_INTERNAL dd_status dd_knn_accuracy(const dd_distilled *set, const dd_dataset *test, int k,
                                      dd_knn_distance dist, double *accuracy);

#endif
