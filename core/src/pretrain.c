/* distill — the pretrain stage (pools of trained networks, reused by a hash
 * of their configuration), minibatch SGD, and source-dataset transforms. */
#define _POSIX_C_SOURCE 200809L
#include "pretrain.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/log.h"
#include "distill/tensor.h"
#include "engine.h"
#include "fetch.h"
#include "graph.h"
#include "model_impl.h"
#include "options.h"
#include "pipeline.h"
#include "run.h"

/* ---- SGD ------------------------------------------------------------------ */

void dd_sgd_config_defaults(dd_sgd_config *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 1;
    c->batch = 128;
    c->lr = 0.01;
    c->momentum = 0.9;
    c->cosine = 1;
    c->seed = 1;
}

dd_status dd_sgd_train(dd_model *m, float *theta, const dd_dataset *train, const dd_sgd_config *c) {
    if (c->epochs < 0 || c->batch < 1 || !(c->lr > 0))
        return dd_error_set(DD_ERR_INVALID, "sgd: need epochs >= 0, batch >= 1 and lr > 0");
    if (train->n < 1) return dd_error_set(DD_ERR_INVALID, "sgd: empty training set");
    const size_t P = dd_model_param_count(m), D = dd_dataset_image_size(train);
    if (D != dd_model_input_size(m))
        return dd_error_set(DD_ERR_INVALID, "sgd: images have %zu values, the model expects %zu", D,
                            dd_model_input_size(m));
    const int64_t B = c->batch < train->n ? c->batch : train->n;
    const int64_t per_epoch = (train->n + B - 1) / B, total = per_epoch * c->epochs;
    float *g = dd_alloc_floats(P), *v = dd_alloc_floats(P), *xb = dd_alloc_floats((size_t)B * D);
    int32_t *yb = malloc((size_t)B * sizeof *yb);
    int64_t *perm = malloc((size_t)train->n * sizeof *perm);
    dd_status s = DD_OK;
    if (!g || !v || !xb || !yb || !perm) s = dd_error_set(DD_ERR_NOMEM, "sgd: out of memory");
    const float mu = (float)c->momentum, wd = (float)c->weight_decay;
    int64_t t = 0;
    for (int e = 0; s == DD_OK && e < c->epochs; e++) {
        for (int64_t i = 0; i < train->n; i++)
            perm[i] = i;
        dd_rng r = dd_rng_make(c->seed, (uint64_t)e + 1);
        dd_rng_shuffle(&r, perm, (size_t)train->n);
        double loss_sum = 0.0;
        for (int64_t b = 0; s == DD_OK && b < per_epoch; b++, t++) {
            const int64_t lo = b * B, n = train->n - lo < B ? train->n - lo : B;
            for (int64_t j = 0; j < n; j++) {
                memcpy(xb + (size_t)j * D, train->images + (size_t)perm[lo + j] * D,
                       D * sizeof(float));
                yb[j] = train->labels[perm[lo + j]];
            }
            double loss = 0.0;
            dd_labels y = {yb, NULL};
            s = dd_model_loss_grad(m, theta, xb, n, y, &loss, g, NULL, NULL);
            if (s != DD_OK) break;
            if (!isfinite(loss)) {
                s = dd_error_set(
                    DD_ERR_NUMERIC, "%s: the training loss became %s in epoch %d (lower the lr)",
                    c->label ? c->label : "sgd", isnan(loss) ? "NaN" : "infinite", e + 1);
                break;
            }
            loss_sum += loss;
            const double frac = (double)t / (double)total;
            const float lr =
                (float)(c->cosine ? c->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * frac))
                                  : c->lr);
            for (size_t k = 0; k < P; k++) {
                v[k] = mu * v[k] + g[k] + wd * theta[k];
                theta[k] -= lr * v[k];
            }
        }
        if (s == DD_OK)
            dd_debug("%s: epoch %d/%d mean loss %.4f", c->label ? c->label : "sgd", e + 1,
                     c->epochs, loss_sum / (double)per_epoch);
    }
    dd_free(g);
    dd_free(v);
    dd_free(xb);
    free(yb);
    free(perm);
    return s;
}

