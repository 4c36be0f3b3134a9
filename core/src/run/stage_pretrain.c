/* distill — the pretrain stage: trains a pool of networks (model plugin +
 * dataset + SGD, per-member seeds) or reuses the pool stored under a hash of
 * that configuration. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/comm.h"
#include "base/fs.h"
#include "base/strbuf.h"
#include "compute/threads.h"
#include "config/options.h"
#include "data/fetch.h"
#include "data/transform.h"
#include "distill/log.h"
#include "distill/tensor.h"
#include "engine/engine.h"
#include "engine/netpool.h"
#include "engine/team.h"
#include "engine/train.h"
#include "model/graph.h"
#include "model/model_impl.h"
#include "run/model_choice.h"
#include "run/pipeline.h"
#include "run/run.h"
#include "run/stages.h"

/* ---- the stage ------------------------------------------------------------- */

/* YAML text of every option of `o` except the keys listed in `skip`. */
static void tb_options(dd_strbuf *b, const char *section, const dd_options *o,
                       const char *const *skip) {
    dd_strbuf_printf(b, "%s:\n", section);
    for (size_t i = 0; o && i < dd_options_count(o); i++) {
        const dd_param_spec *sp = dd_options_spec(o, i);
        int skipped = 0;
        for (size_t j = 0; skip && skip[j]; j++)
            skipped |= strcmp(skip[j], sp->name) == 0;
        if (skipped) continue;
        // Unset keys are left out, so that a key added to the spec later
        // (unset by default) keeps the pools made before it valid.
        char *v = dd_options_format(o, i);
        if (v && strcmp(v, "null") != 0) dd_strbuf_printf(b, "  %s: %s\n", sp->name, v);
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
    const dd_dataset_ops *ops = c->ops;
    dd_fetch_options fo;
    dd_fetch_options_init(&fo);
    fo.cache_dir =
        run->ro && run->ro->cache_dir ? run->ro->cache_dir : dd_options_string(d, "cache_dir");
    fo.offline = run->ro && run->ro->offline;
    fo.verify = dd_options_bool(d, "verify");
    fo.quiet = dd_log_get_level() < DD_LOG_INFO;
    dd_status fs = DD_OK;
    if ((ops->flags & DD_DATASET_LOCAL) && !source_path)
        fs = dd_error_set(DD_ERR_INVALID,
                          "dataset plugin '%s' reads your own files: set pretrain.source_path",
                          c->name);
    else if (ops->flags & DD_DATASET_LOCAL) // a directory, or an archive to unpack
        fs = dd_fetch_local_path(source, source_path, &fo,
                                 (ops->flags & DD_DATASET_UNPACK_PATH) != 0, &root);
    else if (source_path)
        fs = (root = strdup(source_path)) ? DD_OK : dd_error_set(DD_ERR_NOMEM, "out of memory");
    else
        fs = dd_fetch_dataset(source, &fo, &root);
    if (fs != DD_OK) {
        dd_options_destroy(own);
        return fs;
    }
    dd_dataset_request req = {
        .struct_size = sizeof req,
        .dataset = source,
        .root = root,
        .options = own ? own : d,
        .height = run->train->height,
        .width = run->train->width,
    };
    dd_status s = dd_stage_read_dataset(run, c, &req, train, test, NULL);
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
    dd_netpool *pool, *target;
    int32_t *classes;
    float *tmp;
    char *root, *dir;
    dd_strbuf key;
    dd_progress *bar;
} stage_ctx;

static void ctx_free(stage_ctx *c, const dd_run *run) {
    if (c->src_train != run->train) dd_dataset_destroy(c->src_train);
    if (c->src_test != run->test) dd_dataset_destroy(c->src_test);
    dd_dataset_destroy(c->tr_train);
    dd_dataset_destroy(c->tr_test);
    dd_model_destroy(c->src_model);
    dd_model_destroy(c->dst_model);
    dd_netpool_destroy(c->pool);
    dd_netpool_destroy(c->target);
    free(c->classes);
    dd_free(c->tmp);
    free(c->root);
    free(c->dir);
    dd_strbuf_free(&c->key);
    dd_progress_destroy(c->bar);
}

/* Members to train, one per worker thread (each on one thread and a model
 * of its own) and spread over the ranks; a member's result does not depend
 * on which worker or rank trained it. */
typedef struct members_job {
    stage_ctx *c;
    const dd_options *o;
    const char *scheme;
    float gain;
    uint64_t seed;
    const int *pending; /* member indices to train */
    int64_t lo;         /* this rank's first entry of pending */
    dd_model **models;
    pthread_mutex_t lock; /* the progress bar and the count of finished members */
    int finished;
} members_job;

static dd_status train_member(members_job *j, int i, dd_model *m) {
    stage_ctx *c = j->c;
    const dd_options *o = j->o;
    dd_netpool *p = c->pool;
    const uint64_t ms = dd_engine_init_seed(j->seed, DD_STREAM_PRETRAIN, (uint64_t)i);
    DD_TRY(dd_model_init_params(m, p->theta[i], j->scheme, j->gain, ms));
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
    DD_TRY(dd_sgd_train(m, p->theta[i], c->tr_train, &sc));
    DD_TRY(dd_pretrain_accuracy(m, p->theta[i], c->tr_test, &p->accuracy[i]));
    char status[64];
    snprintf(status, sizeof status, "net %d: test accuracy %.2f%%", i, 100.0 * p->accuracy[i]);
    pthread_mutex_lock(&j->lock);
    j->finished++;
    if (c->bar) dd_progress_update(c->bar, (uint64_t)j->finished, status);
    pthread_mutex_unlock(&j->lock);
    dd_info("pretrain: %s", status);
    return DD_OK;
}

typedef struct members_team {
    members_job *j;
    int count;
} members_team;

static int members_team_chunks(void *ctx, int step) {
    (void)step;
    return ((const members_team *)ctx)->count;
}

static dd_status members_team_compute(void *ctx, int step, int k, int w, int buf) {
    (void)buf; // results go to per-network records, not team buffers
    (void)step;
    members_team *t = ctx;
    return train_member(t->j, t->j->pending[t->j->lo + k], t->j->models[w]);
}

/* Every rank gets every member and accuracy: rank 0's (loaded from its
 * cache, or trained by some rank and gathered). */
static dd_status share_members(dd_netpool *p, const int *pending, int n_pending) {
    const int R = dd_comm_size();
    if (R == 1) return DD_OK;
    // trained members: rank r holds pending[share r]; everyone adds the others'
    // (zeros elsewhere: the sum is exact)
    for (int k = 0; k < n_pending; k++) {
        int64_t lo, hi;
        int owner = 0;
        for (int r = 0; r < R; r++) {
            dd_comm_share(n_pending, r, R, &lo, &hi);
            if (k >= lo && k < hi) owner = r;
        }
        DD_TRY(dd_comm_bcast(p->theta[pending[k]], p->n_params * sizeof(float), owner));
        DD_TRY(dd_comm_bcast(&p->accuracy[pending[k]], sizeof(double), owner));
    }
    // members rank 0 loaded from its cache
    for (int i = 0; i < p->n; i++) {
        DD_TRY(dd_comm_bcast(p->theta[i], p->n_params * sizeof(float), 0));
        DD_TRY(dd_comm_bcast(&p->accuracy[i], sizeof(double), 0));
    }
    return DD_OK;
}

static dd_status train_members(stage_ctx *c, const dd_options *o, const char *scheme, float gain,
                               uint64_t seed) {
    dd_netpool *p = c->pool;
    int *pending = malloc((size_t)p->n * sizeof *pending);
    if (!pending) return dd_error_set(DD_ERR_NOMEM, "pretrain: out of memory");
    // Rank 0 decides what is stored already (the others may have no cache).
    int n_pending = 0, reused = 0;
    dd_status s = DD_OK;
    if (dd_comm_rank() == 0) {
        for (int i = 0; s == DD_OK && i < p->n; i++) {
            dd_status ls = dd_netpool_load_member(p, i, c->dir);
            if (ls == DD_OK) {
                reused++;
            } else if (ls == DD_ERR_NOT_FOUND) {
                dd_error_clear();
                pending[n_pending++] = i;
            } else {
                s = ls;
            }
        }
    }
    if (s == DD_OK) s = dd_comm_bcast(&n_pending, sizeof n_pending, 0);
    if (s == DD_OK) s = dd_comm_bcast(pending, (size_t)p->n * sizeof *pending, 0);
    members_job j = {c, o, scheme, gain, seed, pending, 0, NULL, PTHREAD_MUTEX_INITIALIZER, 0};
    int64_t hi = n_pending;
    dd_comm_share(n_pending, dd_comm_rank(), dd_comm_size(), &j.lo, &hi);
    const int local = (int)(hi - j.lo);
    int workers = dd_threads_resolve(dd_model_threads(c->src_model));
    if (workers > local) workers = local > 0 ? local : 1;
    if (workers > DD_TEAM_MAX_CHUNKS) workers = DD_TEAM_MAX_CHUNKS;
    j.models = calloc((size_t)workers, sizeof *j.models);
    if (s == DD_OK && !j.models) s = dd_error_set(DD_ERR_NOMEM, "pretrain: out of memory");
    const int saved = dd_model_threads(c->src_model);
    if (s == DD_OK) {
        j.models[0] = c->src_model;
        for (int w = 1; s == DD_OK && w < workers; w++)
            s = dd_model_clone(c->src_model, &j.models[w]);
        // one member: all threads on it; several: one thread each
        for (int w = 0; s == DD_OK && w < workers; w++)
            dd_model_set_threads(j.models[w], n_pending > 1 ? 1 : saved);
    }
    if (s == DD_OK && local > 0) {
        if (dd_progress_create("pretrain", (uint64_t)local, "nets", &c->bar) != DD_OK) {
            c->bar = NULL;
            dd_error_clear();
        }
        members_team t = {&j, local};
        dd_team_job job = {.n_steps = 1,
                           .n_chunks = members_team_chunks,
                           .compute = members_team_compute,
                           .ctx = &t,
                           .no_backup = 1};
        s = dd_team_run(workers, &job, NULL);
        dd_progress_destroy(c->bar);
        c->bar = NULL;
    }
    dd_model_set_threads(c->src_model, saved);
    for (int w = 1; j.models && w < workers; w++)
        dd_model_destroy(j.models[w]);
    free(j.models);
    if (s == DD_OK) s = share_members(p, pending, n_pending);
    // rank 0 stores what was trained
    for (int k = 0; s == DD_OK && dd_comm_rank() == 0 && k < n_pending; k++)
        s = dd_netpool_save_member(p, pending[k], c->dir);
    free(pending);
    DD_TRY(s);
    if (reused) dd_info("pretrain: reused %d stored member(s) in %s", reused, c->dir);
    if (n_pending && dd_comm_rank() == 0)
        DD_TRY(dd_netpool_write_index(p, c->dir, dd_strbuf_str(&c->key)));
    return DD_OK;
}

// pretrain.classes as class indices (c->classes, n_keep of them).
static dd_status parse_classes(const dd_options *o, stage_ctx *c, size_t *n_keep) {
    *n_keep = dd_options_list_len(o, "classes");
    if (!(c->classes = malloc((*n_keep + 1) * sizeof *c->classes)))
        return dd_error_set(DD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < *n_keep; i++) {
        const char *item = dd_options_list_item(o, "classes", i);
        char *end = NULL;
        long v = strtol(item, &end, 10);
        if (!*item || *end)
            return dd_error_set(DD_ERR_INVALID, "%s: pretrain.classes: '%s' is not a class index",
                                dd_options_where(o, "classes"), item);
        c->classes[i] = (int32_t)v;
    }
    return DD_OK;
}

// The members' training data: the pipeline's dataset or pretrain.source,
// transformed and restricted to pretrain.classes. *source names it.
static dd_status prepare_source(dd_run *run, const dd_options *o, stage_ctx *c, const char **source,
                                dd_transform *t) {
    const dd_options *dso = dd_pipeline_component_options(run->p, DD_COMPONENT_DATASET);
    const char *dataset = dd_options_string(dso, "name");
    *source = dd_options_string(o, "source");
    if (*source && !(dataset && strcmp(*source, dataset) == 0)) {
        dd_status s = load_source(run, *source, dd_options_string(o, "source_plugin"),
                                  dd_options_string(o, "source_path"), &c->src_train, &c->src_test);
        if (s != DD_OK) {
            dd_error_prefix("pretrain.source %s", *source);
            return s;
        }
    } else {
        *source = dataset ? dataset : run->train->name;
        c->src_train = run->train;
        c->src_test = run->test;
    }
    dd_status s = dd_transform_parse(dd_options_string(o, "transform"), t);
    if (s != DD_OK) {
        dd_error_prefix("%s", dd_options_where(o, "transform"));
        return s;
    }
    size_t n_keep;
    DD_TRY(parse_classes(o, c, &n_keep));
    const uint64_t seed = dd_pipeline_seed(run->p);
    DD_TRY(dd_dataset_transformed(c->src_train, *t, c->classes, (int)n_keep,
                                  dd_options_int(o, "max_images"), seed, &c->tr_train));
    return dd_dataset_transformed(c->src_test, *t, c->classes, (int)n_keep, 0, seed, &c->tr_test);
}

// The pool's key text: everything that changes the members (not the split,
// not the backend). Its hash names the pool's directory.
static dd_status pool_key_text(const dd_run *run, const dd_options *o, stage_ctx *c,
                               const char *source, const char *scheme) {
    static const char *const skip_model[] = {"backend", NULL};
    static const char *const skip_pretrain[] = {"holdout", "pool_dir", "source_path", NULL};
    const dd_component *mc = dd_pipeline_component(run->p, DD_COMPONENT_MODEL);
    const dd_options *mo = dd_pipeline_component_options(run->p, DD_COMPONENT_MODEL);
    dd_strbuf_printf(&c->key, "# distill pretrained pool\nmodel_plugin: %s\ninit_scheme: %s\n",
                     mc->name, scheme);
    tb_options(&c->key, "model", mo, skip_model);
    tb_options(&c->key, "pretrain", o, skip_pretrain);
    dd_strbuf_printf(&c->key,
                     "source:\n  dataset: %s\n  images: %lld\n  shape: [%d, %d, %d]\n  "
                     "classes: %d\nseed: %llu\nparameters: %zu\n",
                     source, (long long)c->tr_train->n, c->tr_train->channels, c->tr_train->height,
                     c->tr_train->width, c->tr_train->n_classes,
                     (unsigned long long)dd_pipeline_seed(run->p),
                     dd_model_param_count(c->src_model));
    return dd_strbuf_status(&c->key);
}

// c->dir: <pool root>/<first 16 hex digits of the key's hash>, created.
static dd_status open_pool_dir(dd_run *run, const dd_options *o, stage_ctx *c) {
    DD_TRY(pool_root(run, o, &c->root));
    dd_netpool_key(dd_strbuf_str(&c->key), c->pool->key);
    size_t n = strlen(c->root) + 32;
    if (!(c->dir = malloc(n))) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    snprintf(c->dir, n, "%s/%.16s", c->root, c->pool->key);
    return dd_fs_mkdir_p(c->dir);
}

// Members in the target's layout: a new classifier head when the source has
// another class count than the pipeline's dataset.
static dd_status retarget_heads(dd_run *run, stage_ctx *c, const dd_model_choice *m) {
    const dd_component *mc = dd_pipeline_component(run->p, DD_COMPONENT_MODEL);
    const dd_options *mo = dd_pipeline_component_options(run->p, DD_COMPONENT_MODEL);
    const int nets = c->pool->n;
    const uint64_t seed = dd_pipeline_seed(run->p);
    DD_TRY(dd_model_for_dataset(mc, mo, run->train, m->backend, &c->dst_model));
    DD_TRY(
        dd_netpool_create(nets, c->pool->holdout, dd_model_param_count(c->dst_model), &c->target));
    for (int i = 0; i < nets; i++) {
        c->target->accuracy[i] = c->pool->accuracy[i];
        DD_TRY(dd_pretrain_transfer(
            c->src_model, c->pool->theta[i], c->dst_model, m->scheme, (float)m->gain,
            dd_engine_init_seed(seed, DD_STREAM_PRETRAIN, (uint64_t)(nets + i)),
            c->target->theta[i]));
    }
    memcpy(c->target->key, c->pool->key, sizeof c->target->key);
    dd_netpool_destroy(c->pool);
    c->pool = c->target;
    c->target = NULL;
    dd_info("pretrain: new %d-class classifier heads for the target", run->train->n_classes);
    return DD_OK;
}

static dd_status pretrain(dd_run *run, const dd_options *o, stage_ctx *c) {
    const dd_component *mc = dd_pipeline_component(run->p, DD_COMPONENT_MODEL);
    const dd_options *mo = dd_pipeline_component_options(run->p, DD_COMPONENT_MODEL);
    const int nets = (int)dd_options_int(o, "nets"), holdout = (int)dd_options_int(o, "holdout");
    const char *source;
    dd_transform t = DD_TRANSFORM_NONE;
    DD_TRY(prepare_source(run, o, c, &source, &t));
    const dd_model_choice m = dd_model_choice_of(mc, mo);
    dd_status s = dd_model_for_dataset(mc, mo, c->tr_train, m.backend, &c->src_model);
    if (s != DD_OK) {
        dd_error_prefix("pretrain: model '%s'", mc->name);
        return s;
    }
    DD_TRY(pool_key_text(run, o, c, source, m.scheme));
    DD_TRY(dd_netpool_create(nets, holdout, dd_model_param_count(c->src_model), &c->pool));
    DD_TRY(open_pool_dir(run, o, c));
    dd_info("pretrain: pool of %d %s networks on %s%s%s (%lld images), %lld epoch(s); %s", nets,
            mc->name, source, t ? " + " : "", t ? dd_transform_name(t) : "",
            (long long)c->tr_train->n, (long long)dd_options_int(o, "epochs"), c->dir);
    DD_TRY(train_members(c, o, m.scheme, (float)m.gain, dd_pipeline_seed(run->p)));
    double sum = 0.0;
    for (int i = 0; i < nets; i++)
        sum += c->pool->accuracy[i];
    dd_info("pretrain: %d networks, mean test accuracy %.2f%% on the source; %d for "
            "distillation, %d held out",
            nets, 100.0 * sum / nets, nets - holdout, holdout);
    if (c->tr_train->n_classes != run->train->n_classes) DD_TRY(retarget_heads(run, c, &m));
    return DD_OK;
}

dd_status dd_stage_pretrain(dd_run *run) {
    if (!run->train || !run->test)
        return dd_error_set(DD_ERR_INVALID, "no dataset loaded (the 'load' stage must run first)");
    const dd_pipeline *p = run->p;
    const dd_options *o = dd_pipeline_section(p, "pretrain");
    if (!dd_pipeline_component(p, DD_COMPONENT_MODEL))
        return dd_error_set(DD_ERR_INVALID, "%s: the pipeline has no 'model' section",
                            dd_pipeline_path(p));
    const int nets = (int)dd_options_int(o, "nets"), holdout = (int)dd_options_int(o, "holdout");
    if (holdout >= nets)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: pretrain.holdout (%d) must be smaller than pretrain.nets (%d): "
                            "distillation needs at least one member",
                            dd_options_where(o, "holdout"), holdout, nets);
    stage_ctx c = {0};
    dd_status s = pretrain(run, o, &c);
    if (s == DD_OK) {
        dd_netpool_destroy(run->pool);
        run->pool = c.pool;
        c.pool = NULL;
    }
    ctx_free(&c, run);
    return s;
}
