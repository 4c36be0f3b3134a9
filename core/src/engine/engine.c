/* distill — the distillation engine: unrolled inner training on the
 * distilled steps, outer loss on real data, exact reverse-pass hypergradient
 * (DESIGN.md §1) and Adam on pixels, soft labels and step sizes. */
#define _POSIX_C_SOURCE 200809L
#include "engine/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model_impl.h"
#include "distill/log.h"
#include "distill/tensor.h"
#include "base/comm.h"
#include "engine/engine_impl.h"

/* ---- small helpers ------------------------------------------------------ */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

float dd_lr_from_raw(float raw) {
    // softplus, written to stay finite for large |raw|
    return raw > 20.f ? raw : log1pf(expf(raw));
}

float dd_lr_to_raw(float lr) {
    return lr > 20.f ? lr : logf(expm1f(lr));
}

uint64_t dd_engine_init_seed(uint64_t seed, uint64_t stream, uint64_t index) {
    dd_rng r = dd_rng_make(seed, stream);
    r.counter = index;
    return dd_rng_u64(&r);
}

static int all_finite(const float *x, size_t n) {
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= isfinite(x[i]) != 0;
    return ok;
}

/* ---- one θ0 -------------------------------------------------------------- */

/* The context that runs one θ0 on every worker, made on first use when the
 * run itself gives each worker a network of its own. */
static dd_status split_ctx(dd_engine *e, dd_netctx **out) {
    if (!e->has_split) {
        DD_TRY(dd_netctx_init(&e->split, e, e->workers, e->wmodels, e->thetas, 1));
        e->has_split = 1;
    }
    *out = &e->split;
    return DD_OK;
}

static void add_times(dd_engine *e, dd_netctx *n) {
    e->stats.t_unroll += n->t_unroll;
    e->stats.t_outer += n->t_outer;
    e->stats.t_reverse += n->t_reverse;
    e->stats.backups += n->backups;
    n->t_unroll = n->t_outer = n->t_reverse = 0;
    n->backups = 0;
}

static dd_status check_batch(const dd_engine *e, int64_t batch) {
    if (batch < 1 || batch > e->B)
        return dd_error_set(DD_ERR_INVALID,
                            "engine: real batch %lld is not in [1, batch_real %lld]",
                            (long long)batch, (long long)e->B);
    return DD_OK;
}

dd_status dd_engine_hypergradient(dd_engine *e, const float *theta0, const float *x_real,
                                  const int32_t *y_real, int64_t batch, double *loss,
                                  double *metric, float *g_pixels, float *g_raw_lrs,
                                  float *g_labels) {
    DD_TRY(check_batch(e, batch));
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    if (g_pixels) memset(g_pixels, 0, SMD * sizeof(float));
    if (g_raw_lrs) memset(g_raw_lrs, 0, (size_t)e->K * sizeof(float));
    if (g_labels && e->soft) memset(g_labels, 0, SMO * sizeof(float));
    dd_netctx *n;
    DD_TRY(split_ctx(e, &n));
    dd_status s =
        dd_netctx_run(n, theta0, x_real, y_real, batch, 1, 1, g_pixels, g_raw_lrs, g_labels);
    add_times(e, n);
    DD_TRY(s);
    if (loss) *loss = n->loss;
    if (metric) *metric = n->den > 0 ? n->num / n->den : 0.0;
    return DD_OK;
}

dd_status dd_engine_unrolled_loss(dd_engine *e, const float *theta0, const float *x_real,
                                  const int32_t *y_real, int64_t batch, double *loss,
                                  float *theta_out) {
    DD_TRY(check_batch(e, batch));
    dd_netctx *n;
    DD_TRY(split_ctx(e, &n));
    dd_status s = dd_netctx_run(n, theta0, x_real, y_real, batch, 0, 0, NULL, NULL, NULL);
    add_times(e, n);
    DD_TRY(s);
    *loss = n->loss;
    if (theta_out) memcpy(theta_out, n->thetas + (size_t)e->K * e->P, e->P * sizeof(float));
    return DD_OK;
}

