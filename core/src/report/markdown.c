/* distill — report.md: the run's setting, the results table against the
 * baselines, the distilled images and step sizes, the files, the pipeline. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "distill/distill.h"
#include "report/report_impl.h"

static int is_percent(const char *metric) {
    return metric && strstr(metric, "acc") != NULL;
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
    case DD_BASELINE_BEST_OF_RANDOM:
        return "Best of N random subsets";
    }
    return "?";
}

static void md_setting(FILE *f, const dd_report_info *r) {
    const dd_distill_config *c = r->distill;
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
}

/* The sentence above the results table: what the networks were trained on
 * and from which initialisations. */
static void md_results_intro(FILE *f, const dd_report_info *r, const char *metric) {
    const dd_eval_report *ev = r->eval;
    const dd_distill_config *c = r->distill;
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
}

/* A baseline's row: with optimised step sizes, and with lr_init. */
static void md_baseline_row(FILE *f, const char *metric, const dd_eval_baseline *b) {
    md_value(f, metric, &b->stats);
    fprintf(f, " | step sizes optimised (%lld iterations, %s); with lr_init: ",
            (long long)b->search.iterations, b->search.converged ? "converged" : "budget reached");
    md_value(f, metric, &b->stats_init_lr);
    fprintf(f, " |\n");
}

/* How every step-size search ran (the same for every set and protocol). */
static void md_search(FILE *f, const dd_eval_report *ev) {
    const dd_lr_search *s = &ev->search;
    if (s->max_iterations <= 0) {
        fprintf(f, "Baselines keep their initial step size (evaluate.lr_search = 0).\n\n");
        return;
    }
    fprintf(f,
            "Step sizes of the baselines (and of every set on another architecture) were tuned "
            "with the pixels frozen, the same way whatever the distillation's options: Adam "
            "(β 0.9/0.999, rate %g on the raw step sizes) on the outer loss, compared over "
            "windows of %d iterations; a window that does not lower the best mean loss by more "
            "than %g %% halves the rate, and the search stops after %d such windows, or after %lld "
            "iterations (the rows say which).\n\n",
            s->adam_lr, s->window, 100.0 * s->tol, s->halvings + 1, (long long)s->max_iterations);
}

static const char *row_title(const dd_eval_baseline *b) {
    return b->name ? b->name : baseline_title(b->kind);
}

/* standard_training: every set, ordinary minibatch SGD. */
static void md_standard(FILE *f, const dd_eval_report *ev, const char *metric) {
    const dd_standard_training *st = &ev->standard;
    fprintf(f,
            "### Protocol standard_training\n\n%d fresh networks (random inits) per set trained "
            "by minibatch SGD for %d epochs (batch %lld, lr %g with a cosine schedule, momentum "
            "%g, weight decay %g",
            st->nets, st->epochs, (long long)st->batch, st->lr, st->momentum, st->weight_decay);
    if (st->crop) fprintf(f, ", random crops with %d-pixel padding", st->crop);
    if (st->flip) fprintf(f, ", random flips");
    fprintf(f, ") on all of the set's images:\n\n| set | test %s |\n|---|---|\n", metric);
    if (ev->has_distilled || ev->standard_distilled.nets) {
        fprintf(f, "| **Distilled images** | ");
        md_value(f, metric, &ev->standard_distilled);
        fprintf(f, " |\n");
    }
    for (int i = 0; i < ev->n_baselines; i++) {
        fprintf(f, "| %s | ", row_title(&ev->baselines[i]));
        md_value(f, metric, &ev->baselines[i].standard);
        fprintf(f, " |\n");
    }
    for (int i = 0; i < ev->n_extra; i++) {
        fprintf(f, "| Objective baseline: %s | ", ev->extra[i].name);
        md_value(f, metric, &ev->extra[i].standard);
        fprintf(f, " |\n");
    }
    fprintf(f, "\n");
}

