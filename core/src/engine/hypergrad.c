/* distill — the hypergradient of one θ0 as a team job (engine/team.h): the
 * K unrolled steps and the K reverse steps split the distilled batch of each
 * step into image ranges, the real batch into slices; one reduction per step
 * combines them in chunk order (DESIGN.md §1 for the math). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/comm.h"
#include "distill/tensor.h"
#include "engine/engine_impl.h"
#include "model/model_impl.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float sigmoidf_(float x) {
    return 1.f / (1.f + expf(-x));
}

/* ---- layout of a context ------------------------------------------------ */

/* Image range [lo, hi) of chunk c when n items are cut into nc chunks. */
static void chunk_range(int64_t n, int nc, int c, int64_t *lo, int64_t *hi) {
    *lo = n * c / nc;
    *hi = n * (c + 1) / nc;
}

/* A distilled-step buffer: the chunk's gradient g, H·v, and its images' and
 * labels' cotangents. */
typedef struct dbuf {
    float *g, *hv, *mx, *my;
} dbuf;

static dbuf dbuf_of(const dd_netctx *n, int b) {
    const dd_engine *e = n->e;
    const size_t P = e->P, mc = (size_t)((e->M + n->cd - 1) / n->cd);
    dbuf d;
    d.g = n->dbufs + (size_t)b * n->dbuf_floats;
    d.hv = d.g + P;
    d.mx = d.hv + P;
    d.my = d.mx + mc * e->D;
    return d;
}

/* A real-slice buffer: the slice's gradient, logits (θ_K, θ0) and their
 * cotangent. */
typedef struct rbuf {
    float *g, *lg, *lg0, *dl;
} rbuf;

static rbuf rbuf_of(const dd_netctx *n, int b) {
    const size_t bo = (size_t)n->bc * (size_t)n->e->n_out;
    rbuf r;
    r.g = n->rbufs + (size_t)b * n->rbuf_floats;
    r.lg = r.g + n->e->P;
    r.lg0 = r.lg + bo;
    r.dl = r.lg0 + bo;
    return r;
}

static float *adjoint(const dd_netctx *n, int k) {
    const size_t idx = n->as_full ? (size_t)k : (size_t)(k & 1);
    return n->as + idx * n->e->P;
}

void dd_netctx_free(dd_netctx *n) {
    if (!n) return;
    if (n->own_thetas) dd_free(n->thetas);
    dd_free(n->as);
    dd_free(n->dbufs);
    dd_free(n->rbufs);
    dd_free(n->logits);
    dd_free(n->logits0);
    dd_free(n->dlogits);
    free(n->closs);
    free(n->cnum);
    free(n->cden);
    free(n->last_fwd);
    memset(n, 0, sizeof *n);
}