/* ---- outer iterations --------------------------------------------------- */

/* Real batch of iteration `it`: epochs of the real data are fixed
 * permutations (a pure function of seed and epoch), so any iteration's batch
 * is known without replaying the run — resuming needs only the counter. */
static dd_status sample_real(dd_engine *e, int64_t it) {
    const dd_dataset *t = e->train;
    const int64_t per_epoch = t->n / e->B;
    const int64_t epoch = it / per_epoch, pos = it % per_epoch;
    if (epoch != e->perm_epoch) {
        for (int64_t i = 0; i < t->n; i++)
            e->perm[i] = i;
        dd_rng r = dd_rng_make(e->cfg.seed, DD_STREAM_DATA + (uint64_t)epoch);
        dd_rng_shuffle(&r, e->perm, (size_t)t->n);
        e->perm_epoch = epoch;
    }
    const int64_t *batch = e->perm + pos * e->B;
    for (int64_t b = 0; b < e->B; b++)
        e->yr[b] = t->labels[batch[b]];
    return dd_dataset_gather(t, batch, e->B, e->xr);
}

static void adam(float *p, float *m, float *v, const float *g, size_t n, double lr, double b1,
                 double b2, double eps, double bc1, double bc2) {
    const float fb1 = (float)b1, fb2 = (float)b2;
    const float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float feps = (float)eps;
    for (size_t i = 0; i < n; i++) {
        m[i] = fb1 * m[i] + (1.f - fb1) * g[i];
        v[i] = fb2 * v[i] + (1.f - fb2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + feps);
    }
}

static double current_lr(const dd_engine *e) {
    double lr = e->cfg.opt_lr;
    if (e->cfg.decay_every > 0) lr *= pow(e->cfg.decay, (double)(e->iter / e->cfg.decay_every));
    return lr;
}

/* θ0 of net n (of `nets`) in iteration it, on worker w: the fixed one, a
 * fresh draw from the init scheme, or a member of the pretrained pool. */
static dd_status draw_theta0(dd_engine *e, int64_t it, int nets, int n, int w, const float **th0) {
    const dd_distill_config *c = &e->cfg;
    *th0 = e->theta0;
    if (c->init_mode == DD_INIT_RANDOM) {
        uint64_t sd =
            dd_engine_init_seed(c->seed, DD_STREAM_TRAIN_INITS, (uint64_t)(it * nets + n));
        DD_TRY(dd_model_init_params(e->wmodels[w], e->w_theta_rand[w], c->init_scheme,
                                    (float)c->init_gain, sd));
        *th0 = e->w_theta_rand[w];
    } else if (c->init_mode == DD_INIT_PRETRAINED_RANDOM) {
        dd_rng pr = dd_rng_make(c->seed, DD_STREAM_POOL);
        pr.counter = (uint64_t)(it * nets + n);
        *th0 = c->theta_pool[dd_rng_below(&pr, (uint64_t)c->theta_pool_size)];
    }
    return DD_OK;
}

/* The nets of an iteration, one per worker (each on its own context). */
typedef struct nets_job {
    dd_engine *e;
    int nets;
    int64_t lo, hi; /* this rank's nets */
} nets_job;

static int nets_chunks(void *ctx, int step) {
    (void)step;
    const nets_job *j = ctx;
    return (int)(j->hi - j->lo);
}

