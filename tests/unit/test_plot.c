/* Tests of the report's figures (core/src/report/plot.c, figures.c): each
 * plot function and each figure of dd_report_write on tiny synthetic data,
 * the PNGs decoded back (size, non-blank content, the series' colours and
 * the images' pixels), curves.csv parsed back, report.md's Figures section,
 * and the errors (an unwritable directory, bad arguments). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "distill/image.h"
#include "engine/distilled.h"
#include "report/plot.h"
#include "report/report.h"

/* ---- helpers ------------------------------------------------------------ */

static char g_dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_plot_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    if (!d) return 0;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", g_dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(g_dir);
    return 0;
}

static const char *path_of(const char *name) {
    static char p[600];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return p;
}

/* A decoded PNG, always as RGB. */
typedef struct png {
    uint8_t *px;
    int w, h;
} png;

static png load(const char *name) {
    png p = {0};
    int c = 0;
    uint8_t *raw;
    assert_int_equal(dd_image_read_png(path_of(name), &raw, &p.w, &p.h, &c), DD_OK);
    assert_int_equal(c, 3); // cairo writes RGB
    p.px = raw;
    return p;
}

/* Pixels that are not the white background. */
static double ink_fraction(const png *p) {
    size_t ink = 0, n = (size_t)p->w * (size_t)p->h;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *q = p->px + 3 * i;
        ink +=
            q[0] != DD_PLOT_BACKGROUND || q[1] != DD_PLOT_BACKGROUND || q[2] != DD_PLOT_BACKGROUND;
    }
    return (double)ink / (double)n;
}

/* Pixels of exactly this colour. */
static size_t count_rgb(const png *p, const uint8_t rgb[3]) {
    size_t k = 0, n = (size_t)p->w * (size_t)p->h;
    for (size_t i = 0; i < n; i++)
        k += memcmp(p->px + 3 * i, rgb, 3) == 0;
    return k;
}

static size_t count_color(const png *p, int series) {
    uint8_t c[3];
    dd_plot_color(series, c);
    return count_rgb(p, c);
}

/* Distinct colours (up to a cap), to tell text and anti-aliasing from a
 * flat image. */
static int distinct_colors(const png *p, int cap) {
    uint32_t *seen = malloc((size_t)cap * sizeof *seen);
    int n = 0;
    const size_t total = (size_t)p->w * (size_t)p->h;
    for (size_t i = 0; i < total && n < cap; i++) {
        const uint8_t *q = p->px + 3 * i;
        uint32_t v = (uint32_t)q[0] << 16 | (uint32_t)q[1] << 8 | q[2];
        int known = 0;
        for (int j = 0; j < n && !known; j++)
            known = seen[j] == v;
        if (!known) seen[n++] = v;
    }
    free(seen);
    return n;
}

/* The directory holds no temporary (an atomic write's leftover). */
static void assert_no_temporary(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".tmp")) fprintf(stderr, "temporary left: %s\n", e->d_name);
        assert_null(strstr(e->d_name, ".tmp"));
    }
    closedir(d);
}

