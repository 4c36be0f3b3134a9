/* distill (internal) — the layer list a model plugin builds with the
 * dd_graph_* API, and the graph's lifetime (the runtime owns it). */
#ifndef DD_GRAPH_H
#define DD_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "distill/model.h"

typedef enum dd_op_kind {
    DD_OP_CONV = 1,
    DD_OP_LINEAR,
    DD_OP_RELU,
    DD_OP_TANH,
    DD_OP_SIGMOID,
    DD_OP_MAXPOOL,
    DD_OP_AVGPOOL,
    DD_OP_LRN,
    DD_OP_INSTNORM,
    DD_OP_FLATTEN,
} dd_op_kind;

/** One layer with its inferred shapes and where its parameters sit in θ:
 * n_weight weights first (conv OIHW, linear O×I, instance-norm scale), then
 * n_bias biases (instance-norm shift). */
typedef struct dd_layer {
    dd_op_kind kind;
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int kernel, stride, pad; /**< conv, pools */
    int size;                /**< LRN window */
    float alpha, beta, k;    /**< LRN */
    float eps;               /**< instance norm */
    size_t param_off, n_weight, n_bias;
    size_t fan_in, fan_out; /**< for init schemes (weights only) */
} dd_layer;

struct dd_graph {
    int in_c, in_h, in_w;
    int cur_c, cur_h, cur_w;
    dd_layer *layers;
    int n_layers, cap;
    size_t n_params;
    dd_loss_kind loss;
    dd_status error; /**< first builder error (sticky) */
};

/** Empty graph for an input of c×h×w. Caller owns *out. */
DD_API dd_status dd_graph_create(int c, int h, int w, dd_graph **out);
DD_API void dd_graph_destroy(dd_graph *g);
/** Elements per sample of a layer's input / output. */
static inline size_t dd_layer_in_size(const dd_layer *L) {
    return (size_t)L->in_c * (size_t)L->in_h * (size_t)L->in_w;
}
static inline size_t dd_layer_out_size(const dd_layer *L) {
    return (size_t)L->out_c * (size_t)L->out_h * (size_t)L->out_w;
}
/** "conv", "linear", ... */
DD_API const char *dd_op_name(dd_op_kind kind);

#endif
