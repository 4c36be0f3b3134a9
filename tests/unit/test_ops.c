/* Tests of every op's four functions (forward, VJP, JVP, tangent of VJP)
 * against central finite differences of its own forward / backward, on both
 * backends, and oneDNN-vs-reference agreement of the dense ops.
 *
 * Tolerances: the ops compute in float32; a central difference with step
 * eps has truncation error O(eps²·f''') and rounding error ~1e-7·|f|/eps.
 * With eps = 1e-2 on O(1) data both are ≲1e-4 relative, so 2e-3 leaves a
 * wide margin while any wrong term (typically O(1) relative) fails. Inputs
 * of relu and max-pool are kept ≥ 10·eps away from kinks and ties, where
 * the differences are exact up to rounding. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compute_util.h"
#include "compute/dnnl_ops.h"
#include "model/graph.h"
#include "compute/ops.h"

#define TOL 2e-3

typedef enum { GEN_NORMAL, GEN_AWAY_FROM_ZERO, GEN_DISTINCT } xgen;

typedef struct op_case {
    const char *name;
    int c, h, w;
    int64_t batch;
    xgen gen;
    dd_status (*add)(dd_graph *g);
} op_case;

static dd_status add_conv(dd_graph *g) {
    return dd_graph_conv2d(g, 4, 3, 1, 1);
}
static dd_status add_conv_s2(dd_graph *g) {
    return dd_graph_conv2d(g, 5, 3, 2, 0);
}
static dd_status add_conv_k5(dd_graph *g) {
    return dd_graph_conv2d(g, 3, 5, 1, 2);
}
static dd_status add_linear(dd_graph *g) {
    return dd_graph_linear(g, 7);
}
static dd_status add_relu(dd_graph *g) {
    return dd_graph_relu(g);
}
static dd_status add_tanh(dd_graph *g) {
    return dd_graph_tanh(g);
}
static dd_status add_sigmoid(dd_graph *g) {
    return dd_graph_sigmoid(g);
}
static dd_status add_maxpool(dd_graph *g) {
    return dd_graph_maxpool(g, 2, 2, 0);
}
static dd_status add_maxpool3(dd_graph *g) {
    return dd_graph_maxpool(g, 3, 2, 1);
}
static dd_status add_avgpool(dd_graph *g) {
    return dd_graph_avgpool(g, 2, 2, 0);
}
static dd_status add_avgpool3(dd_graph *g) {
    return dd_graph_avgpool(g, 3, 2, 1);
}
static dd_status add_lrn(dd_graph *g) {
    return dd_graph_lrn(g, 4, 0.5f, 0.75f, 1.0f);
}
static dd_status add_lrn5(dd_graph *g) {
    return dd_graph_lrn(g, 5, 1.0f, 0.75f, 2.0f);
}
static dd_status add_inorm(dd_graph *g) {
    return dd_graph_instancenorm(g, 1e-5f);
}
static dd_status add_flatten(dd_graph *g) {
    return dd_graph_flatten(g);
}

static const op_case cases[] = {
    {"conv3x3 s1 p1", 3, 6, 5, 2, GEN_NORMAL, add_conv},
    {"conv3x3 s2 p0", 2, 7, 7, 2, GEN_NORMAL, add_conv_s2},
    {"conv5x5 s1 p2", 1, 8, 8, 3, GEN_NORMAL, add_conv_k5},
    {"linear", 3, 2, 2, 3, GEN_NORMAL, add_linear},
    {"relu", 3, 4, 4, 2, GEN_AWAY_FROM_ZERO, add_relu},
    {"tanh", 3, 4, 4, 2, GEN_NORMAL, add_tanh},
    {"sigmoid", 3, 4, 4, 2, GEN_NORMAL, add_sigmoid},
    {"maxpool 2/2", 2, 6, 6, 2, GEN_DISTINCT, add_maxpool},
    {"maxpool 3/2 p1", 2, 7, 6, 2, GEN_DISTINCT, add_maxpool3},
    {"avgpool 2/2", 2, 6, 6, 2, GEN_NORMAL, add_avgpool},
    {"avgpool 3/2 p1", 2, 7, 7, 2, GEN_NORMAL, add_avgpool3},
    {"lrn size 4", 7, 3, 3, 2, GEN_NORMAL, add_lrn},
    {"lrn size 5", 6, 2, 3, 2, GEN_NORMAL, add_lrn5},
    {"instancenorm", 3, 4, 5, 2, GEN_NORMAL, add_inorm},
    {"flatten", 2, 3, 3, 2, GEN_NORMAL, add_flatten},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* One layer bound to a batch size, with every buffer the four functions use. */
