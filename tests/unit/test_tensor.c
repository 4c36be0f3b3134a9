/* Tests of aligned allocation and tensors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "distill/tensor.h"

static void test_alloc(void **state) {
    (void)state;
    for (size_t n = 0; n < 300; n += 37) {
        float *p = dd_alloc_floats(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % DD_ALIGN, 0);
        for (size_t i = 0; i < n; i++)
            assert_true(p[i] == 0.0f);
        dd_free(p);
    }
    dd_free(NULL);
    assert_null(dd_alloc_floats(SIZE_MAX / 2));
    assert_int_equal(dd_error_status(), DD_ERR_NOMEM);
}

static void test_tensor(void **state) {
    (void)state;
    int64_t dims[4] = {2, 3, 5, 7};
    dd_tensor *t = NULL;
    assert_int_equal(dd_tensor_create(4, dims, &t), DD_OK);
    assert_int_equal(t->numel, 210);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->dims[3], 7);
    assert_int_equal((uintptr_t)t->data % DD_ALIGN, 0);
    for (size_t i = 0; i < t->numel; i++)
        assert_true(t->data[i] == 0.0f);
    dd_tensor_destroy(t);
    dd_tensor_destroy(NULL);

    assert_int_equal(dd_tensor_create(5, dims, &t), DD_ERR_INVALID);
    assert_null(t);
    int64_t neg[2] = {3, -1};
    assert_int_equal(dd_tensor_create(2, neg, &t), DD_ERR_INVALID);
    int64_t zero[1] = {0};
    assert_int_equal(dd_tensor_create(1, zero, &t), DD_OK);
    assert_int_equal(t->numel, 0);
    assert_non_null(t->data);
    dd_tensor_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
