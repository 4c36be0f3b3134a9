/* distill — the distill / evaluate / report stages of a pipeline run. */
#define _POSIX_C_SOURCE 200809L
#include "run/stages.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/comm.h"
#include "distill/log.h"
#include "distill/model.h"
#include "distill/tensor.h"
#include "engine/engine.h"
#include "engine/evaluate.h"
#include "base/error.h"
#include "run/model_choice.h"
#include "run/pipeline.h"
#include "report/report.h"
#include "engine/netpool.h"
#include "model/model_impl.h"
#include "run/run.h"
#include "run/stage_source.h"

struct dd_stage_state {
    dd_model *model;
    dd_objective_handle obj;
    int obj_ready;
    dd_distill_config cfg;
    char init_scheme[32];
    dd_distilled *set;
    float *theta0;
    dd_distill_stats stats; /* without the engine-owned history pointers */
    int has_stats;
    /* Owned copies of the engine's histories for the report's curves:
     * history_len iterations, lr_history history_len × lr_count. */
    double *loss_history, *metric_history;
    float *lr_history;
    int64_t history_len;
    int lr_count;
    dd_eval_report eval;
    int has_eval;
    int threads;
    /* evaluate.architectures, built by the evaluate stage */
    dd_model *arch[DD_EVAL_MAX_ARCH];
    char arch_name[DD_EVAL_MAX_ARCH][48];
    char arch_scheme[DD_EVAL_MAX_ARCH][32];
    double arch_gain[DD_EVAL_MAX_ARCH];
};

void dd_stage_state_destroy(dd_stage_state *st) {
    if (!st) return;
    dd_eval_report_release(&st->eval);
    free(st->loss_history);
    free(st->metric_history);
    free(st->lr_history);
    dd_distilled_destroy(st->set);
    dd_free(st->theta0);
    dd_objective_handle_release(&st->obj);
    dd_model_destroy(st->model);
    for (int i = 0; i < DD_EVAL_MAX_ARCH; i++)
        dd_model_destroy(st->arch[i]);
    free(st);
}

// The model (with the run's thread count) and the bound objective.
static dd_status state_model_objective(dd_run *run, dd_stage_state *st, const dd_model_choice *m) {
    const dd_pipeline *p = run->p;
    const dd_component *mc = dd_pipeline_component(p, DD_COMPONENT_MODEL);
    const dd_component *oc = dd_pipeline_component(p, DD_COMPONENT_OBJECTIVE);
    const dd_options *mo = dd_pipeline_component_options(p, DD_COMPONENT_MODEL);
    dd_status s = dd_model_for_dataset(mc, mo, run->train, m->backend, &st->model);
    if (s != DD_OK) {
        dd_error_prefix("model '%s'", mc->name);
        return s;
    }
    dd_model_set_threads(st->model, st->threads);
    s = dd_objective_handle_init(
        &st->obj, oc, dd_pipeline_component_options(p, DD_COMPONENT_OBJECTIVE), run->train);
    st->obj_ready = s == DD_OK;
    return s;
}

// The engine's configuration: the distill section, then what other sections
// and the objective decide (init scheme and gain, seed, init mode, the
// pretrain stage's pool of members for distillation).
static dd_status state_config(dd_run *run, dd_stage_state *st, const dd_model_choice *m) {
    const dd_pipeline *p = run->p;
    const dd_options *dopt = dd_pipeline_section(p, "distill");
    DD_TRY(dd_distill_config_from_options(dopt, &st->cfg));
    st->cfg.nthreads = st->threads;
    snprintf(st->init_scheme, sizeof st->init_scheme, "%s", m->scheme);
    st->cfg.init_scheme = st->init_scheme;
    st->cfg.init_gain = m->gain;
    st->cfg.seed = dd_pipeline_seed(p);
    st->cfg.progress = 1;
    const dd_objective_ops *ops = st->obj.ops;
    if (!dd_options_is_set(dopt, "init_mode") && ops->default_init_mode)
        DD_TRY(dd_init_mode_parse(ops->default_init_mode, &st->cfg.init_mode));
    if (run->pool) {
        if (run->pool->n_params != dd_model_param_count(st->model))
            return dd_error_set(DD_ERR_INVALID,
                                "the pretrained pool's networks have %zu parameters, the model "
                                "has %zu",
                                run->pool->n_params, dd_model_param_count(st->model));
        st->cfg.theta_pool = dd_netpool_train_members(run->pool, &st->cfg.theta_pool_size);
    }
    return DD_OK;
}

