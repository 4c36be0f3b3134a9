/* End-to-end test of `distill run` through the engine stages: the run
 * directory's outputs, and SIGINT + `--resume` reaching exactly the same
 * distilled set as an uninterrupted run (same seed, same thread count). */
#define _GNU_SOURCE
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "distill/image.h"
#include "readers_gen.h"
#include "report/plot.h"

static char *g_dir;
static char g_cli[4096];

/* Starts `distill run PIPELINE --out OUT [--resume]`, stderr to OUT.log. */
static pid_t spawn_run(const char *out, int resume) {
    char *pipeline = rg_strf("%s/p.yaml", g_dir);
    char *log = rg_strf("%s%s.log", out, resume ? "-resume" : "");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        // One thread: the comparison needs equal thread counts, and tiny
        // batches gain nothing from a second thread on a loaded machine.
        setenv("OMP_NUM_THREADS", "1", 1);
        if (resume)
            execl(g_cli, g_cli, "run", pipeline, "--out", out, "--resume", (char *)NULL);
        else
            execl(g_cli, g_cli, "run", pipeline, "--out", out, (char *)NULL);
        _exit(127);
    }
    free(pipeline);
    free(log);
    return pid;
}

static int wait_exit(pid_t pid) {
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *d = NULL;
    if (rg_read_file(path, &d, n) != DD_OK) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    return d;
}

static void assert_same_file(const char *a_dir, const char *b_dir, const char *name) {
    char *a = rg_strf("%s/%s", a_dir, name), *b = rg_strf("%s/%s", b_dir, name);
    size_t na, nb;
    uint8_t *da = slurp(a, &na), *db = slurp(b, &nb);
    assert_non_null(da);
    assert_non_null(db);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    free(da);
    free(db);
    free(a);
    free(b);
}

static int setup(void **st) {
    const char *bin = getenv("DISTILL_BINARY_DIR");
    snprintf(g_cli, sizeof g_cli, "%s/bin/distill", bin ? bin : ".");
    if (access(g_cli, X_OK) != 0) {
        fprintf(stderr, "no CLI at %s\n", g_cli);
        return -1;
    }
    if (rg_mkdtemp("engine-cli", &g_dir) != DD_OK) return -1;
    char *data = rg_strf("%s/data", g_dir);
    if (rg_mkdirs(data) != DD_OK || rg_write_mnist(data, 300, 100, 28, 28, 0) != DD_OK) return -1;
    char *yaml = rg_strf("name: cli-test\n"
                         "seed: 3\n"
                         "stages: [load, distill, evaluate, report]\n"
                         "dataset: {plugin: mnist, name: mnist, path: %s}\n"
                         "model: {plugin: lenet, backend: onednn}\n"
                         "objective: {plugin: classification}\n"
                         "distill:\n"
                         "  steps: 2\n  epochs: 2\n  images_per_class: 1\n"
                         "  iterations: 40\n  batch_real: 50\n  checkpoint_every: 1\n"
                         "  optimizer: {decay_every: 15}\n"
                         "evaluate: {nets: 2, lr_search: 3, batch: 50,\n"
                         "           baselines: [random, average, kmeans, best_of_random, knn],\n"
                         "           best_of_random_n: 3, best_of_random_holdout: 50}\n",
                         data);
    char *p = rg_strf("%s/p.yaml", g_dir);
    dd_status s = rg_write_text(p, yaml);
    free(yaml);
    free(p);
    free(data);
    return s == DD_OK ? 0 : -1;
}

