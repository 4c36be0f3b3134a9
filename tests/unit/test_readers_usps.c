/* distill tests — the usps reader on generated LIBSVM files (bzip2 and plain):
 * counts, labels, pixel round trip, class names, resize, and malformed lines,
 * bad labels and truncated bzip2 rejected with the file name and line. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "readers_gen.h"

enum { NTR = 12, NTE = 7, LINE = 256 * 20 + 16 };

static int setup(void **state) {
    rg_fixture *f = *state = rg_fixture_open("usps", "usps");
    return f && rg_write_usps(f->dir, NTR, NTE, 1) == DD_OK ? 0 : -1;
}

static int setup_plain(void **state) {
    rg_fixture *f = *state = rg_fixture_open("usps", "usps-plain");
    return f && rg_write_usps(f->dir, NTR, NTE, 0) == DD_OK ? 0 : -1;
}

static int teardown(void **state) {
    rg_fixture_close(*state);
    return 0;
}

static void check_pixels(const dd_dataset *d, int split) {
    uint8_t px[256];
    for (int64_t i = 0; i < d->n; i++) {
        assert_int_equal(d->labels[i], rg_usps_label(split, i));
        dd_image_denormalize(rg_image(d, i), 16, 16, 1, d->mean, d->std, px);
        for (int p = 0; p < 256; p++)
            assert_int_equal(px[p], rg_usps_pixel(split, i, p));
        // held as bytes, normalised bit for bit as the reader once stored them
        for (int p = 0; p < 256; p++)
            px[p] = rg_usps_pixel(split, i, p);
        assert_true(rg_old_path_image(d, i, px));
    }
    assert_true(rg_old_path_batch(d));
    assert_int_equal(dd_dataset_bytes(d), (size_t)d->n * 256);
}

static void test_reads_bz2(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "usps", f->dir, NULL, 0, 0, &train, &test), DD_OK);
    assert_int_equal(train->n, NTR);
    assert_int_equal(test->n, NTE);
    assert_int_equal(train->channels, 1);
    assert_int_equal(train->height, 16);
    assert_int_equal(train->width, 16);
    assert_int_equal(train->n_classes, 10);
    char name[2] = "0";
    for (int k = 0; k < 10; k++, name[0]++)
        assert_string_equal(train->class_names[k], name);
    assert_float_equal(train->mean[0], 0.1307f, 1e-6);
    assert_float_equal(train->std[0], 0.3081f, 1e-6);
    check_pixels(train, 0);
    check_pixels(test, 1);
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void test_reads_plain(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "usps", f->dir, NULL, 0, 0, &train, &test), DD_OK);
    assert_int_equal(train->n, NTR);
    assert_int_equal(test->n, NTE);
    check_pixels(train, 0);
    check_pixels(test, 1);
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void test_resize_and_max_images(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    const char *kv[] = {"max_images=4", NULL};
    assert_int_equal(rg_read(f->comp, "usps", f->dir, kv, 28, 28, &train, &test), DD_OK);
    assert_int_equal(train->n, 4);
    assert_int_equal(test->n, 4);
    assert_int_equal(train->height, 28);
    assert_int_equal(train->width, 28);
    uint8_t src[256], want[28 * 28], got[28 * 28];
    for (int p = 0; p < 256; p++)
        src[p] = rg_usps_pixel(1, 3, p);
    assert_int_equal(dd_image_resize_u8(src, 16, 16, 1, want, 28, 28), DD_OK);
    dd_image_denormalize(rg_image(test, 3), 28, 28, 1, test->mean, test->std, got);
    assert_memory_equal(want, got, sizeof want);
    assert_true(rg_old_path_image(test, 3, want));
    assert_true(rg_old_path_batch(test));
    assert_int_equal(test->labels[3], rg_usps_label(1, 3));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void expect_error(rg_fixture *f, dd_status status, const char *file, const char *what) {
    assert_int_equal(rg_expect_read_error(f, "usps", NULL, 0, 0, status, file, what), 0);
}

/* Replaces line `line` (1-based) of split `split`'s file by `text` and
 * compresses the result to <name>.bz2 (the plain file is removed). */
static void rewrite_line(rg_fixture *f, int split, int line, const char *text) {
    const char *name = split ? "usps.t" : "usps";
    char *orig = malloc(LINE), plain[1100];
    assert_non_null(orig);
    snprintf(plain, sizeof plain, "%s", rg_fixture_path(f, NULL, name));
    assert_int_equal(rg_write_usps(f->dir, NTR, NTE, 0), DD_OK);
    assert_int_equal(rg_usps_line(split, line - 1, orig, LINE), DD_OK);
    assert_int_equal(rg_replace_text(plain, orig, text), DD_OK);
    char bz2[1200];
    snprintf(bz2, sizeof bz2, "%s.bz2", plain);
    assert_int_equal(rg_bzip2_file(plain, bz2), DD_OK);
    remove(rg_fixture_path(f, NULL, "usps"));
    remove(rg_fixture_path(f, NULL, "usps.t"));
    free(orig);
}

/* Line `line` of split `split` with the field starting with `from` (up to
 * the next space) replaced by `to`. */
static void edit_line(rg_fixture *f, int split, int line, const char *from, const char *to) {
    char *text = malloc(LINE), *out = malloc(LINE + 64);
    assert_non_null(text);
    assert_non_null(out);
    assert_int_equal(rg_usps_line(split, line - 1, text, LINE), DD_OK);
    char *at = strstr(text, from);
    assert_non_null(at);
    const char *rest = strchr(at + 1, ' ');
    snprintf(out, LINE + 64, "%.*s%s%s", (int)(at - text), text, to, rest ? rest : "");
    rewrite_line(f, split, line, out);
    free(text);
    free(out);
}

