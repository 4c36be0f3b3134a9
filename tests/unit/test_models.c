/* Tests of every model plugin at a small size, on both backends: H·v and
 * ∇_x⟨g,v⟩ (and ∇_y⟨g,v⟩ with soft labels) against central differences of
 * the gradient, and oneDNN against the reference backend.
 *
 * Tolerances. Smooth networks (linear): eps = 1e-3 of θ's
 * scale, truncation O(eps²) and float rounding ~1e-7/eps, so 5e-3.
 * ReLU / max-pool networks: the step is shrunk until θ ± eps·v share θ's
 * activation pattern (compute_check_hvp), typically eps ≈ 1e-5, where the
 * float32 gradient's rounding (~1e-7 relative) divided by eps gives ~1e-2;
 * 6e-2 still rejects any wrong term (those give O(1) errors, as seen when a
 * tangent term is dropped). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "distill/host.h"
#include "compute_fd.h"
#include "compute_util.h"

typedef struct model_case {
    const char *plugin;
    const char *kv[4];
    int c, h, w, n_out;
    int64_t batch;
    int smooth;
} model_case;

static const model_case cases[] = {
    {"linear", {NULL}, 1, 5, 5, 4, 3, 1},
    {"linear", {"loss=cross_entropy", NULL}, 2, 3, 3, 5, 3, 1},
    {"lenet", {"activation=tanh", NULL}, 1, 28, 28, 10, 2, 0},
    {"lenet", {NULL}, 1, 28, 28, 10, 2, 0},
    // 16×16 rather than 32×32: a quarter of the relu / max-pool kinks, so a
    // step of ~1e-5 that crosses none exists (at 32×32 some seeds need < 1e-6,
    // below float32 resolution of θ + eps·v).
    {"alexcifarnet", {NULL}, 3, 16, 16, 10, 1, 0},
    {"convnet", {"width=8", NULL}, 3, 32, 32, 10, 2, 0},
    {"alexnet", {"width=0.125", "hidden=32", NULL}, 3, 64, 64, 10, 1, 0},
    // every layer kind of the sequential plugin in one stack
    {"sequential",
     {"layers=[{conv: {out: 3, kernel: 3, padding: 1}}, relu, {maxpool: 2}, {lrn: 2}, "
      "instancenorm, {avgpool: {kernel: 3, stride: 1, padding: 1}}, tanh, flatten, {linear: 6}, "
      "sigmoid, {linear: 4}]",
      NULL},
     2,
     8,
     8,
     4,
     2,
     0},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static dd_model *create(const model_case *c, dd_backend be) {
    dd_model *m =
        compute_model_create(c->plugin, c->kv[0] ? c->kv : NULL, c->c, c->h, c->w, c->n_out, be);
    if (!m) fail_msg("cannot create model %s", c->plugin);
    return m;
}

static void check_hvp_fd(dd_backend be) {
    const char *bn = be == DD_BACKEND_ONEDNN ? "onednn" : "reference";
    for (size_t i = 0; i < N_CASES; i++) {
        const model_case *c = &cases[i];
        for (int soft = 0; soft < 2; soft++) {
            dd_model *m = create(c, be);
            compute_hvp_errors e;
            assert_int_equal(compute_check_hvp(m, c->batch, soft, 1e-3, 7 + i, &e), 0);
            const double tol = c->smooth ? 5e-3 : 6e-2;
            printf("  %-12s %-9s %s labels: |Hv| %.3g, eps %.2g, err Hv %.2e mixed_x %.2e mixed_y "
                   "%.2e\n",
                   c->plugin, bn, soft ? "soft" : "hard", e.hv_norm, e.eps_used, e.hv, e.mixed_x,
                   e.mixed_y);
            if (!c->smooth && !e.kink_free)
                fail_msg("%s [%s]: no step kept the relu/max-pool pattern", c->plugin, bn);
            assert_true(e.hv_norm > 1e-3);
            if (e.hv > tol) fail_msg("%s [%s]: H·v error %.3g > %.3g", c->plugin, bn, e.hv, tol);
            if (e.mixed_x > tol)
                fail_msg("%s [%s]: mixed_x error %.3g > %.3g", c->plugin, bn, e.mixed_x, tol);
            if (soft && e.mixed_y > 5e-3)
                fail_msg("%s [%s]: mixed_y error %.3g", c->plugin, bn, e.mixed_y);
            // the by-products of hvp equal loss_grad's
            assert_true(e.grad_match < 1e-6);
            assert_true(e.loss_match < 1e-9);
            dd_model_destroy(m);
        }
    }
}

static void test_hvp_fd_reference(void **state) {
    (void)state;
    check_hvp_fd(DD_BACKEND_REFERENCE);
}

static void test_hvp_fd_onednn(void **state) {
    (void)state;
    check_hvp_fd(DD_BACKEND_ONEDNN);
}

/* Same θ, x, v on both backends: logits, loss, ∇θ, ∇x, H·v, mixed_x agree. */
static void test_onednn_matches_reference(void **state) {
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        const model_case *c = &cases[i];
        dd_model *r = create(c, DD_BACKEND_REFERENCE), *d = create(c, DD_BACKEND_ONEDNN);
        const size_t P = dd_model_param_count(r), X = (size_t)c->batch * dd_model_input_size(r);
        const size_t Y = (size_t)c->batch * c->n_out;
        assert_int_equal(P, dd_model_param_count(d));
        float *theta = dd_alloc_floats(P), *v = dd_alloc_floats(P), *x = dd_alloc_floats(X);
        float *out[2][5];
        for (int k = 0; k < 2; k++) {
            out[k][0] = dd_alloc_floats(Y);
            out[k][1] = dd_alloc_floats(P);
            out[k][2] = dd_alloc_floats(X);
            out[k][3] = dd_alloc_floats(P);
            out[k][4] = dd_alloc_floats(X);
        }
        assert_int_equal(dd_model_init_params(r, theta, "kaiming", 1.0f, 3), DD_OK);
        compute_fill_normal(x, X, 1.0f, 4);
        compute_fill_normal(v, P, 0.01f, 5);
        int32_t y[4] = {1, 3, 0, 2};
        dd_labels lab = {y, NULL};
        double loss[2], loss2[2];
        dd_model *ms[2] = {r, d};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(dd_model_loss_grad(ms[k], theta, x, c->batch, lab, &loss[k], out[k][1],
                                                out[k][2], out[k][0]),
                             DD_OK);
            assert_int_equal(dd_model_hvp(ms[k], theta, x, c->batch, lab, v, out[k][3], out[k][4],
                                          NULL, NULL, &loss2[k]),
                             DD_OK);
        }
        const char *what[5] = {"logits", "grad theta", "grad x", "H·v", "mixed_x"};
        const size_t n[5] = {Y, P, X, P, X};
        for (int j = 0; j < 5; j++) {
            double e = compute_rel_err(out[1][j], out[0][j], n[j], 1e-6);
            if (e > 1e-4)
                fail_msg("%s: onednn vs reference %s: relative error %.3g", c->plugin, what[j], e);
        }
        assert_true(fabs(loss[0] - loss[1]) < 1e-5 * (1.0 + fabs(loss[0])));
        assert_true(fabs(loss2[0] - loss[0]) < 1e-9);
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < 5; j++)
                dd_free(out[k][j]);
        dd_free(theta), dd_free(v), dd_free(x);
        dd_model_destroy(r);
        dd_model_destroy(d);
    }
}

