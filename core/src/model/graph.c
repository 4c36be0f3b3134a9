/* distill — the sequential graph builder model plugins call: each call
 * appends one layer, infers its output shape and reserves its slice of θ. */
#include "model/graph.h"

#include <stdlib.h>
#include <string.h>

dd_status dd_graph_create(int c, int h, int w, dd_graph **out) {
    *out = NULL;
    if (c <= 0 || h <= 0 || w <= 0)
        return dd_error_set(DD_ERR_INVALID, "graph: invalid input shape %d×%d×%d", c, h, w);
    dd_graph *g = calloc(1, sizeof *g);
    if (!g) return dd_error_set(DD_ERR_NOMEM, "graph: out of memory");
    g->in_c = g->cur_c = c;
    g->in_h = g->cur_h = h;
    g->in_w = g->cur_w = w;
    g->loss = DD_LOSS_CROSS_ENTROPY;
    *out = g;
    return DD_OK;
}

void dd_graph_destroy(dd_graph *g) {
    if (!g) return;
    free(g->layers);
    free(g);
}

void dd_graph_shape(const dd_graph *g, int *channels, int *height, int *width) {
    if (channels) *channels = g->cur_c;
    if (height) *height = g->cur_h;
    if (width) *width = g->cur_w;
}

void dd_graph_set_loss(dd_graph *g, dd_loss_kind loss) {
    if (g) g->loss = loss;
}

// Starts a layer reading the current shape; the caller fills kind-specific
// fields and the output shape, then calls push.
static dd_status begin(dd_graph *g, dd_op_kind kind, dd_layer *L) {
    memset(L, 0, sizeof *L);
    if (!g) return dd_error_set(DD_ERR_INVALID, "graph: NULL graph");
    if (g->error != DD_OK)
        return dd_error_set(g->error, "graph: an earlier layer failed; cannot append %s",
                            dd_op_name(kind));
    L->kind = kind;
    L->in_c = L->out_c = g->cur_c;
    L->in_h = L->out_h = g->cur_h;
    L->in_w = L->out_w = g->cur_w;
    return DD_OK;
}

static dd_status fail(dd_graph *g, dd_status s) {
    g->error = s;
    return s;
}

static dd_status push(dd_graph *g, dd_layer *L, size_t n_weight, size_t n_bias) {
    if (g->n_layers == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        dd_layer *nl = realloc(g->layers, (size_t)cap * sizeof *nl);
        if (!nl) return fail(g, dd_error_set(DD_ERR_NOMEM, "graph: out of memory"));
        g->layers = nl;
        g->cap = cap;
    }
    L->param_off = g->n_params;
    L->n_weight = n_weight;
    L->n_bias = n_bias;
    g->n_params += n_weight + n_bias;
    g->layers[g->n_layers++] = *L;
    g->cur_c = L->out_c;
    g->cur_h = L->out_h;
    g->cur_w = L->out_w;
    return DD_OK;
}

static int window_out(int in, int kernel, int stride, int pad) {
    return (in + 2 * pad - kernel) / stride + 1;
}

static dd_status check_window(dd_graph *g, const char *what, int kernel, int stride, int pad) {
    if (kernel <= 0 || stride <= 0 || pad < 0 || pad >= kernel)
        return fail(g, dd_error_set(DD_ERR_INVALID,
                                    "graph: %s: invalid kernel %d / stride %d / padding %d "
                                    "(need kernel > 0, stride > 0, 0 <= padding < kernel)",
                                    what, kernel, stride, pad));
    if (g->cur_h + 2 * pad < kernel || g->cur_w + 2 * pad < kernel)
        return fail(g,
                    dd_error_set(DD_ERR_INVALID,
                                 "graph: %s: kernel %d does not fit the %d×%d input (padding %d) "
                                 "at layer %d; use a larger input",
                                 what, kernel, g->cur_h, g->cur_w, pad, g->n_layers));
    return DD_OK;
}

