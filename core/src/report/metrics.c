/* distill — metrics.json: the run's setting and every number it measured
 * (docs/output.md), written with the JSON writer of base/json.h. */
#include <stddef.h>

#include "base/comm.h"
#include "base/json.h"
#include "report/report_impl.h"

// Significant digits of every number in metrics.json.
#define DIGITS 10
// Version 1: before the protocols (no metrics_version key); 2: protocols,
// lr_search settings and per-baseline search results, step_curves, per_class.
#define DD_METRICS_VERSION 2

static void str_or_empty(dd_json *w, const char *s) {
    dd_json_string(w, s ? s : "");
}

/* Opens a row's object: the first metric's mean and std, the loss, the
 * network count. The caller adds its own members and closes it. */
static void json_stats(dd_json *w, const char *metric, const dd_eval_stats *st) {
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_keyf(w, "test_%s_mean", metric);
    dd_json_double(w, st->mean, DIGITS);
    dd_json_keyf(w, "test_%s_std", metric);
    dd_json_double(w, st->std, DIGITS);
    dd_json_key(w, "test_loss");
    dd_json_double(w, st->loss, DIGITS);
    dd_json_key(w, "nets");
    dd_json_int(w, st->nets);
}

static void json_lrs(dd_json *w, const float *lrs, int K) {
    dd_json_array(w, DD_JSON_INLINE);
    for (int k = 0; k < K; k++)
        dd_json_double(w, lrs[k], DIGITS);
    dd_json_array_end(w);
}

/* A baseline row: its stats with optimised step sizes, the step sizes, and
 * its stats with the initial step size. */
static void json_baseline(dd_json *w, const char *metric, const dd_eval_baseline *b, int K) {
    json_stats(w, metric, &b->stats);
    dd_json_key(w, "lr_search_iterations");
    dd_json_int(w, b->search.iterations);
    dd_json_key(w, "lr_search_converged");
    dd_json_bool(w, b->search.converged);
    dd_json_key(w, "lrs");
    if (b->lrs)
        json_lrs(w, b->lrs, K);
    else
        dd_json_null(w);
    dd_json_key(w, "initial_lr");
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_keyf(w, "test_%s_mean", metric);
    dd_json_double(w, b->stats_init_lr.mean, DIGITS);
    dd_json_keyf(w, "test_%s_std", metric);
    dd_json_double(w, b->stats_init_lr.std, DIGITS);
    dd_json_object_end(w);
    dd_json_object_end(w);
}

/* Value of an objective report key on a row ("after") and the untrained
 * networks ("before"); null when the row lacks that metric. */
static void json_report_value(dd_json *w, const dd_objective_report_key *k,
                              const dd_eval_stats *before, const dd_eval_stats *after) {
    const int after_stat = k->stat == DD_REPORT_AFTER_MEAN || k->stat == DD_REPORT_AFTER_STD;
    const int is_std = k->stat == DD_REPORT_BEFORE_STD || k->stat == DD_REPORT_AFTER_STD;
    const dd_eval_stats *st = after_stat ? after : before;
    if (!st || k->metric < 0 || k->metric >= st->n_metrics)
        dd_json_null(w);
    else
        dd_json_double(w, is_std ? st->metric_std[k->metric] : st->metric_mean[k->metric], DIGITS);
}

/* The "after" keys of one baseline row. */
static void json_objective_baseline(dd_json *w, const dd_objective_report_key *keys,
                                    const char *name, const dd_eval_stats *st) {
    dd_json_key(w, name);
    dd_json_object(w, DD_JSON_INLINE);
    for (int i = 0; keys[i].key; i++) {
        if (keys[i].stat != DD_REPORT_AFTER_MEAN && keys[i].stat != DD_REPORT_AFTER_STD) continue;
        dd_json_key(w, keys[i].key);
        json_report_value(w, &keys[i], NULL, st);
    }
    dd_json_object_end(w);
}

/* The objective's own section: its declared keys for the distilled set
 * (after) against the untrained evaluation networks (before), the number of
 * networks, and the "after" keys of every baseline. */
static void json_objective_section(dd_json *w, const dd_eval_report *ev) {
    const dd_objective_report_key *keys = ev->report_keys;
    dd_json_key(w, ev->report_section);
    dd_json_object(w, DD_JSON_LINES);
    for (int i = 0; keys[i].key; i++) {
        dd_json_key(w, keys[i].key);
        json_report_value(w, &keys[i], &ev->untrained, ev->has_distilled ? &ev->distilled : NULL);
    }
    dd_json_key(w, "nets");
    dd_json_int(w, ev->nets);
    dd_json_key(w, "units");
    dd_json_string(w, "fractions in [0, 1]");
    dd_json_key(w, "baselines");
    dd_json_object(w, DD_JSON_LINES);
    for (int b = 0; b < ev->n_baselines; b++)
        json_objective_baseline(w, keys, dd_baseline_name(ev->baselines[b].kind),
                                &ev->baselines[b].stats);
    for (int b = 0; b < ev->n_extra; b++)
        json_objective_baseline(w, keys, ev->extra[b].name, &ev->extra[b].stats);
    if (ev->has_full_training)
        json_objective_baseline(w, keys, "full_training", &ev->full_training);
    dd_json_object_end(w);
    dd_json_object_end(w);
}

