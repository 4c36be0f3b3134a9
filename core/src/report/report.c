/* distill — run outputs: image grid, step sizes, metrics.json, report.md
 * and the reusable export of the distilled set. */
#define _POSIX_C_SOURCE 200809L
#include "report/report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "distill/image.h"
#include "distill/log.h"
#include "distill/distill.h"
#include "distill/tensor.h"

double dd_peak_memory_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0; // Linux reports KiB
}

/* ---- atomic text files -------------------------------------------------- */

typedef struct out_file {
    FILE *f;
    char path[4096], tmp[4120];
} out_file;

static dd_status out_open(out_file *o, const char *dir, const char *name) {
    int n = snprintf(o->path, sizeof o->path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof o->path)
        return dd_error_set(DD_ERR_INVALID, "%s/%s: path too long", dir, name);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path);
    o->f = fopen(o->tmp, "wb");
    if (!o->f) return dd_error_set(DD_ERR_IO, "%s: cannot create: %s", o->tmp, strerror(errno));
    return DD_OK;
}

static dd_status out_close(out_file *o) {
    int bad = ferror(o->f);
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad) {
        remove(o->tmp);
        return dd_error_set(DD_ERR_IO, "%s: write failed", o->tmp);
    }
    if (rename(o->tmp, o->path) != 0) {
        dd_status s = dd_error_set(DD_ERR_IO, "%s: cannot rename to %s: %s", o->tmp, o->path,
                                   strerror(errno));
        remove(o->tmp);
        return s;
    }
    return DD_OK;
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* JSON has no NaN/Inf: write null. */
static void json_num(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.10g", v);
    else
        fputs("null", f);
}

/* ---- PNG grid ----------------------------------------------------------- */

dd_status dd_report_png(const dd_distilled *set, const char *path, int scale) {
    if (set->channels != 1 && set->channels != 3)
        return dd_error_set(DD_ERR_UNSUPPORTED, "%s: cannot draw %d-channel images", path,
                            set->channels);
    const size_t D = dd_distilled_image_size(set);
    const int K = set->n_classes, cols = set->steps * set->images_per_class;
    const int n = K * cols;
    float *grid = dd_alloc_floats((size_t)n * D);
    if (!grid) return dd_error_set(DD_ERR_NOMEM, "report: out of memory");
    // Row c, column (s, i): image j = i·K + c of step s.
    size_t t = 0;
    for (int c = 0; c < K; c++)
        for (int s = 0; s < set->steps; s++)
            for (int i = 0; i < set->images_per_class; i++, t++) {
                const size_t j = (size_t)i * (size_t)K + (size_t)c;
                memcpy(grid + t * D, set->images + ((size_t)s * (size_t)set->per_step + j) * D,
                       D * sizeof(float));
            }
    dd_status s = dd_image_grid_png(path, grid, n, set->channels, set->height, set->width,
                                    set->mean, set->std, K, cols, scale < 1 ? 1 : scale);
    dd_free(grid);
    return s;
}

/* ---- metrics.json and report.md ----------------------------------------- */

static int is_percent(const char *metric) {
    return metric && strstr(metric, "acc") != NULL;
}

static void json_stats(FILE *f, const char *metric, const dd_eval_stats *st) {
    fprintf(f, "{\"test_%s_mean\": ", metric);
    json_num(f, st->mean);
    fprintf(f, ", \"test_%s_std\": ", metric);
    json_num(f, st->std);
    fprintf(f, ", \"test_loss\": ");
    json_num(f, st->loss);
    fprintf(f, ", \"nets\": %d", st->nets);
}

static void json_lrs(FILE *f, const float *lrs, int K) {
    fputc('[', f);
    for (int k = 0; k < K; k++) {
        if (k) fputs(", ", f);
        json_num(f, lrs[k]);
    }
    fputc(']', f);
}

/* Value of an objective report key on a row ("after") and the untrained
 * networks ("before"); null when the row lacks that metric. */
static void json_report_value(FILE *f, const dd_objective_report_key *k,
                              const dd_eval_stats *before, const dd_eval_stats *after) {
    const int after_stat = k->stat == DD_REPORT_AFTER_MEAN || k->stat == DD_REPORT_AFTER_STD;
    const int is_std = k->stat == DD_REPORT_BEFORE_STD || k->stat == DD_REPORT_AFTER_STD;
    const dd_eval_stats *st = after_stat ? after : before;
    if (!st || k->metric < 0 || k->metric >= st->n_metrics) {
        fputs("null", f);
        return;
    }
    json_num(f, is_std ? st->metric_std[k->metric] : st->metric_mean[k->metric]);
}