typedef struct harness {
    dd_graph *g;
    const dd_layer *L;
    dd_layer_exec e;
    size_t nx, ny, np, na, nad;
    float *x, *w, *y, *aux, *auxd, *dy, *dx, *dw, *xd, *wd, *yd, *dyd, *dxd, *dwd;
    float *tx, *tw, *ty, *tdy, *taux, *tdx, *tdw, *tdx2, *tdw2;
} harness;

static void harness_fill_x(harness *H, xgen gen, uint64_t seed) {
    compute_fill_normal(H->x, H->nx, 1.0f, seed);
    if (gen == GEN_AWAY_FROM_ZERO) {
        for (size_t i = 0; i < H->nx; i++)
            H->x[i] = copysignf(0.2f + fabsf(H->x[i]), H->x[i]);
    } else if (gen == GEN_DISTINCT) {
        // a random permutation of a grid with spacing 0.05: no ties, no near-ties
        int64_t *idx = malloc(H->nx * sizeof *idx);
        assert_non_null(idx);
        for (size_t i = 0; i < H->nx; i++)
            idx[i] = (int64_t)i;
        dd_rng r = dd_rng_make(seed, 5);
        dd_rng_shuffle(&r, idx, H->nx);
        for (size_t i = 0; i < H->nx; i++)
            H->x[i] = 0.05f * (float)idx[i] - 0.025f * (float)H->nx;
        free(idx);
    }
}

static float *must(size_t n) {
    float *p = dd_alloc_floats(n ? n : 1);
    assert_non_null(p);
    return p;
}

static dd_dnnl *g_dnnl; /* one oneDNN engine for the whole test */

static void harness_init(harness *H, const op_case *c, dd_backend be, uint64_t seed) {
    memset(H, 0, sizeof *H);
    assert_int_equal(dd_graph_create(c->c, c->h, c->w, &H->g), DD_OK);
    assert_int_equal(c->add(H->g), DD_OK);
    H->L = &H->g->layers[0];
    assert_int_equal(dd_layer_exec_init(&H->e, H->L, c->batch, be, g_dnnl, 0), DD_OK);
    H->nx = (size_t)c->batch * dd_layer_in_size(H->L);
    H->ny = (size_t)c->batch * dd_layer_out_size(H->L);
    H->np = H->L->n_weight + H->L->n_bias;
    H->na = dd_layer_aux_floats(H->L, c->batch);
    H->nad = dd_layer_auxd_floats(H->L, c->batch);
    float **bx[] = {&H->x, &H->dx, &H->xd, &H->dxd, &H->tx, &H->tdx, &H->tdx2};
    for (size_t i = 0; i < sizeof bx / sizeof *bx; i++)
        *bx[i] = must(H->nx);
    float **by[] = {&H->y, &H->dy, &H->yd, &H->dyd, &H->ty, &H->tdy};
    for (size_t i = 0; i < sizeof by / sizeof *by; i++)
        *by[i] = must(H->ny);
    float **bp[] = {&H->w, &H->dw, &H->wd, &H->dwd, &H->tw, &H->tdw, &H->tdw2};
    for (size_t i = 0; i < sizeof bp / sizeof *bp; i++)
        *bp[i] = must(H->np);
    H->aux = must(H->na);
    H->taux = must(H->na);
    H->auxd = must(H->nad);
    harness_fill_x(H, c->gen, seed);
    compute_fill_normal(H->w, H->np, 0.5f, seed + 1);
    if (H->L->kind == DD_OP_INSTNORM)
        for (size_t i = 0; i < H->L->n_weight; i++)
            H->w[i] += 1.0f;
    compute_fill_normal(H->dy, H->ny, 1.0f, seed + 2);
    compute_fill_normal(H->xd, H->nx, 1.0f, seed + 3);
    compute_fill_normal(H->wd, H->np, 1.0f, seed + 4);
    compute_fill_normal(H->dyd, H->ny, 1.0f, seed + 5);
}

