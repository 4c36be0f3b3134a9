/* End-to-end test of `distill evaluate SOURCE [PIPELINE]`: a tiny fixed-init
 * run evaluated again from its directory gives the same distilled numbers
 * and leaves the run's files as they were; an .npz written by this test (in
 * another step order, with hard or soft labels) evaluates with a pipeline;
 * every bad input is refused with a message naming the file and the array. */
#define _GNU_SOURCE
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "npy_gen.h"
#include "readers_gen.h"

enum { S = 2, E = 2, K = 10, M = K, N = S * M, HW = 28 * 28 };

static char *g_dir;
static char g_cli[4096];
static float g_images[N * HW]; // the run's set, read back from its IDX export
static float g_lrs[E * S];

/* Runs `distill ARGS` (one thread, as the run), checks the exit status and
 * returns its stderr (malloc'ed). */
static char *cli(int want_rc, const char *args) {
    char *log = rg_strf("%s/cli.log", g_dir);
    char *cmd = rg_strf("cd '%s' && OMP_NUM_THREADS=1 '%s' %s 2>'%s'", g_dir, g_cli, args, log);
    int rc = system(cmd);
    char *t = rg_read_text(log);
    assert_non_null(t);
    assert_true(WIFEXITED(rc));
    if (WEXITSTATUS(rc) != want_rc)
        fail_msg("distill %s: exit %d, expected %d:\n%s", args, WEXITSTATUS(rc), want_rc, t);
    free(cmd);
    free(log);
    return t;
}

static void expect_error(const char *args, const char *what) {
    char *t = cli(1, args);
    if (!strstr(t, what)) fail_msg("distill %s: expected '%s' in:\n%s", args, what, t);
    free(t);
}

/* The text of metrics.json's "distilled": {...} object. */
static char *distilled_row(const char *metrics_path) {
    char *t = rg_read_text(metrics_path);
    if (!t) fail_msg("no %s", metrics_path);
    char *a = strstr(t, "\"distilled\": {");
    assert_non_null(a);
    char *b = strchr(a, '}');
    assert_non_null(b);
    char *row = rg_strf("%.*s", (int)(b - a + 1), a);
    free(t);
    return row;
}

static double row_value(const char *row, const char *key) {
    char *k = rg_strf("\"%s\": ", key);
    const char *p = strstr(row, k);
    assert_non_null(p);
    double v = strtod(p + strlen(k), NULL);
    free(k);
    return v;
}

static uint32_t be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int setup(void **st) {
    (void)st;
    const char *bin = getenv("DISTILL_BINARY_DIR");
    snprintf(g_cli, sizeof g_cli, "%s/bin/distill", bin ? bin : ".");
    if (access(g_cli, X_OK) != 0) {
        fprintf(stderr, "no CLI at %s\n", g_cli);
        return -1;
    }
    if (rg_mkdtemp("evaluate-cli", &g_dir) != DD_OK) return -1;
    char *data = rg_strf("%s/data", g_dir);
    if (rg_mkdirs(data) != DD_OK || rg_write_mnist(data, 300, 100, 28, 28, 0) != DD_OK) return -1;
    char *yaml = rg_strf("name: evaluate-test\n"
                         "seed: 5\n"
                         "stages: [load, distill, evaluate, report]\n"
                         "dataset: {plugin: mnist, name: mnist, path: %s}\n"
                         "model: {plugin: lenet, backend: onednn}\n"
                         "objective: {plugin: classification}\n"
                         "distill:\n"
                         "  steps: %d\n  epochs: %d\n  images_per_class: 1\n  init_mode: fixed\n"
                         "  iterations: 30\n  batch_real: 50\n"
                         "evaluate: {nets: 2, lr_search: 2, batch: 50, baselines: [random]}\n",
                         data, S, E);
    char *p = rg_strf("%s/p.yaml", g_dir);
    dd_status s = rg_write_text(p, yaml);
    free(yaml);
    free(p);
    free(data);
    if (s != DD_OK) return -1;
    char *t = cli(0, "-q run p.yaml --out run");
    free(t);
    // The run's set, for the .npz tests to write in their own layout.
    char *ip = rg_strf("%s/run/distilled-images.idx", g_dir);
    uint8_t *d = NULL;
    size_t n = 0;
    s = rg_read_file(ip, &d, &n);
    free(ip);
    if (s != DD_OK || n != 16 + sizeof g_images || be32(d + 4) != N) return -1;
    for (size_t i = 0; i < (size_t)N * HW; i++) {
        uint32_t u = be32(d + 16 + 4 * i);
        memcpy(&g_images[i], &u, 4);
    }
    free(d);
    char *lp = rg_strf("%s/run/lrs.csv", g_dir);
    FILE *f = fopen(lp, "r");
    free(lp);
    if (!f) return -1;
    char line[256];
    int k = 0;
    while (fgets(line, sizeof line, f))
        if (k < E * S && line[0] != 'k') {
            int kk, e, ss;
            if (sscanf(line, "%d,%d,%d,%f", &kk, &e, &ss, &g_lrs[k]) == 4) k++;
        }
    fclose(f);
    return k == E * S ? 0 : -1;
}

