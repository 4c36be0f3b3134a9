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

#include "engine/checkpoint.h"
#include "model/model_impl.h"
#include "distill/log.h"
#include "distill/tensor.h"

static size_t image_floats(const dd_dataset *d) {
    return (size_t)d->channels * (size_t)d->height * (size_t)d->width;
}

/* Distilled batches up to this many images run on one thread. */
#define DD_ENGINE_SMALL_BATCH 128

struct dd_engine {
    dd_model *model;
    const dd_objective_handle *obj;
    const dd_dataset *train;
    dd_distill_config cfg;

    int S, E, K, n_out, n_classes;
    int64_t M;
    size_t D, P;

    float *pixels, *raw, *soft; // learned
    int32_t *labels;
    float *m_pix, *v_pix, *m_raw, *v_raw, *m_soft, *v_soft; // Adam moments
    int64_t adam_t;

    float *theta0; // fixed init θ0
    float *thetas; // (K + 1) × P
    float *a, *hv, *grad, *mixed_x, *mixed_y;
    float *g_pix, *g_raw, *g_soft;
    float *theta_rand; // θ0 sample for random init

    int64_t B;
    float *xr, *logits, *dlogits;
    float *logits0; /* the real batch's logits at θ0, for outer_loss_ref (else NULL) */
    int32_t *yr;
    int64_t *perm;
    int64_t perm_epoch;
    double *num, *den;

    int64_t iter;
    dd_distill_stats stats;
    int64_t hist_cap;
};

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

static float sigmoidf_(float x) {
    return 1.f / (1.f + expf(-x));
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

/* ---- objective handle --------------------------------------------------- */

dd_status dd_objective_handle_init(dd_objective_handle *h, const dd_component *objective,
                                   const dd_options *opts, const dd_dataset *train) {
    memset(h, 0, sizeof *h);
    if (!objective || objective->kind != DD_COMPONENT_OBJECTIVE || !objective->ops)
        return dd_error_set(DD_ERR_INVALID, "engine: not an objective component");
    const dd_objective_ops *ops = objective->ops;
    if (!ops->create || !ops->outer_loss || !ops->metrics || !ops->metric_names)
        return dd_error_set(DD_ERR_PLUGIN, "objective '%s': missing a required member",
                            objective->name);
    dd_objective_info info = {sizeof info, train->n_classes,
                              (const char *const *)train->class_names};
    void *state = NULL;
    dd_status s = ops->create(opts, &info, &state);
    if (s != DD_OK) {
        dd_error_prefix("objective '%s'", objective->name);
        return s;
    }
    h->ops = ops;
    h->state = state;
    while (ops->metric_names[h->n_metrics])
        h->n_metrics++;
    return DD_OK;
}

void dd_objective_handle_release(dd_objective_handle *h) {
    if (!h) return;
    if (h->ops && h->ops->destroy) h->ops->destroy(h->state);
    memset(h, 0, sizeof *h);
}

/* ---- configuration ------------------------------------------------------ */

static const char *const init_mode_names[] = {"fixed", "random", "pretrained-fixed",
                                              "pretrained-random"};

dd_status dd_init_mode_parse(const char *s, dd_init_mode *out) {
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, init_mode_names[i]) == 0) {
            *out = (dd_init_mode)i;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_INVALID,
                        "unknown init_mode '%s' (expected fixed|random|pretrained-fixed|"
                        "pretrained-random)",
                        s ? s : "(null)");
}

const char *dd_init_mode_str(dd_init_mode m) {
    return (unsigned)m < 4 ? init_mode_names[m] : "?";
}

void dd_distill_config_defaults(dd_distill_config *c) {
    memset(c, 0, sizeof *c);
    c->steps = 10;
    c->epochs = 3;
    c->images_per_class = 1;
    c->iterations = 2000;
    c->batch_real = 1024;
    c->lr_init = 0.02;
    c->init_mode = DD_INIT_FIXED;
    c->nets_per_iteration = 1;
    c->init_scheme = "xavier";
    c->init_gain = 1.0;
    c->seed = 1;
    c->pixel_init = DD_PIXEL_INIT_NORMAL;
    c->learn_pixels = 1;
    c->learn_labels = 0;
    c->learn_lrs = 1;
    c->opt_lr = 0.01;
    c->beta1 = 0.5;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->decay_every = 0;
    c->decay = 0.5;
    c->checkpoint_every = 0;
    c->progress = 0;
}

/* ---- distilled sets ----------------------------------------------------- */

size_t dd_distilled_image_size(const dd_distilled *d) {
    return (size_t)d->channels * (size_t)d->height * (size_t)d->width;
}

