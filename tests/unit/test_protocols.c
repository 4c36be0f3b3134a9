/* distill tests — the evaluation protocols and the fair baselines:
 * best_of_random with a known answer (training sets with mislabelled
 * images: the chosen subset has none, where a plain random subset does),
 * the step-size search (stops by its criterion, and tunes a baseline the same
 * way whatever the distillation's optimiser options), standard training
 * (deterministic, soft one-hot labels = hard labels, augmentation changes
 * the result), and `distill run` with all three protocols on a tiny dataset:
 * metrics.json's keys, config.yaml round trip, and the errors of
 * evaluate.architectures / evaluate.protocols. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "distill/distill.h"
#include "distill/plugin.h"
#include "distill/tensor.h"
#include "engine/baselines.h"
#include "engine/evaluate.h"
#include "model/graph.h"
#include "model/model_impl.h"
#include "readers_gen.h"

/* ---- fixtures ------------------------------------------------------------- */

static dd_status build_linear(dd_graph *g, const dd_options *o, int c, int h, int w, int n_out) {
    (void)o, (void)c, (void)h, (void)w;
    return dd_graph_linear(g, n_out);
}
static const dd_model_ops linear_ops = {sizeof(dd_model_ops), build_linear, "xavier", {0}};
static const dd_component linear_comp = {
    sizeof(dd_component), DD_COMPONENT_MODEL, "t-linear", "test linear", NULL, &linear_ops, {0}};

static dd_model *make_linear(int c, int h, int w, int n_out) {
    dd_model_config cfg = {sizeof cfg, &linear_comp, NULL, c, h, w, n_out, DD_BACKEND_REFERENCE};
    dd_model *m = NULL;
    assert_int_equal(dd_model_create(&cfg, &m), DD_OK);
    return m;
}

static void *g_cls_handle;

static const dd_component *classification(void) {
    static const dd_component *c;
    if (c) return c;
    const char *dir = getenv("DISTILL_PLUGIN_PATH");
    char path[4096];
    snprintf(path, sizeof path, "%s/classification.so", dir ? dir : ".");
    g_cls_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(g_cls_handle);
    dd_plugin_entry_fn entry = (dd_plugin_entry_fn)dlsym(g_cls_handle, DD_PLUGIN_ENTRY_SYMBOL);
    assert_non_null(entry);
    c = &entry()->components[0];
    assert_string_equal(c->name, "classification");
    return c;
}

/* Four classes in 4 dimensions (1×2×2 images): class c's prototype is
 * 3·e_c. Image i has label i % 4 and shows its class's prototype (plus
 * noise) unless it is one of the `bad` fraction (chosen by the seed), which
 * show the next class's: mislabelled images. */
enum { NC = 4 };

static dd_dataset *blobs(int n, double bad, uint64_t seed) {
    dd_dataset *d;
    assert_int_equal(dd_dataset_create("blobs", DD_DTYPE_F32, n, 1, 2, 2, NC, &d), DD_OK);
    dd_rng r = dd_rng_make(seed, 3);
    for (int i = 0; i < n; i++) {
        const int y = i % NC;
        const int flip = (double)dd_rng_below(&r, 1000000) < bad * 1e6;
        float *x = ((float *)d->pixels) + (size_t)i * NC;
        dd_rng_normal(&r, x, NC, 0.f, 0.3f);
        x[flip ? (y + 1) % NC : y] += 3.f;
        d->labels[i] = y;
    }
    return d;
}

/* Every image of the set shows its label's prototype. */
static int set_is_clean(const dd_distilled *set) {
    for (int st = 0; st < set->steps; st++)
        for (int j = 0; j < set->per_step; j++) {
            const float *x = set->images + ((size_t)st * set->per_step + j) * NC;
            int best = 0;
            for (int k = 1; k < NC; k++)
                if (x[k] > x[best]) best = k;
            if (best != set->labels[j]) return 0;
        }
    return 1;
}

static void distill_cfg(dd_distill_config *c, uint64_t seed) {
    assert_int_equal(dd_distill_config_from_defaults(c), DD_OK);
    c->steps = 1, c->epochs = 1, c->images_per_class = 1;
    c->batch_real = 64;
    c->lr_init = 0.05;
    c->init_mode = DD_INIT_FIXED;
    c->seed = seed;
    c->nthreads = 1;
}

/* ---- best_of_random ------------------------------------------------------- */

