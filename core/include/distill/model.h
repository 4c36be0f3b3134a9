/* distill — networks: the graph-builder API model plugins use, and the
 * differentiable runtime the engine uses (loss, gradients, exact
 * Hessian-vector and mixed products by one forward-over-reverse pass). */
#ifndef DISTILL_MODEL_H
#define DISTILL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/param.h"
#include "distill/plugin.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Graph builder (used by model plugins) ------------------------------ */

/** A sequential network under construction. Each call appends one layer
 * whose input is the previous layer's output; shapes are inferred. */
typedef struct dd_graph dd_graph;

/** Current output shape (per sample): channels, height, width. A flat
 * vector has height = width = 1. */
DD_API void dd_graph_shape(const dd_graph *g, int *channels, int *height, int *width);

/** conv2d: out_channels filters of kernel×kernel, with bias, groups = 1. */
DD_API dd_status dd_graph_conv2d(dd_graph *g, int out_channels, int kernel, int stride, int pad);
/** Fully connected layer with bias (flattens its input implicitly). */
DD_API dd_status dd_graph_linear(dd_graph *g, int out_features);
DD_API dd_status dd_graph_relu(dd_graph *g);
DD_API dd_status dd_graph_tanh(dd_graph *g);
DD_API dd_status dd_graph_sigmoid(dd_graph *g);
DD_API dd_status dd_graph_maxpool(dd_graph *g, int kernel, int stride, int pad);
DD_API dd_status dd_graph_avgpool(dd_graph *g, int kernel, int stride, int pad);
/** Local response normalization across channels (AlexNet form):
 * y = x / (k + alpha/size * sum_{window} x^2)^beta. */
DD_API dd_status dd_graph_lrn(dd_graph *g, int size, float alpha, float beta, float k);
/** Instance norm over H×W per (sample, channel), with learned scale and shift. */
DD_API dd_status dd_graph_instancenorm(dd_graph *g, float eps);
DD_API dd_status dd_graph_flatten(dd_graph *g);

typedef enum dd_loss_kind {
    DD_LOSS_CROSS_ENTROPY = 1, /**< softmax cross-entropy, hard or soft labels */
    DD_LOSS_MSE = 2,           /**< 0.5 * mean over batch of ||out - target||^2 */
} dd_loss_kind;
/** Loss used for the inner (distilled) steps; default cross-entropy. */
DD_API void dd_graph_set_loss(dd_graph *g, dd_loss_kind loss);

typedef struct dd_model_ops {
    size_t struct_size;
    /** Appends the layers for an input of channels×height×width and
     * n_outputs outputs. Reject unsupported sizes with a clear message.
     * (required) */
    dd_status (*build)(dd_graph *g, const dd_options *opts, int channels, int height, int width,
                       int n_outputs);
    /** Default init scheme name (optional; NULL = "xavier"). */
    const char *default_init;
    void *reserved[4];
} dd_model_ops;

/* ---- Types of the model runtime (distill/host.h) ---------------------- */

typedef enum dd_backend {
    DD_BACKEND_ONEDNN = 0,    /**< oneDNN for conv / linear (default) */
    DD_BACKEND_REFERENCE = 1, /**< plain C everywhere (tests, cross-checks) */
} dd_backend;

/** Labels of a batch: exactly one of hard (B class indices) or soft (B×K
 * targets: probabilities for cross-entropy, regression targets for MSE). */
typedef struct dd_labels {
    const int32_t *hard;
    const float *soft;
} dd_labels;

#ifdef __cplusplus
}
#endif
#endif