dd_status dd_pretrain_accuracy(dd_model *m, const float *theta, const dd_dataset *d,
                               double *accuracy) {
    if (d->n < 1) return dd_error_set(DD_ERR_INVALID, "accuracy: empty dataset");
    const int K = dd_model_output_dim(m);
    const size_t D = dd_dataset_image_size(d);
    const int64_t B = d->n < 500 ? d->n : 500;
    float *z = dd_alloc_floats((size_t)B * (size_t)K);
    if (!z) return dd_error_set(DD_ERR_NOMEM, "accuracy: out of memory");
    int64_t correct = 0;
    dd_status s = DD_OK;
    for (int64_t b = 0; s == DD_OK && b < d->n; b += B) {
        const int64_t n = d->n - b < B ? d->n - b : B;
        s = dd_model_forward(m, theta, d->images + (size_t)b * D, n, z);
        for (int64_t i = 0; s == DD_OK && i < n; i++) {
            correct += dd_argmax(z + (size_t)i * (size_t)K, K) == d->labels[b + i];
        }
    }
    dd_free(z);
    if (s == DD_OK) *accuracy = (double)correct / (double)d->n;
    return s;
}

/* ---- transforms ------------------------------------------------------------ */

static const char *const transform_names[] = {"none", "invert", "rotate90", "hflip"};

dd_status dd_transform_parse(const char *name, dd_transform *out) {
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, transform_names[i]) == 0) {
            *out = (dd_transform)i;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_INVALID,
                        "unknown transform '%s' (expected none|invert|rotate90|hflip)",
                        name ? name : "(null)");
}

static void transform_image(const dd_dataset *d, dd_transform t, const float *in, float *out) {
    const int C = d->channels, H = d->height, W = d->width;
    for (int c = 0; c < C; c++) {
        const float *ic = in + (size_t)c * H * W;
        float *oc = out + (size_t)c * H * W;
        // Normalised value v of pixel p: v = (p − mean) / std; 1 − p maps v to (1 − 2·mean)/std −
        // v.
        const float inv_off = (1.f - 2.f * d->mean[c]) / d->std[c];
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                float v;
                switch (t) {
                case DD_TRANSFORM_ROTATE90:
                    v = ic[(size_t)x * W + (size_t)(W - 1 - y)];
                    break;
                case DD_TRANSFORM_HFLIP:
                    v = ic[(size_t)y * W + (size_t)(W - 1 - x)];
                    break;
                case DD_TRANSFORM_INVERT:
                    v = inv_off - ic[(size_t)y * W + x];
                    break;
                default:
                    v = ic[(size_t)y * W + x];
                    break;
                }
                oc[(size_t)y * W + x] = v;
            }
        }
    }
}