static void test_best_of_random_known_answer(void **state) {
    (void)state;
    dd_model *m = make_linear(1, 2, 2, NC);
    dd_dataset *test = blobs(200, 0.0, 99);
    int random_dirty = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        dd_dataset *train = blobs(400, 0.2, seed);
        dd_objective_handle obj;
        assert_int_equal(dd_objective_handle_init(&obj, classification(), NULL, train), DD_OK);
        dd_distill_config c;
        distill_cfg(&c, seed);
        // one step from an init near 0: a subset with a mislabelled image
        // leaves its class without any weight pointing at its prototype
        c.lr_init = 1.0;
        c.init_gain = 0.01;
        dd_eval_settings es;
        dd_eval_settings_defaults(&es);
        es.n_baselines = 2;
        es.baselines[0] = DD_BASELINE_BEST_OF_RANDOM;
        es.baselines[1] = DD_BASELINE_RANDOM;
        es.best_of_random_n = 8;
        es.best_of_random_holdout = 100;
        es.search.max_iterations = 0; // lr 1: selection alone is under test
        es.step_curves = 0;
        dd_eval_report rep;
        assert_int_equal(dd_evaluate_run(m, &obj, train, test, NULL, NULL, &c, &es, &rep), DD_OK);
        assert_int_equal(rep.best_of_random_n, 8);
        // the chosen subset has no mislabelled image, and it trains the net
        assert_true(set_is_clean(rep.baselines[0].set));
        assert_true(rep.baselines[0].stats.mean > 0.95);
        random_dirty += !set_is_clean(rep.baselines[1].set);
        dd_eval_report_release(&rep);
        dd_objective_handle_release(&obj);
        dd_dataset_destroy(train);
    }
    // a plain random subset of the same data is mislabelled at least once
    // (P(clean) = 0.8^4 = 0.41 per seed): the selection, not luck, made them clean
    assert_true(random_dirty >= 1);
    dd_dataset_destroy(test);
    dd_model_destroy(m);
}

/* ---- the step-size search ------------------------------------------------- */

static void test_lr_search(void **state) {
    (void)state;
    dd_model *m = make_linear(1, 2, 2, NC);
    dd_dataset *train = blobs(400, 0.0, 5);
    dd_objective_handle obj;
    assert_int_equal(dd_objective_handle_init(&obj, classification(), NULL, train), DD_OK);
    dd_distill_config c;
    distill_cfg(&c, 5);
    c.lr_init = 0.01; // far too small: the search must raise it
    dd_lr_search search;
    dd_lr_search_defaults(&search);
    search.max_iterations = 3000;
    search.window = 10;
    dd_distilled *a, *b;
    assert_int_equal(dd_baseline_build(DD_BASELINE_RANDOM, train, 1, 1, 1, 0.01f, 5, 1, &a), DD_OK);
    assert_int_equal(dd_distilled_clone(a, &b), DD_OK);
    dd_lr_search_result ra, rb;
    assert_int_equal(dd_evaluate_optimize_lrs(m, &obj, train, &c, &search, a, &ra), DD_OK);
    // stopped by the criterion, well before the budget, with a larger step
    assert_true(ra.converged);
    assert_true(ra.iterations < search.max_iterations);
    assert_true(ra.iterations >= (int64_t)search.window * (search.halvings + 1));
    printf("lr search: %lld iterations, lr 0.01 -> %g, final loss %g\n", (long long)ra.iterations,
           (double)a->lrs[0], ra.final_loss);
    assert_true(a->lrs[0] > 0.1f);
    // the distillation's optimiser options do not change how a baseline is tuned
    dd_distill_config c2 = c;
    c2.learn_labels = 1;
    c2.opt_lr = 0.5, c2.opt_lr_lrs = 0.2, c2.beta1 = 0.1, c2.decay_every = 3, c2.decay = 0.1;
    assert_int_equal(dd_evaluate_optimize_lrs(m, &obj, train, &c2, &search, b, &rb), DD_OK);
    assert_int_equal(ra.iterations, rb.iterations);
    assert_memory_equal(a->lrs, b->lrs, sizeof(float));
    // max_iterations bounds it, and 0 keeps the initial step size
    dd_distilled *z;
    assert_int_equal(dd_distilled_clone(a, &z), DD_OK);
    search.max_iterations = 7;
    assert_int_equal(dd_evaluate_optimize_lrs(m, &obj, train, &c, &search, z, &rb), DD_OK);
    assert_int_equal(rb.iterations, 7);
    assert_false(rb.converged);
    const float before = z->lrs[0];
    search.max_iterations = 0;
    assert_int_equal(dd_evaluate_optimize_lrs(m, &obj, train, &c, &search, z, &rb), DD_OK);
    assert_true(z->lrs[0] == before);
    assert_int_equal(rb.iterations, 0);
    dd_distilled_destroy(a);
    dd_distilled_destroy(b);
    dd_distilled_destroy(z);
    dd_objective_handle_release(&obj);
    dd_dataset_destroy(train);
    dd_model_destroy(m);
}

/* ---- standard training ---------------------------------------------------- */

