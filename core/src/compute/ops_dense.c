/* distill — conv2d and linear layers: forward, VJP, JVP and tangent of the
 * VJP. Each tangent term is another forward / backward-data /
 * backward-weights product, so both backends reuse the same three kernels. */
#include <omp.h>
#include <string.h>

#include "compute/dnnl_ops.h"
#include "compute/ops.h"

/* ---- reference conv via im2col ----------------------------------------- */

typedef struct conv_dims {
    int C, H, W, O, k, s, p, OH, OW, K, P;
} conv_dims;

static conv_dims conv_dims_of(const dd_layer *L) {
    conv_dims d;
    d.C = L->in_c;
    d.H = L->in_h;
    d.W = L->in_w;
    d.O = L->out_c;
    d.k = L->kernel;
    d.s = L->stride;
    d.p = L->pad;
    d.OH = L->out_h;
    d.OW = L->out_w;
    d.K = d.C * d.k * d.k;
    d.P = d.OH * d.OW;
    return d;
}

static void im2col(const conv_dims *d, const float *x, float *col) {
    for (int c = 0; c < d->C; c++) {
        const float *xc = x + (size_t)c * d->H * d->W;
        for (int ki = 0; ki < d->k; ki++) {
            for (int kj = 0; kj < d->k; kj++) {
                float *row = col + (size_t)((c * d->k + ki) * d->k + kj) * d->P;
                for (int oh = 0; oh < d->OH; oh++) {
                    int ih = oh * d->s - d->p + ki;
                    float *r = row + (size_t)oh * d->OW;
                    if (ih < 0 || ih >= d->H) {
                        memset(r, 0, (size_t)d->OW * sizeof *r);
                        continue;
                    }
                    const float *xr = xc + (size_t)ih * d->W;
                    for (int ow = 0; ow < d->OW; ow++) {
                        int iw = ow * d->s - d->p + kj;
                        r[ow] = (iw >= 0 && iw < d->W) ? xr[iw] : 0.0f;
                    }
                }
            }
        }
    }
}

static void col2im_add(const conv_dims *d, const float *col, float *x) {
    for (int c = 0; c < d->C; c++) {
        float *xc = x + (size_t)c * d->H * d->W;
        for (int ki = 0; ki < d->k; ki++) {
            for (int kj = 0; kj < d->k; kj++) {
                const float *row = col + (size_t)((c * d->k + ki) * d->k + kj) * d->P;
                for (int oh = 0; oh < d->OH; oh++) {
                    int ih = oh * d->s - d->p + ki;
                    if (ih < 0 || ih >= d->H) continue;
                    const float *r = row + (size_t)oh * d->OW;
                    float *xr = xc + (size_t)ih * d->W;
                    for (int ow = 0; ow < d->OW; ow++) {
                        int iw = ow * d->s - d->p + kj;
                        if (iw >= 0 && iw < d->W) xr[iw] += r[ow];
                    }
                }
            }
        }
    }
}

static size_t conv_thread_floats(const conv_dims *d) {
    // col buffer, then partial dW and db for the weight gradient; rounded to
    // a cache line so threads do not share lines.
    size_t n = (size_t)d->K * d->P + (size_t)d->O * d->K + (size_t)d->O;
    return (n + 15) / 16 * 16;
}

// y = w1 ∗ x1 + w2 ∗ x2 + b, any of the pairs (or b) may be NULL.
static void conv_ref_fwd(dd_layer_exec *e, const float *x1, const float *w1, const float *x2,
                         const float *w2, const float *b, float *y) {
    conv_dims d = conv_dims_of(e->L);
    const size_t tf = conv_thread_floats(&d);
    const size_t in = (size_t)d.C * d.H * d.W, out = (size_t)d.O * d.P;
    const int64_t B = e->batch;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (e->nthreads > 1 && B > 1)
    for (int64_t n = 0; n < B; n++) {
        float *col = e->scratch + (size_t)omp_get_thread_num() * tf;
        float *yn = y + (size_t)n * out;
        for (int o = 0; o < d.O; o++) {
            float bv = b ? b[o] : 0.0f;
            float *yr = yn + (size_t)o * d.P;
            for (int p = 0; p < d.P; p++)
                yr[p] = bv;
        }
        if (x1 && w1) {
            im2col(&d, x1 + (size_t)n * in, col);
            dd_gemm_acc(d.O, d.P, d.K, w1, d.K, 1, col, d.P, yn, d.P, 0);
        }
        if (x2 && w2) {
            im2col(&d, x2 + (size_t)n * in, col);
            dd_gemm_acc(d.O, d.P, d.K, w2, d.K, 1, col, d.P, yn, d.P, 0);
        }
    }
}