dd_status dd_dataset_transformed(const dd_dataset *src, dd_transform t, const int32_t *classes,
                                 int n_keep, int64_t max_images, uint64_t seed, dd_dataset **out) {
    *out = NULL;
    if (t == DD_TRANSFORM_ROTATE90 && src->height != src->width)
        return dd_error_set(DD_ERR_INVALID, "transform rotate90 needs square images (%s is %d×%d)",
                            src->name ? src->name : "dataset", src->height, src->width);
    for (int i = 0; i < n_keep; i++)
        if (classes[i] < 0 || classes[i] >= src->n_classes)
            return dd_error_set(DD_ERR_INVALID, "pretrain.classes: class %d is outside [0, %d)",
                                (int)classes[i], src->n_classes);
    char *keep = malloc((size_t)(src->n > 0 ? src->n : 1));
    if (!keep) return dd_error_set(DD_ERR_NOMEM, "transform: out of memory");
    int64_t n = 0;
    for (int64_t i = 0; i < src->n; i++) {
        int k = n_keep == 0;
        for (int j = 0; !k && j < n_keep; j++)
            k = src->labels[i] == classes[j];
        keep[i] = (char)k;
        n += k;
    }
    if (max_images > 0 && n > max_images) {
        // A seeded random subset of the kept images, in their original order.
        int64_t *idx = malloc((size_t)n * sizeof *idx);
        if (!idx) {
            free(keep);
            return dd_error_set(DD_ERR_NOMEM, "transform: out of memory");
        }
        int64_t m = 0;
        for (int64_t i = 0; i < src->n; i++)
            if (keep[i]) idx[m++] = i;
        dd_rng r = dd_rng_make(seed, 1);
        dd_rng_shuffle(&r, idx, (size_t)n);
        for (int64_t j = max_images; j < n; j++)
            keep[idx[j]] = 0;
        n = max_images;
        free(idx);
    }
    if (n == 0) {
        free(keep);
        return dd_error_set(DD_ERR_INVALID, "transform: no image of %s is left (pretrain.classes)",
                            src->name ? src->name : "the dataset");
    }
    char name[256];
    snprintf(name, sizeof name, "%s+%s", src->name ? src->name : "dataset", transform_names[t]);
    dd_dataset *d;
    dd_status s =
        dd_dataset_create(name, n, src->channels, src->height, src->width, src->n_classes, &d);
    if (s != DD_OK) {
        free(keep);
        return s;
    }
    memcpy(d->mean, src->mean, sizeof d->mean);
    memcpy(d->std, src->std, sizeof d->std);
    for (int k = 0; s == DD_OK && k < src->n_classes; k++)
        if (src->class_names && src->class_names[k])
            s = dd_dataset_set_class_name(d, k, src->class_names[k]);
    const size_t D = dd_dataset_image_size(src);
    int64_t o = 0;
    for (int64_t i = 0; s == DD_OK && i < src->n; i++) {
        if (!keep[i]) continue;
        transform_image(src, t, src->images + (size_t)i * D, d->images + (size_t)o * D);
        d->labels[o++] = src->labels[i];
    }
    free(keep);
    if (s != DD_OK) {
        dd_dataset_destroy(d);
        return s;
    }
    *out = d;
    return DD_OK;
}

/* ---- head transfer --------------------------------------------------------- */

static int last_param_layer(const dd_graph *g) {
    for (int i = g->n_layers - 1; i >= 0; i--)
        if (g->layers[i].n_weight + g->layers[i].n_bias > 0) return i;
    return -1;
}

dd_status dd_pretrain_transfer(dd_model *src, const float *theta_src, dd_model *dst,
                               const char *scheme, float gain, uint64_t seed, float *theta_dst) {
    const dd_graph *gs = dd_model_graph(src), *gd = dd_model_graph(dst);
    const int ls = last_param_layer(gs), ld = last_param_layer(gd);
    int ok = ls >= 0 && ls == ld && gs->n_layers == gd->n_layers;
    for (int i = 0; ok && i < ls; i++)
        ok = gs->layers[i].kind == gd->layers[i].kind &&
             gs->layers[i].param_off == gd->layers[i].param_off &&
             gs->layers[i].n_weight == gd->layers[i].n_weight &&
             gs->layers[i].n_bias == gd->layers[i].n_bias;
    if (!ok)
        return dd_error_set(DD_ERR_INVALID,
                            "pretrain: the pool's networks and the target network differ before "
                            "their last layer; only the classifier head can be replaced");
    DD_TRY(dd_model_init_params(dst, theta_dst, scheme, gain, seed));
    memcpy(theta_dst, theta_src, gs->layers[ls].param_off * sizeof(float));
    return DD_OK;
}

/* ---- the stage ------------------------------------------------------------- */

typedef struct text_buf {
    char *s;
    size_t len, cap;
    int oom;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = 2 * (b->cap + (size_t)n + 64);
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
}

