/* distill — one entry point per op function (forward, VJP, JVP, tangent of
 * VJP) that routes a layer to its kernels, and the per-layer execution
 * state (scratch, oneDNN primitives) created once per batch size. */
#include <string.h>

#include "compute/ops.h"
#include "compute/threads.h"

size_t dd_layer_aux_floats(const dd_layer *L, int64_t batch) {
    const size_t B = (size_t)batch, in = dd_layer_in_size(L);
    switch (L->kind) {
    case DD_OP_MAXPOOL:
        return B * dd_layer_out_size(L);
    case DD_OP_LRN:
        return 2 * B * in;
    case DD_OP_INSTNORM:
        return B * in + 2 * B * (size_t)L->in_c;
    default:
        return 0;
    }
}

size_t dd_layer_auxd_floats(const dd_layer *L, int64_t batch) {
    const size_t B = (size_t)batch, in = dd_layer_in_size(L);
    switch (L->kind) {
    case DD_OP_LRN:
        return B * in;
    case DD_OP_INSTNORM:
        return B * in + B * (size_t)L->in_c;
    default:
        return 0;
    }
}

dd_status dd_layer_exec_init(dd_layer_exec *e, const dd_layer *L, int64_t batch, dd_backend backend,
                             struct dd_dnnl *dnnl, int nthreads) {
    memset(e, 0, sizeof *e);
    if (batch <= 0)
        return dd_error_set(DD_ERR_INVALID, "layer: batch %lld must be > 0", (long long)batch);
    e->L = L;
    e->batch = batch;
    e->backend = backend;
    e->nthreads = dd_threads_resolve(nthreads);
    size_t n = 0;
    switch (L->kind) {
    case DD_OP_CONV:
    case DD_OP_LINEAR: {
        dd_status s = dd_dense_exec_init(e, dnnl);
        if (s != DD_OK) dd_layer_exec_fini(e);
        return s;
    }
    case DD_OP_LRN:
        n = dd_lrn_scratch_floats(L) * (size_t)e->nthreads;
        break;
    case DD_OP_INSTNORM:
        n = 2 * (size_t)batch * (size_t)L->in_c;
        break;
    default:
        break;
    }
    if (n) {
        e->scratch = dd_alloc_floats(n);
        if (!e->scratch) return DD_ERR_NOMEM;
        e->scratch_n = n;
    }
    return DD_OK;
}

void dd_layer_exec_fini(dd_layer_exec *e) {
    if (!e) return;
    dd_dense_exec_fini(e);
    dd_free(e->scratch);
    dd_free(e->scratch2);
    memset(e, 0, sizeof *e);
}

static size_t n_out(const dd_layer_exec *e) {
    return (size_t)e->batch * dd_layer_out_size(e->L);
}

dd_status dd_layer_forward(dd_layer_exec *e, const float *x, const float *w, float *y, float *aux) {
    switch (e->L->kind) {
    case DD_OP_CONV:
    case DD_OP_LINEAR:
        return dd_dense_forward(e, x, w, y);
    case DD_OP_RELU:
    case DD_OP_TANH:
    case DD_OP_SIGMOID:
        dd_act_forward(e, x, y);
        break;
    case DD_OP_MAXPOOL:
    case DD_OP_AVGPOOL:
        dd_pool_forward(e, x, y, aux);
        break;
    case DD_OP_LRN:
        dd_lrn_forward(e, x, y, aux);
        break;
    case DD_OP_INSTNORM:
        dd_inorm_forward(e, x, w, y, aux);
        break;
    case DD_OP_FLATTEN:
        if (y != x) memcpy(y, x, n_out(e) * sizeof *y);
        break;
    }
    return DD_OK;
}