static char *read_text(const char *name) {
    FILE *f = fopen(path_of(name), "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20;
    char *s = malloc(cap);
    size_t n = fread(s, 1, cap - 1, f);
    fclose(f);
    s[n] = '\0';
    return s;
}

/* ---- plot.c ------------------------------------------------------------- */

static void test_lines(void **state) {
    (void)state;
    enum { N = 50 };
    double loss[N], acc[N], lo[N], hi[N];
    for (int i = 0; i < N; i++) {
        loss[i] = 2.0 * exp(-0.08 * i) + 0.01;
        acc[i] = 1.0 - 0.9 * exp(-0.1 * i);
        lo[i] = acc[i] - 0.05;
        hi[i] = acc[i] + 0.05;
    }
    loss[10] = NAN; // skipped, the line breaks there
    loss[11] = -1;  // not drawable on a log axis
    const dd_plot_series s0 = {.name = "outer loss", .y = loss, .n = N, .x0 = 1, .dx = 1};
    const dd_plot_series s1[2] = {
        {.name = "accuracy", .y = acc, .lo = lo, .hi = hi, .n = N, .x0 = 1, .dx = 1},
        {.name = "flat", .y = hi, .n = N, .x0 = 1, .dx = 1},
    };
    const dd_plot_panel p[3] = {
        {.title = "loss",
         .x_label = "iteration",
         .y_label = "loss",
         .log_y = 1,
         .series = &s0,
         .n_series = 1},
        {.title = "acc",
         .x_label = "iteration",
         .y_label = "acc",
         .x_integer = 1,
         .series = s1,
         .n_series = 2},
        {.title = "nothing", .series = NULL, .n_series = 0},
    };
    assert_int_equal(dd_plot_lines(path_of("lines.png"), p, 3), DD_OK);
    png img = load("lines.png");
    assert_int_equal(img.w, DD_PLOT_WIDTH);
    assert_int_equal(img.h, 3 * DD_PLOT_PANEL_HEIGHT);
    const double ink = ink_fraction(&img);
    assert_true(ink > 0.01 && ink < 0.6);
    assert_true(distinct_colors(&img, 64) >= 20); // text is anti-aliased
    // Each series' colour: more than its legend swatch (22×6 pixels).
    assert_true(count_color(&img, 0) > 200);
    assert_true(count_color(&img, 1) > 200);
    // The empty panel (bottom third) has its frame and "no data" but no series colour.
    png bottom = img;
    bottom.px = img.px + (size_t)3 * img.w * 2 * DD_PLOT_PANEL_HEIGHT;
    bottom.h = DD_PLOT_PANEL_HEIGHT;
    assert_int_equal(count_color(&bottom, 0), 0);
    assert_true(ink_fraction(&bottom) > 0.001);
    free(img.px);
    assert_no_temporary(g_dir);
}

static void test_image_grid(void **state) {
    (void)state;
    // 2 × 4 cells of 3×5 RGB images, groups of 2 columns; normalised with
    // mean 0.5, std 0.25 per channel, each cell one flat colour.
    enum { R = 2, C = 4, H = 3, W = 5, S = 3 };
    float *img = calloc((size_t)R * C * 3 * H * W, sizeof *img);
    const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
    for (int cell = 0; cell < R * C; cell++)
        for (int ch = 0; ch < 3; ch++)
            for (int i = 0; i < H * W; i++) {
                // cell 0 red, 1 green, 2 blue, 3 red, ...; cell 7 over the
                // range in every channel, clamped to white
                float v = (ch == cell % 3) ? 1.0f : 0.0f;
                if (cell == 7) v = 3.0f;
                img[((size_t)cell * 3 + ch) * H * W + i] = (v - mean[ch]) / std[ch];
            }
    const char *rows[R] = {"zero", "a longer class name"};
    const char *heads[2 * 2] = {"step 0", "lr 0.01", "step 1", "lr 0.02"};
    const dd_plot_grid g = {.title = "grid",
                            .images = img,
                            .rows = R,
                            .cols = C,
                            .channels = 3,
                            .height = H,
                            .width = W,
                            .mean = mean,
                            .std = std,
                            .scale = S,
                            .row_labels = rows,
                            .group = 2,
                            .headers = heads,
                            .header_lines = 2};
    int w = 0, h = 0;
    assert_int_equal(dd_plot_image_grid(path_of("grid.png"), &g, &w, &h), DD_OK);
    png p = load("grid.png");
    assert_int_equal(p.w, w);
    assert_int_equal(p.h, h);
    // The tiles, the labels' column and the headers' rows all fit.
    assert_true(w > C * W * S + 40);
    assert_true(h > R * H * S + 20);
    // Exact, unsmoothed tile colours: cell 0 is pure red in (S·W)·(S·H) pixels.
    const uint8_t red[3] = {255, 0, 0}, green[3] = {0, 255, 0}, blue[3] = {0, 0, 255};
    assert_int_equal(count_rgb(&p, red), 3 * S * S * W * H); // cells 0, 3, 6
    assert_int_equal(count_rgb(&p, green), 2 * S * S * W * H);
    assert_int_equal(count_rgb(&p, blue), 2 * S * S * W * H);
    assert_true(distinct_colors(&p, 64) > 8); // text besides the tiles
    free(p.px);
    // One channel works; two are refused; zero rows are invalid.
    dd_plot_grid g1 = g;
    g1.channels = 1;
    assert_int_equal(dd_plot_image_grid(path_of("gray.png"), &g1, NULL, NULL), DD_OK);
    g1.channels = 2;
    assert_int_equal(dd_plot_image_grid(path_of("two.png"), &g1, NULL, NULL), DD_ERR_UNSUPPORTED);
    assert_non_null(strstr(dd_error_message(), "two.png"));
    g1.channels = 3;
    g1.group = 3; // 4 columns are not groups of 3
    assert_int_equal(dd_plot_image_grid(path_of("bad.png"), &g1, NULL, NULL), DD_ERR_INVALID);
    free(img);
    assert_no_temporary(g_dir);
}

static void test_bars(void **state) {
    (void)state;
    const double v[2 * 3] = {0.1, 0.5, NAN, 0.9, 0.7, 1.0};
    const char *groups[3] = {"cat", "dog", "a very long class name indeed"};
    const char *series[2] = {"before", "after"};
    const dd_plot_bar_chart b = {.title = "per class",
                                 .y_label = "accuracy",
                                 .n_groups = 3,
                                 .group_labels = groups,
                                 .n_series = 2,
                                 .series_names = series,
                                 .values = v,
                                 .y_max = 1};
    assert_int_equal(dd_plot_bars(path_of("bars.png"), &b), DD_OK);
    png p = load("bars.png");
    assert_int_equal(p.w, DD_PLOT_WIDTH);
    assert_int_equal(p.h, DD_PLOT_BARS_HEIGHT);
    // The "after" bars (0.9 + 0.7 + 1.0) outweigh the "before" ones (0.1 + 0.5).
    const size_t before = count_color(&p, 0), after = count_color(&p, 1);
    assert_true(before > 500);
    assert_true(after > 3 * before);
    free(p.px);
}

static void test_unwritable(void **state) {
    (void)state;
    const double y[2] = {1, 2};
    const dd_plot_series s = {.name = "s", .y = y, .n = 2, .x0 = 0, .dx = 1};
    const dd_plot_panel p = {.title = "t", .series = &s, .n_series = 1};
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-dir/lines.png", g_dir);
    assert_int_not_equal(dd_plot_lines(missing, &p, 1), DD_OK);
    assert_non_null(strstr(dd_error_message(), missing));
    // A directory the process may not write (as root, every directory is
    // writable: then only the missing one is checked).
    char ro[600];
    snprintf(ro, sizeof ro, "%s/ro", g_dir);
    assert_int_equal(mkdir(ro, 0555), 0);
    if (geteuid() != 0) {
        char target[700];
        snprintf(target, sizeof target, "%s/lines.png", ro);
        assert_int_equal(dd_plot_lines(target, &p, 1), DD_ERR_IO);
        assert_non_null(strstr(dd_error_message(), target));
    }
    assert_no_temporary(ro);
    rmdir(ro);
    assert_int_equal(dd_plot_lines(path_of("x.png"), &p, 0), DD_ERR_INVALID);
}

/* ---- figures.c through dd_report_write ---------------------------------- */

enum { STEPS = 2, EPOCHS = 2, IPC = 2, CLASSES = 3, ITERS = 7 };

typedef struct fixture {
    dd_distilled *set;
    dd_distill_config cfg;
    dd_distill_stats stats;
    dd_eval_report ev;
    double loss[ITERS], metric[ITERS];
    float lrs[ITERS * STEPS * EPOCHS];
    double curve_d[STEPS * EPOCHS + 1], curve_b[STEPS * EPOCHS + 1];
    double before[CLASSES], after[CLASSES];
    dd_report_info r;
} fixture;

static const char *const class_names[CLASSES] = {"T-shirt", "Trouser", "Pullover"};

static void fixture_make(fixture *f) {
    memset(f, 0, sizeof *f);
    assert_int_equal(dd_distilled_create(STEPS, EPOCHS, IPC, CLASSES, 1, 4, 4, 0.02f, &f->set),
                     DD_OK);
    const size_t n = (size_t)STEPS * (size_t)f->set->per_step * 16;
    for (size_t i = 0; i < n; i++)
        f->set->images[i] = (float)((int)(i % 7) - 3); // gray levels, some clamped
    for (int k = 0; k < STEPS * EPOCHS; k++)
        f->set->lrs[k] = 0.01f * (float)(k + 1);
    f->set->mean[0] = 0.5f, f->set->std[0] = 0.2f;
    assert_int_equal(dd_distill_config_from_defaults(&f->cfg), DD_OK);
    f->cfg.steps = STEPS, f->cfg.epochs = EPOCHS, f->cfg.images_per_class = IPC;
    f->cfg.init_mode = DD_INIT_PRETRAINED_FIXED;
    f->stats.iterations = ITERS;
    for (int i = 0; i < ITERS; i++) {
        f->loss[i] = 2.5 / (1 + i);
        f->metric[i] = 0.1 * i;
        for (int k = 0; k < STEPS * EPOCHS; k++)
            f->lrs[i * STEPS * EPOCHS + k] = 0.02f + 0.001f * (float)(i * (k + 1));
    }
    f->ev.metric = "accuracy", f->ev.init_mode = DD_INIT_PRETRAINED_FIXED, f->ev.nets = 1;
    f->ev.has_distilled = 1;
    f->ev.n_baselines = 1;
    f->ev.baselines[0].kind = DD_BASELINE_RANDOM;
    f->ev.curve_len = STEPS * EPOCHS + 1;
    for (int k = 0; k <= STEPS * EPOCHS; k++) {
        f->curve_d[k] = 0.1 + 0.2 * k;
        f->curve_b[k] = 0.1 + 0.1 * k;
    }
    f->ev.curve_distilled = f->curve_d;
    f->ev.baselines[0].curve = f->curve_b;
    f->ev.n_classes = CLASSES;
    for (int c = 0; c < CLASSES; c++) {
        f->before[c] = 0.8;
        f->after[c] = c == 0 ? 0.1 : 0.75; // the poisoned class drops
    }
    f->ev.class_before = f->before, f->ev.class_after = f->after;
    f->r = (dd_report_info){
        .out_dir = g_dir,
        .run_name = "plots",
        .class_names = class_names,
        .n_classes = CLASSES,
        .set = f->set,
        .distill = &f->cfg,
        .stats = &f->stats,
        .eval = &f->ev,
        .png = 1,
        .png_scale = 2,
        .history_len = ITERS,
        .loss_history = f->loss,
        .metric_history = f->metric,
        .lr_history = f->lrs,
        .lr_count = STEPS * EPOCHS,
        .batch_metric = "accuracy",
    };
}

static void check_png(const char *name, int min_w, int min_h, int exact) {
    png p = load(name);
    if (exact) {
        assert_int_equal(p.w, min_w);
        assert_int_equal(p.h, min_h);
    } else {
        assert_true(p.w >= min_w && p.h >= min_h);
    }
    assert_true(ink_fraction(&p) > 0.005);
    assert_true(distinct_colors(&p, 64) > 10);
    free(p.px);
}

static void test_report_figures(void **state) {
    (void)state;
    fixture f;
    fixture_make(&f);
    assert_int_equal(dd_report_write(&f.r), DD_OK);
    // distilled.png: 3 rows of 4×4 images magnified twice, 4 columns, plus labels.
    check_png("distilled.png", STEPS * IPC * 4 * 2, CLASSES * 4 * 2, 0);
    check_png("curves.png", DD_PLOT_WIDTH, 3 * DD_PLOT_PANEL_HEIGHT, 1);
    check_png("steps.png", DD_PLOT_WIDTH, DD_PLOT_PANEL_HEIGHT, 1);
    check_png("classes.png", DD_PLOT_WIDTH, DD_PLOT_BARS_HEIGHT, 1);
    // The steps figure draws both curves.
    png s = load("steps.png");
    assert_true(count_color(&s, 0) > 100);
    assert_true(count_color(&s, 1) > 100);
    free(s.px);
    // The grid's tiles are the de-normalised pixels: value 3 → 0.5 + 0.6 = 1.1
    // clamps to white, value −3 → −0.1 to black.
    png d = load("distilled.png");
    const uint8_t black[3] = {0, 0, 0};
    assert_true(count_rgb(&d, black) >= 4 * 4);
    free(d.px);
    assert_no_temporary(g_dir);

    // curves.csv: the header, one row per iteration, the values back.
    char *csv = read_text("curves.csv");
    assert_non_null(csv);
    char *line = strtok(csv, "\n");
    assert_string_equal(line, "iteration,outer_loss,batch_accuracy,lr_1,lr_2,lr_3,lr_4");
    int rows = 0;
    while ((line = strtok(NULL, "\n"))) {
        double it, loss, metric, lr[4];
        assert_int_equal(sscanf(line, "%lf,%lf,%lf,%lf,%lf,%lf,%lf", &it, &loss, &metric, &lr[0],
                                &lr[1], &lr[2], &lr[3]),
                         7);
        assert_int_equal((int)it, rows + 1);
        assert_float_equal(loss, f.loss[rows], 1e-9 * fabs(f.loss[rows]));
        assert_float_equal(metric, f.metric[rows], 1e-9);
        for (int k = 0; k < 4; k++)
            assert_true((float)lr[k] == f.lrs[rows * 4 + k]); // a float survives %.9g exactly
        rows++;
    }
    assert_int_equal(rows, ITERS);
    free(csv);

    // report.md embeds each figure with its caption, in plain text.
    char *md = read_text("report.md");
    assert_non_null(md);
    assert_non_null(strstr(md, "## Figures"));
    assert_non_null(strstr(md, "![distilled images](distilled.png)"));
    assert_non_null(strstr(md, "top to bottom: T-shirt, Trouser, Pullover"));
    assert_non_null(strstr(md, "![distillation curves](curves.png)"));
    assert_non_null(strstr(md, "`curves.csv`"));
    assert_non_null(strstr(md, "![test accuracy after each inner step](steps.png)"));
    assert_non_null(strstr(md, "after each of the 4 inner steps"));
    assert_non_null(strstr(md, "![accuracy per class](classes.png)"));
    assert_non_null(strstr(md, "the pretrained networks"));
    free(md);
    dd_distilled_destroy(f.set);
}

/* Without the data a figure needs, it is neither written nor mentioned. */
static void test_report_without_data(void **state) {
    (void)state;
    fixture f;
    fixture_make(&f);
    f.r.png = 0;
    f.r.history_len = 0;
    f.ev.curve_len = 0;
    f.ev.init_mode = DD_INIT_RANDOM; // per-class bars only for the pretrained modes
    assert_int_equal(dd_report_write(&f.r), DD_OK);
    static const char *const absent[] = {"distilled.png", "curves.png", "curves.csv", "steps.png",
                                         "classes.png"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        assert_int_not_equal(access(path_of(absent[i]), F_OK), 0);
    char *md = read_text("report.md");
    assert_null(strstr(md, "## Figures"));
    assert_null(strstr(md, ".png)"));
    free(md);
    // An objective with its own report section gets the bars in any mode;
    // more than 10 step sizes become one band.
    f.ev.report_section = "attack";
    f.r.history_len = ITERS;
    float many[ITERS * 12];
    for (int i = 0; i < ITERS * 12; i++)
        many[i] = 0.01f * (float)(i % 12 + 1);
    f.r.lr_history = many, f.r.lr_count = 12;
    assert_int_equal(dd_report_write(&f.r), DD_OK);
    assert_int_equal(access(path_of("classes.png"), F_OK), 0);
    check_png("curves.png", DD_PLOT_WIDTH, 3 * DD_PLOT_PANEL_HEIGHT, 1);
    char *csv = read_text("curves.csv");
    assert_non_null(strstr(csv, ",lr_12\n"));
    free(csv);
    dd_distilled_destroy(f.set);
}

/* A figure that cannot be written fails the report, naming the file, and
 * leaves no temporary. */
static void test_report_unwritable(void **state) {
    (void)state;
    fixture f;
    fixture_make(&f);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/gone", g_dir);
    f.r.out_dir = dir;
    f.r.set = NULL; // the figures come first
    assert_int_equal(dd_report_write(&f.r), DD_ERR_IO);
    assert_non_null(strstr(dd_error_message(), dir));
    assert_non_null(strstr(dd_error_message(), "curves.csv"));
    assert_no_temporary(g_dir);
    dd_distilled_destroy(f.set);
}

/* A grid too large at report.png_scale is drawn smaller; too large at
 * scale 1 it is left out (with a warning), and the report still succeeds. */
static void test_report_large_grid(void **state) {
    (void)state;
    for (int wide = 0; wide < 2; wide++) {
        dd_distilled *set;
        const int W = wide ? 5000 : 2100;
        unlink(path_of("distilled.png"));
        assert_int_equal(dd_distilled_create(2, 1, 1, 1, 1, 8, W, 0.02f, &set), DD_OK);
        const dd_report_info r = {.out_dir = g_dir, .set = set, .png = 1, .png_scale = 4};
        assert_int_equal(dd_report_write(&r), DD_OK);
        char *md = read_text("report.md");
        if (wide) {
            assert_int_not_equal(access(path_of("distilled.png"), F_OK), 0);
            assert_null(strstr(md, "distilled.png)"));
        } else {
            png p = load("distilled.png");
            assert_true(p.w >= 2 * W && p.w < 3 * W); // scale 1, not 4
            free(p.px);
            assert_non_null(strstr(md, "![distilled images](distilled.png)"));
        }
        free(md);
        dd_distilled_destroy(set);
    }
    // The plot itself refuses a grid over its size limit before drawing.
    float px[4] = {0};
    const dd_plot_grid g = {.images = px,
                            .rows = 1,
                            .cols = 1,
                            .channels = 1,
                            .height = 2,
                            .width = 2,
                            .scale = 64,
                            .group = 1};
    assert_int_equal(dd_plot_image_grid(path_of("ok.png"), &g, NULL, NULL), DD_OK);
    dd_plot_grid big = g;
    big.height = DD_PLOT_GRID_MAX_SIDE / 63;
    float *tall = calloc((size_t)big.height * 2, sizeof *tall);
    big.images = tall;
    assert_int_equal(dd_plot_image_grid(path_of("big.png"), &big, NULL, NULL), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "too large"));
    assert_int_not_equal(access(path_of("big.png"), F_OK), 0);
    free(tall);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_grid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_without_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_large_grid, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