dd_status dd_distilled_create(int steps, int epochs, int images_per_class, int n_classes,
                              int channels, int height, int width, float lr, dd_distilled **out) {
    *out = NULL;
    if (steps < 1 || epochs < 1 || images_per_class < 1 || n_classes < 1 || channels < 1 ||
        channels > DD_MAX_CHANNELS || height < 1 || width < 1)
        return dd_error_set(DD_ERR_INVALID, "distilled set: invalid shape");
    dd_distilled *d = calloc(1, sizeof *d);
    if (!d) return dd_error_set(DD_ERR_NOMEM, "distilled set: out of memory");
    d->steps = steps;
    d->epochs = epochs;
    d->images_per_class = images_per_class;
    d->n_classes = n_classes;
    d->channels = channels;
    d->height = height;
    d->width = width;
    d->per_step = (int64_t)images_per_class * n_classes;
    d->n_outputs = n_classes;
    for (int c = 0; c < DD_MAX_CHANNELS; c++)
        d->std[c] = 1.f;
    d->images = dd_alloc_floats((size_t)steps * (size_t)d->per_step * dd_distilled_image_size(d));
    d->labels = malloc((size_t)d->per_step * sizeof *d->labels);
    d->lrs = dd_alloc_floats((size_t)steps * (size_t)epochs);
    if (!d->images || !d->labels || !d->lrs) {
        dd_distilled_destroy(d);
        return dd_error_set(DD_ERR_NOMEM, "distilled set: out of memory");
    }
    for (int64_t j = 0; j < d->per_step; j++)
        d->labels[j] = (int32_t)(j % n_classes);
    for (int k = 0; k < steps * epochs; k++)
        d->lrs[k] = lr;
    *out = d;
    return DD_OK;
}

void dd_distilled_destroy(dd_distilled *d) {
    if (!d) return;
    dd_free(d->images);
    free(d->labels);
    dd_free(d->soft);
    dd_free(d->lrs);
    free(d);
}

dd_status dd_distilled_clone(const dd_distilled *d, dd_distilled **out) {
    DD_TRY(dd_distilled_create(d->steps, d->epochs, d->images_per_class, d->n_classes, d->channels,
                               d->height, d->width, 0.f, out));
    dd_distilled *c = *out;
    size_t n_img = (size_t)d->steps * (size_t)d->per_step * dd_distilled_image_size(d);
    memcpy(c->images, d->images, n_img * sizeof(float));
    memcpy(c->labels, d->labels, (size_t)d->per_step * sizeof(int32_t));
    memcpy(c->lrs, d->lrs, (size_t)d->steps * (size_t)d->epochs * sizeof(float));
    memcpy(c->mean, d->mean, sizeof c->mean);
    memcpy(c->std, d->std, sizeof c->std);
    c->n_outputs = d->n_outputs;
    if (d->soft) {
        size_t n = (size_t)d->steps * (size_t)d->per_step * (size_t)d->n_outputs;
        c->soft = dd_alloc_floats(n);
        if (!c->soft) {
            dd_distilled_destroy(c);
            *out = NULL;
            return dd_error_set(DD_ERR_NOMEM, "distilled set: out of memory");
        }
        memcpy(c->soft, d->soft, n * sizeof(float));
    }
    return DD_OK;
}

/* ---- engine lifecycle --------------------------------------------------- */

void dd_engine_destroy(dd_engine *e) {
    if (!e) return;
    float *bufs[] = {e->pixels, e->raw,        e->soft,    e->m_pix,   e->v_pix,   e->m_raw,
                     e->v_raw,  e->m_soft,     e->v_soft,  e->theta0,  e->thetas,  e->a,
                     e->hv,     e->grad,       e->mixed_x, e->mixed_y, e->g_pix,   e->g_raw,
                     e->g_soft, e->theta_rand, e->xr,      e->logits,  e->dlogits, e->logits0};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        dd_free(bufs[i]);
    free(e->labels);
    free(e->yr);
    free(e->perm);
    free(e->num);
    free(e->den);
    free(e->stats.loss_history);
    free(e->stats.metric_history);
    free(e);
}

static dd_status init_pixels_real(dd_engine *e) {
    const dd_dataset *t = e->train;
    // Per-class lists of training images, then one random member per slot.
    int64_t *count = calloc((size_t)e->n_classes, sizeof *count);
    if (!count) return dd_error_set(DD_ERR_NOMEM, "engine: out of memory");
    for (int64_t i = 0; i < t->n; i++)
        if (t->labels[i] >= 0 && t->labels[i] < e->n_classes) count[t->labels[i]]++;
    for (int c = 0; c < e->n_classes; c++) {
        if (count[c] == 0) {
            free(count);
            return dd_error_set(DD_ERR_INVALID,
                                "engine: pixel_init real needs training images of every class; "
                                "class %d has none",
                                c);
        }
    }
    dd_rng r = dd_rng_make(e->cfg.seed, DD_STREAM_PIXELS);
    for (int s = 0; s < e->S; s++) {
        for (int64_t j = 0; j < e->M; j++) {
            int c = e->labels[j];
            int64_t want = (int64_t)dd_rng_below(&r, (uint64_t)count[c]), seen = 0, pick = 0;
            for (int64_t i = 0; i < t->n; i++) {
                if (t->labels[i] == c && seen++ == want) {
                    pick = i;
                    break;
                }
            }
            memcpy(e->pixels + ((size_t)s * (size_t)e->M + (size_t)j) * e->D,
                   t->images + (size_t)pick * e->D, e->D * sizeof(float));
        }
    }
    free(count);
    return DD_OK;
}

#define ALLOC_F(field, n)                                                                          \
    do {                                                                                           \
        if (!((field) = dd_alloc_floats(n))) goto nomem;                                           \
    } while (0)

