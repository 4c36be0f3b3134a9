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
#define DD_EVAL_MAX_ARCH 8    /**< other architectures of the cross_architecture protocol */

/** Evaluation protocols (evaluate.protocols), a bit set. */
enum {
    DD_PROTOCOL_STEPS = 1u << 0,      /**< the learned steps, in the distillation's init mode */
    DD_PROTOCOL_CROSS_ARCH = 1u << 1, /**< other networks, step sizes optimised for each */
    DD_PROTOCOL_STANDARD = 1u << 2,   /**< ordinary minibatch SGD for some epochs */
};

/** Parses one protocol name ("steps", "cross_architecture", "standard_training"). */
DD_INTERNAL dd_status dd_protocol_parse(const char *name, unsigned *bit);
DD_INTERNAL const char *dd_protocol_name(unsigned bit);

/** How the step sizes of a fixed set are optimised (pixels frozen): Adam on
 * the raw step sizes, the outer loss averaged over windows of `window`
 * iterations. A window in which no raw step size moved more than half as
 * far as Adam can move it (rate × window: the search is no longer
 * travelling in one direction) and which does not lower the best mean loss
 * by more than `tol` (relative) halves Adam's rate; the search stops at the
 * (halvings + 1)-th such window — or after max_iterations. */
typedef struct dd_lr_search {
    int64_t max_iterations; /**< 0: no search (the initial step sizes) */
    int64_t batch;          /**< real images per iteration (0: the distillation's) */
    int window;
    double adam_lr; /**< Adam learning rate of the raw step sizes */
    double tol;
    int halvings;
} dd_lr_search;

/** What a search did. */
typedef struct dd_lr_search_result {
    int64_t iterations;
    int converged;     /**< stopped by the criterion, not by max_iterations */
    double final_loss; /**< mean outer loss of its last window */
} dd_lr_search_result;

/** Ordinary training on a set (standard_training): fresh random inits,
 * minibatch SGD with momentum, cosine schedule, optional augmentation. */
typedef struct dd_standard_training {
    int epochs, nets;
    double lr, momentum, weight_decay;
    int64_t batch;
    int crop; /**< random crop: pad by this many pixels, then crop back (0: none) */
    int flip; /**< random horizontal flip */
} dd_standard_training;

/** Another network of the cross_architecture protocol (borrowed). */
typedef struct dd_eval_arch {
    const char *name; /**< its plugin name, or "plugin#i" when several share one */
    dd_model *model;
    const char *init_scheme;
    double init_gain;
} dd_eval_arch;

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

/** Learns the step sizes of a fixed set (pixels and labels frozen) with the
 * engine as `search` says; writes them into set->lrs. From `distill` only
 * the init mode (and its scheme, pool, nets per iteration), the real batch,
 * the set's shape and the seed are used: Adam's betas are 0.9/0.999 and no
 * option of the distillation's optimiser (learning rates, decay, label
 * learning) changes how a baseline is tuned. res may be NULL. */
DD_INTERNAL dd_status dd_evaluate_optimize_lrs(dd_model *m, const dd_objective_handle *obj,
                                               const dd_dataset *train,
                                               const dd_distill_config *distill,
                                               const dd_lr_search *search, dd_distilled *set,
                                               dd_lr_search_result *res);
DD_INTERNAL void dd_lr_search_defaults(dd_lr_search *s);

/** Trains θ in place by ordinary minibatch SGD on every image of `set`
 * (hard or soft labels) as `st` says; data order and augmentation are
 * deterministic in `seed`. */
DD_INTERNAL dd_status dd_evaluate_train_standard(dd_model *m, const dd_distilled *set,
                                                 const dd_standard_training *st, uint64_t seed,
                                                 float *theta);

/** Settings of the evaluate stage (pipeline section `evaluate`). */
typedef struct dd_eval_settings {
    int nets; /**< held-out inits for random init mode */
    int n_baselines;
    dd_baseline_kind baselines[DD_BASELINE_COUNT];
    double fixed_lr;     /**< step size of the "distilled data, fixed lr" row */
    unsigned protocols;  /**< DD_PROTOCOL_* bits (default: steps) */
    dd_lr_search search; /**< how every baseline's step sizes are optimised */
    int step_curves;     /**< measure the metric after every inner step */
    dd_standard_training standard;
    /** cross_architecture: the other networks and the random inits each is
     * measured on. */
    int arch_nets;
    int n_arch;
    dd_eval_arch arch[DD_EVAL_MAX_ARCH];
    int64_t batch; /**< test batch */
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
    dd_lr_search_result search;  /**< how its step sizes were optimised */
    dd_eval_stats standard;      /**< standard_training on its images */
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
    dd_lr_search search;            /**< how the baselines' step sizes were optimised */
    unsigned protocols;             /**< DD_PROTOCOL_* bits measured */
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
    int knn_has_distilled; /**< knn_distilled was measured (a distilled set exists) */
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
    /** standard_training: the distilled set's row (each baseline's is in its
     * row's `standard`). */
    dd_standard_training standard;
    dd_eval_stats standard_distilled;
    /** cross_architecture: one entry per other network. */
    int n_arch;
    struct dd_eval_arch_report {
        const char *name;
        int nets;
        dd_eval_stats untrained;
        dd_eval_stats distilled;
        dd_lr_search_result distilled_search;
        dd_eval_stats baselines[DD_BASELINE_COUNT]; /**< parallel to baselines[] */
        dd_lr_search_result baseline_search[DD_BASELINE_COUNT];
        dd_eval_stats extra[DD_EVAL_MAX_EXTRA]; /**< parallel to extra[] */
        dd_lr_search_result extra_search[DD_EVAL_MAX_EXTRA];
    } arch[DD_EVAL_MAX_ARCH];
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
