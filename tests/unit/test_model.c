/* Tests of the model runtime on graphs built here: gradients against
 * differences of the loss, loss values by hand, consistency between
 * forward / loss_grad / backward_from / hvp, linearity of hvp in v, the
 * workspace cache, init schemes, and error handling. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <omp.h>

#include "distill/host.h"
#include "compute/threads.h"
#include "compute_util.h"
#include "model/model_impl.h"

/* conv → tanh → avgpool → instance norm → lrn → sigmoid → flatten → linear:
 * smooth, so plain central differences of the loss are valid. */
static dd_model *smooth_model(dd_backend be, dd_loss_kind loss) {
    dd_graph *g;
    assert_int_equal(dd_graph_create(2, 8, 8, &g), DD_OK);
    assert_int_equal(dd_graph_conv2d(g, 4, 3, 1, 1), DD_OK);
    assert_int_equal(dd_graph_tanh(g), DD_OK);
    assert_int_equal(dd_graph_avgpool(g, 2, 2, 0), DD_OK);
    assert_int_equal(dd_graph_instancenorm(g, 1e-5f), DD_OK);
    assert_int_equal(dd_graph_lrn(g, 3, 0.5f, 0.75f, 1.0f), DD_OK);
    assert_int_equal(dd_graph_sigmoid(g), DD_OK);
    assert_int_equal(dd_graph_flatten(g), DD_OK);
    assert_int_equal(dd_graph_linear(g, 5), DD_OK);
    dd_graph_set_loss(g, loss);
    dd_model *m;
    assert_int_equal(dd_model_create_from_graph(g, be, &m), DD_OK);
    return m;
}

typedef struct fixture {
    dd_model *m;
    size_t P, D;
    int K;
    int64_t B;
    float *theta, *x, *v, *g, *gx, *tmp, *tx, *logits, *ysoft;
    int32_t y[4];
} fixture;

static void fx_init(fixture *f, dd_model *m, int64_t B) {
    memset(f, 0, sizeof *f);
    f->m = m;
    f->B = B;
    f->P = dd_model_param_count(m);
    f->D = dd_model_input_size(m);
    f->K = dd_model_output_dim(m);
    f->theta = dd_alloc_floats(f->P), f->v = dd_alloc_floats(f->P), f->g = dd_alloc_floats(f->P);
    f->tmp = dd_alloc_floats(f->P);
    f->x = dd_alloc_floats(B * f->D), f->gx = dd_alloc_floats(B * f->D),
    f->tx = dd_alloc_floats(B * f->D);
    f->logits = dd_alloc_floats(B * f->K), f->ysoft = dd_alloc_floats(B * f->K);
    assert_int_equal(dd_model_init_params(m, f->theta, "xavier", 1.0f, 1), DD_OK);
    for (size_t i = 0; i < f->P; i++)
        f->theta[i] += 0.01f * (float)((i * 7) % 5);
    compute_fill_normal(f->x, B * f->D, 1.0f, 2);
    compute_fill_normal(f->v, f->P, 0.1f, 3);
    for (int64_t b = 0; b < B; b++) {
        f->y[b] = (int32_t)((b * 3 + 1) % f->K);
        for (int k = 0; k < f->K; k++)
            f->ysoft[b * f->K + k] = (float)(k + b + 1) / (float)(f->K * (f->K + 1) / 2 + b * f->K);
    }
}

static void fx_fini(fixture *f) {
    float *all[] = {f->theta, f->x, f->v, f->g, f->gx, f->tmp, f->tx, f->logits, f->ysoft};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        dd_free(all[i]);
    dd_model_destroy(f->m);
}

static double loss_at(fixture *f, const float *theta, const float *x, dd_labels y) {
    double l;
    assert_int_equal(dd_model_loss_grad(f->m, theta, x, f->B, y, &l, NULL, NULL, NULL), DD_OK);
    return l;
}