dd_status dd_engine_create(dd_model *model, const dd_objective_handle *objective,
                           const dd_dataset *train, const dd_distill_config *cfg, dd_engine **out) {
    *out = NULL;
    if (cfg->steps < 1 || cfg->epochs < 1 || cfg->images_per_class < 1 || cfg->iterations < 0 ||
        cfg->batch_real < 1 || !(cfg->lr_init > 0) || cfg->nets_per_iteration < 1)
        return dd_error_set(DD_ERR_INVALID, "distill: steps, epochs, images_per_class, batch_real, "
                                            "nets_per_iteration must be >= 1 and lr_init > 0");
    const int pretrained =
        cfg->init_mode == DD_INIT_PRETRAINED_FIXED || cfg->init_mode == DD_INIT_PRETRAINED_RANDOM;
    if (pretrained && (!cfg->theta_pool || cfg->theta_pool_size < 1))
        return dd_error_set(DD_ERR_INVALID,
                            "distill: init_mode %s needs a pool of pretrained networks (add a "
                            "'pretrain' section, with pretrain.nets > pretrain.holdout)",
                            dd_init_mode_str(cfg->init_mode));
    if (!pretrained && (objective->ops->flags & DD_OBJECTIVE_NEEDS_PRETRAINED))
        return dd_error_set(DD_ERR_INVALID,
                            "distill: this objective works on pretrained networks; set "
                            "distill.init_mode to pretrained-random or pretrained-fixed (got %s)",
                            dd_init_mode_str(cfg->init_mode));
    if (train->n < 1) return dd_error_set(DD_ERR_INVALID, "distill: empty training set");
    size_t D = image_floats(train);
    if (D != dd_model_input_size(model))
        return dd_error_set(DD_ERR_INVALID,
                            "distill: the dataset's images have %zu values, the model expects %zu",
                            D, dd_model_input_size(model));
    if (dd_model_output_dim(model) != train->n_classes)
        return dd_error_set(DD_ERR_INVALID, "distill: the model has %d outputs for %d classes",
                            dd_model_output_dim(model), train->n_classes);

    dd_engine *e = calloc(1, sizeof *e);
    if (!e) return dd_error_set(DD_ERR_NOMEM, "engine: out of memory");
    e->model = model;
    e->obj = objective;
    e->train = train;
    e->cfg = *cfg;
    if (!e->cfg.init_scheme) e->cfg.init_scheme = "xavier";
    e->S = cfg->steps;
    e->E = cfg->epochs;
    e->K = e->S * e->E;
    e->n_classes = train->n_classes;
    e->n_out = dd_model_output_dim(model);
    e->M = (int64_t)cfg->images_per_class * e->n_classes;
    e->D = D;
    e->P = dd_model_param_count(model);
    e->B = cfg->batch_real < train->n ? cfg->batch_real : train->n;
    e->perm_epoch = -1;

    const size_t SMD = (size_t)e->S * (size_t)e->M * D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    ALLOC_F(e->pixels, SMD);
    ALLOC_F(e->m_pix, SMD);
    ALLOC_F(e->v_pix, SMD);
    ALLOC_F(e->g_pix, SMD);
    ALLOC_F(e->raw, (size_t)e->K);
    ALLOC_F(e->m_raw, (size_t)e->K);
    ALLOC_F(e->v_raw, (size_t)e->K);
    ALLOC_F(e->g_raw, (size_t)e->K);
    if (cfg->learn_labels) {
        ALLOC_F(e->soft, SMO);
        ALLOC_F(e->m_soft, SMO);
        ALLOC_F(e->v_soft, SMO);
        ALLOC_F(e->g_soft, SMO);
        ALLOC_F(e->mixed_y, (size_t)e->M * (size_t)e->n_out);
    }
    ALLOC_F(e->thetas, (size_t)(e->K + 1) * e->P);
    ALLOC_F(e->a, e->P);
    ALLOC_F(e->hv, e->P);
    ALLOC_F(e->grad, e->P);
    ALLOC_F(e->theta_rand, e->P);
    ALLOC_F(e->mixed_x, (size_t)e->M * D);
    ALLOC_F(e->xr, (size_t)e->B * D);
    ALLOC_F(e->logits, (size_t)e->B * (size_t)e->n_out);
    ALLOC_F(e->dlogits, (size_t)e->B * (size_t)e->n_out);
    if (DD_OBJECTIVE_HAS(objective->ops, outer_loss_ref) && objective->ops->outer_loss_ref)
        ALLOC_F(e->logits0, (size_t)e->B * (size_t)e->n_out);
    e->labels = malloc((size_t)e->M * sizeof *e->labels);
    e->yr = malloc((size_t)e->B * sizeof *e->yr);
    e->perm = malloc((size_t)train->n * sizeof *e->perm);
    e->num = calloc((size_t)objective->n_metrics + 1, sizeof *e->num);
    e->den = calloc((size_t)objective->n_metrics + 1, sizeof *e->den);
    e->hist_cap = cfg->iterations > 0 ? cfg->iterations : 1;
    e->stats.loss_history = calloc((size_t)e->hist_cap, sizeof(double));
    e->stats.metric_history = calloc((size_t)e->hist_cap, sizeof(double));
    if (!e->labels || !e->yr || !e->perm || !e->num || !e->den || !e->stats.loss_history ||
        !e->stats.metric_history)
        goto nomem;

    for (int64_t j = 0; j < e->M; j++)
        e->labels[j] = (int32_t)(j % e->n_classes);
    if (cfg->init_labels) {
        for (int64_t j = 0; j < e->M; j++) {
            if (cfg->init_labels[j] < 0 || cfg->init_labels[j] >= e->n_classes) {
                dd_engine_destroy(e);
                return dd_error_set(DD_ERR_INVALID,
                                    "distill: init label %d of slot %lld is "
                                    "outside [0, %d)",
                                    (int)cfg->init_labels[j], (long long)j, e->n_classes);
            }
            e->labels[j] = cfg->init_labels[j];
        }
    }
    if (cfg->learn_labels) {
        // One-hot targets to start from (the hard labels).
        for (int s = 0; s < e->S; s++)
            for (int64_t j = 0; j < e->M; j++)
                e->soft[((size_t)s * (size_t)e->M + (size_t)j) * (size_t)e->n_out +
                        (size_t)e->labels[j]] = 1.f;
    }
    float raw0 = dd_lr_to_raw((float)cfg->lr_init);
    for (int k = 0; k < e->K; k++)
        e->raw[k] = raw0;

    dd_status s = DD_OK;
    if (cfg->init_pixels) {
        memcpy(e->pixels, cfg->init_pixels, SMD * sizeof(float));
    } else if (cfg->pixel_init == DD_PIXEL_INIT_REAL) {
        s = init_pixels_real(e);
    } else {
        dd_rng r = dd_rng_make(cfg->seed, DD_STREAM_PIXELS);
        dd_rng_normal(&r, e->pixels, SMD, 0.f, 1.f);
    }
    if (s == DD_OK && cfg->init_mode == DD_INIT_FIXED) {
        if (!(e->theta0 = dd_alloc_floats(e->P))) goto nomem;
        s = dd_model_init_params(model, e->theta0, e->cfg.init_scheme, (float)cfg->init_gain,
                                 dd_engine_init_seed(cfg->seed, DD_STREAM_THETA0, 0));
    }
    if (s == DD_OK && cfg->init_mode == DD_INIT_PRETRAINED_FIXED) {
        if (!(e->theta0 = dd_alloc_floats(e->P))) goto nomem;
        memcpy(e->theta0, cfg->theta_pool[0], e->P * sizeof(float));
    }
    if (s != DD_OK) {
        dd_engine_destroy(e);
        return s;
    }
    *out = e;
    return DD_OK;
nomem:
    dd_engine_destroy(e);
    return dd_error_set(DD_ERR_NOMEM, "engine: out of memory (K=%d steps, %zu parameters)",
                        cfg->steps * cfg->epochs, dd_model_param_count(model));
}

