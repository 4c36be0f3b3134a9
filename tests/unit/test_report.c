/* Tests for core/src/report: metrics.json and report.md of a fixed report
 * (every row kind, the objective's section, non-finite values) and of an
 * almost empty one, byte for byte against tests/unit/golden/report/ (as
 * written by the code before report.c was split, with the lines that change
 * from run to run masked), and the atomic writes (no temporary left, a
 * missing directory is an error). */
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
#include <unistd.h>

#include "report/report.h"

static char *read_all(const char *dir, const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16;
    char *s = malloc(cap);
    size_t n = s ? fread(s, 1, cap - 1, f) : 0;
    fclose(f);
    if (s) s[n] = '\0';
    return s;
}

/* Replaces the rest of the line after `marker` (a value that changes from
 * run to run: memory, the date) with "*". */
static void mask_after(char *s, const char *marker) {
    char *p = strstr(s, marker);
    if (!p) return;
    p += strlen(marker);
    char *eol = strchr(p, '\n');
    if (!eol) return;
    *p = '*';
    memmove(p + 1, eol, strlen(eol) + 1);
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

static void stats(dd_eval_stats *s, double mean, double std, double loss, int nets) {
    memset(s, 0, sizeof *s);
    s->mean = mean, s->std = std, s->loss = loss, s->nets = nets;
    s->n_metrics = 2;
    s->metric_mean[0] = mean, s->metric_std[0] = std;
    s->metric_mean[1] = mean / 2, s->metric_std[1] = std / 2;
}

static const dd_objective_report_key keys[] = {
    {"success_before", 0, DD_REPORT_BEFORE_MEAN}, {"success_mean", 0, DD_REPORT_AFTER_MEAN},
    {"success_std", 0, DD_REPORT_AFTER_STD},      {"other_after", 1, DD_REPORT_AFTER_MEAN},
    {"missing_after", 5, DD_REPORT_AFTER_MEAN},   {NULL, 0, 0},
};
static const char *const metric_names[] = {"accuracy", "other", NULL};
static const char *const class_names[] = {"zero", "one \"1\"", "two"};

/* A report with every kind of row: learned and fixed step sizes, three core
 * baselines (one without step sizes), an objective baseline, full training,
 * the objective's section, and a NaN and an infinity. */
static void fill_full(dd_report_info *r, dd_distilled *set, dd_distill_config *c,
                      dd_distill_stats *st, dd_eval_report *ev, float *lrs_a, float *lrs_b) {
    for (int k = 0; k < set->steps * set->epochs; k++) {
        set->lrs[k] = 0.02f + 0.001f * (float)k;
        lrs_a[k] = 0.01f * (float)(k + 1);
        lrs_b[k] = 1.0f / 3.0f + (float)k;
    }
    assert_int_equal(dd_distill_config_from_defaults(c), DD_OK);
    c->steps = set->steps, c->epochs = set->epochs, c->images_per_class = set->images_per_class;
    c->init_mode = DD_INIT_RANDOM, c->nets_per_iteration = 4, c->batch_real = 256, c->seed = 7;
    memset(st, 0, sizeof *st);
    st->iterations = 30, st->seconds = 12.5, st->seconds_per_iteration = 12.5 / 30;
    st->last_loss = 1.808762126, st->last_metric = 0.4326171875;
    memset(ev, 0, sizeof *ev);
    ev->metric = "accuracy", ev->init_mode = DD_INIT_RANDOM, ev->nets = 3;
    ev->has_distilled = 1;
    stats(&ev->distilled, 0.4506, 1.606187587e-09, 1.765567889, 3);
    stats(&ev->fixed_lr, 0.3742, 0, 1.937228102, 3);
    stats(&ev->untrained, 0.1212, 0.01, NAN, 3);
    ev->fixed_lr_value = 0.02;
    ev->n_baselines = 3, ev->protocols = DD_PROTOCOL_STEPS;
    dd_lr_search_defaults(&ev->search);
    const dd_baseline_kind kinds[3] = {DD_BASELINE_RANDOM, DD_BASELINE_AVERAGE, DD_BASELINE_KMEANS};
    for (int i = 0; i < 3; i++) {
        ev->baselines[i].kind = kinds[i];
        stats(&ev->baselines[i].stats, 0.441 - 0.05 * i, 3.497045705e-09, 1.9, 3);
        stats(&ev->baselines[i].stats_init_lr, 0.434 - 0.05 * i, 0, 2.0, 3);
        ev->baselines[i].search = (dd_lr_search_result){5, i == 1, 1.9};
    }
    ev->baselines[0].lrs = lrs_a;
    ev->baselines[2].lrs = lrs_b;
    ev->baselines[1].stats.std = INFINITY;
    ev->seconds = 95.21974802;
    ev->metric_names = metric_names, ev->n_metrics = 2;
    ev->report_section = "attack", ev->report_keys = keys;
    ev->n_extra = 1;
    ev->extra[0].name = "relabel";
    stats(&ev->extra[0].stats, 0.2, 0.1, 2.2, 3);
    stats(&ev->extra[0].stats_init_lr, 0.15, 0.05, 2.3, 3);
    ev->extra[0].lrs = lrs_a;
    ev->has_full_training = 1, ev->full_training_epochs = 2;
    stats(&ev->full_training, 0.9, 0.002, 0.3, 3);
    // every protocol, the step curves and the per-class accuracy
    static double curve_d[5] = {0.1, 0.2, 0.3, 0.4, 0.4506},
                  curve_r[5] = {0.1, 0.15, 0.3, 0.35, 0.441};
    static double before[3] = {0.5, 0.25, 0}, after[3] = {0.75, 0.5, 0.125};
    ev->curve_len = 5, ev->curve_distilled = curve_d, ev->baselines[0].curve = curve_r;
    ev->n_classes = 3, ev->class_before = before, ev->class_after = after;
    ev->protocols |= DD_PROTOCOL_STANDARD | DD_PROTOCOL_CROSS_ARCH;
    ev->standard = (dd_standard_training){300, 5, 0.01, 0.9, 5e-4, 256, 2, 1};
    stats(&ev->standard_distilled, 0.35, 0.02, 1.5, 5);
    for (int i = 0; i < 3; i++)
        stats(&ev->baselines[i].standard, 0.3 - 0.01 * i, 0.01, 1.6, 5);
    stats(&ev->extra[0].standard, 0.1, 0, 2.3, 5);
    ev->has_knn = 1, ev->knn_k = 3, ev->knn_distance = DD_KNN_COSINE;
    ev->knn_distilled = 0.61, ev->knn_has_distilled = 1;
    for (int i = 0; i < 3; i++)
        ev->baselines[i].knn = 0.5 + 0.01 * i;
    ev->n_arch = 1;
    ev->arch[0].name = "convnet", ev->arch[0].nets = 5;
    stats(&ev->arch[0].untrained, 0.1, 0.01, 2.3, 5);
    stats(&ev->arch[0].distilled, 0.33, 0.03, 1.7, 5);
    ev->arch[0].distilled_search = (dd_lr_search_result){150, 1, 1.7};
    for (int i = 0; i < 3; i++) {
        stats(&ev->arch[0].baselines[i], 0.31 - 0.02 * i, 0.01, 1.8, 5);
        ev->arch[0].baseline_search[i] = (dd_lr_search_result){1000, 0, 1.8};
    }
    stats(&ev->arch[0].extra[0], 0.11, 0.01, 2.2, 5);
    memset(r, 0, sizeof *r);
    r->run_name = "golden", r->dataset = "fashion-mnist", r->model = "lenet";
    r->objective = "poison", r->backend = "onednn";
    r->config_yaml = "name: golden\nseed: 7";
    r->class_names = class_names, r->set = set, r->distill = c, r->stats = st, r->eval = ev;
    r->threads = 2;
}

/* The output file with the lines that change from run to run masked. */
static char *read_masked(const char *dir, const char *name) {
    char *s = read_all(dir, name);
    if (!s) return NULL;
    mask_after(s, "\"peak_memory_mib\": ");
    mask_after(s, "| peak memory | ");
    mask_after(s, "\nWritten ");
    return s;
}

/* dir/name, masked, against the expected file `golden`. */
static void check_file(const char *dir, const char *name, const char *golden) {
    const char *src = getenv("DISTILL_SOURCE_DIR");
    char gdir[512];
    snprintf(gdir, sizeof gdir, "%s/tests/unit/golden/report", src ? src : DD_TEST_SOURCE_DIR);
    char *got = read_masked(dir, name);
    assert_non_null(got);
    if (getenv("DISTILL_UPDATE_GOLDEN")) { // rewrite the expected file (then review the diff)
        char path[600];
        snprintf(path, sizeof path, "%s/%s", gdir, golden);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(got, f);
        fclose(f);
    }
    char *want = read_all(gdir, golden);
    assert_non_null(want);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "%s/%s differs from %s/%s; it is:\n%s", dir, name, gdir, golden, got);
    assert_string_equal(got, want);
    free(want);
    free(got);
}