/* cross_architecture: one column per other network. */
static void md_cross(FILE *f, const dd_eval_report *ev, const char *metric) {
    fprintf(f,
            "### Protocol cross_architecture\n\nThe same sets on other networks, from random "
            "inits (%d per network), each set's step sizes optimised for that network as "
            "above:\n\n| set |",
            ev->n_arch ? ev->arch[0].nets : 0);
    for (int a = 0; a < ev->n_arch; a++)
        fprintf(f, " %s |", ev->arch[a].name);
    fprintf(f, "\n|---|");
    for (int a = 0; a < ev->n_arch; a++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    if (ev->has_distilled || ev->arch[0].distilled.nets) {
        fprintf(f, "| **Distilled images** |");
        for (int a = 0; a < ev->n_arch; a++) {
            fprintf(f, " ");
            md_value(f, metric, &ev->arch[a].distilled);
            fprintf(f, " |");
        }
        fprintf(f, "\n");
    }
    for (int i = 0; i < ev->n_baselines + ev->n_extra; i++) {
        const int extra = i >= ev->n_baselines, j = extra ? i - ev->n_baselines : i;
        fprintf(f, "| %s |", row_title(extra ? &ev->extra[j] : &ev->baselines[j]));
        for (int a = 0; a < ev->n_arch; a++) {
            fprintf(f, " ");
            md_value(f, metric, extra ? &ev->arch[a].extra[j] : &ev->arch[a].baselines[j]);
            fprintf(f, " |");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "| Untrained network |");
    for (int a = 0; a < ev->n_arch; a++) {
        fprintf(f, " ");
        md_value(f, metric, &ev->arch[a].untrained);
        fprintf(f, " |");
    }
    fprintf(f, "\n\n");
}

/* The results table (one row per method) and whether distillation won. */
static void md_results_table(FILE *f, const dd_eval_report *ev, const char *metric) {
    if (!(ev->protocols & DD_PROTOCOL_STEPS)) return;
    fprintf(f, "### Protocol steps\n\n| method | test %s | note |\n|---|---|---|\n", metric);
    if (ev->has_distilled) {
        fprintf(f, "| **Dataset distillation (ours)** | **");
        md_value(f, metric, &ev->distilled);
        fprintf(f, "** | learned step sizes |\n| Distilled images, fixed step size | ");
        md_value(f, metric, &ev->fixed_lr);
        fprintf(f, " | lr %g |\n", ev->fixed_lr_value);
    }
    for (int i = 0; i < ev->n_baselines; i++) {
        fprintf(f, "| %s | ", baseline_title(ev->baselines[i].kind));
        md_baseline_row(f, metric, &ev->baselines[i]);
    }
    for (int i = 0; i < ev->n_extra; i++) {
        fprintf(f, "| Objective baseline: %s | ", ev->extra[i].name);
        md_baseline_row(f, metric, &ev->extra[i]);
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
    if (ev->best_of_random_n > 0)
        fprintf(f,
                "Best of N random subsets: the best of %d random subsets (each with its step sizes "
                "optimised) on %lld held-out training images, then evaluated like the other "
                "baselines.\n\n",
                ev->best_of_random_n, (long long)ev->best_of_random_holdout);
}

/* kNN: each set's images as the reference, no network. */
static void md_knn(FILE *f, const dd_eval_report *ev) {
    fprintf(f,
            "Nearest-neighbour classification of the test set (k = %d, %s distance), "
            "each set's images as the reference, no network:\n\n| reference set | test "
            "accuracy |\n|---|---|\n",
            ev->knn_k, dd_knn_distance_name(ev->knn_distance));
    if (ev->knn_has_distilled)
        fprintf(f, "| Distilled images | %.2f %% |\n", 100.0 * ev->knn_distilled);
    for (int i = 0; i < ev->n_baselines; i++)
        fprintf(f, "| %s | %.2f %% |\n", baseline_title(ev->baselines[i].kind),
                100.0 * ev->baselines[i].knn);
    fprintf(f, "\n");
}

/* The objective's own section: every metric before and after the
 * distilled steps. */
static void md_objective_table(FILE *f, const dd_eval_report *ev) {
    fprintf(f,
            "### %s\n\n| metric (mean ± std over %d nets) | before the distilled steps "
            "| after |\n|---|---|---|\n",
            ev->report_section, ev->nets);
    const dd_eval_stats *a = ev->has_distilled ? &ev->distilled : NULL;
    for (int i = 0; i < ev->n_metrics && i < ev->untrained.n_metrics; i++) {
        fprintf(f, "| %s | %.2f ± %.2f %% | ", ev->metric_names[i],
                100.0 * ev->untrained.metric_mean[i], 100.0 * ev->untrained.metric_std[i]);
        if (a && i < a->n_metrics)
            fprintf(f, "%.2f ± %.2f %% |\n", 100.0 * a->metric_mean[i], 100.0 * a->metric_std[i]);
        else
            fprintf(f, "— |\n");
    }
    fprintf(f, "\n");
}

/* The table of learned step sizes (the images are in the Figures section). */
static void md_distilled(FILE *f, const dd_report_info *r) {
    const dd_distilled *set = r->set;
    fprintf(f, "## Learned step sizes\n\n| epoch |");
    for (int s = 0; s < set->steps; s++)
        fprintf(f, " step %d |", s);
    fprintf(f, "\n|---|");
    for (int s = 0; s < set->steps; s++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    for (int e = 0; e < set->epochs; e++) {
        fprintf(f, "| %d |", e);
        for (int s = 0; s < set->steps; s++)
            fprintf(f, " %.4f |", (double)set->lrs[e * set->steps + s]);
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* The list of output files and the resolved pipeline. */
static void md_files(FILE *f, const dd_report_info *r) {
    fprintf(f, "## Files\n\n- `metrics.json` — every number above\n");
    if (r->set)
        fprintf(
            f,
            "- `distilled.png`, `lrs.csv`, `distilled-images.idx`, "
            "`distilled-labels.idx`, `distilled.json` — the distilled set (see "
            "docs/output.md)\n- `checkpoint.bin` — resumable state (`distill run … --resume`)\n");
    if (r->config_yaml) {
        const size_t n = strlen(r->config_yaml);
        fprintf(f, "\n## Pipeline\n\n```yaml\n%s%s```\n", r->config_yaml,
                n > 0 && r->config_yaml[n - 1] == '\n' ? "" : "\n");
    }
}

dd_status dd_report_write_markdown(const dd_report_info *r) {
    const dd_eval_report *ev = r->eval;
    const char *metric = ev && ev->metric ? ev->metric : "accuracy";
    dd_fs_atomic a;
    DD_TRY(dd_report_open(&a, r->out_dir, "report.md"));
    FILE *f = a.f;
    fprintf(f, "# Dataset distillation: %s\n\n", r->run_name ? r->run_name : "run");
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    fprintf(f, "Written %s by distill %s.\n\n", when, dd_version());
    md_setting(f, r);
    if (ev) {
        md_results_intro(f, r, metric);
        md_results_table(f, ev, metric);
        if (ev->protocols & DD_PROTOCOL_STANDARD) md_standard(f, ev, metric);
        if ((ev->protocols & DD_PROTOCOL_CROSS_ARCH) && ev->n_arch) md_cross(f, ev, metric);
        if (ev->has_knn) md_knn(f, ev);
        md_search(f, ev);
        if (ev->report_section && ev->report_keys && ev->metric_names) md_objective_table(f, ev);
        fprintf(f, "Evaluation took %.1f s.\n\n", ev->seconds);
    }
    if (r->set) md_distilled(f, r);
    dd_report_markdown_figures(f, r);
    md_files(f, r);
    return dd_fs_atomic_commit(&a);
}