/* ∇θ and ∇x of loss_grad against central differences of the loss. */
static void check_gradients(dd_backend be, dd_loss_kind lk, int soft) {
    fixture f;
    fx_init(&f, smooth_model(be, lk), 3);
    dd_labels y = soft ? (dd_labels){NULL, f.ysoft} : (dd_labels){f.y, NULL};
    double l0;
    assert_int_equal(dd_model_loss_grad(f.m, f.theta, f.x, f.B, y, &l0, f.g, f.gx, f.logits),
                     DD_OK);
    const double eps = 1e-2;
    for (size_t i = 0; i < f.P; i++)
        f.tmp[i] = f.theta[i] + (float)(eps * f.v[i]);
    double lp = loss_at(&f, f.tmp, f.x, y);
    for (size_t i = 0; i < f.P; i++)
        f.tmp[i] = f.theta[i] - (float)(eps * f.v[i]);
    double lm = loss_at(&f, f.tmp, f.x, y);
    double fd = (lp - lm) / (2 * eps), an = compute_dot(f.g, f.v, f.P);
    if (fabs(fd - an) > 2e-3 * (fabs(an) + 1e-3))
        fail_msg("dθ: fd %.7g vs %.7g (loss %d soft %d)", fd, an, (int)lk, soft);
    float *u = dd_alloc_floats(f.B * f.D);
    compute_fill_normal(u, f.B * f.D, 1.0f, 9);
    for (size_t i = 0; i < f.B * f.D; i++)
        f.tx[i] = f.x[i] + (float)(eps * u[i]);
    lp = loss_at(&f, f.theta, f.tx, y);
    for (size_t i = 0; i < f.B * f.D; i++)
        f.tx[i] = f.x[i] - (float)(eps * u[i]);
    lm = loss_at(&f, f.theta, f.tx, y);
    fd = (lp - lm) / (2 * eps), an = compute_dot(f.gx, u, f.B * f.D);
    if (fabs(fd - an) > 2e-3 * (fabs(an) + 1e-3)) fail_msg("dx: fd %.7g vs %.7g", fd, an);
    dd_free(u);
    fx_fini(&f);
}

static void test_gradients_fd(void **state) {
    (void)state;
    for (int be = 0; be < 2; be++)
        for (int soft = 0; soft < 2; soft++) {
            check_gradients((dd_backend)be, DD_LOSS_CROSS_ENTROPY, soft);
            check_gradients((dd_backend)be, DD_LOSS_MSE, soft);
        }
}

/* Loss values by hand on a linear model with θ chosen here. */
static void test_loss_values(void **state) {
    (void)state;
    for (int lk = 1; lk <= 2; lk++) {
        dd_graph *g;
        assert_int_equal(dd_graph_create(1, 1, 2, &g), DD_OK);
        assert_int_equal(dd_graph_linear(g, 3), DD_OK);
        dd_graph_set_loss(g, (dd_loss_kind)lk);
        dd_model *m;
        assert_int_equal(dd_model_create_from_graph(g, DD_BACKEND_REFERENCE, &m), DD_OK);
        assert_int_equal(dd_model_param_count(m), 9);
        float theta[9] = {1, 0, 0, 1, 1, -1, 0.5f, 0, -0.5f}; // W (3×2), b
        float x[4] = {1, 2, -1, 0.5f};
        int32_t y[2] = {2, 0};
        double loss, expect = 0;
        assert_int_equal(
            dd_model_loss_grad(m, theta, x, 2, (dd_labels){y, NULL}, &loss, NULL, NULL, NULL),
            DD_OK);
        for (int b = 0; b < 2; b++) {
            double z[3];
            for (int k = 0; k < 3; k++)
                z[k] = theta[2 * k] * x[2 * b] + theta[2 * k + 1] * x[2 * b + 1] + theta[6 + k];
            if (lk == DD_LOSS_MSE) {
                for (int k = 0; k < 3; k++)
                    expect += 0.5 * pow(z[k] - (k == y[b]), 2) / 2;
            } else {
                double se = exp(z[0]) + exp(z[1]) + exp(z[2]);
                expect += (log(se) - z[y[b]]) / 2;
            }
        }
        assert_true(fabs(loss - expect) < 1e-6);
        dd_model_destroy(m);
    }
}

