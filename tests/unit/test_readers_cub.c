/* distill tests — the cub200 reader on a generated CUB_200_2011 tree: split,
 * labels, class names, bbox crop, and index files with inconsistent ids or
 * counts, missing images and corrupt JPEGs rejected with file and line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "readers_gen.h"

enum { K = 4, PER = 5 };

static int setup(void **state) {
    rg_fixture *f = *state = rg_fixture_open("cub200", "cub");
    return f && rg_write_cub(f->dir, K, PER) == DD_OK ? 0 : -1;
}

static int teardown(void **state) {
    rg_fixture_close(*state);
    return 0;
}

static const char *cub(rg_fixture *f, const char *rel) {
    return rg_fixture_path(f, "CUB_200_2011", rel);
}

static void pixel(const dd_dataset *d, int64_t i, int x, int y, uint8_t rgb[3]) {
    size_t hw = (size_t)d->height * d->width;
    for (int c = 0; c < 3; c++) {
        float v = rg_image(d, (int64_t)i)[c * hw + (size_t)y * d->width + x];
        dd_image_denormalize(&v, 1, 1, 1, &d->mean[c], &d->std[c], &rgb[c]);
    }
}

static int near(const uint8_t a[3], const uint8_t b[3], int tol) {
    for (int c = 0; c < 3; c++)
        if (abs((int)a[c] - (int)b[c]) > tol) return 0;
    return 1;
}

static void test_reads_split_labels_names(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "cub200", f->dir, NULL, 24, 24, &train, &test), DD_OK);
    int64_t want[2] = {0, 0};
    for (int i = 0; i < K * PER; i++) {
        rg_cub_image im;
        rg_cub_info(K, PER, i, &im);
        want[im.is_train ? 0 : 1]++;
    }
    assert_int_equal(train->n, want[0]);
    assert_int_equal(test->n, want[1]);
    assert_int_equal(train->n_classes, K);
    assert_string_equal(train->class_names[2], "Class_3"); // "003.Class_3" without the number
    assert_int_equal(train->height, 24);
    int64_t j[2] = {0, 0};
    for (int i = 0; i < K * PER; i++) {
        rg_cub_image im;
        rg_cub_info(K, PER, i, &im);
        const dd_dataset *d = im.is_train ? train : test;
        int64_t k = j[im.is_train ? 0 : 1]++;
        assert_int_equal(d->labels[k], im.label);
        // uncropped: the top-left corner is background
        uint8_t rgb[3];
        pixel(d, k, 0, 0, rgb);
        assert_true(near(rgb, im.bg, 16));
    }
    // decoded bytes held as they are; gathered batches are bit for bit the
    // normalisation the reader once stored
    assert_true(rg_old_path_batch(train));
    assert_true(rg_old_path_batch(test));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void test_bbox_crop_and_default_size(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    const char *kv[] = {"crop=bbox", NULL};
    assert_int_equal(rg_read(f->comp, "cub200", f->dir, kv, 0, 0, &train, &test), DD_OK);
    assert_int_equal(train->height, 224);
    assert_int_equal(train->width, 224);
    int64_t j[2] = {0, 0};
    for (int i = 0; i < K * PER; i++) {
        rg_cub_image im;
        rg_cub_info(K, PER, i, &im);
        const dd_dataset *d = im.is_train ? train : test;
        int64_t k = j[im.is_train ? 0 : 1]++;
        // cropped to the box: foreground everywhere away from the border
        for (int y = 16; y < 208; y += 16)
            for (int x = 16; x < 208; x += 16) {
                uint8_t rgb[3];
                pixel(d, k, x, y, rgb);
                if (!near(rgb, im.fg, 20))
                    fail_msg("image %d pixel (%d,%d) = (%d,%d,%d), expected the box colour", i, x,
                             y, rgb[0], rgb[1], rgb[2]);
            }
    }
    // decoded bytes held as they are; gathered batches are bit for bit the
    // normalisation the reader once stored
    assert_true(rg_old_path_batch(train));
    assert_true(rg_old_path_batch(test));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

/* Runs the reader with crop=`crop` and expects `status` with both substrings in the message. */
static void expect_error(rg_fixture *f, const char *crop, dd_status status, const char *a,
                         const char *b) {
    char opt[64];
    snprintf(opt, sizeof opt, "crop=%s", crop);
    const char *kv[] = {opt, NULL};
    assert_int_equal(rg_expect_read_error(f, "cub200", kv, 8, 8, status, a, b), 0);
}