/* The objective's own section: its declared keys for the distilled set
 * (after) against the untrained evaluation networks (before), the number of
 * networks, and the "after" keys of every baseline. */
static void json_objective_section(FILE *f, const dd_eval_report *ev) {
    const dd_objective_report_key *keys = ev->report_keys;
    fprintf(f, ",\n  ");
    json_str(f, ev->report_section);
    fprintf(f, ": {");
    for (int i = 0; keys[i].key; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_str(f, keys[i].key);
        fprintf(f, ": ");
        json_report_value(f, &keys[i], &ev->untrained, ev->has_distilled ? &ev->distilled : NULL);
    }
    fprintf(f, ",\n    \"nets\": %d,\n    \"units\": \"fractions in [0, 1]\"", ev->nets);
    fprintf(f, ",\n    \"baselines\": {");
    int first = 1;
    for (int b = 0; b < ev->n_baselines + ev->n_extra + ev->has_full_training; b++) {
        const dd_eval_stats *st;
        const char *name;
        if (b < ev->n_baselines) {
            st = &ev->baselines[b].stats;
            name = dd_baseline_name(ev->baselines[b].kind);
        } else if (b < ev->n_baselines + ev->n_extra) {
            st = &ev->extra[b - ev->n_baselines].stats;
            name = ev->extra[b - ev->n_baselines].name;
        } else {
            st = &ev->full_training;
            name = "full_training";
        }
        fprintf(f, "%s\n      ", first ? "" : ",");
        first = 0;
        json_str(f, name);
        fprintf(f, ": {");
        int fk = 1;
        for (int i = 0; keys[i].key; i++) {
            if (keys[i].stat != DD_REPORT_AFTER_MEAN && keys[i].stat != DD_REPORT_AFTER_STD)
                continue;
            fprintf(f, "%s", fk ? "" : ", ");
            fk = 0;
            json_str(f, keys[i].key);
            fprintf(f, ": ");
            json_report_value(f, &keys[i], NULL, st);
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n    }\n  }");
}