/* forward, loss_grad, backward_from and hvp agree on what they share. */
static void test_consistency(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, smooth_model(DD_BACKEND_ONEDNN, DD_LOSS_CROSS_ENTROPY), 2);
    dd_labels y = {f.y, NULL};
    double l0;
    float *z = dd_alloc_floats(f.B * f.K), *dz = dd_alloc_floats(f.B * f.K);
    float *g2 = dd_alloc_floats(f.P), *gx2 = dd_alloc_floats(f.B * f.D), *hv = dd_alloc_floats(f.P);
    float *hv2 = dd_alloc_floats(f.P), *v2 = dd_alloc_floats(f.P), *mx = dd_alloc_floats(f.B * f.D);
    float *mx2 = dd_alloc_floats(f.B * f.D);
    assert_int_equal(dd_model_loss_grad(f.m, f.theta, f.x, f.B, y, &l0, f.g, f.gx, f.logits),
                     DD_OK);
    assert_int_equal(dd_model_forward(f.m, f.theta, f.x, f.B, z), DD_OK);
    assert_memory_equal(z, f.logits, f.B * f.K * sizeof(float));
    // dlogits of mean cross-entropy: (softmax − onehot) / B
    for (int64_t b = 0; b < f.B; b++) {
        double se = 0;
        for (int k = 0; k < f.K; k++)
            se += exp(z[b * f.K + k]);
        for (int k = 0; k < f.K; k++)
            dz[b * f.K + k] = (float)((exp(z[b * f.K + k]) / se - (k == f.y[b])) / f.B);
    }
    assert_int_equal(dd_model_backward_from(f.m, f.theta, f.x, f.B, dz, g2, gx2), DD_OK);
    assert_true(compute_rel_err(g2, f.g, f.P, 1e-9) < 1e-5);
    assert_true(compute_rel_err(gx2, f.gx, f.B * f.D, 1e-9) < 1e-5);
    // hvp is linear in v: H(2v − v') = 2 Hv − Hv'
    compute_fill_normal(v2, f.P, 0.1f, 11);
    assert_int_equal(dd_model_hvp(f.m, f.theta, f.x, f.B, y, f.v, hv, mx, NULL, NULL, NULL), DD_OK);
    assert_int_equal(dd_model_hvp(f.m, f.theta, f.x, f.B, y, v2, hv2, mx2, NULL, NULL, NULL),
                     DD_OK);
    for (size_t i = 0; i < f.P; i++)
        f.tmp[i] = 2 * f.v[i] - v2[i];
    float *hv3 = dd_alloc_floats(f.P), *mx3 = dd_alloc_floats(f.B * f.D);
    assert_int_equal(dd_model_hvp(f.m, f.theta, f.x, f.B, y, f.tmp, hv3, mx3, NULL, NULL, NULL),
                     DD_OK);
    for (size_t i = 0; i < f.P; i++)
        hv2[i] = 2 * hv[i] - hv2[i];
    for (size_t i = 0; i < f.B * f.D; i++)
        mx2[i] = 2 * mx[i] - mx2[i];
    assert_true(compute_rel_err(hv3, hv2, f.P, 1e-9) < 1e-4);
    assert_true(compute_rel_err(mx3, mx2, f.B * f.D, 1e-9) < 1e-4);
    // symmetry of the Hessian: ⟨v', H v⟩ = ⟨v, H v'⟩
    assert_int_equal(dd_model_hvp(f.m, f.theta, f.x, f.B, y, v2, hv2, NULL, NULL, NULL, NULL),
                     DD_OK);
    double a = compute_dot(v2, hv, f.P), b = compute_dot(f.v, hv2, f.P);
    assert_true(fabs(a - b) < 1e-4 * (fabs(a) + fabs(b)) + 1e-7);
    dd_free(z), dd_free(dz), dd_free(g2), dd_free(gx2), dd_free(hv), dd_free(hv2), dd_free(v2);
    dd_free(mx), dd_free(mx2), dd_free(hv3), dd_free(mx3);
    fx_fini(&f);
}

/* dd_model_backward reuses the preceding forward's activations: it must equal
 * backward_from, and refuse when that forward is not the last pass. Built on
 * conv → relu → maxpool 2×2/2 (the fused relu+pool path) and on the smooth
 * graph. */
static dd_model *relu_pool_model(dd_backend be) {
    dd_graph *g;
    assert_int_equal(dd_graph_create(1, 8, 8, &g), DD_OK);
    assert_int_equal(dd_graph_conv2d(g, 3, 3, 1, 1), DD_OK);
    assert_int_equal(dd_graph_relu(g), DD_OK);
    assert_int_equal(dd_graph_maxpool(g, 2, 2, 0), DD_OK);
    assert_int_equal(dd_graph_linear(g, 4), DD_OK);
    dd_model *m;
    assert_int_equal(dd_model_create_from_graph(g, be, &m), DD_OK);
    return m;
}

