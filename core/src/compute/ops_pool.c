/* distill — pooling (max, average, and relu fused into a 2×2 max-pool):
 * forward, VJP, JVP. Plain C for both backends; planes enter an OpenMP
 * region only when the work is large (PAR_MIN elements). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "compute/ops.h"

#define PAR_MIN DD_OPS_PAR_MIN
#define n_out dd_layer_exec_out_n

/* ---- pooling ------------------------------------------------------------ */

typedef struct pool_args {
    const dd_layer *L;
    const float *x;    /* forward input, or dy for the backward, xd for the JVP */
    float *y;          /* forward output, or dx, or yd */
    int32_t *arg;      /* max-pool argmax (forward writes, others read) */
    const float *aux2; /* pooled output (fused relu + max-pool backward) */
} pool_args;

typedef void (*pool_fn)(const pool_args *p, int64_t lo, int64_t hi);

// Runs f over planes [0, planes), in parallel only when the planes hold at
// least PAR_MIN elements (elems_per_plane counts the larger side).
static void pool_run(int nthreads, pool_fn f, const pool_args *p, int64_t planes,
                     size_t elems_per_plane) {
    if ((size_t)planes * elems_per_plane < PAR_MIN || nthreads <= 1) {
        f(p, 0, planes);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        f(p, planes * t / nt, planes * (t + 1) / nt);
    }
}

static int is_k2s2(const dd_layer *L) {
    return L->kernel == 2 && L->stride == 2 && L->pad == 0;
}

// Max-pool keeps, per output, the index of its argmax inside the input plane
// (stored as int32 in the aux buffer); padding never wins; ties keep the
// first in row-major order.
static void maxpool_fwd_generic(const pool_args *a, int64_t lo, int64_t hi) {
    const dd_layer *L = a->L;
    const int H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int k = L->kernel, s = L->stride, p = L->pad;
    const size_t in = (size_t)H * W, out = (size_t)OH * OW;
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *xp = a->x + (size_t)pl * in;
        float *yp = a->y + (size_t)pl * out;
        int32_t *ap = a->arg + (size_t)pl * out;
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * s - p, h1 = h0 + k;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * s - p, w1 = w0 + k;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
                int best = h0 * W + w0;
                float bv = xp[best];
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) {
                        const float v = xp[h * W + w];
                        const int gt = v > bv;
                        best = gt ? h * W + w : best;
                        bv = gt ? v : bv;
                    }
                yp[oh * OW + ow] = bv;
                ap[oh * OW + ow] = best;
            }
        }
    }
}

// Kernel 2, stride 2, no padding: every window lies inside the plane. With
// relu set, pools relu(x) (relu applied to the four inputs on the fly).
static inline void maxpool_fwd_k2s2_body(const pool_args *a, int64_t lo, int64_t hi,
                                         const int relu) {
    const dd_layer *L = a->L;
    const int W = L->in_w, OH = L->out_h, OW = L->out_w;
    const size_t in = (size_t)L->in_h * W, out = (size_t)OH * OW;
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *xp = a->x + (size_t)pl * in;
        for (int oh = 0; oh < OH; oh++) {
            const float *restrict r0 = xp + (size_t)(2 * oh) * W, *restrict r1 = r0 + W;
            float *restrict yr = a->y + (size_t)pl * out + (size_t)oh * OW;
            int32_t *restrict ar = a->arg + (size_t)pl * out + (size_t)oh * OW;
            const int base = 2 * oh * W;
            for (int ow = 0; ow < OW; ow++) {
                float v0 = r0[2 * ow], v1 = r0[2 * ow + 1];
                float v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
                if (relu) {
                    v0 = v0 > 0.0f ? v0 : 0.0f;
                    v1 = v1 > 0.0f ? v1 : 0.0f;
                    v2 = v2 > 0.0f ? v2 : 0.0f;
                    v3 = v3 > 0.0f ? v3 : 0.0f;
                }
                int best = base + 2 * ow;
                float bv = v0;
                best = v1 > bv ? base + 2 * ow + 1 : best;
                bv = v1 > bv ? v1 : bv;
                best = v2 > bv ? base + W + 2 * ow : best;
                bv = v2 > bv ? v2 : bv;
                best = v3 > bv ? base + W + 2 * ow + 1 : best;
                bv = v3 > bv ? v3 : bv;
                yr[ow] = bv;
                ar[ow] = best;
            }
        }
    }
}

