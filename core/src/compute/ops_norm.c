/* distill — local response norm (across channels) and instance norm:
 * forward, VJP, JVP and tangent of VJP, with their second-derivative terms.
 * Plain C for both backends, parallel over samples / planes. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "compute/ops.h"

/* ---- LRN -----------------------------------------------------------------
 * s_c = k + a Σ_{c'∈W(c)} x_{c'}², a = alpha/size, y_c = x_c s_c^{-β}.
 * W(c) = [c − size/2, c + (size−1)/2] (the PyTorch window); its transpose
 * T(j) = {c : j ∈ W(c)} = [j − (size−1)/2, j + size/2].
 * aux = [s | q = s^{-β}], auxd = ṡ. */

typedef struct lrn_dims {
    int C, M, size, lo, hi; /* W(c) = [c − lo, c + hi] */
    float a, beta, k;
} lrn_dims;

static lrn_dims lrn_dims_of(const dd_layer *L) {
    lrn_dims d;
    d.C = L->in_c;
    d.M = L->in_h * L->in_w;
    d.size = L->size;
    d.lo = L->size / 2;
    d.hi = (L->size - 1) / 2;
    d.a = L->alpha / (float)L->size;
    d.beta = L->beta;
    d.k = L->k;
    return d;
}

static inline int imax(int a, int b) {
    return a > b ? a : b;
}
static inline int imin(int a, int b) {
    return a < b ? a : b;
}

// out[c] = Σ_{c'∈[c−lo, c+hi]} in[c'] per position (planes of M floats).
static void channel_window_sum(const lrn_dims *d, int lo, int hi, const float *in, float *out) {
    for (int c = 0; c < d->C; c++) {
        float *o = out + (size_t)c * d->M;
        memset(o, 0, (size_t)d->M * sizeof *o);
        for (int c2 = imax(0, c - lo); c2 <= imin(d->C - 1, c + hi); c2++) {
            const float *ip = in + (size_t)c2 * d->M;
            for (int m = 0; m < d->M; m++)
                o[m] += ip[m];
        }
    }
}

static float *thread_buf(const dd_layer_exec *e, size_t per_thread) {
    return e->scratch + (size_t)omp_get_thread_num() * per_thread;
}

size_t dd_lrn_scratch_floats(const dd_layer *L) {
    // per thread: two C×M planes sets and one more for window sums
    return 3 * (size_t)L->in_c * L->in_h * L->in_w;
}

void dd_lrn_forward(const dd_layer_exec *e, const float *x, float *y, float *aux) {
    const lrn_dims d = lrn_dims_of(e->L);
    const size_t sz = (size_t)d.C * d.M, per = dd_lrn_scratch_floats(e->L);
    float *S = aux, *Q = aux + (size_t)e->batch * sz;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (e->batch > 1)
    for (int64_t n = 0; n < e->batch; n++) {
        float *sq = thread_buf(e, per);
        const float *xn = x + (size_t)n * sz;
        for (size_t i = 0; i < sz; i++)
            sq[i] = xn[i] * xn[i];
        float *sn = S + (size_t)n * sz, *qn = Q + (size_t)n * sz, *yn = y + (size_t)n * sz;
        channel_window_sum(&d, d.lo, d.hi, sq, sn);
        for (size_t i = 0; i < sz; i++) {
            sn[i] = d.k + d.a * sn[i];
            qn[i] = powf(sn[i], -d.beta);
            yn[i] = xn[i] * qn[i];
        }
    }
}

void dd_lrn_backward(const dd_layer_exec *e, const float *x, const float *aux, const float *dy,
                     float *dx) {
    const lrn_dims d = lrn_dims_of(e->L);
    const size_t sz = (size_t)d.C * d.M, per = dd_lrn_scratch_floats(e->L);
    const float *S = aux, *Q = aux + (size_t)e->batch * sz;
    const float c2 = 2.0f * d.a * d.beta;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (e->batch > 1)
    for (int64_t n = 0; n < e->batch; n++) {
        float *t = thread_buf(e, per), *U = t + sz;
        const size_t off = (size_t)n * sz;
        // t_c = dy_c x_c s_c^{-β-1};  dx_j = dy_j q_j − 2aβ x_j Σ_{c∈T(j)} t_c
        for (size_t i = 0; i < sz; i++)
            t[i] = dy[off + i] * x[off + i] * Q[off + i] / S[off + i];
        channel_window_sum(&d, d.hi, d.lo, t, U);
        for (size_t i = 0; i < sz; i++)
            dx[off + i] = dy[off + i] * Q[off + i] - c2 * x[off + i] * U[i];
    }
}

