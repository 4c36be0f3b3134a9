/* distill tests — the same images through three readers give the same run:
 * a Fashion-MNIST subset (Debian's dataset-fashion-mnist) written as IDX
 * files, as a PNG tree and as an .npz, in the same (class-sorted) order,
 * read by the mnist, imagefolder and npz readers, and distilled and
 * evaluated at the same seed: metrics.json is identical apart from the
 * dataset's name and the timing and memory fields. Skipped (77) without the
 * package. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "distill/image.h"
#include "engine/npz_write.h"
#include "readers_gen.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
enum { N_PER_SPLIT = 600 };

static char *g_dir;

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One split, class-sorted: its bytes (n × 784) and labels. */
typedef struct split {
    int64_t n;
    uint8_t *px;
    int64_t *labels;
} split;

static void sorted_split(const dd_dataset *d, split *s) {
    s->n = d->n;
    s->px = malloc((size_t)d->n * 784);
    s->labels = malloc((size_t)d->n * sizeof *s->labels);
    assert_non_null(s->px);
    assert_non_null(s->labels);
    int64_t k = 0;
    for (int c = 0; c < d->n_classes; c++)
        for (int64_t i = 0; i < d->n; i++)
            if (d->labels[i] == c) {
                dd_image_denormalize(rg_image(d, i), 28, 28, 1, d->mean, d->std, s->px + k * 784);
                s->labels[k++] = c;
            }
    assert_int_equal(k, d->n);
}