/* Builds what every stage needs (model, objective, configuration) once. */
static dd_status state_get(dd_run *run, dd_stage_state **out) {
    if (run->engine) {
        *out = run->engine;
        return DD_OK;
    }
    if (!run->train || !run->test)
        return dd_error_set(DD_ERR_INVALID, "no dataset loaded (the 'load' stage must run first)");
    const dd_pipeline *p = run->p;
    const dd_component *mc = dd_pipeline_component(p, DD_COMPONENT_MODEL);
    if (!mc)
        return dd_error_set(DD_ERR_INVALID, "%s: the pipeline has no 'model' section",
                            dd_pipeline_path(p));
    if (!dd_pipeline_component(p, DD_COMPONENT_OBJECTIVE))
        return dd_error_set(DD_ERR_INVALID, "%s: the pipeline has no 'objective' section",
                            dd_pipeline_path(p));
    dd_stage_state *st = calloc(1, sizeof *st);
    if (!st) return dd_nomem();
    // The run's thread count, handed to the model, the engine and the
    // evaluation; OpenMP's own setting is left as the caller has it.
    const dd_options *dopt = dd_pipeline_section(p, "distill");
    int64_t threads = dd_options_has(dopt, "threads") ? dd_options_int(dopt, "threads") : 0;
    st->threads = threads > 0 ? (int)threads : omp_get_max_threads();
    const dd_model_choice m =
        dd_model_choice_of(mc, dd_pipeline_component_options(p, DD_COMPONENT_MODEL));
    dd_status s = state_model_objective(run, st, &m);
    if (s == DD_OK) s = state_config(run, st, &m);
    if (s != DD_OK) {
        dd_stage_state_destroy(st);
        return s;
    }
    run->engine = st;
    *out = st;
    return DD_OK;
}

/* Copies of the engine's per-iteration histories, which die with it. */
static dd_status keep_histories(dd_stage_state *st, const dd_distill_stats *es, int K) {
    free(st->loss_history);
    free(st->metric_history);
    free(st->lr_history);
    st->loss_history = st->metric_history = NULL;
    st->lr_history = NULL;
    st->history_len = 0;
    const size_t n = es->iterations > 0 ? (size_t)es->iterations : 0;
    if (n == 0) return DD_OK;
    st->loss_history = malloc(n * sizeof(double));
    st->metric_history = malloc(n * sizeof(double));
    st->lr_history = malloc(n * (size_t)K * sizeof(float));
    if (!st->loss_history || !st->metric_history || !st->lr_history)
        return dd_error_set(DD_ERR_NOMEM, "distill: out of memory for the histories");
    memcpy(st->loss_history, es->loss_history, n * sizeof(double));
    memcpy(st->metric_history, es->metric_history, n * sizeof(double));
    memcpy(st->lr_history, es->lr_history, n * (size_t)K * sizeof(float));
    st->history_len = (int64_t)n;
    st->lr_count = K;
    return DD_OK;
}

