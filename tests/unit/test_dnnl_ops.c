/* Tests of the oneDNN conv / inner-product kernels: every pass of every
 * layer shape of the model zoo against a naive double-precision loop, and
 * no `ref:` implementation for any pass of LeNet, AlexCifarNet or ConvNet at
 * the batch sizes the engine uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "compute/dnnl_ops.h"

typedef struct conv_layer {
    const char *name;
    int64_t in_c, in_hw, out_c, kernel, stride, pad;
} conv_layer;

typedef struct linear_layer {
    const char *name;
    int64_t in, out;
} linear_layer;

/* Layers of the hot-path models (ref check and numerics). */
static const conv_layer hot_convs[] = {
    {"lenet.conv1", 1, 28, 6, 5, 1, 2},
    {"lenet.conv2", 6, 14, 16, 5, 1, 0},
    {"alexcifarnet.conv1", 3, 32, 64, 5, 1, 2},
    {"alexcifarnet.conv2 (16x16)", 64, 16, 64, 5, 1, 2},
    {"alexcifarnet.conv2 (15x15)", 64, 15, 64, 5, 1, 2},
    {"convnet.conv1 (1x28x28)", 1, 28, 128, 3, 1, 1},
    {"convnet.conv2 (14x14)", 128, 14, 128, 3, 1, 1},
    {"convnet.conv3 (7x7)", 128, 7, 128, 3, 1, 1},
    {"convnet.conv1 (3x32x32)", 3, 32, 128, 3, 1, 1},
    {"convnet.conv2 (16x16)", 128, 16, 128, 3, 1, 1},
    {"convnet.conv3 (8x8)", 128, 8, 128, 3, 1, 1},
};

static const linear_layer hot_linears[] = {
    {"lenet.fc1", 400, 120},
    {"lenet.fc2", 120, 84},
    {"lenet.fc3", 84, 10},
    {"alexcifarnet.fc1 (8x8)", 4096, 384},
    {"alexcifarnet.fc1 (7x7)", 3136, 384},
    {"alexcifarnet.fc2", 384, 192},
    {"alexcifarnet.fc3", 192, 10},
    {"convnet.fc (3x3)", 1152, 10},
    {"convnet.fc (4x4)", 2048, 10},
};

/* AlexNet: correctness only. The numeric check uses a 63x63 input (same
 * channels, kernels, strides, pads) to stay fast; conv1 also runs at 224. */
static const conv_layer alexnet_convs[] = {
    {"alexnet.conv1 (224)", 3, 224, 64, 11, 4, 2}, {"alexnet.conv1 (63)", 3, 63, 64, 11, 4, 2},
    {"alexnet.conv2 (7)", 64, 7, 192, 5, 1, 2},    {"alexnet.conv3 (3)", 192, 3, 384, 3, 1, 1},
    {"alexnet.conv4 (3)", 384, 3, 256, 3, 1, 1},   {"alexnet.conv5 (3)", 256, 3, 256, 3, 1, 1},
    {"alexnet.conv2 (27)", 64, 27, 192, 5, 1, 2},
};

static const linear_layer alexnet_linears[] = {
    {"alexnet.fc1", 9216, 4096},
    {"alexnet.fc2", 4096, 4096},
    {"alexnet.fc3", 4096, 1000},
};

static int64_t out_size(const conv_layer *l) {
    return (l->in_hw + 2 * l->pad - l->kernel) / l->stride + 1;
}

/* Deterministic U[-1, 1) fill (xorshift), independent of libc. */
static void fill(float *p, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

static float *falloc(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    return p;
}

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    assert_non_null(p);
    return p;
}

/* |got - ref| must be within float rounding of a sum whose terms' absolute
 * values add up to mag. A wrong kernel misses by O(mag / sqrt(terms)). */
static void check_close(const char *what, const char *layer, const float *got, const double *ref,
                        const double *mag, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double tol = 2e-6 * mag[i] + 1e-6;
        if (fabs((double)got[i] - ref[i]) > tol) {
            fail_msg("%s %s: element %zu is %.9g, expected %.9g (tolerance %.3g)", layer, what, i,
                     (double)got[i], ref[i], tol);
        }
    }
}

/* Checks an accumulating call: out0 (the buffer's previous content) + ref. */
static void check_acc(const char *what, const char *layer, const float *got, const float *out0,
                      const double *ref, const double *mag, size_t n) {
    double *r = dalloc(n), *m = dalloc(n);
    for (size_t i = 0; i < n; i++) {
        r[i] = ref[i] + out0[i];
        m[i] = mag[i] + fabs(out0[i]);
    }
    check_close(what, layer, got, r, m, n);
    free(r);
    free(m);
}