static dd_status nets_compute(void *ctx, int step, int chunk, int w, int buf) {
    (void)buf; // results go to per-network records, not team buffers
    (void)step;
    const nets_job *j = ctx;
    const int n = (int)j->lo + chunk;
    dd_engine *e = j->e;
    const dd_distill_config *c = &e->cfg;
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    float *gp = c->learn_pixels ? e->net_gp + (size_t)n * SMD : NULL;
    float *graw = c->learn_lrs ? e->net_graw + (size_t)n * (size_t)e->K : NULL;
    float *gsoft = (c->learn_labels && e->soft) ? e->net_gsoft + (size_t)n * SMO : NULL;
    if (gp) memset(gp, 0, SMD * sizeof(float));
    if (graw) memset(graw, 0, (size_t)e->K * sizeof(float));
    if (gsoft) memset(gsoft, 0, SMO * sizeof(float));
    const float *th0;
    dd_status s = draw_theta0(e, e->iter, j->nets, n, w, &th0);
    dd_netctx *nc = &e->per_net[w];
    if (s == DD_OK) s = dd_netctx_run(nc, th0, e->xr, e->yr, e->B, 1, 1, gp, graw, gsoft);
    e->net_sums[3 * n] = nc->loss;
    e->net_sums[3 * n + 1] = nc->num;
    e->net_sums[3 * n + 2] = nc->den;
    // A failure is reported after the job, for the first failing net in
    // order, whichever worker ran it.
    e->net_status[n] = s;
    if (s != DD_OK) dd_error_prefix("network %d of the iteration", n + 1);
    return s;
}

static dd_status nets_failure(dd_engine *e, dd_status hs, int64_t it) {
    if (hs == DD_ERR_NUMERIC)
        dd_error_prefix("distill: iteration %lld stopped without saving this state (the last "
                        "checkpoint on disk is the last good one; lower distill.lr_init or "
                        "distill.optimizer.lr)",
                        (long long)it + 1);
    (void)e;
    return hs;
}

static dd_status nonfinite_loss(double loss, int64_t it) {
    return dd_error_set(DD_ERR_NUMERIC,
                        "distill: the outer loss became %s at iteration %lld; stopped "
                        "without saving this state (the last checkpoint on disk is the "
                        "last good one). Lower distill.lr_init or distill.optimizer.lr",
                        isnan(loss) ? "NaN" : "infinite", (long long)it + 1);
}

/* Every rank's nets' rows (per_net floats each) of buf to every rank. */
static dd_status gather_nets(float *buf, int nets, size_t per_net) {
    const int R = dd_comm_size();
    int *cnt = malloc((size_t)R * sizeof *cnt), *dsp = malloc((size_t)R * sizeof *dsp);
    if (!cnt || !dsp || (double)nets * (double)per_net > 2147483647.0) {
        free(cnt);
        free(dsp);
        return dd_error_set(DD_ERR_LIMIT,
                            "distill: %d networks' gradients are too many to "
                            "exchange between ranks in one message",
                            nets);
    }
    for (int r = 0; r < R; r++) {
        int64_t lo, hi;
        dd_comm_share(nets, r, R, &lo, &hi);
        cnt[r] = (int)((size_t)(hi - lo) * per_net);
        dsp[r] = (int)((size_t)lo * per_net);
    }
    dd_status s = dd_comm_allgather_floats(buf, cnt, dsp);
    free(cnt);
    free(dsp);
    return s;
}

/* Sums the hypergradients of the iteration's `nets` θ0s into gp / graw /
 * gsoft, and their losses and first metrics into sums[0..2]. Several nets:
 * each is computed alone (by whichever worker) and they are added in net
 * order, so the sum is the same for every thread count. */
