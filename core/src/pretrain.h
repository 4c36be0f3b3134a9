/* distill (internal) — the pretrain stage: trains a pool of networks (model
 * plugin + dataset + SGD, per-member seeds) or reuses the pool stored under a
 * hash of that configuration; plus the SGD trainer it uses (also the
 * evaluate stage's full-training reference) and the source-dataset
 * transforms that build a domain shift (docs/plugins.md, section 5). */
#ifndef DD_PRETRAIN_H
#define DD_PRETRAIN_H

#include <stdint.h>

#include "distill/dataset.h"
#include "distill/model.h"
#include "distill/status.h"
#include "pool.h"

struct dd_run;

/** Minibatch SGD with momentum on the model's inner loss (hard labels). */
typedef struct dd_sgd_config {
    int epochs;
    int64_t batch;
    double lr, momentum, weight_decay;
    int cosine;        /**< anneal lr to 0 over all steps (else constant) */
    uint64_t seed;     /**< data order */
    const char *label; /**< for the log (NULL: "sgd") */
} dd_sgd_config;

DD_API void dd_sgd_config_defaults(dd_sgd_config *c);
/** Trains θ in place for c->epochs passes over `train` (reshuffled every
 * epoch, deterministic in c->seed). DD_ERR_NUMERIC if the loss diverges. */
DD_API dd_status dd_sgd_train(dd_model *m, float *theta, const dd_dataset *train,
                              const dd_sgd_config *c);
/** Top-1 accuracy of θ on a dataset (fraction in [0, 1]). */
DD_API dd_status dd_pretrain_accuracy(dd_model *m, const float *theta, const dd_dataset *d,
                                      double *accuracy);

/** Source-dataset transforms (pretrain.transform). */
typedef enum dd_transform {
    DD_TRANSFORM_NONE = 0,
    DD_TRANSFORM_INVERT = 1,   /**< pixel → 1 − pixel */
    DD_TRANSFORM_ROTATE90 = 2, /**< quarter turn counter-clockwise (square images) */
    DD_TRANSFORM_HFLIP = 3,    /**< mirror left-right */
} dd_transform;

DD_API dd_status dd_transform_parse(const char *name, dd_transform *out);
/** A transformed copy of `src`: only the images whose label is in
 * classes[0..n_keep) (all if n_keep = 0), at most max_images of them (0 = all;
 * a seeded random subset kept in order), each transformed. Labels, class
 * names and normalisation are kept. Caller owns *out. */
DD_API dd_status dd_dataset_transformed(const dd_dataset *src, dd_transform t,
                                        const int32_t *classes, int n_keep, int64_t max_images,
                                        uint64_t seed, dd_dataset **out);

/** Converts a member trained with `src` (e.g. another class count) into the
 * parameter layout of `dst`: every layer before the last parametrised one is
 * copied (their layouts must match), the last one is initialised with
 * `scheme` × gain from `seed` (a fresh classifier head). */
DD_API dd_status dd_pretrain_transfer(dd_model *src, const float *theta_src, dd_model *dst,
                                      const char *scheme, float gain, uint64_t seed,
                                      float *theta_dst);

/** The pretrain stage of `distill run`: sets run->pool (the pool in the
 * target model's layout; members 0..n−holdout−1 for distillation). */
DD_API dd_status dd_stage_pretrain(struct dd_run *run);

#endif
