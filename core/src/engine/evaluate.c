/* distill — evaluation of distilled and baseline sets on the test split.
 * Every row of the report (untrained, distilled, each baseline, the full
 * training reference) goes through one path: θ0 per net, train, test, mean ± std. */
#define _POSIX_C_SOURCE 200809L
#include "engine/evaluate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/comm.h"
#include "base/error.h"
#include "distill/log.h"
#include "distill/tensor.h"
#include "compute/threads.h"
#include "engine/team.h"
#include "engine/train.h"
#include "model/model_impl.h"

/* Distilled batches up to this many images train on one thread, as in the
 * engine (DD_ENGINE_SMALL_BATCH). */
#define DD_EVAL_SMALL_BATCH 128

void dd_eval_config_defaults(dd_eval_config *c) {
    memset(c, 0, sizeof *c);
    c->init_mode = DD_INIT_FIXED;
    c->init_scheme = "xavier";
    c->init_gain = 1.0;
    c->seed = 1;
    c->nets = 20;
    c->test_batch = 1000;
}

/* Called before the first step (k = 0) and after every step k = 1 .. K. */
typedef dd_status (*step_observer)(dd_model *m, const float *theta, int k, void *user);

static dd_status train_observed(dd_model *m, const dd_distilled *set, const float *lrs,
                                float *theta, step_observer observe, void *user) {
    const size_t P = dd_model_param_count(m), D = dd_distilled_image_size(set);
    if (D != dd_model_input_size(m))
        return dd_error_set(DD_ERR_INVALID, "evaluate: set images have %zu values, model wants %zu",
                            D, dd_model_input_size(m));
    if (!lrs) lrs = set->lrs;
    float *g = dd_alloc_floats(P);
    if (!g) return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    dd_status s = observe ? observe(m, theta, 0, user) : DD_OK;
    // Small distilled batches on one thread, as in the engine (engine.c).
    const int saved = dd_model_threads(m);
    for (int e = 0; s == DD_OK && e < set->epochs; e++) {
        for (int st = 0; s == DD_OK && st < set->steps; st++) {
            const int k = e * set->steps + st;
            dd_labels y = {NULL, NULL};
            if (set->soft)
                y.soft = set->soft + (size_t)st * (size_t)set->per_step * (size_t)set->n_outputs;
            else
                y.hard = set->labels;
            double loss;
            if (set->per_step <= DD_EVAL_SMALL_BATCH) dd_model_set_threads(m, 1);
            s = dd_model_loss_grad(m, theta, set->images + (size_t)st * (size_t)set->per_step * D,
                                   set->per_step, y, &loss, g, NULL, NULL);
            dd_model_set_threads(m, saved);
            const float lr = lrs[k];
            for (size_t i = 0; s == DD_OK && i < P; i++)
                theta[i] -= lr * g[i];
            if (s == DD_OK && observe) s = observe(m, theta, k + 1, user);
        }
    }
    dd_free(g);
    return s;
}

dd_status dd_evaluate_train(dd_model *m, const dd_distilled *set, const float *lrs, float *theta) {
    return train_observed(m, set, lrs, theta, NULL, NULL);
}

dd_status dd_evaluate_train_standard(dd_model *m, const dd_distilled *set,
                                     const dd_standard_training *st, uint64_t seed, float *theta) {
    const int64_t n = (int64_t)set->steps * set->per_step;
    int32_t *hard = NULL;
    if (!set->soft) {
        // a slot's label is the same in every step
        if (!(hard = malloc((size_t)n * sizeof *hard))) return dd_nomem();
        for (int64_t i = 0; i < n; i++)
            hard[i] = set->labels[i % set->per_step];
    }
    const dd_sgd_data d = {
        .images = set->images,
        .n = n,
        .channels = set->channels,
        .height = set->height,
        .width = set->width,
        .labels = {hard, set->soft},
        .n_outputs = set->n_outputs,
    };
    dd_sgd_config c;
    dd_sgd_config_defaults(&c);
    c.epochs = st->epochs;
    c.batch = st->batch;
    c.lr = st->lr;
    c.momentum = st->momentum;
    c.weight_decay = st->weight_decay;
    c.cosine = 1;
    c.seed = seed;
    c.crop = st->crop;
    c.flip = st->flip;
    c.label = "standard training";
    dd_status s = dd_sgd_train_data(m, theta, &d, &c);
    free(hard);
    return s;
}

dd_status dd_evaluate_test(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                           const float *theta, int64_t test_batch, double *metric, double *loss) {
    double all[DD_EVAL_MAX_METRICS + 1];
    double *metrics = all;
    if (obj->n_metrics > DD_EVAL_MAX_METRICS &&
        !(metrics = malloc((size_t)obj->n_metrics * sizeof *metrics)))
        return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    dd_status s = dd_evaluate_test_all(m, obj, test, theta, test_batch, metrics, loss);
    if (s == DD_OK) *metric = metrics[0];
    if (metrics != all) free(metrics);
    return s;
}

dd_status dd_evaluate_test_all(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                               const float *theta, int64_t test_batch, double *metrics,
                               double *loss) {
    if (test->n < 1) return dd_error_set(DD_ERR_INVALID, "evaluate: empty test split");
    if (test_batch < 1) test_batch = 1000;
    if (test_batch > test->n) test_batch = test->n;
    const int K = dd_model_output_dim(m);
    const size_t D = dd_dataset_image_size(test);
    const int nm = obj->n_metrics > 0 ? obj->n_metrics : 1;
    float *logits = dd_alloc_floats((size_t)test_batch * (size_t)K);
    float *dl = dd_alloc_floats((size_t)test_batch * (size_t)K);
    float *x = dd_alloc_floats((size_t)test_batch * D);
    double *num = calloc((size_t)nm, sizeof *num), *den = calloc((size_t)nm, sizeof *den);
    dd_status s = DD_OK;
    if (!logits || !dl || !x || !num || !den)
        s = dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    double loss_sum = 0.0;
    for (int64_t b = 0; s == DD_OK && b < test->n; b += test_batch) {
        const int64_t n = test->n - b < test_batch ? test->n - b : test_batch;
        s = dd_dataset_gather_range(test, b, n, x);
        if (s == DD_OK) s = dd_model_forward_pieces(m, theta, x, n, DD_MODEL_FORWARD_PIECE, logits);
        if (s != DD_OK) break;
        double l = 0.0;
        s = obj->ops->outer_loss(obj->state, logits, test->labels + b, n, K, &l, dl);
        if (s != DD_OK) break;
        loss_sum += l * (double)n;
        s = obj->ops->metrics(obj->state, logits, test->labels + b, n, K, num, den);
    }
    if (s == DD_OK) {
        for (int i = 0; i < nm; i++)
            metrics[i] = den[i] > 0 ? num[i] / den[i] : 0.0;
        if (loss) *loss = loss_sum / (double)test->n;
    }
    dd_free(logits);
    dd_free(dl);
    dd_free(x);
    free(num);
    free(den);
    return s;
}

/* ---- one row: θ0 per net, train, test, aggregate ---------------------- */