dd_status dd_netctx_init(dd_netctx *n, dd_engine *e, int workers, dd_model **models, float *thetas,
                         int across_ranks) {
    memset(n, 0, sizeof *n);
    n->e = e;
    n->workers = workers;
    n->models = models;
    n->across_ranks = across_ranks && dd_comm_size() > 1;
    // this rank's share of the real batch (all of it on one process)
    const int64_t B = n->across_ranks ? (e->B + dd_comm_size() - 1) / dd_comm_size() : e->B;
    n->cd = e->M < workers ? (int)e->M : workers;
    if (n->cd > DD_TEAM_MAX_CHUNKS) n->cd = DD_TEAM_MAX_CHUNKS;
    // Real slices: one per worker, more when a slice's activations would
    // pass the budget (or distill.real_chunk asks for smaller ones).
    int64_t per = e->cfg.real_chunk > 0 ? e->cfg.real_chunk : (B + workers - 1) / workers;
    if (e->cfg.real_chunk <= 0 && per > DD_ENGINE_SLICE_IMAGES) per = DD_ENGINE_SLICE_IMAGES;
    while (per > 1 && e->cfg.real_chunk <= 0 &&
           dd_model_workspace_bytes(models[0], per) > DD_ENGINE_SLICE_BYTES)
        per = (per + 1) / 2;
    int64_t nr = (B + per - 1) / per;
    nr = (nr + workers - 1) / workers * workers;
    if (nr > DD_TEAM_MAX_CHUNKS) nr = DD_TEAM_MAX_CHUNKS;
    if (nr > B) nr = B;
    n->cr = n->cr_max = (int)nr;
    n->bc = (B + nr - 1) / nr;
    n->fused = (e->obj->ops->flags & DD_OBJECTIVE_MEAN_LOSS) != 0;
    const size_t mc = (size_t)((e->M + n->cd - 1) / n->cd);
    n->dbuf_floats = 2 * e->P + mc * (e->D + (size_t)e->n_out);
    n->rbuf_floats = e->P + 3 * (size_t)n->bc * e->n_out;
    const size_t ndbufs = (size_t)n->cd + (size_t)workers;
    const size_t nrbufs = (size_t)n->cr_max + (size_t)workers;
    n->as_full =
        workers > 1 && ((size_t)e->K + 1) * e->P * sizeof(float) <= DD_ENGINE_ADJOINT_BYTES;
    n->no_backup = workers > 1 && !n->as_full;
    const size_t BO = (size_t)B * (size_t)e->n_out;
    const size_t nm = (size_t)e->obj->n_metrics + 1;
    n->thetas = thetas;
    if (!thetas) {
        n->own_thetas = 1;
        n->thetas = dd_alloc_floats((size_t)(e->K + 1) * e->P);
    }
    n->as = dd_alloc_floats((n->as_full ? (size_t)e->K + 1 : 2) * e->P);
    n->dbufs = dd_alloc_floats(ndbufs * n->dbuf_floats);
    n->rbufs = dd_alloc_floats(nrbufs * n->rbuf_floats);
    n->logits = dd_alloc_floats(BO);
    n->dlogits = dd_alloc_floats(BO);
    if (e->ref_logits) n->logits0 = dd_alloc_floats(BO);
    n->closs = calloc(nrbufs, sizeof *n->closs);
    n->cnum = calloc(nrbufs * nm, sizeof *n->cnum);
    n->cden = calloc(nrbufs * nm, sizeof *n->cden);
    n->last_fwd = malloc((size_t)workers * sizeof *n->last_fwd);
    if (!n->thetas || !n->as || !n->dbufs || !n->rbufs || !n->logits || !n->dlogits ||
        (e->ref_logits && !n->logits0) || !n->closs || !n->cnum || !n->cden || !n->last_fwd) {
        dd_netctx_free(n);
        return dd_error_set(DD_ERR_NOMEM,
                            "engine: out of memory for the buffers of %d worker(s) (K=%d steps, "
                            "%zu parameters)",
                            workers, e->K, e->P);
    }
    return DD_OK;
}

/* ---- the job ------------------------------------------------------------ */

/* Step numbering: [0, K) unrolled steps; K the real batch (forward, or the
 * whole pass when fused); K + 1 its backward (unfused, with gradients);
 * then the K reverse steps, k = K−1 … 0. */
static int real_steps(const dd_netctx *n) {
    return (n->want_grad && !n->fused) ? 2 : 1;
}

static int job_chunks(void *ctx, int step) {
    const dd_netctx *n = ctx;
    const int K = n->e->K;
    return (step >= K && step < K + real_steps(n)) ? n->cr : n->cd;
}

static dd_labels chunk_labels(const dd_engine *e, int s, int64_t lo) {
    dd_labels y = {NULL, NULL};
    if (e->soft)
        y.soft = e->soft + ((size_t)s * (size_t)e->M + (size_t)lo) * (size_t)e->n_out;
    else
        y.hard = e->labels + lo;
    return y;
}

static const float *chunk_pixels(const dd_engine *e, int s, int64_t lo) {
    return e->pixels + ((size_t)s * (size_t)e->M + (size_t)lo) * e->D;
}

static dd_status objective_loss(const dd_netctx *n, const float *lg, const float *lg0,
                                const int32_t *y, int64_t b, double *loss, float *dl) {
    const dd_objective_ops *ops = n->e->obj->ops;
    dd_status s = lg0 ? ops->outer_loss_ref(n->e->obj->state, lg, lg0, y, b, n->e->n_out, loss, dl)
                      : ops->outer_loss(n->e->obj->state, lg, y, b, n->e->n_out, loss, dl);
    if (s != DD_OK) dd_error_prefix("objective outer_loss");
    return s;
}

static dd_status objective_metrics(const dd_netctx *n, const float *lg, const int32_t *y, int64_t b,
                                   double *num, double *den) {
    const dd_engine *e = n->e;
    memset(num, 0, (size_t)e->obj->n_metrics * sizeof *num);
    memset(den, 0, (size_t)e->obj->n_metrics * sizeof *den);
    dd_status s = e->obj->ops->metrics(e->obj->state, lg, y, b, e->n_out, num, den);
    if (s != DD_OK) dd_error_prefix("objective metrics");
    return s;
}