// dx = w1ᵀ ⋆ dy1 + w2ᵀ ⋆ dy2 (second pair optional).
static void conv_ref_bwd_data(dd_layer_exec *e, const float *dy1, const float *w1, const float *dy2,
                              const float *w2, float *dx) {
    conv_dims d = conv_dims_of(e->L);
    const size_t tf = conv_thread_floats(&d);
    const size_t in = (size_t)d.C * d.H * d.W, out = (size_t)d.O * d.P;
    const int64_t B = e->batch;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (e->nthreads > 1 && B > 1)
    for (int64_t n = 0; n < B; n++) {
        float *col = e->scratch + (size_t)omp_get_thread_num() * tf;
        memset(col, 0, (size_t)d.K * d.P * sizeof *col);
        // dcol[K×P] = wᵀ[K×O] · dy[O×P]: A(kk, o) = w[o*K + kk].
        dd_gemm_acc(d.K, d.P, d.O, w1, 1, d.K, dy1 + (size_t)n * out, d.P, col, d.P, 0);
        if (dy2 && w2)
            dd_gemm_acc(d.K, d.P, d.O, w2, 1, d.K, dy2 + (size_t)n * out, d.P, col, d.P, 0);
        float *dxn = dx + (size_t)n * in;
        memset(dxn, 0, in * sizeof *dxn);
        col2im_add(&d, col, dxn);
    }
}

/* Backward-data of a one-input-channel convolution (LeNet's first layer,
 * where the distilled images' gradients come from), stride 1, as a direct
 * correlation of the zero-padded output gradients with the flipped kernels:
 * 8 outputs of a row per vector register, summed over every output channel
 * and kernel tap before they are stored. oneDNN runs this shape through its
 * gemm fallback at about 13 GFLOP/s. For the padded planes of one image up
 * to IC1_PAD_FLOATS. */
#define IC1_MAX_SIDE 64
#define IC1_PAD_FLOATS 16384
#define IC1_SLACK (2 * IC1_MAX_SIDE + 32)

typedef float v8f __attribute__((vector_size(32)));