/* The setting: names, the distillation's configuration and statistics. */
static void json_setting(dd_json *w, const dd_report_info *r, const char *metric) {
    dd_json_key(w, "run");
    str_or_empty(w, r->run_name);
    dd_json_key(w, "dataset");
    str_or_empty(w, r->dataset);
    dd_json_key(w, "model");
    str_or_empty(w, r->model);
    dd_json_key(w, "objective");
    str_or_empty(w, r->objective);
    dd_json_key(w, "metric");
    dd_json_string(w, metric);
    if (r->distill) {
        const dd_distill_config *c = r->distill;
        dd_json_key(w, "init_mode");
        dd_json_string(w, dd_init_mode_str(c->init_mode));
        dd_json_key(w, "steps");
        dd_json_int(w, c->steps);
        dd_json_same_line(w);
        dd_json_key(w, "epochs");
        dd_json_int(w, c->epochs);
        dd_json_same_line(w);
        dd_json_key(w, "images_per_class");
        dd_json_int(w, c->images_per_class);
        if (r->set) {
            dd_json_same_line(w);
            dd_json_key(w, "images");
            dd_json_int(w, (long long)r->set->steps * (long long)r->set->per_step);
        }
        dd_json_key(w, "batch_real");
        dd_json_int(w, c->batch_real);
        dd_json_same_line(w);
        dd_json_key(w, "seed");
        dd_json_uint(w, c->seed);
    }
    if (r->stats) {
        dd_json_key(w, "iterations");
        dd_json_int(w, r->stats->iterations);
        dd_json_key(w, "seconds_per_iteration");
        dd_json_double(w, r->stats->seconds_per_iteration, DIGITS);
        dd_json_key(w, "distill_seconds");
        dd_json_double(w, r->stats->seconds, DIGITS);
        dd_json_key(w, "final_outer_loss");
        dd_json_double(w, r->stats->last_loss, DIGITS);
        dd_json_keyf(w, "final_batch_%s", metric);
        dd_json_double(w, r->stats->last_metric, DIGITS);
    }
}

static void json_doubles(dd_json *w, const double *v, int n) {
    dd_json_array(w, DD_JSON_INLINE);
    for (int i = 0; i < n; i++)
        dd_json_double(w, v[i], DIGITS);
    dd_json_array_end(w);
}

static const char *row_name(const dd_eval_baseline *b) {
    return b->name ? b->name : dd_baseline_name(b->kind);
}

/* A row of a stats-only protocol: {test_<metric>_mean, _std, test_loss, nets}. */
static void json_row(dd_json *w, const char *key, const char *metric, const dd_eval_stats *st) {
    dd_json_key(w, key);
    json_stats(w, metric, st);
    dd_json_object_end(w);
}

/* The step-size search's settings (how every baseline was tuned). */
static void json_search(dd_json *w, const dd_lr_search *s) {
    dd_json_key(w, "lr_search");
    dd_json_object(w, DD_JSON_INLINE);
    dd_json_key(w, "max_iterations");
    dd_json_int(w, s->max_iterations);
    dd_json_key(w, "batch");
    dd_json_int(w, s->batch);
    dd_json_key(w, "window");
    dd_json_int(w, s->window);
    dd_json_key(w, "adam_lr");
    dd_json_double(w, s->adam_lr, DIGITS);
    dd_json_key(w, "tol");
    dd_json_double(w, s->tol, DIGITS);
    dd_json_key(w, "halvings");
    dd_json_int(w, s->halvings);
    dd_json_object_end(w);
}

/* step_curves: the first metric after 0 .. K inner steps, per set. */
static void json_curves(dd_json *w, const dd_eval_report *ev) {
    dd_json_key(w, "step_curves");
    dd_json_object(w, DD_JSON_LINES);
    if (ev->curve_distilled) {
        dd_json_key(w, "distilled");
        json_doubles(w, ev->curve_distilled, ev->curve_len);
    }
    for (int i = 0; i < ev->n_baselines + ev->n_extra; i++) {
        const dd_eval_baseline *b =
            i < ev->n_baselines ? &ev->baselines[i] : &ev->extra[i - ev->n_baselines];
        if (!b->curve) continue;
        dd_json_key(w, row_name(b));
        json_doubles(w, b->curve, ev->curve_len);
    }
    dd_json_object_end(w);
}