/* Networks per row: one θ0 in the fixed modes, else `nets` (at least one),
 * and no more than the held-out pool holds for pretrained-random. */
static int net_count(dd_init_mode mode, int nets, size_t pool_size) {
    if (mode == DD_INIT_FIXED || mode == DD_INIT_PRETRAINED_FIXED) return 1;
    if (nets < 1) nets = 1;
    if (mode == DD_INIT_PRETRAINED_RANDOM && (size_t)nets > pool_size) nets = (int)pool_size;
    return nets;
}

/* θ0 of evaluation network n, in the distillation's init mode. */
static dd_status net_theta0(dd_model *m, const dd_eval_config *cfg, int n, float *theta) {
    const size_t P = dd_model_param_count(m);
    const char *scheme = cfg->init_scheme ? cfg->init_scheme : "xavier";
    switch (cfg->init_mode) {
    case DD_INIT_FIXED:
        if (!cfg->theta0)
            return dd_model_init_params(m, theta, scheme, (float)cfg->init_gain,
                                        dd_engine_init_seed(cfg->seed, DD_STREAM_THETA0, 0));
        memcpy(theta, cfg->theta0, P * sizeof(float));
        return DD_OK;
    case DD_INIT_RANDOM:
        // Held-out inits: a stream the distillation never draws from.
        return dd_model_init_params(
            m, theta, scheme, (float)cfg->init_gain,
            dd_engine_init_seed(cfg->seed, DD_STREAM_EVAL_INITS, (uint64_t)n));
    case DD_INIT_PRETRAINED_FIXED:
        memcpy(theta, cfg->theta0 ? cfg->theta0 : cfg->theta_pool[0], P * sizeof(float));
        return DD_OK;
    default:
        // Held-out pretrained networks, never drawn by the distillation.
        memcpy(theta, cfg->theta_pool[n], P * sizeof(float));
        return DD_OK;
    }
}

/* Trains evaluation network n in place from its θ0; what a row trains on. */
typedef dd_status (*train_fn)(dd_model *m, const void *arg, int n, float *theta);

/* Sums over the networks of a row. */
typedef struct row_sums {
    int nm; /* metrics kept (at most DD_EVAL_MAX_METRICS) */
    double msum[DD_EVAL_MAX_METRICS], msum2[DD_EVAL_MAX_METRICS];
    double sum, sum2, lsum; /* first metric and loss */
} row_sums;

static void row_add(row_sums *r, const double *metrics, double loss) {
    for (int i = 0; i < r->nm; i++) {
        r->msum[i] += metrics[i];
        r->msum2[i] += metrics[i] * metrics[i];
    }
    const double metric = metrics[0];
    r->sum += metric;
    r->sum2 += metric * metric;
    r->lsum += loss;
}

/* Mean and population std over `nets` networks. */
static void row_finish(const row_sums *r, int nets, dd_eval_stats *out) {
    out->n_metrics = r->nm;
    for (int i = 0; i < r->nm; i++) {
        out->metric_mean[i] = r->msum[i] / nets;
        double v = r->msum2[i] / nets - out->metric_mean[i] * out->metric_mean[i];
        out->metric_std[i] = v > 0 ? sqrt(v) : 0.0;
    }
    out->nets = nets;
    out->mean = r->sum / nets;
    double var = r->sum2 / nets - out->mean * out->mean;
    out->std = var > 0 ? sqrt(var) : 0.0;
    out->loss = r->lsum / nets;
}

/* Per-class top-1 accuracy of θ on the test split, added into sum[c]
 * (n_classes entries). */
static dd_status add_class_accuracy(dd_model *m, const dd_dataset *test, const float *theta,
                                    int64_t test_batch, double *sum) {
    const int K = dd_model_output_dim(m), C = test->n_classes;
    const size_t D = dd_dataset_image_size(test);
    if (test_batch < 1 || test_batch > test->n) test_batch = test->n;
    float *logits = dd_alloc_floats((size_t)test_batch * (size_t)K);
    float *x = dd_alloc_floats((size_t)test_batch * D);
    int64_t *hit = calloc((size_t)C, sizeof *hit), *all = calloc((size_t)C, sizeof *all);
    dd_status s = logits && x && hit && all ? DD_OK : dd_nomem();
    for (int64_t b = 0; s == DD_OK && b < test->n; b += test_batch) {
        const int64_t n = test->n - b < test_batch ? test->n - b : test_batch;
        s = dd_dataset_gather_range(test, b, n, x);
        if (s == DD_OK) s = dd_model_forward_pieces(m, theta, x, n, DD_MODEL_FORWARD_PIECE, logits);
        for (int64_t i = 0; s == DD_OK && i < n; i++) {
            const float *z = logits + (size_t)i * (size_t)K;
            int best = 0;
            for (int k = 1; k < K; k++)
                if (z[k] > z[best]) best = k;
            const int32_t y = test->labels[b + i];
            if (y < 0 || y >= C) continue;
            all[y]++;
            hit[y] += best == y;
        }
    }
    for (int c = 0; s == DD_OK && c < C; c++)
        sum[c] += all[c] ? (double)hit[c] / (double)all[c] : 0.0;
    dd_free(logits);
    dd_free(x);
    free(hit);
    free(all);
    return s;
}

/* What a row measures besides its final metric: the first metric after
 * every inner step (curve, curve_len points; the set's steps then run
 * through train_observed) and the per-class accuracy (classes). Sums over
 * the networks on the way, means when the row is done. */
typedef struct row_extras {
    const dd_distilled *set; /* for the curve */
    const float *lrs;
    double *curve;
    int curve_len;
    double *classes; /* test->n_classes */
} row_extras;

typedef struct curve_ctx {
    const dd_objective_handle *obj;
    const dd_dataset *test;
    int64_t test_batch;
    double *curve;
} curve_ctx;

static dd_status observe_curve(dd_model *m, const float *theta, int k, void *user) {
    curve_ctx *c = user;
    double metric = 0.0, loss = 0.0;
    DD_TRY(dd_evaluate_test(m, c->obj, c->test, theta, c->test_batch, &metric, &loss));
    c->curve[k] += metric;
    return DD_OK;
}

/* One row's networks, computed one per worker: each network's results go
 * to its own record (metrics, loss, per-class accuracy, curve), added in
 * network order afterwards, so a row's numbers do not depend on the thread
 * or rank count. */
typedef struct row_job {
    dd_model **models; /* per worker */
    float **theta;     /* per worker */
    const dd_objective_handle *obj;
    const dd_dataset *test;
    const dd_eval_config *cfg;
    train_fn train;
    const void *arg;
    const row_extras *x;
    int64_t lo; /* first network of this rank */
    int nm_all; /* metrics the objective reports */
    size_t off_loss, off_class, off_curve, stride;
    double *res; /* stride doubles per network */
} row_job;

