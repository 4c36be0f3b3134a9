/* distill — the report's figures (report/plot.c draws them): the labelled
 * grid of distilled images, the distillation curves (and curves.csv), the
 * accuracy after each inner step against the baselines, the per-class
 * accuracy before and after, and their section in report.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/log.h"
#include "distill/tensor.h"
#include "report/plot.h"
#include "report/report_impl.h"

#define LR_LINES_MAX 10     /* more step sizes than this: a min / mean / max band */
#define HEADER_EPOCHS_MAX 3 /* more epochs: the header shows epoch 1's step sizes */

/* ---- which figures a report has ----------------------------------------- */

/* Room a grid's labels and titles may take beside its tiles. */
#define GRID_LABELS_W 4096
#define GRID_LABELS_H 1024

static int png_scale(const dd_report_info *r) {
    return r->png_scale > 0 ? r->png_scale : 4;
}

/* The magnification distilled.png is drawn at: report.png_scale, or less
 * when the grid would be too large; 0 when it is too large at 1. */
static int distilled_scale(const dd_report_info *r) {
    const dd_distilled *set = r->set;
    for (int s = png_scale(r); s >= 1; s--) {
        int64_t w, h;
        dd_plot_grid_tiles_size(set->n_classes, set->steps * set->images_per_class,
                                set->images_per_class, set->height, set->width, s, &w, &h);
        if (w + GRID_LABELS_W <= DD_PLOT_GRID_MAX_SIDE &&
            h + GRID_LABELS_H <= DD_PLOT_GRID_MAX_SIDE)
            return s;
    }
    return 0;
}

static int draws_distilled(const dd_report_info *r) {
    return r->set && r->png && (r->set->channels == 1 || r->set->channels == 3) &&
           distilled_scale(r) > 0;
}

static int draws_curves(const dd_report_info *r) {
    return r->history_len > 0 && r->loss_history;
}

static int has_curve(const dd_eval_baseline *b) {
    return b->curve != NULL;
}

static int draws_steps(const dd_report_info *r) {
    const dd_eval_report *ev = r->eval;
    if (!ev || ev->curve_len <= 0) return 0;
    int any = ev->curve_distilled != NULL;
    for (int i = 0; i < ev->n_baselines; i++)
        any |= has_curve(&ev->baselines[i]);
    for (int i = 0; i < ev->n_extra; i++)
        any |= has_curve(&ev->extra[i]);
    return any;
}

int dd_report_draws_classes(const dd_report_info *r) {
    const dd_eval_report *ev = r->eval;
    if (!ev || ev->n_classes <= 0 || !ev->class_before || !ev->class_after) return 0;
    return ev->init_mode == DD_INIT_PRETRAINED_FIXED ||
           ev->init_mode == DD_INIT_PRETRAINED_RANDOM || ev->report_section != NULL;
}

static const char *batch_metric(const dd_report_info *r) {
    return r->batch_metric ? r->batch_metric : "accuracy";
}

static const char *test_metric(const dd_report_info *r) {
    return r->eval && r->eval->metric ? r->eval->metric : "accuracy";
}

/* Class k's name, or "class k" in buf. */
static const char *class_name(const dd_report_info *r, int k, char *buf, size_t n) {
    if (r->class_names && (r->n_classes == 0 || k < r->n_classes) && r->class_names[k])
        return r->class_names[k];
    snprintf(buf, n, "class %d", k);
    return buf;
}

static char *out_path(const dd_report_info *r, const char *name) {
    char *p = dd_fs_join(r->out_dir, name);
    if (!p) dd_error_set(DD_ERR_NOMEM, "report: out of memory");
    return p;
}

/* ---- distilled.png ------------------------------------------------------ */

#define LABEL_LEN 48

/* The header above step s: its index and the learned step size of each
 * epoch (of epoch 1 only past HEADER_EPOCHS_MAX epochs); the lines' labels
 * are at their left. */
static int header_lines(const dd_distilled *set) {
    return 1 + (set->epochs <= HEADER_EPOCHS_MAX ? set->epochs : 1);
}