static void check_backward_reuse(dd_model *m) {
    fixture f;
    fx_init(&f, m, 3);
    float *z = dd_alloc_floats(f.B * f.K), *dz = dd_alloc_floats(f.B * f.K);
    float *g2 = dd_alloc_floats(f.P), *gx2 = dd_alloc_floats(f.B * f.D);
    compute_fill_normal(dz, f.B * f.K, 0.3f, 21);
    assert_int_equal(dd_model_backward_from(f.m, f.theta, f.x, f.B, dz, f.g, f.gx), DD_OK);
    assert_int_equal(dd_model_forward(f.m, f.theta, f.x, f.B, z), DD_OK);
    assert_int_equal(dd_model_backward(f.m, f.theta, f.B, dz, g2, gx2), DD_OK);
    assert_memory_equal(g2, f.g, f.P * sizeof(float));
    assert_memory_equal(gx2, f.gx, f.B * f.D * sizeof(float));
    // another pass in between (same batch size), a different batch size, or
    // no forward at all: refused, not computed from stale activations
    assert_int_equal(dd_model_forward(f.m, f.theta, f.x, f.B, z), DD_OK);
    assert_int_equal(
        dd_model_loss_grad(f.m, f.theta, f.x, f.B, (dd_labels){f.y, NULL}, NULL, f.tmp, NULL, NULL),
        DD_OK);
    assert_int_equal(dd_model_backward(f.m, f.theta, f.B, dz, g2, NULL), DD_ERR_INVALID);
    assert_int_equal(dd_model_forward(f.m, f.theta, f.x, f.B, z), DD_OK);
    assert_int_equal(dd_model_backward(f.m, f.theta, f.B - 1, dz, g2, NULL), DD_ERR_INVALID);
    assert_true(strlen(dd_error_message()) > 0);
    fx_fini(&f);
    dd_free(z), dd_free(dz), dd_free(g2), dd_free(gx2);
}

static void test_backward_reuses_forward(void **state) {
    (void)state;
    for (int be = 0; be < 2; be++) {
        check_backward_reuse(relu_pool_model((dd_backend)be));
        check_backward_reuse(smooth_model((dd_backend)be, DD_LOSS_CROSS_ENTROPY));
    }
}

/* More batch sizes than the cache holds, revisited: same results. */
static void test_workspace_cache(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, smooth_model(DD_BACKEND_ONEDNN, DD_LOSS_CROSS_ENTROPY), 4);
    int32_t y[4] = {0, 1, 2, 3};
    dd_labels lab = {y, NULL};
    double first[4][2];
    float *gref = dd_alloc_floats(f.P);
    for (int round = 0; round < 2; round++) {
        for (int64_t B = 1; B <= 4; B++) {
            double l;
            assert_int_equal(dd_model_loss_grad(f.m, f.theta, f.x, B, lab, &l, f.g, NULL, NULL),
                             DD_OK);
            double hl;
            assert_int_equal(
                dd_model_hvp(f.m, f.theta, f.x, B, lab, f.v, f.tmp, NULL, NULL, NULL, &hl), DD_OK);
            if (round == 0) {
                first[B - 1][0] = l;
                first[B - 1][1] = compute_dot(f.tmp, f.v, f.P);
            } else {
                assert_true(l == first[B - 1][0]);
                assert_true(fabs(compute_dot(f.tmp, f.v, f.P) - first[B - 1][1]) <=
                            1e-6 * fabs(first[B - 1][1]));
            }
            assert_true(hl == l);
        }
        // a fifth batch size evicts one of the four cached workspaces
        float *x5 = dd_alloc_floats(5 * f.D);
        int32_t y5[5] = {0, 1, 2, 3, 4};
        assert_int_equal(
            dd_model_loss_grad(f.m, f.theta, x5, 5, (dd_labels){y5, NULL}, NULL, gref, NULL, NULL),
            DD_OK);
        dd_free(x5);
    }
    dd_free(gref);
    fx_fini(&f);
}

static dd_status probe_threads(void *arg) {
    *(int *)arg = omp_get_max_threads();
    return DD_OK;
}