/* Slice c of this rank's share of the real batch, as positions in the
 * whole batch. */
static void slice_range(const dd_netctx *n, int c, int64_t *lo, int64_t *hi) {
    chunk_range(n->rhi - n->rlo, n->cr, c, lo, hi);
    *lo += n->rlo;
    *hi += n->rlo;
}

/* The real batch's slice c on worker w: forwards (θ0 first when the
 * objective compares with it), and, fused, the slice's loss, metrics and
 * backward into real buffer bi. */
static dd_status real_forward(dd_netctx *n, int c, int w, int bi) {
    dd_engine *e = n->e;
    dd_model *m = n->models[w];
    int64_t lo, hi;
    slice_range(n, c, &lo, &hi);
    const int64_t b = hi - lo;
    const float *x = n->x + (size_t)lo * e->D;
    const float *thK = n->thetas + (size_t)e->K * e->P;
    rbuf s = rbuf_of(n, bi);
    n->last_fwd[w] = -1;
    if (n->logits0) DD_TRY(dd_model_forward(m, n->theta0, x, b, s.lg0));
    DD_TRY(dd_model_forward(m, thK, x, b, s.lg));
    n->last_fwd[w] = c;
    if (!n->fused) return DD_OK;
    const size_t slot_i = (size_t)bi;
    const size_t nm = (size_t)e->obj->n_metrics + 1;
    DD_TRY(
        objective_loss(n, s.lg, n->logits0 ? s.lg0 : NULL, n->y + lo, b, &n->closs[slot_i], s.dl));
    if (n->want_metric)
        DD_TRY(
            objective_metrics(n, s.lg, n->y + lo, b, n->cnum + slot_i * nm, n->cden + slot_i * nm));
    if (n->want_grad) DD_TRY(dd_model_backward(m, thK, b, s.dl, s.g, NULL));
    n->last_fwd[w] = -1;
    return DD_OK;
}

static dd_status real_backward(dd_netctx *n, int c, int w, int bi) {
    dd_engine *e = n->e;
    dd_model *m = n->models[w];
    int64_t lo, hi;
    slice_range(n, c, &lo, &hi);
    const int64_t b = hi - lo;
    const float *thK = n->thetas + (size_t)e->K * e->P;
    const float *dl = n->dlogits + (size_t)lo * (size_t)e->n_out;
    rbuf s = rbuf_of(n, bi);
    dd_status st;
    if (n->last_fwd[w] == c)
        st = dd_model_backward(m, thK, b, dl, s.g, NULL);
    else // another slice ran on this worker since: forward again
        st = dd_model_backward_from(m, thK, n->x + (size_t)lo * e->D, b, dl, s.g, NULL);
    n->last_fwd[w] = -1;
    return st;
}

static dd_status job_compute(void *ctx, int step, int c, int w, int b) {
    dd_netctx *n = ctx;
    dd_engine *e = n->e;
    const int K = e->K;
    const size_t P = e->P;
    if (n->stop) return DD_OK;
    if (step < K) { // unrolled step: g_k on this image range
        const int k = step, s = k % e->S;
        int64_t lo, hi;
        chunk_range(e->M, n->cd, c, &lo, &hi);
        double inner;
        n->last_fwd[w] = -1;
        return dd_model_loss_grad(n->models[w], n->thetas + (size_t)k * P, chunk_pixels(e, s, lo),
                                  hi - lo, chunk_labels(e, s, lo), &inner, dbuf_of(n, b).g, NULL,
                                  NULL);
    }
    if (step == K) return real_forward(n, c, w, b);
    if (step == K + 1 && real_steps(n) == 2) return real_backward(n, c, w, b);
    // reverse step k: H_k a_{k+1}, ∇x⟨g_k, a_{k+1}⟩, ∇y⟨g_k, a_{k+1}⟩ and g_k
    const int k = K - 1 - (step - K - real_steps(n)), s = k % e->S;
    int64_t lo, hi;
    chunk_range(e->M, n->cd, c, &lo, &hi);
    dbuf sl = dbuf_of(n, b);
    n->last_fwd[w] = -1;
    return dd_model_hvp(n->models[w], n->thetas + (size_t)k * P, chunk_pixels(e, s, lo), hi - lo,
                        chunk_labels(e, s, lo), adjoint(n, k + 1), sl.hv, n->gp ? sl.mx : NULL,
                        (n->gsoft && e->soft) ? sl.my : NULL, sl.g, NULL);
}