/* YAML text of every option of `o` except the keys listed in `skip`. */
static void tb_options(text_buf *b, const char *section, const dd_options *o,
                       const char *const *skip) {
    tb_printf(b, "%s:\n", section);
    for (size_t i = 0; o && i < dd_options_count(o); i++) {
        const dd_param_spec *sp = dd_options_spec(o, i);
        int skipped = 0;
        for (size_t j = 0; skip && skip[j]; j++)
            skipped |= strcmp(skip[j], sp->name) == 0;
        if (skipped) continue;
        // Unset keys are left out, so that a key added to the spec later
        // (unset by default) keeps the pools made before it valid.
        char *v = dd_options_format(o, i);
        if (v && strcmp(v, "null") != 0) tb_printf(b, "  %s: %s\n", sp->name, v);
        free(v);
    }
}

/* Loads the source dataset named by pretrain.source with the pipeline's
 * dataset plugin, or pretrain.source_plugin with its default options (from
 * pretrain.source_path or the cache). */
static dd_status load_source(dd_run *run, const char *source, const char *source_plugin,
                             const char *source_path, dd_dataset **train, dd_dataset **test) {
    const dd_component *c = dd_pipeline_component(run->p, DD_COMPONENT_DATASET);
    const dd_options *d = dd_pipeline_component_options(run->p, DD_COMPONENT_DATASET);
    dd_options *own = NULL;
    if (source_plugin && strcmp(source_plugin, c->name) != 0) {
        DD_TRY(dd_registry_find(run->reg, DD_COMPONENT_DATASET, source_plugin, &c));
        DD_TRY(dd_options_from_strings(c->params, NULL, &own));
    }
    char *root = NULL;
    if (source_path) {
        if (!(root = strdup(source_path))) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    } else {
        dd_fetch_options fo;
        dd_fetch_options_init(&fo);
        fo.cache_dir =
            run->ro && run->ro->cache_dir ? run->ro->cache_dir : dd_options_string(d, "cache_dir");
        fo.offline = run->ro && run->ro->offline;
        fo.verify = dd_options_bool(d, "verify");
        fo.quiet = dd_log_get_level() < DD_LOG_INFO;
        dd_status fs = dd_fetch_dataset(source, &fo, &root);
        if (fs != DD_OK) {
            dd_options_destroy(own);
            return fs;
        }
    }
    const dd_dataset_ops *ops = c->ops;
    dd_dataset_request req = {
        .struct_size = sizeof req,
        .dataset = source,
        .root = root,
        .options = own ? own : d,
        .height = run->train->height,
        .width = run->train->width,
    };
    dd_status s = ops->load(&req, train, test);
    free(root);
    dd_options_destroy(own);
    if (s == DD_OK && (!*train || !*test || (*train)->n < 1))
        s = dd_error_set(DD_ERR_PLUGIN, "dataset plugin '%s' returned no training images for %s",
                         c->name, source);
    if (s == DD_OK && (*train)->channels != run->train->channels)
        s = dd_error_set(DD_ERR_INVALID, "pretrain.source %s has %d channels, the dataset has %d",
                         source, (*train)->channels, run->train->channels);
    return s;
}

static dd_status pool_root(dd_run *run, const dd_options *o, char **out) {
    const char *dir = dd_options_string(o, "pool_dir");
    if (dir) {
        *out = strdup(dir);
        return *out ? DD_OK : dd_error_set(DD_ERR_NOMEM, "out of memory");
    }
    const dd_options *d = dd_pipeline_component_options(run->p, DD_COMPONENT_DATASET);
    dd_fetch_options fo;
    dd_fetch_options_init(&fo);
    fo.cache_dir =
        run->ro && run->ro->cache_dir ? run->ro->cache_dir : dd_options_string(d, "cache_dir");
    char *cache = NULL;
    DD_TRY(dd_fetch_cache_root(&fo, &cache));
    size_t n = strlen(cache) + 16;
    *out = malloc(n);
    if (*out) snprintf(*out, n, "%s/pools", cache);
    free(cache);
    return *out ? DD_OK : dd_error_set(DD_ERR_NOMEM, "out of memory");
}