dd_status dd_stage_distill(dd_run *run) {
    dd_stage_state *st;
    DD_TRY(state_get(run, &st));
    // A real batch larger than the training set is refused rather than cut
    // to it: it is a mistake, and the batch's activations decide the memory.
    if (st->cfg.batch_real > run->train->n) {
        const dd_options *dopt = dd_pipeline_section(run->p, "distill");
        return dd_error_set(DD_ERR_INVALID,
                            "%s: invalid value for 'distill.batch_real': %lld is larger than the "
                            "training set (%lld images); use at most %lld",
                            dd_options_where(dopt, "batch_real"), (long long)st->cfg.batch_real,
                            (long long)run->train->n, (long long)run->train->n);
    }
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.bin", run->out_dir);
    dd_distill_config c = st->cfg;
    c.checkpoint_path = ckpt;
    c.resume = run->ro && run->ro->resume;
    const dd_run_options *ro = run->ro;
    c.cancel = ro ? ro->cancel : NULL;
    char summary[256];
    snprintf(summary, sizeof summary,
             "distill: %d steps × %d epochs × %d image(s)/class, %s init, %lld iterations, "
             "batch %lld, %d thread(s)",
             c.steps, c.epochs, c.images_per_class, dd_init_mode_str(c.init_mode),
             (long long)c.iterations, (long long)c.batch_real, st->threads);
    dd_info("%s", summary);
    dd_engine *e = NULL;
    if (ro && ro->cancel_watch) ro->cancel_watch(1, ro->cancel_user);
    dd_status s = dd_engine_create(st->model, &st->obj, run->train, &c, &e);
    if (s == DD_OK) s = dd_engine_run(e);
    if (ro && ro->cancel_watch) ro->cancel_watch(0, ro->cancel_user);
    if (s == DD_OK) {
        dd_distilled_destroy(st->set);
        st->set = NULL;
        s = dd_engine_export(e, &st->set);
    }
    if (s == DD_OK && dd_engine_theta0(e)) {
        size_t P = dd_model_param_count(st->model);
        dd_free(st->theta0);
        if (!(st->theta0 = dd_alloc_floats(P)))
            s = dd_error_set(DD_ERR_NOMEM, "out of memory");
        else
            memcpy(st->theta0, dd_engine_theta0(e), P * sizeof(float));
    }
    if (s == DD_OK) s = keep_histories(st, dd_engine_stats(e), c.steps * c.epochs);
    if (s == DD_OK) {
        // Keep the statistics (the histories are copied above).
        st->stats = *dd_engine_stats(e);
        st->stats.loss_history = NULL;
        st->stats.metric_history = NULL;
        st->stats.lr_history = NULL;
        st->has_stats = 1;
        dd_info("distill: done, %lld iterations, %.3f s/iteration, final loss %.4f",
                (long long)st->stats.iterations, st->stats.seconds_per_iteration,
                st->stats.last_loss);
        const double tt = st->stats.t_unroll + st->stats.t_outer + st->stats.t_reverse;
        if (tt > 0)
            dd_info("distill: time in unrolled steps %.0f %%, real batch %.0f %%, reverse pass "
                    "%.0f %%",
                    100 * st->stats.t_unroll / tt, 100 * st->stats.t_outer / tt,
                    100 * st->stats.t_reverse / tt);
        const double its = st->stats.iterations > 0 ? (double)st->stats.iterations : 1.0;
        if (tt > 0 && dd_comm_size() > 1)
            dd_info("distill: time per iteration: distilled-batch passes %.4f s, real batch %.4f "
                    "s, MPI exchanges %.4f s (%lld floats summed, %lld sent) on %d ranks",
                    (st->stats.t_unroll + st->stats.t_reverse) / its,
                    (st->stats.t_outer - st->stats.t_comm) / its, st->stats.t_comm / its,
                    st->stats.comm_floats_summed, st->stats.comm_floats_sent, dd_comm_size());
        else if (tt > 0)
            dd_info("distill: time per iteration: distilled-batch passes %.4f s, real batch %.4f "
                    "s, MPI exchanges 0 s (0 floats summed, 0 sent) on 1 rank",
                    (st->stats.t_unroll + st->stats.t_reverse) / its, st->stats.t_outer / its);
    }
    dd_engine_destroy(e);
    // The real batch's workspace (batch_real activations, gradients and
    // tangents) is not needed by evaluation, which would otherwise hold it
    // beside its own test-batch one.
    dd_model_release_workspaces(st->model);
    return s;
}

/* The networks of evaluate.architectures, built for the loaded dataset with
 * the run's threads; kept in the stage state (names like "convnet", or
 * "convnet#2" for a second one). */
static dd_status arch_models(dd_run *run, dd_stage_state *st, dd_eval_settings *es) {
    const dd_pipeline *p = run->p;
    const size_t n = dd_pipeline_arch_count(p);
    for (size_t i = 0; i < n && i < DD_EVAL_MAX_ARCH; i++) {
        const dd_options *o;
        const dd_component *c = dd_pipeline_arch(p, i, &o);
        if (!st->arch[i]) {
            const dd_model_choice mc = dd_model_choice_of(c, o);
            dd_status s = dd_model_for_dataset(c, o, run->train, mc.backend, &st->arch[i]);
            if (s != DD_OK) {
                dd_error_prefix("evaluate.architectures[%zu] '%s'", i, c->name);
                return s;
            }
            dd_model_set_threads(st->arch[i], st->threads);
            snprintf(st->arch_scheme[i], sizeof st->arch_scheme[i], "%s", mc.scheme);
            st->arch_gain[i] = mc.gain;
            int same = 0;
            for (size_t j = 0; j < i; j++)
                same += dd_pipeline_arch(p, j, NULL) == c;
            if (same)
                snprintf(st->arch_name[i], sizeof st->arch_name[i], "%s#%d", c->name, same + 1);
            else
                snprintf(st->arch_name[i], sizeof st->arch_name[i], "%s", c->name);
        }
        es->arch[i] =
            (dd_eval_arch){st->arch_name[i], st->arch[i], st->arch_scheme[i], st->arch_gain[i]};
        es->n_arch = (int)i + 1;
    }
    return DD_OK;
}