// Every pass of one batch size (and a backward reusing its forward).
static void run_passes(fixture *f, int64_t B) {
    dd_labels lab = {f->y, NULL};
    double l;
    assert_int_equal(dd_model_loss_grad(f->m, f->theta, f->x, B, lab, &l, f->g, f->gx, NULL),
                     DD_OK);
    assert_int_equal(
        dd_model_hvp(f->m, f->theta, f->x, B, lab, f->v, f->tmp, f->tx, NULL, NULL, NULL), DD_OK);
    assert_int_equal(dd_model_forward(f->m, f->theta, f->x, B, f->logits), DD_OK);
    assert_int_equal(dd_model_backward(f->m, f->theta, B, f->ysoft, f->g, NULL), DD_OK);
}

/* The thread count is the model's own context: passes on any setting leave
 * OpenMP's per-thread count as the caller set it; dd_threads_run scopes it. */
static void test_threads_context(void **state) {
    (void)state;
    const int saved = omp_get_max_threads();
    omp_set_num_threads(3);
    int seen = 0;
    assert_int_equal(dd_threads_run(1, probe_threads, &seen), DD_OK);
    assert_int_equal(seen, 1);
    assert_int_equal(omp_get_max_threads(), 3);
    assert_int_equal(dd_threads_run(0, probe_threads, &seen), DD_OK);
    assert_int_equal(seen, 3);
    assert_int_equal(dd_threads_resolve(0), 3);
    assert_int_equal(dd_threads_resolve(2), 2);
    for (int be = 0; be < 2; be++) {
        fixture f;
        fx_init(&f, smooth_model((dd_backend)be, DD_LOSS_CROSS_ENTROPY), 4);
        assert_int_equal(dd_model_threads(f.m), 0);
        assert_int_equal(dd_model_set_threads(f.m, 1), 0);
        run_passes(&f, 4); // workspace (and oneDNN primitives) built for one thread
        assert_int_equal(omp_get_max_threads(), 3);
        assert_int_equal(dd_model_set_threads(f.m, 2), 1);
        run_passes(&f, 4); // the same workspace, run with two
        run_passes(&f, 3); // a new one, built for two
        assert_int_equal(omp_get_max_threads(), 3);
        assert_int_equal(dd_model_set_threads(f.m, -1), 2);
        assert_int_equal(dd_model_threads(f.m), 0);
        run_passes(&f, 2); // the caller's OpenMP default
        assert_int_equal(omp_get_max_threads(), 3);
        fx_fini(&f);
    }
    omp_set_num_threads(saved);
}

static void test_init_schemes(void **state) {
    (void)state;
    dd_graph *g;
    assert_int_equal(dd_graph_create(16, 10, 10, &g), DD_OK);
    assert_int_equal(dd_graph_conv2d(g, 32, 3, 1, 1), DD_OK);
    assert_int_equal(dd_graph_instancenorm(g, 1e-5f), DD_OK);
    assert_int_equal(dd_graph_linear(g, 100), DD_OK);
    dd_model *m;
    assert_int_equal(dd_model_create_from_graph(g, DD_BACKEND_REFERENCE, &m), DD_OK);
    const dd_graph *gg = dd_model_graph(m);
    const dd_layer *conv = &gg->layers[0], *norm = &gg->layers[1], *lin = &gg->layers[2];
    const size_t P = dd_model_param_count(m);
    float *t = dd_alloc_floats(P), *t2 = dd_alloc_floats(P);
    const struct {
        const char *scheme;
        int uniform;
        double var_conv, var_lin;
    } s[] = {
        {"xavier", 0, 2.0 / (144 + 288), 2.0 / (3200 + 100)},
        {"xavier-uniform", 1, 2.0 / (144 + 288), 2.0 / (3200 + 100)},
        {"kaiming", 0, 2.0 / 144, 2.0 / 3200},
        {"kaiming-uniform", 1, 2.0 / 144, 2.0 / 3200},
    };
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        const float gain = 1.5f;
        assert_int_equal(dd_model_init_params(m, t, s[i].scheme, gain, 5), DD_OK);
        const dd_layer *Ls[2] = {conv, lin};
        for (int j = 0; j < 2; j++) {
            const float *w = t + Ls[j]->param_off;
            double var = 0, mx = 0;
            for (size_t k = 0; k < Ls[j]->n_weight; k++) {
                var += (double)w[k] * w[k];
                mx = fabs(w[k]) > mx ? fabs(w[k]) : mx;
            }
            var /= (double)Ls[j]->n_weight;
            double expect = gain * gain * (j ? s[i].var_lin : s[i].var_conv);
            if (fabs(var / expect - 1.0) > 0.08)
                fail_msg("%s layer %d: variance %.4g expected %.4g", s[i].scheme, j, var, expect);
            if (s[i].uniform) assert_true(mx <= sqrt(3 * expect) * 1.0001);
            for (size_t k = 0; k < Ls[j]->n_bias; k++)
                assert_true(w[Ls[j]->n_weight + k] == 0.0f);
        }
        for (size_t k = 0; k < norm->n_weight; k++)
            assert_true(t[norm->param_off + k] == 1.0f);
        for (size_t k = 0; k < norm->n_bias; k++)
            assert_true(t[norm->param_off + norm->n_weight + k] == 0.0f);
        assert_int_equal(dd_model_init_params(m, t2, s[i].scheme, gain, 5), DD_OK);
        assert_memory_equal(t, t2, P * sizeof(float));
        assert_int_equal(dd_model_init_params(m, t2, s[i].scheme, gain, 6), DD_OK);
        assert_memory_not_equal(t, t2, P * sizeof(float));
    }
    assert_int_equal(dd_model_init_params(m, t, "glorot", 1.0f, 1), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "kaiming-uniform"));
    dd_free(t), dd_free(t2);
    dd_model_destroy(m);
}