static dd_status accumulate_nets(dd_engine *e, int nets, float *gp, float *graw, float *gsoft,
                                 double sums[3]) {
    const int64_t it = e->iter;
    if (nets == 1) {
        const float *th0;
        DD_TRY(draw_theta0(e, it, 1, 0, 0, &th0));
        dd_netctx *n;
        DD_TRY(split_ctx(e, &n));
        dd_status hs = dd_netctx_run(n, th0, e->xr, e->yr, e->B, 1, 1, gp, graw, gsoft);
        add_times(e, n);
        if (hs != DD_OK) return nets_failure(e, hs, it);
        if (!isfinite(n->loss)) return nonfinite_loss(n->loss, it);
        if (dd_comm_size() > 1) {
            // Every rank ran the distilled-batch passes itself; rank 0's
            // result is the one all apply (ranks with other thread counts
            // would differ in the last bits).
            const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
            const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
            if (gp) DD_TRY(dd_comm_bcast(gp, SMD * sizeof *gp, 0));
            if (graw) DD_TRY(dd_comm_bcast(graw, (size_t)e->K * sizeof *graw, 0));
            if (gsoft) DD_TRY(dd_comm_bcast(gsoft, SMO * sizeof *gsoft, 0));
        }
        sums[0] += n->loss;
        sums[1] += n->num;
        sums[2] += n->den;
        return DD_OK;
    }
    // Ranks take contiguous shares of the nets; every rank then gets every
    // net's result, so that all add them in the same (net) order.
    nets_job j = {e, nets, 0, nets};
    dd_comm_share(nets, dd_comm_rank(), dd_comm_size(), &j.lo, &j.hi);
    memset(e->net_sums, 0, (size_t)nets * 3 * sizeof *e->net_sums);
    dd_team_job job = {
        .n_steps = 1,
        .n_chunks = nets_chunks,
        .compute = nets_compute,
        .ctx = &j,
        .no_backup = 1,
    };
    for (int n = 0; n < nets; n++)
        e->net_status[n] = DD_OK;
    const int local = (int)(j.hi - j.lo);
    dd_status js = DD_OK;
    if (local > 0) js = dd_team_run(e->n_per_net < local ? e->n_per_net : local, &job, NULL);
    for (int w = 0; w < e->n_per_net; w++)
        add_times(e, &e->per_net[w]);
    for (int n = (int)j.lo; n < (int)j.hi; n++)
        if (e->net_status[n] != DD_OK) {
            // the job stops at its first failure: re-raise that message
            return nets_failure(e, js != DD_OK ? js : e->net_status[n], it);
        }
    if (js != DD_OK) return js;
    const dd_distill_config *c = &e->cfg;
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    if (dd_comm_size() > 1) {
        DD_TRY(dd_comm_sum_doubles(e->net_sums, (size_t)nets * 3)); // others' entries are 0
        if (c->learn_pixels) DD_TRY(gather_nets(e->net_gp, nets, SMD));
        if (c->learn_lrs) DD_TRY(gather_nets(e->net_graw, nets, (size_t)e->K));
        if (c->learn_labels && e->soft) DD_TRY(gather_nets(e->net_gsoft, nets, SMO));
    }
    for (int n = 0; n < nets; n++) {
        const double loss = e->net_sums[3 * n];
        if (!isfinite(loss)) return nonfinite_loss(loss, it);
        sums[0] += loss;
        sums[1] += e->net_sums[3 * n + 1];
        sums[2] += e->net_sums[3 * n + 2];
        if (gp) {
            const float *src = e->net_gp + (size_t)n * SMD;
            for (size_t i = 0; i < SMD; i++)
                gp[i] += src[i];
        }
        if (graw && c->learn_lrs) {
            const float *src = e->net_graw + (size_t)n * (size_t)e->K;
            for (int k = 0; k < e->K; k++)
                graw[k] += src[k];
        }
        if (gsoft) {
            const float *src = e->net_gsoft + (size_t)n * SMO;
            for (size_t i = 0; i < SMO; i++)
                gsoft[i] += src[i];
        }
    }
    return DD_OK;
}