typedef struct stage_ctx {
    dd_dataset *src_train, *src_test; /* owned when loaded from pretrain.source */
    dd_dataset *tr_train, *tr_test;   /* transformed copies (owned) */
    dd_model *src_model, *dst_model;
    dd_pool *pool, *target;
    int32_t *classes;
    float *tmp;
    char *root, *dir;
    text_buf key;
    dd_progress *bar;
} stage_ctx;

static void ctx_free(stage_ctx *c, const dd_run *run) {
    if (c->src_train != run->train) dd_dataset_destroy(c->src_train);
    if (c->src_test != run->test) dd_dataset_destroy(c->src_test);
    dd_dataset_destroy(c->tr_train);
    dd_dataset_destroy(c->tr_test);
    dd_model_destroy(c->src_model);
    dd_model_destroy(c->dst_model);
    dd_pool_destroy(c->pool);
    dd_pool_destroy(c->target);
    free(c->classes);
    dd_free(c->tmp);
    free(c->root);
    free(c->dir);
    free(c->key.s);
    dd_progress_destroy(c->bar);
}

static dd_status train_members(stage_ctx *c, const dd_options *o, const char *scheme, float gain,
                               uint64_t seed) {
    dd_pool *p = c->pool;
    int reused = 0, trained = 0;
    if (dd_progress_create("pretrain", (uint64_t)p->n, "nets", &c->bar) != DD_OK) {
        c->bar = NULL;
        dd_error_clear();
    }
    for (int i = 0; i < p->n; i++) {
        dd_status s = dd_pool_load_member(p, i, c->dir);
        if (s == DD_OK) {
            reused++;
            continue;
        }
        if (s != DD_ERR_NOT_FOUND) return s;
        dd_error_clear();
        const uint64_t ms = dd_engine_init_seed(seed, DD_STREAM_PRETRAIN, (uint64_t)i);
        DD_TRY(dd_model_init_params(c->src_model, p->theta[i], scheme, gain, ms));
        dd_sgd_config sc;
        dd_sgd_config_defaults(&sc);
        sc.epochs = (int)dd_options_int(o, "epochs");
        sc.batch = dd_options_int(o, "batch");
        sc.lr = dd_options_float(o, "lr");
        sc.momentum = dd_options_float(o, "momentum");
        sc.weight_decay = dd_options_float(o, "weight_decay");
        sc.cosine = strcmp(dd_options_string(o, "lr_schedule"), "cosine") == 0;
        sc.seed = ms;
        char label[32];
        snprintf(label, sizeof label, "pretrain net %d", i);
        sc.label = label;
        DD_TRY(dd_sgd_train(c->src_model, p->theta[i], c->tr_train, &sc));
        DD_TRY(dd_pretrain_accuracy(c->src_model, p->theta[i], c->tr_test, &p->accuracy[i]));
        DD_TRY(dd_pool_save_member(p, i, c->dir));
        trained++;
        char status[64];
        snprintf(status, sizeof status, "net %d: test accuracy %.2f%%", i, 100.0 * p->accuracy[i]);
        if (c->bar) dd_progress_update(c->bar, (uint64_t)i + 1, status);
        dd_info("pretrain: %s", status);
    }
    dd_progress_destroy(c->bar);
    c->bar = NULL;
    if (reused) dd_info("pretrain: reused %d stored member(s) in %s", reused, c->dir);
    if (trained) DD_TRY(dd_pool_write_index(p, c->dir, c->key.s));
    return DD_OK;
}