static void test_errors(void **state) {
    (void)state;
    fixture f;
    fx_init(&f, smooth_model(DD_BACKEND_REFERENCE, DD_LOSS_CROSS_ENTROPY), 2);
    int32_t bad[2] = {0, 5};
    double l;
    assert_int_equal(
        dd_model_loss_grad(f.m, f.theta, f.x, 2, (dd_labels){bad, NULL}, &l, f.g, NULL, NULL),
        DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "label 5"));
    assert_int_equal(
        dd_model_loss_grad(f.m, f.theta, f.x, 2, (dd_labels){f.y, f.ysoft}, &l, f.g, NULL, NULL),
        DD_ERR_INVALID);
    assert_int_equal(
        dd_model_loss_grad(f.m, f.theta, f.x, 0, (dd_labels){f.y, NULL}, &l, f.g, NULL, NULL),
        DD_ERR_INVALID);
    assert_int_equal(dd_model_hvp(f.m, f.theta, f.x, 2, (dd_labels){f.y, NULL}, f.v, f.g, NULL,
                                  f.tmp, NULL, NULL),
                     DD_ERR_INVALID);
    assert_int_equal(dd_model_hvp(f.m, f.theta, f.x, 2, (dd_labels){f.y, NULL}, NULL, f.g, NULL,
                                  NULL, NULL, NULL),
                     DD_ERR_INVALID);
    // a diverged network is reported, not returned as a number
    for (size_t i = 0; i < f.P; i++)
        f.tmp[i] = NAN;
    assert_int_equal(
        dd_model_loss_grad(f.m, f.tmp, f.x, 2, (dd_labels){f.y, NULL}, &l, NULL, NULL, NULL),
        DD_ERR_NUMERIC);
    fx_fini(&f);

    // graph builder refusals
    dd_graph *g;
    assert_int_equal(dd_graph_create(1, 4, 4, &g), DD_OK);
    assert_int_equal(dd_graph_conv2d(g, 2, 7, 1, 0), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "does not fit"));
    assert_int_equal(dd_graph_relu(g), DD_ERR_INVALID); // sticky
    dd_model *m = NULL;
    assert_int_equal(dd_model_create_from_graph(g, DD_BACKEND_REFERENCE, &m), DD_ERR_INVALID);
    assert_null(m);
    assert_int_equal(dd_graph_create(0, 4, 4, &g), DD_ERR_INVALID);
    dd_model_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_fd),    cmocka_unit_test(test_loss_values),
        cmocka_unit_test(test_consistency),     cmocka_unit_test(test_backward_reuses_forward),
        cmocka_unit_test(test_workspace_cache), cmocka_unit_test(test_init_schemes),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_threads_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