static inline v8f v8f_load(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int ic1_bwd_data_fits(const dd_layer *L) {
    const int k = L->kernel, PH = L->in_h + k - 1, PW = L->in_w + k - 1;
    return L->kind == DD_OP_CONV && L->in_c == 1 && L->stride == 1 && L->pad >= 0 &&
           L->pad <= k - 1 && PH <= IC1_MAX_SIDE && PW <= IC1_MAX_SIDE &&
           (size_t)L->out_c * PH * PW <= IC1_PAD_FLOATS;
}

// dx (one image, H×W) += the correlation of dy (O planes of OH×OW) with the
// flipped kernels w (O×k×k).
static void ic1_bwd_data_image(const dd_layer *L, const float *dy, const float *w, float *dx) {
    const int k = L->kernel, H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    const int O = L->out_c, off = k - 1 - L->pad, PW = W + k - 1, PH = H + k - 1;
    const size_t plane = (size_t)PH * PW;
    // pad[o][r][c] = dy[o][r − off][c − off], zero outside; the slack after
    // the last plane is read by the lanes past a row's end and by the second
    // row of an odd last pair (discarded)
    float pad[IC1_PAD_FLOATS + IC1_SLACK];
    memset(pad, 0, ((size_t)O * plane + IC1_SLACK) * sizeof *pad);
    for (int o = 0; o < O; o++)
        for (int r = 0; r < OH; r++)
            memcpy(pad + (size_t)o * plane + (size_t)(r + off) * PW + off,
                   dy + ((size_t)o * OH + r) * OW, (size_t)OW * sizeof *pad);
    // two rows × 32 columns at a time: eight independent sums in registers
    for (int iy = 0; iy < H; iy += 2) {
        const int rows = H - iy < 2 ? H - iy : 2;
        for (int x0 = 0; x0 < W; x0 += 32) {
            v8f s[2][4] = {{{0}}};
            for (int o = 0; o < O; o++) {
                const float *wo = w + (size_t)o * k * k;
                const float *base = pad + (size_t)o * plane + (size_t)iy * PW + x0;
                for (int kh = 0; kh < k; kh++) {
                    const float *r0 = base + (size_t)kh * PW, *r1 = r0 + PW;
                    const float *wr = wo + (size_t)(k - 1 - kh) * k + (k - 1);
                    for (int kw = 0; kw < k; kw++) {
                        const float wv = wr[-kw];
                        for (int b = 0; b < 4; b++) {
                            s[0][b] += v8f_load(r0 + kw + 8 * b) * wv;
                            s[1][b] += v8f_load(r1 + kw + 8 * b) * wv;
                        }
                    }
                }
            }
            const int n = W - x0 < 32 ? W - x0 : 32;
            for (int r = 0; r < rows; r++) {
                float *dxr = dx + (size_t)(iy + r) * W + x0;
                for (int t = 0; t < n; t++)
                    dxr[t] += s[r][t / 8][t % 8];
            }
        }
    }
}

static void ic1_bwd_data(dd_layer_exec *e, const float *dy1, const float *w1, const float *dy2,
                         const float *w2, float *dx) {
    const dd_layer *L = e->L;
    const size_t in = (size_t)L->in_h * L->in_w, out = (size_t)L->out_c * L->out_h * L->out_w;
    const int64_t B = e->batch;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (e->nthreads > 1 && B > 1)
    for (int64_t n = 0; n < B; n++) {
        float *dxn = dx + (size_t)n * in;
        memset(dxn, 0, in * sizeof *dxn);
        ic1_bwd_data_image(L, dy1 + (size_t)n * out, w1, dxn);
        if (dy2 && w2) ic1_bwd_data_image(L, dy2 + (size_t)n * out, w2, dxn);
    }
}

// dw = Σ_n dy1 ⋆ x1 + dy2 ⋆ x2, db = Σ dy1 (second pair optional; db may
// be NULL). Per-thread partial sums reduced in thread order.
static void conv_ref_bwd_weights(dd_layer_exec *e, const float *x1, const float *dy1,
                                 const float *x2, const float *dy2, float *dw, float *db) {
    conv_dims d = conv_dims_of(e->L);
    const size_t tf = conv_thread_floats(&d);
    const size_t in = (size_t)d.C * d.H * d.W, out = (size_t)d.O * d.P;
    const size_t nw = (size_t)d.O * d.K;
    const int64_t B = e->batch;
    int used = 1;
#pragma omp parallel num_threads(e->nthreads) if (e->nthreads > 1 && B > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        if (t == 0) used = nt;
        float *col = e->scratch + (size_t)t * tf;
        float *pw = col + (size_t)d.K * d.P, *pb = pw + nw;
        memset(pw, 0, (nw + (size_t)d.O) * sizeof *pw);
        int64_t lo = B * t / nt, hi = B * (t + 1) / nt;
        for (int64_t n = lo; n < hi; n++) {
            for (int pass = 0; pass < 2; pass++) {
                const float *xs = pass ? x2 : x1, *dys = pass ? dy2 : dy1;
                if (!xs || !dys) continue;
                const float *dyn = dys + (size_t)n * out;
                im2col(&d, xs + (size_t)n * in, col);
                dd_gemm_nt_acc(d.O, d.K, d.P, dyn, d.P, col, d.P, pw, d.K, 0);
                if (pass) continue; // db = Σ dy1 only
                for (int o = 0; o < d.O; o++) {
                    const float *r = dyn + (size_t)o * d.P;
                    float s = 0.0f;
                    for (int p = 0; p < d.P; p++)
                        s += r[p];
                    pb[o] += s;
                }
            }
        }
    }
    for (int t = 0; t < used; t++) {
        const float *pw = e->scratch + (size_t)t * tf + (size_t)d.K * d.P, *pb = pw + nw;
        if (t == 0) {
            memcpy(dw, pw, nw * sizeof *dw);
            if (db) memcpy(db, pb, (size_t)d.O * sizeof *db);
        } else {
            for (size_t i = 0; i < nw; i++)
                dw[i] += pw[i];
            if (db)
                for (int o = 0; o < d.O; o++)
                    db[o] += pb[o];
        }
    }
}

/* ---- reference linear --------------------------------------------------- */

static void lin_ref_fwd(dd_layer_exec *e, const float *x1, const float *w1, const float *x2,
                        const float *w2, const float *b, float *y) {
    const int B = (int)e->batch, I = (int)dd_layer_in_size(e->L), O = e->L->out_c;
    for (int n = 0; n < B; n++)
        for (int o = 0; o < O; o++)
            y[(size_t)n * O + o] = b ? b[o] : 0.0f;
    if (x1 && w1) dd_gemm_nt_acc(B, O, I, x1, I, w1, I, y, O, e->nthreads);
    if (x2 && w2) dd_gemm_nt_acc(B, O, I, x2, I, w2, I, y, O, e->nthreads);
}