static void harness_fini(harness *H) {
    dd_layer_exec_fini(&H->e);
    float *all[] = {H->x,  H->w,   H->y,    H->aux, H->auxd, H->dy,   H->dx,  H->dw,
                    H->xd, H->wd,  H->yd,   H->dyd, H->dxd,  H->dwd,  H->tx,  H->tw,
                    H->ty, H->tdy, H->taux, H->tdx, H->tdw,  H->tdx2, H->tdw2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        dd_free(all[i]);
    dd_graph_destroy(H->g);
}

// Perturbed point x + s·xd, w + s·wd, dy + s·dyd (s may be 0); xd_on selects
// whether the input moves.
static void perturb(harness *H, double s, int xd_on) {
    for (size_t i = 0; i < H->nx; i++)
        H->tx[i] = (float)(H->x[i] + (xd_on ? s * H->xd[i] : 0.0));
    for (size_t i = 0; i < H->np; i++)
        H->tw[i] = (float)(H->w[i] + s * H->wd[i]);
    for (size_t i = 0; i < H->ny; i++)
        H->tdy[i] = (float)(H->dy[i] + s * H->dyd[i]);
}

static void check_case(const op_case *c, dd_backend be, int xd_on) {
    const double eps = 1e-2;
    harness H;
    harness_init(&H, c, be, 11);
    const char *bn = be == DD_BACKEND_ONEDNN ? "onednn" : "reference";

    // forward at the base point, then all analytic quantities
    assert_int_equal(dd_layer_forward(&H.e, H.x, H.w, H.y, H.aux), DD_OK);
    assert_int_equal(dd_layer_backward(&H.e, H.x, H.y, H.aux, H.w, H.dy, H.dx, H.np ? H.dw : NULL),
                     DD_OK);
    const float *xd = xd_on ? H.xd : NULL;
    assert_int_equal(dd_layer_jvp(&H.e, H.x, H.y, H.aux, H.w, xd, H.wd, H.yd, H.auxd), DD_OK);
    assert_int_equal(dd_layer_tbwd(&H.e, H.x, H.y, H.aux, xd, H.yd, H.auxd, H.w, H.wd, H.dy, H.dyd,
                                   H.dxd, H.np ? H.dwd : NULL),
                     DD_OK);

    // VJP: ⟨dy, J(xd, wd)⟩ = ⟨dx, xd⟩ + ⟨dw, wd⟩, J by central differences
    double fp, fm;
    float *yp = must(H.ny), *ym = must(H.ny);
    perturb(&H, eps, xd_on);
    assert_int_equal(dd_layer_forward(&H.e, H.tx, H.tw, yp, H.taux), DD_OK);
    perturb(&H, -eps, xd_on);
    assert_int_equal(dd_layer_forward(&H.e, H.tx, H.tw, ym, H.taux), DD_OK);
    fp = compute_dot(yp, H.dy, H.ny);
    fm = compute_dot(ym, H.dy, H.ny);
    double fd = (fp - fm) / (2 * eps);
    double an = (xd_on ? compute_dot(H.dx, H.xd, H.nx) : 0.0) + compute_dot(H.dw, H.wd, H.np);
    double scale = fabs(fd) > 1.0 ? fabs(fd) : 1.0;
    if (fabs(fd - an) / scale > TOL)
        fail_msg("%s [%s] VJP: fd %.7g vs analytic %.7g", c->name, bn, fd, an);

    // JVP: yd vs (f(+) − f(−)) / 2eps, full vector
    float *fdv = must(H.ny > H.nx ? (H.ny > H.np ? H.ny : H.np) : (H.nx > H.np ? H.nx : H.np));
    for (size_t i = 0; i < H.ny; i++)
        fdv[i] = (float)(((double)yp[i] - ym[i]) / (2 * eps));
    double e = compute_rel_err(H.yd, fdv, H.ny, 1e-3);
    if (e > TOL)
        fail_msg("%s [%s] JVP: relative error %.3g (xd %s)", c->name, bn, e, xd_on ? "on" : "zero");

    // Tangent of VJP: (dx, dw)(x ± eps·xd, w ± eps·wd, dy ± eps·dyd)
    perturb(&H, eps, xd_on);
    assert_int_equal(dd_layer_forward(&H.e, H.tx, H.tw, H.ty, H.taux), DD_OK);
    assert_int_equal(
        dd_layer_backward(&H.e, H.tx, H.ty, H.taux, H.tw, H.tdy, H.tdx, H.np ? H.tdw : NULL),
        DD_OK);
    perturb(&H, -eps, xd_on);
    assert_int_equal(dd_layer_forward(&H.e, H.tx, H.tw, H.ty, H.taux), DD_OK);
    assert_int_equal(
        dd_layer_backward(&H.e, H.tx, H.ty, H.taux, H.tw, H.tdy, H.tdx2, H.np ? H.tdw2 : NULL),
        DD_OK);
    for (size_t i = 0; i < H.nx; i++)
        fdv[i] = (float)(((double)H.tdx[i] - H.tdx2[i]) / (2 * eps));
    e = compute_rel_err(H.dxd, fdv, H.nx, 1e-3);
    if (e > TOL)
        fail_msg("%s [%s] tangent of VJP (dx): relative error %.3g (xd %s)", c->name, bn, e,
                 xd_on ? "on" : "zero");
    if (H.np) {
        for (size_t i = 0; i < H.np; i++)
            fdv[i] = (float)(((double)H.tdw[i] - H.tdw2[i]) / (2 * eps));
        e = compute_rel_err(H.dwd, fdv, H.np, 1e-3);
        if (e > TOL)
            fail_msg("%s [%s] tangent of VJP (dw): relative error %.3g (xd %s)", c->name, bn, e,
                     xd_on ? "on" : "zero");
    }
    dd_free(yp), dd_free(ym), dd_free(fdv);
    harness_fini(&H);
}

static void test_ops_reference(void **state) {
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        check_case(&cases[i], DD_BACKEND_REFERENCE, 1);
        check_case(&cases[i], DD_BACKEND_REFERENCE, 0);
    }
}