void dd_lrn_jvp(const dd_layer_exec *e, const float *x, const float *aux, const float *xd,
                float *yd, float *auxd) {
    const lrn_dims d = lrn_dims_of(e->L);
    const size_t sz = (size_t)d.C * d.M, per = dd_lrn_scratch_floats(e->L);
    const float *S = aux, *Q = aux + (size_t)e->batch * sz;
    if (!xd) {
        memset(yd, 0, (size_t)e->batch * sz * sizeof *yd);
        memset(auxd, 0, (size_t)e->batch * sz * sizeof *auxd);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (e->batch > 1)
    for (int64_t n = 0; n < e->batch; n++) {
        float *t = thread_buf(e, per);
        const size_t off = (size_t)n * sz;
        for (size_t i = 0; i < sz; i++)
            t[i] = x[off + i] * xd[off + i];
        float *sd = auxd + off;
        channel_window_sum(&d, d.lo, d.hi, t, sd);
        // ṡ = 2a Σ x ẋ;  ẏ = ẋ q − β x q ṡ / s
        for (size_t i = 0; i < sz; i++) {
            sd[i] *= 2.0f * d.a;
            yd[off + i] =
                xd[off + i] * Q[off + i] - d.beta * x[off + i] * Q[off + i] * sd[i] / S[off + i];
        }
    }
}

void dd_lrn_tbwd(const dd_layer_exec *e, const float *x, const float *aux, const float *xd,
                 const float *auxd, const float *dy, const float *dyd, float *dxd) {
    const lrn_dims d = lrn_dims_of(e->L);
    const size_t sz = (size_t)d.C * d.M, per = dd_lrn_scratch_floats(e->L);
    const float *S = aux, *Q = aux + (size_t)e->batch * sz;
    const float c2 = 2.0f * d.a * d.beta;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (e->batch > 1)
    for (int64_t n = 0; n < e->batch; n++) {
        float *t = thread_buf(e, per), *U = t + sz, *W = U + sz;
        const size_t off = (size_t)n * sz;
        const float *xn = x + off, *Sn = S + off, *Qn = Q + off, *dyn = dy + off, *dydn = dyd + off;
        const float *xdn = xd ? xd + off : NULL, *sdn = xd ? auxd + off : NULL;
        // U = Σ_T t with t = dy x r (r = q/s); W = Σ_T ṫ with
        // ṫ = d̊y x r + dy ẋ r + dy x ṙ,  ṙ = −(β+1) r ṡ / s
        for (size_t i = 0; i < sz; i++) {
            float r = Qn[i] / Sn[i];
            t[i] = dyn[i] * xn[i] * r;
        }
        channel_window_sum(&d, d.hi, d.lo, t, U);
        for (size_t i = 0; i < sz; i++) {
            float r = Qn[i] / Sn[i];
            float v = dydn[i] * xn[i] * r;
            if (xdn) {
                float rd = -(d.beta + 1.0f) * r * sdn[i] / Sn[i];
                v += dyn[i] * xdn[i] * r + dyn[i] * xn[i] * rd;
            }
            t[i] = v;
        }
        channel_window_sum(&d, d.hi, d.lo, t, W);
        // d̊x = d̊y q + dy q̇ − 2aβ (ẋ U + x W),  q̇ = −β r ṡ
        for (size_t i = 0; i < sz; i++) {
            float v = dydn[i] * Qn[i] - c2 * xn[i] * W[i];
            if (xdn) {
                float qd = -d.beta * Qn[i] / Sn[i] * sdn[i];
                v += dyn[i] * qd - c2 * xdn[i] * U[i];
            }
            dxd[off + i] = v;
        }
    }
}

/* ---- instance norm -------------------------------------------------------
 * Per (n, c) plane of M values: x̂ = (x − μ)·inv, inv = (σ² + eps)^{-1/2},
 * y = γ_c x̂ + β_c. aux = [x̂ (B·C·M) | μ, inv (B·C·2)];
 * auxd = [x̂̇ (B·C·M) | ρ = inv̇/inv (B·C)]. scratch: B·C·2 partial sums. */

void dd_inorm_forward(const dd_layer_exec *e, const float *x, const float *w, float *y,
                      float *aux) {
    const dd_layer *L = e->L;
    const int C = L->in_c;
    const size_t M = (size_t)L->in_h * L->in_w;
    const int64_t planes = e->batch * C;
    float *xh = aux, *stats = aux + (size_t)planes * M;
    const float *gam = w, *bet = w + C;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (planes * (int64_t)M >= 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * M;
        double s = 0.0;
        for (size_t i = 0; i < M; i++)
            s += xp[i];
        const double mu = s / (double)M;
        double v = 0.0;
        for (size_t i = 0; i < M; i++)
            v += ((double)xp[i] - mu) * ((double)xp[i] - mu);
        const float inv = (float)(1.0 / sqrt(v / (double)M + (double)L->eps));
        const int c = (int)(pl % C);
        float *hp = xh + (size_t)pl * M, *yp = y + (size_t)pl * M;
        for (size_t i = 0; i < M; i++) {
            hp[i] = ((float)((double)xp[i] - mu)) * inv;
            yp[i] = gam[c] * hp[i] + bet[c];
        }
        stats[2 * pl] = (float)mu;
        stats[2 * pl + 1] = inv;
    }
}

// dx = inv (g − mean g − x̂ mean(g x̂)) for g = dx̂, one plane.
static void inorm_proj(size_t M, float inv, const float *xh, const float *g, float *out) {
    double m1 = 0.0, m2 = 0.0;
    for (size_t i = 0; i < M; i++) {
        m1 += g[i];
        m2 += (double)g[i] * xh[i];
    }
    const float a = (float)(m1 / (double)M), b = (float)(m2 / (double)M);
    for (size_t i = 0; i < M; i++)
        out[i] = inv * (g[i] - a - xh[i] * b);
}

static void reduce_param_partials(const dd_layer_exec *e, const float *part, float *dw) {
    const int C = e->L->in_c;
    for (int c = 0; c < C; c++) {
        double sg = 0.0, sb = 0.0;
        for (int64_t n = 0; n < e->batch; n++) {
            sg += part[2 * ((size_t)n * C + c)];
            sb += part[2 * ((size_t)n * C + c) + 1];
        }
        dw[c] = (float)sg;
        dw[C + c] = (float)sb;
    }
}

void dd_inorm_backward(const dd_layer_exec *e, const float *aux, const float *w, const float *dy,
                       float *dx, float *dw) {
    const dd_layer *L = e->L;
    const int C = L->in_c;
    const size_t M = (size_t)L->in_h * L->in_w;
    const int64_t planes = e->batch * C;
    const float *xh = aux, *stats = aux + (size_t)planes * M;
    float *part = e->scratch;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (planes * (int64_t)M >= 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int c = (int)(pl % C);
        const float *hp = xh + (size_t)pl * M, *dyp = dy + (size_t)pl * M;
        if (dw) {
            double sg = 0.0, sb = 0.0;
            for (size_t i = 0; i < M; i++) {
                sg += (double)dyp[i] * hp[i];
                sb += dyp[i];
            }
            part[2 * pl] = (float)sg;
            part[2 * pl + 1] = (float)sb;
        }
        if (dx) {
            float *dxp = dx + (size_t)pl * M;
            // dx̂ = γ dy, projected; γ is a scalar per plane so it factors out.
            inorm_proj(M, stats[2 * pl + 1] * w[c], hp, dyp, dxp);
        }
    }
    if (dw) reduce_param_partials(e, part, dw);
}

void dd_inorm_jvp(const dd_layer_exec *e, const float *aux, const float *w, const float *xd,
                  const float *wd, float *yd, float *auxd) {
    const dd_layer *L = e->L;
    const int C = L->in_c;
    const size_t M = (size_t)L->in_h * L->in_w;
    const int64_t planes = e->batch * C;
    const float *xh = aux, *stats = aux + (size_t)planes * M;
    float *xhd = auxd, *rho = auxd + (size_t)planes * M;
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (planes * (int64_t)M >= 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int c = (int)(pl % C);
        const float *hp = xh + (size_t)pl * M;
        float *hdp = xhd + (size_t)pl * M, *ydp = yd + (size_t)pl * M;
        const float inv = stats[2 * pl + 1];
        if (xd) {
            const float *xdp = xd + (size_t)pl * M;
            // x̂̇ = inv (ẋ − mean ẋ − x̂ mean(x̂ ẋ)),  inv̇/inv = −inv mean(x̂ ẋ)
            double m2 = 0.0;
            for (size_t i = 0; i < M; i++)
                m2 += (double)hp[i] * xdp[i];
            rho[pl] = -inv * (float)(m2 / (double)M);
            inorm_proj(M, inv, hp, xdp, hdp);
        } else {
            rho[pl] = 0.0f;
            memset(hdp, 0, M * sizeof *hdp);
        }
        // ẏ = γ̇ x̂ + γ x̂̇ + β̇
        for (size_t i = 0; i < M; i++)
            ydp[i] = wd[c] * hp[i] + w[c] * hdp[i] + wd[C + c];
    }
}

void dd_inorm_tbwd(const dd_layer_exec *e, const float *aux, const float *xd, const float *auxd,
                   const float *w, const float *wd, const float *dy, const float *dyd, float *dxd,
                   float *dwd) {
    const dd_layer *L = e->L;
    const int C = L->in_c;
    const size_t M = (size_t)L->in_h * L->in_w;
    const int64_t planes = e->batch * C;
    const float *xh = aux, *stats = aux + (size_t)planes * M;
    const float *xhd = auxd, *rho = auxd + (size_t)planes * M;
    float *part = e->scratch;
    (void)xd; // its effect is carried by x̂̇ and ρ in auxd
#pragma omp parallel for schedule(static) num_threads(e->nthreads) if (planes * (int64_t)M >= 32768)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int c = (int)(pl % C);
        const float *hp = xh + (size_t)pl * M, *hdp = xhd + (size_t)pl * M;
        const float *dyp = dy + (size_t)pl * M, *dydp = dyd + (size_t)pl * M;
        if (dwd) {
            // d̊γ = Σ (d̊y x̂ + dy x̂̇),  d̊β = Σ d̊y
            double sg = 0.0, sb = 0.0;
            for (size_t i = 0; i < M; i++) {
                sg += (double)dydp[i] * hp[i] + (double)dyp[i] * hdp[i];
                sb += dydp[i];
            }
            part[2 * pl] = (float)sg;
            part[2 * pl + 1] = (float)sb;
        }
        if (dxd) {
            // g = γ dy, ġ = γ̇ dy + γ d̊y; m1 = mean g, m2 = mean g x̂;
            // d̊x = ρ·inv (g − m1 − x̂ m2) + inv (ġ − ṁ1 − x̂̇ m2 − x̂ ṁ2),
            // ṁ1 = mean ġ, ṁ2 = mean(ġ x̂ + g x̂̇).
            const float inv = stats[2 * pl + 1], g = w[c], gd = wd[c];
            double m1 = 0.0, m2 = 0.0, m1d = 0.0, m2d = 0.0;
            for (size_t i = 0; i < M; i++) {
                float gi = g * dyp[i], gdi = gd * dyp[i] + g * dydp[i];
                m1 += gi;
                m2 += (double)gi * hp[i];
                m1d += gdi;
                m2d += (double)gdi * hp[i] + (double)gi * hdp[i];
            }
            const float a1 = (float)(m1 / (double)M), a2 = (float)(m2 / (double)M);
            const float b1 = (float)(m1d / (double)M), b2 = (float)(m2d / (double)M);
            float *out = dxd + (size_t)pl * M;
            for (size_t i = 0; i < M; i++) {
                float gi = g * dyp[i], gdi = gd * dyp[i] + g * dydp[i];
                out[i] = rho[pl] * inv * (gi - a1 - hp[i] * a2) +
                         inv * (gdi - b1 - hdp[i] * a2 - hp[i] * b2);
            }
        }
    }
    if (dwd) reduce_param_partials(e, part, dwd);
}