static void test_full_report(void **state) {
    (void)state;
    char dir[] = "/tmp/test_report_XXXXXX";
    assert_non_null(mkdtemp(dir));
    dd_distilled *set;
    assert_int_equal(dd_distilled_create(2, 2, 1, 3, 1, 2, 2, 0.02f, &set), DD_OK);
    dd_distill_config c;
    dd_distill_stats st;
    dd_eval_report ev;
    dd_report_info r;
    float lrs_a[4], lrs_b[4];
    fill_full(&r, set, &c, &st, &ev, lrs_a, lrs_b);
    r.out_dir = dir;
    assert_int_equal(dd_report_write(&r), DD_OK);
    check_file(dir, "metrics.json", "full-metrics.json");
    check_file(dir, "report.md", "full-report.md");
    // Only the outputs are left: no temporary files.
    static const char *const outputs[] = {"metrics.json",
                                          "report.md",
                                          "distilled.png",
                                          "lrs.csv",
                                          "distilled-images.idx",
                                          "distilled-labels.idx",
                                          "distilled.json",
                                          "distilled.npz",
                                          "steps.png",
                                          "classes.png"};
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int known = 0;
        for (size_t i = 0; i < sizeof outputs / sizeof outputs[0]; i++)
            known |= strcmp(e->d_name, outputs[i]) == 0;
        if (!known) fprintf(stderr, "unexpected file %s\n", e->d_name);
        assert_true(known);
        n++;
    }
    closedir(d);
    // no distilled.png (png = 0), no curves (no histories); steps.png and
    // classes.png (step curves, per-class accuracy, a report section)
    assert_int_equal(n, 9);
    rm_dir(dir);
    dd_distilled_destroy(set);
}

