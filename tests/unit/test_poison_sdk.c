/* The poison objective built out of tree: `cmake --install` into a temp
 * prefix, build plugins/objectives/poison/poison.c with only the installed
 * SDK (tests/plugins/objectives_oot), then run a tiny poison pipeline with
 * the installed CLI picking that build up from --plugin-path. */
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

static char tmp[256];
static char out[1 << 16];

static int sh(const char *fmt, ...) {
    char cmd[4096], full[4600], path[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "(%s) >'%s/log' 2>&1", cmd, tmp);
    int rc = system(full);
    snprintf(path, sizeof path, "%s/log", tmp);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f) {
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = '\0';
        fclose(f);
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void must(int rc, const char *what) {
    if (rc != 0) fail_msg("%s failed (exit %d):\n%s", what, rc, out);
}

static int setup(void **st) {
    (void)st;
    snprintf(tmp, sizeof tmp, "/tmp/dd_test_poison_sdk_XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **st) {
    (void)st;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* IDX files of a toy problem: class c is a bright square at a class-specific
 * place on noise. */
static void write_idx(const char *prefix, int n, unsigned seed) {
    char path[600];
    snprintf(path, sizeof path, "%s/data/%s-images-idx3-ubyte", tmp, prefix);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/data/%s-labels-idx1-ubyte", tmp, prefix);
    FILE *fl = fopen(path, "wb");
    assert_non_null(fi);
    assert_non_null(fl);
    put_be32(fi, 0x803);
    put_be32(fi, (uint32_t)n);
    put_be32(fi, 28);
    put_be32(fi, 28);
    put_be32(fl, 0x801);
    put_be32(fl, (uint32_t)n);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    unsigned char img[28 * 28];
    for (int i = 0; i < n; i++) {
        const int c = i % 10;
        for (int p = 0; p < 28 * 28; p++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            img[p] = (unsigned char)(x % 90);
        }
        const int y0 = 2 + (c / 5) * 12, x0 = 1 + (c % 5) * 5;
        for (int y = y0; y < y0 + 6; y++)
            for (int xx = x0; xx < x0 + 6; xx++)
                img[y * 28 + xx] = 230;
        fwrite(img, 1, sizeof img, fi);
        fputc(c, fl);
    }
    fclose(fi);
    fclose(fl);
}

static void test_poison_built_out_of_tree(void **st) {
    (void)st;
    must(sh("cmake --install '%s' --prefix '%s/prefix'", DD_TEST_BINARY_DIR, tmp),
         "cmake --install");
    must(sh("cmake -S '%s/tests/plugins/objectives_oot' -B '%s/build' "
            "-DCMAKE_PREFIX_PATH='%s/prefix' "
            "-DPOISON_SOURCE='%s/plugins/objectives/poison/poison.c' -DCMAKE_BUILD_TYPE=Release",
            DD_TEST_SOURCE_DIR, tmp, tmp, DD_TEST_SOURCE_DIR),
         "configure the out-of-tree objective");
    must(sh("cmake --build '%s/build'", tmp), "build the out-of-tree objective");
    // The installed CLI loads the out-of-tree build first (--plugin-path).
    must(sh("'%s/prefix/bin/distill' --plugin-path '%s/build/plugins' plugins", tmp, tmp),
         "distill plugins");
    char want[600];
    snprintf(want, sizeof want, "poison 1.0.0  %s/build/plugins/poison.so", tmp);
    if (!strstr(out, want)) fail_msg("'%s' not in:\n%s", want, out);

    char path[600];
    snprintf(path, sizeof path, "%s/data", tmp);
    must(sh("mkdir -p '%s'", path), "mkdir");
    write_idx("train", 500, 1);
    write_idx("t10k", 200, 2);
    snprintf(path, sizeof path, "%s/poison.yaml", tmp);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "name: oot-poison\nseed: 2\nstages: [load, pretrain, distill, evaluate, report]\n"
            "dataset: {plugin: mnist, name: mnist, path: %s/data, verify: false}\n"
            "model: {plugin: linear, loss: cross_entropy, backend: reference}\n"
            "objective: {plugin: poison, attack_class: 3, target_class: 8}\n"
            "pretrain: {nets: 8, holdout: 3, epochs: 1, lr: 0.005, batch: 32, pool_dir: %s/pools}\n"
            "distill: {steps: 1, epochs: 1, iterations: 60, batch_real: 200, lr_init: 0.1,\n"
            "          optimizer: {lr: 0.1, lr_lr: 0.05},\n"
            "          nets_per_iteration: 2, checkpoint_every: 0}\n"
            "evaluate: {nets: 3, baselines: [], lr_search: 5}\n"
            "report: {png: false}\n",
            tmp, tmp);
    fclose(f);
    must(sh("'%s/prefix/bin/distill' --plugin-path '%s/build/plugins' run '%s' --out '%s/run'", tmp,
            tmp, path, tmp),
         "distill run (poison from the out-of-tree build)");
    snprintf(path, sizeof path, "%s/run/metrics.json", tmp);
    f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    fclose(f);
    const char *sec = strstr(out, "\"attack\": {");
    if (!sec) fail_msg("no attack section in metrics.json:\n%s", out);
    double before = -1, after = -1;
    const char *b = strstr(sec, "\"success_before\": "), *a = strstr(sec, "\"success_mean\": ");
    assert_non_null(a);
    assert_non_null(b);
    sscanf(b + 18, "%lf", &before);
    sscanf(a + 16, "%lf", &after);
    fprintf(stderr, "out-of-tree poison: success %.3f -> %.3f\n", before, after);
    assert_true(after > before + 0.1); // 0.167 here: a tiny run, 5 pool members to learn from
    assert_non_null(strstr(sec, "\"nets\": 3"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poison_built_out_of_tree),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