static dd_status write_metrics_json(const dd_report_info *r) {
    out_file o;
    DD_TRY(out_open(&o, r->out_dir, "metrics.json"));
    FILE *f = o.f;
    const dd_eval_report *ev = r->eval;
    const char *metric = ev && ev->metric ? ev->metric : "accuracy";
    fprintf(f, "{\n  \"run\": ");
    json_str(f, r->run_name);
    fprintf(f, ",\n  \"dataset\": ");
    json_str(f, r->dataset);
    fprintf(f, ",\n  \"model\": ");
    json_str(f, r->model);
    fprintf(f, ",\n  \"objective\": ");
    json_str(f, r->objective);
    fprintf(f, ",\n  \"metric\": ");
    json_str(f, metric);
    if (r->distill) {
        const dd_distill_config *c = r->distill;
        fprintf(f, ",\n  \"init_mode\": ");
        json_str(f, dd_init_mode_str(c->init_mode));
        fprintf(f, ",\n  \"steps\": %d, \"epochs\": %d, \"images_per_class\": %d", c->steps,
                c->epochs, c->images_per_class);
        if (r->set)
            fprintf(f, ", \"images\": %lld",
                    (long long)r->set->steps * (long long)r->set->per_step);
        fprintf(f, ",\n  \"batch_real\": %lld, \"seed\": %llu", (long long)c->batch_real,
                (unsigned long long)c->seed);
    }
    if (r->stats) {
        fprintf(f, ",\n  \"iterations\": %lld", (long long)r->stats->iterations);
        fprintf(f, ",\n  \"seconds_per_iteration\": ");
        json_num(f, r->stats->seconds_per_iteration);
        fprintf(f, ",\n  \"distill_seconds\": ");
        json_num(f, r->stats->seconds);
        fprintf(f, ",\n  \"final_outer_loss\": ");
        json_num(f, r->stats->last_loss);
        fprintf(f, ",\n  \"final_batch_%s\": ", metric);
        json_num(f, r->stats->last_metric);
    }
    fprintf(f, ",\n  \"threads\": %d", r->threads);
    fprintf(f, ",\n  \"peak_memory_mib\": ");
    json_num(f, dd_peak_memory_mib());
    if (r->set) {
        fprintf(f, ",\n  \"lrs\": ");
        json_lrs(f, r->set->lrs, r->set->steps * r->set->epochs);
    }
    if (ev) {
        const int K = r->set ? r->set->steps * r->set->epochs
                             : (r->distill ? r->distill->steps * r->distill->epochs : 0);
        if (ev->has_distilled) {
            fprintf(f, ",\n  \"distilled\": ");
            json_stats(f, metric, &ev->distilled);
            fprintf(f, "}");
            fprintf(f, ",\n  \"distilled_fixed_lr\": ");
            json_stats(f, metric, &ev->fixed_lr);
            fprintf(f, ", \"lr\": ");
            json_num(f, ev->fixed_lr_value);
            fprintf(f, "}");
        }
        fprintf(f, ",\n  \"untrained\": ");
        json_stats(f, metric, &ev->untrained);
        fprintf(f, "}");
        fprintf(f, ",\n  \"baselines\": {");
        for (int i = 0; i < ev->n_baselines; i++) {
            const dd_eval_baseline *b = &ev->baselines[i];
            fprintf(f, "%s\n    ", i ? "," : "");
            json_str(f, dd_baseline_name(b->kind));
            fprintf(f, ": ");
            json_stats(f, metric, &b->stats);
            fprintf(f, ", \"lr_search_iterations\": %lld, \"lrs\": ", (long long)ev->lr_search);
            if (b->lrs)
                json_lrs(f, b->lrs, K);
            else
                fputs("null", f);
            fprintf(f, ", \"initial_lr\": {\"test_%s_mean\": ", metric);
            json_num(f, b->stats_init_lr.mean);
            fprintf(f, ", \"test_%s_std\": ", metric);
            json_num(f, b->stats_init_lr.std);
            fprintf(f, "}}");
        }
        for (int i = 0; i < ev->n_extra; i++) {
            const dd_eval_baseline *b = &ev->extra[i];
            fprintf(f, "%s\n    ", ev->n_baselines + i ? "," : "");
            json_str(f, b->name);
            fprintf(f, ": ");
            json_stats(f, metric, &b->stats);
            fprintf(f, ", \"lr_search_iterations\": %lld, \"lrs\": ", (long long)ev->lr_search);
            if (b->lrs)
                json_lrs(f, b->lrs, K);
            else
                fputs("null", f);
            fprintf(f, ", \"initial_lr\": {\"test_%s_mean\": ", metric);
            json_num(f, b->stats_init_lr.mean);
            fprintf(f, ", \"test_%s_std\": ", metric);
            json_num(f, b->stats_init_lr.std);
            fprintf(f, "}}");
        }
        fprintf(f, "\n  }");
        if (ev->has_full_training) {
            fprintf(f, ",\n  \"full_training\": ");
            json_stats(f, metric, &ev->full_training);
            fprintf(f, ", \"epochs\": %d}", ev->full_training_epochs);
        }
        if (ev->report_section && ev->report_keys) json_objective_section(f, ev);
        fprintf(f, ",\n  \"evaluate_seconds\": ");
        json_num(f, ev->seconds);
    }
    fprintf(f, "\n}\n");
    return out_close(&o);
}

static void md_value(FILE *f, const char *metric, const dd_eval_stats *st) {
    if (is_percent(metric))
        fprintf(f, "%.2f ± %.2f %%", 100.0 * st->mean, 100.0 * st->std);
    else
        fprintf(f, "%.4f ± %.4f", st->mean, st->std);
}

static const char *baseline_title(dd_baseline_kind k) {
    switch (k) {
    case DD_BASELINE_RANDOM:
        return "Random real images";
    case DD_BASELINE_AVERAGE:
        return "Per-class average images";
    case DD_BASELINE_KMEANS:
        return "Per-class k-means centroids";
    }
    return "?";
}