static void write_idx(const char *dir, const char *prefix, const split *s) {
    size_t n = (size_t)s->n;
    uint8_t *img = malloc(16 + n * 784), *lab = malloc(8 + n);
    assert_non_null(img);
    assert_non_null(lab);
    be32(img, 0x803);
    be32(img + 4, (uint32_t)n);
    be32(img + 8, 28);
    be32(img + 12, 28);
    memcpy(img + 16, s->px, n * 784);
    be32(lab, 0x801);
    be32(lab + 4, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        lab[8 + i] = (uint8_t)s->labels[i];
    char *pi = rg_strf("%s/%s-images-idx3-ubyte", dir, prefix);
    char *pl = rg_strf("%s/%s-labels-idx1-ubyte", dir, prefix);
    assert_int_equal(rg_write_file(pi, img, 16 + n * 784), DD_OK);
    assert_int_equal(rg_write_file(pl, lab, 8 + n), DD_OK);
    free(pi);
    free(pl);
    free(img);
    free(lab);
}

static void write_tree(const char *dir, const char *split_name, const split *s,
                       char *const *class_names) {
    for (int64_t i = 0; i < s->n; i++) {
        // "<k>_<name>" keeps the sorted folder order equal to the label order
        char *d = rg_strf("%s/%s/%lld_%s", dir, split_name, (long long)s->labels[i],
                          class_names[s->labels[i]]);
        for (char *c = d + strlen(dir) + 1; *c; c++)
            if (*c == ' ' || (*c == '/' && c > d + strlen(dir) + strlen(split_name) + 1)) *c = '-';
        assert_int_equal(rg_mkdirs(d), DD_OK);
        char *p = rg_strf("%s/%05lld.png", d, (long long)i);
        assert_int_equal(dd_image_write_png(p, 28, 28, 1, s->px + i * 784), DD_OK);
        free(p);
        free(d);
    }
}

static void write_npz(const char *path, const split *tr, const split *te) {
    dd_npz *z = NULL;
    assert_int_equal(dd_npz_create(&z), DD_OK);
    const int64_t xs[] = {tr->n, 28, 28}, xt[] = {te->n, 28, 28}, ys[] = {tr->n}, yt[] = {te->n};
    assert_int_equal(dd_npz_add(z, "x_train", "|u1", 1, 3, xs, tr->px), DD_OK);
    assert_int_equal(dd_npz_add_i64(z, "y_train", 1, ys, tr->labels), DD_OK);
    assert_int_equal(dd_npz_add(z, "x_test", "|u1", 1, 3, xt, te->px), DD_OK);
    assert_int_equal(dd_npz_add_i64(z, "y_test", 1, yt, te->labels), DD_OK);
    assert_int_equal(dd_npz_write(z, path), DD_OK);
    dd_npz_destroy(z);
}

static char *run(const char *tag, const char *dataset_yaml) {
    char *yaml =
        rg_strf("name: same-%s\nseed: 5\nstages: [load, distill, evaluate, report]\n"
                "dataset: %s\n"
                "model: {plugin: lenet}\n"
                "distill: {steps: 2, epochs: 1, iterations: 12, batch_real: 64,\n"
                "          checkpoint_every: 0, threads: 1}\n"
                "evaluate: {nets: 1, lr_search: 3, batch: 200, baselines: [random, average,"
                " knn]}\n",
                tag, dataset_yaml);
    char *p = rg_strf("%s/%s.yaml", g_dir, tag), *out = rg_strf("%s/out-%s", g_dir, tag);
    assert_int_equal(rg_write_text(p, yaml), DD_OK);
    const char *bin = getenv("DISTILL_BINARY_DIR");
    char *cmd = rg_strf("OMP_NUM_THREADS=1 '%s/bin/distill' -q run '%s' --out '%s'",
                        bin ? bin : ".", p, out);
    assert_int_equal(system(cmd), 0);
    char *m = rg_strf("%s/metrics.json", out);
    uint8_t *data = NULL;
    size_t n = 0;
    assert_int_equal(rg_read_file(m, &data, &n), DD_OK);
    // drop the lines that name the dataset or measure time and memory
    char *kept = calloc(1, n + 1);
    assert_non_null(kept);
    for (char *line = strtok((char *)data, "\n"); line; line = strtok(NULL, "\n")) {
        static const char *const skip[] = {"\"run\"", "\"dataset\"", "seconds", "peak_memory"};
        int drop = 0;
        for (size_t i = 0; i < sizeof skip / sizeof *skip; i++)
            drop |= strstr(line, skip[i]) != NULL;
        if (!drop) strcat(strcat(kept, line), "\n");
    }
    free(data);
    free(m);
    free(cmd);
    free(out);
    free(p);
    free(yaml);
    return kept;
}

static void test_same_run_three_readers(void **state) {
    (void)state;
    dd_registry *reg = NULL;
    const dd_component *mnist = NULL;
    assert_int_equal(rg_load_reader("mnist", &reg, &mnist), DD_OK);
    const char *kv[] = {"max_images=600", NULL};
    dd_dataset *tr = NULL, *te = NULL;
    assert_int_equal(rg_read(mnist, "fashion-mnist", FASHION_DIR, kv, 0, 0, &tr, &te), DD_OK);
    split a, b;
    sorted_split(tr, &a);
    sorted_split(te, &b);

    char *idx = rg_strf("%s/idx", g_dir), *tree = rg_strf("%s/tree", g_dir),
         *npz = rg_strf("%s/set.npz", g_dir);
    assert_int_equal(rg_mkdirs(idx), DD_OK);
    write_idx(idx, "train", &a);
    write_idx(idx, "t10k", &b);
    write_tree(tree, "train", &a, tr->class_names);
    write_tree(tree, "test", &b, tr->class_names);
    write_npz(npz, &a, &b);

    char *d1 = rg_strf("{plugin: mnist, name: fashion-mnist, path: %s}", idx);
    char *d2 = rg_strf("{plugin: imagefolder, path: %s, mean: [0.2860], std: [0.3530]}", tree);
    char *d3 = rg_strf("{plugin: npz, path: %s, mean: [0.2860], std: [0.3530]}", npz);
    char *m1 = run("mnist", d1), *m2 = run("imagefolder", d2), *m3 = run("npz", d3);
    assert_non_null(strstr(m1, "\"distilled\""));
    assert_non_null(strstr(m1, "\"knn\""));
    assert_string_equal(m1, m2);
    assert_string_equal(m1, m3);
    free(m1);
    free(m2);
    free(m3);
    free(d1);
    free(d2);
    free(d3);
    free(idx);
    free(tree);
    free(npz);
    free(a.px);
    free(a.labels);
    free(b.px);
    free(b.labels);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    dd_registry_destroy(reg);
}

int main(void) {
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "skipped: %s not installed (Debian package dataset-fashion-mnist)\n",
                FASHION_DIR);
        return 77;
    }
    if (rg_mkdtemp("same-run", &g_dir) != DD_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_run_three_readers),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (!getenv("KEEP_TMP")) rg_rmtree(g_dir);
    free(g_dir);
    return rc;
}