/* ---- accessors ---------------------------------------------------------- */

float *dd_engine_pixels(dd_engine *e) {
    return e->pixels;
}

float *dd_engine_raw_lrs(dd_engine *e) {
    return e->raw;
}

float *dd_engine_soft_labels(dd_engine *e) {
    return e->soft;
}

const float *dd_engine_theta0(const dd_engine *e) {
    return e->theta0;
}

const dd_distill_stats *dd_engine_stats(const dd_engine *e) {
    return &e->stats;
}

dd_status dd_engine_export(const dd_engine *e, dd_distilled **out) {
    const dd_dataset *t = e->train;
    DD_TRY(dd_distilled_create(e->S, e->E, e->cfg.images_per_class, e->n_classes, t->channels,
                               t->height, t->width, 0.f, out));
    dd_distilled *d = *out;
    memcpy(d->images, e->pixels, (size_t)e->S * (size_t)e->M * e->D * sizeof(float));
    memcpy(d->labels, e->labels, (size_t)e->M * sizeof(int32_t));
    for (int k = 0; k < e->K; k++)
        d->lrs[k] = dd_lr_from_raw(e->raw[k]);
    memcpy(d->mean, t->mean, sizeof d->mean);
    memcpy(d->std, t->std, sizeof d->std);
    d->n_outputs = e->n_out;
    if (e->soft) {
        size_t n = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
        if (!(d->soft = dd_alloc_floats(n))) {
            dd_distilled_destroy(d);
            *out = NULL;
            return dd_error_set(DD_ERR_NOMEM, "engine: out of memory");
        }
        memcpy(d->soft, e->soft, n * sizeof(float));
    }
    return DD_OK;
}

/* ---- the unrolled inner training and its reverse pass ------------------- */

static dd_labels step_labels(const dd_engine *e, int s) {
    dd_labels y = {NULL, NULL};
    if (e->soft)
        y.soft = e->soft + (size_t)s * (size_t)e->M * (size_t)e->n_out;
    else
        y.hard = e->labels;
    return y;
}

static const float *step_pixels(const dd_engine *e, int s) {
    return e->pixels + (size_t)s * (size_t)e->M * e->D;
}

