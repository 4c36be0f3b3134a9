/* End-to-end tests of the `distill` CLI: exit codes (0 ok, 1 failure, 2
 * usage), messages on stderr, plugins listing/describe, validate, and a run
 * through the load stage with the test-only plugin testkit. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define FIXTURES DD_TEST_SOURCE_DIR "/tests/pipelines"

static char tmp[256];
static char out[1 << 16], err[1 << 16];

static void slurp(const char *path, char *buf, size_t n) {
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (!f) return;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

// Runs the CLI with `args` (shell syntax) from the fixtures directory; only
// the test plugin dir (with testkit alone) and the build tree are searched.
static int cli(const char *args) {
    char cmd[4096];
    snprintf(
        cmd, sizeof cmd,
        "cd '%s' && env -u DISTILL_LOG DISTILL_PLUGIN_PATH= '%s' --plugin-path '%s/plugins' %s "
        ">'%s/out' 2>'%s/err'",
        FIXTURES, DD_TEST_CLI, tmp, args, tmp, tmp);
    int rc = system(cmd);
    char path[512];
    snprintf(path, sizeof path, "%s/out", tmp);
    slurp(path, out, sizeof out);
    snprintf(path, sizeof path, "%s/err", tmp);
    slurp(path, err, sizeof err);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void expect(const char *args, int code, const char *in_out, const char *in_err) {
    int rc = cli(args);
    if (rc != code || (in_out && !strstr(out, in_out)) || (in_err && !strstr(err, in_err)))
        fail_msg(
            "distill %s\n  exit %d (expected %d)\n  stdout: %s\n  stderr: %s\n  wanted stdout ⊇ "
            "'%s', stderr ⊇ '%s'",
            args, rc, code, out, err, in_out ? in_out : "", in_err ? in_err : "");
}

static int setup(void **state) {
    snprintf(tmp, sizeof tmp, "/tmp/dd_test_cli_XXXXXX");
    if (!mkdtemp(tmp)) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir '%s/plugins' && ln -s '%s/testkit.so' '%s/plugins/testkit.so'",
             tmp, DD_TEST_PLUGIN_DIR, tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_help_version_usage(void **state) {
    expect("--version", 0, "distill 0.1.0\n", NULL);
    expect("--help", 0, "usage: distill", NULL);
    expect("help", 0, "commands:", NULL);
    expect("run --help", 0, "usage: distill run PIPELINE", NULL);
    expect("", 2, NULL, "usage: distill");
    expect("bogus", 2, NULL,
           "distill: unknown command 'bogus' (commands: run, evaluate, validate, plugins, "
           "datasets, fetch)");
    expect("--help", 0, "  evaluate SOURCE [PIPELINE] [--set KEY=VALUE]...", NULL);
    expect("evaluate --help", 0, "default SOURCE/evaluation/ for a run directory", NULL);
    expect("evaluate --frobnicate", 2, NULL, "distill: unknown option '--frobnicate'");
    expect("--bogus plugins", 2, NULL, "distill: unknown option '--bogus'");
    expect("--log-level loud plugins", 2, NULL, "unknown log level 'loud'");
    expect("run", 2, NULL, "distill: run: missing PIPELINE (a .yaml file)");
    expect("validate good.yaml extra.yaml", 2, NULL, "unexpected argument 'extra.yaml'");
    expect("run good.yaml --frobnicate", 2, NULL, "distill: unknown option '--frobnicate'");
    expect("validate good.yaml --set", 2, NULL, "option '--set' needs KEY=VALUE");
    expect("validate good.yaml --set steps", 2, NULL,
           "distill: error: --set steps: expected KEY=VALUE (e.g. distill.steps=5)");
    expect("fetch", 2, NULL, "missing DATASET");
    expect("plugins extra", 2, NULL, "unexpected argument 'extra'");
}

static void test_validate(void **state) {
    expect("validate good.yaml", 0,
           "OK: good-run: dataset testdata/testdata-alt, model testnet, objective testobj; seed 7; "
           "stages: fetch, load, distill, evaluate, report\n",
           NULL);
    assert_string_equal(err, "");
    expect("validate good.yaml --set distill.steps=2 --set=seed=3", 0, "seed 3;", NULL);
    expect(
        "validate unknown_key.yaml", 1, NULL,
        "distill: error: unknown_key.yaml:6:3: unknown key 'lr' in 'distill' (valid keys: steps,");
    assert_string_equal(out, "");
    expect("validate good.yaml --set distill.steps=0", 1, NULL,
           "distill: error: --set distill.steps=0: invalid value for 'distill.steps': 0 is out of "
           "range (must be in [1, 10000])\n");
    expect("validate missing.yaml", 1, NULL,
           "distill: error: missing.yaml: cannot open: No such file");
}

static void test_plugins(void **state) {
    expect("plugins", 0, "testkit 1.0.0  ", NULL);
    assert_non_null(strstr(out, "  model      testnet          two linear layers (tests)\n"));
    assert_non_null(
        strstr(out, "  dataset    testdata         synthetic striped images (tests)\n"));
    expect("plugins --describe testobj", 0, "objective 'testobj' — cross-entropy (tests)", NULL);
    assert_non_null(strstr(out, "metrics: accuracy"));
    assert_non_null(strstr(out, "weight    float  1.0"));
    assert_non_null(strstr(out, "scale of the loss"));
    expect("plugins --describe=objective/testobj", 0, "objective 'testobj'", NULL);
    expect("plugins --describe model/testobj", 1, NULL,
           "no component, plugin or section named 'model/testobj'");
    expect("plugins --describe testkit", 0, "dataset 'testdata'", NULL);
    assert_non_null(strstr(out, "model 'testnet'"));
    expect("plugins --describe distill", 0, "section 'distill' (stage options):", NULL);
    assert_non_null(strstr(out, "optimizer.lr"));
    expect("plugins --describe nothing", 1, NULL,
           "distill: error: no component, plugin or section named 'nothing'");
}

static void test_run_through_load(void **state) {
    char args[1024], path[600];
    snprintf(args, sizeof args,
             "run good.yaml --out '%s/run1' --set stages=[load] --set dataset.path=.", tmp);
    expect(args, 0, NULL, "loaded testdata-alt: 20 training / 10 test images, 1×8×8, 5 classes");
    snprintf(path, sizeof path, "%s/run1/config.yaml", tmp);
    static char config[1 << 15];
    slurp(path, config, sizeof config);
    assert_non_null(strstr(config, "name: good-run\n"));
    assert_non_null(strstr(config, "stages: [load]\n"));
    assert_non_null(strstr(config, "  classes: 5  # good.yaml:9:12\n"));
    assert_non_null(strstr(config, "    lr: 0.05  # good.yaml:21:19\n"));
    // the same output directory is not overwritten
    expect(args, 1, NULL, "already holds a run (use --resume to continue it, or another --out)");
    // --resume of a missing directory
    snprintf(args, sizeof args, "run good.yaml --resume --out '%s/none' --set stages=[load]", tmp);
    expect(args, 1, NULL, "nothing to resume");
    // -q silences info messages
    snprintf(args, sizeof args,
             "-q run good.yaml --out '%s/run2' --set stages=[load] --set dataset.path=.", tmp);
    expect(args, 0, NULL, NULL);
    assert_string_equal(err, "");
    // a later stage that is not available stops the run cleanly (warning)
    snprintf(args, sizeof args,
             "-v run good.yaml --out '%s/run3' --set stages=[load,report] --set dataset.path=.",
             tmp);
    int rc = cli(args);
    assert_true(rc == 0 || rc == 1);
    assert_non_null(strstr(err, "loaded testdata-alt"));
}

static void test_datasets_and_fetch(void **state) {
    expect("datasets", 0, "NAME", NULL);
    assert_non_null(strstr(out, "fashion-mnist"));
    char args[600];
    snprintf(args, sizeof args, "fetch no-such-dataset --offline --cache-dir '%s/cache'", tmp);
    expect(args, 1, NULL, "distill: error: ");
    assert_non_null(strstr(err, "no-such-dataset"));
    // a reader of the user's own files has no manifest: nothing to fetch, said as such
    snprintf(args, sizeof args, "fetch imagefolder --offline --cache-dir '%s/cache'", tmp);
    expect(args, 1, NULL, "read by the dataset plugin 'imagefolder' from your own files");
    assert_non_null(strstr(err, "dataset.path"));

    // a cache that cannot be made (its parent is a file: what a read-only or
    // foreign directory also gives) names the cache and how to choose another
    snprintf(args, sizeof args, "touch '%s/plainfile'", tmp);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "fetch fashion-mnist --offline --cache-dir '%s/plainfile/cache'",
             tmp);
    expect(args, 1, NULL, "is not usable");
    assert_non_null(strstr(err, "plainfile: exists and is not a directory"));
    assert_non_null(strstr(err, "choose a writable one with --cache-dir DIR"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_version_usage),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_plugins),
        cmocka_unit_test(test_run_through_load),
        cmocka_unit_test(test_datasets_and_fetch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
