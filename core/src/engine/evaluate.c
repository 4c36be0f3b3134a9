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

#include "base/error.h"
#include "distill/log.h"
#include "distill/tensor.h"
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

dd_status dd_evaluate_train(dd_model *m, const dd_distilled *set, const float *lrs, float *theta) {
    const size_t P = dd_model_param_count(m), D = dd_distilled_image_size(set);
    if (D != dd_model_input_size(m))
        return dd_error_set(DD_ERR_INVALID, "evaluate: set images have %zu values, model wants %zu",
                            D, dd_model_input_size(m));
    if (!lrs) lrs = set->lrs;
    float *g = dd_alloc_floats(P);
    if (!g) return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    dd_status s = DD_OK;
    // Small distilled batches on one thread, as in the engine (engine.c).
    const int saved = dd_model_threads(m);
    if (set->per_step <= DD_EVAL_SMALL_BATCH) dd_model_set_threads(m, 1);
    for (int e = 0; s == DD_OK && e < set->epochs; e++) {
        for (int st = 0; s == DD_OK && st < set->steps; st++) {
            const int k = e * set->steps + st;
            dd_labels y = {NULL, NULL};
            if (set->soft)
                y.soft = set->soft + (size_t)st * (size_t)set->per_step * (size_t)set->n_outputs;
            else
                y.hard = set->labels;
            double loss;
            s = dd_model_loss_grad(m, theta, set->images + (size_t)st * (size_t)set->per_step * D,
                                   set->per_step, y, &loss, g, NULL, NULL);
            const float lr = lrs[k];
            for (size_t i = 0; s == DD_OK && i < P; i++)
                theta[i] -= lr * g[i];
        }
    }
    dd_model_set_threads(m, saved);
    dd_free(g);
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
    double *num = calloc((size_t)nm, sizeof *num), *den = calloc((size_t)nm, sizeof *den);
    dd_status s = DD_OK;
    if (!logits || !dl || !num || !den) s = dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    double loss_sum = 0.0;
    for (int64_t b = 0; s == DD_OK && b < test->n; b += test_batch) {
        const int64_t n = test->n - b < test_batch ? test->n - b : test_batch;
        s = dd_model_forward(m, theta, test->images + (size_t)b * D, n, logits);
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

/* The row's networks: θ0 of each, train (train NULL: untrained), test, then
 * mean ± std over them. Runs on cfg->nthreads (0: the model's setting). */
static dd_status eval_row(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                          const dd_eval_config *cfg, train_fn train, const void *arg,
                          dd_eval_stats *out) {
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
    // The objective may report more metrics than a row keeps; test them all.
    double mval[DD_EVAL_MAX_METRICS + 1];
    double *mall =
        obj->n_metrics > DD_EVAL_MAX_METRICS ? malloc((size_t)obj->n_metrics * sizeof *mall) : mval;
    float *theta = dd_alloc_floats(dd_model_param_count(m));
    dd_status s = DD_OK;
    if (!mall || !theta) s = dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    const int saved_threads = dd_model_threads(m);
    if (cfg->nthreads > 0) dd_model_set_threads(m, cfg->nthreads);
    for (int n = 0; s == DD_OK && n < nets; n++) {
        double loss = 0.0;
        s = net_theta0(m, cfg, n, theta);
        if (s == DD_OK && train) s = train(m, arg, n, theta);
        if (s == DD_OK) s = dd_evaluate_test_all(m, obj, test, theta, cfg->test_batch, mall, &loss);
        if (s == DD_OK) row_add(&r, mall, loss);
    }
    dd_model_set_threads(m, saved_threads);
    dd_free(theta);
    if (mall != mval) free(mall);
    if (s == DD_OK) row_finish(&r, nets, out);
    return s;
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

dd_status dd_evaluate_optimize_lrs(dd_model *m, const dd_objective_handle *obj,
                                   const dd_dataset *train, const dd_distill_config *distill,
                                   int64_t iterations, dd_distilled *set) {
    if (iterations <= 0) return DD_OK;
    dd_distill_config c = *distill;
    c.iterations = iterations;
    c.learn_pixels = 0;
    c.learn_labels = 0;
    c.learn_lrs = 1;
    c.init_pixels = set->images;
    c.init_labels = set->labels;
    c.checkpoint_path = NULL;
    c.checkpoint_every = 0;
    c.resume = 0;
    c.decay_every = 0;
    if (c.label == NULL) c.label = "lr search";
    if (set->steps != c.steps || set->epochs != c.epochs ||
        set->images_per_class != c.images_per_class)
        return dd_error_set(DD_ERR_INVALID, "evaluate: baseline set shape differs from distill");
    // Start from the set's own step sizes.
    c.lr_init = set->lrs[0] > 0 ? set->lrs[0] : distill->lr_init;
    dd_engine *e;
    DD_TRY(dd_engine_create(m, obj, train, &c, &e));
    float *raw = dd_engine_raw_lrs(e);
    for (int k = 0; k < c.steps * c.epochs; k++)
        raw[k] = dd_lr_to_raw(set->lrs[k]);
    dd_status s = dd_engine_run(e);
    if (s == DD_OK)
        for (int k = 0; k < c.steps * c.epochs; k++)
            set->lrs[k] = dd_lr_from_raw(raw[k]);
    dd_engine_destroy(e);
    return s;
}

void dd_eval_settings_defaults(dd_eval_settings *s) {
    memset(s, 0, sizeof *s);
    s->nets = 20;
    s->n_baselines = 3;
    s->baselines[0] = DD_BASELINE_RANDOM;
    s->baselines[1] = DD_BASELINE_AVERAGE;
    s->baselines[2] = DD_BASELINE_KMEANS;
    s->fixed_lr = 0.02;
    s->lr_search = 30;
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
    if (dd_options_has(o, "lr_search")) s->lr_search = dd_options_int(o, "lr_search");
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
    out->lr_search = r->es->lr_search;
    out->fixed_lr_value = r->es->fixed_lr;
}

/* The distilled set with its learned step sizes, then with the fixed one. */
static dd_status distilled_rows(eval_run *r, const dd_distilled *set) {
    dd_eval_report *out = r->out;
    const int K = r->distill->steps * r->distill->epochs;
    float *fixed = malloc((size_t)K * sizeof *fixed);
    if (!fixed) return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    for (int k = 0; k < K; k++)
        fixed[k] = (float)r->es->fixed_lr;
    dd_status s = dd_evaluate_set(r->m, r->obj, r->test, set, NULL, &r->ec, &out->distilled);
    if (s == DD_OK) {
        out->has_distilled = 1;
        tick(r, "distilled %s %.4f ± %.4f", out->metric, out->distilled.mean, out->distilled.std);
        s = dd_evaluate_set(r->m, r->obj, r->test, set, fixed, &r->ec, &out->fixed_lr);
    }
    if (s == DD_OK)
        tick(r, "distilled, fixed lr %g: %s %.4f", r->es->fixed_lr, out->metric,
             out->fixed_lr.mean);
    free(fixed);
    return s;
}

/* A built baseline set: tested with its initial step size, step sizes
 * optimised (pixels frozen), tested again; keeps a copy of the step sizes.
 * The core's baselines advance the progress bar, the objective's are logged. */
static dd_status baseline_rows(eval_run *r, dd_eval_baseline *b, const char *name, int progress) {
    const dd_eval_report *out = r->out;
    dd_status s = dd_evaluate_set(r->m, r->obj, r->test, b->set, NULL, &r->ec, &b->stats_init_lr);
    if (s == DD_OK) {
        dd_distill_config c = *r->distill;
        c.progress = 0;
        c.label = name;
        s = dd_evaluate_optimize_lrs(r->m, r->obj, r->train, &c, r->es->lr_search, b->set);
    }
    if (s == DD_OK && progress)
        tick(r, "%s: lr optimised (%lld iterations)", name, (long long)r->es->lr_search);
    if (s == DD_OK) s = dd_evaluate_set(r->m, r->obj, r->test, b->set, NULL, &r->ec, &b->stats);
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
    DD_TRY(dd_dataset_create(name, n, src->channels, src->height, src->width, src->n_classes, out));
    const size_t D = dd_dataset_image_size(src);
    for (int64_t i = 0; i < n; i++) {
        memcpy((*out)->images + (size_t)i * D, src->images + (size_t)idx[i] * D, D * sizeof(float));
        (*out)->labels[i] = src->labels[idx[i]];
    }
    memcpy((*out)->mean, src->mean, sizeof src->mean);
    memcpy((*out)->std, src->std, sizeof src->std);
    return DD_OK;
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
        if (s == DD_OK) {
            dd_distill_config c = *d;
            c.progress = 0;
            c.label = "best_of_random";
            s = dd_evaluate_optimize_lrs(r->m, r->obj, rest, &c, es->lr_search, cand);
        }
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

/* The core's baselines (random, average, k-means images, best of N random). */
static dd_status core_baselines(eval_run *r) {
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
        if (s == DD_OK)
            s = baseline_rows(r, b, dd_baseline_name(b->kind), 1);
        else
            dd_error_prefix("evaluate: baseline '%s'", dd_baseline_name(b->kind));
    }
    return s;
}

/* The objective's own baselines (e.g. relabelled real images), built by the
 * plugin and treated like the core's: optimised step sizes, same nets. */
static dd_status objective_baselines(eval_run *r) {
    const dd_objective_ops *ops = r->obj->ops;
    if (!DD_OBJECTIVE_HAS(ops, build_baseline) || !ops->baseline_names || !ops->build_baseline)
        return DD_OK;
    const dd_distill_config *d = r->distill;
    const dd_dataset *t = r->train;
    dd_status s = DD_OK;
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
        if (s == DD_OK)
            s = baseline_rows(r, b, b->name, 0);
        else
            dd_error_prefix("evaluate: baseline '%s'", b->name);
    }
    return s;
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
    if (set)
        DD_TRY(dd_knn_accuracy(set, r->test, out->knn_k, out->knn_distance, &out->knn_distilled));
    for (int i = 0; i < out->n_baselines; i++) {
        dd_eval_baseline *b = &out->baselines[i];
        DD_TRY(dd_knn_accuracy(b->set, r->test, out->knn_k, out->knn_distance, &b->knn));
    }
    dd_info("kNN (k=%d, %s) on the test set: distilled %.4f", out->knn_k,
            dd_knn_distance_name(out->knn_distance), set ? out->knn_distilled : 0.0);
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
    const uint64_t total = 1 + (set ? 2 : 0) + (uint64_t)es->n_baselines * 2;
    if (es->progress && dd_progress_create("evaluate", total, "run", &r.bar) != DD_OK) {
        r.bar = NULL;
        dd_error_clear();
    }
    dd_status s = dd_evaluate_set(m, obj, test, NULL, NULL, &r.ec, &out->untrained);
    if (s == DD_OK) tick(&r, "untrained %s %.4f", out->metric, out->untrained.mean);
    if (s == DD_OK && set) s = distilled_rows(&r, set);
    if (s == DD_OK) s = core_baselines(&r);
    if (s == DD_OK) s = objective_baselines(&r);
    // Reference: the same networks trained on the whole real training set.
    if (s == DD_OK && es->full_training_epochs > 0) s = full_training_row(&r);
    if (s == DD_OK && es->knn) s = knn_rows(&r, set);
    dd_progress_destroy(r.bar);
    out->seconds = seconds_now() - t0;
    if (s != DD_OK) dd_eval_report_release(out);
    return s;
}