static float *copy_of(const float *p, size_t n) {
    float *q = falloc(n);
    memcpy(q, p, sizeof(float) * n);
    return q;
}

static void check_conv_numerics(dd_dnnl *d, const conv_layer *l, int64_t batch, int with_bias) {
    const int64_t N = batch, C = l->in_c, H = l->in_hw, W = l->in_hw, O = l->out_c;
    const int64_t K = l->kernel, S = l->stride, P = l->pad, OH = out_size(l), OW = out_size(l);
    dd_dnnl_conv_shape s = {N, C, H, W, O, K, S, P};
    dd_dnnl_conv *c = NULL;
    assert_int_equal(dd_dnnl_conv_create(d, &s, &c), DD_OK);

    size_t nx = (size_t)(N * C * H * W), nw = (size_t)(O * C * K * K),
           ny = (size_t)(N * O * OH * OW);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc((size_t)O), *dy = falloc(ny);
    float *y = falloc(ny), *dx = falloc(nx), *dw = falloc(nw), *db = falloc((size_t)O);
    fill(x, nx, 1);
    fill(w, nw, 2);
    fill(b, (size_t)O, 3);
    fill(dy, ny, 4);
    double *ry = dalloc(ny), *my = dalloc(ny), *rdx = dalloc(nx), *mdx = dalloc(nx);
    double *rdw = dalloc(nw), *mdw = dalloc(nw), *rdb = dalloc((size_t)O), *mdb = dalloc((size_t)O);

    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    size_t yi = (size_t)(((n * O + o) * OH + oh) * OW + ow);
                    double acc = with_bias ? b[o] : 0.0, mag = with_bias ? fabs(b[o]) : 0.0;
                    double g = dy[yi];
                    rdb[o] += g;
                    mdb[o] += fabs(g);
                    for (int64_t ci = 0; ci < C; ci++)
                        for (int64_t kh = 0; kh < K; kh++) {
                            int64_t ih = oh * S - P + kh;
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t kw = 0; kw < K; kw++) {
                                int64_t iw = ow * S - P + kw;
                                if (iw < 0 || iw >= W) continue;
                                size_t xi = (size_t)(((n * C + ci) * H + ih) * W + iw);
                                size_t wi = (size_t)(((o * C + ci) * K + kh) * K + kw);
                                acc += (double)x[xi] * w[wi];
                                mag += fabs((double)x[xi] * w[wi]);
                                rdx[xi] += g * w[wi];
                                mdx[xi] += fabs(g * w[wi]);
                                rdw[wi] += g * x[xi];
                                mdw[wi] += fabs(g * x[xi]);
                            }
                        }
                    ry[yi] = acc;
                    my[yi] = mag;
                }

    // Twice each, so reuse of the primitives and the arena is covered too.
    for (int rep = 0; rep < 2; rep++) {
        memset(y, 0xff, sizeof(float) * ny);
        memset(dx, 0xff, sizeof(float) * nx);
        memset(dw, 0xff, sizeof(float) * nw);
        memset(db, 0xff, sizeof(float) * (size_t)O);
        assert_int_equal(dd_dnnl_conv_forward(c, x, w, with_bias ? b : NULL, y), DD_OK);
        assert_int_equal(dd_dnnl_conv_backward_data(c, dy, w, dx), DD_OK);
        assert_int_equal(dd_dnnl_conv_backward_weights(c, x, dy, dw, with_bias ? db : NULL), DD_OK);
        check_close("forward", l->name, y, ry, my, ny);
        check_close("backward_data", l->name, dx, rdx, mdx, nx);
        check_close("backward_weights (dw)", l->name, dw, rdw, mdw, nw);
        if (with_bias) check_close("backward_weights (db)", l->name, db, rdb, mdb, (size_t)O);
    }
    // Accumulating variants add to what the buffers hold.
    fill(y, ny, 9), fill(dx, nx, 10), fill(dw, nw, 11), fill(db, (size_t)O, 12);
    float *y0 = copy_of(y, ny), *dx0 = copy_of(dx, nx), *dw0 = copy_of(dw, nw),
          *db0 = copy_of(db, (size_t)O);
    assert_int_equal(dd_dnnl_conv_forward_acc(c, x, w, with_bias ? b : NULL, y), DD_OK);
    assert_int_equal(dd_dnnl_conv_backward_data_acc(c, dy, w, dx), DD_OK);
    assert_int_equal(dd_dnnl_conv_backward_weights_acc(c, x, dy, dw, with_bias ? db : NULL), DD_OK);
    check_acc("forward_acc", l->name, y, y0, ry, my, ny);
    check_acc("backward_data_acc", l->name, dx, dx0, rdx, mdx, nx);
    check_acc("backward_weights_acc (dw)", l->name, dw, dw0, rdw, mdw, nw);
    if (with_bias)
        check_acc("backward_weights_acc (db)", l->name, db, db0, rdb, mdb, (size_t)O);
    else
        assert_memory_equal(db, db0, sizeof(float) * (size_t)O);
    // And a plain call after an accumulating one overwrites again.
    assert_int_equal(dd_dnnl_conv_forward(c, x, w, with_bias ? b : NULL, y), DD_OK);
    check_close("forward after forward_acc", l->name, y, ry, my, ny);
    free(y0), free(dx0), free(dw0), free(db0);
    dd_dnnl_conv_destroy(c);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
    free(ry), free(my), free(rdx), free(mdx), free(rdw), free(mdw), free(rdb), free(mdb);
}

