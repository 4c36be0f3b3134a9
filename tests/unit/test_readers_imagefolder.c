/* distill tests — the imagefolder reader on generated PNG/JPEG trees (layouts,
 * channels, sizes, every bad-input error naming the file, the seeded split,
 * probe), archives unpacked by the core (.tar.gz, .zip, hostile ones refused),
 * and with --fashion the real Fashion-MNIST as a PNG tree against mnist. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/fetch.h"
#include "distill/dataset.h"
#include "distill/image.h"
#include "readers_gen.h"

enum { K = 3, PER = 4, W = 8, H = 6 };

static uint8_t px_val(int split, int k, int i, int p, int c) {
    return (uint8_t)(17 * split + 40 * k + 7 * i + 3 * p + 50 * c);
}

/* Writes <dir>/<sub>/<class>/<NN>.<ext> for one image. */
static void write_img(const char *path, int split, int k, int i, int w, int h, int ch, int jpeg) {
    uint8_t *px = malloc((size_t)w * h * ch);
    assert_non_null(px);
    for (int p = 0; p < w * h; p++)
        for (int c = 0; c < ch; c++)
            px[p * ch + c] = px_val(split, k, i, p, c);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(rg_mkdirs(dir), DD_OK);
    if (jpeg)
        assert_int_equal(dd_image_write_jpeg_file(path, px, w, h, ch, 95), DD_OK);
    else
        assert_int_equal(dd_image_write_png(path, w, h, ch, px), DD_OK);
    free(px);
}

static const char *const cls[K] = {"ant", "bee", "cat"};

/* train/ and test/ with K classes × PER (train) / 2 (test) PNGs. */
static void write_tree(const char *root, int ch, int jpeg) {
    char p[1024];
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < K; k++)
            for (int i = 0; i < (s ? 2 : PER); i++) {
                snprintf(p, sizeof p, "%s/%s/%s/%02d.%s", root, s ? "test" : "train", cls[k], i,
                         jpeg ? "jpg" : "png");
                write_img(p, s, k, i, W, H, ch, jpeg);
            }
}

static int setup(void **state) {
    rg_fixture *f = *state = rg_fixture_open("imagefolder", "imagefolder");
    return f ? 0 : -1;
}

static int teardown(void **state) {
    rg_fixture_close(*state);
    return 0;
}

static void fresh(rg_fixture *f) {
    rg_rmtree(f->dir);
    assert_int_equal(rg_mkdirs(f->dir), DD_OK);
}

static uint8_t pixel_of(const dd_dataset *d, int64_t i, int c, int p) {
    size_t hw = (size_t)d->height * d->width;
    float v = rg_image(d, i)[c * hw + p];
    uint8_t b;
    dd_image_denormalize(&v, 1, 1, 1, &d->mean[c], &d->std[c], &b);
    return b;
}

