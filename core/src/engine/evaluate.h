/* distill (internal) — evaluation: train fresh networks on a distilled (or
 * baseline) set with its step sizes, in the init mode of the distillation,
 * and measure the objective's metric on the test split; optimise the step
 * sizes of a baseline set (the paper's "optimized lr"). */
#ifndef DD_EVALUATE_H
#define DD_EVALUATE_H

#include "base/export.h"

#include <stdint.h>

#include "distill/dataset.h"
#include "distill/host.h"
#include "distill/model.h"
#include "distill/status.h"
#include "engine/baselines.h"
#include "engine/engine.h"
#include "engine/knn.h"

#define DD_EVAL_MAX_METRICS 8 /**< metrics kept per row (the objective's first ones) */
#define DD_EVAL_MAX_EXTRA 4   /**< objective-specific baselines per report */

/** Mean ± std (population std over nets; 0 for a single net) of the
 * objective's first metric, plus the mean loss. */
typedef struct dd_eval_stats {
    double mean, std;
    double loss;
    int nets;
    int n_metrics; /**< every metric of the objective (at most DD_EVAL_MAX_METRICS): */
    double metric_mean[DD_EVAL_MAX_METRICS], metric_std[DD_EVAL_MAX_METRICS];
} dd_eval_stats;

typedef struct dd_eval_config {
    dd_init_mode init_mode;
    const char *init_scheme;
    double init_gain;
    uint64_t seed;
    int nets;            /**< random init: held-out θ0 samples (fixed init: 1) */
    const float *theta0; /**< fixed init: the distillation's θ0 (NULL: re-derived from seed) */
    int64_t test_batch;  /**< test images per forward call (default 1000) */
    /** Pretrained modes: the evaluation networks (held-out pool members;
     * pretrained-fixed uses theta0, else member 0). Borrowed. */
    const float *const *theta_pool;
    size_t theta_pool_size;
    /** Threads of the model's passes (0: the model's own setting); distilled
     * batches of at most 128 images train on one. The model's setting is
     * restored before returning. */
    int nthreads;
} dd_eval_config;

DD_INTERNAL void dd_eval_config_defaults(dd_eval_config *c);

/** Trains θ in place for epochs × steps GD steps on `set` with step sizes
 * `lrs` (E × S; NULL: set->lrs). */
DD_INTERNAL dd_status dd_evaluate_train(dd_model *m, const dd_distilled *set, const float *lrs,
                                        float *theta);

/** Every metric of the objective (metrics[0 .. n_metrics)) and the loss of θ
 * on the whole test split. */
DD_INTERNAL dd_status dd_evaluate_test_all(dd_model *m, const dd_objective_handle *obj,
                                           const dd_dataset *test, const float *theta,
                                           int64_t test_batch, double *metrics, double *loss);

/** Metric (first of the objective) and loss of θ on the whole test split. */
DD_INTERNAL dd_status dd_evaluate_test(dd_model *m, const dd_objective_handle *obj,
                                       const dd_dataset *test, const float *theta,
                                       int64_t test_batch, double *metric, double *loss);

/** Trains cfg->nets fresh networks (or the one fixed θ0) on `set` with
 * `lrs` and tests them. set == NULL measures the untrained networks. */
DD_INTERNAL dd_status dd_evaluate_set(dd_model *m, const dd_objective_handle *obj,
                                      const dd_dataset *test, const dd_distilled *set,
                                      const float *lrs, const dd_eval_config *cfg,
                                      dd_eval_stats *out);

/** Learns the step sizes of a fixed set (pixels frozen) with the engine
 * for `iterations` outer iterations; writes them into set->lrs. `distill` is
 * the distillation's configuration (init mode, batch, Adam, seed). */
DD_INTERNAL dd_status dd_evaluate_optimize_lrs(dd_model *m, const dd_objective_handle *obj,
                                               const dd_dataset *train,
                                               const dd_distill_config *distill, int64_t iterations,
                                               dd_distilled *set);