static dd_status row_net(const row_job *j, int n, int w) {
    dd_model *m = j->models[w];
    float *theta = j->theta[w];
    double *rec = j->res + (size_t)n * j->stride;
    const row_extras *x = j->x;
    DD_TRY(net_theta0(m, j->cfg, n, theta));
    if (x && x->curve) {
        curve_ctx cc = {j->obj, j->test, j->cfg->test_batch, rec + j->off_curve};
        DD_TRY(train_observed(m, x->set, x->lrs, theta, observe_curve, &cc));
    } else if (j->train) {
        DD_TRY(j->train(m, j->arg, n, theta));
    }
    DD_TRY(dd_evaluate_test_all(m, j->obj, j->test, theta, j->cfg->test_batch, rec,
                                rec + j->off_loss));
    if (x && x->classes)
        DD_TRY(add_class_accuracy(m, j->test, theta, j->cfg->test_batch, rec + j->off_class));
    return DD_OK;
}

typedef struct row_team {
    row_job *j;
    int count; /* this rank's networks */
} row_team;

static int row_team_chunks(void *ctx, int step) {
    (void)step;
    return ((const row_team *)ctx)->count;
}

static dd_status row_team_compute(void *ctx, int step, int c, int w, int buf) {
    (void)buf; // results go to per-network records, not team buffers
    (void)step;
    const row_team *t = ctx;
    return row_net(t->j, (int)t->j->lo + c, w);
}

/* The row's networks: θ0 of each, train (train NULL: untrained), test, then
 * mean ± std over them. One network runs on cfg->nthreads (0: the model's
 * setting); several run one per worker thread (and rank), each on one. */
static dd_status eval_row_x(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                            const dd_eval_config *cfg, train_fn train, const void *arg,
                            row_extras *x, dd_eval_stats *out) {
    memset(out, 0, sizeof *out);
    const int nets = net_count(cfg->init_mode, cfg->nets, cfg->theta_pool_size);
    if ((cfg->init_mode == DD_INIT_PRETRAINED_RANDOM ||
         (cfg->init_mode == DD_INIT_PRETRAINED_FIXED && !cfg->theta0)) &&
        (!cfg->theta_pool || cfg->theta_pool_size < 1))
        return dd_error_set(DD_ERR_INVALID,
                            "evaluate: init_mode %s needs held-out pretrained networks "
                            "(pretrain.holdout >= 1)",
                            dd_init_mode_str(cfg->init_mode));
    row_sums r = {.nm =
                      obj->n_metrics < DD_EVAL_MAX_METRICS ? obj->n_metrics : DD_EVAL_MAX_METRICS};
    const int nm_all = obj->n_metrics > 0 ? obj->n_metrics : 1;
    const int C = test->n_classes;
    const int curve_len = x && x->curve ? x->curve_len : 0;
    row_job j = {.obj = obj, .test = test, .cfg = cfg, .train = train, .arg = arg, .x = x};
    j.nm_all = nm_all;
    j.off_loss = (size_t)nm_all;
    j.off_class = j.off_loss + 1;
    j.off_curve = j.off_class + (size_t)C;
    j.stride = j.off_curve + (size_t)curve_len;
    // one network: all threads on it; several: one thread each, spread over
    // the workers (and the ranks)
    const int parallel = nets > 1;
    int workers = parallel ? dd_threads_resolve(cfg->nthreads) : 1;
    int64_t hi = nets;
    j.lo = 0;
    if (parallel) dd_comm_share(nets, dd_comm_rank(), dd_comm_size(), &j.lo, &hi);
    const int local = (int)(hi - j.lo);
    if (workers > local) workers = local > 0 ? local : 1;
    if (workers > DD_TEAM_MAX_CHUNKS) workers = DD_TEAM_MAX_CHUNKS;
    j.res = calloc((size_t)nets * j.stride, sizeof *j.res);
    j.models = calloc((size_t)workers, sizeof *j.models);
    j.theta = calloc((size_t)workers, sizeof *j.theta);
    dd_status s = j.res && j.models && j.theta ? DD_OK : dd_nomem();
    const int saved_threads = dd_model_threads(m);
    if (s == DD_OK) {
        j.models[0] = m;
        for (int w = 1; s == DD_OK && w < workers; w++)
            s = dd_model_clone(m, &j.models[w]);
        for (int w = 0; s == DD_OK && w < workers; w++)
            if (!(j.theta[w] = dd_alloc_floats(dd_model_param_count(m)))) s = dd_nomem();
    }
    if (s == DD_OK) {
        for (int w = 0; w < workers; w++)
            dd_model_set_threads(j.models[w], parallel ? 1 : cfg->nthreads);
        if (!parallel && cfg->nthreads <= 0) dd_model_set_threads(m, saved_threads);
        row_team t = {&j, local};
        dd_team_job job = {.n_steps = 1,
                           .n_chunks = row_team_chunks,
                           .compute = row_team_compute,
                           .ctx = &t,
                           .no_backup = 1};
        if (local > 0) s = dd_team_run(workers, &job, NULL);
        // every rank's networks to every rank (the others' records are 0)
        if (s == DD_OK && parallel) s = dd_comm_sum_doubles(j.res, (size_t)nets * j.stride);
    }
    dd_model_set_threads(m, saved_threads);
    for (int w = 1; j.models && w < workers; w++)
        dd_model_destroy(j.models[w]);
    for (int w = 0; j.theta && w < workers; w++)
        dd_free(j.theta[w]);
    free(j.models);
    free(j.theta);
    if (s == DD_OK) {
        for (int n = 0; n < nets; n++) {
            const double *rec = j.res + (size_t)n * j.stride;
            row_add(&r, rec, rec[j.off_loss]);
            for (int k = 0; k < curve_len; k++)
                x->curve[k] += rec[j.off_curve + (size_t)k];
            for (int c = 0; x && x->classes && c < C; c++)
                x->classes[c] += rec[j.off_class + (size_t)c];
        }
        row_finish(&r, nets, out);
        for (int k = 0; k < curve_len; k++)
            x->curve[k] /= nets;
        for (int c = 0; x && x->classes && c < C; c++)
            x->classes[c] /= nets;
    }
    free(j.res);
    return s;
}

static dd_status eval_row(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                          const dd_eval_config *cfg, train_fn train, const void *arg,
                          dd_eval_stats *out) {
    return eval_row_x(m, obj, test, cfg, train, arg, NULL, out);
}

/* A row trained on a distilled (or baseline) set with its step sizes. */
typedef struct set_arg {
    const dd_distilled *set;
    const float *lrs;
} set_arg;

static dd_status train_on_set(dd_model *m, const void *arg, int n, float *theta) {
    (void)n;
    const set_arg *a = arg;
    return dd_evaluate_train(m, a->set, a->lrs, theta);
}

dd_status dd_evaluate_set(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                          const dd_distilled *set, const float *lrs, const dd_eval_config *cfg,
                          dd_eval_stats *out) {
    const set_arg a = {set, lrs};
    return eval_row(m, obj, test, cfg, set ? train_on_set : NULL, &a, out);
}

/* The same, also measuring what `want_curve` / `classes` ask for: a new
 * curve of K + 1 points in *curve (caller frees), per-class accuracy added
 * into classes (n_classes zeros on entry). */