dd_status dd_stage_evaluate(dd_run *run) {
    dd_stage_state *st;
    DD_TRY(state_get(run, &st));
    if (!st->set) {
        DD_TRY(dd_stage_source_set(run, &st->cfg, dd_model_output_dim(st->model), &st->set));
        if (st->set && !st->theta0)
            DD_TRY(dd_stage_source_theta0(&st->cfg, dd_model_param_count(st->model), &st->theta0));
    }
    dd_eval_settings es;
    DD_TRY(dd_eval_settings_from_options(dd_pipeline_section(run->p, "evaluate"), &es));
    es.progress = 1;
    if (run->pool) es.eval_pool = dd_netpool_heldout_members(run->pool, &es.eval_pool_size);
    dd_eval_report_release(&st->eval);
    st->has_eval = 0;
    dd_status s = DD_OK;
    if (es.protocols & DD_PROTOCOL_CROSS_ARCH) s = arch_models(run, st, &es);
    if (s == DD_OK)
        s = dd_evaluate_run(st->model, &st->obj, run->train, run->test, st->set, st->theta0,
                            &st->cfg, &es, &st->eval);
    st->has_eval = s == DD_OK;
    return s;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, k;
    char tmp[4096];
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
        if (n + k + 1 > cap) {
            cap = 2 * (n + k + 1);
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + n, tmp, k);
        n += k;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    return buf;
}

dd_status dd_stage_report(dd_run *run) {
    dd_stage_state *st;
    DD_TRY(state_get(run, &st));
    const dd_pipeline *p = run->p;
    const dd_options *ro = dd_pipeline_section(p, "report");
    const dd_options *dso = dd_pipeline_component_options(p, DD_COMPONENT_DATASET);
    const dd_component *mc = dd_pipeline_component(p, DD_COMPONENT_MODEL);
    const dd_component *oc = dd_pipeline_component(p, DD_COMPONENT_OBJECTIVE);
    const dd_options *mo = dd_pipeline_component_options(p, DD_COMPONENT_MODEL);
    char cfg_path[4200];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", run->out_dir);
    char *yaml = read_text(cfg_path);
    dd_report_info r = {
        .out_dir = run->out_dir,
        .run_name = dd_pipeline_name(p),
        .dataset =
            dso && dd_options_has(dso, "name") ? dd_options_string(dso, "name") : run->train->name,
        .model = mc ? mc->name : NULL,
        .objective = oc ? oc->name : NULL,
        .backend = mo && dd_options_has(mo, "backend") ? dd_options_string(mo, "backend") : NULL,
        .config_yaml = yaml,
        .class_names = (const char *const *)run->train->class_names,
        .n_classes = run->train->n_classes,
        .set = st->set,
        .distill = &st->cfg,
        .stats = st->has_stats ? &st->stats : NULL,
        .eval = st->has_eval ? &st->eval : NULL,
        .png = ro && dd_options_has(ro, "png") ? dd_options_bool(ro, "png") : 1,
        .png_scale =
            ro && dd_options_has(ro, "png_scale") ? (int)dd_options_int(ro, "png_scale") : 4,
        .threads = st->threads,
        .history_len = st->history_len,
        .loss_history = st->loss_history,
        .metric_history = st->metric_history,
        .lr_history = st->lr_history,
        .lr_count = st->lr_count,
        .batch_metric =
            st->obj_ready && st->obj.n_metrics > 0 ? st->obj.ops->metric_names[0] : NULL,
    };
    dd_status s = dd_report_write(&r);
    free(yaml);
    if (s == DD_OK) {
        dd_info("report: %s/report.md", run->out_dir);
        if (st->has_eval && st->eval.has_distilled) {
            const dd_eval_report *ev = &st->eval;
            dd_info("test %s: distilled %.4f ± %.4f (untrained %.4f)", ev->metric,
                    ev->distilled.mean, ev->distilled.std, ev->untrained.mean);
            for (int i = 0; i < ev->n_baselines; i++)
                dd_info("test %s: %s %.4f ± %.4f", ev->metric,
                        dd_baseline_name(ev->baselines[i].kind), ev->baselines[i].stats.mean,
                        ev->baselines[i].stats.std);
        }
    }
    return s;
}