/* θ_{k+1} = θ_k − η_k g_k for k = 0..K−1, storing every θ_k in e->thetas. */
static dd_status unroll(dd_engine *e, const float *theta0) {
    const size_t P = e->P;
    memcpy(e->thetas, theta0, P * sizeof(float));
    for (int k = 0; k < e->K; k++) {
        const int s = k % e->S;
        const float *th = e->thetas + (size_t)k * P;
        float *next = e->thetas + (size_t)(k + 1) * P;
        double inner;
        DD_TRY(dd_model_loss_grad(e->model, th, step_pixels(e, s), e->M, step_labels(e, s), &inner,
                                  e->grad, NULL, NULL));
        const float lr = dd_lr_from_raw(e->raw[k]);
        for (size_t i = 0; i < P; i++)
            next[i] = th[i] - lr * e->grad[i];
    }
    return DD_OK;
}

/* Outer loss at θ_K on a real batch; with want_grad, a = ∇_θ L. */
static dd_status outer(dd_engine *e, const float *x, const int32_t *y, int64_t batch, double *loss,
                       double *metric_num, double *metric_den, int want_grad) {
    const float *thK = e->thetas + (size_t)e->K * e->P;
    const dd_objective_ops *ops = e->obj->ops;
    dd_status s;
    if (e->logits0) {
        // θ0 first: the backward below reuses the activations of the last forward.
        DD_TRY(dd_model_forward(e->model, e->thetas, x, batch, e->logits0));
        DD_TRY(dd_model_forward(e->model, thK, x, batch, e->logits));
        s = ops->outer_loss_ref(e->obj->state, e->logits, e->logits0, y, batch, e->n_out, loss,
                                e->dlogits);
    } else {
        DD_TRY(dd_model_forward(e->model, thK, x, batch, e->logits));
        s = ops->outer_loss(e->obj->state, e->logits, y, batch, e->n_out, loss, e->dlogits);
    }
    if (s != DD_OK) {
        dd_error_prefix("objective outer_loss");
        return s;
    }
    if (metric_num) {
        memset(e->num, 0, (size_t)e->obj->n_metrics * sizeof(double));
        memset(e->den, 0, (size_t)e->obj->n_metrics * sizeof(double));
        s = ops->metrics(e->obj->state, e->logits, y, batch, e->n_out, e->num, e->den);
        if (s != DD_OK) {
            dd_error_prefix("objective metrics");
            return s;
        }
        *metric_num = e->obj->n_metrics > 0 ? e->num[0] : 0.0;
        *metric_den = e->obj->n_metrics > 0 ? e->den[0] : 0.0;
    }
    // reuses the activations of the dd_model_forward above (nothing ran in between)
    if (want_grad) DD_TRY(dd_model_backward(e->model, thK, batch, e->dlogits, e->a, NULL));
    return DD_OK;
}

/* Adds the hypergradient for one θ0 into gp / graw / gsoft (each optional). */
static dd_status reverse_pass(dd_engine *e, float *gp, float *graw, float *gsoft);

static dd_status hypergrad_accum(dd_engine *e, const float *theta0, const float *x,
                                 const int32_t *y, int64_t batch, double *loss, double *mnum,
                                 double *mden, float *gp, float *graw, float *gsoft) {
    // The distilled-batch passes run on one thread: their ops are too small
    // to gain from a second one, and each OpenMP barrier can stall for a whole
    // scheduler slice when the machine is busy. The real batch uses them all.
    // The model is borrowed: its own thread setting is restored on return.
    const int saved = dd_model_threads(e->model);
    const int nthr = e->cfg.nthreads > 0 ? e->cfg.nthreads : saved;
    const int small = e->M <= DD_ENGINE_SMALL_BATCH ? 1 : nthr;
    double t0 = now_seconds();
    dd_model_set_threads(e->model, small);
    dd_status st = unroll(e, theta0);
    double t1 = now_seconds(), t2 = t1;
    dd_model_set_threads(e->model, nthr);
    if (st == DD_OK) st = outer(e, x, y, batch, loss, mnum, mden, 1);
    if (st == DD_OK) {
        t2 = now_seconds();
        e->stats.t_unroll += t1 - t0;
        e->stats.t_outer += t2 - t1;
    }
    // A non-finite loss: the caller reports it with context.
    if (st == DD_OK && isfinite(*loss)) {
        dd_model_set_threads(e->model, small);
        st = reverse_pass(e, gp, graw, gsoft);
        e->stats.t_reverse += now_seconds() - t2;
    }
    dd_model_set_threads(e->model, saved);
    return st;
}