static dd_status evaluate_set_x(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                                const dd_distilled *set, const float *lrs,
                                const dd_eval_config *cfg, int want_curve, double **curve,
                                double *classes, dd_eval_stats *out) {
    row_extras x = {.set = set, .lrs = lrs, .classes = classes};
    if (want_curve && set) {
        x.curve_len = set->steps * set->epochs + 1;
        if (!(x.curve = calloc((size_t)x.curve_len, sizeof *x.curve))) return dd_nomem();
    }
    const set_arg a = {set, lrs};
    dd_status s = eval_row_x(m, obj, test, cfg, set ? train_on_set : NULL, &a, &x, out);
    if (s == DD_OK && curve)
        *curve = x.curve;
    else
        free(x.curve);
    return s;
}

void dd_lr_search_defaults(dd_lr_search *s) {
    s->max_iterations = 1000;
    s->batch = 0;
    s->window = 25;
    s->adam_lr = 0.03;
    s->tol = 0.005;
    s->halvings = 2;
}

dd_status dd_evaluate_optimize_lrs(dd_model *m, const dd_objective_handle *obj,
                                   const dd_dataset *train, const dd_distill_config *distill,
                                   const dd_lr_search *search, dd_distilled *set,
                                   dd_lr_search_result *res) {
    dd_lr_search_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    if (search->max_iterations <= 0) return DD_OK;
    if (search->window < 1 || !(search->adam_lr > 0) || search->halvings < 0)
        return dd_error_set(DD_ERR_INVALID, "evaluate: bad step-size search settings");
    dd_distill_config c = *distill;
    c.iterations = search->max_iterations;
    if (search->batch > 0) c.batch_real = search->batch;
    c.learn_pixels = 0;
    c.learn_labels = 0;
    c.learn_lrs = 1;
    c.init_pixels = set->images;
    c.init_labels = set->labels;
    c.checkpoint_path = NULL;
    c.checkpoint_every = 0;
    c.resume = 0;
    c.cancel = NULL;
    c.log_every = 0;
    c.decay_every = 0;
    c.opt_lr = search->adam_lr;
    c.opt_lr_lrs = search->adam_lr;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    if (c.label == NULL) c.label = "lr search";
    if (set->steps != c.steps || set->epochs != c.epochs ||
        set->images_per_class != c.images_per_class)
        return dd_error_set(DD_ERR_INVALID, "evaluate: baseline set shape differs from distill");
    // Start from the set's own step sizes.
    c.lr_init = set->lrs[0] > 0 ? set->lrs[0] : distill->lr_init;
    // The test batch's workspace is not needed during the search (and the
    // search's not after it): one at a time.
    dd_model_release_workspaces(m);
    dd_engine *e;
    DD_TRY(dd_engine_create(m, obj, train, &c, &e));
    float *raw = dd_engine_raw_lrs(e);
    const int K = c.steps * c.epochs;
    for (int k = 0; k < K; k++)
        raw[k] = dd_lr_to_raw(set->lrs[k]);
    float *start = malloc((size_t)K * sizeof *start); // raw step sizes at the window's start
    dd_status s = start ? DD_OK : dd_nomem();
    if (s == DD_OK) memcpy(start, raw, (size_t)K * sizeof *start);
    double best = INFINITY, window_sum = 0.0, adam_lr = search->adam_lr;
    int misses = 0, in_window = 0;
    for (int64_t it = 0; s == DD_OK && it < search->max_iterations; it++) {
        s = dd_engine_step(e);
        if (s != DD_OK) break;
        window_sum += dd_engine_stats(e)->last_loss;
        res->iterations = it + 1;
        if (++in_window < search->window) continue;
        const double mean = window_sum / in_window;
        res->final_loss = mean;
        // Still travelling: some step size moved (in raw units) more than
        // half as far as Adam can move it in a window; the loss of a slow
        // start changes little, but that is not a plateau.
        double drift = 0.0;
        for (int k = 0; k < K; k++) {
            const double d = fabs((double)raw[k] - (double)start[k]);
            if (d > drift) drift = d;
            start[k] = raw[k];
        }
        const int travelling = drift > 0.5 * adam_lr * in_window;
        window_sum = 0.0;
        in_window = 0;
        if (mean < best * (1.0 - search->tol) || travelling) {
            if (mean < best) best = mean;
            continue;
        }
        if (mean < best) best = mean;
        if (misses++ == search->halvings) {
            res->converged = 1;
            break;
        }
        adam_lr *= 0.5;
        dd_engine_set_opt_lr(e, adam_lr, adam_lr);
    }
    free(start);
    if (s == DD_OK)
        for (int k = 0; k < K; k++)
            set->lrs[k] = dd_lr_from_raw(raw[k]);
    dd_engine_destroy(e);
    // The search's real-batch slices and tangents are not needed by what
    // follows (testing runs at its own batch): do not keep them cached.
    dd_model_release_workspaces(m);
    return s;
}

static const struct {
    unsigned bit;
    const char *name;
} protocol_names[] = {
    {DD_PROTOCOL_STEPS, "steps"},
    {DD_PROTOCOL_CROSS_ARCH, "cross_architecture"},
    {DD_PROTOCOL_STANDARD, "standard_training"},
};

dd_status dd_protocol_parse(const char *name, unsigned *bit) {
    for (size_t i = 0; i < sizeof protocol_names / sizeof protocol_names[0]; i++)
        if (name && strcmp(name, protocol_names[i].name) == 0) {
            *bit = protocol_names[i].bit;
            return DD_OK;
        }
    return dd_error_set(DD_ERR_INVALID,
                        "unknown protocol '%s' (valid: steps, cross_architecture, "
                        "standard_training)",
                        name ? name : "");
}

const char *dd_protocol_name(unsigned bit) {
    for (size_t i = 0; i < sizeof protocol_names / sizeof protocol_names[0]; i++)
        if (protocol_names[i].bit == bit) return protocol_names[i].name;
    return "?";
}

void dd_eval_settings_defaults(dd_eval_settings *s) {
    memset(s, 0, sizeof *s);
    s->nets = 20;
    s->n_baselines = 3;
    s->baselines[0] = DD_BASELINE_RANDOM;
    s->baselines[1] = DD_BASELINE_AVERAGE;
    s->baselines[2] = DD_BASELINE_KMEANS;
    s->fixed_lr = 0.02;
    s->protocols = DD_PROTOCOL_STEPS;
    dd_lr_search_defaults(&s->search);
    s->step_curves = 1;
    s->standard = (dd_standard_training){
        .epochs = 300, .nets = 5, .lr = 0.01, .momentum = 0.9, .weight_decay = 5e-4, .batch = 256};
    s->arch_nets = 5;
    s->batch = 1000;
    s->full_training_lr = 0.01;
    s->full_training_batch = 128;
    s->knn_k = 1;
    s->best_of_random_n = 10;
    s->best_of_random_holdout = 1000;
}