/* Inner product vs a double loop. For the huge AlexNet layers only every
 * row_step-th output row is checked in y, dw and db (dx needs every row). */
static void check_linear_numerics(dd_dnnl *d, const linear_layer *l, int64_t batch, int with_bias,
                                  int64_t row_step) {
    const int64_t N = batch, I = l->in, O = l->out, R = (O + row_step - 1) / row_step;
    dd_dnnl_linear_shape s = {N, I, O};
    dd_dnnl_linear *lin = NULL;
    assert_int_equal(dd_dnnl_linear_create(d, &s, &lin), DD_OK);
    size_t nx = (size_t)(N * I), nw = (size_t)(O * I), ny = (size_t)(N * O);
    float *x = falloc(nx), *w = falloc(nw), *b = falloc((size_t)O), *dy = falloc(ny);
    float *y = falloc(ny), *dx = falloc(nx), *dw = falloc(nw), *db = falloc((size_t)O);
    fill(x, nx, 5);
    fill(w, nw, 6);
    fill(b, (size_t)O, 7);
    fill(dy, ny, 8);
    // Reference values of the checked rows only: y[n][r], dw[r][i], db[r].
    size_t nyr = (size_t)(N * R), nwr = (size_t)(R * I);
    double *ry = dalloc(nyr), *my = dalloc(nyr), *rdx = dalloc(nx), *mdx = dalloc(nx);
    double *rdw = dalloc(nwr), *mdw = dalloc(nwr), *rdb = dalloc((size_t)R),
           *mdb = dalloc((size_t)R);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++) {
            double g = dy[n * O + o];
            for (int64_t i = 0; i < I; i++) {
                rdx[n * I + i] += g * w[o * I + i];
                mdx[n * I + i] += fabs(g * w[o * I + i]);
            }
            if (o % row_step) continue;
            int64_t r = o / row_step;
            double acc = with_bias ? b[o] : 0.0, mag = with_bias ? fabs(b[o]) : 0.0;
            rdb[r] += g;
            mdb[r] += fabs(g);
            for (int64_t i = 0; i < I; i++) {
                double xv = x[n * I + i], wv = w[o * I + i];
                acc += xv * wv;
                mag += fabs(xv * wv);
                rdw[r * I + i] += g * xv;
                mdw[r * I + i] += fabs(g * xv);
            }
            ry[n * R + r] = acc;
            my[n * R + r] = mag;
        }
    float *gy = falloc(nyr), *gdw = falloc(nwr), *gdb = falloc((size_t)R);
    float *y0 = falloc(ny), *dx0 = falloc(nx), *dw0 = falloc(nw), *db0 = falloc((size_t)O);
    for (int rep = 0; rep < 3; rep++) {
        // rep 0, 1: plain calls (twice: reuse); rep 2: accumulating calls.
        int acc = rep == 2;
        if (acc) {
            fill(y, ny, 9), fill(dx, nx, 10), fill(dw, nw, 11), fill(db, (size_t)O, 12);
        } else {
            memset(y, 0xff, sizeof(float) * ny);
            memset(dx, 0xff, sizeof(float) * nx);
            memset(dw, 0xff, sizeof(float) * nw);
            memset(db, 0xff, sizeof(float) * (size_t)O);
        }
        memcpy(y0, y, sizeof(float) * ny), memcpy(dx0, dx, sizeof(float) * nx);
        memcpy(dw0, dw, sizeof(float) * nw), memcpy(db0, db, sizeof(float) * (size_t)O);
        const float *bb = with_bias ? b : NULL;
        float *dbb = with_bias ? db : NULL;
        if (acc) {
            assert_int_equal(dd_dnnl_linear_forward_acc(lin, x, w, bb, y), DD_OK);
            assert_int_equal(dd_dnnl_linear_backward_data_acc(lin, dy, w, dx), DD_OK);
            assert_int_equal(dd_dnnl_linear_backward_weights_acc(lin, x, dy, dw, dbb), DD_OK);
        } else {
            assert_int_equal(dd_dnnl_linear_forward(lin, x, w, bb, y), DD_OK);
            assert_int_equal(dd_dnnl_linear_backward_data(lin, dy, w, dx), DD_OK);
            assert_int_equal(dd_dnnl_linear_backward_weights(lin, x, dy, dw, dbb), DD_OK);
        }
        // Subtract what an accumulating call started from, then compare.
        for (int64_t n = 0; n < N; n++)
            for (int64_t r = 0; r < R; r++) {
                size_t k = (size_t)(n * O + r * row_step);
                gy[n * R + r] = acc ? (float)((double)y[k] - y0[k]) : y[k];
            }
        for (int64_t r = 0; r < R; r++) {
            for (int64_t i = 0; i < I; i++) {
                size_t k = (size_t)(r * row_step * I + i);
                gdw[r * I + i] = acc ? (float)((double)dw[k] - dw0[k]) : dw[k];
            }
            size_t k = (size_t)(r * row_step);
            gdb[r] = acc ? (float)((double)db[k] - db0[k]) : db[k];
        }
        if (acc) {
            for (size_t i = 0; i < nx; i++)
                dx[i] = (float)((double)dx[i] - dx0[i]);
            // The float sum lost up to an ulp of the old value: widen the bound.
            for (size_t i = 0; i < nyr; i++)
                my[i] += 2.0;
            for (size_t i = 0; i < nx; i++)
                mdx[i] += 2.0;
            for (size_t i = 0; i < nwr; i++)
                mdw[i] += 2.0;
            for (int64_t r = 0; r < R; r++)
                mdb[r] += 2.0;
        }
        const char *what = acc ? "accumulating" : "plain";
        check_close(what, l->name, gy, ry, my, nyr);
        check_close(what, l->name, dx, rdx, mdx, nx);
        check_close(what, l->name, gdw, rdw, mdw, nwr);
        if (with_bias)
            check_close(what, l->name, gdb, rdb, mdb, (size_t)R);
        else if (acc)
            assert_memory_equal(db, db0, sizeof(float) * (size_t)O);
    }
    dd_dnnl_linear_destroy(lin);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
    free(gy), free(gdw), free(gdb), free(y0), free(dx0), free(dw0), free(db0);
    free(ry), free(my), free(rdx), free(mdx), free(rdw), free(mdw), free(rdb), free(mdb);
}