dd_status dd_stage_pretrain(dd_run *run) {
    if (!run->train || !run->test)
        return dd_error_set(DD_ERR_INVALID, "no dataset loaded (the 'load' stage must run first)");
    const dd_pipeline *p = run->p;
    const dd_options *o = dd_pipeline_section(p, "pretrain");
    const dd_component *mc = dd_pipeline_component(p, DD_COMPONENT_MODEL);
    const dd_options *mo = dd_pipeline_component_options(p, DD_COMPONENT_MODEL);
    const dd_options *dso = dd_pipeline_component_options(p, DD_COMPONENT_DATASET);
    if (!mc)
        return dd_error_set(DD_ERR_INVALID, "%s: the pipeline has no 'model' section",
                            dd_pipeline_path(p));
    const int nets = (int)dd_options_int(o, "nets"), holdout = (int)dd_options_int(o, "holdout");
    if (holdout >= nets)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: pretrain.holdout (%d) must be smaller than pretrain.nets (%d): "
                            "distillation needs at least one member",
                            dd_options_where(o, "holdout"), holdout, nets);
    stage_ctx c = {0};
    dd_status s = DD_OK;
    const char *dataset = dd_options_string(dso, "name");
    const char *source = dd_options_string(o, "source");
    const char *source_path = dd_options_string(o, "source_path");
    if (source && !(dataset && strcmp(source, dataset) == 0)) {
        s = load_source(run, source, dd_options_string(o, "source_plugin"), source_path,
                        &c.src_train, &c.src_test);
        if (s != DD_OK) dd_error_prefix("pretrain.source %s", source);
    } else {
        source = dataset ? dataset : run->train->name;
        c.src_train = run->train;
        c.src_test = run->test;
    }
    dd_transform t = DD_TRANSFORM_NONE;
    if (s == DD_OK) {
        s = dd_transform_parse(dd_options_string(o, "transform"), &t);
        if (s != DD_OK) dd_error_prefix("%s", dd_options_where(o, "transform"));
    }
    const size_t n_keep = dd_options_list_len(o, "classes");
    if (s == DD_OK && !(c.classes = malloc((n_keep + 1) * sizeof *c.classes)))
        s = dd_error_set(DD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; s == DD_OK && i < n_keep; i++) {
        const char *item = dd_options_list_item(o, "classes", i);
        char *end = NULL;
        long v = strtol(item, &end, 10);
        if (!*item || *end)
            s = dd_error_set(DD_ERR_INVALID, "%s: pretrain.classes: '%s' is not a class index",
                             dd_options_where(o, "classes"), item);
        c.classes[i] = (int32_t)v;
    }
    const uint64_t seed = dd_pipeline_seed(p);
    const int64_t max_images = dd_options_int(o, "max_images");
    if (s == DD_OK)
        s = dd_dataset_transformed(c.src_train, t, c.classes, (int)n_keep, max_images, seed,
                                   &c.tr_train);
    if (s == DD_OK)
        s = dd_dataset_transformed(c.src_test, t, c.classes, (int)n_keep, 0, seed, &c.tr_test);

    // Init scheme as the distill stage chooses it: the model's own default
    // unless the pipeline sets model.init.
    const dd_model_ops *mops = mc->ops;
    const char *scheme = dd_options_has(mo, "init") ? dd_options_string(mo, "init") : NULL;
    if (!dd_options_is_set(mo, "init") && mops->default_init) scheme = mops->default_init;
    if (!scheme) scheme = "xavier";
    const float gain = dd_options_has(mo, "gain") ? (float)dd_options_float(mo, "gain") : 1.f;
    const char *backend = dd_options_has(mo, "backend") ? dd_options_string(mo, "backend") : NULL;
    const dd_backend be =
        backend && strcmp(backend, "reference") == 0 ? DD_BACKEND_REFERENCE : DD_BACKEND_ONEDNN;
    if (s == DD_OK) {
        dd_model_config mcfg = {sizeof mcfg,
                                mc,
                                mo,
                                c.tr_train->channels,
                                c.tr_train->height,
                                c.tr_train->width,
                                c.tr_train->n_classes,
                                be};
        s = dd_model_create(&mcfg, &c.src_model);
        if (s != DD_OK) dd_error_prefix("pretrain: model '%s'", mc->name);
    }

    // The key: everything that changes the members (not the split, not the backend).
    if (s == DD_OK) {
        static const char *const skip_model[] = {"backend", NULL};
        static const char *const skip_pretrain[] = {"holdout", "pool_dir", "source_path", NULL};
        tb_printf(&c.key, "# distill pretrained pool\nmodel_plugin: %s\ninit_scheme: %s\n",
                  mc->name, scheme);
        tb_options(&c.key, "model", mo, skip_model);
        tb_options(&c.key, "pretrain", o, skip_pretrain);
        tb_printf(&c.key,
                  "source:\n  dataset: %s\n  images: %lld\n  shape: [%d, %d, %d]\n  classes: %d\n"
                  "seed: %llu\nparameters: %zu\n",
                  source, (long long)c.tr_train->n, c.tr_train->channels, c.tr_train->height,
                  c.tr_train->width, c.tr_train->n_classes, (unsigned long long)seed,
                  dd_model_param_count(c.src_model));
        if (c.key.oom) s = dd_error_set(DD_ERR_NOMEM, "out of memory");
    }
    if (s == DD_OK) s = pool_root(run, o, &c.root);
    if (s == DD_OK) s = dd_pool_create(nets, holdout, dd_model_param_count(c.src_model), &c.pool);
    if (s == DD_OK) {
        dd_pool_key(c.key.s, c.pool->key);
        size_t n = strlen(c.root) + 32;
        if (!(c.dir = malloc(n)))
            s = dd_error_set(DD_ERR_NOMEM, "out of memory");
        else
            snprintf(c.dir, n, "%s/%.16s", c.root, c.pool->key);
    }
    if (s == DD_OK) s = dd_mkdir_p(c.dir);
    if (s == DD_OK) {
        dd_info("pretrain: pool of %d %s networks on %s%s%s (%lld images), %lld epoch(s); %s", nets,
                mc->name, source, t ? " + " : "", t ? transform_names[t] : "",
                (long long)c.tr_train->n, (long long)dd_options_int(o, "epochs"), c.dir);
        s = train_members(&c, o, scheme, gain, seed);
    }
    if (s == DD_OK) {
        double sum = 0.0;
        for (int i = 0; i < nets; i++)
            sum += c.pool->accuracy[i];
        dd_info("pretrain: %d networks, mean test accuracy %.2f%% on the source; %d for "
                "distillation, %d held out",
                nets, 100.0 * sum / nets, nets - holdout, holdout);
    }
    // Members in the target's layout: a new classifier head when the source
    // has another class count.
    if (s == DD_OK && c.tr_train->n_classes != run->train->n_classes) {
        dd_model_config mcfg = {sizeof mcfg,
                                mc,
                                mo,
                                run->train->channels,
                                run->train->height,
                                run->train->width,
                                run->train->n_classes,
                                be};
        s = dd_model_create(&mcfg, &c.dst_model);
        if (s == DD_OK)
            s = dd_pool_create(nets, holdout, dd_model_param_count(c.dst_model), &c.target);
        for (int i = 0; s == DD_OK && i < nets; i++) {
            c.target->accuracy[i] = c.pool->accuracy[i];
            s = dd_pretrain_transfer(
                c.src_model, c.pool->theta[i], c.dst_model, scheme, gain,
                dd_engine_init_seed(seed, DD_STREAM_PRETRAIN, (uint64_t)(nets + i)),
                c.target->theta[i]);
        }
        if (s == DD_OK) {
            memcpy(c.target->key, c.pool->key, sizeof c.target->key);
            dd_pool_destroy(c.pool);
            c.pool = c.target;
            c.target = NULL;
            dd_info("pretrain: new %d-class classifier heads for the target",
                    run->train->n_classes);
        }
    }
    if (s == DD_OK) {
        dd_pool_destroy(run->pool);
        run->pool = c.pool;
        c.pool = NULL;
    }
    ctx_free(&c, run);
    return s;
}