static void test_png_rgb_tree(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    write_tree(f->dir, 3, 0);
    rg_write_text(rg_fixture_path(f, "train", "README"), "hello");
    rg_write_text(rg_fixture_path(f, "train/ant", ".DS_Store"), "x");
    dd_dataset *tr, *te;
    assert_int_equal(rg_read(f->comp, "imagefolder", f->dir, NULL, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->n, K * PER);
    assert_int_equal(te->n, K * 2);
    assert_int_equal(tr->channels, 3);
    assert_int_equal(tr->height, H);
    assert_int_equal(tr->width, W);
    assert_int_equal(tr->n_classes, K);
    assert_string_equal(tr->class_names[1], "bee");
    for (int k = 0; k < K; k++)
        for (int i = 0; i < PER; i++) {
            int64_t j = k * PER + i;
            assert_int_equal(tr->labels[j], k);
            for (int c = 0; c < 3; c++)
                assert_int_equal(pixel_of(tr, j, c, 5), px_val(0, k, i, 5, c));
            // the PNG's bytes, normalised bit for bit as the reader once stored them
            uint8_t hwc[W * H * 3];
            for (int p = 0; p < W * H; p++)
                for (int c = 0; c < 3; c++)
                    hwc[p * 3 + c] = px_val(0, k, i, p, c);
            assert_true(rg_old_path_image(tr, j, hwc));
        }
    assert_true(rg_old_path_batch(tr));
    assert_true(rg_old_path_batch(te));
    assert_int_equal(dd_dataset_bytes(tr), (size_t)K * PER * W * H * 3);
    // mean/std computed on the training split
    double sum = 0;
    for (int k = 0; k < K; k++)
        for (int i = 0; i < PER; i++)
            for (int p = 0; p < W * H; p++)
                sum += px_val(0, k, i, p, 1) / 255.0;
    assert_float_equal(tr->mean[1], sum / (K * PER * W * H), 1e-5);
    assert_float_equal(te->mean[1], tr->mean[1], 0);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

static void test_gray_and_conversion(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    write_tree(f->dir, 1, 0);
    dd_dataset *tr, *te;
    assert_int_equal(rg_read(f->comp, "x", f->dir, NULL, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->channels, 1);
    assert_int_equal(pixel_of(tr, 5, 0, 3), px_val(0, 1, 1, 3, 0));
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    const char *kv[] = {"channels=3", NULL};
    assert_int_equal(rg_read(f->comp, "x", f->dir, kv, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->channels, 3);
    for (int c = 0; c < 3; c++)
        assert_int_equal(pixel_of(tr, 5, c, 3), px_val(0, 1, 1, 3, 0));
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // mixed gray and RGB: an error without channels, fine with channels: 1
    write_img(rg_fixture_path(f, "train", "cat/99.png"), 0, 2, 9, W, H, 3, 0);
    assert_int_equal(rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_PARSE, "99.png", "channels"),
                     0);
    const char *kv1[] = {"channels=1", NULL};
    assert_int_equal(rg_read(f->comp, "x", f->dir, kv1, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->channels, 1);
    uint8_t r = px_val(0, 2, 9, 0, 0), g = px_val(0, 2, 9, 0, 1), b = px_val(0, 2, 9, 0, 2);
    assert_int_equal(pixel_of(tr, tr->n - 1, 0, 0), (299 * r + 587 * g + 114 * b + 500) / 1000);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

static void test_jpeg_tree(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    write_tree(f->dir, 3, 1);
    dd_dataset *tr, *te;
    assert_int_equal(rg_read(f->comp, "x", f->dir, NULL, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->channels, 3);
    assert_int_equal(tr->n, K * PER);
    assert_true(abs((int)pixel_of(tr, 0, 0, 10) - px_val(0, 0, 0, 10, 0)) < 24);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    fresh(f);
    write_tree(f->dir, 1, 1); // gray JPEGs stay 1 channel
    assert_int_equal(rg_read(f->comp, "x", f->dir, NULL, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->channels, 1);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

static void test_mixed_sizes(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    write_tree(f->dir, 3, 0);
    write_img(rg_fixture_path(f, "train", "bee/50.png"), 0, 1, 50, 20, 10, 3, 0);
    assert_int_equal(
        rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_PARSE, "bee/50.png", "height/width"), 0);
    dd_dataset *tr, *te;
    assert_int_equal(rg_read(f->comp, "x", f->dir, NULL, 4, 4, &tr, &te), DD_OK);
    assert_int_equal(tr->height, 4);
    assert_int_equal(tr->width, 4);
    assert_int_equal(tr->n, K * PER + 1);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // center crop: a 12×4 image, left third 0, middle 200, right third 0 → 4×4 is all 200
    fresh(f);
    write_tree(f->dir, 1, 0);
    uint8_t px[12 * 4];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 12; x++)
            px[y * 12 + x] = x >= 4 && x < 8 ? 200 : 0;
    assert_int_equal(dd_image_write_png(rg_fixture_path(f, "train", "ant/zz.png"), 12, 4, 1, px),
                     DD_OK);
    assert_int_equal(rg_read(f->comp, "x", f->dir, NULL, 4, 4, &tr, &te), DD_OK);
    for (int p = 0; p < 16; p++)
        assert_int_equal(pixel_of(tr, PER, 0, p), 200); // "zz" sorts last in ant/
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
}

static void test_errors(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    assert_int_equal(rg_mkdirs(rg_fixture_path(f, "train", "")), DD_OK);
    assert_int_equal(rg_mkdirs(rg_fixture_path(f, "test", "")), DD_OK);
    assert_int_equal(rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_PARSE, "train", "no classes"),
                     0);
    fresh(f);
    write_tree(f->dir, 3, 0);
    assert_int_equal(rg_mkdirs(rg_fixture_path(f, "train", "dog")), DD_OK);
    rg_write_text(rg_fixture_path(f, "train", "dog/notes.txt"), "no images here");
    assert_int_equal(
        rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_PARSE, "train/dog", "empty class folder"),
        0);
    write_img(rg_fixture_path(f, "train", "dog/00.png"), 0, 3, 0, W, H, 3, 0);
    assert_int_equal(
        rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_PARSE, "class sets differ", "'dog'"), 0);
    write_img(rg_fixture_path(f, "test", "dog/00.png"), 1, 3, 0, W, H, 3, 0);
    // undecodable: garbage, and a truncated PNG
    rg_write_text(rg_fixture_path(f, "train", "dog/01.png"), "not a png at all");
    assert_int_equal(
        rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_PARSE, "dog/01.png", "undecodable"), 0);
    write_img(rg_fixture_path(f, "train", "dog/01.png"), 0, 3, 1, W, H, 3, 0);
    assert_int_equal(rg_truncate(rg_fixture_path(f, "train", "dog/01.png"), 60), DD_OK);
    assert_int_equal(
        rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_PARSE, "dog/01.png", "undecodable"), 0);
    write_img(rg_fixture_path(f, "train", "dog/01.jpg"), 0, 3, 1, W, H, 3, 1);
    unlink(rg_fixture_path(f, "train", "dog/01.png"));
    assert_int_equal(rg_truncate(rg_fixture_path(f, "train", "dog/01.jpg"), 200), DD_OK);
    dd_dataset *tr = NULL, *te = NULL;
    dd_status st = rg_read(f->comp, "x", f->dir, NULL, 0, 0, &tr, &te);
    assert_int_not_equal(st, DD_OK);
    assert_non_null(strstr(dd_error_message(), "dog/01.jpg"));
    assert_null(tr);
    // no train/ folder
    fresh(f);
    assert_int_equal(
        rg_expect_read_error(f, "x", NULL, 0, 0, DD_ERR_NOT_FOUND, "train/", "test_fraction"), 0);
    // mean/std of the wrong length
    fresh(f);
    write_tree(f->dir, 1, 0);
    const char *kv[] = {"mean=[0.1, 0.2]", NULL};
    assert_int_equal(rg_expect_read_error(f, "x", kv, 0, 0, DD_ERR_INVALID, "mean", "2 values"), 0);
}

static void test_fraction_split(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    char p[1024];
    for (int k = 0; k < K; k++)
        for (int i = 0; i < 10; i++) {
            snprintf(p, sizeof p, "%s/%s/%02d.png", f->dir, cls[k], i);
            write_img(p, 0, k, i, W, H, 1, 0);
        }
    const char *kv[] = {"test_fraction=0.3", "seed=5", NULL};
    dd_dataset *tr, *te, *tr2, *te2;
    assert_int_equal(rg_read(f->comp, "x", f->dir, kv, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->n, K * 7);
    assert_int_equal(te->n, K * 3);
    assert_int_equal(rg_read(f->comp, "x", f->dir, kv, 0, 0, &tr2, &te2), DD_OK);
    size_t isz = dd_dataset_image_size(tr);
    assert_int_equal(tr->dtype, DD_DTYPE_U8);
    assert_memory_equal(tr->pixels, tr2->pixels, tr->n * isz);
    assert_memory_equal(te->pixels, te2->pixels, te->n * isz);
    assert_memory_equal(te->labels, te2->labels, te->n * sizeof(int32_t));
    dd_dataset_destroy(tr2);
    dd_dataset_destroy(te2);
    const char *kv2[] = {"test_fraction=0.3", "seed=6", NULL};
    assert_int_equal(rg_read(f->comp, "x", f->dir, kv2, 0, 0, &tr2, &te2), DD_OK);
    assert_int_equal(te2->n, K * 3);
    assert_true(memcmp(te->pixels, te2->pixels, te->n * isz) != 0);
    dd_dataset_destroy(tr2);
    dd_dataset_destroy(te2);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    // train/ present with test_fraction: refused
    write_img(rg_fixture_path(f, "train", "ant/00.png"), 0, 0, 0, W, H, 1, 0);
    assert_int_equal(
        rg_expect_read_error(f, "x", kv, 0, 0, DD_ERR_INVALID, "train/", "test_fraction"), 0);
}

static void test_probe(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    write_tree(f->dir, 3, 0);
    const dd_dataset_ops *ops = f->comp->ops;
    assert_true(ops->flags & DD_DATASET_LOCAL);
    assert_true(ops->flags & DD_DATASET_UNPACK_PATH);
    assert_non_null(ops->probe);
    dd_options *o = NULL;
    const char *kv[] = {"channels=1", NULL};
    assert_int_equal(dd_options_from_strings(f->comp->params, kv, &o), DD_OK);
    dd_dataset_request req = {sizeof req, "x", f->dir, o, 0, 0};
    dd_dataset_shape sh;
    assert_int_equal(ops->probe(&req, &sh), DD_OK);
    assert_int_equal(sh.channels, 1);
    assert_int_equal(sh.height, H);
    assert_int_equal(sh.width, W);
    assert_int_equal(sh.n_classes, K);
    req.height = 16;
    assert_int_equal(ops->probe(&req, &sh), DD_OK);
    assert_int_equal(sh.height, 16);
    assert_int_equal(sh.width, 16);
    dd_options_destroy(o);
}

/* ---- archives ------------------------------------------------------------- */

typedef struct entry {
    const char *path;
    int type;           /* AE_IFREG, AE_IFDIR, AE_IFLNK */
    const char *file;   /* regular: copy this file's bytes (NULL: "x") */
    const char *target; /* symlink target */
} entry;

static void write_archive(const char *out, int zip, const entry *e, size_t n) {
    struct archive *a = archive_write_new();
    if (zip) {
        archive_write_set_format_zip(a);
    } else {
        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_gzip(a);
    }
    assert_int_equal(archive_write_open_filename(a, out), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *x = archive_entry_new();
        archive_entry_set_pathname(x, e[i].path);
        archive_entry_set_filetype(x, (unsigned)e[i].type);
        archive_entry_set_perm(x, e[i].type == AE_IFDIR ? 0755 : 0644);
        uint8_t *data = (uint8_t *)"x";
        size_t len = 0;
        if (e[i].type == AE_IFREG) {
            if (e[i].file)
                assert_int_equal(rg_read_file(e[i].file, &data, &len), DD_OK);
            else
                len = 1;
            archive_entry_set_size(x, (la_int64_t)len);
        }
        if (e[i].type == AE_IFLNK) archive_entry_set_symlink(x, e[i].target);
        assert_int_equal(archive_write_header(a, x), ARCHIVE_OK);
        if (len) assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
        if (e[i].file) free(data);
        archive_entry_free(x);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* The tree of write_tree as archive entries (files read from `src`). */
static size_t tree_entries(const char *src, char paths[][256], char files[][2100], entry *e) {
    char **list = NULL;
    assert_int_equal(rg_list_files(src, "train", &list), DD_OK);
    char **l2 = NULL;
    assert_int_equal(rg_list_files(src, "test", &l2), DD_OK);
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (char **p = pass ? l2 : list; *p; p++, n++) {
            snprintf(paths[n], 256, "%.255s", *p);
            snprintf(files[n], 2100, "%s/%s", src, *p);
            e[n] = (entry){paths[n], AE_IFREG, files[n], NULL};
        }
    rg_free_list(list);
    rg_free_list(l2);
    return n;
}

static int count_files(const char *dir) {
    char **list = NULL;
    if (rg_list_files(dir, "", &list) != DD_OK) return -1;
    int n = 0;
    while (list[n])
        n++;
    rg_free_list(list);
    return n;
}

static void test_archives(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    char src[1024], cache[1024], arch[1024];
    snprintf(src, sizeof src, "%s/src", f->dir);
    snprintf(cache, sizeof cache, "%s/cache", f->dir);
    write_tree(src, 3, 0);
    static char paths[64][256], files[64][2100];
    entry e[64];
    size_t n = tree_entries(src, paths, files, e);
    assert_int_equal(n, K * PER + K * 2);
    dd_fetch_options fo;
    dd_fetch_options_init(&fo);
    fo.cache_dir = cache;
    for (int zip = 0; zip < 2; zip++) {
        snprintf(arch, sizeof arch, "%s/pets.%s", f->dir, zip ? "zip" : "tar.gz");
        write_archive(arch, zip, e, n);
        char *root = NULL;
        assert_int_equal(dd_fetch_local_path("pets", arch, &fo, 1, &root), DD_OK);
        assert_non_null(strstr(root, "/+local/pets-"));
        dd_dataset *tr, *te;
        assert_int_equal(rg_read(f->comp, "pets", root, NULL, 0, 0, &tr, &te), DD_OK);
        assert_int_equal(tr->n, K * PER);
        assert_int_equal(te->n, K * 2);
        assert_int_equal(pixel_of(tr, 1, 2, 4), px_val(0, 0, 1, 4, 2));
        dd_dataset_destroy(tr);
        dd_dataset_destroy(te);
        // unchanged: reused; a directory path is returned as is
        char *again = NULL;
        assert_int_equal(dd_fetch_local_path("pets", arch, &fo, 1, &again), DD_OK);
        assert_string_equal(root, again);
        free(again);
        free(root);
        assert_int_equal(dd_fetch_local_path("pets", src, &fo, 1, &root), DD_OK);
        char *abs = realpath(src, NULL);
        assert_string_equal(root, abs);
        free(abs);
        free(root);
    }
    // a changed archive is unpacked again (one class less)
    snprintf(arch, sizeof arch, "%s/pets.tar.gz", f->dir);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (strstr(e[i].path, "/cat/") == NULL) e[m++] = e[i];
    sleep(1);
    write_archive(arch, 0, e, m);
    char *root = NULL;
    assert_int_equal(dd_fetch_local_path("pets", arch, &fo, 1, &root), DD_OK);
    dd_dataset *tr, *te;
    assert_int_equal(rg_read(f->comp, "pets", root, NULL, 0, 0, &tr, &te), DD_OK);
    assert_int_equal(tr->n_classes, K - 1);
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    free(root);
    // a name that is not a plain directory name never reaches the cache
    assert_int_equal(dd_fetch_local_path("../up", arch, &fo, 1, &root), DD_ERR_INVALID);
    assert_null(root);
    // not an archive
    snprintf(arch, sizeof arch, "%s/notes.txt", f->dir);
    rg_write_text(arch, "hi");
    assert_int_equal(dd_fetch_local_path("pets", arch, &fo, 1, &root), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "notes.txt"));
}

static void test_hostile_archives(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    char cache[1024], arch[1024], outside[1024];
    snprintf(cache, sizeof cache, "%s/c/cache", f->dir);
    snprintf(outside, sizeof outside, "%s/c", f->dir);
    assert_int_equal(rg_mkdirs(cache), DD_OK);
    dd_fetch_options fo;
    dd_fetch_options_init(&fo);
    fo.cache_dir = cache;
    const entry traversal[] = {{"train/a/../../../../x", AE_IFREG, NULL, NULL}};
    const entry absolute[] = {{"/tmp/distill-imagefolder-abs-x", AE_IFREG, NULL, NULL}};
    const entry link_escape[] = {{"train", AE_IFDIR, NULL, NULL},
                                 {"train/evil", AE_IFLNK, NULL, "../../../../../.."},
                                 {"train/evil/x", AE_IFREG, NULL, NULL}};
    const entry link_write[] = {{"up", AE_IFLNK, NULL, "."}, {"up/../../y", AE_IFREG, NULL, NULL}};
    const struct {
        const entry *e;
        size_t n;
        const char *why;
    } cases[] = {
        {traversal, 1, "'..'"},
        {absolute, 1, "absolute"},
        {link_escape, 3, "escapes"},
        {link_write, 2, "'..'"},
    };
    for (int zip = 0; zip < 2; zip++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            snprintf(arch, sizeof arch, "%s/evil%zu.%s", f->dir, i, zip ? "zip" : "tar.gz");
            write_archive(arch, zip, cases[i].e, cases[i].n);
            char *root = NULL;
            dd_status st = dd_fetch_local_path("evil", arch, &fo, 1, &root);
            if (st != DD_ERR_ARCHIVE || !strstr(dd_error_message(), cases[i].why))
                fail_msg("case %zu (%s): status %d: %s", i, zip ? "zip" : "tar.gz", st,
                         dd_error_message());
            assert_null(root);
        }
    // nothing outside the cache: <outside> holds only cache/; no stray file in /tmp
    assert_int_equal(access("/tmp/distill-imagefolder-abs-x", F_OK), -1);
    char **list = NULL;
    assert_int_equal(rg_list_files(outside, "", &list), DD_OK);
    for (char **p = list; *p; p++)
        if (strncmp(*p + (**p == '/'), "cache/", 6) != 0)
            fail_msg("written outside the cache: %s", *p);
    rg_free_list(list);
    char x[1200];
    snprintf(x, sizeof x, "%s/x", f->dir);
    assert_int_equal(access(x, F_OK), -1);
    // and no partial tree is left in the cache
    char plocal[1200];
    snprintf(plocal, sizeof plocal, "%s/+local", cache);
    assert_int_equal(count_files(plocal) >= 0, 1);
    char **l2 = NULL;
    assert_int_equal(rg_list_files(plocal, "", &l2), DD_OK);
    for (char **p = l2; *p; p++)
        if (strstr(*p, "/tree")) fail_msg("a refused archive left %s", *p);
    rg_free_list(l2);
}

/* ---- through a pipeline: the loader and the fetch/load stages ---------------- */

static dd_status run_yaml(rg_fixture *f, const char *yaml, dd_pipeline **out) {
    char path[1200];
    snprintf(path, sizeof path, "%s/p.yaml", f->dir);
    assert_int_equal(rg_write_text(path, yaml), DD_OK);
    return dd_pipeline_load(path, NULL, f->reg, out);
}

static void test_pipeline_local(void **state) {
    rg_fixture *f = *state;
    fresh(f);
    dd_pipeline *p = NULL;
    // dataset.path is required, and the message names it
    assert_int_equal(
        run_yaml(f, "name: t\nstages: [fetch, load]\ndataset:\n  plugin: imagefolder\n", &p),
        DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "missing required key 'dataset.path'"));
    assert_null(p);
    // dataset.name is a label, not a manifest, but a plain one
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "name: t\nstages: [fetch, load]\ndataset:\n  plugin: imagefolder\n  name: ../up\n"
             "  path: %s/src\n",
             f->dir);
    assert_int_equal(run_yaml(f, yaml, &p), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "'dataset.name'"));
    // an archive through fetch and load, unpacked into the given cache
    char src[1024];
    snprintf(src, sizeof src, "%s/src", f->dir);
    write_tree(src, 1, 0);
    static char paths[64][256], files[64][2100];
    entry e[64];
    size_t n = tree_entries(src, paths, files, e);
    char arch[1200];
    snprintf(arch, sizeof arch, "%s/mine.zip", f->dir);
    write_archive(arch, 1, e, n);
    snprintf(yaml, sizeof yaml,
             "name: t\nstages: [fetch, load]\ndataset:\n  plugin: imagefolder\n  name: mine\n"
             "  path: %s\n  cache_dir: %s/cache\n  channels: 3\n",
             arch, f->dir);
    assert_int_equal(run_yaml(f, yaml, &p), DD_OK);
    char out[1200];
    snprintf(out, sizeof out, "%s/run", f->dir);
    dd_run_options ro = {.struct_size = sizeof ro, .out_dir = out};
    if (dd_run_pipeline(f->reg, p, &ro) != DD_OK) fail_msg("%s", dd_error_message());
    dd_pipeline_destroy(p);
    char tree[1200];
    snprintf(tree, sizeof tree, "%s/cache/+local", f->dir);
    char **list = NULL;
    assert_int_equal(rg_list_files(tree, "", &list), DD_OK);
    int pngs = 0;
    for (char **q = list; *q; q++)
        pngs += strstr(*q, "/tree/train/") && strstr(*q, ".png");
    rg_free_list(list);
    assert_int_equal(pngs, K * PER);
}