static void lin_ref_bwd_data(dd_layer_exec *e, const float *dy1, const float *w1, const float *dy2,
                             const float *w2, float *dx) {
    const int B = (int)e->batch, I = (int)dd_layer_in_size(e->L), O = e->L->out_c;
    memset(dx, 0, (size_t)B * I * sizeof *dx);
    dd_gemm_acc(B, I, O, dy1, O, 1, w1, I, dx, I, e->nthreads);
    if (dy2 && w2) dd_gemm_acc(B, I, O, dy2, O, 1, w2, I, dx, I, e->nthreads);
}

static void lin_ref_bwd_weights(dd_layer_exec *e, const float *x1, const float *dy1,
                                const float *x2, const float *dy2, float *dw, float *db) {
    const int B = (int)e->batch, I = (int)dd_layer_in_size(e->L), O = e->L->out_c;
    memset(dw, 0, (size_t)O * I * sizeof *dw);
    // dW[O×I] = dyᵀ[O×B] · x[B×I]: A(o, n) = dy[n*O + o].
    if (x1 && dy1) dd_gemm_acc(O, I, B, dy1, 1, O, x1, I, dw, I, e->nthreads);
    if (x2 && dy2) dd_gemm_acc(O, I, B, dy2, 1, O, x2, I, dw, I, e->nthreads);
    if (db) {
        for (int o = 0; o < O; o++) {
            float s = 0.0f;
            for (int n = 0; n < B; n++)
                s += dy1[(size_t)n * O + o];
            db[o] = s;
        }
    }
}

/* ---- dispatch: three kernels with optional second term ------------------ */