dd_status dd_eval_settings_from_options(const dd_options *o, dd_eval_settings *s) {
    dd_eval_settings_defaults(s);
    if (!o) return DD_OK;
    if (dd_options_has(o, "nets")) s->nets = (int)dd_options_int(o, "nets");
    if (dd_options_has(o, "fixed_lr")) s->fixed_lr = dd_options_float(o, "fixed_lr");
    if (dd_options_has(o, "lr_search")) s->search.max_iterations = dd_options_int(o, "lr_search");
    if (dd_options_has(o, "lr_search_batch"))
        s->search.batch = dd_options_int(o, "lr_search_batch");
    if (dd_options_has(o, "lr_search_window"))
        s->search.window = (int)dd_options_int(o, "lr_search_window");
    if (dd_options_has(o, "lr_search_lr")) s->search.adam_lr = dd_options_float(o, "lr_search_lr");
    if (dd_options_has(o, "lr_search_tol")) s->search.tol = dd_options_float(o, "lr_search_tol");
    if (dd_options_has(o, "lr_search_halvings"))
        s->search.halvings = (int)dd_options_int(o, "lr_search_halvings");
    if (dd_options_has(o, "step_curves")) s->step_curves = dd_options_bool(o, "step_curves");
    if (dd_options_has(o, "cross_architecture.nets"))
        s->arch_nets = (int)dd_options_int(o, "cross_architecture.nets");
    dd_standard_training *st = &s->standard;
    if (dd_options_has(o, "standard_training.epochs"))
        st->epochs = (int)dd_options_int(o, "standard_training.epochs");
    if (dd_options_has(o, "standard_training.nets"))
        st->nets = (int)dd_options_int(o, "standard_training.nets");
    if (dd_options_has(o, "standard_training.lr"))
        st->lr = dd_options_float(o, "standard_training.lr");
    if (dd_options_has(o, "standard_training.momentum"))
        st->momentum = dd_options_float(o, "standard_training.momentum");
    if (dd_options_has(o, "standard_training.weight_decay"))
        st->weight_decay = dd_options_float(o, "standard_training.weight_decay");
    if (dd_options_has(o, "standard_training.batch"))
        st->batch = dd_options_int(o, "standard_training.batch");
    if (dd_options_has(o, "standard_training.crop"))
        st->crop = (int)dd_options_int(o, "standard_training.crop");
    if (dd_options_has(o, "standard_training.flip"))
        st->flip = dd_options_bool(o, "standard_training.flip");
    if (dd_options_has(o, "protocols")) {
        s->protocols = 0;
        for (size_t i = 0; i < dd_options_list_len(o, "protocols"); i++) {
            unsigned bit;
            dd_status ps = dd_protocol_parse(dd_options_list_item(o, "protocols", i), &bit);
            if (ps != DD_OK) {
                dd_error_prefix("%s: evaluate.protocols", dd_options_where(o, "protocols"));
                return ps;
            }
            s->protocols |= bit;
        }
    }
    if (dd_options_has(o, "batch")) s->batch = dd_options_int(o, "batch");
    if (dd_options_has(o, "full_training_epochs"))
        s->full_training_epochs = (int)dd_options_int(o, "full_training_epochs");
    if (dd_options_has(o, "full_training_lr"))
        s->full_training_lr = dd_options_float(o, "full_training_lr");
    if (dd_options_has(o, "full_training_batch"))
        s->full_training_batch = dd_options_int(o, "full_training_batch");
    if (dd_options_has(o, "knn_k")) s->knn_k = (int)dd_options_int(o, "knn_k");
    if (dd_options_has(o, "best_of_random_n"))
        s->best_of_random_n = (int)dd_options_int(o, "best_of_random_n");
    if (dd_options_has(o, "best_of_random_holdout"))
        s->best_of_random_holdout = dd_options_int(o, "best_of_random_holdout");
    if (dd_options_has(o, "knn_distance")) {
        dd_status st =
            dd_knn_distance_parse(dd_options_string(o, "knn_distance"), &s->knn_distance);
        if (st != DD_OK) {
            dd_error_prefix("%s", dd_options_where(o, "knn_distance"));
            return st;
        }
    }
    if (dd_options_has(o, "baselines")) {
        size_t n = dd_options_list_len(o, "baselines");
        s->n_baselines = 0;
        for (size_t i = 0; i < n; i++) {
            const char *name = dd_options_list_item(o, "baselines", i);
            if (strcmp(name, "knn") == 0) { // a classifier on each set, not an image set
                s->knn = 1;
                continue;
            }
            dd_baseline_kind k;
            dd_status st = dd_baseline_parse(name, &k);
            if (st != DD_OK) {
                dd_error_prefix("%s: evaluate.baselines", dd_options_where(o, "baselines"));
                return st;
            }
            int dup = 0;
            for (int j = 0; j < s->n_baselines; j++)
                dup |= s->baselines[j] == k;
            if (!dup) s->baselines[s->n_baselines++] = k;
        }
    }
    return DD_OK;
}