dd_status dd_layer_backward(dd_layer_exec *e, const float *x, const float *y, const float *aux,
                            const float *w, const float *dy, float *dx, float *dw) {
    switch (e->L->kind) {
    case DD_OP_CONV:
    case DD_OP_LINEAR:
        return dd_dense_backward(e, x, w, dy, dx, dw);
    case DD_OP_INSTNORM:
        if (dx || dw) dd_inorm_backward(e, aux, w, dy, dx, dw);
        return DD_OK;
    default:
        break;
    }
    if (!dx) return DD_OK;
    switch (e->L->kind) {
    case DD_OP_RELU:
    case DD_OP_TANH:
    case DD_OP_SIGMOID:
        dd_act_backward(e, x, y, dy, dx);
        break;
    case DD_OP_MAXPOOL:
    case DD_OP_AVGPOOL:
        dd_pool_backward(e, aux, dy, dx);
        break;
    case DD_OP_LRN:
        dd_lrn_backward(e, x, aux, dy, dx);
        break;
    case DD_OP_FLATTEN:
        if (dx != dy) memcpy(dx, dy, n_out(e) * sizeof *dx);
        break;
    default:
        break;
    }
    return DD_OK;
}

dd_status dd_layer_jvp(dd_layer_exec *e, const float *x, const float *y, const float *aux,
                       const float *w, const float *xd, const float *wd, float *yd, float *auxd) {
    switch (e->L->kind) {
    case DD_OP_CONV:
    case DD_OP_LINEAR:
        return dd_dense_jvp(e, x, w, xd, wd, yd);
    case DD_OP_RELU:
    case DD_OP_TANH:
    case DD_OP_SIGMOID:
        dd_act_jvp(e, x, y, xd, yd);
        break;
    case DD_OP_MAXPOOL:
    case DD_OP_AVGPOOL:
        dd_pool_jvp(e, aux, xd, yd);
        break;
    case DD_OP_LRN:
        dd_lrn_jvp(e, x, aux, xd, yd, auxd);
        break;
    case DD_OP_INSTNORM:
        dd_inorm_jvp(e, aux, w, xd, wd, yd, auxd);
        break;
    case DD_OP_FLATTEN:
        if (!xd)
            memset(yd, 0, n_out(e) * sizeof *yd);
        else if (yd != xd)
            memcpy(yd, xd, n_out(e) * sizeof *yd);
        break;
    }
    return DD_OK;
}

dd_status dd_layer_tbwd(dd_layer_exec *e, const float *x, const float *y, const float *aux,
                        const float *xd, const float *yd, const float *auxd, const float *w,
                        const float *wd, const float *dy, const float *dyd, float *dxd,
                        float *dwd) {
    switch (e->L->kind) {
    case DD_OP_CONV:
    case DD_OP_LINEAR:
        return dd_dense_tbwd(e, x, xd, w, wd, dy, dyd, dxd, dwd);
    case DD_OP_INSTNORM:
        if (dxd || dwd) dd_inorm_tbwd(e, aux, xd, auxd, w, wd, dy, dyd, dxd, dwd);
        return DD_OK;
    default:
        break;
    }
    if (!dxd) return DD_OK;
    switch (e->L->kind) {
    case DD_OP_RELU:
    case DD_OP_TANH:
    case DD_OP_SIGMOID:
        dd_act_tbwd(e, x, y, xd, yd, dy, dyd, dxd);
        break;
    case DD_OP_MAXPOOL:
    case DD_OP_AVGPOOL:
        dd_pool_backward(e, aux, dyd, dxd);
        break;
    case DD_OP_LRN:
        dd_lrn_tbwd(e, x, aux, xd, auxd, dy, dyd, dxd);
        break;
    case DD_OP_FLATTEN:
        if (dxd != dyd) memcpy(dxd, dyd, n_out(e) * sizeof *dxd);
        break;
    default:
        break;
    }
    return DD_OK;
}

const char *dd_op_name(dd_op_kind kind) {
    switch (kind) {
    case DD_OP_CONV:
        return "conv2d";
    case DD_OP_LINEAR:
        return "linear";
    case DD_OP_RELU:
        return "relu";
    case DD_OP_TANH:
        return "tanh";
    case DD_OP_SIGMOID:
        return "sigmoid";
    case DD_OP_MAXPOOL:
        return "maxpool";
    case DD_OP_AVGPOOL:
        return "avgpool";
    case DD_OP_LRN:
        return "lrn";
    case DD_OP_INSTNORM:
        return "instancenorm";
    case DD_OP_FLATTEN:
        return "flatten";
    }
    return "?";
}