static void header_text(const dd_distilled *set, int s, int line, char *buf) {
    if (line == 0)
        snprintf(buf, LABEL_LEN, "%d", s);
    else
        snprintf(buf, LABEL_LEN, "%.3g", (double)set->lrs[(line - 1) * set->steps + s]);
}

static void header_label(const dd_distilled *set, int line, char *buf) {
    if (line == 0)
        snprintf(buf, LABEL_LEN, "step");
    else if (set->epochs == 1)
        snprintf(buf, LABEL_LEN, "lr");
    else
        snprintf(buf, LABEL_LEN, "lr, epoch %d", line);
}

static void grid_subtitle(const dd_distilled *set, char *buf, size_t n) {
    if (set->epochs == 1)
        snprintf(buf, n, "rows: classes; columns: steps, with their learned step sizes (lr)");
    else if (set->epochs <= HEADER_EPOCHS_MAX)
        snprintf(buf, n,
                 "rows: classes; columns: steps, repeated in %d epochs, with their learned step "
                 "sizes (lr) per epoch",
                 set->epochs);
    else
        snprintf(buf, n,
                 "rows: classes; columns: steps, repeated in %d epochs, with their learned step "
                 "sizes (lr) in epoch 1",
                 set->epochs);
}

static dd_status write_distilled(const dd_report_info *r) {
    const dd_distilled *set = r->set;
    const size_t D = dd_distilled_image_size(set);
    const int K = set->n_classes, ipc = set->images_per_class, cols = set->steps * ipc;
    const int lines = header_lines(set);
    const size_t n = (size_t)K * (size_t)cols;
    float *grid = dd_alloc_floats(n * D);
    char *names = calloc((size_t)K + (size_t)(set->steps + 1) * (size_t)lines, LABEL_LEN);
    const char **rows = calloc((size_t)K, sizeof *rows);
    const char **heads = calloc((size_t)(set->steps + 1) * (size_t)lines, sizeof *heads);
    char *path = out_path(r, "distilled.png");
    dd_status st = DD_OK;
    if (!grid || !names || !rows || !heads)
        st = dd_error_set(DD_ERR_NOMEM, "report: out of memory for distilled.png");
    if (st == DD_OK && path) {
        // Row c, column (s, i): image j = i·K + c of step s.
        size_t t = 0;
        for (int c = 0; c < K; c++)
            for (int s = 0; s < set->steps; s++)
                for (int i = 0; i < ipc; i++, t++) {
                    const size_t j = (size_t)i * (size_t)K + (size_t)c;
                    memcpy(grid + t * D, set->images + ((size_t)s * (size_t)set->per_step + j) * D,
                           D * sizeof(float));
                }
        for (int c = 0; c < K; c++)
            rows[c] = class_name(r, c, names + (size_t)c * LABEL_LEN, LABEL_LEN);
        for (int s = 0; s < set->steps; s++)
            for (int l = 0; l < lines; l++) {
                char *b = names + ((size_t)K + (size_t)s * (size_t)lines + (size_t)l) * LABEL_LEN;
                header_text(set, s, l, b);
                heads[s * lines + l] = b;
            }
        // The lines' labels after the headers.
        const char **head_labels = heads + (size_t)set->steps * (size_t)lines;
        for (int l = 0; l < lines; l++) {
            char *b =
                names + ((size_t)K + (size_t)set->steps * (size_t)lines + (size_t)l) * LABEL_LEN;
            header_label(set, l, b);
            head_labels[l] = b;
        }
        char sub[256];
        grid_subtitle(set, sub, sizeof sub);
        const dd_plot_grid g = {
            .title = "Distilled images",
            .subtitle = sub,
            .header_labels = head_labels,
            .images = grid,
            .rows = K,
            .cols = cols,
            .channels = set->channels,
            .height = set->height,
            .width = set->width,
            .mean = set->mean,
            .std = set->std,
            .scale = distilled_scale(r),
            .row_labels = rows,
            .group = ipc,
            .headers = heads,
            .header_lines = lines,
        };
        st = dd_plot_image_grid(path, &g, NULL, NULL);
    } else if (st == DD_OK) {
        st = DD_ERR_NOMEM;
    }
    free(path);
    free(heads);
    free(rows);
    free(names);
    dd_free(grid);
    return st;
}

/* ---- curves.png and curves.csv ------------------------------------------ */