static void test_standard_training(void **state) {
    (void)state;
    dd_model *m = make_linear(1, 2, 2, NC);
    dd_dataset *train = blobs(200, 0.0, 8), *test = blobs(200, 0.0, 9);
    dd_objective_handle obj;
    assert_int_equal(dd_objective_handle_init(&obj, classification(), NULL, train), DD_OK);
    dd_distilled *set;
    assert_int_equal(dd_baseline_build(DD_BASELINE_AVERAGE, train, 2, 1, 1, 0.01f, 1, 1, &set),
                     DD_OK);
    const dd_standard_training st = {
        .epochs = 20, .nets = 1, .lr = 0.05, .momentum = 0.9, .batch = 3};
    const size_t P = dd_model_param_count(m);
    float *t0 = dd_alloc_floats(P), *t1 = dd_alloc_floats(P), *t2 = dd_alloc_floats(P);
    assert_int_equal(dd_model_init_params(m, t0, "xavier", 1.f, 11), DD_OK);
    memcpy(t1, t0, P * sizeof *t1);
    memcpy(t2, t0, P * sizeof *t2);
    assert_int_equal(dd_evaluate_train_standard(m, set, &st, 4, t1), DD_OK);
    assert_int_equal(dd_evaluate_train_standard(m, set, &st, 4, t2), DD_OK);
    assert_memory_equal(t1, t2, P * sizeof *t1); // deterministic
    double acc = 0, loss = 0;
    assert_int_equal(dd_evaluate_test(m, &obj, test, t1, 100, &acc, &loss), DD_OK);
    assert_true(acc > 0.95);
    // one-hot soft labels train exactly like hard labels (to float rounding)
    const size_t n = (size_t)set->steps * set->per_step;
    set->soft = dd_alloc_floats(n * NC);
    assert_non_null(set->soft);
    for (size_t i = 0; i < n; i++)
        set->soft[i * NC + set->labels[i % set->per_step]] = 1.f;
    memcpy(t2, t0, P * sizeof *t2);
    assert_int_equal(dd_evaluate_train_standard(m, set, &st, 4, t2), DD_OK);
    for (size_t i = 0; i < P; i++)
        assert_true(fabsf(t1[i] - t2[i]) < 1e-5f);
    // augmentation changes what is trained on, deterministically
    dd_standard_training aug = st;
    aug.crop = 1, aug.flip = 1;
    memcpy(t2, t0, P * sizeof *t2);
    assert_int_equal(dd_evaluate_train_standard(m, set, &aug, 4, t2), DD_OK);
    assert_true(memcmp(t1, t2, P * sizeof *t1) != 0);
    dd_free(t0);
    dd_free(t1);
    dd_free(t2);
    dd_distilled_destroy(set);
    dd_objective_handle_release(&obj);
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
    dd_model_destroy(m);
}

/* ---- distill run with every protocol -------------------------------------- */

static char *g_dir;
static char g_cli[4096];

/* Runs the CLI with `args` (shell words); returns the exit code and, in
 * *err, its stderr. */
static int cli(const char *args, char **err) {
    char *log = rg_strf("%s/cli.log", g_dir);
    char *cmd = rg_strf("OMP_NUM_THREADS=1 '%s' %s 2>'%s' >/dev/null", g_cli, args, log);
    int rc = system(cmd);
    assert_true(WIFEXITED(rc));
    *err = rg_read_text(log);
    assert_non_null(*err);
    free(cmd);
    free(log);
    return WEXITSTATUS(rc);
}

static int setup_cli(void **st) {
    (void)st;
    const char *bin = getenv("DISTILL_BINARY_DIR");
    snprintf(g_cli, sizeof g_cli, "%s/bin/distill", bin ? bin : ".");
    if (access(g_cli, X_OK) != 0) return -1;
    if (rg_mkdtemp("protocols", &g_dir) != DD_OK) return -1;
    char *data = rg_strf("%s/data", g_dir);
    if (rg_mkdirs(data) != DD_OK || rg_write_mnist(data, 300, 100, 28, 28, 0) != DD_OK) return -1;
    char *yaml =
        rg_strf("name: protocols\n"
                "seed: 2\n"
                "stages: [load, distill, evaluate, report]\n"
                "dataset: {plugin: mnist, name: mnist, path: %s}\n"
                "model: {plugin: linear}\n"
                "distill: {steps: 2, epochs: 1, iterations: 10, batch_real: 50}\n"
                "evaluate:\n"
                "  nets: 2\n  batch: 50\n  lr_search: 6\n  lr_search_window: 3\n"
                "  baselines: [random, average, knn]\n"
                "  protocols: [steps, cross_architecture, standard_training]\n"
                "  standard_training: {epochs: 3, nets: 2, batch: 8, crop: 2, flip: true}\n"
                "  cross_architecture: {nets: 2}\n"
                "  architectures:\n"
                "    - lenet\n"
                "    - {plugin: sequential, layers: [flatten, {linear: 16}, relu,\n"
                "                                    {linear: 10}]}\n",
                data);
    char *p = rg_strf("%s/p.yaml", g_dir);
    dd_status s = rg_write_text(p, yaml);
    free(yaml);
    free(p);
    free(data);
    return s == DD_OK ? 0 : -1;
}

