/* distill (internal) — the distillation engine (DESIGN.md §1): learns
 * distilled images (and optionally soft labels) plus one step size per
 * (epoch, step) by Adam on the hypergradient of the unrolled inner training,
 * computed by an exact reverse pass over the K = steps × epochs inner steps. */
#ifndef DD_ENGINE_H
#define DD_ENGINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "distill/model.h"
#include "distill/objective.h"
#include "distill/param.h"
#include "distill/plugin.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Objective binding -------------------------------------------------- */

/** An objective component bound to its state. */
typedef struct dd_objective_handle {
    const dd_objective_ops *ops;
    void *state;
    int n_metrics;
} dd_objective_handle;

/** Creates the objective's state for a dataset with train->n_classes classes.
 * `opts` may be NULL (the component's defaults are used by the component).
 * Release with dd_objective_handle_release. */
DD_API dd_status dd_objective_handle_init(dd_objective_handle *h, const dd_component *objective,
                                          const dd_options *opts, const dd_dataset *train);
/** Frees the state; safe on a zeroed or released handle. */
DD_API void dd_objective_handle_release(dd_objective_handle *h);

/* ---- Configuration ------------------------------------------------------ */

typedef enum dd_init_mode {
    DD_INIT_FIXED = 0,             /**< one θ0 for the whole run */
    DD_INIT_RANDOM = 1,            /**< fresh θ0 from the init scheme every iteration */
    DD_INIT_PRETRAINED_FIXED = 2,  /**< one pretrained θ (theta_pool[0]) */
    DD_INIT_PRETRAINED_RANDOM = 3, /**< members of a pool of pretrained θ (theta_pool) */
} dd_init_mode;

/** Parses "fixed|random|pretrained-fixed|pretrained-random". */
DD_API dd_status dd_init_mode_parse(const char *s, dd_init_mode *out);
DD_API const char *dd_init_mode_str(dd_init_mode m);

typedef enum dd_pixel_init {
    DD_PIXEL_INIT_NORMAL = 0, /**< N(0, 1) in normalised units */
    DD_PIXEL_INIT_REAL = 1,   /**< random real training images of the slot's class */
} dd_pixel_init;

/** Everything the engine needs; strings are borrowed for the engine's life. */
typedef struct dd_distill_config {
    int steps;            /**< S distilled steps */
    int epochs;           /**< E passes over the S steps */
    int images_per_class; /**< images per class per step */
    int64_t iterations;   /**< outer (Adam) iterations in total */
    int64_t batch_real;   /**< real images per outer iteration */
    double lr_init;       /**< initial step size of every inner step */
    dd_init_mode init_mode;
    int nets_per_iteration;  /**< θ0 samples averaged per iteration (random init) */
    const char *init_scheme; /**< model init scheme ("xavier", "kaiming", ...) */
    double init_gain;
    uint64_t seed;
    dd_pixel_init pixel_init;
    int learn_pixels; /**< 0: pixels frozen (lr search for baselines) */
    int learn_labels; /**< 1: soft labels are learned too (initialised one-hot) */
    int learn_lrs;    /**< 0: step sizes frozen */
    /* Adam on pixels, labels and raw step sizes. */
    double opt_lr, beta1, beta2, eps;
    double opt_lr_lrs;   /**< Adam learning rate of the raw step sizes (0 = opt_lr) */
    int64_t decay_every; /**< multiply opt_lr by `decay` every this many iterations (0 = never) */
    double decay;
    /* Checkpoints (path NULL = none). */
    const char *checkpoint_path;
    int64_t checkpoint_every; /**< 0 = only at the end and on interruption */
    int resume;               /**< continue from checkpoint_path if it exists */
    /** Stops the run (checkpoint + DD_ERR_INTERRUPTED) when it becomes non-zero
     * between iterations. May be NULL. */
    const volatile sig_atomic_t *interrupt;
    int progress;             /**< show a progress bar */
    const char *label;        /**< progress bar label (NULL = "distill") */
    const float *init_pixels; /**< optional S × M × input floats to start from */
    int64_t log_every;        /**< log the outer loss every this many iterations (0 = never) */
    /** Pretrained θ0s (borrowed, each dd_model_param_count floats) for
     * DD_INIT_PRETRAINED_FIXED (member 0) and DD_INIT_PRETRAINED_RANDOM
     * (nets_per_iteration members drawn uniformly every iteration). */
    const float *const *theta_pool;
    size_t theta_pool_size;
    /** Optional M hard labels of the distilled slots (default: slot j has
     * class j % n_classes); e.g. a relabelled baseline's labels. */
    const int32_t *init_labels;
    /** Threads of the model's passes on real batches (0: the model's own
     * setting); distilled batches of at most 128 images run on one. The
     * model's setting is restored after every engine call. */
    int nthreads;
} dd_distill_config;

/** Defaults matching the paper's settings (10 steps × 3 epochs, 1 image per
 * class, lr 0.02, Adam 0.01 with β1 = 0.5, batch 1024, fixed init). */
DD_API void dd_distill_config_defaults(dd_distill_config *c);

/** Fills `c` from the pipeline's `distill` section (keys documented in
 * core/src/stages.c). Missing optional keys keep their defaults. */
DD_API dd_status dd_distill_config_from_options(const dd_options *o, dd_distill_config *c);

/* ---- The distilled set -------------------------------------------------- */

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

/** Allocates an empty set (zero images, labels j % n_classes, lrs `lr`). */
DD_API dd_status dd_distilled_create(int steps, int epochs, int images_per_class, int n_classes,
                                     int channels, int height, int width, float lr,
                                     dd_distilled **out);