static void test_rejects_bad_labels(void **state) {
    rg_fixture *f = *state;
    char line[LINE];
    assert_int_equal(rg_usps_line(0, 4, line, sizeof line), DD_OK);
    char *rest = strchr(line, ' ');
    char bad[LINE + 8];
    snprintf(bad, sizeof bad, "11%s", rest);
    rewrite_line(f, 0, 5, bad);
    expect_error(f, DD_ERR_PARSE, "usps.bz2:5:", "label 11 is not in 1..10");
    snprintf(bad, sizeof bad, "0%s", rest);
    rewrite_line(f, 0, 5, bad);
    expect_error(f, DD_ERR_PARSE, "usps.bz2:5:", "label 0 is not in 1..10");
    snprintf(bad, sizeof bad, "x%s", rest);
    rewrite_line(f, 0, 5, bad);
    expect_error(f, DD_ERR_PARSE, "usps.bz2:5:", "does not start with an integer label");
}

static void test_rejects_wrong_field_count(void **state) {
    rg_fixture *f = *state;
    char line[LINE];
    assert_int_equal(rg_usps_line(1, 2, line, sizeof line), DD_OK);
    *strstr(line, " 256:") = 0;
    rewrite_line(f, 1, 3, line);
    expect_error(f, DD_ERR_PARSE, "usps.t.bz2:3:", "255 values, expected 256");
    assert_int_equal(rg_usps_line(1, 2, line, sizeof line), DD_OK);
    strcat(line, " 257:0");
    rewrite_line(f, 1, 3, line);
    expect_error(f, DD_ERR_PARSE, "usps.t.bz2:3:", "more than 256 values");
}

static void test_rejects_bad_indices(void **state) {
    rg_fixture *f = *state;
    edit_line(f, 0, 1, " 2:", " 3:0.5");
    expect_error(f, DD_ERR_PARSE, "usps.bz2:1:", "feature index 3 out of order, expected 2");
    edit_line(f, 0, 2, " 7:", " 0:0.5");
    expect_error(f, DD_ERR_PARSE, "usps.bz2:2:", "feature index 0 is not in 1..256");
    edit_line(f, 0, 2, " 256:", " 300:0.5");
    expect_error(f, DD_ERR_PARSE, "usps.bz2:2:", "feature index 300 is not in 1..256");
    edit_line(f, 0, 2, " 9:", " 9=0.5");
    expect_error(f, DD_ERR_PARSE, "usps.bz2:2:", "field 9 is not <index>:<value>");
}

static void test_rejects_bad_values(void **state) {
    rg_fixture *f = *state;
    edit_line(f, 1, 6, " 10:", " 10:abc");
    expect_error(f, DD_ERR_PARSE, "usps.t.bz2:6:", "value of feature 10 is not a number");
    edit_line(f, 1, 6, " 10:", " 10:1.5");
    expect_error(f, DD_ERR_PARSE, "usps.t.bz2:6:", "value 1.5 of feature 10 is not in [-1, 1]");
    edit_line(f, 1, 6, " 10:", " 10:nan");
    expect_error(f, DD_ERR_PARSE, "usps.t.bz2:6:", "of feature 10 is not in [-1, 1]");
}

static void test_rejects_empty_file(void **state) {
    rg_fixture *f = *state;
    const char *plain = rg_fixture_path(f, NULL, "usps.t");
    assert_int_equal(rg_write_text(plain, "\n\n"), DD_OK);
    char bz2[1200];
    snprintf(bz2, sizeof bz2, "%s.bz2", plain);
    assert_int_equal(rg_bzip2_file(plain, bz2), DD_OK);
    remove(plain);
    expect_error(f, DD_ERR_PARSE, "usps.t.bz2", "empty: no images");
}

static void test_rejects_truncated_bz2(void **state) {
    rg_fixture *f = *state;
    uint8_t *data;
    size_t len;
    const char *path = rg_fixture_path(f, NULL, "usps.bz2");
    assert_int_equal(rg_read_file(path, &data, &len), DD_OK);
    free(data);
    assert_int_equal(rg_truncate(path, len / 2), DD_OK);
    expect_error(f, DD_ERR_PARSE, "usps.bz2", "truncated");
    // Cut near the end of a larger file: the header decodes, the data does not.
    assert_int_equal(rg_write_usps(f->dir, 300, NTE, 1), DD_OK);
    assert_int_equal(rg_read_file(path, &data, &len), DD_OK);
    free(data);
    assert_int_equal(rg_truncate(path, len - 16), DD_OK);
    expect_error(f, DD_ERR_PARSE, "usps.bz2", "corrupt or truncated bzip2 data");
}

static void test_rejects_not_bz2(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_write_text(rg_fixture_path(f, NULL, "usps.bz2"), "1 1:0\n"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "usps.bz2", "not a bzip2 file");
}

static void test_rejects_missing_file(void **state) {
    rg_fixture *f = *state;
    remove(rg_fixture_path(f, NULL, "usps.t.bz2"));
    expect_error(f, DD_ERR_NOT_FOUND, "usps.t.bz2", "no such file");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_bz2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_plain, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_resize_and_max_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_wrong_field_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_indices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_truncated_bz2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_not_bz2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_missing_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