/* Σ_c scale_c · g (which = 0) or H·v (1) of chunk c, in buffer buf[c], into
 * out (scale_c = size of chunk c / n). */
static void sum_chunks(const dd_netctx *n, const int *buf, int nc, int64_t total, int which,
                       float *out) {
    const size_t P = n->e->P;
    for (int c = 0; c < nc; c++) {
        int64_t lo, hi;
        chunk_range(total, nc, c, &lo, &hi);
        const dbuf s = dbuf_of(n, buf[c]);
        const float *src = which ? s.hv : s.g;
        if (nc == 1) {
            if (out != src) memcpy(out, src, P * sizeof(float));
            return;
        }
        const float f = (float)(hi - lo) / (float)total;
        if (c == 0)
            for (size_t i = 0; i < P; i++)
                out[i] = f * src[i];
        else
            for (size_t i = 0; i < P; i++)
                out[i] += f * src[i];
    }
}

/* Every rank's logits rows [rlo, rhi) of buf (B × outputs) to every rank. */
static dd_status gather_rows(const dd_netctx *n, float *buf) {
    if (!n->across_ranks) return DD_OK;
    const int R = dd_comm_size();
    int counts[DD_COMM_MAX_GATHER], displs[DD_COMM_MAX_GATHER];
    int *cnt = counts, *dsp = displs;
    if (R > DD_COMM_MAX_GATHER) {
        cnt = malloc((size_t)R * sizeof *cnt);
        dsp = malloc((size_t)R * sizeof *dsp);
        if (!cnt || !dsp) {
            free(cnt);
            free(dsp);
            return dd_error_set(DD_ERR_NOMEM, "engine: out of memory");
        }
    }
    for (int r = 0; r < R; r++) {
        int64_t lo, hi;
        dd_comm_share(n->batch, r, R, &lo, &hi);
        cnt[r] = (int)((hi - lo) * n->e->n_out);
        dsp[r] = (int)(lo * n->e->n_out);
    }
    dd_status s = dd_comm_allgather_floats(buf, cnt, dsp);
    if (cnt != counts) {
        free(cnt);
        free(dsp);
    }
    return s;
}

/* Σ_c (size of slice c / B) · the gradient of slice c (in real buffer
 * buf[c]) into out (this rank's slices). */
static void sum_slices(const dd_netctx *n, const int *buf, float *out) {
    const size_t P = n->e->P;
    for (int c = 0; c < n->cr; c++) {
        int64_t lo, hi;
        slice_range(n, c, &lo, &hi);
        const float *src = rbuf_of(n, buf[c]).g;
        if (n->cr == 1 && hi - lo == n->batch) {
            memcpy(out, src, P * sizeof(float));
            return;
        }
        const float f = (float)(hi - lo) / (float)n->batch;
        if (c == 0)
            for (size_t i = 0; i < P; i++)
                out[i] = f * src[i];
        else
            for (size_t i = 0; i < P; i++)
                out[i] += f * src[i];
    }
}

static dd_status reduce_real(dd_netctx *n, int step, const int *buf) {
    dd_engine *e = n->e;
    const int K = e->K;
    const size_t P = e->P, nm = (size_t)e->obj->n_metrics + 1;
    const int64_t B = n->batch;
    const size_t no = (size_t)e->n_out;
    if (step == K && !n->fused) {
        // the whole batch's logits, then its loss and metrics at once
        for (int c = 0; c < n->cr; c++) {
            int64_t lo, hi;
            slice_range(n, c, &lo, &hi);
            const rbuf s = rbuf_of(n, buf[c]);
            memcpy(n->logits + (size_t)lo * no, s.lg, (size_t)(hi - lo) * no * sizeof(float));
            if (n->logits0)
                memcpy(n->logits0 + (size_t)lo * no, s.lg0, (size_t)(hi - lo) * no * sizeof(float));
        }
        DD_TRY(gather_rows(n, n->logits));
        if (n->logits0) DD_TRY(gather_rows(n, n->logits0));
        DD_TRY(objective_loss(n, n->logits, n->logits0, n->y, B, &n->loss, n->dlogits));
        if (n->want_metric) {
            double *num = n->cnum, *den = n->cden; // unused by unfused slices
            DD_TRY(objective_metrics(n, n->logits, n->y, B, num, den));
            n->num = e->obj->n_metrics > 0 ? num[0] : 0.0;
            n->den = e->obj->n_metrics > 0 ? den[0] : 0.0;
        }
        if (!isfinite(n->loss)) n->stop = 1;
        return DD_OK;
    }
    float *aK = adjoint(n, K);
    if (n->fused) {
        double sums[3] = {0, 0, 0}; // loss, metric numerator, denominator
        for (int c = 0; c < n->cr; c++) {
            int64_t lo, hi;
            slice_range(n, c, &lo, &hi);
            const size_t si = (size_t)buf[c];
            sums[0] += (double)(hi - lo) / (double)B * n->closs[si];
            if (e->obj->n_metrics > 0) {
                sums[1] += n->cnum[si * nm];
                sums[2] += n->cden[si * nm];
            }
        }
        if (n->want_grad) sum_slices(n, buf, aK);
        if (n->across_ranks) {
            DD_TRY(dd_comm_sum_doubles(sums, 3));
            if (n->want_grad) DD_TRY(dd_comm_sum_floats(aK, P));
        }
        n->loss = sums[0];
        n->num = sums[1];
        n->den = sums[2];
        if (!isfinite(n->loss)) n->stop = 1;
        return DD_OK;
    }
    // unfused backward: the slices' dlogits already carry the batch's weights
    for (int c = 0; c < n->cr; c++) {
        const float *g = rbuf_of(n, buf[c]).g;
        if (c == 0)
            memcpy(aK, g, P * sizeof(float));
        else
            for (size_t i = 0; i < P; i++)
                aK[i] += g[i];
    }
    if (n->across_ranks) DD_TRY(dd_comm_sum_floats(aK, P));
    return DD_OK;
}