/* One Adam step of every learned parameter that has a gradient. */
static void adam_update(dd_engine *e, const float *gp, const float *graw, const float *gsoft) {
    const dd_distill_config *c = &e->cfg;
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    const double lr = current_lr(e);
    e->adam_t++;
    const double bc1 = 1.0 - pow(c->beta1, (double)e->adam_t);
    const double bc2 = 1.0 - pow(c->beta2, (double)e->adam_t);
    if (gp) adam(e->pixels, e->m_pix, e->v_pix, gp, SMD, lr, c->beta1, c->beta2, c->eps, bc1, bc2);
    if (graw) {
        double lr_lrs = c->opt_lr_lrs > 0 ? lr * (c->opt_lr_lrs / c->opt_lr) : lr;
        adam(e->raw, e->m_raw, e->v_raw, graw, (size_t)e->K, lr_lrs, c->beta1, c->beta2, c->eps,
             bc1, bc2);
    }
    if (gsoft)
        adam(e->soft, e->m_soft, e->v_soft, gsoft, SMO, lr, c->beta1, c->beta2, c->eps, bc1, bc2);
}

dd_status dd_engine_step(dd_engine *e) {
    const dd_distill_config *c = &e->cfg;
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    const int64_t it = e->iter;
    float *gp = c->learn_pixels ? e->g_pix : NULL;
    float *graw = c->learn_lrs ? e->g_raw : NULL;
    float *gsoft = (c->learn_labels && e->soft) ? e->g_soft : NULL;
    if (gp) memset(gp, 0, SMD * sizeof(float));
    if (graw) memset(graw, 0, (size_t)e->K * sizeof(float));
    if (gsoft) memset(gsoft, 0, SMO * sizeof(float));

    DD_TRY(sample_real(e, it));
    const int nets = (c->init_mode == DD_INIT_FIXED || c->init_mode == DD_INIT_PRETRAINED_FIXED)
                         ? 1
                         : c->nets_per_iteration;
    double sums[3] = {0, 0, 0}; // loss, metric numerator, metric denominator
    DD_TRY(accumulate_nets(e, nets, gp, graw, gsoft, sums));
    const double loss_sum = sums[0], num_sum = sums[1], den_sum = sums[2];
    const float inv = 1.f / (float)nets;
    if (nets > 1) {
        if (gp)
            for (size_t i = 0; i < SMD; i++)
                gp[i] *= inv;
        if (graw)
            for (int k = 0; k < e->K; k++)
                graw[k] *= inv;
        if (gsoft)
            for (size_t i = 0; i < SMO; i++)
                gsoft[i] *= inv;
    }
    if ((gp && !all_finite(gp, SMD)) || (graw && !all_finite(graw, (size_t)e->K)) ||
        (gsoft && !all_finite(gsoft, SMO)))
        return dd_error_set(DD_ERR_NUMERIC,
                            "distill: the hypergradient became NaN/Inf at iteration %lld "
                            "(outer loss %g); stopped without saving this state (the last "
                            "checkpoint on disk is the last good one). Lower distill.lr_init "
                            "or distill.optimizer.lr",
                            (long long)it + 1, loss_sum / nets);
    adam_update(e, gp, graw, gsoft);

    if (it < e->hist_cap) {
        e->stats.loss_history[it] = loss_sum / nets;
        e->stats.metric_history[it] = den_sum > 0 ? num_sum / den_sum : 0.0;
        float *lrs = e->stats.lr_history + (size_t)it * (size_t)e->K;
        for (int k = 0; k < e->K; k++)
            lrs[k] = dd_lr_from_raw(e->raw[k]);
    }
    e->stats.last_loss = loss_sum / nets;
    e->stats.last_metric = den_sum > 0 ? num_sum / den_sum : 0.0;
    e->iter++;
    e->stats.iterations = e->iter;
    return DD_OK;
}

/* ---- the run ------------------------------------------------------------ */

static dd_status save_checkpoint(dd_engine *e) {
    if (!e->cfg.checkpoint_path) return DD_OK;
    dd_status s = dd_engine_save(e, e->cfg.checkpoint_path);
    if (s != DD_OK) dd_error_prefix("distill: writing the checkpoint");
    return s;
}

