/* distill — the engine's lifecycle: the configuration checked against the
 * model and data, every buffer allocated once, the initial pixels, labels,
 * step sizes and θ0, and the views tests and the lr search use. */
#include <stdlib.h>
#include <string.h>

#include "distill/limits.h"
#include "distill/tensor.h"
#include "base/comm.h"
#include "base/heap.h"
#include "compute/threads.h"
#include "distill/log.h"
#include "engine/engine_impl.h"
#include "model/model_impl.h"

/* ---- engine lifecycle --------------------------------------------------- */

void dd_engine_destroy(dd_engine *e) {
    if (!e) return;
    float *bufs[] = {e->pixels, e->raw,    e->soft,   e->m_pix,  e->v_pix,    e->m_raw,
                     e->v_raw,  e->m_soft, e->v_soft, e->theta0, e->thetas,   e->g_pix,
                     e->g_raw,  e->g_soft, e->xr,     e->net_gp, e->net_graw, e->net_gsoft};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        dd_free(bufs[i]);
    if (e->has_split) dd_netctx_free(&e->split);
    for (int w = 0; w < e->n_per_net; w++)
        dd_netctx_free(&e->per_net[w]);
    free(e->per_net);
    if (e->w_theta_rand)
        for (int w = 0; w < e->workers; w++)
            dd_free(e->w_theta_rand[w]);
    free(e->w_theta_rand);
    if (e->wmodels)
        for (int w = 1; w < e->workers; w++)
            dd_model_destroy(e->wmodels[w]);
    free(e->wmodels);
    free(e->net_sums);
    free(e->net_status);
    free(e->labels);
    free(e->yr);
    free(e->perm);
    free(e->stats.loss_history);
    free(e->stats.metric_history);
    free(e->stats.lr_history);
    free(e);
    dd_heap_trim(); // the workers' models and buffers are not reused
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
            dd_status st = dd_dataset_gather_range(
                t, pick, 1, e->pixels + ((size_t)s * (size_t)e->M + (size_t)j) * e->D);
            if (st != DD_OK) {
                free(count);
                return st;
            }
        }
    }
    free(count);
    return DD_OK;
}

#define ALLOC_F(field, n)                                                                          \
    do {                                                                                           \
        if (!((field) = dd_alloc_floats(n))) return nomem(e);                                      \
    } while (0)

static dd_status nomem(const dd_engine *e) {
    return dd_error_set(DD_ERR_NOMEM, "engine: out of memory (K=%d steps, %zu parameters)",
                        e->cfg.steps * e->cfg.epochs, dd_model_param_count(e->model));
}

/* Refuses what the engine cannot run, before anything is allocated. */
static dd_status check_config(dd_model *model, const dd_objective_handle *objective,
                              const dd_dataset *train, const dd_distill_config *cfg) {
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
    const size_t D = dd_dataset_image_size(train);
    if (D != dd_model_input_size(model))
        return dd_error_set(DD_ERR_INVALID,
                            "distill: the dataset's images have %zu values, the model expects %zu",
                            D, dd_model_input_size(model));
    if (dd_model_output_dim(model) != train->n_classes)
        return dd_error_set(DD_ERR_INVALID, "distill: the model has %d outputs for %d classes",
                            dd_model_output_dim(model), train->n_classes);
    // The unrolled inner run: each of the S×E steps trains on M images and
    // keeps its θ for the reverse pass. Both are held to limits here, before
    // any buffer is allocated (the factors are range-checked ints, so the
    // products fit in a double exactly enough to compare).
    const double steps = (double)cfg->steps * cfg->epochs;
    const double images = steps * cfg->images_per_class * train->n_classes;
    if (cfg->max_unrolled_images > 0 && images > (double)cfg->max_unrolled_images)
        return dd_error_set(DD_ERR_LIMIT,
                            "distill: steps × epochs × images_per_class × classes = %d × %d × %d × "
                            "%d = %.0f unrolled images exceeds the limit of %lld "
                            "(distill.max_unrolled_images; raise it to run this)",
                            cfg->steps, cfg->epochs, cfg->images_per_class, train->n_classes,
                            images, (long long)cfg->max_unrolled_images);
    const double theta_bytes = (steps + 1) * (double)dd_model_param_count(model) * sizeof(float);
    if (theta_bytes > (double)dd_limits_max_bytes())
        return dd_error_set(DD_ERR_LIMIT,
                            "distill: the %.0f unrolled steps keep %.2f GiB of network parameters, "
                            "above the memory limit of %.2f GiB (dataset.max_bytes; lower "
                            "distill.steps or distill.epochs, or raise the limit)",
                            steps, theta_bytes / (1 << 30),
                            (double)dd_limits_max_bytes() / (1 << 30));
    return DD_OK;
}

