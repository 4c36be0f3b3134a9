/* distill — objective plugins: the outer loss on real data, the metrics a
 * run reports, and the initialisation the objective needs. */
#ifndef DISTILL_OBJECTIVE_H
#define DISTILL_OBJECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/param.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What an objective needs from the engine. */
enum {
    DD_OBJECTIVE_NEEDS_PRETRAINED = 1u << 0, /**< only pretrained-* init modes make sense */
};

typedef struct dd_objective_info {
    size_t struct_size;
    int n_classes;
    const char *const *class_names; /**< n_classes names */
} dd_objective_info;

typedef struct dd_objective_ops {
    size_t struct_size;
    /** Creates the objective's state from its options. (required) */
    dd_status (*create)(const dd_options *opts, const dd_objective_info *info, void **state);
    /** Frees state; NULL is a no-op. (optional) */
    void (*destroy)(void *state);
    /** Outer loss on a real batch: logits B×K and true labels. Writes the
     * loss (mean over the batch) and dlogits = ∂loss/∂logits (B×K). (required) */
    dd_status (*outer_loss)(void *state, const float *logits, const int32_t *labels, int64_t batch,
                            int n_classes, double *loss, float *dlogits);
    /** Metric names, NULL-terminated, e.g. {"accuracy", NULL}. (required) */
    const char *const *metric_names;
    /** Accumulates each metric over a batch as num[i] / den[i]: adds to
     * num[i] and den[i] (arrays of the metric count). (required) */
    dd_status (*metrics)(void *state, const float *logits, const int32_t *labels, int64_t batch,
                         int n_classes, double *num, double *den);
    unsigned flags;              /**< DD_OBJECTIVE_* */
    const char *default_init_mode; /**< optional, e.g. "pretrained-random" */
    void *reserved[4];
} dd_objective_ops;

#ifdef __cplusplus
}
#endif
#endif