static dd_status write_curves_csv(const dd_report_info *r) {
    const int K = r->lr_history ? r->lr_count : 0;
    dd_fs_atomic a;
    DD_TRY(dd_report_open(&a, r->out_dir, "curves.csv"));
    FILE *f = a.f;
    fprintf(f, "iteration,outer_loss,batch_%s", batch_metric(r));
    for (int k = 0; k < K; k++)
        fprintf(f, ",lr_%d", k + 1);
    fprintf(f, "\n");
    for (int64_t i = 0; i < r->history_len; i++) {
        fprintf(f, "%lld,%.9g,%.9g", (long long)i + 1, r->loss_history[i],
                r->metric_history ? r->metric_history[i] : NAN);
        for (int k = 0; k < K; k++)
            fprintf(f, ",%.9g", (double)r->lr_history[(size_t)i * (size_t)K + (size_t)k]);
        fprintf(f, "\n");
    }
    return dd_fs_atomic_commit(&a);
}

/* The step-size series: one per step, or min / mean / max over all of
 * them when there are more than LR_LINES_MAX. `ys` holds K (or 3) rows of
 * n values, `names` K rows of LABEL_LEN. */
static int lr_series(const dd_report_info *r, double *ys, char *names, dd_plot_series *out) {
    const int64_t n = r->history_len;
    const int K = r->lr_count;
    const int E = r->distill && r->distill->epochs > 0 ? r->distill->epochs : 1;
    const int S = K / E > 0 ? K / E : K;
    if (K <= LR_LINES_MAX) {
        for (int k = 0; k < K; k++) {
            double *y = ys + (size_t)k * (size_t)n;
            for (int64_t i = 0; i < n; i++)
                y[i] = (double)r->lr_history[(size_t)i * (size_t)K + (size_t)k];
            char *nm = names + (size_t)k * LABEL_LEN;
            if (E > 1)
                snprintf(nm, LABEL_LEN, "epoch %d, step %d", k / S + 1, k % S);
            else
                snprintf(nm, LABEL_LEN, "step %d", k);
            out[k] = (dd_plot_series){.name = nm, .y = y, .n = (int)n, .x0 = 1, .dx = 1};
        }
        return K;
    }
    double *lo = ys, *mean = ys + n, *hi = ys + 2 * n;
    for (int64_t i = 0; i < n; i++) {
        const float *row = r->lr_history + (size_t)i * (size_t)K;
        double a = INFINITY, b = -INFINITY, sum = 0;
        int m = 0;
        for (int k = 0; k < K; k++) {
            if (!isfinite(row[k])) continue;
            a = fmin(a, row[k]);
            b = fmax(b, row[k]);
            sum += row[k];
            m++;
        }
        lo[i] = m ? a : NAN;
        hi[i] = m ? b : NAN;
        mean[i] = m ? sum / m : NAN;
    }
    snprintf(names, LABEL_LEN, "mean of %d (band: min-max)", K);
    out[0] = (dd_plot_series){
        .name = names, .y = mean, .lo = lo, .hi = hi, .n = (int)n, .x0 = 1, .dx = 1};
    return 1;
}