/* ---- Fashion-MNIST as a PNG tree against the mnist reader ------------------- */

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
enum { N_EQ = 2000 };

static void test_fashion_equivalence(void **state) {
    (void)state;
    rg_fixture *mn = rg_fixture_open("mnist", "if-fashion");
    rg_fixture *f = rg_fixture_open("imagefolder", "if-fashion-tree");
    assert_non_null(mn);
    assert_non_null(f);
    const char *kvm[] = {"max_images=2000", NULL};
    dd_dataset *mtr, *mte;
    assert_int_equal(rg_read(mn->comp, "fashion-mnist", FASHION_DIR, kvm, 0, 0, &mtr, &mte), DD_OK);
    assert_int_equal(mtr->n, N_EQ);
    char names[10][64];
    for (int k = 0; k < 10; k++) {
        snprintf(names[k], sizeof names[k], "%d_%s", k, mtr->class_names[k]);
        for (char *c = names[k]; *c; c++)
            if (*c == '/' || *c == ' ') *c = '-';
    }
    // the PNG tree, from the mnist reader's bytes (denormalizing is exact)
    uint8_t px[28 * 28];
    char p[1024];
    for (int s = 0; s < 2; s++) {
        const dd_dataset *d = s ? mte : mtr;
        for (int64_t i = 0; i < d->n; i++) {
            dd_image_denormalize(rg_image(d, i), 28, 28, 1, d->mean, d->std, px);
            snprintf(p, sizeof p, "%s/%s/%s", f->dir, s ? "test" : "train", names[d->labels[i]]);
            rg_mkdirs(p);
            snprintf(p, sizeof p, "%s/%s/%s/%05lld.png", f->dir, s ? "test" : "train",
                     names[d->labels[i]], (long long)i);
            assert_int_equal(dd_image_write_png(p, 28, 28, 1, px), DD_OK);
        }
    }
    const char *kv[] = {"mean=[0.2860]", "std=[0.3530]", NULL};
    dd_dataset *tr, *te;
    assert_int_equal(rg_read(f->comp, "fashion-mnist", f->dir, kv, 0, 0, &tr, &te), DD_OK);
    for (int s = 0; s < 2; s++) {
        const dd_dataset *a = s ? te : tr, *b = s ? mte : mtr;
        assert_int_equal(a->n, b->n);
        assert_int_equal(a->channels, 1);
        assert_int_equal(a->height, 28);
        assert_float_equal(a->mean[0], b->mean[0], 0);
        assert_float_equal(a->std[0], b->std[0], 0);
        // imagefolder's order: class by class, file names (= original index) within
        int64_t j = 0;
        for (int k = 0; k < 10; k++)
            for (int64_t i = 0; i < b->n; i++) {
                if (b->labels[i] != k) continue;
                assert_int_equal(a->labels[j], k);
                // same dtype and normalisation: the same stored bytes or not
                assert_int_equal(a->dtype, b->dtype);
                if (memcmp((const uint8_t *)a->pixels + j * 784,
                           (const uint8_t *)b->pixels + i * 784, 784) != 0)
                    fail_msg("split %d: image %lld (original %lld) differs", s, (long long)j,
                             (long long)i);
                j++;
            }
        assert_int_equal(j, a->n);
    }
    dd_dataset_destroy(tr);
    dd_dataset_destroy(te);
    dd_dataset_destroy(mtr);
    dd_dataset_destroy(mte);
    rg_fixture_close(f);
    rg_fixture_close(mn);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--fashion") == 0) {
        if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
            printf("skipped: %s not installed (Debian package dataset-fashion-mnist)\n",
                   FASHION_DIR);
            return 77;
        }
        const struct CMUnitTest eq[] = {cmocka_unit_test(test_fashion_equivalence)};
        return cmocka_run_group_tests(eq, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_rgb_tree),
        cmocka_unit_test(test_gray_and_conversion),
        cmocka_unit_test(test_jpeg_tree),
        cmocka_unit_test(test_mixed_sizes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_fraction_split),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_archives),
        cmocka_unit_test(test_hostile_archives),
        cmocka_unit_test(test_pipeline_local),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