static void maxpool_fwd_k2s2(const pool_args *a, int64_t lo, int64_t hi) {
    maxpool_fwd_k2s2_body(a, lo, hi, 0);
}

static void relu_maxpool_fwd_k2s2(const pool_args *a, int64_t lo, int64_t hi) {
    maxpool_fwd_k2s2_body(a, lo, hi, 1);
}

static void avgpool_fwd(const pool_args *a, int64_t lo, int64_t hi) {
    const dd_layer *L = a->L;
    const int H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int k = L->kernel, s = L->stride, p = L->pad;
    const size_t in = (size_t)H * W, out = (size_t)OH * OW;
    const float inv = 1.0f / (float)(k * k);
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *xp = a->x + (size_t)pl * in;
        float *yp = a->y + (size_t)pl * out;
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * s - p, h1 = h0 + k;
            if (h0 < 0) h0 = 0;
            if (h1 > H) h1 = H;
            for (int ow = 0; ow < OW; ow++) {
                int w0 = ow * s - p, w1 = w0 + k;
                if (w0 < 0) w0 = 0;
                if (w1 > W) w1 = W;
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

void dd_pool_forward(const dd_layer_exec *e, const float *x, float *y, float *aux) {
    const dd_layer *L = e->L;
    const pool_args a = {L, x, y, (int32_t *)aux, NULL};
    const int64_t planes = e->batch * L->in_c;
    const size_t out = (size_t)L->out_h * L->out_w;
    pool_fn f = L->kind == DD_OP_AVGPOOL ? avgpool_fwd
                : is_k2s2(L)             ? maxpool_fwd_k2s2
                                         : maxpool_fwd_generic;
    pool_run(e->nthreads, f, &a, planes, out);
}

static void maxpool_bwd_generic(const pool_args *a, int64_t lo, int64_t hi) {
    const dd_layer *L = a->L;
    const size_t in = (size_t)L->in_h * L->in_w, out = (size_t)L->out_h * L->out_w;
    for (int64_t pl = lo; pl < hi; pl++) {
        float *dxp = a->y + (size_t)pl * in;
        const float *dyp = a->x + (size_t)pl * out;
        const int32_t *ap = a->arg + (size_t)pl * out;
        memset(dxp, 0, in * sizeof *dxp);
        for (size_t o = 0; o < out; o++)
            dxp[ap[o]] += dyp[o];
    }
}

// Kernel 2, stride 2 on a plane the windows tile exactly: each input
// element is written once (the gradient at the argmax, zero elsewhere),
// with no clearing pass.
static void maxpool_bwd_k2s2_tiled(const pool_args *a, int64_t lo, int64_t hi) {
    const dd_layer *L = a->L;
    const int W = L->in_w, OH = L->out_h, OW = L->out_w;
    const size_t in = (size_t)L->in_h * W, out = (size_t)OH * OW;
    for (int64_t pl = lo; pl < hi; pl++) {
        for (int oh = 0; oh < OH; oh++) {
            float *restrict r0 = a->y + (size_t)pl * in + (size_t)(2 * oh) * W;
            float *restrict r1 = r0 + W;
            const float *restrict g = a->x + (size_t)pl * out + (size_t)oh * OW;
            const int32_t *restrict ar = a->arg + (size_t)pl * out + (size_t)oh * OW;
            const int base = 2 * oh * W;
            for (int ow = 0; ow < OW; ow++) {
                const int i = base + 2 * ow, am = ar[ow];
                const float gv = g[ow];
                r0[2 * ow] = am == i ? gv : 0.0f;
                r0[2 * ow + 1] = am == i + 1 ? gv : 0.0f;
                r1[2 * ow] = am == i + W ? gv : 0.0f;
                r1[2 * ow + 1] = am == i + W + 1 ? gv : 0.0f;
            }
        }
    }
}

static void avgpool_bwd(const pool_args *a, int64_t lo, int64_t hi) {
    const dd_layer *L = a->L;
    const int H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int k = L->kernel, s = L->stride, p = L->pad;
    const size_t in = (size_t)H * W, out = (size_t)OH * OW;
    const float inv = 1.0f / (float)(k * k);
    for (int64_t pl = lo; pl < hi; pl++) {
        float *dxp = a->y + (size_t)pl * in;
        const float *dyp = a->x + (size_t)pl * out;
        memset(dxp, 0, in * sizeof *dxp);
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

void dd_pool_backward(const dd_layer_exec *e, const float *aux, const float *dy, float *dx) {
    const dd_layer *L = e->L;
    const pool_args a = {L, dy, dx, (int32_t *)aux, NULL};
    const int64_t planes = e->batch * L->in_c;
    const size_t in = (size_t)L->in_h * L->in_w;
    pool_fn f;
    if (L->kind == DD_OP_AVGPOOL)
        f = avgpool_bwd;
    else if (is_k2s2(L) && L->in_h == 2 * L->out_h && L->in_w == 2 * L->out_w)
        f = maxpool_bwd_k2s2_tiled;
    else
        f = maxpool_bwd_generic;
    pool_run(e->nthreads, f, &a, planes, in);
}

static void maxpool_jvp(const pool_args *a, int64_t lo, int64_t hi) {
    const dd_layer *L = a->L;
    const size_t in = (size_t)L->in_h * L->in_w, out = (size_t)L->out_h * L->out_w;
    for (int64_t pl = lo; pl < hi; pl++) {
        const float *restrict xp = a->x + (size_t)pl * in;
        const int32_t *restrict ap = a->arg + (size_t)pl * out;
        float *restrict yp = a->y + (size_t)pl * out;
        for (size_t o = 0; o < out; o++)
            yp[o] = xp[ap[o]];
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
    const pool_args a = {L, xd, yd, (int32_t *)aux, NULL};
    pool_run(e->nthreads, maxpool_jvp, &a, e->batch * L->in_c, (size_t)L->out_h * L->out_w);
}

/* ---- relu followed by max-pool, backward in one pass -------------------- */

int dd_relu_maxpool_fusable(const dd_layer *relu, const dd_layer *pool) {
    return relu->kind == DD_OP_RELU && pool->kind == DD_OP_MAXPOOL && is_k2s2(pool) &&
           pool->in_h == 2 * pool->out_h && pool->in_w == 2 * pool->out_w;
}

// The relu mask at the argmax is (pooled output > 0): the pooled value is
// relu(x) there, positive exactly when x is. Each 2×2 window has one
// argmax: a cleared plane and one store per output (the other three inputs
// of the window stay zero).
static void relu_maxpool_bwd(const pool_args *a, int64_t lo, int64_t hi) {
    const dd_layer *L = a->L;
    const size_t in = (size_t)L->in_h * L->in_w, out = (size_t)L->out_h * L->out_w;
    for (int64_t pl = lo; pl < hi; pl++) {
        float *restrict dxp = a->y + (size_t)pl * in;
        const float *restrict g = a->x + (size_t)pl * out;
        const float *restrict py = a->aux2 + (size_t)pl * out;
        const int32_t *restrict ar = a->arg + (size_t)pl * out;
        memset(dxp, 0, in * sizeof *dxp);
        for (size_t o = 0; o < out; o++)
            dxp[ar[o]] = py[o] > 0.0f ? g[o] : 0.0f;
    }
}

void dd_relu_maxpool_backward(const dd_layer_exec *pool, const float *aux, const float *y,
                              const float *dy, float *dx) {
    const dd_layer *L = pool->L;
    const pool_args a = {L, dy, dx, (int32_t *)aux, y};
    pool_run(pool->nthreads, relu_maxpool_bwd, &a, pool->batch * L->in_c,
             (size_t)L->in_h * L->in_w);
}

void dd_relu_maxpool_forward(const dd_layer_exec *pool, const float *x, float *y, float *aux) {
    const dd_layer *L = pool->L;
    const pool_args a = {L, x, y, (int32_t *)aux, NULL};
    pool_run(pool->nthreads, relu_maxpool_fwd_k2s2, &a, pool->batch * L->in_c,
             (size_t)L->out_h * L->out_w);
}