/* Every buffer, for the sizes already set in e. */
static dd_status alloc_buffers(dd_engine *e) {
    const dd_distill_config *cfg = &e->cfg;
    const size_t D = e->D;
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
    }
    ALLOC_F(e->xr, (size_t)e->B * D);
    e->ref_logits = DD_OBJECTIVE_HAS(e->obj->ops, outer_loss_ref) && e->obj->ops->outer_loss_ref;
    e->labels = malloc((size_t)e->M * sizeof *e->labels);
    e->yr = malloc((size_t)e->B * sizeof *e->yr);
    e->perm = malloc((size_t)e->train->n * sizeof *e->perm);
    e->hist_cap = cfg->iterations > 0 ? cfg->iterations : 1;
    e->stats.loss_history = calloc((size_t)e->hist_cap, sizeof(double));
    e->stats.metric_history = calloc((size_t)e->hist_cap, sizeof(double));
    e->stats.lr_history = calloc((size_t)e->hist_cap * (size_t)e->K, sizeof(float));
    if (!e->labels || !e->yr || !e->perm || !e->stats.loss_history || !e->stats.metric_history ||
        !e->stats.lr_history)
        return nomem(e);
    return DD_OK;
}

/* One model per worker, and the contexts the init mode runs: every worker
 * on one θ0 (fixed inits, one net per iteration), or one net per worker. */
static dd_status make_workers(dd_engine *e) {
    const dd_distill_config *cfg = &e->cfg;
    const int fixed = cfg->init_mode == DD_INIT_FIXED || cfg->init_mode == DD_INIT_PRETRAINED_FIXED;
    const int nets = fixed ? 1 : cfg->nets_per_iteration;
    if (!fixed && dd_comm_size() > 1 && nets < dd_comm_size())
        dd_warn("distill: %d networks per iteration on %d ranks: %d rank(s) have none to "
                "compute (raise distill.nets_per_iteration to a multiple of the rank count)",
                nets, dd_comm_size(), dd_comm_size() - nets);
    if (nets == 1 && e->B < dd_comm_size())
        return dd_error_set(DD_ERR_INVALID,
                            "distill: batch_real %lld is smaller than the %d ranks that share it",
                            (long long)e->B, dd_comm_size());
    e->workers = dd_threads_resolve(cfg->nthreads);
    if (e->workers > DD_TEAM_MAX_CHUNKS) e->workers = DD_TEAM_MAX_CHUNKS;
    e->wmodels = calloc((size_t)e->workers, sizeof *e->wmodels);
    e->w_theta_rand = calloc((size_t)e->workers, sizeof *e->w_theta_rand);
    if (!e->wmodels || !e->w_theta_rand) return nomem(e);
    e->wmodels[0] = e->model;
    for (int w = 1; w < e->workers; w++)
        DD_TRY(dd_model_clone(e->model, &e->wmodels[w]));
    for (int w = 0; w < e->workers; w++)
        ALLOC_F(e->w_theta_rand[w], e->P);
    if (nets == 1) {
        ALLOC_F(e->thetas, (size_t)(e->K + 1) * e->P);
        DD_TRY(dd_netctx_init(&e->split, e, e->workers, e->wmodels, e->thetas, 1));
        e->has_split = 1;
        return DD_OK;
    }
    const size_t SMD = (size_t)e->S * (size_t)e->M * e->D;
    const size_t SMO = (size_t)e->S * (size_t)e->M * (size_t)e->n_out;
    const int per = e->workers < nets ? e->workers : nets;
    e->per_net = calloc((size_t)per, sizeof *e->per_net);
    e->net_sums = calloc((size_t)nets * 3, sizeof *e->net_sums);
    e->net_status = calloc((size_t)nets, sizeof *e->net_status);
    if (!e->per_net || !e->net_sums || !e->net_status) return nomem(e);
    for (int w = 0; w < per; w++) {
        DD_TRY(dd_netctx_init(&e->per_net[w], e, 1, &e->wmodels[w], NULL, 0));
        e->n_per_net = w + 1;
    }
    if (cfg->learn_pixels) ALLOC_F(e->net_gp, (size_t)nets * SMD);
    if (cfg->learn_lrs) ALLOC_F(e->net_graw, (size_t)nets * (size_t)e->K);
    if (cfg->learn_labels) ALLOC_F(e->net_gsoft, (size_t)nets * SMO);
    // dd_engine_hypergradient's context (tests, baselines) is made when used
    return DD_OK;
}