static int teardown_cli(void **st) {
    (void)st;
    if (g_dir && !getenv("KEEP_TMP")) rg_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void assert_contains(const char *text, const char *what) {
    if (!strstr(text, what)) fprintf(stderr, "expected '%s' in:\n%s\n", what, text);
    assert_non_null(strstr(text, what));
}

static void test_cli_all_protocols(void **st) {
    (void)st;
    char *err = NULL;
    char *args = rg_strf("run '%s/p.yaml' --out '%s/run'", g_dir, g_dir);
    int rc = cli(args, &err);
    if (rc != 0) fprintf(stderr, "%s", err);
    assert_int_equal(rc, 0);
    free(err);
    char *mpath = rg_strf("%s/run/metrics.json", g_dir),
         *rpath = rg_strf("%s/run/report.md", g_dir);
    char *metrics = rg_read_text(mpath), *report = rg_read_text(rpath);
    assert_non_null(metrics);
    assert_non_null(report);
    assert_contains(metrics, "\"metrics_version\": 2");
    assert_contains(metrics, "\"protocols\": [\"steps\", \"cross_architecture\", "
                             "\"standard_training\"]");
    assert_contains(metrics, "\"standard_training\": {");
    assert_contains(metrics, "\"cross_architecture\": {");
    assert_contains(metrics, "\"lenet\": {");
    assert_contains(metrics, "\"sequential\": {");
    assert_contains(metrics, "\"step_curves\": {");
    assert_contains(metrics, "\"per_class\": {");
    assert_contains(metrics, "\"lr_search_converged\"");
    assert_contains(report, "### Protocol standard_training");
    assert_contains(report, "### Protocol cross_architecture");
    assert_contains(report, "| set | lenet | sequential |");
    // config.yaml keeps the architectures, and validates as written
    char *cfg = rg_strf("%s/run/config.yaml", g_dir);
    char *cfg_text = rg_read_text(cfg);
    assert_non_null(cfg_text);
    assert_contains(cfg_text, "  architectures:\n");
    assert_contains(cfg_text, "plugin: sequential");
    free(args);
    args = rg_strf("validate '%s'", cfg);
    rc = cli(args, &err);
    if (rc != 0) fprintf(stderr, "%s", err);
    assert_int_equal(rc, 0);
    free(err);
    free(cfg_text);
    free(cfg);
    free(args);
    free(metrics);
    free(report);
    free(mpath);
    free(rpath);
}

/* `distill validate` with one --set, which must fail naming `want`. */
static void check_validate_error(const char *set, const char *want) {
    char *err = NULL;
    char *args = rg_strf("validate '%s/p.yaml' --set '%s'", g_dir, set);
    int rc = cli(args, &err);
    assert_int_not_equal(rc, 0);
    assert_contains(err, want);
    free(err);
    free(args);
}

static void test_cli_errors(void **st) {
    (void)st;
    check_validate_error("evaluate.architectures=[nosuchnet]", "nosuchnet");
    check_validate_error("evaluate.architectures=[{layers: 3}]", "evaluate.architectures");
    check_validate_error("evaluate.architectures=5", "must be a list of networks");
    check_validate_error("evaluate.protocols=[steps, bogus]", "bogus");
    // a network that does not fit the data: named at validate time
    check_validate_error("evaluate.architectures=[{plugin: sequential, layers: [flatten, "
                         "{linear: 12}]}]",
                         "evaluate.architectures[0]");
    // cross_architecture without any other network fails at run time, naming the key
    char *err = NULL;
    char *args = rg_strf("run '%s/p.yaml' --out '%s/noarch' --set 'evaluate.architectures=[]'",
                         g_dir, g_dir);
    int rc = cli(args, &err);
    assert_int_equal(rc, 1);
    assert_contains(err, "evaluate.architectures");
    free(err);
    free(args);
}

int main(void) {
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_best_of_random_known_answer),
        cmocka_unit_test(test_lr_search),
        cmocka_unit_test(test_standard_training),
    };
    const struct CMUnitTest cli_tests[] = {
        cmocka_unit_test(test_cli_all_protocols),
        cmocka_unit_test(test_cli_errors),
    };
    int failed = cmocka_run_group_tests_name("protocols", unit, NULL, NULL);
    failed += cmocka_run_group_tests_name("protocols-cli", cli_tests, setup_cli, teardown_cli);
    if (g_cls_handle) dlclose(g_cls_handle);
    return failed;
}