static void json_standard(dd_json *w, const dd_eval_report *ev, const char *metric) {
    const dd_standard_training *st = &ev->standard;
    dd_json_key(w, "standard_training");
    dd_json_object(w, DD_JSON_LINES);
    dd_json_key(w, "epochs");
    dd_json_int(w, st->epochs);
    dd_json_same_line(w);
    dd_json_key(w, "nets");
    dd_json_int(w, st->nets);
    dd_json_same_line(w);
    dd_json_key(w, "batch");
    dd_json_int(w, st->batch);
    dd_json_key(w, "lr");
    dd_json_double(w, st->lr, DIGITS);
    dd_json_same_line(w);
    dd_json_key(w, "momentum");
    dd_json_double(w, st->momentum, DIGITS);
    dd_json_same_line(w);
    dd_json_key(w, "weight_decay");
    dd_json_double(w, st->weight_decay, DIGITS);
    dd_json_key(w, "crop");
    dd_json_int(w, st->crop);
    dd_json_same_line(w);
    dd_json_key(w, "flip");
    dd_json_bool(w, st->flip);
    if (ev->standard_distilled.nets) json_row(w, "distilled", metric, &ev->standard_distilled);
    dd_json_key(w, "baselines");
    dd_json_object(w, DD_JSON_LINES);
    for (int i = 0; i < ev->n_baselines; i++)
        json_row(w, row_name(&ev->baselines[i]), metric, &ev->baselines[i].standard);
    for (int i = 0; i < ev->n_extra; i++)
        json_row(w, row_name(&ev->extra[i]), metric, &ev->extra[i].standard);
    dd_json_object_end(w);
    dd_json_object_end(w);
}

static void json_arch_row(dd_json *w, const char *key, const char *metric, const dd_eval_stats *st,
                          const dd_lr_search_result *res) {
    dd_json_key(w, key);
    json_stats(w, metric, st);
    dd_json_key(w, "lr_search_iterations");
    dd_json_int(w, res->iterations);
    dd_json_key(w, "lr_search_converged");
    dd_json_bool(w, res->converged);
    dd_json_object_end(w);
}

static void json_cross(dd_json *w, const dd_eval_report *ev, const char *metric) {
    dd_json_key(w, "cross_architecture");
    dd_json_object(w, DD_JSON_LINES);
    for (int a = 0; a < ev->n_arch; a++) {
        const struct dd_eval_arch_report *ar = &ev->arch[a];
        dd_json_key(w, ar->name);
        dd_json_object(w, DD_JSON_LINES);
        dd_json_key(w, "nets");
        dd_json_int(w, ar->nets);
        json_row(w, "untrained", metric, &ar->untrained);
        if (ar->distilled.nets)
            json_arch_row(w, "distilled", metric, &ar->distilled, &ar->distilled_search);
        dd_json_key(w, "baselines");
        dd_json_object(w, DD_JSON_LINES);
        for (int i = 0; i < ev->n_baselines; i++)
            json_arch_row(w, row_name(&ev->baselines[i]), metric, &ar->baselines[i],
                          &ar->baseline_search[i]);
        for (int i = 0; i < ev->n_extra; i++)
            json_arch_row(w, row_name(&ev->extra[i]), metric, &ar->extra[i], &ar->extra_search[i]);
        dd_json_object_end(w);
        dd_json_object_end(w);
    }
    dd_json_object_end(w);
}

/* The evaluation: the distilled rows, the untrained networks, the baselines,
 * the full-training reference and the objective's section. */