static void test_conv_numerics(void **state) {
    (void)state;
    dd_dnnl *d = NULL;
    assert_int_equal(dd_dnnl_create(&d), DD_OK);
    for (size_t i = 0; i < sizeof hot_convs / sizeof hot_convs[0]; i++) {
        check_conv_numerics(d, &hot_convs[i], 2, 1);
        check_conv_numerics(d, &hot_convs[i], 1, 0);
    }
    dd_dnnl_destroy(d);
}

static void test_alexnet_conv_numerics(void **state) {
    (void)state;
    dd_dnnl *d = NULL;
    assert_int_equal(dd_dnnl_create(&d), DD_OK);
    for (size_t i = 0; i < sizeof alexnet_convs / sizeof alexnet_convs[0]; i++)
        check_conv_numerics(d, &alexnet_convs[i], 1, 1);
    dd_dnnl_destroy(d);
}

static void test_linear_numerics(void **state) {
    (void)state;
    dd_dnnl *d = NULL;
    assert_int_equal(dd_dnnl_create(&d), DD_OK);
    for (size_t i = 0; i < sizeof hot_linears / sizeof hot_linears[0]; i++) {
        check_linear_numerics(d, &hot_linears[i], 3, 1, 1);
        check_linear_numerics(d, &hot_linears[i], 1, 0, 1);
    }
    for (size_t i = 0; i < sizeof alexnet_linears / sizeof alexnet_linears[0]; i++)
        check_linear_numerics(d, &alexnet_linears[i], 2, 1, 61);
    dd_dnnl_destroy(d);
}

/* Several kernels sharing one dd_dnnl: a later, larger kernel grows the
 * shared arena; the earlier one must still compute correctly afterwards. */