static void restore(rg_fixture *f) {
    assert_int_equal(rg_write_cub(f->dir, K, PER), DD_OK);
}

static void test_inconsistent_index_files(void **state) {
    rg_fixture *f = *state;
    // a label file missing its last line
    assert_int_equal(rg_replace_text(cub(f, "image_class_labels.txt"), "20 4\n", ""), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "image_class_labels.txt",
                 "none for the image at images.txt line 20");
    restore(f);
    // an id not in images.txt
    assert_int_equal(rg_replace_text(cub(f, "train_test_split.txt"), "7 0\n", "77 0\n"), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "train_test_split.txt:7",
                 "image id 77 is not in images.txt");
    restore(f);
    // a duplicated id
    assert_int_equal(rg_replace_text(cub(f, "image_class_labels.txt"), "3 1\n", "2 1\n"), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "image_class_labels.txt:3", "already listed at line 2");
    restore(f);
    // duplicate ids in images.txt
    assert_int_equal(rg_replace_text(cub(f, "images.txt"), "5 ", "4 "), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "images.txt:5", "image id 4 already used at line 4");
    restore(f);
    // class id out of range
    assert_int_equal(rg_replace_text(cub(f, "image_class_labels.txt"), "20 4\n", "20 9\n"), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "image_class_labels.txt:20", "class id 9 not in 1..4");
    restore(f);
    // classes out of order
    assert_int_equal(rg_replace_text(cub(f, "classes.txt"), "2 002", "5 002"), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "classes.txt:2", "class id 5, expected 2");
    restore(f);
    // a split flag that is not 0/1
    assert_int_equal(rg_replace_text(cub(f, "train_test_split.txt"), "1 1\n", "1 yes\n"), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "train_test_split.txt:1", "expected 0 or 1");
    restore(f);
    // a malformed line
    assert_int_equal(rg_replace_text(cub(f, "images.txt"), "3 ", "three "), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "images.txt:3", "expected '<id> <value>'");
    restore(f);
    // an image path escaping the tree
    assert_int_equal(rg_replace_text(cub(f, "images.txt"), "1 001", "1 ../../001"), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "images.txt:1", "not a relative path");
    restore(f);
    // a bad box, and a box file with a missing entry (only matters when present or cropping)
    assert_int_equal(rg_replace_text(cub(f, "bounding_boxes.txt"), "6 4.0 4.0", "6 4.0 -4.0"),
                     DD_OK);
    expect_error(f, "bbox", DD_ERR_PARSE, "bounding_boxes.txt:6", "bad box");
    restore(f);
    remove(cub(f, "bounding_boxes.txt"));
    expect_error(f, "bbox", DD_ERR_NOT_FOUND, "bounding_boxes.txt", "no such file");
    // without cropping the boxes are not needed
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "cub200", f->dir, NULL, 8, 8, &train, &test), DD_OK);
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
    restore(f);
    // an empty index file
    assert_int_equal(rg_write_text(cub(f, "classes.txt"), "\n"), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "classes.txt", "empty file");
    restore(f);
    // no directory at all
    char sub[1024];
    snprintf(sub, sizeof sub, "%s", cub(f, ""));
    rg_rmtree(sub);
    expect_error(f, "none", DD_ERR_NOT_FOUND, "CUB_200_2011", "no such directory");
}

static void test_missing_and_corrupt_images(void **state) {
    rg_fixture *f = *state;
    rg_cub_image im;
    rg_cub_info(K, PER, 8, &im); // id 9, a training image
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s", im.rel);
    remove(cub(f, rel));
    expect_error(f, "none", DD_ERR_NOT_FOUND, "images.txt:9", im.rel);
    restore(f);
    assert_int_equal(rg_truncate(cub(f, rel), 150), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, "images.txt:9", "JPEG");
    restore(f);
    assert_int_equal(rg_write_text(cub(f, rel), "GIF89a..."), DD_OK);
    expect_error(f, "none", DD_ERR_PARSE, im.rel, "not a JPEG");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_split_labels_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bbox_crop_and_default_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inconsistent_index_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_corrupt_images, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