static void json_evaluation(dd_json *w, const dd_report_info *r, const char *metric) {
    const dd_eval_report *ev = r->eval;
    const int K = r->set ? r->set->steps * r->set->epochs
                         : (r->distill ? r->distill->steps * r->distill->epochs : 0);
    dd_json_key(w, "protocols");
    dd_json_array(w, DD_JSON_INLINE);
    for (unsigned bit = 1; bit <= DD_PROTOCOL_STANDARD; bit <<= 1)
        if (ev->protocols & bit) dd_json_string(w, dd_protocol_name(bit));
    dd_json_array_end(w);
    if (ev->has_distilled) {
        dd_json_key(w, "distilled");
        json_stats(w, metric, &ev->distilled);
        dd_json_object_end(w);
        dd_json_key(w, "distilled_fixed_lr");
        json_stats(w, metric, &ev->fixed_lr);
        dd_json_key(w, "lr");
        dd_json_double(w, ev->fixed_lr_value, DIGITS);
        dd_json_object_end(w);
    }
    dd_json_key(w, "untrained");
    json_stats(w, metric, &ev->untrained);
    dd_json_object_end(w);
    if (ev->protocols & DD_PROTOCOL_STEPS) {
        dd_json_key(w, "baselines");
        dd_json_object(w, DD_JSON_LINES);
        for (int i = 0; i < ev->n_baselines; i++) {
            dd_json_key(w, dd_baseline_name(ev->baselines[i].kind));
            json_baseline(w, metric, &ev->baselines[i], K);
        }
        for (int i = 0; i < ev->n_extra; i++) {
            dd_json_key(w, ev->extra[i].name);
            json_baseline(w, metric, &ev->extra[i], K);
        }
        dd_json_object_end(w);
    }
    if (ev->has_full_training) {
        dd_json_key(w, "full_training");
        json_stats(w, metric, &ev->full_training);
        dd_json_key(w, "epochs");
        dd_json_int(w, ev->full_training_epochs);
        dd_json_object_end(w);
    }
    if (ev->best_of_random_n > 0) {
        dd_json_key(w, "best_of_random_selection");
        dd_json_object(w, DD_JSON_INLINE);
        dd_json_key(w, "subsets");
        dd_json_int(w, ev->best_of_random_n);
        dd_json_key(w, "holdout_images");
        dd_json_int(w, ev->best_of_random_holdout);
        dd_json_object_end(w);
    }
    if (ev->has_knn) {
        // test accuracy of nearest-neighbour classification with each set as
        // the reference (docs/output.md)
        dd_json_key(w, "knn");
        dd_json_object(w, DD_JSON_LINES);
        dd_json_key(w, "k");
        dd_json_int(w, ev->knn_k);
        dd_json_key(w, "distance");
        dd_json_string(w, dd_knn_distance_name(ev->knn_distance));
        if (ev->knn_has_distilled) {
            dd_json_key(w, "distilled");
            dd_json_double(w, ev->knn_distilled, DIGITS);
        }
        for (int i = 0; i < ev->n_baselines; i++) {
            dd_json_key(w, dd_baseline_name(ev->baselines[i].kind));
            dd_json_double(w, ev->baselines[i].knn, DIGITS);
        }
        dd_json_object_end(w);
    }
    if (ev->report_section && ev->report_keys) json_objective_section(w, ev);
    json_search(w, &ev->search);
    if (ev->curve_len > 0) json_curves(w, ev);
    if (ev->n_classes > 0 && ev->class_before && ev->class_after) {
        dd_json_key(w, "per_class");
        dd_json_object(w, DD_JSON_LINES);
        dd_json_key(w, "before");
        json_doubles(w, ev->class_before, ev->n_classes);
        dd_json_key(w, "after");
        json_doubles(w, ev->class_after, ev->n_classes);
        dd_json_object_end(w);
    }
    if (ev->protocols & DD_PROTOCOL_STANDARD) json_standard(w, ev, metric);
    if (ev->protocols & DD_PROTOCOL_CROSS_ARCH) json_cross(w, ev, metric);
    dd_json_key(w, "evaluate_seconds");
    dd_json_double(w, ev->seconds, DIGITS);
}

dd_status dd_report_write_metrics(const dd_report_info *r) {
    const char *metric = r->eval && r->eval->metric ? r->eval->metric : "accuracy";
    dd_fs_atomic a;
    DD_TRY(dd_report_open(&a, r->out_dir, "metrics.json"));
    dd_json w;
    dd_json_init_file(&w, a.f);
    dd_json_object(&w, DD_JSON_LINES);
    // The layout's version (docs/output.md); bumped when a key changes meaning or goes away.
    dd_json_key(&w, "metrics_version");
    dd_json_int(&w, DD_METRICS_VERSION);
    json_setting(&w, r, metric);
    dd_json_key(&w, "threads");
    dd_json_int(&w, r->threads);
    dd_json_key(&w, "ranks"); // MPI processes of the run (1 without mpirun)
    dd_json_int(&w, dd_comm_size());
    dd_json_key(&w, "peak_memory_mib");
    dd_json_double(&w, dd_peak_memory_mib(), DIGITS);
    if (r->set) {
        dd_json_key(&w, "lrs");
        json_lrs(&w, r->set->lrs, r->set->steps * r->set->epochs);
    }
    if (r->eval) json_evaluation(&w, r, metric);
    dd_json_object_end(&w);
    dd_status s = dd_json_finish(&w);
    if (s != DD_OK) {
        dd_fs_atomic_abort(&a);
        dd_error_prefix("%s/metrics.json", r->out_dir);
        return s;
    }
    return dd_fs_atomic_commit(&a);
}