static dd_status job_reduce(void *ctx, int step, const int *buf) {
    dd_netctx *n = ctx;
    dd_engine *e = n->e;
    const int K = e->K;
    const size_t P = e->P;
    if (n->stop) return DD_OK;
    if (step < K) {
        const int k = step;
        const float *th = n->thetas + (size_t)k * P;
        float *next = n->thetas + (size_t)(k + 1) * P;
        const float lr = dd_lr_from_raw(e->raw[k]);
        if (n->cd == 1) {
            const float *g = dbuf_of(n, buf[0]).g;
            for (size_t i = 0; i < P; i++)
                next[i] = th[i] - lr * g[i];
        } else if (n->cd == 2) { // the common case in one pass
            int64_t lo, mid, hi;
            chunk_range(e->M, 2, 0, &lo, &mid);
            chunk_range(e->M, 2, 1, &mid, &hi);
            const float f0 = (float)(mid - lo) / (float)e->M, f1 = (float)(hi - mid) / (float)e->M;
            const float *g0 = dbuf_of(n, buf[0]).g, *g1 = dbuf_of(n, buf[1]).g;
            for (size_t i = 0; i < P; i++)
                next[i] = th[i] - lr * (f0 * g0[i] + f1 * g1[i]);
        } else {
            sum_chunks(n, buf, n->cd, e->M, 0, next); // g_k, then θ_k − η_k g_k in place
            for (size_t i = 0; i < P; i++)
                next[i] = th[i] - lr * next[i];
        }
        if (k == K - 1) n->t_mark[0] = now_seconds();
        return DD_OK;
    }
    if (step < K + real_steps(n)) {
        DD_TRY(reduce_real(n, step, buf));
        if (step == K + real_steps(n) - 1) n->t_mark[1] = now_seconds();
        return DD_OK;
    }
    const int k = K - 1 - (step - K - real_steps(n)), s = k % e->S;
    const float lr = dd_lr_from_raw(e->raw[k]);
    const float *a = adjoint(n, k + 1);
    float *a_next = adjoint(n, k);
    const size_t D = e->D, no = (size_t)e->n_out;
    for (int c = 0; c < n->cd; c++) {
        int64_t lo, hi;
        chunk_range(e->M, n->cd, c, &lo, &hi);
        const float f = n->cd == 1 ? 1.f : (float)(hi - lo) / (float)e->M;
        const dbuf sl = dbuf_of(n, buf[c]);
        if (n->gp) {
            float *dst = n->gp + ((size_t)s * (size_t)e->M + (size_t)lo) * D;
            const size_t len = (size_t)(hi - lo) * D;
            for (size_t i = 0; i < len; i++)
                dst[i] -= lr * (f * sl.mx[i]);
        }
        if (n->gsoft && e->soft) {
            float *dst = n->gsoft + ((size_t)s * (size_t)e->M + (size_t)lo) * no;
            const size_t len = (size_t)(hi - lo) * no;
            for (size_t i = 0; i < len; i++)
                dst[i] -= lr * (f * sl.my[i]);
        }
    }
    // g_k and H_k a_{k+1} of the whole distilled batch
    float *g = dbuf_of(n, buf[0]).g, *hv = dbuf_of(n, buf[0]).hv;
    if (n->cd == 2) { // the common case in one pass
        int64_t lo, mid, hi;
        chunk_range(e->M, 2, 0, &lo, &mid);
        chunk_range(e->M, 2, 1, &mid, &hi);
        const float f0 = (float)(mid - lo) / (float)e->M, f1 = (float)(hi - mid) / (float)e->M;
        const dbuf s1 = dbuf_of(n, buf[1]);
        double dot = 0.0;
        for (size_t i = 0; i < P; i++) {
            const float gi = f0 * g[i] + f1 * s1.g[i];
            dot += (double)a[i] * (double)gi;
            a_next[i] = a[i] - lr * (f0 * hv[i] + f1 * s1.hv[i]);
        }
        // ∂L/∂η_k = −⟨a_{k+1}, g_k⟩, through η = softplus(raw).
        if (n->graw) n->graw[k] += (float)(-dot * (double)sigmoidf_(e->raw[k]));
        return DD_OK;
    }
    if (n->cd > 2) {
        sum_chunks(n, buf, n->cd, e->M, 0, g);
        sum_chunks(n, buf, n->cd, e->M, 1, hv);
    }
    if (n->graw) {
        double dot = 0.0;
        for (size_t i = 0; i < P; i++)
            dot += (double)a[i] * (double)g[i];
        // ∂L/∂η_k = −⟨a_{k+1}, g_k⟩, through η = softplus(raw).
        n->graw[k] += (float)(-dot * (double)sigmoidf_(e->raw[k]));
    }
    for (size_t i = 0; i < P; i++)
        a_next[i] = a[i] - lr * hv[i];
    return DD_OK;
}

