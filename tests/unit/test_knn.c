/* distill tests — the kNN baseline: nearest-neighbour classification with
 * known answers (votes, tie-breaks, both distances), argmax of learned soft
 * labels, the same predictions on 1 and 2 threads, and bad arguments. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/tensor.h"
#include "engine/knn.h"

static void test_nearest_and_votes(void **state) {
    (void)state;
    // 1-D points
    const float ref[] = {0, 10};
    const int32_t lab[] = {0, 1};
    const float q[] = {1, 9, 4, 6};
    int32_t pred[4];
    assert_int_equal(dd_knn_predict(ref, lab, 2, 2, q, 4, 1, 1, DD_KNN_EUCLIDEAN, pred), DD_OK);
    const int32_t want[] = {0, 1, 0, 1};
    assert_memory_equal(pred, want, sizeof want);

    // k = 3: the three nearest of 5 are 2 (c0), 1 (c0) and, at equal
    // distance 5, 0 (c0, earlier) rather than 10 (c1): class 0
    const float ref3[] = {0, 1, 2, 10, 11};
    const int32_t lab3[] = {0, 0, 0, 1, 1};
    const float q3[] = {5, 9};
    int32_t p3[2];
    assert_int_equal(dd_knn_predict(ref3, lab3, 5, 2, q3, 2, 1, 3, DD_KNN_EUCLIDEAN, p3), DD_OK);
    assert_int_equal(p3[0], 0);
    assert_int_equal(p3[1], 1); // 10, 11 (c1) and 2 (c0)

    // k = 2 with one vote each: the class whose neighbour is nearer wins
    const float ref2[] = {0, 3};
    const int32_t lab2[] = {0, 1};
    const float q2[] = {1, 2};
    int32_t p2[2];
    assert_int_equal(dd_knn_predict(ref2, lab2, 2, 2, q2, 2, 1, 2, DD_KNN_EUCLIDEAN, p2), DD_OK);
    assert_int_equal(p2[0], 0);
    assert_int_equal(p2[1], 1);
}

static void test_cosine(void **state) {
    (void)state;
    // direction, not length: (5, 1) is far from (1, 0) in L2 but close in angle
    const float ref[] = {1, 0, 0, 1, 4, 4};
    const int32_t lab[] = {0, 1, 2};
    const float q[] = {5, 1, 0.1f, 3, 0.5f, 0.6f};
    int32_t pc[3], pe[3];
    assert_int_equal(dd_knn_predict(ref, lab, 3, 3, q, 3, 2, 1, DD_KNN_COSINE, pc), DD_OK);
    const int32_t want[] = {0, 1, 2};
    assert_memory_equal(pc, want, sizeof want);
    assert_int_equal(dd_knn_predict(ref, lab, 3, 3, q, 3, 2, 1, DD_KNN_EUCLIDEAN, pe), DD_OK);
    assert_int_equal(pe[0], 2); // (5, 1) is nearest to (4, 4) in L2
    assert_int_equal(pe[2], 1); // (0.5, 0.6) is nearest to (0, 1)
    dd_knn_distance d;
    assert_int_equal(dd_knn_distance_parse("cosine", &d), DD_OK);
    assert_int_equal(d, DD_KNN_COSINE);
    assert_int_equal(dd_knn_distance_parse("manhattan", &d), DD_ERR_INVALID);
}

static void test_bad_arguments(void **state) {
    (void)state;
    const float ref[] = {0, 1};
    const int32_t lab[] = {0, 1}, bad[] = {0, 5};
    const float q[] = {0};
    int32_t p[1];
    assert_int_equal(dd_knn_predict(ref, lab, 2, 2, q, 1, 1, 3, DD_KNN_EUCLIDEAN, p),
                     DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "k = 3"));
    assert_int_equal(dd_knn_predict(ref, bad, 2, 2, q, 1, 1, 1, DD_KNN_EUCLIDEAN, p),
                     DD_ERR_INVALID);
}

/* Through a distilled set and a dataset: every step's images are references,
 * soft labels count by their argmax; 1 and 2 threads agree exactly. */
static void test_accuracy_on_sets(void **state) {
    (void)state;
    dd_distilled *set = NULL;
    assert_int_equal(dd_distilled_create(2, 1, 1, 2, 1, 2, 2, 0.1f, &set), DD_OK);
    // step 0: class 0 image all -1, class 1 all +1; step 1 the same, scaled
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < 2; j++)
            for (int p = 0; p < 4; p++)
                set->images[(s * 2 + j) * 4 + p] = (j ? 1.0f : -1.0f) * (float)(s + 1);
    dd_dataset *test = NULL;
    assert_int_equal(dd_dataset_create("t/test", DD_DTYPE_F32, 200, 1, 2, 2, 2, &test), DD_OK);
    dd_rng rng = dd_rng_make(3, 0);
    dd_rng_normal(&rng, ((float *)test->pixels), (size_t)test->n * 4, 0.0f, 0.3f);
    for (int64_t i = 0; i < test->n; i++) {
        test->labels[i] = (int32_t)(i % 2);
        for (int p = 0; p < 4; p++)
            ((float *)test->pixels)[i * 4 + p] += i % 2 ? 0.5f : -0.5f;
    }
    double acc1 = 0, acc2 = 0;
    omp_set_num_threads(1);
    assert_int_equal(dd_knn_accuracy(set, test, 1, DD_KNN_EUCLIDEAN, &acc1), DD_OK);
    omp_set_num_threads(2);
    assert_int_equal(dd_knn_accuracy(set, test, 1, DD_KNN_EUCLIDEAN, &acc2), DD_OK);
    assert_true(acc1 == acc2);
    assert_true(acc1 > 0.9);
    // learned labels that swap the classes make every prediction wrong-way round
    set->n_outputs = 2;
    set->soft = calloc(4 * 2, sizeof(float));
    assert_non_null(set->soft);
    for (int j = 0; j < 4; j++)
        set->soft[j * 2 + (j % 2 ? 0 : 1)] = 1.0f;
    double swapped = 0;
    assert_int_equal(dd_knn_accuracy(set, test, 1, DD_KNN_EUCLIDEAN, &swapped), DD_OK);
    assert_true(swapped == 1.0 - acc1);
    dd_distilled_destroy(set);
    dd_dataset_destroy(test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nearest_and_votes),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_accuracy_on_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
