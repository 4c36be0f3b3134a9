/* distill (internal) — one layer as the ops see it: its kind, inferred
 * shapes, hyper-parameters and where its parameters sit in θ. The model's
 * graph builder (model/graph.h) fills these; the ops only read them. */
#ifndef DD_LAYER_H
#define DD_LAYER_H

#include <stddef.h>

#include "base/export.h"

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

/** Elements per sample of a layer's input / output. */
static inline size_t dd_layer_in_size(const dd_layer *L) {
    return (size_t)L->in_c * (size_t)L->in_h * (size_t)L->in_w;
}
static inline size_t dd_layer_out_size(const dd_layer *L) {
    return (size_t)L->out_c * (size_t)L->out_h * (size_t)L->out_w;
}
/** "conv", "linear", ... */
DD_INTERNAL const char *dd_op_name(dd_op_kind kind);

#endif