void dd_eval_report_release(dd_eval_report *r) {
    if (!r) return;
    for (int i = 0; i < r->n_baselines; i++) {
        free(r->baselines[i].lrs);
        free(r->baselines[i].curve);
        dd_distilled_destroy(r->baselines[i].set);
    }
    for (int i = 0; i < r->n_extra; i++) {
        free(r->extra[i].lrs);
        free(r->extra[i].curve);
        dd_distilled_destroy(r->extra[i].set);
    }
    free(r->curve_distilled);
    free(r->class_before);
    free(r->class_after);
    memset(r, 0, sizeof *r);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the evaluate stage --------------------------------------------------- */

/* What every row of dd_evaluate_run shares. */
typedef struct eval_run {
    dd_model *m;
    const dd_objective_handle *obj;
    const dd_dataset *train, *test;
    const dd_distill_config *distill;
    const dd_eval_settings *es;
    dd_eval_config ec;
    dd_eval_report *out;
    dd_progress *bar;
    uint64_t done;
} eval_run;

/* One step of the progress bar, also logged at debug level. */
static void tick(eval_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tick(eval_run *r, const char *fmt, ...) {
    char status[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof status, fmt, ap);
    va_end(ap);
    if (r->bar) dd_progress_update(r->bar, ++r->done, status);
    dd_debug("evaluate: %s", status);
}

/* The report's header: metric names, nets per row, the objective's section. */
static void report_init(eval_run *r) {
    dd_eval_report *out = r->out;
    const dd_objective_handle *obj = r->obj;
    out->metric = obj->n_metrics > 0 ? obj->ops->metric_names[0] : "metric";
    out->init_mode = r->distill->init_mode;
    out->nets = net_count(r->distill->init_mode, r->es->nets, r->es->eval_pool_size);
    out->metric_names = obj->ops->metric_names;
    out->n_metrics = obj->n_metrics;
    if (DD_OBJECTIVE_HAS(obj->ops, report_keys)) {
        out->report_section = obj->ops->report_section;
        out->report_keys = obj->ops->report_keys;
    }
    out->search = r->es->search;
    out->protocols = r->es->protocols;
    out->fixed_lr_value = r->es->fixed_lr;
}

/* The untrained networks (the "before" of the per-class accuracy). */
static dd_status untrained_row(eval_run *r) {
    dd_eval_report *out = r->out;
    const int C = r->test->n_classes;
    if (C > 0 && !(out->class_before = calloc((size_t)C, sizeof(double)))) return dd_nomem();
    DD_TRY(evaluate_set_x(r->m, r->obj, r->test, NULL, NULL, &r->ec, 0, NULL, out->class_before,
                          &out->untrained));
    tick(r, "untrained %s %.4f", out->metric, out->untrained.mean);
    return DD_OK;
}

/* The distilled set with its learned step sizes (with its step curve and
 * per-class accuracy), then with the fixed one. */
static dd_status distilled_rows(eval_run *r, const dd_distilled *set) {
    dd_eval_report *out = r->out;
    const int K = r->distill->steps * r->distill->epochs, C = r->test->n_classes;
    if (C > 0 && !(out->class_after = calloc((size_t)C, sizeof(double)))) return dd_nomem();
    out->n_classes = C;
    float *fixed = malloc((size_t)K * sizeof *fixed);
    if (!fixed) return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    for (int k = 0; k < K; k++)
        fixed[k] = (float)r->es->fixed_lr;
    dd_status s = evaluate_set_x(r->m, r->obj, r->test, set, NULL, &r->ec, r->es->step_curves,
                                 &out->curve_distilled, out->class_after, &out->distilled);
    if (s == DD_OK) {
        out->has_distilled = 1;
        if (out->curve_distilled) out->curve_len = K + 1;
        tick(r, "distilled %s %.4f ± %.4f", out->metric, out->distilled.mean, out->distilled.std);
        s = dd_evaluate_set(r->m, r->obj, r->test, set, fixed, &r->ec, &out->fixed_lr);
    }
    if (s == DD_OK)
        tick(r, "distilled, fixed lr %g: %s %.4f", r->es->fixed_lr, out->metric,
             out->fixed_lr.mean);
    free(fixed);
    return s;
}

/* The step-size search of the steps protocol for a set: the distillation's
 * init mode and model. */
static dd_status search_lrs(eval_run *r, const dd_dataset *train, const char *name,
                            dd_distilled *set, dd_lr_search_result *res) {
    dd_distill_config c = *r->distill;
    c.progress = 0;
    c.label = name;
    return dd_evaluate_optimize_lrs(r->m, r->obj, train, &c, &r->es->search, set, res);
}

/* A built baseline set under the steps protocol: tested with its initial
 * step size, step sizes optimised (pixels frozen), tested again (with its
 * step curve); keeps a copy of the step sizes. The core's baselines advance
 * the progress bar, the objective's are logged. */
static dd_status baseline_rows(eval_run *r, dd_eval_baseline *b, const char *name, int progress) {
    const dd_eval_report *out = r->out;
    dd_status s = dd_evaluate_set(r->m, r->obj, r->test, b->set, NULL, &r->ec, &b->stats_init_lr);
    if (s == DD_OK) s = search_lrs(r, r->train, name, b->set, &b->search);
    if (s == DD_OK && progress)
        tick(r, "%s: lr optimised (%lld iterations%s)", name, (long long)b->search.iterations,
             b->search.converged ? ", converged" : ", budget reached");
    if (s == DD_OK)
        s = evaluate_set_x(r->m, r->obj, r->test, b->set, NULL, &r->ec, r->es->step_curves,
                           &b->curve, NULL, &b->stats);
    if (s == DD_OK) {
        const size_t K = (size_t)r->distill->steps * (size_t)r->distill->epochs;
        if (!(b->lrs = malloc(K * sizeof *b->lrs)))
            s = dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
        else
            memcpy(b->lrs, b->set->lrs, K * sizeof *b->lrs);
    }
    if (s == DD_OK && progress)
        tick(r, "%s %s %.4f ± %.4f", name, out->metric, b->stats.mean, b->stats.std);
    else if (s == DD_OK)
        dd_info("evaluate: %s %s %.4f ± %.4f", name, out->metric, b->stats.mean, b->stats.std);
    if (s != DD_OK) dd_error_prefix("evaluate: baseline '%s'", name);
    return s;
}

/* Copies images idx[0 .. n) of `src` into a new dataset. */
static dd_status subset_copy(const dd_dataset *src, const int64_t *idx, int64_t n, const char *name,
                             dd_dataset **out) {
    return dd_dataset_subset(src, idx, n, name, out);
}

/* best_of_random: N random subsets drawn from the training set minus
 * `holdout` images; each gets its step sizes optimised on the rest of the
 * training set and is measured on the held-out images; the best one (first
 * metric, higher is better; the first on ties) is returned with its step
 * sizes reset, to be evaluated like every other baseline. */
static dd_status best_of_random(eval_run *r, dd_distilled **out) {
    const dd_distill_config *d = r->distill;
    const dd_eval_settings *es = r->es;
    const dd_dataset *train = r->train;
    *out = NULL;
    if (es->best_of_random_holdout >= train->n)
        return dd_error_set(DD_ERR_INVALID,
                            "evaluate.best_of_random_holdout = %lld must be smaller than the "
                            "training set (%lld images)",
                            (long long)es->best_of_random_holdout, (long long)train->n);
    int64_t *perm = malloc((size_t)train->n * sizeof *perm);
    if (!perm) return dd_nomem();
    for (int64_t i = 0; i < train->n; i++)
        perm[i] = i;
    dd_rng rng = dd_rng_make(d->seed, 0xB0B0);
    for (int64_t i = train->n - 1; i > 0; i--) { // Fisher-Yates
        int64_t j = (int64_t)dd_rng_below(&rng, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    const int64_t H = es->best_of_random_holdout;
    dd_dataset *held = NULL, *rest = NULL;
    dd_status s = subset_copy(train, perm, H, "best_of_random/holdout", &held);
    if (s == DD_OK) s = subset_copy(train, perm + H, train->n - H, "best_of_random/pool", &rest);
    free(perm);
    double best = -1e300;
    for (int i = 0; s == DD_OK && i < es->best_of_random_n; i++) {
        dd_distilled *cand = NULL;
        s = dd_baseline_build(DD_BASELINE_RANDOM, rest, d->steps, d->epochs, d->images_per_class,
                              (float)d->lr_init, d->seed + 1 + (uint64_t)i, r->ec.nthreads, &cand);
        dd_distilled *fresh = NULL;
        if (s == DD_OK) s = dd_distilled_clone(cand, &fresh); // its initial step sizes
        if (s == DD_OK) s = search_lrs(r, rest, "best_of_random", cand, NULL);
        dd_eval_stats st;
        if (s == DD_OK) s = dd_evaluate_set(r->m, r->obj, held, cand, NULL, &r->ec, &st);
        if (s == DD_OK) {
            dd_info("evaluate: best_of_random subset %d/%d: held-out %s %.4f", i + 1,
                    es->best_of_random_n, r->out->metric, st.mean);
            if (st.mean > best) {
                best = st.mean;
                dd_distilled_destroy(*out);
                *out = fresh;
                fresh = NULL;
            }
        }
        dd_distilled_destroy(fresh);
        dd_distilled_destroy(cand);
    }
    dd_dataset_destroy(held);
    dd_dataset_destroy(rest);
    r->out->best_of_random_n = es->best_of_random_n;
    r->out->best_of_random_holdout = H;
    if (s != DD_OK) {
        dd_distilled_destroy(*out);
        *out = NULL;
    }
    return s;
}

/* Builds the core's baseline sets (random, average, k-means images, best of
 * N random) and the objective's own (e.g. relabelled real images). */
static dd_status build_baselines(eval_run *r) {
    const dd_distill_config *d = r->distill;
    dd_status s = DD_OK;
    for (int i = 0; s == DD_OK && i < r->es->n_baselines; i++) {
        dd_eval_baseline *b = &r->out->baselines[i];
        b->kind = r->es->baselines[i];
        r->out->n_baselines = i + 1;
        if (b->kind == DD_BASELINE_BEST_OF_RANDOM)
            s = best_of_random(r, &b->set);
        else
            s = dd_baseline_build(b->kind, r->train, d->steps, d->epochs, d->images_per_class,
                                  (float)d->lr_init, d->seed, r->ec.nthreads, &b->set);
        if (s != DD_OK) dd_error_prefix("evaluate: baseline '%s'", dd_baseline_name(b->kind));
    }
    const dd_objective_ops *ops = r->obj->ops;
    if (s != DD_OK || !DD_OBJECTIVE_HAS(ops, build_baseline) || !ops->baseline_names ||
        !ops->build_baseline)
        return s;
    const dd_dataset *t = r->train;
    for (int i = 0; s == DD_OK && ops->baseline_names[i] && i < DD_EVAL_MAX_EXTRA; i++) {
        dd_eval_baseline *b = &r->out->extra[i];
        b->name = ops->baseline_names[i];
        r->out->n_extra = i + 1;
        s = dd_distilled_create(d->steps, d->epochs, d->images_per_class, t->n_classes, t->channels,
                                t->height, t->width, (float)d->lr_init, &b->set);
        if (s == DD_OK) {
            memcpy(b->set->mean, t->mean, sizeof b->set->mean);
            memcpy(b->set->std, t->std, sizeof b->set->std);
            const uint64_t seed =
                dd_engine_init_seed(d->seed, DD_STREAM_BASELINE_RANDOM, 0x1000u + (uint64_t)i);
            s = ops->build_baseline(r->obj->state, i, t, d->steps, b->set->per_step, seed,
                                    b->set->images, b->set->labels);
        }
        if (s != DD_OK) dd_error_prefix("evaluate: baseline '%s'", b->name);
    }
    return s;
}

static const char *baseline_label(const dd_eval_baseline *b) {
    return b->name ? b->name : dd_baseline_name(b->kind);
}

/* The steps protocol's baseline rows (the core's on the progress bar). */
static dd_status steps_baselines(eval_run *r) {
    dd_eval_report *out = r->out;
    for (int i = 0; i < out->n_baselines; i++)
        DD_TRY(baseline_rows(r, &out->baselines[i], baseline_label(&out->baselines[i]), 1));
    for (int i = 0; i < out->n_extra; i++)
        DD_TRY(baseline_rows(r, &out->extra[i], baseline_label(&out->extra[i]), 0));
    return DD_OK;
}

/* The full-training reference: SGD on the whole real training set. */
static dd_status train_full(dd_model *m, const void *arg, int n, float *theta) {
    const eval_run *r = arg;
    dd_sgd_config sc;
    dd_sgd_config_defaults(&sc);
    sc.epochs = r->es->full_training_epochs;
    sc.lr = r->es->full_training_lr;
    sc.batch = r->es->full_training_batch;
    sc.seed = dd_engine_init_seed(r->ec.seed, DD_STREAM_EVAL_INITS, 0x10000u + (uint64_t)n);
    sc.label = "full training";
    return dd_sgd_train(m, theta, r->train, &sc);
}

static dd_status full_training_row(eval_run *r) {
    dd_eval_report *out = r->out;
    dd_status s = eval_row(r->m, r->obj, r->test, &r->ec, train_full, r, &out->full_training);
    if (s != DD_OK) {
        dd_error_prefix("evaluate: full training reference");
        return s;
    }
    out->has_full_training = 1;
    out->full_training_epochs = r->es->full_training_epochs;
    dd_info("evaluate: full training (%d epochs) %s %.4f ± %.4f", r->es->full_training_epochs,
            out->metric, out->full_training.mean, out->full_training.std);
    return DD_OK;
}

/* kNN classification of the test set with each set's images as the
 * reference (no network involved). */
static dd_status knn_rows(eval_run *r, const dd_distilled *set) {
    dd_eval_report *out = r->out;
    out->has_knn = 1;
    out->knn_k = r->es->knn_k;
    out->knn_distance = r->es->knn_distance;
    if (set) {
        DD_TRY(dd_knn_accuracy(set, r->test, out->knn_k, out->knn_distance, &out->knn_distilled));
        out->knn_has_distilled = 1;
    }
    for (int i = 0; i < out->n_baselines; i++) {
        dd_eval_baseline *b = &out->baselines[i];
        DD_TRY(dd_knn_accuracy(b->set, r->test, out->knn_k, out->knn_distance, &b->knn));
    }
    dd_info("kNN (k=%d, %s) on the test set: distilled %.4f", out->knn_k,
            dd_knn_distance_name(out->knn_distance), set ? out->knn_distilled : 0.0);
    return DD_OK;
}

/* ---- standard_training ---------------------------------------------------- */

typedef struct standard_arg {
    const dd_distilled *set;
    const dd_standard_training *st;
    uint64_t seed;
} standard_arg;

static dd_status train_standard(dd_model *m, const void *arg, int n, float *theta) {
    const standard_arg *a = arg;
    return dd_evaluate_train_standard(
        m, a->set, a->st,
        dd_engine_init_seed(a->seed, DD_STREAM_EVAL_INITS, 0x20000u + (uint64_t)n), theta);
}

/* Networks from fresh random inits (the model's scheme; the held-out init
 * stream), `nets` of them. */
static dd_eval_config fresh_config(const dd_eval_config *base, int nets, const char *scheme,
                                   double gain) {
    dd_eval_config c = *base;
    c.init_mode = DD_INIT_RANDOM;
    c.init_scheme = scheme;
    c.init_gain = gain;
    c.nets = nets;
    c.theta0 = NULL;
    c.theta_pool = NULL;
    c.theta_pool_size = 0;
    return c;
}

static dd_status standard_row(eval_run *r, const dd_distilled *set, const char *name,
                              dd_eval_stats *out) {
    const standard_arg a = {set, &r->es->standard, r->distill->seed};
    const dd_eval_config c =
        fresh_config(&r->ec, r->es->standard.nets, r->ec.init_scheme, r->ec.init_gain);
    dd_status s = eval_row(r->m, r->obj, r->test, &c, train_standard, &a, out);
    if (s != DD_OK) {
        dd_error_prefix("evaluate: standard_training of '%s'", name);
        return s;
    }
    tick(r, "standard training: %s %s %.4f ± %.4f", name, r->out->metric, out->mean, out->std);
    return DD_OK;
}

static dd_status standard_rows(eval_run *r, const dd_distilled *set) {
    dd_eval_report *out = r->out;
    out->standard = r->es->standard;
    if (set) DD_TRY(standard_row(r, set, "distilled", &out->standard_distilled));
    for (int i = 0; i < out->n_baselines; i++)
        DD_TRY(standard_row(r, out->baselines[i].set, baseline_label(&out->baselines[i]),
                            &out->baselines[i].standard));
    for (int i = 0; i < out->n_extra; i++)
        DD_TRY(standard_row(r, out->extra[i].set, baseline_label(&out->extra[i]),
                            &out->extra[i].standard));
    return DD_OK;
}

/* ---- cross_architecture --------------------------------------------------- */

/* One set on another network: a copy of it gets step sizes optimised for
 * that network (random inits, as the baselines' search), then is measured
 * on the architecture's held-out random inits. */
static dd_status arch_set_row(eval_run *r, const dd_eval_arch *a, const dd_eval_config *c,
                              const dd_distilled *set, const char *name, dd_eval_stats *out,
                              dd_lr_search_result *res) {
    dd_distilled *copy = NULL;
    DD_TRY(dd_distilled_clone(set, &copy));
    dd_distill_config d = *r->distill;
    d.init_mode = DD_INIT_RANDOM;
    d.init_scheme = a->init_scheme;
    d.init_gain = a->init_gain;
    d.nets_per_iteration = 1;
    d.theta_pool = NULL;
    d.theta_pool_size = 0;
    d.progress = 0;
    d.label = name;
    dd_status s =
        dd_evaluate_optimize_lrs(a->model, r->obj, r->train, &d, &r->es->search, copy, res);
    if (s == DD_OK) s = dd_evaluate_set(a->model, r->obj, r->test, copy, NULL, c, out);
    dd_distilled_destroy(copy);
    if (s != DD_OK) {
        dd_error_prefix("evaluate: cross_architecture %s, set '%s'", a->name, name);
        return s;
    }
    tick(r, "%s: %s %s %.4f ± %.4f (lr search %lld iterations)", a->name, name, r->out->metric,
         out->mean, out->std, (long long)res->iterations);
    return DD_OK;
}

static dd_status arch_rows(eval_run *r, const dd_distilled *set) {
    dd_eval_report *out = r->out;
    if (r->distill->init_mode == DD_INIT_PRETRAINED_FIXED ||
        r->distill->init_mode == DD_INIT_PRETRAINED_RANDOM)
        return dd_error_set(DD_ERR_INVALID,
                            "evaluate.protocols: cross_architecture needs networks drawn from "
                            "random inits; init_mode %s trains pretrained networks of the "
                            "pipeline's own model only",
                            dd_init_mode_str(r->distill->init_mode));
    for (int i = 0; i < r->es->n_arch; i++) {
        const dd_eval_arch *a = &r->es->arch[i];
        struct dd_eval_arch_report *ar = &out->arch[i];
        out->n_arch = i + 1;
        ar->name = a->name;
        const dd_eval_config c =
            fresh_config(&r->ec, r->es->arch_nets, a->init_scheme, a->init_gain);
        ar->nets = c.nets;
        DD_TRY(dd_evaluate_set(a->model, r->obj, r->test, NULL, NULL, &c, &ar->untrained));
        if (set)
            DD_TRY(arch_set_row(r, a, &c, set, "distilled", &ar->distilled, &ar->distilled_search));
        for (int b = 0; b < out->n_baselines; b++)
            DD_TRY(arch_set_row(r, a, &c, out->baselines[b].set, baseline_label(&out->baselines[b]),
                                &ar->baselines[b], &ar->baseline_search[b]));
        for (int b = 0; b < out->n_extra; b++)
            DD_TRY(arch_set_row(r, a, &c, out->extra[b].set, baseline_label(&out->extra[b]),
                                &ar->extra[b], &ar->extra_search[b]));
    }
    return DD_OK;
}

dd_status dd_evaluate_run(dd_model *m, const dd_objective_handle *obj, const dd_dataset *train,
                          const dd_dataset *test, const dd_distilled *set, const float *theta0,
                          const dd_distill_config *distill, const dd_eval_settings *es,
                          dd_eval_report *out) {
    memset(out, 0, sizeof *out);
    const double t0 = seconds_now();
    eval_run r = {
        .m = m, .obj = obj, .train = train, .test = test, .distill = distill, .es = es, .out = out};
    report_init(&r);
    dd_eval_config_defaults(&r.ec);
    r.ec.init_mode = distill->init_mode;
    r.ec.init_scheme = distill->init_scheme;
    r.ec.init_gain = distill->init_gain;
    r.ec.seed = distill->seed;
    r.ec.nets = es->nets;
    r.ec.theta0 = theta0;
    r.ec.test_batch = es->batch;
    r.ec.theta_pool = es->eval_pool;
    r.ec.theta_pool_size = es->eval_pool_size;
    r.ec.nthreads = distill->nthreads;
    const int steps = (es->protocols & DD_PROTOCOL_STEPS) != 0;
    const uint64_t sets = (set ? 1 : 0) + (uint64_t)es->n_baselines;
    uint64_t total = 1;
    if (steps) total += (set ? 2 : 0) + (uint64_t)es->n_baselines * 2;
    if (es->protocols & DD_PROTOCOL_STANDARD) total += sets;
    if (es->protocols & DD_PROTOCOL_CROSS_ARCH) total += (uint64_t)es->n_arch * sets;
    if (es->progress && dd_progress_create("evaluate", total, "run", &r.bar) != DD_OK) {
        r.bar = NULL;
        dd_error_clear();
    }
    dd_status s = DD_OK;
    if ((es->protocols & DD_PROTOCOL_CROSS_ARCH) && es->n_arch < 1)
        s = dd_error_set(DD_ERR_INVALID,
                         "evaluate.protocols: cross_architecture needs evaluate.architectures "
                         "(the other networks, e.g. [convnet])");
    if (s == DD_OK) s = untrained_row(&r);
    if (s == DD_OK && steps && set) s = distilled_rows(&r, set);
    if (s == DD_OK) s = build_baselines(&r);
    if (s == DD_OK && steps) s = steps_baselines(&r);
    // Reference: the same networks trained on the whole real training set.
    if (s == DD_OK && es->full_training_epochs > 0) s = full_training_row(&r);
    if (s == DD_OK && es->knn) s = knn_rows(&r, set);
    if (s == DD_OK && (es->protocols & DD_PROTOCOL_STANDARD)) s = standard_rows(&r, set);
    if (s == DD_OK && (es->protocols & DD_PROTOCOL_CROSS_ARCH)) s = arch_rows(&r, set);
    dd_progress_destroy(r.bar);
    out->seconds = seconds_now() - t0;
    if (s != DD_OK) dd_eval_report_release(out);
    return s;
}