/* a_K in e->a → accumulates ∂L/∂pixels, ∂L/∂raw, ∂L/∂labels (each optional). */
static dd_status reverse_pass(dd_engine *e, float *gp, float *graw, float *gsoft) {
    const size_t P = e->P;
    const size_t MD = (size_t)e->M * e->D, MO = (size_t)e->M * (size_t)e->n_out;
    for (int k = e->K - 1; k >= 0; k--) {
        const int s = k % e->S;
        const float *th = e->thetas + (size_t)k * P;
        const float lr = dd_lr_from_raw(e->raw[k]);
        DD_TRY(dd_model_hvp(e->model, th, step_pixels(e, s), e->M, step_labels(e, s), e->a, e->hv,
                            gp ? e->mixed_x : NULL, (gsoft && e->soft) ? e->mixed_y : NULL, e->grad,
                            NULL));
        if (graw) {
            double dot = 0.0;
            for (size_t i = 0; i < P; i++)
                dot += (double)e->a[i] * (double)e->grad[i];
            // ∂L/∂η_k = −⟨a_{k+1}, g_k⟩, through η = softplus(raw).
            graw[k] += (float)(-dot * (double)sigmoidf_(e->raw[k]));
        }
        if (gp) {
            float *dst = gp + (size_t)s * MD;
            for (size_t i = 0; i < MD; i++)
                dst[i] -= lr * e->mixed_x[i];
        }
        if (gsoft && e->soft) {
            float *dst = gsoft + (size_t)s * MO;
            for (size_t i = 0; i < MO; i++)
                dst[i] -= lr * e->mixed_y[i];
        }
        for (size_t i = 0; i < P; i++)
            e->a[i] -= lr * e->hv[i];
    }
    return DD_OK;
}

dd_status dd_engine_hypergradient(dd_engine *e, const float *theta0, const float *x_real,
                                  const int32_t *y_real, int64_t batch, double *loss,
                                  double *metric, float *g_pixels, float *g_raw_lrs,
                                  float *g_labels) {
    if (batch > e->B)
        return dd_error_set(DD_ERR_INVALID, "engine: real batch %lld exceeds batch_real %lld",
                            (long long)batch, (long long)e->B);
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    if (g_pixels) memset(g_pixels, 0, SMD * sizeof(float));
    if (g_raw_lrs) memset(g_raw_lrs, 0, (size_t)e->K * sizeof(float));
    if (g_labels && e->soft) memset(g_labels, 0, SMO * sizeof(float));
    double l = 0, num = 0, den = 0;
    DD_TRY(hypergrad_accum(e, theta0, x_real, y_real, batch, &l, &num, &den, g_pixels, g_raw_lrs,
                           g_labels));
    if (loss) *loss = l;
    if (metric) *metric = den > 0 ? num / den : 0.0;
    return DD_OK;
}

dd_status dd_engine_unrolled_loss(dd_engine *e, const float *theta0, const float *x_real,
                                  const int32_t *y_real, int64_t batch, double *loss,
                                  float *theta_out) {
    if (batch > e->B)
        return dd_error_set(DD_ERR_INVALID, "engine: real batch %lld exceeds batch_real %lld",
                            (long long)batch, (long long)e->B);
    DD_TRY(unroll(e, theta0));
    DD_TRY(outer(e, x_real, y_real, batch, loss, NULL, NULL, 0));
    if (theta_out) memcpy(theta_out, e->thetas + (size_t)e->K * e->P, e->P * sizeof(float));
    return DD_OK;
}

/* ---- outer iterations --------------------------------------------------- */

/* Real batch of iteration `it`: epochs of the real data are fixed
 * permutations (a pure function of seed and epoch), so any iteration's batch
 * is known without replaying the run — resuming needs only the counter. */