/** Settings of the evaluate stage (pipeline section `evaluate`). */
typedef struct dd_eval_settings {
    int nets; /**< held-out inits for random init mode */
    int n_baselines;
    dd_baseline_kind baselines[DD_BASELINE_COUNT];
    double fixed_lr;   /**< step size of the "distilled data, fixed lr" row */
    int64_t lr_search; /**< lr-optimisation iterations for each baseline */
    int64_t batch;     /**< test batch */
    int progress;
    /** Pretrained init modes: the held-out pool members the rows are measured
     * on (at most `nets` of them). Borrowed. */
    const float *const *eval_pool;
    size_t eval_pool_size;
    /** > 0: also train every evaluation network on the whole real training
     * set for this many epochs (SGD, momentum 0.9, cosine lr) as a reference
     * row ("full_training"). */
    int full_training_epochs;
    double full_training_lr;
    int64_t full_training_batch;
    /** kNN classification of the test set with each set as the reference. */
    int knn;
    int knn_k;
    dd_knn_distance knn_distance;
    /** best_of_random: subsets tried, held-out training images they are
     * compared on. */
    int best_of_random_n;
    int64_t best_of_random_holdout;
} dd_eval_settings;

DD_INTERNAL void dd_eval_settings_defaults(dd_eval_settings *s);
/** Reads nets, baselines, fixed_lr, lr_search, batch from the `evaluate` section. */
DD_INTERNAL dd_status dd_eval_settings_from_options(const dd_options *o, dd_eval_settings *s);

typedef struct dd_eval_baseline {
    dd_baseline_kind kind;
    dd_eval_stats stats;
    dd_eval_stats stats_init_lr; /**< the same set with the initial (unoptimised) step size */
    float *lrs;                  /**< its optimised step sizes, E × S (owned) */
    dd_distilled *set;           /**< the baseline images (owned) */
    const char *name;            /**< an objective's own baseline: its name (borrowed); else NULL */
    double knn;                  /**< kNN test accuracy with this set as reference (if has_knn) */
    /** The first metric on the test split after each inner step, mean over
     * the row's networks: curve_len values, [0] before any step, [k] after
     * step k (see dd_eval_report.curve_len); NULL when not measured. Owned. */
    double *curve;
} dd_eval_baseline;

/** Everything the evaluate stage measured. */
typedef struct dd_eval_report {
    const char *metric; /**< the objective's first metric name (borrowed) */
    dd_init_mode init_mode;
    int nets; /**< networks per row */
    int has_distilled;
    dd_eval_stats distilled, fixed_lr, untrained;
    double fixed_lr_value;
    int n_baselines;
    dd_eval_baseline baselines[DD_BASELINE_COUNT];
    int best_of_random_n;           /**< subsets tried by best_of_random */
    int64_t best_of_random_holdout; /**< held-out training images it chose on */
    int64_t lr_search;
    double seconds;
    /* The objective's metrics and report section (borrowed from its ops). */
    const char *const *metric_names;
    int n_metrics;
    const char *report_section;
    const dd_objective_report_key *report_keys;
    int n_extra; /**< the objective's own baselines */
    dd_eval_baseline extra[DD_EVAL_MAX_EXTRA];
    int has_full_training; /**< reference: full training set */
    dd_eval_stats full_training;
    int full_training_epochs;
    int has_knn; /**< kNN rows: the distilled set's and each core baseline's accuracy */
    int knn_k;
    dd_knn_distance knn_distance;
    double knn_distilled;
    /** Step curves (the accuracy-versus-steps view): K + 1 points for
     * K = steps × epochs, or 0 when not measured. The distilled set's curve
     * (with its learned step sizes) is here, each baseline's in its row. */
    int curve_len;
    double *curve_distilled; /**< owned; NULL without a distilled set */
    /** Per-class accuracy (argmax = label, fraction of the class's test
     * images) of the untrained networks (before) and of the networks trained
     * on the distilled set (after), mean over the networks; n_classes each,
     * or n_classes = 0 when not measured. Owned. */
    int n_classes;
    double *class_before, *class_after;
} dd_eval_report;

/** The evaluate stage: distilled set with its learned step sizes and with
 * a fixed step size, the untrained networks, and each baseline with
 * optimised step sizes — all with the same steps, epochs and image count.
 * `set` may be NULL (baselines only). theta0: the fixed-init θ0 (NULL:
 * re-derived from the seed). Release *out with dd_eval_report_release. */
DD_INTERNAL dd_status dd_evaluate_run(dd_model *m, const dd_objective_handle *obj,
                                      const dd_dataset *train, const dd_dataset *test,
                                      const dd_distilled *set, const float *theta0,
                                      const dd_distill_config *distill, const dd_eval_settings *es,
                                      dd_eval_report *out);
DD_INTERNAL void dd_eval_report_release(dd_eval_report *r);

#endif