/* Labels, step sizes, pixels and (fixed or pretrained-fixed init) θ0 at
 * iteration 0. */
static dd_status init_state(dd_engine *e) {
    const dd_distill_config *cfg = &e->cfg;
    for (int64_t j = 0; j < e->M; j++)
        e->labels[j] = (int32_t)(j % e->n_classes);
    if (cfg->init_labels) {
        for (int64_t j = 0; j < e->M; j++) {
            if (cfg->init_labels[j] < 0 || cfg->init_labels[j] >= e->n_classes)
                return dd_error_set(DD_ERR_INVALID,
                                    "distill: init label %d of slot %lld is "
                                    "outside [0, %d)",
                                    (int)cfg->init_labels[j], (long long)j, e->n_classes);
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

    if (cfg->init_pixels) {
        memcpy(e->pixels, cfg->init_pixels, (size_t)e->S * (size_t)e->M * e->D * sizeof(float));
    } else if (cfg->pixel_init == DD_PIXEL_INIT_REAL) {
        DD_TRY(init_pixels_real(e));
    } else {
        dd_rng r = dd_rng_make(cfg->seed, DD_STREAM_PIXELS);
        dd_rng_normal(&r, e->pixels, (size_t)e->S * (size_t)e->M * e->D, 0.f, 1.f);
    }
    if (cfg->init_mode == DD_INIT_FIXED) {
        ALLOC_F(e->theta0, e->P);
        DD_TRY(dd_model_init_params(e->model, e->theta0, cfg->init_scheme, (float)cfg->init_gain,
                                    dd_engine_init_seed(cfg->seed, DD_STREAM_THETA0, 0)));
    }
    if (cfg->init_mode == DD_INIT_PRETRAINED_FIXED) {
        ALLOC_F(e->theta0, e->P);
        memcpy(e->theta0, cfg->theta_pool[0], e->P * sizeof(float));
    }
    return DD_OK;
}

#undef ALLOC_F

dd_status dd_engine_create(dd_model *model, const dd_objective_handle *objective,
                           const dd_dataset *train, const dd_distill_config *cfg, dd_engine **out) {
    *out = NULL;
    DD_TRY(check_config(model, objective, train, cfg));
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
    e->D = dd_dataset_image_size(train);
    e->P = dd_model_param_count(model);
    e->B = cfg->batch_real < train->n ? cfg->batch_real : train->n;
    e->perm_epoch = -1;
    dd_status s = alloc_buffers(e);
    if (s == DD_OK) s = make_workers(e);
    if (s == DD_OK) s = init_state(e);
    if (s != DD_OK) {
        dd_engine_destroy(e);
        return s;
    }
    *out = e;
    return DD_OK;
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