dd_status dd_graph_conv2d(dd_graph *g, int out_channels, int kernel, int stride, int pad) {
    dd_layer L;
    DD_TRY(begin(g, DD_OP_CONV, &L));
    if (out_channels <= 0)
        return fail(g, dd_error_set(DD_ERR_INVALID, "graph: conv2d: out_channels %d must be > 0",
                                    out_channels));
    DD_TRY(check_window(g, "conv2d", kernel, stride, pad));
    L.kernel = kernel;
    L.stride = stride;
    L.pad = pad;
    L.out_c = out_channels;
    L.out_h = window_out(L.in_h, kernel, stride, pad);
    L.out_w = window_out(L.in_w, kernel, stride, pad);
    L.fan_in = (size_t)L.in_c * (size_t)kernel * (size_t)kernel;
    L.fan_out = (size_t)out_channels * (size_t)kernel * (size_t)kernel;
    return push(g, &L, (size_t)out_channels * L.fan_in, (size_t)out_channels);
}

dd_status dd_graph_linear(dd_graph *g, int out_features) {
    dd_layer L;
    DD_TRY(begin(g, DD_OP_LINEAR, &L));
    if (out_features <= 0)
        return fail(g, dd_error_set(DD_ERR_INVALID, "graph: linear: out_features %d must be > 0",
                                    out_features));
    L.out_c = out_features;
    L.out_h = L.out_w = 1;
    L.fan_in = dd_layer_in_size(&L);
    L.fan_out = (size_t)out_features;
    return push(g, &L, (size_t)out_features * L.fan_in, (size_t)out_features);
}

static dd_status pointwise(dd_graph *g, dd_op_kind kind) {
    dd_layer L;
    DD_TRY(begin(g, kind, &L));
    return push(g, &L, 0, 0);
}

dd_status dd_graph_relu(dd_graph *g) {
    return pointwise(g, DD_OP_RELU);
}
dd_status dd_graph_tanh(dd_graph *g) {
    return pointwise(g, DD_OP_TANH);
}
dd_status dd_graph_sigmoid(dd_graph *g) {
    return pointwise(g, DD_OP_SIGMOID);
}

static dd_status pool(dd_graph *g, dd_op_kind kind, int kernel, int stride, int pad) {
    dd_layer L;
    DD_TRY(begin(g, kind, &L));
    DD_TRY(check_window(g, dd_op_name(kind), kernel, stride, pad));
    L.kernel = kernel;
    L.stride = stride;
    L.pad = pad;
    L.out_h = window_out(L.in_h, kernel, stride, pad);
    L.out_w = window_out(L.in_w, kernel, stride, pad);
    return push(g, &L, 0, 0);
}

dd_status dd_graph_maxpool(dd_graph *g, int kernel, int stride, int pad) {
    return pool(g, DD_OP_MAXPOOL, kernel, stride, pad);
}

dd_status dd_graph_avgpool(dd_graph *g, int kernel, int stride, int pad) {
    return pool(g, DD_OP_AVGPOOL, kernel, stride, pad);
}

dd_status dd_graph_lrn(dd_graph *g, int size, float alpha, float beta, float k) {
    dd_layer L;
    DD_TRY(begin(g, DD_OP_LRN, &L));
    if (size <= 0 || !(k > 0.0f) || !(alpha >= 0.0f) || !(beta >= 0.0f))
        return fail(g, dd_error_set(DD_ERR_INVALID,
                                    "graph: lrn: invalid size %d / alpha %g / beta %g / k %g "
                                    "(need size > 0, k > 0, alpha >= 0, beta >= 0)",
                                    size, alpha, beta, k));
    L.size = size;
    L.alpha = alpha;
    L.beta = beta;
    L.k = k;
    return push(g, &L, 0, 0);
}

dd_status dd_graph_instancenorm(dd_graph *g, float eps) {
    dd_layer L;
    DD_TRY(begin(g, DD_OP_INSTNORM, &L));
    if (!(eps > 0.0f))
        return fail(g,
                    dd_error_set(DD_ERR_INVALID, "graph: instancenorm: eps %g must be > 0", eps));
    L.eps = eps;
    return push(g, &L, (size_t)L.in_c, (size_t)L.in_c);
}

dd_status dd_graph_flatten(dd_graph *g) {
    dd_layer L;
    DD_TRY(begin(g, DD_OP_FLATTEN, &L));
    L.out_c = L.in_c * L.in_h * L.in_w;
    L.out_h = L.out_w = 1;
    return push(g, &L, 0, 0);
}
