/* distill — evaluation of distilled and baseline sets on the test split. */
#define _POSIX_C_SOURCE 200809L
#include "engine/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "distill/log.h"
#include "distill/tensor.h"
#include "engine/train.h"
#include "model/model_impl.h"

/* Distilled batches up to this many images train on one thread, as in the
 * engine (DD_ENGINE_SMALL_BATCH). */
#define DD_EVAL_SMALL_BATCH 128

static size_t image_floats(const dd_dataset *d) {
    return (size_t)d->channels * (size_t)d->height * (size_t)d->width;
}

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
    const size_t D = image_floats(test);
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

dd_status dd_evaluate_set(dd_model *m, const dd_objective_handle *obj, const dd_dataset *test,
                          const dd_distilled *set, const float *lrs, const dd_eval_config *cfg,
                          dd_eval_stats *out) {
    memset(out, 0, sizeof *out);
    const size_t P = dd_model_param_count(m);
    int nets = (cfg->init_mode == DD_INIT_FIXED || cfg->init_mode == DD_INIT_PRETRAINED_FIXED)
                   ? 1
                   : (cfg->nets > 0 ? cfg->nets : 1);
    if (cfg->init_mode == DD_INIT_PRETRAINED_RANDOM && (size_t)nets > cfg->theta_pool_size)
        nets = (int)cfg->theta_pool_size;
    if ((cfg->init_mode == DD_INIT_PRETRAINED_RANDOM ||
         (cfg->init_mode == DD_INIT_PRETRAINED_FIXED && !cfg->theta0)) &&
        (!cfg->theta_pool || cfg->theta_pool_size < 1))
        return dd_error_set(DD_ERR_INVALID,
                            "evaluate: init_mode %s needs held-out pretrained networks "
                            "(pretrain.holdout >= 1)",
                            dd_init_mode_str(cfg->init_mode));
    const int nm = obj->n_metrics < DD_EVAL_MAX_METRICS ? obj->n_metrics : DD_EVAL_MAX_METRICS;
    double msum[DD_EVAL_MAX_METRICS] = {0}, msum2[DD_EVAL_MAX_METRICS] = {0};
    double mval[DD_EVAL_MAX_METRICS + 1];
    double *mall = mval;
    if (obj->n_metrics > DD_EVAL_MAX_METRICS &&
        !(mall = malloc((size_t)obj->n_metrics * sizeof *mall)))
        return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    float *theta = dd_alloc_floats(P);
    if (!theta) return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    const int saved_threads = dd_model_threads(m);
    if (cfg->nthreads > 0) dd_model_set_threads(m, cfg->nthreads);
    const char *scheme = cfg->init_scheme ? cfg->init_scheme : "xavier";
    double sum = 0.0, sum2 = 0.0, lsum = 0.0;
    dd_status s = DD_OK;
    for (int n = 0; s == DD_OK && n < nets; n++) {
        if (cfg->init_mode == DD_INIT_FIXED) {
            if (cfg->theta0)
                memcpy(theta, cfg->theta0, P * sizeof(float));
            else
                s = dd_model_init_params(m, theta, scheme, (float)cfg->init_gain,
                                         dd_engine_init_seed(cfg->seed, DD_STREAM_THETA0, 0));
        } else if (cfg->init_mode == DD_INIT_RANDOM) {
            // Held-out inits: a stream the distillation never draws from.
            s = dd_model_init_params(
                m, theta, scheme, (float)cfg->init_gain,
                dd_engine_init_seed(cfg->seed, DD_STREAM_EVAL_INITS, (uint64_t)n));
        } else if (cfg->init_mode == DD_INIT_PRETRAINED_FIXED) {
            memcpy(theta, cfg->theta0 ? cfg->theta0 : cfg->theta_pool[0], P * sizeof(float));
        } else {
            // Held-out pretrained networks, never drawn by the distillation.
            memcpy(theta, cfg->theta_pool[n], P * sizeof(float));
        }
        if (s == DD_OK && set) s = dd_evaluate_train(m, set, lrs, theta);
        double metric = 0.0, loss = 0.0;
        if (s == DD_OK) s = dd_evaluate_test_all(m, obj, test, theta, cfg->test_batch, mall, &loss);
        if (s == DD_OK) metric = mall[0];
        for (int i = 0; s == DD_OK && i < nm; i++) {
            msum[i] += mall[i];
            msum2[i] += mall[i] * mall[i];
        }
        sum += metric;
        sum2 += metric * metric;
        lsum += loss;
    }
    dd_model_set_threads(m, saved_threads);
    dd_free(theta);
    if (mall != mval) free(mall);
    if (s != DD_OK) return s;
    out->n_metrics = nm;
    for (int i = 0; i < nm; i++) {
        out->metric_mean[i] = msum[i] / nets;
        double v = msum2[i] / nets - out->metric_mean[i] * out->metric_mean[i];
        out->metric_std[i] = v > 0 ? sqrt(v) : 0.0;
    }
    out->nets = nets;
    out->mean = sum / nets;
    double var = sum2 / nets - out->mean * out->mean;
    out->std = var > 0 ? sqrt(var) : 0.0;
    out->loss = lsum / nets;
    return DD_OK;
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
    if (dd_options_has(o, "baselines")) {
        size_t n = dd_options_list_len(o, "baselines");
        s->n_baselines = 0;
        for (size_t i = 0; i < n; i++) {
            dd_baseline_kind k;
            dd_status st = dd_baseline_parse(dd_options_list_item(o, "baselines", i), &k);
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
        dd_distilled_destroy(r->baselines[i].set);
    }
    for (int i = 0; i < r->n_extra; i++) {
        free(r->extra[i].lrs);
        dd_distilled_destroy(r->extra[i].set);
    }
    memset(r, 0, sizeof *r);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

dd_status dd_evaluate_run(dd_model *m, const dd_objective_handle *obj, const dd_dataset *train,
                          const dd_dataset *test, const dd_distilled *set, const float *theta0,
                          const dd_distill_config *distill, const dd_eval_settings *es,
                          dd_eval_report *out) {
    memset(out, 0, sizeof *out);
    const double t0 = seconds_now();
    out->metric = obj->n_metrics > 0 ? obj->ops->metric_names[0] : "metric";
    out->init_mode = distill->init_mode;
    out->nets =
        (distill->init_mode == DD_INIT_FIXED || distill->init_mode == DD_INIT_PRETRAINED_FIXED)
            ? 1
            : es->nets;
    if (distill->init_mode == DD_INIT_PRETRAINED_RANDOM && (size_t)out->nets > es->eval_pool_size)
        out->nets = (int)es->eval_pool_size;
    out->metric_names = obj->ops->metric_names;
    out->n_metrics = obj->n_metrics;
    if (DD_OBJECTIVE_HAS(obj->ops, report_keys)) {
        out->report_section = obj->ops->report_section;
        out->report_keys = obj->ops->report_keys;
    }
    out->lr_search = es->lr_search;
    out->fixed_lr_value = es->fixed_lr;
    dd_eval_config ec;
    dd_eval_config_defaults(&ec);
    ec.init_mode = distill->init_mode;
    ec.init_scheme = distill->init_scheme;
    ec.init_gain = distill->init_gain;
    ec.seed = distill->seed;
    ec.nets = es->nets;
    ec.theta0 = theta0;
    ec.test_batch = es->batch;
    ec.theta_pool = es->eval_pool;
    ec.theta_pool_size = es->eval_pool_size;
    ec.nthreads = distill->nthreads;
    const int K = distill->steps * distill->epochs;
    float *fixed = malloc((size_t)K * sizeof *fixed);
    if (!fixed) return dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
    for (int k = 0; k < K; k++)
        fixed[k] = (float)es->fixed_lr;

    dd_progress *bar = NULL;
    const uint64_t total = 1 + (set ? 2 : 0) + (uint64_t)es->n_baselines * 2;
    uint64_t done = 0;
    if (es->progress && dd_progress_create("evaluate", total, "run", &bar) != DD_OK) {
        bar = NULL;
        dd_error_clear();
    }
    char status[160];
#define TICK(fmt, ...)                                                                             \
    do {                                                                                           \
        snprintf(status, sizeof status, fmt, __VA_ARGS__);                                         \
        if (bar) dd_progress_update(bar, ++done, status);                                          \
        dd_debug("evaluate: %s", status);                                                          \
    } while (0)
    dd_status s = dd_evaluate_set(m, obj, test, NULL, NULL, &ec, &out->untrained);
    if (s == DD_OK) TICK("untrained %s %.4f", out->metric, out->untrained.mean);
    if (s == DD_OK && set) {
        s = dd_evaluate_set(m, obj, test, set, NULL, &ec, &out->distilled);
        if (s == DD_OK) {
            out->has_distilled = 1;
            TICK("distilled %s %.4f ± %.4f", out->metric, out->distilled.mean, out->distilled.std);
            s = dd_evaluate_set(m, obj, test, set, fixed, &ec, &out->fixed_lr);
        }
        if (s == DD_OK)
            TICK("distilled, fixed lr %g: %s %.4f", es->fixed_lr, out->metric, out->fixed_lr.mean);
    }
    for (int i = 0; s == DD_OK && i < es->n_baselines; i++) {
        dd_eval_baseline *b = &out->baselines[i];
        b->kind = es->baselines[i];
        out->n_baselines = i + 1;
        s = dd_baseline_build(b->kind, train, distill->steps, distill->epochs,
                              distill->images_per_class, (float)distill->lr_init, distill->seed,
                              ec.nthreads, &b->set);
        if (s == DD_OK) s = dd_evaluate_set(m, obj, test, b->set, NULL, &ec, &b->stats_init_lr);
        if (s == DD_OK) {
            dd_distill_config c = *distill;
            c.progress = 0;
            c.label = dd_baseline_name(b->kind);
            s = dd_evaluate_optimize_lrs(m, obj, train, &c, es->lr_search, b->set);
        }
        if (s == DD_OK)
            TICK("%s: lr optimised (%lld iterations)", dd_baseline_name(b->kind),
                 (long long)es->lr_search);
        if (s == DD_OK) s = dd_evaluate_set(m, obj, test, b->set, NULL, &ec, &b->stats);
        if (s == DD_OK) {
            b->lrs = malloc((size_t)K * sizeof *b->lrs);
            if (!b->lrs)
                s = dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
            else
                memcpy(b->lrs, b->set->lrs, (size_t)K * sizeof *b->lrs);
        }
        if (s == DD_OK)
            TICK("%s %s %.4f ± %.4f", dd_baseline_name(b->kind), out->metric, b->stats.mean,
                 b->stats.std);
        if (s != DD_OK) dd_error_prefix("evaluate: baseline '%s'", dd_baseline_name(b->kind));
    }
    // The objective's own baselines (e.g. relabelled real images), built by
    // the plugin and treated like the core's: optimised step sizes, same nets.
    const dd_objective_ops *ops = obj->ops;
    if (DD_OBJECTIVE_HAS(ops, build_baseline) && ops->baseline_names && ops->build_baseline) {
        for (int i = 0; s == DD_OK && ops->baseline_names[i] && i < DD_EVAL_MAX_EXTRA; i++) {
            dd_eval_baseline *b = &out->extra[i];
            b->name = ops->baseline_names[i];
            out->n_extra = i + 1;
            s = dd_distilled_create(distill->steps, distill->epochs, distill->images_per_class,
                                    train->n_classes, train->channels, train->height, train->width,
                                    (float)distill->lr_init, &b->set);
            if (s == DD_OK) {
                memcpy(b->set->mean, train->mean, sizeof b->set->mean);
                memcpy(b->set->std, train->std, sizeof b->set->std);
                s = ops->build_baseline(obj->state, i, train, distill->steps, b->set->per_step,
                                        dd_engine_init_seed(distill->seed,
                                                            DD_STREAM_BASELINE_RANDOM,
                                                            0x1000u + (uint64_t)i),
                                        b->set->images, b->set->labels);
            }
            if (s == DD_OK) s = dd_evaluate_set(m, obj, test, b->set, NULL, &ec, &b->stats_init_lr);
            if (s == DD_OK) {
                dd_distill_config c = *distill;
                c.progress = 0;
                c.label = b->name;
                s = dd_evaluate_optimize_lrs(m, obj, train, &c, es->lr_search, b->set);
            }
            if (s == DD_OK) s = dd_evaluate_set(m, obj, test, b->set, NULL, &ec, &b->stats);
            if (s == DD_OK) {
                if (!(b->lrs = malloc((size_t)K * sizeof *b->lrs)))
                    s = dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
                else
                    memcpy(b->lrs, b->set->lrs, (size_t)K * sizeof *b->lrs);
            }
            if (s == DD_OK)
                dd_info("evaluate: %s %s %.4f ± %.4f", b->name, out->metric, b->stats.mean,
                        b->stats.std);
            if (s != DD_OK) dd_error_prefix("evaluate: baseline '%s'", b->name);
        }
    }
    // Reference: the same networks trained on the whole real training set.
    const int saved_threads = dd_model_threads(m);
    if (ec.nthreads > 0) dd_model_set_threads(m, ec.nthreads);
    if (s == DD_OK && es->full_training_epochs > 0) {
        const size_t P = dd_model_param_count(m);
        const int nets = (ec.init_mode == DD_INIT_FIXED || ec.init_mode == DD_INIT_PRETRAINED_FIXED)
                             ? 1
                             : out->nets;
        float *theta = dd_alloc_floats(P);
        double *ms = calloc((size_t)obj->n_metrics + 1, sizeof *ms);
        double sum[DD_EVAL_MAX_METRICS] = {0}, sum2[DD_EVAL_MAX_METRICS] = {0}, lsum = 0;
        const int nm = obj->n_metrics < DD_EVAL_MAX_METRICS ? obj->n_metrics : DD_EVAL_MAX_METRICS;
        if (!theta || !ms) s = dd_error_set(DD_ERR_NOMEM, "evaluate: out of memory");
        for (int n = 0; s == DD_OK && n < nets; n++) {
            if (ec.init_mode == DD_INIT_FIXED)
                s = theta0
                        ? (memcpy(theta, theta0, P * sizeof(float)), DD_OK)
                        : dd_model_init_params(m, theta, ec.init_scheme, (float)ec.init_gain,
                                               dd_engine_init_seed(ec.seed, DD_STREAM_THETA0, 0));
            else if (ec.init_mode == DD_INIT_RANDOM)
                s = dd_model_init_params(
                    m, theta, ec.init_scheme, (float)ec.init_gain,
                    dd_engine_init_seed(ec.seed, DD_STREAM_EVAL_INITS, (uint64_t)n));
            else if (ec.init_mode == DD_INIT_PRETRAINED_FIXED)
                memcpy(theta, theta0 ? theta0 : ec.theta_pool[0], P * sizeof(float));
            else
                memcpy(theta, ec.theta_pool[n], P * sizeof(float));
            dd_sgd_config sc;
            dd_sgd_config_defaults(&sc);
            sc.epochs = es->full_training_epochs;
            sc.lr = es->full_training_lr;
            sc.batch = es->full_training_batch;
            sc.seed = dd_engine_init_seed(ec.seed, DD_STREAM_EVAL_INITS, 0x10000u + (uint64_t)n);
            sc.label = "full training";
            double loss = 0;
            if (s == DD_OK) s = dd_sgd_train(m, theta, train, &sc);
            if (s == DD_OK) s = dd_evaluate_test_all(m, obj, test, theta, ec.test_batch, ms, &loss);
            for (int i = 0; s == DD_OK && i < nm; i++) {
                sum[i] += ms[i];
                sum2[i] += ms[i] * ms[i];
            }
            lsum += loss;
        }
        if (s == DD_OK) {
            dd_eval_stats *r = &out->full_training;
            r->nets = nets;
            r->n_metrics = nm;
            for (int i = 0; i < nm; i++) {
                r->metric_mean[i] = sum[i] / nets;
                double v = sum2[i] / nets - r->metric_mean[i] * r->metric_mean[i];
                r->metric_std[i] = v > 0 ? sqrt(v) : 0.0;
            }
            r->mean = nm > 0 ? r->metric_mean[0] : 0.0;
            r->std = nm > 0 ? r->metric_std[0] : 0.0;
            r->loss = lsum / nets;
            out->has_full_training = 1;
            out->full_training_epochs = es->full_training_epochs;
            dd_info("evaluate: full training (%d epochs) %s %.4f ± %.4f", es->full_training_epochs,
                    out->metric, r->mean, r->std);
        } else {
            dd_error_prefix("evaluate: full training reference");
        }
        dd_free(theta);
        free(ms);
    }
    dd_model_set_threads(m, saved_threads);
#undef TICK
    dd_progress_destroy(bar);
    free(fixed);
    out->seconds = seconds_now() - t0;
    if (s != DD_OK) dd_eval_report_release(out);
    return s;
}
