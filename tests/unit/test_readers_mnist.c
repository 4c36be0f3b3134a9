/* distill tests — the mnist reader (MNIST and Fashion-MNIST IDX files) on
 * generated data: counts, labels, pixel round trip, resize, .gz inputs, and
 * every truncated or inconsistent variant rejected with the file's name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "readers_gen.h"

enum { NTR = 30, NTE = 12, R = 28, C = 28 };

static int setup(void **state) {
    return (*state = rg_fixture_open("mnist", "mnist")) ? 0 : -1;
}

static int teardown(void **state) {
    rg_fixture_close(*state);
    return 0;
}

static void check_split(const dd_dataset *d, int split, int64_t n, const float mean,
                        const float std) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->channels, 1);
    assert_int_equal(d->height, R);
    assert_int_equal(d->width, C);
    assert_int_equal(d->n_classes, 10);
    assert_float_equal(d->mean[0], mean, 1e-6);
    assert_float_equal(d->std[0], std, 1e-6);
    uint8_t back[R * C];
    for (int64_t i = 0; i < n; i++) {
        assert_int_equal(d->labels[i], rg_mnist_label(split, i));
        // de-normalizing gives back the file's bytes exactly
        dd_image_denormalize(rg_image(d, i), C, R, 1, d->mean, d->std, back);
        for (int p = 0; p < R * C; p++)
            assert_int_equal(back[p], rg_mnist_pixel(split, i, p));
        // the file's bytes, held as they are, normalised bit for bit as the
        // reader did when it stored floats
        for (int p = 0; p < R * C; p++)
            back[p] = rg_mnist_pixel(split, i, p);
        assert_true(rg_old_path_image(d, i, back));
    }
    assert_true(rg_old_path_batch(d));
    assert_int_equal(dd_dataset_bytes(d), (size_t)n * R * C);
}

static void test_mnist_reads_plain_files(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "mnist", f->dir, NULL, 0, 0, &train, &test), DD_OK);
    check_split(train, 0, NTR, 0.1307f, 0.3081f);
    check_split(test, 1, NTE, 0.1307f, 0.3081f);
    assert_string_equal(train->name, "mnist/train");
    assert_string_equal(test->name, "mnist/test");
    assert_string_equal(train->class_names[7], "7");
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void test_fashion_reads_gz_files(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 1), DD_OK);
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "fashion-mnist", f->dir, NULL, 0, 0, &train, &test), DD_OK);
    check_split(train, 0, NTR, 0.2860f, 0.3530f);
    check_split(test, 1, NTE, 0.2860f, 0.3530f);
    assert_string_equal(train->class_names[0], "T-shirt/top");
    assert_string_equal(train->class_names[9], "Ankle boot");
    assert_string_equal(test->name, "fashion-mnist/test");
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void test_max_images_and_resize(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    dd_dataset *train, *test;
    const char *kv[] = {"max_images=5", NULL};
    assert_int_equal(rg_read(f->comp, "mnist", f->dir, kv, 32, 32, &train, &test), DD_OK);
    assert_int_equal(train->n, 5);
    assert_int_equal(test->n, 5);
    assert_int_equal(train->height, 32);
    assert_int_equal(train->width, 32);
    // the resized image matches dd_image_resize_u8 of the source bytes
    uint8_t src[R * C], want[32 * 32], got[32 * 32];
    for (int p = 0; p < R * C; p++)
        src[p] = rg_mnist_pixel(0, 3, p);
    assert_int_equal(dd_image_resize_u8(src, C, R, 1, want, 32, 32), DD_OK);
    dd_image_denormalize(rg_image(train, 3), 32, 32, 1, train->mean, train->std, got);
    assert_memory_equal(want, got, sizeof want);
    assert_true(rg_old_path_image(train, 3, want)); // resized bytes, then normalised
    assert_true(rg_old_path_batch(train));
    assert_int_equal(train->labels[4], rg_mnist_label(0, 4));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

/* Runs the reader and expects `status` with both substrings in the message. */
static void expect_error(rg_fixture *f, dd_status status, const char *file, const char *what) {
    assert_int_equal(rg_expect_read_error(f, "mnist", NULL, 0, 0, status, file, what), 0);
}