dd_status dd_netctx_run(dd_netctx *n, const float *theta0, const float *x, const int32_t *y,
                        int64_t batch, int want_grad, int want_metric, float *gp, float *graw,
                        float *gsoft) {
    dd_engine *e = n->e;
    if (batch < 1 || batch > e->B)
        return dd_error_set(DD_ERR_INVALID, "engine: real batch %lld is not in [1, %lld]",
                            (long long)batch, (long long)e->B);
    n->theta0 = theta0;
    n->x = x;
    n->y = y;
    n->batch = batch;
    n->rlo = 0;
    n->rhi = batch;
    if (n->across_ranks) dd_comm_share(batch, dd_comm_rank(), dd_comm_size(), &n->rlo, &n->rhi);
    const int64_t share = n->rhi - n->rlo;
    n->cr = share < n->cr_max ? (int)(share > 0 ? share : 1) : n->cr_max;
    n->want_grad = want_grad;
    n->want_metric = want_metric;
    n->gp = gp;
    n->graw = graw;
    n->gsoft = gsoft;
    n->loss = n->num = n->den = 0;
    n->stop = 0;
    for (int w = 0; w < n->workers; w++)
        n->last_fwd[w] = -1;
    memcpy(n->thetas, theta0, e->P * sizeof(float));
    // The distilled-batch passes and the real slices run one per worker,
    // each on one thread; a model's own thread setting is restored after.
    int saved[DD_TEAM_MAX_CHUNKS];
    for (int w = 0; w < n->workers && w < DD_TEAM_MAX_CHUNKS; w++)
        saved[w] = dd_model_set_threads(n->models[w], 1);
    dd_team_job job = {
        .n_steps = e->K + real_steps(n) + (want_grad ? e->K : 0),
        .n_chunks = job_chunks,
        .compute = job_compute,
        .reduce = job_reduce,
        .ctx = n,
        .no_backup = n->no_backup,
    };
    const double t0 = now_seconds();
    n->t_mark[0] = n->t_mark[1] = t0;
    dd_team_stats ts;
    dd_status st = dd_team_run(n->workers, &job, &ts);
    const double t1 = now_seconds();
    for (int w = 0; w < n->workers && w < DD_TEAM_MAX_CHUNKS; w++)
        dd_model_set_threads(n->models[w], saved[w]);
    if (st == DD_OK) {
        n->t_unroll += n->t_mark[0] - t0;
        n->t_outer += n->t_mark[1] - n->t_mark[0];
        if (want_grad && !n->stop) n->t_reverse += t1 - n->t_mark[1];
        n->backups += ts.backups;
    }
    return st;
}