/* Nothing but an evaluation with another metric and no rows but the
 * untrained networks. */
static void test_minimal_report(void **state) {
    (void)state;
    char dir[] = "/tmp/test_report_XXXXXX";
    assert_non_null(mkdtemp(dir));
    dd_eval_report ev;
    memset(&ev, 0, sizeof ev);
    ev.metric = "mse", ev.init_mode = DD_INIT_PRETRAINED_FIXED, ev.nets = 1;
    ev.protocols = DD_PROTOCOL_STEPS;
    stats(&ev.untrained, 0.25, 0, 0.5, 1);
    dd_report_info r = {.out_dir = dir, .eval = &ev};
    assert_int_equal(dd_report_write(&r), DD_OK);
    check_file(dir, "metrics.json", "minimal-metrics.json");
    check_file(dir, "report.md", "minimal-report.md");
    rm_dir(dir);
}

static void test_missing_dir(void **state) {
    (void)state;
    dd_report_info r = {.out_dir = "/nonexistent/test_report"};
    assert_int_equal(dd_report_write(&r), DD_ERR_IO);
    assert_non_null(strstr(dd_error_message(), "/nonexistent/test_report/metrics.json"));
    dd_report_info none = {0};
    assert_int_equal(dd_report_write(&none), DD_ERR_INVALID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_report),
        cmocka_unit_test(test_minimal_report),
        cmocka_unit_test(test_missing_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