static void add_into(float *dst, const float *src, size_t n, int nthreads) {
#pragma omp parallel for schedule(static) num_threads(nthreads) if (n >= 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

static size_t n_in(const dd_layer_exec *e) {
    return (size_t)e->batch * dd_layer_in_size(e->L);
}
static size_t n_out(const dd_layer_exec *e) {
    return (size_t)e->batch * dd_layer_out_size(e->L);
}

/* oneDNN: each call is one primitive; a second term goes through scratch2
 * and is added (the primitives overwrite their outputs). */
static dd_status dn_fwd(dd_layer_exec *e, const float *x, const float *w, const float *b,
                        float *y) {
    if (e->conv) return dd_dnnl_conv_forward(e->conv, x, w, b, y);
    return dd_dnnl_linear_forward(e->lin, x, w, b, y);
}

static dd_status dn_bwd_data(dd_layer_exec *e, const float *dy, const float *w, float *dx) {
    if (e->conv) return dd_dnnl_conv_backward_data(e->conv, dy, w, dx);
    return dd_dnnl_linear_backward_data(e->lin, dy, w, dx);
}

static dd_status dn_bwd_weights(dd_layer_exec *e, const float *x, const float *dy, float *dw,
                                float *db) {
    if (e->conv) return dd_dnnl_conv_backward_weights(e->conv, x, dy, dw, db);
    return dd_dnnl_linear_backward_weights(e->lin, x, dy, dw, db);
}

static dd_status k_fwd(dd_layer_exec *e, const float *x1, const float *w1, const float *x2,
                       const float *w2, const float *b, float *y) {
    if (e->conv || e->lin) {
        DD_TRY(dn_fwd(e, x1, w1, b, y));
        if (x2 && w2) {
            DD_TRY(dn_fwd(e, x2, w2, NULL, e->scratch2));
            add_into(y, e->scratch2, n_out(e), e->nthreads);
        }
        return DD_OK;
    }
    if (e->L->kind == DD_OP_CONV)
        conv_ref_fwd(e, x1, w1, x2, w2, b, y);
    else
        lin_ref_fwd(e, x1, w1, x2, w2, b, y);
    return DD_OK;
}

static dd_status k_bwd_data(dd_layer_exec *e, const float *dy1, const float *w1, const float *dy2,
                            const float *w2, float *dx) {
    if (ic1_bwd_data_fits(e->L)) {
        ic1_bwd_data(e, dy1, w1, dy2, w2, dx);
        return DD_OK;
    }
    if (e->conv || e->lin) {
        DD_TRY(dn_bwd_data(e, dy1, w1, dx));
        if (dy2 && w2) {
            DD_TRY(dn_bwd_data(e, dy2, w2, e->scratch2));
            add_into(dx, e->scratch2, n_in(e), e->nthreads);
        }
        return DD_OK;
    }
    if (e->L->kind == DD_OP_CONV)
        conv_ref_bwd_data(e, dy1, w1, dy2, w2, dx);
    else
        lin_ref_bwd_data(e, dy1, w1, dy2, w2, dx);
    return DD_OK;
}

// dw = x1 ⋆ dy1 + x2 ⋆ dy2; db = Σ dy1 only (db may be NULL).
static dd_status k_bwd_weights(dd_layer_exec *e, const float *x1, const float *dy1, const float *x2,
                               const float *dy2, float *dw, float *db) {
    if (e->conv || e->lin) {
        DD_TRY(dn_bwd_weights(e, x1, dy1, dw, db));
        if (x2 && dy2) {
            DD_TRY(dn_bwd_weights(e, x2, dy2, e->scratch2, NULL));
            add_into(dw, e->scratch2, e->L->n_weight, e->nthreads);
        }
        return DD_OK;
    }
    if (e->L->kind == DD_OP_CONV)
        conv_ref_bwd_weights(e, x1, dy1, x2, dy2, dw, db);
    else
        lin_ref_bwd_weights(e, x1, dy1, x2, dy2, dw, db);
    return DD_OK;
}

dd_status dd_dense_exec_init(dd_layer_exec *e, struct dd_dnnl *dnnl) {
    const dd_layer *L = e->L;
    if (e->backend == DD_BACKEND_ONEDNN && dnnl) {
        dd_status s;
        if (L->kind == DD_OP_CONV) {
            dd_dnnl_conv_shape cs = {e->batch, L->in_c,   L->in_h,   L->in_w,
                                     L->out_c, L->kernel, L->stride, L->pad};
            s = dd_dnnl_conv_create(dnnl, &cs, &e->conv);
        } else {
            dd_dnnl_linear_shape ls = {e->batch, (int64_t)dd_layer_in_size(L), L->out_c};
            s = dd_dnnl_linear_create(dnnl, &ls, &e->lin);
        }
        if (s != DD_OK) {
            dd_error_prefix("%s layer (batch %lld)", dd_op_name(L->kind), (long long)e->batch);
            return s;
        }
        // One buffer for the second term of a tangent: an activation or a weight.
        size_t n = n_in(e) > n_out(e) ? n_in(e) : n_out(e);
        if (L->n_weight > n) n = L->n_weight;
        e->scratch2 = dd_alloc_floats(n);
        if (!e->scratch2) return DD_ERR_NOMEM;
        e->scratch2_n = n;
        return DD_OK;
    }
    if (L->kind == DD_OP_CONV) {
        conv_dims d = conv_dims_of(L);
        e->scratch_n = conv_thread_floats(&d) * (size_t)e->nthreads;
        e->scratch = dd_alloc_floats(e->scratch_n);
        if (!e->scratch) return DD_ERR_NOMEM;
    }
    return DD_OK;
}

void dd_dense_exec_fini(dd_layer_exec *e) {
    dd_dnnl_conv_destroy(e->conv);
    dd_dnnl_linear_destroy(e->lin);
    e->conv = NULL;
    e->lin = NULL;
}

dd_status dd_dense_forward(dd_layer_exec *e, const float *x, const float *w, float *y) {
    return k_fwd(e, x, w, NULL, NULL, w + e->L->n_weight, y);
}

dd_status dd_dense_backward(dd_layer_exec *e, const float *x, const float *w, const float *dy,
                            float *dx, float *dw) {
    if (dx) DD_TRY(k_bwd_data(e, dy, w, NULL, NULL, dx));
    if (dw) DD_TRY(k_bwd_weights(e, x, dy, NULL, NULL, dw, dw + e->L->n_weight));
    return DD_OK;
}

dd_status dd_dense_jvp(dd_layer_exec *e, const float *x, const float *w, const float *xd,
                       const float *wd, float *yd) {
    // ẏ = Ẇ∗x + ḃ + W∗ẋ
    return k_fwd(e, x, wd, xd, xd ? w : NULL, wd + e->L->n_weight, yd);
}

dd_status dd_dense_tbwd(dd_layer_exec *e, const float *x, const float *xd, const float *w,
                        const float *wd, const float *dy, const float *dyd, float *dxd,
                        float *dwd) {
    // d̊x = Wᵀ∗d̊y + Ẇᵀ∗dy;  d̊W = x⋆d̊y + ẋ⋆dy;  d̊b = Σ d̊y
    if (dxd) DD_TRY(k_bwd_data(e, dyd, w, dy, wd, dxd));
    if (dwd) DD_TRY(k_bwd_weights(e, x, dyd, xd, xd ? dy : NULL, dwd, dwd + e->L->n_weight));
    return DD_OK;
}
