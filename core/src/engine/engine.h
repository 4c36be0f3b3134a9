/* distill (internal) — the distillation engine (DESIGN.md §1): learns
 * distilled images (and optionally soft labels) plus one step size per
 * (epoch, step) by Adam on the hypergradient of the unrolled inner training,
 * computed by an exact reverse pass over the K = steps × epochs inner steps.
 * Its configuration, the distilled set and the objective binding have their
 * own headers (engine/config.h, distilled.h, objective_handle.h), included
 * here. */
#ifndef DD_ENGINE_H
#define DD_ENGINE_H

#include "base/export.h"

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "distill/host.h"
#include "distill/model.h"
#include "distill/objective.h"
#include "distill/param.h"
#include "distill/plugin.h"
#include "distill/status.h"
#include "engine/config.h"
#include "engine/distilled.h"
#include "engine/objective_handle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Engine ------------------------------------------------------------- */

/** Statistics of a run. */
typedef struct dd_distill_stats {
    int64_t iterations;       /**< completed outer iterations */
    double seconds;           /**< wall time of the iterations run by this process */
    int64_t timed_iterations; /**< iterations in `seconds` */
    double seconds_per_iteration;
    double last_loss, last_metric;       /**< last outer loss and first metric on its real batch */
    double t_unroll, t_outer, t_reverse; /**< seconds in each phase (this process; summed
                                          * over workers when each runs its own network) */
    long long backups; /**< chunks a waiting worker computed again because they were late */
    double t_comm;     /**< seconds in MPI exchanges (this rank; part of t_outer for fixed inits) */
    /** Per iteration under MPI: floats summed over the ranks, floats broadcast or gathered. */
    long long comm_floats_summed, comm_floats_sent;
    double *loss_history; /**< iterations entries (owned by the engine) */
    double *metric_history;
    /** iterations × K step sizes (K = steps × epochs, row i: softplus(raw)
     * after iteration i; NaN for iterations a pre-history checkpoint resumed
     * over). Owned by the engine. */
    float *lr_history;
} dd_distill_stats;

typedef struct dd_engine dd_engine;

/** Creates an engine over a built model, a bound objective and the real
 * training set (all borrowed; they must outlive the engine). Initialises the
 * pixels (or takes cfg->init_pixels), labels, step sizes and, for fixed init,
 * θ0. Does not read any checkpoint. */
DD_INTERNAL dd_status dd_engine_create(dd_model *model, const dd_objective_handle *objective,
                                       const dd_dataset *train, const dd_distill_config *cfg,
                                       dd_engine **out);
DD_INTERNAL void dd_engine_destroy(dd_engine *e);

/** Runs until cfg->iterations are done, resuming from the checkpoint when
 * cfg->resume is set. Writes checkpoints every cfg->checkpoint_every
 * iterations and at the end. Returns DD_ERR_NUMERIC if the loss or the
 * hypergradient becomes NaN/Inf (the last checkpoint on disk is the last
 * good state) and DD_ERR_INTERRUPTED when *cfg->cancel is non-zero at an
 * iteration boundary (after writing a checkpoint). */
DD_INTERNAL dd_status dd_engine_run(dd_engine *e);

/** One outer iteration (sample data, hypergradient, Adam step). */
DD_INTERNAL dd_status dd_engine_step(dd_engine *e);

/** Changes Adam's learning rates (pixels and labels; raw step sizes, 0 =
 * the first) from the next iteration on; e.g. a step-size search that
 * halves them when the loss stops improving. */
DD_INTERNAL void dd_engine_set_opt_lr(dd_engine *e, double opt_lr, double opt_lr_lrs);

/** The hypergradient of the outer loss for one θ0 and one real batch:
 * g_pixels (S × M × input), g_raw_lrs (K, w.r.t. the raw parameters of the
 * step sizes) and g_labels (S × M × outputs; only with learn_labels) —
 * each optional. Also the loss and the first metric (as num/den). */
DD_INTERNAL dd_status dd_engine_hypergradient(dd_engine *e, const float *theta0,
                                              const float *x_real, const int32_t *y_real,
                                              int64_t batch, double *loss, double *metric,
                                              float *g_pixels, float *g_raw_lrs, float *g_labels);

/** The outer loss of the unrolled training from θ0 (no gradients). If
 * theta_out is non-NULL it receives θ_K. */
DD_INTERNAL dd_status dd_engine_unrolled_loss(dd_engine *e, const float *theta0,
                                              const float *x_real, const int32_t *y_real,
                                              int64_t batch, double *loss, float *theta_out);

/** Mutable views of the learned parameters (for tests and the lr search). */
DD_INTERNAL float *dd_engine_pixels(dd_engine *e);  /**< S × M × input */
DD_INTERNAL float *dd_engine_raw_lrs(dd_engine *e); /**< K raw (step size = softplus(raw)) */
DD_INTERNAL float *
dd_engine_soft_labels(dd_engine *e); /**< S × M × outputs, NULL without learn_labels */
/** θ0 of a fixed-init run (NULL otherwise); n_params floats. */
DD_INTERNAL const float *dd_engine_theta0(const dd_engine *e);
DD_INTERNAL const dd_distill_stats *dd_engine_stats(const dd_engine *e);
/** Copies the current state out as a distilled set. Caller owns *out. */
DD_INTERNAL dd_status dd_engine_export(const dd_engine *e, dd_distilled **out);

/** Saves / restores the full state (pixels, lrs, labels, Adam, iteration,
 * θ0, loss, metric and step-size histories). Loading validates that the checkpoint matches this
 * engine's configuration. */
DD_INTERNAL dd_status dd_engine_save(const dd_engine *e, const char *path);
DD_INTERNAL dd_status dd_engine_load(dd_engine *e, const char *path);

/** Step size from its raw parameter (softplus) and back. */
DD_INTERNAL float dd_lr_from_raw(float raw);
DD_INTERNAL float dd_lr_to_raw(float lr);

/** Seed of the model init for draw `index` of a named RNG stream (stable
 * across runs: distillation, evaluation and baselines use disjoint streams). */
DD_INTERNAL uint64_t dd_engine_init_seed(uint64_t seed, uint64_t stream, uint64_t index);

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

#ifdef __cplusplus
}
#endif
#endif
