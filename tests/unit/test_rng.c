/* Tests of the counter-based RNG: determinism, independence from the thread
 * count and from how a range is split, sane moments, bounded integers and
 * shuffles. */
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "distill/tensor.h"

#define N (1u << 20)

static void test_deterministic_and_streams(void **state) {
    (void)state;
    dd_rng a = dd_rng_make(42, 0), b = dd_rng_make(42, 0), c = dd_rng_make(42, 1),
           d = dd_rng_make(43, 0);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = dd_rng_u64(&a);
        assert_true(x == dd_rng_u64(&b));
        same_c += x == dd_rng_u64(&c);
        same_d += x == dd_rng_u64(&d);
    }
    assert_int_equal(same_c, 0);
    assert_int_equal(same_d, 0);
    assert_int_equal(a.counter, 1000);
    // copying the struct forks the stream at the same position
    dd_rng fork = a;
    assert_true(dd_rng_u64(&fork) == dd_rng_u64(&a));
}

static void test_thread_count_and_split_independent(void **state) {
    (void)state;
    float *one = dd_alloc_floats(N), *two = dd_alloc_floats(N), *split = dd_alloc_floats(N);
    float *u1 = dd_alloc_floats(N), *u2 = dd_alloc_floats(N);
    assert_non_null(one), assert_non_null(two), assert_non_null(split);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    dd_rng r = dd_rng_make(7, 3);
    dd_rng_normal(&r, one, N, 0.0f, 1.0f);
    dd_rng_uniform(&r, u1, N, -1.0f, 2.0f);
    omp_set_num_threads(2);
    dd_rng s = dd_rng_make(7, 3);
    dd_rng_normal(&s, two, N, 0.0f, 1.0f);
    dd_rng_uniform(&s, u2, N, -1.0f, 2.0f);
    assert_memory_equal(one, two, N * sizeof(float));
    assert_memory_equal(u1, u2, N * sizeof(float));
    assert_true(r.counter == s.counter && r.counter == 2ull * N);
    // drawn in parallel chunks by several threads, each from its own copy
    // positioned at its chunk's counter: the same numbers again
#pragma omp parallel num_threads(2)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = (size_t)N * t / nt, hi = (size_t)N * (t + 1) / nt;
        dd_rng c = dd_rng_make(7, 3);
        c.counter = lo;
        dd_rng_normal(&c, split + lo, hi - lo, 0.0f, 1.0f);
    }
    assert_memory_equal(one, split, N * sizeof(float));
    omp_set_num_threads(saved);
    dd_free(one), dd_free(two), dd_free(split), dd_free(u1), dd_free(u2);
}

static void test_moments(void **state) {
    (void)state;
    float *x = dd_alloc_floats(N);
    assert_non_null(x);
    dd_rng r = dd_rng_make(1, 0);
    dd_rng_normal(&r, x, N, 2.0f, 3.0f);
    double m = 0, v = 0, k4 = 0;
    for (size_t i = 0; i < N; i++)
        m += x[i];
    m /= N;
    for (size_t i = 0; i < N; i++) {
        double d = (x[i] - m) / 3.0;
        v += d * d;
        k4 += d * d * d * d;
    }
    v /= N, k4 /= N;
    // standard errors at n = 2^20: mean 3e-3, variance 1.4e-3, kurtosis 5e-3
    assert_true(fabs(m - 2.0) < 0.015);
    assert_true(fabs(v - 1.0) < 0.01);
    assert_true(fabs(k4 - 3.0) < 0.05);

    dd_rng_uniform(&r, x, N, -1.0f, 3.0f);
    double mn = 1e9, mx = -1e9;
    m = v = 0;
    for (size_t i = 0; i < N; i++) {
        m += x[i];
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    m /= N;
    for (size_t i = 0; i < N; i++)
        v += (x[i] - m) * (x[i] - m);
    v /= N;
    assert_true(mn >= -1.0 && mx < 3.0);
    assert_true(mn < -0.999 && mx > 2.999);
    assert_true(fabs(m - 1.0) < 0.01);
    assert_true(fabs(v - 16.0 / 12.0) < 0.01);
    dd_free(x);
}

static void test_below_and_shuffle(void **state) {
    (void)state;
    dd_rng r = dd_rng_make(9, 0);
    enum { K = 10, DRAWS = 100000 };
    int hist[K] = {0};
    for (int i = 0; i < DRAWS; i++) {
        uint64_t v = dd_rng_below(&r, K);
        assert_true(v < K);
        hist[v]++;
    }
    double chi2 = 0;
    for (int k = 0; k < K; k++)
        chi2 += pow(hist[k] - DRAWS / K, 2) / (DRAWS / K);
    assert_true(chi2 < 30.0); // 9 degrees of freedom: p < 1e-3 above 27.9
    assert_int_equal(dd_rng_below(&r, 1), 0);

    int64_t a[100], b[100];
    for (int i = 0; i < 100; i++)
        a[i] = b[i] = i;
    dd_rng s1 = dd_rng_make(5, 5), s2 = dd_rng_make(5, 5);
    dd_rng_shuffle(&s1, a, 100);
    dd_rng_shuffle(&s2, b, 100);
    assert_memory_equal(a, b, sizeof a);
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 80);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic_and_streams),
        cmocka_unit_test(test_thread_count_and_split_independent),
        cmocka_unit_test(test_moments),
        cmocka_unit_test(test_below_and_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