static void sample_real(dd_engine *e, int64_t it) {
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
    for (int64_t b = 0; b < e->B; b++) {
        int64_t i = e->perm[pos * e->B + b];
        memcpy(e->xr + (size_t)b * e->D, t->images + (size_t)i * e->D, e->D * sizeof(float));
        e->yr[b] = t->labels[i];
    }
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

double dd_engine_current_lr(const dd_engine *e);
double dd_engine_current_lr(const dd_engine *e) {
    double lr = e->cfg.opt_lr;
    if (e->cfg.decay_every > 0) lr *= pow(e->cfg.decay, (double)(e->iter / e->cfg.decay_every));
    return lr;
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

    sample_real(e, it);
    const int nets = (c->init_mode == DD_INIT_FIXED || c->init_mode == DD_INIT_PRETRAINED_FIXED)
                         ? 1
                         : c->nets_per_iteration;
    double loss_sum = 0, num_sum = 0, den_sum = 0;
    for (int n = 0; n < nets; n++) {
        const float *th0 = e->theta0;
        if (c->init_mode == DD_INIT_RANDOM) {
            uint64_t sd =
                dd_engine_init_seed(c->seed, DD_STREAM_TRAIN_INITS, (uint64_t)(it * nets + n));
            DD_TRY(dd_model_init_params(e->model, e->theta_rand, c->init_scheme,
                                        (float)c->init_gain, sd));
            th0 = e->theta_rand;
        } else if (c->init_mode == DD_INIT_PRETRAINED_RANDOM) {
            dd_rng pr = dd_rng_make(c->seed, DD_STREAM_POOL);
            pr.counter = (uint64_t)(it * nets + n);
            th0 = c->theta_pool[dd_rng_below(&pr, (uint64_t)c->theta_pool_size)];
        }
        double loss = 0, num = 0, den = 0;
        dd_status hs =
            hypergrad_accum(e, th0, e->xr, e->yr, e->B, &loss, &num, &den, gp, graw, gsoft);
        if (hs == DD_ERR_NUMERIC) {
            dd_error_prefix("distill: iteration %lld stopped without saving this state (the last "
                            "checkpoint on disk is the last good one; lower distill.lr_init or "
                            "distill.optimizer.lr)",
                            (long long)it + 1);
            return hs;
        }
        if (hs != DD_OK) return hs;
        if (!isfinite(loss))
            return dd_error_set(DD_ERR_NUMERIC,
                                "distill: the outer loss became %s at iteration %lld; stopped "
                                "without saving this state (the last checkpoint on disk is the "
                                "last good one). Lower distill.lr_init or distill.optimizer.lr",
                                isnan(loss) ? "NaN" : "infinite", (long long)it + 1);
        loss_sum += loss;
        num_sum += num;
        den_sum += den;
    }
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

    const double lr = dd_engine_current_lr(e);
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

    if (it < e->hist_cap) {
        e->stats.loss_history[it] = loss_sum / nets;
        e->stats.metric_history[it] = den_sum > 0 ? num_sum / den_sum : 0.0;
    }
    e->stats.last_loss = loss_sum / nets;
    e->stats.last_metric = den_sum > 0 ? num_sum / den_sum : 0.0;
    e->iter++;
    e->stats.iterations = e->iter;
    return DD_OK;
}

/* ---- checkpoints -------------------------------------------------------- */

static void config_signature(const dd_engine *e, int64_t sig[10]) {
    sig[0] = e->S;
    sig[1] = e->E;
    sig[2] = e->M;
    sig[3] = (int64_t)e->D;
    sig[4] = (int64_t)e->P;
    sig[5] = e->n_out;
    sig[6] = e->cfg.init_mode;
    sig[7] = e->soft != NULL;
    sig[8] = (int64_t)e->cfg.seed;
    sig[9] = e->B;
}

dd_status dd_engine_save(const dd_engine *e, const char *path) {
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D * sizeof(float);
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out * sizeof(float);
    const size_t KB = (size_t)e->K * sizeof(float);
    const int64_t hist = e->iter < e->hist_cap ? e->iter : e->hist_cap;
    int64_t sig[10], counters[3] = {e->iter, e->adam_t, e->stats.timed_iterations};
    config_signature(e, sig);
    double seconds = e->stats.seconds;
    dd_ckpt_writer *w;
    DD_TRY(dd_ckpt_writer_create(&w));
    dd_status s = DD_OK;
#define ADD(tag, p, n)                                                                             \
    if (s == DD_OK) s = dd_ckpt_writer_add(w, tag, p, n)
    ADD("signature", sig, sizeof sig);
    ADD("counters", counters, sizeof counters);
    ADD("seconds", &seconds, sizeof seconds);
    ADD("pixels", e->pixels, SMD);
    ADD("pixels.m", e->m_pix, SMD);
    ADD("pixels.v", e->v_pix, SMD);
    ADD("raw_lrs", e->raw, KB);
    ADD("raw_lrs.m", e->m_raw, KB);
    ADD("raw_lrs.v", e->v_raw, KB);
    if (e->soft) {
        ADD("labels", e->soft, SMO);
        ADD("labels.m", e->m_soft, SMO);
        ADD("labels.v", e->v_soft, SMO);
    }
    if (e->theta0) ADD("theta0", e->theta0, e->P * sizeof(float));
    ADD("loss", e->stats.loss_history, (size_t)hist * sizeof(double));
    ADD("metric", e->stats.metric_history, (size_t)hist * sizeof(double));
#undef ADD
    if (s == DD_OK) s = dd_ckpt_writer_commit(w, path);
    dd_ckpt_writer_destroy(w);
    return s;
}

dd_status dd_engine_load(dd_engine *e, const char *path) {
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D * sizeof(float);
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out * sizeof(float);
    const size_t KB = (size_t)e->K * sizeof(float);
    dd_ckpt *c;
    DD_TRY(dd_ckpt_read(path, &c));
    int64_t sig[10], want[10], counters[3];
    double seconds = 0;
    dd_status s = dd_ckpt_get_exact(c, "signature", sig, sizeof sig);
    config_signature(e, want);
    static const char *const what[10] = {
        "steps",   "epochs",    "images per step", "image size", "parameters",
        "outputs", "init_mode", "learned labels",  "seed",       "batch_real"};
    for (int i = 0; s == DD_OK && i < 10; i++)
        if (sig[i] != want[i])
            s = dd_error_set(DD_ERR_INVALID,
                             "%s: checkpoint was made with %s = %lld, this run has %lld; resume "
                             "with the same configuration",
                             path, what[i], (long long)sig[i], (long long)want[i]);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "counters", counters, sizeof counters);
    if (s == DD_OK && counters[0] > e->hist_cap && e->cfg.iterations > 0)
        s = dd_error_set(DD_ERR_INVALID,
                         "%s: checkpoint is at iteration %lld, beyond distill.iterations = %lld",
                         path, (long long)counters[0], (long long)e->cfg.iterations);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "seconds", &seconds, sizeof seconds);
    // Read into the live buffers only after every check passed above.
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "pixels", e->pixels, SMD);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "pixels.m", e->m_pix, SMD);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "pixels.v", e->v_pix, SMD);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "raw_lrs", e->raw, KB);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "raw_lrs.m", e->m_raw, KB);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "raw_lrs.v", e->v_raw, KB);
    if (s == DD_OK && e->soft) {
        s = dd_ckpt_get_exact(c, "labels", e->soft, SMO);
        if (s == DD_OK) s = dd_ckpt_get_exact(c, "labels.m", e->m_soft, SMO);
        if (s == DD_OK) s = dd_ckpt_get_exact(c, "labels.v", e->v_soft, SMO);
    }
    if (s == DD_OK && e->theta0)
        s = dd_ckpt_get_exact(c, "theta0", e->theta0, e->P * sizeof(float));
    if (s == DD_OK) {
        size_t hb = (size_t)counters[0] * sizeof(double);
        s = dd_ckpt_get_exact(c, "loss", e->stats.loss_history, hb);
        if (s == DD_OK) s = dd_ckpt_get_exact(c, "metric", e->stats.metric_history, hb);
    }
    dd_ckpt_destroy(c);
    if (s != DD_OK) return s;
    e->iter = counters[0];
    e->adam_t = counters[1];
    e->stats.timed_iterations = counters[2];
    e->stats.seconds = seconds;
    e->stats.iterations = e->iter;
    if (e->iter > 0) {
        e->stats.last_loss = e->stats.loss_history[e->iter - 1];
        e->stats.last_metric = e->stats.metric_history[e->iter - 1];
    }
    e->stats.seconds_per_iteration =
        e->stats.timed_iterations > 0 ? e->stats.seconds / (double)e->stats.timed_iterations : 0;
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
    char status[128];
    const char *mname = e->obj->n_metrics > 0 ? e->obj->ops->metric_names[0] : "";
    const int percent = strstr(mname, "acc") != NULL;
    dd_status s = DD_OK;
    while (e->iter < c->iterations) {
        if (c->interrupt && *c->interrupt) {
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
    return s;
}

/* ---- signals ------------------------------------------------------------ */

// A signal handler can only talk to the program through a static flag of
// type sig_atomic_t; this is the one mutable global of the engine.
static volatile sig_atomic_t g_interrupt_flag;
static struct sigaction g_old_int, g_old_term;
static int g_installed;

static void on_signal(int sig) {
    (void)sig;
    g_interrupt_flag = 1;
}

dd_status dd_signals_install(volatile sig_atomic_t **flag) {
    if (g_installed) {
        *flag = &g_interrupt_flag;
        return DD_OK;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_interrupt_flag = 0;
    if (sigaction(SIGINT, &sa, &g_old_int) != 0 || sigaction(SIGTERM, &sa, &g_old_term) != 0)
        return dd_error_set(DD_ERR_INVALID, "cannot install signal handlers");
    g_installed = 1;
    *flag = &g_interrupt_flag;
    return DD_OK;
}

void dd_signals_restore(void) {
    if (!g_installed) return;
    sigaction(SIGINT, &g_old_int, NULL);
    sigaction(SIGTERM, &g_old_term, NULL);
    g_installed = 0;
}

/* ---- options ------------------------------------------------------------ */

dd_status dd_distill_config_from_options(const dd_options *o, dd_distill_config *c) {
    if (!o) return DD_OK;
#define GET_INT(key, field)                                                                        \
    if (dd_options_has(o, key)) c->field = dd_options_int(o, key)
#define GET_FLOAT(key, field)                                                                      \
    if (dd_options_has(o, key)) c->field = dd_options_float(o, key)
    if (dd_options_has(o, "steps")) c->steps = (int)dd_options_int(o, "steps");
    if (dd_options_has(o, "epochs")) c->epochs = (int)dd_options_int(o, "epochs");
    if (dd_options_has(o, "images_per_class"))
        c->images_per_class = (int)dd_options_int(o, "images_per_class");
    if (dd_options_has(o, "nets_per_iteration"))
        c->nets_per_iteration = (int)dd_options_int(o, "nets_per_iteration");
    GET_INT("iterations", iterations);
    GET_INT("batch_real", batch_real);
    GET_FLOAT("lr_init", lr_init);
    GET_FLOAT("optimizer.lr", opt_lr);
    GET_FLOAT("optimizer.lr_lr", opt_lr_lrs);
    GET_FLOAT("optimizer.beta1", beta1);
    GET_FLOAT("optimizer.beta2", beta2);
    GET_INT("optimizer.decay_every", decay_every);
    GET_FLOAT("optimizer.decay", decay);
    GET_INT("checkpoint_every", checkpoint_every);
    GET_INT("log_every", log_every);
#undef GET_INT
#undef GET_FLOAT
    if (dd_options_has(o, "learn_labels")) c->learn_labels = dd_options_bool(o, "learn_labels");
    if (dd_options_has(o, "init_mode")) {
        dd_status s = dd_init_mode_parse(dd_options_string(o, "init_mode"), &c->init_mode);
        if (s != DD_OK) {
            dd_error_prefix("%s", dd_options_where(o, "init_mode"));
            return s;
        }
    }
    if (dd_options_has(o, "image_init")) {
        const char *v = dd_options_string(o, "image_init");
        c->pixel_init = (v && strcmp(v, "real") == 0) ? DD_PIXEL_INIT_REAL : DD_PIXEL_INIT_NORMAL;
    }
    return DD_OK;
}
