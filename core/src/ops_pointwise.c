/* distill — pointwise activations (relu, tanh, sigmoid) and pooling (max,
 * average): forward, VJP, JVP, tangent of VJP. Plain C for both backends. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"

#define PAR_MIN 32768

static size_t n_out(const dd_layer_exec *e) {
    return (size_t)e->batch * dd_layer_out_size(e->L);
}

void dd_act_forward(const dd_layer_exec *e, const float *x, float *y) {
    const size_t n = n_out(e);
    switch (e->L->kind) {
    case DD_OP_RELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case DD_OP_TANH:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    default:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    }
}

// f'(x) expressed through x (relu) or y (tanh, sigmoid).
static inline float dact(dd_op_kind k, float x, float y) {
    if (k == DD_OP_RELU) return x > 0.0f ? 1.0f : 0.0f;
    if (k == DD_OP_TANH) return 1.0f - y * y;
    return y * (1.0f - y);
}

void dd_act_backward(const dd_layer_exec *e, const float *x, const float *y, const float *dy,
                     float *dx) {
    const size_t n = n_out(e);
    const dd_op_kind k = e->L->kind;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * dact(k, x[i], y[i]);
}

void dd_act_jvp(const dd_layer_exec *e, const float *x, const float *y, const float *xd,
                float *yd) {
    const size_t n = n_out(e);
    const dd_op_kind k = e->L->kind;
    if (!xd) {
        memset(yd, 0, n * sizeof *yd);
        return;
    }
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++)
        yd[i] = xd[i] * dact(k, x[i], y[i]);
}

void dd_act_tbwd(const dd_layer_exec *e, const float *x, const float *y, const float *xd,
                 const float *yd, const float *dy, const float *dyd, float *dxd) {
    const size_t n = n_out(e);
    const dd_op_kind k = e->L->kind;
    if (k == DD_OP_RELU || !yd) {
        // relu is piecewise linear: its second derivative vanishes a.e.
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dxd[i] = dyd[i] * dact(k, x[i], y[i]);
        return;
    }
    if (k == DD_OP_TANH) {
        // d/dε [dy (1 − y²)] = d̊y (1 − y²) − 2 dy y ẏ
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dxd[i] = dyd[i] * (1.0f - y[i] * y[i]) - 2.0f * dy[i] * y[i] * yd[i];
    } else {
        // d/dε [dy y (1 − y)] = d̊y y (1 − y) + dy ẏ (1 − 2y)
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dxd[i] = dyd[i] * y[i] * (1.0f - y[i]) + dy[i] * yd[i] * (1.0f - 2.0f * y[i]);
    }
}

/* ---- pooling ------------------------------------------------------------ */

// Max-pool keeps, per output, the index of its argmax inside the input plane
// (stored as int32 in the aux buffer); padding never wins.
void dd_pool_forward(const dd_layer_exec *e, const float *x, float *y, float *aux) {
    const dd_layer *L = e->L;
    const int H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int k = L->kernel, s = L->stride, p = L->pad;
    const int64_t planes = e->batch * L->in_c;
    const size_t in = (size_t)H * W, out = (size_t)OH * OW;
    const int is_max = L->kind == DD_OP_MAXPOOL;
    const float inv = 1.0f / (float)(k * k);
    int32_t *arg = (int32_t *)aux;
#pragma omp parallel for schedule(static) if (planes * (int64_t)out >= PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * in;
        float *yp = y + (size_t)pl * out;
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * s - p, h1 = h0 + k;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * s - p, w1 = w0 + k;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                if (is_max) {
                    int best = h0 * W + w0;
                    float bv = xp[best];
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++)
                            if (xp[h * W + w] > bv) {
                                bv = xp[h * W + w];
                                best = h * W + w;
                            }
                    yp[oh * OW + ow] = bv;
                    arg[(size_t)pl * out + (size_t)oh * OW + ow] = best;
                } else {
                    float sum = 0.0f;
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++)
                            sum += xp[h * W + w];
                    // count_include_pad: the divisor is always k², so the op is linear
                    // with one fixed matrix.
                    yp[oh * OW + ow] = sum * inv;
                }
            }
        }
    }
}

void dd_pool_backward(const dd_layer_exec *e, const float *aux, const float *dy, float *dx) {
    const dd_layer *L = e->L;
    const int H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int k = L->kernel, s = L->stride, p = L->pad;
    const int64_t planes = e->batch * L->in_c;
    const size_t in = (size_t)H * W, out = (size_t)OH * OW;
    const int is_max = L->kind == DD_OP_MAXPOOL;
    const float inv = 1.0f / (float)(k * k);
    const int32_t *arg = (const int32_t *)aux;
#pragma omp parallel for schedule(static) if (planes * (int64_t)in >= PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + (size_t)pl * in;
        const float *dyp = dy + (size_t)pl * out;
        memset(dxp, 0, in * sizeof *dxp);
        if (is_max) {
            const int32_t *ap = arg + (size_t)pl * out;
            for (size_t o = 0; o < out; o++)
                dxp[ap[o]] += dyp[o];
            continue;
        }
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * s - p, h1 = h0 + k;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * s - p, w1 = w0 + k;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                float g = dyp[oh * OW + ow] * inv;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        dxp[h * W + w] += g;
            }
        }
    }
}

void dd_pool_jvp(const dd_layer_exec *e, const float *aux, const float *xd, float *yd) {
    const dd_layer *L = e->L;
    if (!xd) {
        memset(yd, 0, n_out(e) * sizeof *yd);
        return;
    }
    if (L->kind == DD_OP_AVGPOOL) {
        // linear: the tangent is the forward of the tangent
        dd_pool_forward(e, xd, yd, NULL);
        return;
    }
    const int64_t planes = e->batch * L->in_c;
    const size_t in = (size_t)L->in_h * L->in_w, out = (size_t)L->out_h * L->out_w;
    const int32_t *arg = (const int32_t *)aux;
#pragma omp parallel for schedule(static) if (planes * (int64_t)out >= PAR_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = xd + (size_t)pl * in;
        const int32_t *ap = arg + (size_t)pl * out;
        float *yp = yd + (size_t)pl * out;
        for (size_t o = 0; o < out; o++)
            yp[o] = xp[ap[o]];
    }
}