/* Shapes, parameter counts and error messages of the plugins. */
static void test_plugin_shapes(void **state) {
    (void)state;
    struct {
        const char *plugin;
        int c, h, w;
        size_t params;
    } known[] = {
        // lenet on MNIST: 156 + 2416 + 48120 + 10164 + 850
        {"lenet", 1, 28, 28, 61706},
        // alexcifarnet: 4864 + 102464 + 4096·384+384 + 384·192+192 + 1930
        {"alexcifarnet", 3, 32, 32, 4864 + 102464 + 1573248 + 73920 + 1930},
        // convnet-3 width 128 on CIFAR: 3584 + 2·147584 + 3·256 (norm) + 2048·10+10
        {"convnet", 3, 32, 32, 3584 + 2 * 147584 + 3 * 256 + 20490},
        // linear on 28×28: 784·10 + 10
        {"linear", 1, 28, 28, 7850},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        dd_model *m = compute_model_create(known[i].plugin, NULL, known[i].c, known[i].h,
                                           known[i].w, 10, DD_BACKEND_REFERENCE);
        assert_non_null(m);
        if (dd_model_param_count(m) != known[i].params)
            fail_msg("%s: %zu parameters, expected %zu", known[i].plugin, dd_model_param_count(m),
                     known[i].params);
        assert_int_equal(dd_model_output_dim(m), 10);
        assert_int_equal(dd_model_input_size(m), (size_t)known[i].c * known[i].h * known[i].w);
        assert_non_null(strstr(dd_model_summary(m), "parameters"));
        dd_model_destroy(m);
    }
    // alexnet at 224: the classic 6×6×256 feature map before the classifier
    dd_model *m = compute_model_create("alexnet", NULL, 3, 224, 224, 1000, DD_BACKEND_REFERENCE);
    assert_non_null(m);
    assert_non_null(strstr(dd_model_summary(m), "linear 9216→4096"));
    assert_int_equal(dd_model_param_count(m), 61100840);
    dd_model_destroy(m);
    // linear defaults to MSE, lenet to cross-entropy
    m = compute_model_create("linear", NULL, 1, 4, 4, 3, DD_BACKEND_REFERENCE);
    assert_int_equal(dd_model_loss(m), DD_LOSS_MSE);
    dd_model_destroy(m);

    // too-small inputs are refused with the plugin's message
    const dd_component *comp = compute_model_component("alexnet");
    assert_non_null(comp);
    dd_model_config cfg = {sizeof cfg, comp, NULL, 3, 32, 32, 10, DD_BACKEND_REFERENCE};
    dd_model *bad = NULL;
    assert_int_equal(dd_model_create(&cfg, &bad), DD_ERR_INVALID);
    assert_null(bad);
    assert_non_null(strstr(dd_error_message(), "63×63"));
    comp = compute_model_component("convnet");
    cfg.plugin = comp;
    cfg.height = cfg.width = 4;
    assert_int_equal(dd_model_create(&cfg, &bad), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "convnet"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_shapes),
        cmocka_unit_test(test_hvp_fd_reference),
        cmocka_unit_test(test_hvp_fd_onednn),
        cmocka_unit_test(test_onednn_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
