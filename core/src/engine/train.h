/* distill (internal) — training a network the ordinary way: minibatch SGD
 * with momentum (pool members, the evaluation's full-training reference),
 * top-1 accuracy, and moving a trained network onto another classifier head
 * (pools pretrained on other classes). */
#ifndef DD_TRAIN_H
#define DD_TRAIN_H

#include "base/export.h"

#include <stdint.h>

#include "distill/dataset.h"
#include "distill/host.h"
#include "distill/model.h"
#include "distill/status.h"

/** Minibatch SGD with momentum on the model's inner loss (hard labels). */
typedef struct dd_sgd_config {
    int epochs;
    int64_t batch;
    double lr, momentum, weight_decay;
    int cosine;        /**< anneal lr to 0 over all steps (else constant) */
    uint64_t seed;     /**< data order (and augmentation) */
    const char *label; /**< for the log (NULL: "sgd") */
    /** Augmentation of every batch image: pad by `crop` pixels (zeros, the
     * mean in normalised units) and crop back at a random offset; mirror
     * left-right with probability 1/2 if `flip`. */
    int crop, flip;
} dd_sgd_config;

/** Images to train on: n images of C × H × W floats (`images`, or read
 * batch by batch through `dataset`'s accessor when `images` is NULL), with
 * hard (n) or soft (n × n_outputs) labels. */
typedef struct dd_sgd_data {
    const float *images;
    const dd_dataset *dataset;
    int64_t n;
    int channels, height, width;
    dd_labels labels;
    int n_outputs; /**< soft labels only */
} dd_sgd_data;

DD_INTERNAL void dd_sgd_config_defaults(dd_sgd_config *c);
/** Trains θ in place for c->epochs passes over `train` (reshuffled every
 * epoch, deterministic in c->seed). DD_ERR_NUMERIC if the loss diverges. */
DD_INTERNAL dd_status dd_sgd_train(dd_model *m, float *theta, const dd_dataset *train,
                                   const dd_sgd_config *c);
/** The same on any images (e.g. a distilled set, with soft labels). */
DD_INTERNAL dd_status dd_sgd_train_data(dd_model *m, float *theta, const dd_sgd_data *d,
                                        const dd_sgd_config *c);
/** Top-1 accuracy of θ on a dataset (fraction in [0, 1]). */
DD_INTERNAL dd_status dd_pretrain_accuracy(dd_model *m, const float *theta, const dd_dataset *d,
                                           double *accuracy);

/** Converts a member trained with `src` (e.g. another class count) into the
 * parameter layout of `dst`: every layer before the last parametrised one is
 * copied (their layouts must match), the last one is initialised with
 * `scheme` × gain from `seed` (a fresh classifier head). */
DD_INTERNAL dd_status dd_pretrain_transfer(dd_model *src, const float *theta_src, dd_model *dst,
                                           const char *scheme, float gain, uint64_t seed,
                                           float *theta_dst);

#endif