DD_API void dd_distilled_destroy(dd_distilled *d);
/** Deep copy. */
DD_API dd_status dd_distilled_clone(const dd_distilled *d, dd_distilled **out);
DD_API size_t dd_distilled_image_size(const dd_distilled *d);

/* ---- Engine ------------------------------------------------------------- */

/** Statistics of a run. */
typedef struct dd_distill_stats {
    int64_t iterations;       /**< completed outer iterations */
    double seconds;           /**< wall time of the iterations run by this process */
    int64_t timed_iterations; /**< iterations in `seconds` */
    double seconds_per_iteration;
    double last_loss, last_metric;       /**< last outer loss and first metric on its real batch */
    double t_unroll, t_outer, t_reverse; /**< seconds in each phase (this process) */
    double *loss_history;                /**< iterations entries (owned by the engine) */
    double *metric_history;
} dd_distill_stats;

typedef struct dd_engine dd_engine;

/** Creates an engine over a built model, a bound objective and the real
 * training set (all borrowed; they must outlive the engine). Initialises the
 * pixels (or takes cfg->init_pixels), labels, step sizes and, for fixed init,
 * θ0. Does not read any checkpoint. */
DD_API dd_status dd_engine_create(dd_model *model, const dd_objective_handle *objective,
                                  const dd_dataset *train, const dd_distill_config *cfg,
                                  dd_engine **out);
DD_API void dd_engine_destroy(dd_engine *e);

/** Runs until cfg->iterations are done, resuming from the checkpoint when
 * cfg->resume is set. Writes checkpoints every cfg->checkpoint_every
 * iterations and at the end. Returns DD_ERR_NUMERIC if the loss or the
 * hypergradient becomes NaN/Inf (the last checkpoint on disk is the last
 * good state) and DD_ERR_INTERRUPTED when cfg->interrupt fires (after
 * writing a checkpoint). */
DD_API dd_status dd_engine_run(dd_engine *e);

/** One outer iteration (sample data, hypergradient, Adam step). */
DD_API dd_status dd_engine_step(dd_engine *e);

/** The hypergradient of the outer loss for one θ0 and one real batch:
 * g_pixels (S × M × input), g_raw_lrs (K, w.r.t. the raw parameters of the
 * step sizes) and g_labels (S × M × outputs; only with learn_labels) —
 * each optional. Also the loss and the first metric (as num/den). */
DD_API dd_status dd_engine_hypergradient(dd_engine *e, const float *theta0, const float *x_real,
                                         const int32_t *y_real, int64_t batch, double *loss,
                                         double *metric, float *g_pixels, float *g_raw_lrs,
                                         float *g_labels);

/** The outer loss of the unrolled training from θ0 (no gradients). If
 * theta_out is non-NULL it receives θ_K. */
DD_API dd_status dd_engine_unrolled_loss(dd_engine *e, const float *theta0, const float *x_real,
                                         const int32_t *y_real, int64_t batch, double *loss,
                                         float *theta_out);

/** Mutable views of the learned parameters (for tests and the lr search). */
DD_API float *dd_engine_pixels(dd_engine *e);  /**< S × M × input */
DD_API float *dd_engine_raw_lrs(dd_engine *e); /**< K raw (step size = softplus(raw)) */
DD_API float *
dd_engine_soft_labels(dd_engine *e); /**< S × M × outputs, NULL without learn_labels */
/** θ0 of a fixed-init run (NULL otherwise); n_params floats. */
DD_API const float *dd_engine_theta0(const dd_engine *e);
DD_API const dd_distill_stats *dd_engine_stats(const dd_engine *e);
/** Copies the current state out as a distilled set. Caller owns *out. */
DD_API dd_status dd_engine_export(const dd_engine *e, dd_distilled **out);

/** Saves / restores the full state (pixels, lrs, labels, Adam, iteration,
 * θ0, loss history). Loading validates that the checkpoint matches this
 * engine's configuration. */
DD_API dd_status dd_engine_save(const dd_engine *e, const char *path);
DD_API dd_status dd_engine_load(dd_engine *e, const char *path);

/** Step size from its raw parameter (softplus) and back. */
DD_API float dd_lr_from_raw(float raw);
DD_API float dd_lr_to_raw(float lr);

/** Seed of the model init for draw `index` of a named RNG stream (stable
 * across runs: distillation, evaluation and baselines use disjoint streams). */
DD_API uint64_t dd_engine_init_seed(uint64_t seed, uint64_t stream, uint64_t index);

/** RNG stream ids (documented so that runs are reproducible). */
enum {
    DD_STREAM_PIXELS = 1,
    DD_STREAM_THETA0 = 2,
    DD_STREAM_TRAIN_INITS = 3,
    DD_STREAM_EVAL_INITS = 4,
    DD_STREAM_BASELINE_RANDOM = 5,
    DD_STREAM_KMEANS = 6,
    DD_STREAM_POOL = 7,        /**< pool members drawn by pretrained-random distillation */
    DD_STREAM_PRETRAIN = 8,    /**< per-member seeds of the pretrain stage */
    DD_STREAM_DATA = 1u << 20, /**< + data epoch */
};

/** Installs SIGINT/SIGTERM handlers that set *flag (restored by
 * dd_signals_restore). Only one set may be installed at a time. */
DD_API dd_status dd_signals_install(volatile sig_atomic_t **flag);
DD_API void dd_signals_restore(void);

#ifdef __cplusplus
}
#endif
#endif