static dd_status write_report_md(const dd_report_info *r) {
    out_file o;
    DD_TRY(out_open(&o, r->out_dir, "report.md"));
    FILE *f = o.f;
    const dd_eval_report *ev = r->eval;
    const dd_distill_config *c = r->distill;
    const char *metric = ev && ev->metric ? ev->metric : "accuracy";
    fprintf(f, "# Dataset distillation: %s\n\n", r->run_name ? r->run_name : "run");
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    fprintf(f, "Written %s by distill %s.\n\n", when, dd_version());
    fprintf(f, "## Setting\n\n| | |\n|---|---|\n");
    fprintf(f, "| dataset | %s |\n| model | %s (%s backend) |\n| objective | %s |\n",
            r->dataset ? r->dataset : "?", r->model ? r->model : "?", r->backend ? r->backend : "?",
            r->objective ? r->objective : "?");
    if (c) {
        fprintf(f, "| init mode | %s (scheme %s) |\n", dd_init_mode_str(c->init_mode),
                c->init_scheme ? c->init_scheme : "xavier");
        fprintf(f, "| distilled images | %d steps × %d epochs × %d per class", c->steps, c->epochs,
                c->images_per_class);
        if (r->set) fprintf(f, " = %lld images", (long long)r->set->steps * r->set->per_step);
        fprintf(f, " |\n| real batch | %lld |\n| seed | %llu |\n", (long long)c->batch_real,
                (unsigned long long)c->seed);
        if (c->init_mode == DD_INIT_RANDOM)
            fprintf(f, "| inits per iteration | %d |\n", c->nets_per_iteration);
    }
    if (r->stats) {
        fprintf(f, "| iterations | %lld |\n", (long long)r->stats->iterations);
        fprintf(f, "| seconds per iteration | %.3f |\n", r->stats->seconds_per_iteration);
        fprintf(f, "| final outer loss | %.4f |\n", r->stats->last_loss);
    }
    fprintf(f, "| threads | %d |\n| peak memory | %.0f MiB |\n\n", r->threads,
            dd_peak_memory_mib());
    if (ev) {
        fprintf(f,
                "## Results\n\nTest %s of networks trained on %s images for the same %d "
                "steps × %d epochs, ",
                metric, r->set ? "the same number of" : "each set's", c ? c->steps : 0,
                c ? c->epochs : 0);
        if (ev->init_mode == DD_INIT_FIXED)
            fprintf(f, "from the fixed initialisation used in distillation (one network).\n\n");
        else if (ev->init_mode == DD_INIT_PRETRAINED_FIXED)
            fprintf(f, "from the pretrained network used in distillation (one network).\n\n");
        else if (ev->init_mode == DD_INIT_PRETRAINED_RANDOM)
            fprintf(f,
                    "from %d held-out pretrained networks never used in distillation "
                    "(mean ± std).\n\n",
                    ev->nets);
        else
            fprintf(f,
                    "from %d random initialisations never used in distillation "
                    "(mean ± std).\n\n",
                    ev->nets);
        fprintf(f, "| method | test %s | note |\n|---|---|---|\n", metric);
        if (ev->has_distilled) {
            fprintf(f, "| **Dataset distillation (ours)** | **");
            md_value(f, metric, &ev->distilled);
            fprintf(f, "** | learned step sizes |\n| Distilled images, fixed step size | ");
            md_value(f, metric, &ev->fixed_lr);
            fprintf(f, " | lr %g |\n", ev->fixed_lr_value);
        }
        for (int i = 0; i < ev->n_baselines; i++) {
            const dd_eval_baseline *b = &ev->baselines[i];
            fprintf(f, "| %s | ", baseline_title(b->kind));
            md_value(f, metric, &b->stats);
            fprintf(f, " | step sizes optimised (%lld iterations); with lr_init: ",
                    (long long)ev->lr_search);
            md_value(f, metric, &b->stats_init_lr);
            fprintf(f, " |\n");
        }
        for (int i = 0; i < ev->n_extra; i++) {
            const dd_eval_baseline *b = &ev->extra[i];
            fprintf(f, "| Objective baseline: %s | ", b->name);
            md_value(f, metric, &b->stats);
            fprintf(f, " | step sizes optimised (%lld iterations); with lr_init: ",
                    (long long)ev->lr_search);
            md_value(f, metric, &b->stats_init_lr);
            fprintf(f, " |\n");
        }
        if (ev->has_full_training) {
            fprintf(f, "| Full training set (reference) | ");
            md_value(f, metric, &ev->full_training);
            fprintf(f, " | %d epoch(s) of SGD on every real training image |\n",
                    ev->full_training_epochs);
        }
        fprintf(f, "| Untrained network | ");
        md_value(f, metric, &ev->untrained);
        fprintf(f, " | θ0 before any step |\n\n");
        if (ev->has_distilled) {
            int beats = 1;
            for (int i = 0; i < ev->n_baselines; i++)
                beats &= ev->distilled.mean > ev->baselines[i].stats.mean;
            fprintf(f, "Distilled images %s every baseline.\n\n",
                    ev->n_baselines == 0 ? "were not compared with any"
                    : beats              ? "beat"
                                         : "do **not** beat");
        }
        if (ev->report_section && ev->report_keys && ev->metric_names) {
            fprintf(f,
                    "### %s\n\n| metric (mean ± std over %d nets) | before the distilled steps "
                    "| after |\n|---|---|---|\n",
                    ev->report_section, ev->nets);
            const dd_eval_stats *a = ev->has_distilled ? &ev->distilled : NULL;
            for (int i = 0; i < ev->n_metrics && i < ev->untrained.n_metrics; i++) {
                fprintf(f, "| %s | %.2f ± %.2f %% | ", ev->metric_names[i],
                        100.0 * ev->untrained.metric_mean[i], 100.0 * ev->untrained.metric_std[i]);
                if (a && i < a->n_metrics)
                    fprintf(f, "%.2f ± %.2f %% |\n", 100.0 * a->metric_mean[i],
                            100.0 * a->metric_std[i]);
                else
                    fprintf(f, "— |\n");
            }
            fprintf(f, "\n");
        }
        fprintf(f, "Evaluation took %.1f s.\n\n", ev->seconds);
    }
    if (r->set) {
        fprintf(f, "## Distilled images\n\n![distilled images](distilled.png)\n\n");
        fprintf(f, "One row per class (top to bottom: ");
        for (int k = 0; k < r->set->n_classes; k++)
            fprintf(f, "%s%s", k ? ", " : "", r->class_names ? r->class_names[k] : "?");
        fprintf(f, "), one column per step%s.\n\n",
                r->set->images_per_class > 1 ? " (images of a step side by side)" : "");
        fprintf(f, "## Learned step sizes\n\n| epoch |");
        for (int s = 0; s < r->set->steps; s++)
            fprintf(f, " step %d |", s);
        fprintf(f, "\n|---|");
        for (int s = 0; s < r->set->steps; s++)
            fprintf(f, "---|");
        fprintf(f, "\n");
        for (int e = 0; e < r->set->epochs; e++) {
            fprintf(f, "| %d |", e);
            for (int s = 0; s < r->set->steps; s++)
                fprintf(f, " %.4f |", (double)r->set->lrs[e * r->set->steps + s]);
            fprintf(f, "\n");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "## Files\n\n- `metrics.json` — every number above\n");
    if (r->set)
        fprintf(f,
                "- `distilled.png`, `lrs.csv`, `distilled-images.idx`, "
                "`distilled-labels.idx`, `distilled.json` — the distilled set (see "
                "docs/output.md)\n- `checkpoint.bin` — resumable state (`distill run … --resume`)\n");
    if (r->config_yaml)
        fprintf(f, "\n## Pipeline\n\n```yaml\n%s%s```\n", r->config_yaml,
                r->config_yaml[0] && r->config_yaml[strlen(r->config_yaml) - 1] == '\n' ? ""
                                                                                        : "\n");
    return out_close(&o);
}

dd_status dd_report_write(const dd_report_info *r) {
    if (!r->out_dir) return dd_error_set(DD_ERR_INVALID, "report: no output directory");
    if (r->set) {
        if (r->png) {
            char path[4096];
            snprintf(path, sizeof path, "%s/distilled.png", r->out_dir);
            dd_status s = dd_report_png(r->set, path, r->png_scale > 0 ? r->png_scale : 4);
            if (s == DD_ERR_UNSUPPORTED) {
                dd_warn("report: %s", dd_error_message());
                dd_error_clear();
            } else if (s != DD_OK) {
                return s;
            }
        }
        DD_TRY(dd_distilled_save(r->set, r->class_names, r->out_dir));
    }
    DD_TRY(write_metrics_json(r));
    return write_report_md(r);
}