static void test_ops_onednn(void **state) {
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        check_case(&cases[i], DD_BACKEND_ONEDNN, 1);
        check_case(&cases[i], DD_BACKEND_ONEDNN, 0);
    }
}

/* oneDNN and reference give the same forward, VJP, JVP and tangent of VJP
 * for the dense ops (float32 sums in different orders: 1e-5 relative). */
static void test_dense_onednn_matches_reference(void **state) {
    (void)state;
    int checked = 0;
    for (size_t i = 0; i < N_CASES; i++) {
        const op_case *c = &cases[i];
        harness R, D;
        harness_init(&R, c, DD_BACKEND_REFERENCE, 21);
        if (R.L->kind != DD_OP_CONV && R.L->kind != DD_OP_LINEAR) {
            harness_fini(&R);
            continue;
        }
        harness_init(&D, c, DD_BACKEND_ONEDNN, 21);
        assert_true(D.e.conv != NULL || D.e.lin != NULL);
        harness *hs[2] = {&R, &D};
        for (int k = 0; k < 2; k++) {
            harness *H = hs[k];
            assert_int_equal(dd_layer_forward(&H->e, H->x, H->w, H->y, H->aux), DD_OK);
            assert_int_equal(
                dd_layer_backward(&H->e, H->x, H->y, H->aux, H->w, H->dy, H->dx, H->dw), DD_OK);
            assert_int_equal(
                dd_layer_jvp(&H->e, H->x, H->y, H->aux, H->w, H->xd, H->wd, H->yd, H->auxd), DD_OK);
            assert_int_equal(dd_layer_tbwd(&H->e, H->x, H->y, H->aux, H->xd, H->yd, H->auxd, H->w,
                                           H->wd, H->dy, H->dyd, H->dxd, H->dwd),
                             DD_OK);
        }
        const struct {
            const char *what;
            float *a, *b;
            size_t n;
        } cmp[] = {{"forward", D.y, R.y, R.ny},        {"dx", D.dx, R.dx, R.nx},
                   {"dw", D.dw, R.dw, R.np},           {"jvp", D.yd, R.yd, R.ny},
                   {"tangent dx", D.dxd, R.dxd, R.nx}, {"tangent dw", D.dwd, R.dwd, R.np}};
        for (size_t j = 0; j < sizeof cmp / sizeof *cmp; j++) {
            double e = compute_rel_err(cmp[j].a, cmp[j].b, cmp[j].n, 1e-6);
            if (e > 1e-5)
                fail_msg("%s: onednn vs reference %s: relative error %.3g", c->name, cmp[j].what,
                         e);
        }
        checked++;
        harness_fini(&D);
        harness_fini(&R);
    }
    assert_true(checked >= 4);
}

static int setup(void **state) {
    (void)state;
    if (dd_dnnl_create(&g_dnnl) != DD_OK) {
        fprintf(stderr, "dd_dnnl_create: %s\n", dd_error_message());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    dd_dnnl_destroy(g_dnnl);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_reference),
        cmocka_unit_test(test_ops_onednn),
        cmocka_unit_test(test_dense_onednn_matches_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