static void test_shared_arena(void **state) {
    (void)state;
    dd_dnnl *d = NULL;
    assert_int_equal(dd_dnnl_create(&d), DD_OK);
    const conv_layer small = {"small", 6, 14, 16, 5, 1, 0};
    dd_dnnl_conv_shape s = {2, 6, 14, 14, 16, 5, 1, 0};
    dd_dnnl_conv *c = NULL;
    assert_int_equal(dd_dnnl_conv_create(d, &s, &c), DD_OK);
    dd_dnnl_conv_shape big = {64, 64, 16, 16, 64, 5, 1, 2};
    dd_dnnl_conv *cb = NULL;
    assert_int_equal(dd_dnnl_conv_create(d, &big, &cb), DD_OK);
    check_conv_numerics(d, &small, 2, 1);
    dd_dnnl_conv_destroy(cb);
    dd_dnnl_conv_destroy(c);
    dd_dnnl_destroy(d);
}

static int is_ref(const char *impl) {
    return impl == NULL || strncmp(impl, "ref", 3) == 0;
}

static const char *pass_name(int p) {
    return p == DD_DNNL_FWD        ? "forward"
           : p == DD_DNNL_BWD_DATA ? "backward_data"
                                   : "backward_weights";
}

/* Issue #3 item 7: no pass of the hot-path models may run a `ref:` kernel. */
static void test_no_ref_fallback(void **state) {
    (void)state;
    static const int64_t batches[] = {1, 2, 10, 100, 256, 1024};
    dd_dnnl *d = NULL;
    assert_int_equal(dd_dnnl_create(&d), DD_OK);
    int bad = 0;
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++) {
        int64_t n = batches[bi];
        for (size_t i = 0; i < sizeof hot_convs / sizeof hot_convs[0]; i++) {
            const conv_layer *l = &hot_convs[i];
            dd_dnnl_conv_shape s = {n,        l->in_c,   l->in_hw,  l->in_hw,
                                    l->out_c, l->kernel, l->stride, l->pad};
            dd_dnnl_conv *c = NULL;
            assert_int_equal(dd_dnnl_conv_create(d, &s, &c), DD_OK);
            for (int p = 0; p < 3; p++) {
                const char *impl = dd_dnnl_conv_impl(c, (dd_dnnl_pass)p);
                if (is_ref(impl)) {
                    print_error("%s batch %lld %s uses %s\n", l->name, (long long)n, pass_name(p),
                                impl ? impl : "(null)");
                    bad++;
                }
            }
            dd_dnnl_conv_destroy(c);
        }
        for (size_t i = 0; i < sizeof hot_linears / sizeof hot_linears[0]; i++) {
            const linear_layer *l = &hot_linears[i];
            dd_dnnl_linear_shape s = {n, l->in, l->out};
            dd_dnnl_linear *lin = NULL;
            assert_int_equal(dd_dnnl_linear_create(d, &s, &lin), DD_OK);
            for (int p = 0; p < 3; p++) {
                const char *impl = dd_dnnl_linear_impl(lin, (dd_dnnl_pass)p);
                if (is_ref(impl)) {
                    print_error("%s batch %lld %s uses %s\n", l->name, (long long)n, pass_name(p),
                                impl ? impl : "(null)");
                    bad++;
                }
            }
            dd_dnnl_linear_destroy(lin);
        }
    }
    dd_dnnl_destroy(d);
    assert_int_equal(bad, 0);
}

static void test_bad_shapes(void **state) {
    (void)state;
    dd_dnnl *d = NULL;
    assert_int_equal(dd_dnnl_create(&d), DD_OK);
    dd_dnnl_conv *c = (dd_dnnl_conv *)&c;
    dd_dnnl_conv_shape zero_c = {1, 0, 8, 8, 4, 3, 1, 1};
    assert_int_equal(dd_dnnl_conv_create(d, &zero_c, &c), DD_ERR_INVALID);
    assert_null(c);
    dd_dnnl_conv_shape too_big_kernel = {1, 3, 4, 4, 4, 7, 1, 1};
    assert_int_equal(dd_dnnl_conv_create(d, &too_big_kernel, &c), DD_ERR_INVALID);
    dd_dnnl_linear *l = NULL;
    dd_dnnl_linear_shape zero_batch = {0, 3, 4};
    assert_int_equal(dd_dnnl_linear_create(d, &zero_batch, &l), DD_ERR_INVALID);
    assert_null(l);
    dd_dnnl_conv_destroy(NULL);
    dd_dnnl_linear_destroy(NULL);
    dd_dnnl_destroy(d);
    dd_dnnl_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_numerics),   cmocka_unit_test(test_alexnet_conv_numerics),
        cmocka_unit_test(test_linear_numerics), cmocka_unit_test(test_shared_arena),
        cmocka_unit_test(test_no_ref_fallback), cmocka_unit_test(test_bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
