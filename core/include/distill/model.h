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

/* ---- Runtime ------------------------------------------------------------ */

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

typedef struct dd_model_config {
    size_t struct_size;
    const dd_component *plugin;  /**< a DD_COMPONENT_MODEL component */
    const dd_options *options;   /**< that component's options (may be NULL: defaults) */
    int channels, height, width; /**< input shape */
    int n_outputs;               /**< classes (or regression outputs) */
    dd_backend backend;
} dd_model_config;

/** A built network with its per-batch-size workspaces. Not thread-safe: use
 * one dd_model per thread. θ is always a caller-owned flat vector of
 * dd_model_param_count floats; the model holds no parameters. */
typedef struct dd_model dd_model;

DD_API dd_status dd_model_create(const dd_model_config *cfg, dd_model **out);
DD_API void dd_model_destroy(dd_model *m);
DD_API size_t dd_model_param_count(const dd_model *m);
DD_API int dd_model_output_dim(const dd_model *m);
DD_API size_t dd_model_input_size(const dd_model *m); /**< floats per sample */
DD_API dd_loss_kind dd_model_loss(const dd_model *m);
/** Human-readable layer list (one per line), owned by the model. */
DD_API const char *dd_model_summary(const dd_model *m);

/** Init schemes: "xavier" (= xavier-normal), "xavier-uniform", "kaiming"
 * (= kaiming-normal, fan-in, ReLU gain), "kaiming-uniform"; weights scaled by
 * `gain`, biases zero, norm scales one. Deterministic in `seed`. */
DD_API dd_status dd_model_init_params(dd_model *m, float *theta, const char *scheme, float gain,
                                      uint64_t seed);

/** Forward only: logits (B × output_dim). */
DD_API dd_status dd_model_forward(dd_model *m, const float *theta, const float *x, int64_t batch,
                                  float *logits);

/** Loss (mean over the batch) and gradients. grad_theta, grad_x (B × input)
 * and logits are optional (NULL). */
DD_API dd_status dd_model_loss_grad(dd_model *m, const float *theta, const float *x, int64_t batch,
                                    dd_labels y, double *loss, float *grad_theta, float *grad_x,
                                    float *logits);

/** Forward, then backward from a caller-supplied ∂L/∂logits (for outer
 * losses defined by objectives). grad_theta and grad_x optional. */
DD_API dd_status dd_model_backward_from(dd_model *m, const float *theta, const float *x,
                                        int64_t batch, const float *dlogits, float *grad_theta,
                                        float *grad_x);

/** One forward-over-reverse pass with tangent v on θ. Writes (each optional):
 *   hv      = H v                 (∇²_θ ℓ · v)
 *   mixed_x = ∇_x ⟨∇_θ ℓ, v⟩      (B × input)
 *   mixed_y = ∇_y ⟨∇_θ ℓ, v⟩      (B × K, soft labels only)
 *   grad    = ∇_θ ℓ               (free by-product)
 *   loss    = ℓ */
DD_API dd_status dd_model_hvp(dd_model *m, const float *theta, const float *x, int64_t batch,
                              dd_labels y, const float *v, float *hv, float *mixed_x,
                              float *mixed_y, float *grad, double *loss);

/** Backward from a caller-supplied ∂L/∂logits, reusing the activations of
 * the dd_model_forward call made immediately before it on this model with
 * the same batch size (saves re-running the forward). Preconditions: no
 * other pass (forward, loss_grad, backward_from, hvp, at any batch size)
 * ran on the model in between; theta holds the same values as in that
 * forward; the x given to that forward is still alive and unchanged (the
 * model keeps a pointer to it). A violated ordering is detected and returns
 * DD_ERR_INVALID. May be called again with other dlogits while nothing else
 * runs. grad_theta and grad_x optional. */
DD_API dd_status dd_model_backward(dd_model *m, const float *theta, int64_t batch,
                                   const float *dlogits, float *grad_theta, float *grad_x);

#ifdef __cplusplus
}
#endif
#endif
