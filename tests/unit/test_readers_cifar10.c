/* distill tests — the cifar10 reader on generated binary batches: counts,
 * labels, planar pixel round trip, class names, resize, and truncated or
 * inconsistent batches rejected with the file's name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "readers_gen.h"

enum { PER_BATCH = 7, NTE = 9 };

static int setup(void **state) {
    rg_fixture *f = *state = rg_fixture_open("cifar10", "cifar");
    return f && rg_write_cifar10(f->dir, PER_BATCH, NTE) == DD_OK ? 0 : -1;
}

static int teardown(void **state) {
    rg_fixture_close(*state);
    return 0;
}

static const char *batch(rg_fixture *f, const char *name) {
    return rg_fixture_path(f, "cifar-10-batches-bin", name);
}

static void test_reads_batches(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "cifar10", f->dir, NULL, 0, 0, &train, &test), DD_OK);
    assert_int_equal(train->n, 5 * PER_BATCH);
    assert_int_equal(test->n, NTE);
    assert_int_equal(train->channels, 3);
    assert_int_equal(train->height, 32);
    assert_int_equal(train->width, 32);
    assert_int_equal(train->n_classes, 10);
    for (int k = 0; k < 10; k++)
        assert_string_equal(train->class_names[k], rg_cifar_classes[k]);
    assert_float_equal(train->mean[0], 0.4914f, 1e-6);
    assert_float_equal(train->std[2], 0.2616f, 1e-6);
    uint8_t hwc[32 * 32 * 3];
    for (int64_t i = 0; i < train->n + test->n; i++) {
        const dd_dataset *d = i < train->n ? train : test;
        int64_t j = i < train->n ? i : i - train->n;
        int file = i < train->n ? (int)(j / PER_BATCH) : 5;
        int rec = i < train->n ? (int)(j % PER_BATCH) : (int)j;
        assert_int_equal(d->labels[j], rg_cifar_label(file, rec));
        dd_image_denormalize(rg_image(d, (int64_t)j), 32, 32, 3, d->mean, d->std, hwc);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++)
                assert_int_equal(hwc[p * 3 + c], rg_cifar_pixel(file, rec, c * 1024 + p));
        // held as the record's bytes; normalised as dd_image_normalize does
        // (the resized path always did; the 32×32 path had its own loop,
        // compiled in the plugin without FMA contraction, one ulp apart on
        // some values)
        assert_true(rg_old_path_image(d, (int64_t)j, hwc));
    }
    assert_true(rg_old_path_batch(train));
    assert_true(rg_old_path_batch(test));
    assert_int_equal(dd_dataset_bytes(train), (size_t)train->n * 3072);
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

static void test_resize_and_max_images(void **state) {
    rg_fixture *f = *state;
    dd_dataset *train, *test;
    const char *kv[] = {"max_images=3", NULL};
    assert_int_equal(rg_read(f->comp, "cifar10", f->dir, kv, 16, 16, &train, &test), DD_OK);
    assert_int_equal(train->n, 3);
    assert_int_equal(test->n, 3);
    assert_int_equal(train->height, 16);
    assert_int_equal(train->width, 16);
    uint8_t src[32 * 32 * 3], want[16 * 16 * 3], got[16 * 16 * 3];
    for (int p = 0; p < 1024; p++)
        for (int c = 0; c < 3; c++)
            src[p * 3 + c] = rg_cifar_pixel(5, 2, c * 1024 + p);
    assert_int_equal(dd_image_resize_u8(src, 32, 32, 3, want, 16, 16), DD_OK);
    dd_image_denormalize(rg_image(test, 2), 16, 16, 3, test->mean, test->std, got);
    assert_memory_equal(want, got, sizeof want);
    assert_true(rg_old_path_image(test, 2, want));
    assert_true(rg_old_path_batch(test));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

/* Runs the reader and expects `status` with both substrings in the message. */
static void expect_error(rg_fixture *f, dd_status status, const char *file, const char *what) {
    assert_int_equal(rg_expect_read_error(f, "cifar10", NULL, 0, 0, status, file, what), 0);
}

static void test_rejects_truncated_batch(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_truncate(batch(f, "data_batch_3.bin"), 3 * RG_CIFAR_RECORD - 1), DD_OK);
    expect_error(f, DD_ERR_PARSE, "data_batch_3.bin", "not a multiple of the 3073-byte record");
}

static void test_rejects_bad_label(void **state) {
    rg_fixture *f = *state;
    const uint8_t ten = 10;
    assert_int_equal(rg_patch(batch(f, "test_batch.bin"), 4 * RG_CIFAR_RECORD, &ten, 1), DD_OK);
    expect_error(f, DD_ERR_PARSE, "test_batch.bin", "record 4");
}

static void test_rejects_missing_batch(void **state) {
    rg_fixture *f = *state;
    remove(batch(f, "data_batch_5.bin"));
    expect_error(f, DD_ERR_NOT_FOUND, "data_batch_5.bin", "no such file");
}

static void test_rejects_empty_batch(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_truncate(batch(f, "data_batch_1.bin"), 0), DD_OK);
    expect_error(f, DD_ERR_PARSE, "data_batch_1.bin", "empty");
}

static void test_rejects_bad_meta(void **state) {
    rg_fixture *f = *state;
    assert_int_equal(rg_write_text(batch(f, "batches.meta.txt"), "airplane\nautomobile\n"), DD_OK);
    expect_error(f, DD_ERR_PARSE, "batches.meta.txt", "2 class names, expected 10");
    remove(batch(f, "batches.meta.txt"));
    expect_error(f, DD_ERR_NOT_FOUND, "batches.meta.txt", "no such file");
}

static void test_accepts_gz_batch(void **state) {
    rg_fixture *f = *state;
    char gz[1100];
    snprintf(gz, sizeof gz, "%s.gz", batch(f, "data_batch_2.bin"));
    assert_int_equal(rg_gzip_file(batch(f, "data_batch_2.bin"), gz), DD_OK);
    remove(batch(f, "data_batch_2.bin"));
    dd_dataset *train, *test;
    assert_int_equal(rg_read(f->comp, "cifar10", f->dir, NULL, 0, 0, &train, &test), DD_OK);
    assert_int_equal(train->n, 5 * PER_BATCH);
    assert_int_equal(train->labels[PER_BATCH + 1], rg_cifar_label(1, 1));
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reads_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resize_and_max_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_truncated_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_missing_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_empty_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accepts_gz_batch, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