static dd_status write_curves_png(const dd_report_info *r) {
    if (r->history_len > INT32_MAX)
        return dd_error_set(DD_ERR_INVALID, "report: %lld iterations are too many to plot",
                            (long long)r->history_len);
    const int K = r->lr_history && r->lr_count > 0 ? r->lr_count : 0;
    const int rowsn = K > LR_LINES_MAX ? 3 : K;
    double *ys = calloc((size_t)(rowsn > 0 ? rowsn : 1) * (size_t)r->history_len, sizeof *ys);
    char *names = calloc((size_t)(K > 0 ? K : 1), LABEL_LEN);
    dd_plot_series *lrs = calloc((size_t)(K > 0 ? K : 1), sizeof *lrs);
    char *path = out_path(r, "curves.png");
    dd_status st = DD_OK;
    if (!ys || !names || !lrs || !path) {
        st = path ? dd_error_set(DD_ERR_NOMEM, "report: out of memory for curves.png")
                  : DD_ERR_NOMEM;
    } else {
        const int nl = K > 0 ? lr_series(r, ys, names, lrs) : 0;
        char mtitle[96], mlabel[64];
        snprintf(mtitle, sizeof mtitle, "Real-batch %s", batch_metric(r));
        snprintf(mlabel, sizeof mlabel, "batch %s", batch_metric(r));
        const int n = (int)r->history_len;
        const dd_plot_series loss = {
            .name = "outer loss", .y = r->loss_history, .n = n, .x0 = 1, .dx = 1};
        const dd_plot_series metric = {
            .name = batch_metric(r), .y = r->metric_history, .n = n, .x0 = 1, .dx = 1};
        const dd_plot_panel panels[3] = {
            {.title = "Outer loss on the real batch (log scale)",
             .x_label = "iteration",
             .y_label = "outer loss",
             .log_y = 1,
             .x_integer = 1,
             .series = &loss,
             .n_series = 1},
            {.title = mtitle,
             .x_label = "iteration",
             .y_label = mlabel,
             .x_integer = 1,
             .series = &metric,
             .n_series = 1},
            {.title = "Learned step sizes",
             .x_label = "iteration",
             .y_label = "step size",
             .x_integer = 1,
             .series = lrs,
             .n_series = nl},
        };
        st = dd_plot_lines(path, panels, 3);
    }
    free(path);
    free(lrs);
    free(names);
    free(ys);
    return st;
}

/* ---- steps.png ---------------------------------------------------------- */

static dd_status write_steps(const dd_report_info *r) {
    const dd_eval_report *ev = r->eval;
    dd_plot_series s[1 + DD_BASELINE_COUNT + DD_EVAL_MAX_EXTRA];
    char extra_names[DD_EVAL_MAX_EXTRA][64];
    int n = 0;
    const dd_plot_series base = {.n = ev->curve_len, .x0 = 0, .dx = 1};
    if (ev->curve_distilled) {
        s[n] = base;
        s[n].name = "distilled (ours)";
        s[n++].y = ev->curve_distilled;
    }
    for (int i = 0; i < ev->n_baselines; i++)
        if (has_curve(&ev->baselines[i])) {
            s[n] = base;
            s[n].name = dd_baseline_name(ev->baselines[i].kind);
            s[n++].y = ev->baselines[i].curve;
        }
    for (int i = 0; i < ev->n_extra && i < DD_EVAL_MAX_EXTRA; i++)
        if (has_curve(&ev->extra[i])) {
            snprintf(extra_names[i], sizeof extra_names[i], "%s",
                     ev->extra[i].name ? ev->extra[i].name : "objective baseline");
            s[n] = base;
            s[n].name = extra_names[i];
            s[n++].y = ev->extra[i].curve;
        }
    char title[128], ylabel[64];
    snprintf(title, sizeof title, "Test %s after each inner step", test_metric(r));
    snprintf(ylabel, sizeof ylabel, "test %s", test_metric(r));
    const dd_plot_panel p = {.title = title,
                             .x_label = "inner steps taken (0 = the initial network)",
                             .y_label = ylabel,
                             .x_integer = 1,
                             .series = s,
                             .n_series = n};
    char *path = out_path(r, "steps.png");
    if (!path) return DD_ERR_NOMEM;
    dd_status st = dd_plot_lines(path, &p, 1);
    free(path);
    return st;
}

/* ---- classes.png -------------------------------------------------------- */

static const char *before_name(const dd_eval_report *ev) {
    return ev->init_mode == DD_INIT_PRETRAINED_FIXED || ev->init_mode == DD_INIT_PRETRAINED_RANDOM
               ? "before (pretrained networks)"
               : "before (untrained networks)";
}