static int teardown(void **st) {
    if (g_dir && !getenv("KEEP_TMP")) rg_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* Runs the test pipeline with one extra --set; returns its stderr (malloc'ed)
 * and checks that the run failed with exit code 1. */
static char *run_failing(const char *tag, const char *set) {
    char *out = rg_strf("%s/%s", g_dir, tag), *log = rg_strf("%s/%s.log", g_dir, tag);
    char *cmd =
        rg_strf("'%s' run '%s/p.yaml' --out '%s' --set %s 2>'%s'", g_cli, g_dir, out, set, log);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 1);
    size_t n = 0;
    uint8_t *text = slurp(log, &n);
    assert_non_null(text);
    char *t = rg_strf("%.*s", (int)n, (const char *)text);
    free(text);
    free(cmd);
    free(log);
    free(out);
    return t;
}

// A real batch larger than the training set is an error naming the option
// (it was silently cut to the set: a batch of 1,000,000 ran at 11 GB).
static void test_batch_larger_than_dataset(void **st) {
    (void)st;
    char *t = run_failing("big", "distill.batch_real=1000000");
    if (!strstr(t, "--set distill.batch_real: invalid value for 'distill.batch_real': 1000000 is "
                   "larger than the training set (300 images); use at most 300"))
        fail_msg("unexpected error output:\n%s", t);
    free(t);
}

// The resource limits are options: each refusal names the option to raise.
static void test_resource_limits(void **st) {
    (void)st;
    char *t = run_failing("unroll", "distill.max_unrolled_images=39");
    if (!strstr(t, "2 × 2 × 1 × 10 = 40 unrolled images exceeds the limit of 39 "
                   "(distill.max_unrolled_images"))
        fail_msg("unexpected error output:\n%s", t);
    free(t);
    t = run_failing("bytes", "dataset.max_bytes=100000");
    if (!strstr(t, "above the limit") || !strstr(t, "(dataset.max_bytes;"))
        fail_msg("unexpected error output:\n%s", t);
    free(t);
}

static void test_run_outputs_and_resume(void **st) {
    char *a = rg_strf("%s/a", g_dir), *b = rg_strf("%s/b", g_dir);
    // Uninterrupted.
    assert_int_equal(wait_exit(spawn_run(a, 0)), 0);
    static const char *const files[] = {
        "config.yaml",    "checkpoint.bin", "distilled.png",        "lrs.csv",
        "metrics.json",   "report.md",      "distilled-images.idx", "distilled-labels.idx",
        "distilled.json", "distilled.npz",  "curves.png",           "curves.csv",
        "steps.png"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *f = rg_strf("%s/%s", a, files[i]);
        struct stat sb;
        if (stat(f, &sb) != 0) fprintf(stderr, "missing %s\n", f);
        assert_int_equal(stat(f, &sb), 0);
        assert_true(sb.st_size > 0);
        free(f);
    }
    char *mpath = rg_strf("%s/metrics.json", a);
    size_t n;
    char *metrics = (char *)slurp(mpath, &n);
    assert_non_null(metrics);
    metrics = realloc(metrics, n + 1);
    metrics[n] = '\0';
    static const char *const keys[] = {"\"distilled\": {\"test_accuracy_mean\"",
                                       "\"test_accuracy_std\"",
                                       "\"baselines\": {",
                                       "\"random\": {",
                                       "\"average\": {",
                                       "\"kmeans\": {",
                                       "\"iterations\": 40",
                                       "\"seconds_per_iteration\"",
                                       "\"nets\": 1",
                                       "\"knn\": {",
                                       "\"best_of_random\": {",
                                       ("\"best_of_random_selection\": {\"subsets\": 3, "
                                        "\"holdout_images\": 50}"),
                                       "\"k\": 1",
                                       "\"distance\": \"euclidean\""};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        if (!strstr(metrics, keys[i])) fprintf(stderr, "metrics.json lacks %s\n", keys[i]);
        assert_non_null(strstr(metrics, keys[i]));
    }
    free(metrics);
    free(mpath);
    // lrs.csv: header + steps × epochs rows.
    char *lpath = rg_strf("%s/lrs.csv", a);
    char *lrs = (char *)slurp(lpath, &n);
    int lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += lrs[i] == '\n';
    assert_int_equal(lines, 1 + 4);
    free(lrs);
    free(lpath);
    // curves.csv: header + one row per iteration, one step-size column per
    // inner step; curves.png the three panels; distilled.png labelled.
    char *cpath = rg_strf("%s/curves.csv", a);
    char *curves = (char *)slurp(cpath, &n);
    assert_non_null(curves);
    lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += curves[i] == '\n';
    assert_int_equal(lines, 1 + 40);
    const char header[] = "iteration,outer_loss,batch_accuracy,lr_1,lr_2,lr_3,lr_4\n";
    assert_true(n > sizeof header);
    assert_memory_equal(curves, header, sizeof header - 1);
    free(curves);
    free(cpath);
    char *png_path = rg_strf("%s/curves.png", a);
    uint8_t *px;
    int w, h, c;
    assert_int_equal(dd_image_read_png(png_path, &px, &w, &h, &c), DD_OK);
    assert_int_equal(w, DD_PLOT_WIDTH);
    assert_int_equal(h, 3 * DD_PLOT_PANEL_HEIGHT);
    free(px);
    free(png_path);
    png_path = rg_strf("%s/steps.png", a); // the evaluation's step curves
    assert_int_equal(dd_image_read_png(png_path, &px, &w, &h, &c), DD_OK);
    assert_int_equal(w, DD_PLOT_WIDTH);
    assert_int_equal(h, DD_PLOT_PANEL_HEIGHT);
    free(px);
    free(png_path);
    png_path = rg_strf("%s/distilled.png", a);
    assert_int_equal(dd_image_read_png(png_path, &px, &w, &h, &c), DD_OK);
    assert_true(w > 2 * 28 * 4 && h > 10 * 28 * 4); // 10 classes × 2 steps at scale 4, labels
    free(px);
    free(png_path);

    // Interrupted as soon as the first checkpoint exists, then resumed.
    pid_t pid = spawn_run(b, 0);
    char *ck = rg_strf("%s/checkpoint.bin", b);
    struct timespec ts = {0, 2000000};
    for (int i = 0; i < 30000 && access(ck, F_OK) != 0; i++)
        nanosleep(&ts, NULL);
    assert_int_equal(access(ck, F_OK), 0);
    kill(pid, SIGINT);
    int code = wait_exit(pid);
    char *log = rg_strf("%s.log", b);
    size_t ln;
    char *text = (char *)slurp(log, &ln);
    text = realloc(text, ln + 1);
    text[ln] = '\0';
    printf("interrupted run: exit %d\n", code);
    if (code != 0) {
        // Stopped in the distill stage: it says so and how to continue.
        if (code < 128) assert_non_null(strstr(text, "--resume"));
    }
    free(text);
    assert_int_equal(wait_exit(spawn_run(b, 1)), 0);
    assert_same_file(a, b, "distilled-images.idx");
    assert_same_file(a, b, "lrs.csv");
    assert_same_file(a, b, "distilled.npz"); // fixed zip timestamps: same set, same bytes
    // The histories survive the interruption: the same curves.
    assert_same_file(a, b, "curves.csv");
    assert_same_file(a, b, "curves.png");
    free(log);
    free(ck);
    free(a);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_larger_than_dataset),
        cmocka_unit_test(test_resource_limits),
        cmocka_unit_test(test_run_outputs_and_resume),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