static const char *path_of(rg_fixture *f, const char *name) {
    return rg_fixture_path(f, NULL, name);
}

static void test_rejects_bad_files(void **state) {
    rg_fixture *f = *state;
    const uint8_t bad_magic[4] = {0, 0, 8, 2};
    const uint8_t float_type[4] = {0, 0, 0x0D, 3};
    const uint8_t n_big[4] = {0, 0, 0, 31};
    const uint8_t n_small[4] = {0, 0, 0, 29};
    const uint8_t label_11 = 11;
    const uint8_t zero[4] = {0, 0, 0, 0};

    // wrong magic
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_patch(path_of(f, "train-images-idx3-ubyte"), 0, bad_magic, 4), DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-images-idx3-ubyte", "magic");
    // wrong element type
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_patch(path_of(f, "t10k-images-idx3-ubyte"), 0, float_type, 4), DD_OK);
    expect_error(f, DD_ERR_PARSE, "t10k-images-idx3-ubyte", "element type");
    // labels file given an image magic
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_patch(path_of(f, "train-labels-idx1-ubyte"), 0, bad_magic, 4), DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-labels-idx1-ubyte", "magic");
    // truncated data
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_truncate(path_of(f, "train-images-idx3-ubyte"), 16 + 10 * R * C + 5),
                     DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-images-idx3-ubyte", "truncated");
    // truncated header
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_truncate(path_of(f, "t10k-labels-idx1-ubyte"), 6), DD_OK);
    expect_error(f, DD_ERR_PARSE, "t10k-labels-idx1-ubyte", "header");
    // count larger than the data (header lies)
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_patch(path_of(f, "train-images-idx3-ubyte"), 4, n_big, 4), DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-images-idx3-ubyte", "31 images");
    // trailing bytes
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_append(path_of(f, "train-labels-idx1-ubyte"), "xyz", 3), DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-labels-idx1-ubyte", "3 unexpected bytes");
    // zero rows
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_patch(path_of(f, "train-images-idx3-ubyte"), 8, zero, 4), DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-images-idx3-ubyte", "dimension 1 is 0");
    // image/label count mismatch (both files self-consistent)
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_patch(path_of(f, "train-labels-idx1-ubyte"), 4, n_small, 4), DD_OK);
    assert_int_equal(rg_truncate(path_of(f, "train-labels-idx1-ubyte"), 8 + 29), DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-labels-idx1-ubyte", "29 labels");
    // label out of range
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    assert_int_equal(rg_patch(path_of(f, "t10k-labels-idx1-ubyte"), 8 + 4, &label_11, 1), DD_OK);
    expect_error(f, DD_ERR_PARSE, "t10k-labels-idx1-ubyte", "label 11 of item 4");
    // missing file (neither plain nor .gz)
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 0), DD_OK);
    remove(path_of(f, "t10k-images-idx3-ubyte"));
    expect_error(f, DD_ERR_NOT_FOUND, "t10k-images-idx3-ubyte", "no such file");
    // a truncated .gz
    rg_rmtree(f->dir);
    assert_int_equal(rg_write_mnist(f->dir, NTR, NTE, R, C, 1), DD_OK);
    assert_int_equal(rg_truncate(path_of(f, "train-images-idx3-ubyte.gz"), 100), DD_OK);
    expect_error(f, DD_ERR_PARSE, "train-images-idx3-ubyte.gz", "gzip");
    rg_rmtree(f->dir);
    assert_int_equal(rg_mkdirs(f->dir), DD_OK);
}

static void test_rejects_unknown_dataset(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "kmnist", f->dir, NULL, 0, 0, &train, &test), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "kmnist"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mnist_reads_plain_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fashion_reads_gz_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_images_and_resize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_unknown_dataset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