static dd_status write_classes(const dd_report_info *r) {
    const dd_eval_report *ev = r->eval;
    const int C = ev->n_classes;
    double *v = malloc(2 * (size_t)C * sizeof *v);
    char *names = calloc((size_t)C, LABEL_LEN);
    const char **labels = calloc((size_t)C, sizeof *labels);
    char *path = out_path(r, "classes.png");
    dd_status st = DD_OK;
    if (!v || !names || !labels || !path) {
        st = path ? dd_error_set(DD_ERR_NOMEM, "report: out of memory for classes.png")
                  : DD_ERR_NOMEM;
    } else {
        memcpy(v, ev->class_before, (size_t)C * sizeof *v);
        memcpy(v + C, ev->class_after, (size_t)C * sizeof *v);
        for (int c = 0; c < C; c++)
            labels[c] = class_name(r, c, names + (size_t)c * LABEL_LEN, LABEL_LEN);
        const char *series[2] = {before_name(ev), "after (trained on the distilled set)"};
        const dd_plot_bar_chart b = {
            .title = "Test accuracy per class, before and after the distilled steps",
            .y_label = "accuracy",
            .n_groups = C,
            .group_labels = labels,
            .n_series = 2,
            .series_names = series,
            .values = v,
            .y_max = 1.0,
        };
        st = dd_plot_bars(path, &b);
    }
    free(path);
    free(labels);
    free(names);
    free(v);
    return st;
}

/* ---- the entry points --------------------------------------------------- */

dd_status dd_report_write_figures(const dd_report_info *r) {
    const dd_distilled *set = r->set;
    if (set && r->png && set->channels != 1 && set->channels != 3)
        dd_warn("report: %s/distilled.png: cannot draw %d-channel images; not written", r->out_dir,
                set->channels);
    else if (set && r->png && distilled_scale(r) == 0)
        dd_warn("report: %s/distilled.png: %d classes × %d columns of %dx%d images do not fit in "
                "%d pixels a side; not written",
                r->out_dir, set->n_classes, set->steps * set->images_per_class, set->width,
                set->height, DD_PLOT_GRID_MAX_SIDE);
    else if (set && r->png && distilled_scale(r) < png_scale(r))
        dd_info("report: distilled.png drawn at scale %d (at report.png_scale %d it would exceed "
                "%d pixels a side)",
                distilled_scale(r), png_scale(r), DD_PLOT_GRID_MAX_SIDE);
    if (draws_distilled(r)) DD_TRY(write_distilled(r));
    if (draws_curves(r)) {
        DD_TRY(write_curves_csv(r));
        DD_TRY(write_curves_png(r));
    }
    if (draws_steps(r)) DD_TRY(write_steps(r));
    if (dd_report_draws_classes(r)) DD_TRY(write_classes(r));
    return DD_OK;
}

void dd_report_markdown_figures(FILE *f, const dd_report_info *r) {
    const int any =
        draws_distilled(r) || draws_curves(r) || draws_steps(r) || dd_report_draws_classes(r);
    if (!any) return;
    fprintf(f, "## Figures\n\n");
    if (draws_distilled(r)) {
        const dd_distilled *set = r->set;
        char buf[LABEL_LEN];
        fprintf(f, "![distilled images](distilled.png)\n\nThe distilled images, one row per class "
                   "(top to bottom: ");
        for (int k = 0; k < set->n_classes; k++)
            fprintf(f, "%s%s", k ? ", " : "", class_name(r, k, buf, sizeof buf));
        fprintf(f, "), one column per step%s, each step headed by its learned step size%s.\n\n",
                set->images_per_class > 1 ? " (images of a step side by side)" : "",
                set->epochs > HEADER_EPOCHS_MAX ? " in epoch 1" : "");
    }
    if (draws_curves(r))
        fprintf(f,
                "![distillation curves](curves.png)\n\nThe outer loss (log scale) and the %s "
                "on the real batch at each of the %lld iterations, and the learned step sizes "
                "after each; the numbers are in `curves.csv`.\n\n",
                batch_metric(r), (long long)r->history_len);
    if (draws_steps(r))
        fprintf(f,
                "![test %s after each inner step](steps.png)\n\nTest %s after each of the %d "
                "inner steps (0 = before any), the distilled set against every baseline.\n\n",
                test_metric(r), test_metric(r), r->eval->curve_len - 1);
    if (dd_report_draws_classes(r))
        fprintf(f,
                "![accuracy per class](classes.png)\n\nTest accuracy of each class before "
                "(%s) and after training on the distilled set.\n\n",
                r->eval->init_mode == DD_INIT_PRETRAINED_FIXED ||
                        r->eval->init_mode == DD_INIT_PRETRAINED_RANDOM
                    ? "the pretrained networks"
                    : "the untrained networks");
}