static int teardown(void **st) {
    (void)st;
    if (g_dir && !getenv("KEEP_TMP")) rg_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* ---- the run directory ---------------------------------------------------- */

static const char *const run_files[] = {"config.yaml",   "metrics.json", "report.md",
                                        "distilled.npz", "lrs.csv",      "distilled-images.idx",
                                        "checkpoint.bin"};
enum { N_RUN_FILES = sizeof run_files / sizeof *run_files };

static void test_run_dir(void **st) {
    (void)st;
    char *before[N_RUN_FILES];
    size_t before_n[N_RUN_FILES];
    for (int i = 0; i < N_RUN_FILES; i++) {
        char *p = rg_strf("%s/run/%s", g_dir, run_files[i]);
        assert_int_equal(rg_read_file(p, (uint8_t **)&before[i], &before_n[i]), DD_OK);
        free(p);
    }
    // twice: the second replaces the first evaluation
    for (int round = 0; round < 2; round++) {
        char *t = cli(0, "evaluate run");
        free(t);
    }
    char *m1 = rg_strf("%s/run/metrics.json", g_dir),
         *m2 = rg_strf("%s/run/evaluation/metrics.json", g_dir);
    char *r1 = distilled_row(m1), *r2 = distilled_row(m2);
    // Fixed init: θ0 is re-derived from the seed exactly as the distillation
    // drew it, so the numbers are the same to the last digit.
    assert_string_equal(r1, r2);
    assert_true(row_value(r2, "nets") == 1);
    for (int i = 0; i < N_RUN_FILES; i++) {
        char *p = rg_strf("%s/run/%s", g_dir, run_files[i]);
        uint8_t *now = NULL;
        size_t n = 0;
        assert_int_equal(rg_read_file(p, &now, &n), DD_OK);
        assert_int_equal(n, before_n[i]);
        assert_memory_equal(now, before[i], n);
        free(now);
        free(p);
        free(before[i]);
    }
    char *cp = rg_strf("%s/run/evaluation/config.yaml", g_dir);
    char *cfg = rg_read_text(cp);
    assert_non_null(cfg);
    assert_true(
        strncmp(cfg, "# distill evaluate: the distilled set in run (2 steps × 2 epochs", 60) == 0);
    assert_non_null(strstr(cfg, "stages: [load, evaluate, report]"));
    free(cfg);
    free(cp);
    char *rp = rg_strf("%s/run/evaluation/report.md", g_dir);
    char *rep = rg_read_text(rp);
    assert_non_null(rep);
    free(rep);
    free(rp);
    // --set applies on top of the run's config.yaml
    char *t = cli(0, "-q evaluate run --out ev-set --set evaluate.baselines=[average]");
    free(t);
    char *m3 = rg_strf("%s/ev-set/metrics.json", g_dir);
    char *all = rg_read_text(m3);
    assert_non_null(all);
    assert_non_null(strstr(all, "\"average\""));
    free(all);
    free(m3);
    free(r1);
    free(r2);
    free(m1);
    free(m2);
}

// Pretrained-fixed init: the pretrain stage runs again (its pool is cached)
// and the evaluation starts from the distillation's pretrained θ0, not from
// a held-out one: the same numbers again.
static void test_run_dir_pretrained_fixed(void **st) {
    (void)st;
    char *data = rg_strf("%s/data", g_dir);
    char *yaml = rg_strf("name: evaluate-pretrained\n"
                         "seed: 4\n"
                         "stages: [load, pretrain, distill, evaluate, report]\n"
                         "dataset: {plugin: mnist, name: mnist, path: %s, cache_dir: cache}\n"
                         "model: {plugin: lenet, backend: onednn}\n"
                         "objective: {plugin: classification}\n"
                         "pretrain: {nets: 3, holdout: 1, epochs: 1, batch: 50}\n"
                         "distill:\n"
                         "  steps: 2\n  epochs: 1\n  images_per_class: 1\n"
                         "  init_mode: pretrained-fixed\n  iterations: 10\n  batch_real: 50\n"
                         "evaluate: {nets: 2, lr_search: 2, batch: 50, baselines: [random]}\n",
                         data);
    char *p = rg_strf("%s/pp.yaml", g_dir);
    assert_int_equal(rg_write_text(p, yaml), DD_OK);
    char *t = cli(0, "-q run pp.yaml --out runp");
    free(t);
    t = cli(0, "-q evaluate runp");
    free(t);
    char *m1 = rg_strf("%s/runp/metrics.json", g_dir),
         *m2 = rg_strf("%s/runp/evaluation/metrics.json", g_dir);
    char *r1 = distilled_row(m1), *r2 = distilled_row(m2);
    assert_string_equal(r1, r2);
    char *cp = rg_strf("%s/runp/evaluation/config.yaml", g_dir);
    char *cfg = rg_read_text(cp);
    assert_non_null(strstr(cfg, "stages: [load, pretrain, evaluate, report]"));
    free(cfg);
    free(cp);
    free(r1);
    free(r2);
    free(m1);
    free(m2);
    free(p);
    free(yaml);
    free(data);
}

// Learned (soft) labels come back from the export (distilled-soft-labels.idx)
// and from distill's own distilled.npz (float labels): the same numbers.
static void test_run_dir_learned_labels(void **st) {
    (void)st;
    char *t = cli(0, "-q run p.yaml --out runs --set distill.learn_labels=true");
    free(t);
    t = cli(0, "-q evaluate runs");
    free(t);
    t = cli(0, "-q evaluate runs/distilled.npz");
    free(t);
    char *m1 = rg_strf("%s/runs/metrics.json", g_dir),
         *m2 = rg_strf("%s/runs/evaluation/metrics.json", g_dir),
         *m3 = rg_strf("%s/runs/distilled-evaluation/metrics.json", g_dir);
    char *r1 = distilled_row(m1), *r2 = distilled_row(m2), *r3 = distilled_row(m3);
    assert_string_equal(r1, r2);
    assert_string_equal(r1, r3);
    char *cp = rg_strf("%s/runs/distilled-evaluation/config.yaml", g_dir);
    char *cfg = rg_read_text(cp);
    assert_non_null(strstr(cfg, "soft labels"));
    free(cfg);
    free(cp);
    free(r1);
    free(r2);
    free(r3);
    free(m1);
    free(m2);
    free(m3);
}

// A directory holding only a distilled.npz: the set is read from it, and
// without a config.yaml a PIPELINE is needed.
static void test_dir_with_only_the_npz(void **st) {
    (void)st;
    char *src = rg_strf("%s/run/distilled.npz", g_dir),
         *dst = rg_strf("%s/bare/distilled.npz", g_dir);
    uint8_t *d = NULL;
    size_t n = 0;
    assert_int_equal(rg_read_file(src, &d, &n), DD_OK);
    assert_int_equal(rg_write_file(dst, d, n), DD_OK);
    free(d);
    expect_error("evaluate bare", "bare: no config.yaml (the pipeline the set was distilled with); "
                                  "give a PIPELINE");
    char *t = cli(0, "-q evaluate bare p.yaml");
    free(t);
    char *m1 = rg_strf("%s/run/metrics.json", g_dir),
         *m2 = rg_strf("%s/bare/evaluation/metrics.json", g_dir);
    char *r1 = distilled_row(m1), *r2 = distilled_row(m2);
    assert_string_equal(r1, r2);
    free(r1);
    free(r2);
    free(m1);
    free(m2);
    free(src);
    free(dst);
}

/* ---- an .npz written by the test ------------------------------------------ */

typedef struct npz_spec {
    int interleave;   // image i of step s stored at index i·S + s (with a 'step' array)
    int soft;         // one-hot float32 labels instead of int64
    int with_step;    // write the 'step' array
    float lr_bad;     // if nonzero: lrs[0][1]
    const char *drop; // leave this array out
    const char *images_descr, *images_shape;
    int label_bad;   // if nonzero: the label of image 0 (and its copies in every step)
    float mean, std; // with 'mean' and 'std' arrays when std > 0
} npz_spec;

static void write_npz(const char *name, const npz_spec *sp) {
    static float x[N * HW], soft[N * K];
    int64_t lab[N], step[N];
    for (int s = 0; s < S; s++)
        for (int j = 0; j < M; j++) {
            int at = sp->interleave ? j * S + s : s * M + j;
            memcpy(&x[(size_t)at * HW], &g_images[(size_t)(s * M + j) * HW], HW * sizeof(float));
            lab[at] = j % K;
            if (sp->label_bad && j == 0) lab[at] = sp->label_bad;
            step[at] = s;
            for (int k = 0; k < K; k++)
                soft[at * K + k] = k == j % K ? 1.f : 0.f;
        }
    float lrs[E * S];
    memcpy(lrs, g_lrs, sizeof lrs);
    if (sp->lr_bad != 0.f) lrs[1] = sp->lr_bad;
    const char *names[7];
    rg_blob m[7];
    int n = 0;
    char shape[64];
    snprintf(shape, sizeof shape, "(%d, 1, 28, 28)", N);
#define ADD(nm, b)                                                                                 \
    do {                                                                                           \
        if (!sp->drop || strcmp(sp->drop, nm) != 0) {                                              \
            names[n] = nm ".npy";                                                                  \
            m[n++] = (b);                                                                          \
        }                                                                                          \
    } while (0)
    ADD("images", rg_npy(sp->images_descr ? sp->images_descr : "<f4",
                         sp->images_shape ? sp->images_shape : shape, x, sizeof x));
    char lshape[32];
    snprintf(lshape, sizeof lshape, "(%d, %d)", N, K);
    if (sp->soft)
        ADD("labels", rg_npy("<f4", lshape, soft, sizeof soft));
    else
        ADD("labels", rg_npy("<i8", "(20,)", lab, sizeof lab));
    ADD("lrs", rg_npy("<f4", "(2, 2)", lrs, sizeof lrs));
    if (sp->with_step || sp->interleave) ADD("step", rg_npy("<i8", "(20,)", step, sizeof step));
    if (sp->std > 0) {
        ADD("mean", rg_npy("<f4", "(1,)", &sp->mean, sizeof(float)));
        ADD("std", rg_npy("<f4", "(1,)", &sp->std, sizeof(float)));
    }
#undef ADD
    char *path = rg_strf("%s/%s", g_dir, name);
    assert_int_equal(rg_write_zip(path, names, m, n, 0), DD_OK);
    for (int k = 0; k < n; k++)
        free(m[k].p);
    free(path);
}

static void test_npz_from_the_test(void **st) {
    (void)st;
    // The run's set in another order (the 'step' array says which image
    // belongs where), with a pipeline: the same distilled numbers.
    npz_spec sp = {.interleave = 1};
    write_npz("mine.npz", &sp);
    char *t = cli(0, "-q evaluate mine.npz p.yaml");
    free(t);
    char *m1 = rg_strf("%s/run/metrics.json", g_dir),
         *m2 = rg_strf("%s/mine-evaluation/metrics.json", g_dir);
    char *r1 = distilled_row(m1), *r2 = distilled_row(m2);
    assert_string_equal(r1, r2);
    char *cp = rg_strf("%s/mine-evaluation/config.yaml", g_dir);
    char *cfg = rg_read_text(cp);
    assert_non_null(cfg);
    assert_non_null(
        strstr(cfg, "mine.npz (2 steps × 2 epochs × 1 image(s) per class, hard labels)"));
    assert_non_null(strstr(cfg, "evaluated with the pipeline p.yaml"));
    free(cfg);
    free(cp);
    free(r2);
    free(m2);

    // Soft (one-hot) labels: the same training targets, so nearly the same loss.
    npz_spec soft = {.soft = 1, .with_step = 1};
    write_npz("soft.npz", &soft);
    t = cli(0, "-q evaluate soft.npz p.yaml --out soft-ev");
    free(t);
    m2 = rg_strf("%s/soft-ev/metrics.json", g_dir);
    r2 = distilled_row(m2);
    assert_true(fabs(row_value(r1, "test_loss") - row_value(r2, "test_loss")) < 1e-3);
    cp = rg_strf("%s/soft-ev/config.yaml", g_dir);
    cfg = rg_read_text(cp);
    assert_non_null(strstr(cfg, "soft labels"));
    free(cfg);
    free(cp);
    free(r1);
    free(r2);
    free(m1);
    free(m2);
}

/* ---- bad input --------------------------------------------------------------- */

static void test_errors(void **st) {
    (void)st;
    expect_error("evaluate nope", "nope: No such file or directory");
    expect_error("evaluate data", "data: has no config.yaml and no distilled set");
    expect_error("evaluate run --out run", "run: is the source's own directory");
    char *t = cli(2, "evaluate");
    assert_non_null(strstr(t, "missing SOURCE"));
    free(t);
    t = cli(2, "evaluate run p.yaml extra");
    assert_non_null(strstr(t, "unexpected argument 'extra'"));
    free(t);

    npz_spec ok = {0};
    write_npz("lonely.npz", &ok);
    expect_error("evaluate lonely.npz", "lonely.npz: an .npz needs a PIPELINE");
    expect_error("evaluate lonely.npz p.yaml --out run", "run: already holds a run's results");
    expect_error("evaluate p.yaml p.yaml", "p.yaml: not a readable .npz (zip) file");

    npz_spec noimg = {.drop = "images"};
    write_npz("noimg.npz", &noimg);
    expect_error("evaluate noimg.npz p.yaml", "noimg.npz: no array 'images'");
    npz_spec nolrs = {.drop = "lrs"};
    write_npz("nolrs.npz", &nolrs);
    expect_error("evaluate nolrs.npz p.yaml", "nolrs.npz: no array 'lrs'");

    npz_spec dtype = {.images_descr = "<i4"};
    write_npz("dtype.npz", &dtype);
    expect_error("evaluate dtype.npz p.yaml",
                 "dtype.npz: array 'images' has dtype '<i4' and shape (20, 1, 28, 28); expected "
                 "float32 (N, C, H, W) with 1 ≤ N");
    npz_spec shape = {.images_shape = "(20, 784)"};
    write_npz("shape.npz", &shape);
    expect_error("evaluate shape.npz p.yaml",
                 "shape.npz: array 'images' has dtype '<f4' and shape (20, 784)");
    // labels that do not match the images: 80 images of 14×14, 20 labels
    npz_spec small = {.images_shape = "(80, 1, 14, 14)"};
    write_npz("small.npz", &small);
    expect_error("evaluate small.npz p.yaml", "array 'labels' has dtype '<i8' and shape (20,); "
                                              "expected integer (80,)");

    npz_spec zero = {.lr_bad = -0.5f};
    write_npz("zero.npz", &zero);
    expect_error(
        "evaluate zero.npz p.yaml",
        "zero.npz: array 'lrs': element [0, 1] is -0.5; step sizes must be finite and > 0");
    npz_spec nan = {.lr_bad = NAN};
    write_npz("nan.npz", &nan);
    expect_error("evaluate nan.npz p.yaml", "nan.npz: array 'lrs': element [0, 1] is nan");

    npz_spec range = {.label_bad = 12};
    write_npz("range.npz", &range);
    expect_error("evaluate range.npz p.yaml",
                 "range.npz: array 'labels' holds label 12, out of range for the dataset");
    npz_spec neg = {.label_bad = -1};
    write_npz("neg.npz", &neg);
    expect_error("evaluate neg.npz p.yaml", "neg.npz: array 'labels': label -1 of image 0");

    npz_spec norm = {.mean = 0.5f, .std = 0.25f};
    write_npz("norm.npz", &norm);
    expect_error("evaluate norm.npz p.yaml",
                 "norm.npz: arrays 'mean' [0.5] and 'std' [0.25] differ from the dataset's "
                 "normalisation");

    // a set that does not fit the pipeline's dataset (same element count)
    npz_spec wide = {.images_shape = "(20, 1, 14, 56)"};
    write_npz("wide.npz", &wide);
    expect_error("evaluate wide.npz p.yaml",
                 "wide.npz: array 'images' holds images of 1×14×56 (C×H×W), the dataset");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_dir),
        cmocka_unit_test(test_run_dir_pretrained_fixed),
        cmocka_unit_test(test_run_dir_learned_labels),
        cmocka_unit_test(test_dir_with_only_the_npz),
        cmocka_unit_test(test_npz_from_the_test),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
