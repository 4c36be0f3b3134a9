/* distill (internal) — the engine's configuration: init modes, the
 * dd_distill_config struct, and filling it from the pipeline's `distill`
 * section (whose parameter spec, in config/schema.c, holds every default). */
#ifndef DD_ENGINE_CONFIG_H
#define DD_ENGINE_CONFIG_H

#include "base/export.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "distill/param.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dd_init_mode {
    DD_INIT_FIXED = 0,             /**< one θ0 for the whole run */
    DD_INIT_RANDOM = 1,            /**< fresh θ0 from the init scheme every iteration */
    DD_INIT_PRETRAINED_FIXED = 2,  /**< one pretrained θ (theta_pool[0]) */
    DD_INIT_PRETRAINED_RANDOM = 3, /**< members of a pool of pretrained θ (theta_pool) */
} dd_init_mode;

/** Parses "fixed|random|pretrained-fixed|pretrained-random". */
DD_INTERNAL dd_status dd_init_mode_parse(const char *s, dd_init_mode *out);
DD_INTERNAL const char *dd_init_mode_str(dd_init_mode m);

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
    const char *init_scheme; /**< model init scheme ("xavier", "kaiming", ...; NULL = xavier) */
    double init_gain;
    uint64_t seed;
    dd_pixel_init pixel_init;
    int learn_pixels;            /**< 0: pixels frozen (lr search for baselines) */
    int learn_labels;            /**< 1: soft labels are learned too (initialised one-hot) */
    int learn_lrs;               /**< 0: step sizes frozen */
    int64_t max_unrolled_images; /**< limit on steps × epochs × images per step (0 = none) */
    /* Adam on pixels, labels and raw step sizes. */
    double opt_lr, beta1, beta2, eps;
    double opt_lr_lrs;   /**< Adam learning rate of the raw step sizes (0 = opt_lr) */
    int64_t decay_every; /**< multiply opt_lr by `decay` every this many iterations (0 = never) */
    double decay;
    /* Checkpoints (path NULL = none). */
    const char *checkpoint_path;
    int64_t checkpoint_every; /**< 0 = only at the end and on interruption */
    int resume;               /**< continue from checkpoint_path if it exists */
    /** Cancel flag owned by the caller (e.g. set by its signal handler; the
     * engine only reads it). When it is non-zero between iterations the run
     * writes its checkpoint and stops with DD_ERR_INTERRUPTED. NULL = never
     * cancelled. */
    const volatile sig_atomic_t *cancel;
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
    /** Real images per slice of the real batch (0: one slice per worker, at
     * most DD_ENGINE_SLICE_IMAGES, smaller while a slice's activations would
     * pass DD_ENGINE_SLICE_BYTES). */
    int64_t real_chunk;
} dd_distill_config;

/** Fills `c` from the options of the pipeline's `distill` section (complete:
 * every key of its spec has a value). Learning pixels and step sizes is
 * switched on and Adam's ε is 1e-8 (neither is a pipeline key). Everything
 * from other sections or from the run — init_scheme, init_gain (model),
 * seed (pipeline), checkpointing, cancel, progress, pools — is zero/NULL
 * for the caller to set. */
DD_INTERNAL dd_status dd_distill_config_from_options(const dd_options *o, dd_distill_config *c);

/** The configuration a pipeline that sets nothing gets: the `distill`
 * section's spec defaults through dd_distill_config_from_options, the model
 * section's default init scheme and gain, and the pipeline's default seed.
 * For tests and benchmarks, which then change what they need. */
DD_INTERNAL dd_status dd_distill_config_from_defaults(dd_distill_config *c);

#ifdef __cplusplus
}
#endif
#endif