dd_status dd_engine_run(dd_engine *e) {
    const dd_distill_config *c = &e->cfg;
    if (c->resume && c->checkpoint_path) {
        dd_status s = dd_engine_load(e, c->checkpoint_path);
        if (s == DD_ERR_NOT_FOUND) {
            dd_warn("distill: no checkpoint at %s; starting from scratch", c->checkpoint_path);
            dd_error_clear();
        } else if (s != DD_OK) {
            dd_error_prefix("distill --resume");
            return s;
        } else {
            dd_info("distill: resumed from %s at iteration %lld", c->checkpoint_path,
                    (long long)e->iter);
        }
    }
    dd_progress *bar = NULL;
    if (c->progress && dd_progress_create(c->label ? c->label : "distill", (uint64_t)c->iterations,
                                          "it", &bar) != DD_OK) {
        bar = NULL;
        dd_error_clear();
    }
    const int64_t start = e->iter;
    const double comm0 = dd_comm_seconds();
    char status[128];
    const char *mname = e->obj->n_metrics > 0 ? e->obj->ops->metric_names[0] : "";
    const int percent = strstr(mname, "acc") != NULL;
    dd_status s = DD_OK;
    while (e->iter < c->iterations) {
        if (c->cancel && *c->cancel) {
            s = save_checkpoint(e);
            if (s == DD_OK)
                s = dd_error_set(DD_ERR_INTERRUPTED,
                                 "distill: interrupted at iteration %lld; state saved to %s "
                                 "(continue with --resume)",
                                 (long long)e->iter,
                                 c->checkpoint_path ? c->checkpoint_path : "(no checkpoint)");
            break;
        }
        double t0 = now_seconds();
        s = dd_engine_step(e);
        if (s != DD_OK) break;
        double dt = now_seconds() - t0;
        // The first iteration pays for the backend's one-time JIT/allocation.
        if (e->iter - start > 1 || c->iterations - start == 1) {
            e->stats.seconds += dt;
            e->stats.timed_iterations++;
            e->stats.seconds_per_iteration = e->stats.seconds / (double)e->stats.timed_iterations;
        }
        if (bar) {
            if (percent)
                snprintf(status, sizeof status, "loss %.4f %s %.1f%%", e->stats.last_loss, mname,
                         100.0 * e->stats.last_metric);
            else
                snprintf(status, sizeof status, "loss %.4f %s %.4f", e->stats.last_loss, mname,
                         e->stats.last_metric);
            dd_progress_update(bar, (uint64_t)e->iter, status);
        }
        if (c->log_every > 0 && (e->iter % c->log_every == 0 || e->iter == c->iterations))
            dd_debug("%s: iteration %lld loss %.5f %s %.4f lr[0] %.5f",
                     c->label ? c->label : "distill", (long long)e->iter, e->stats.last_loss, mname,
                     e->stats.last_metric, (double)dd_lr_from_raw(e->raw[0]));
        if (c->checkpoint_every > 0 && e->iter % c->checkpoint_every == 0 &&
            e->iter < c->iterations) {
            s = save_checkpoint(e);
            if (s != DD_OK) break;
        }
    }
    if (s == DD_OK) s = save_checkpoint(e);
    dd_progress_destroy(bar);
    e->stats.t_comm = dd_comm_seconds() - comm0;
    if (dd_comm_size() > 1) {
        const int fixed = c->init_mode == DD_INIT_FIXED || c->init_mode == DD_INIT_PRETRAINED_FIXED;
        const int nets = fixed ? 1 : c->nets_per_iteration;
        const long long SMD = (long long)e->S * e->M * (long long)e->D, K = e->K;
        if (nets == 1) {
            e->stats.comm_floats_summed = (long long)e->P;
            e->stats.comm_floats_sent = SMD + K;
        } else {
            e->stats.comm_floats_summed = 3LL * nets;
            e->stats.comm_floats_sent = (long long)nets * (SMD + K);
        }
    }
    return s;
}

void dd_engine_set_opt_lr(dd_engine *e, double opt_lr, double opt_lr_lrs) {
    e->cfg.opt_lr = opt_lr;
    e->cfg.opt_lr_lrs = opt_lr_lrs;
}
