/* distill — objective plugins: the outer loss on real data, the metrics a
 * run reports, and the initialisation the objective needs. */
#ifndef DISTILL_OBJECTIVE_H
#define DISTILL_OBJECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "distill/export.h"
#include "distill/param.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What an objective needs from the engine. */
enum {
    DD_OBJECTIVE_NEEDS_PRETRAINED = 1u << 0, /**< only pretrained-* init modes make sense */
    /** outer_loss (and outer_loss_ref) is the mean over the batch of a term
     * that depends on each sample alone: the engine may then evaluate a real
     * batch in slices (loss, ∂loss/∂logits and gradients weighted by slice
     * size) without seeing all of its logits at once. Without it, the engine
     * gathers the whole batch's logits before calling outer_loss. */
    DD_OBJECTIVE_MEAN_LOSS = 1u << 1,
};

typedef struct dd_objective_info {
    size_t struct_size;
    int n_classes;
    const char *const *class_names; /**< n_classes names */
} dd_objective_info;

/** Which statistic of a metric a report key holds. "Before" is the
 * evaluation networks' θ0 (no distilled step), "after" is the same networks
 * after the distilled steps (or after a baseline's steps). */
typedef enum dd_report_stat {
    DD_REPORT_BEFORE_MEAN = 0,
    DD_REPORT_BEFORE_STD = 1,
    DD_REPORT_AFTER_MEAN = 2,
    DD_REPORT_AFTER_STD = 3,
} dd_report_stat;

/** One key of an objective's own metrics.json section. Arrays end with an
 * entry whose key is NULL. */
typedef struct dd_objective_report_key {
    const char *key;     /**< JSON key, e.g. "success_mean" */
    int metric;          /**< index into metric_names */
    dd_report_stat stat; /**< which statistic over the evaluation networks */
} dd_objective_report_key;

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
    unsigned flags;                /**< DD_OBJECTIVE_* */
    const char *default_init_mode; /**< optional, e.g. "pretrained-random" */
    void *reserved[4];

    /* Appended members: the core reads one only when struct_size covers it
     * (DD_OBJECTIVE_HAS), so plugins built before they existed keep working. */

    /** Name of the objective's own section of metrics.json, e.g. "attack"
     * (optional). It holds report_keys and "nets"; values are fractions in
     * [0, 1] when the metric is a fraction. */
    const char *report_section;
    /** Keys of report_section (optional; NULL-key-terminated). */
    const dd_objective_report_key *report_keys;
    /** Names of the objective's own baselines, NULL-terminated (optional).
     * They are evaluated beside the core's (random, average, kmeans) with
     * optimised step sizes and reported under these names. */
    const char *const *baseline_names;
    /** Fills baseline `index` (of baseline_names): `steps` steps of
     * `per_step` images each, written to images (steps × per_step × the
     * dataset's image size, normalised like `train`) and one hard label per
     * slot of a step to labels (per_step; the same for every step). The core
     * owns both arrays. Deterministic in `seed`. (required with
     * baseline_names) */
    dd_status (*build_baseline)(void *state, int index, const dd_dataset *train, int steps,
                                int64_t per_step, uint64_t seed, float *images, int32_t *labels);
    /** Outer loss that also sees the logits `logits0` of the same batch at
     * θ0, the network before the distilled steps (optional). When set, the
     * engine calls it instead of outer_loss wherever θ0 is known — during
     * distillation and the step-size search of the evaluation — for
     * objectives that judge the stepped network against the one it started
     * from (e.g. "keep the other classes' predictions"). logits0 is a
     * constant: dlogits is ∂loss/∂logits only. outer_loss stays required
     * and is what test-set losses are reported with. */
    dd_status (*outer_loss_ref)(void *state, const float *logits, const float *logits0,
                                const int32_t *labels, int64_t batch, int n_classes, double *loss,
                                float *dlogits);
} dd_objective_ops;

/** log Σ_k exp z_k over the n logits of one sample, in double, stable for
 * any range of z (the max is subtracted first). For outer losses built on
 * the softmax. */
DD_API double dd_log_sum_exp(const float *z, int n);

/** Index of the largest of the n logits of one sample (the first on ties):
 * the predicted class. */
DD_API int dd_argmax(const float *z, int n);

/** Nonzero if `ops` (a dd_objective_ops pointer) was built with `member`. */
#define DD_OBJECTIVE_HAS(ops, member)                                                              \
    ((ops)->struct_size >= offsetof(dd_objective_ops, member) + sizeof((ops)->member))

#ifdef __cplusplus
}
#endif
#endif
