/* Tests of the sequential model plugin: random layer stacks (every kind in at
 * least three, seeded) against central differences on both backends (loss
 * along v vs g·v, H·v, ∇_x⟨g,v⟩, ∇_y⟨g,v⟩), a LeNet written as a layer list
 * against the lenet plugin (parameter count, loss and gradients for the same
 * θ), errors at the layer's line:col when a pipeline is validated, and the
 * vocabulary in `distill plugins --describe sequential`. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "distill/distill.h"
#include "distill/host.h"
#include "compute_fd.h"
#include "compute_util.h"
#include "run/pipeline.h"

/* ---- random stacks --------------------------------------------------------- */

enum { K_CONV, K_LINEAR, K_RELU, K_TANH, K_SIGMOID, K_MAX, K_AVG, K_INORM, K_LRN, K_FLAT, N_KINDS };
static const char *const kind_names[N_KINDS] = {"conv",    "linear",  "relu",    "tanh",
                                                "sigmoid", "maxpool", "avgpool", "instancenorm",
                                                "lrn",     "flatten"};

typedef struct stack {
    char text[1024]; // "layers=[...]"
    int used[N_KINDS];
} stack;

static void add(stack *s, int kind, const char *fmt, ...) {
    size_t n = strlen(s->text);
    if (s->text[n - 1] != '[') n += (size_t)snprintf(s->text + n, sizeof s->text - n, ", ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->text + n, sizeof s->text - n, fmt, ap);
    va_end(ap);
    s->used[kind]++;
}

static uint32_t below(dd_rng *r, uint32_t n) {
    return (uint32_t)dd_rng_below(r, n);
}

static void activation(stack *s, dd_rng *r) {
    int k = K_RELU + (int)below(r, 3);
    add(s, k, "%s", kind_names[k]);
}

/* A stack on 2×8×8 with 3 outputs: a spatial part (conv first, then random
 * convs, activations, pools, norms), maybe a flatten, a dense part and the
 * final {linear: 3}. Sizes stay small so a kink-free difference step exists. */
static void random_stack(uint64_t seed, stack *s) {
    memset(s, 0, sizeof *s);
    snprintf(s->text, sizeof s->text, "layers=[");
    dd_rng r = dd_rng_make(seed, 1);
    int h = 8;
    add(s, K_CONV, "{conv: {out: %u, kernel: 3, padding: 1}}", 2 + below(&r, 2));
    int n_spatial = 2 + (int)below(&r, 4);
    for (int i = 0; i < n_spatial; i++) {
        switch (below(&r, 6)) {
        case 0: {
            unsigned k = 1 + below(&r, 3), stride = h >= 6 && below(&r, 2) ? 2 : 1;
            unsigned pad = below(&r, k);
            add(s, K_CONV, "{conv: {out: %u, kernel: %u, stride: %u, padding: %u}}",
                2 + below(&r, 2), k, stride, pad);
            h = (h + 2 * (int)pad - (int)k) / (int)stride + 1;
            break;
        }
        case 1:
        case 2:
            activation(s, &r);
            break;
        case 3:
            if (h >= 4) {
                int k = below(&r, 2) ? K_MAX : K_AVG;
                if (below(&r, 2)) {
                    add(s, k, "{%s: 2}", kind_names[k]);
                    h /= 2;
                } else {
                    add(s, k, "{%s: {kernel: 3, stride: 1, padding: 1}}", kind_names[k]);
                }
            } else {
                activation(s, &r);
            }
            break;
        case 4:
            if (h >= 2)
                add(s, K_INORM, below(&r, 2) ? "instancenorm" : "{instancenorm: {eps: 1e-4}}");
            else
                activation(s, &r);
            break;
        case 5:
            if (below(&r, 2))
                add(s, K_LRN, "{lrn: 2}");
            else
                add(s, K_LRN, "{lrn: {size: 3, alpha: 0.01, beta: 0.75, k: 2}}");
            break;
        }
    }
    if (below(&r, 4)) add(s, K_FLAT, "flatten");
    int n_dense = (int)below(&r, 3);
    for (int i = 0; i < n_dense; i++) {
        if (below(&r, 2))
            add(s, K_LINEAR, "{linear: %u}", 3 + below(&r, 4));
        else
            add(s, K_LINEAR, "{linear: {out: %u}}", 3 + below(&r, 4));
        activation(s, &r);
    }
    add(s, K_LINEAR, "{linear: 3}");
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof s->text - n, "]");
}

// Directional derivative of the loss along v by central differences vs g·v.
static double grad_fd_error(dd_model *m, int64_t batch, uint64_t seed) {
    const size_t P = dd_model_param_count(m), X = (size_t)batch * dd_model_input_size(m);
    float *theta = dd_alloc_floats(P), *v = dd_alloc_floats(P), *tp = dd_alloc_floats(P);
    float *g = dd_alloc_floats(P), *x = dd_alloc_floats(X);
    assert_non_null(theta), assert_non_null(v), assert_non_null(tp), assert_non_null(g);
    assert_non_null(x);
    assert_int_equal(dd_model_init_params(m, theta, "xavier", 1.0f, seed), DD_OK);
    compute_fill_normal(x, X, 1.0f, seed + 1);
    compute_fill_normal(v, P, 1.0f, seed + 2);
    int32_t y[4] = {0, 2, 1, 2};
    dd_labels lab = {y, NULL};
    double loss;
    assert_int_equal(dd_model_loss_grad(m, theta, x, batch, lab, &loss, g, NULL, NULL), DD_OK);
    double gv = 0.0;
    for (size_t i = 0; i < P; i++)
        gv += (double)g[i] * v[i];
    double best = INFINITY;
    // the smallest error over a few steps: a larger step may cross a kink
    for (double eps = 1e-2; eps > 1e-4; eps /= 3) {
        double lp, lm;
        for (size_t i = 0; i < P; i++)
            tp[i] = theta[i] + (float)eps * v[i];
        assert_int_equal(dd_model_loss_grad(m, tp, x, batch, lab, &lp, NULL, NULL, NULL), DD_OK);
        for (size_t i = 0; i < P; i++)
            tp[i] = theta[i] - (float)eps * v[i];
        assert_int_equal(dd_model_loss_grad(m, tp, x, batch, lab, &lm, NULL, NULL, NULL), DD_OK);
        double fd = (lp - lm) / (2 * eps);
        double e = fabs(fd - gv) / (fabs(gv) + 1e-3);
        if (e < best) best = e;
    }
    dd_free(theta), dd_free(v), dd_free(tp), dd_free(g), dd_free(x);
    return best;
}

static void check_random_stacks(dd_backend be) {
    const char *bn = be == DD_BACKEND_ONEDNN ? "onednn" : "reference";
    int seen[N_KINDS] = {0};
    int n_stacks = 0;
    for (uint64_t seed = 1; seed < 60; seed++) {
        int done = n_stacks >= 4;
        for (int k = 0; k < N_KINDS; k++)
            done &= seen[k] >= 3;
        if (done) break;
        stack s;
        random_stack(seed, &s);
        const char *kv[] = {s.text, NULL};
        dd_model *m = compute_model_create("sequential", kv, 2, 8, 8, 3, be);
        if (!m) fail_msg("seed %llu: cannot build %s", (unsigned long long)seed, s.text);
        double ge = grad_fd_error(m, 2, 100 + seed);
        compute_hvp_errors e;
        assert_int_equal(compute_check_hvp(m, 2, (int)(seed & 1), 1e-3, 7 + seed, &e), 0);
        printf("  [%s] seed %2llu: grad %.2e Hv %.2e mixed_x %.2e mixed_y %.2e eps %.1e  %s\n", bn,
               (unsigned long long)seed, ge, e.hv, e.mixed_x, e.mixed_y, e.eps_used, s.text + 7);
        if (!e.kink_free) {
            // this stack's θ sits too close to a relu / max-pool kink: another seed
            dd_model_destroy(m);
            continue;
        }
        if (ge > 2e-2) fail_msg("[%s] %s: gradient error %.3g", bn, s.text, ge);
        assert_true(e.hv_norm > 1e-6);
        if (e.hv > 6e-2) fail_msg("[%s] %s: H·v error %.3g", bn, s.text, e.hv);
        if (e.mixed_x > 6e-2) fail_msg("[%s] %s: mixed_x error %.3g", bn, s.text, e.mixed_x);
        if ((seed & 1) && e.mixed_y > 6e-2)
            fail_msg("[%s] %s: mixed_y error %.3g", bn, s.text, e.mixed_y);
        assert_true(e.grad_match < 1e-6);
        dd_model_destroy(m);
        for (int k = 0; k < N_KINDS; k++)
            seen[k] += s.used[k] > 0;
        n_stacks++;
    }
    for (int k = 0; k < N_KINDS; k++)
        if (seen[k] < 3) fail_msg("[%s] layer %s in only %d stacks", bn, kind_names[k], seen[k]);
}

static void test_random_stacks_reference(void **state) {
    (void)state;
    check_random_stacks(DD_BACKEND_REFERENCE);
}

static void test_random_stacks_onednn(void **state) {
    (void)state;
    check_random_stacks(DD_BACKEND_ONEDNN);
}

/* ---- LeNet as a layer list ------------------------------------------------- */

static const char *const lenet_stack[] = {
    "layers=[{conv: {out: 6, kernel: 5, padding: 2}}, relu, {maxpool: 2}, {conv: {out: 16, "
    "kernel: 5}}, relu, {maxpool: 2}, flatten, {linear: 120}, relu, {linear: 84}, relu, {linear: "
    "10}]",
    NULL};

static void check_lenet(dd_backend be) {
    dd_model *a = compute_model_create("lenet", NULL, 1, 28, 28, 10, be);
    dd_model *b = compute_model_create("sequential", lenet_stack, 1, 28, 28, 10, be);
    assert_non_null(a);
    assert_non_null(b);
    const size_t P = dd_model_param_count(a), X = 3 * dd_model_input_size(a);
    assert_int_equal(P, 61706);
    assert_int_equal(dd_model_param_count(b), P);
    float *theta = dd_alloc_floats(P), *x = dd_alloc_floats(X);
    float *ga = dd_alloc_floats(P), *gb = dd_alloc_floats(P);
    float *xa = dd_alloc_floats(X), *xb = dd_alloc_floats(X);
    assert_int_equal(dd_model_init_params(a, theta, "xavier", 1.0f, 5), DD_OK);
    for (size_t i = 0; i < P; i++)
        if (theta[i] == 0.0f) theta[i] = 0.01f * (float)((i % 7) - 3);
    compute_fill_normal(x, X, 1.0f, 6);
    int32_t y[3] = {3, 9, 0};
    dd_labels lab = {y, NULL};
    double la, lb;
    assert_int_equal(dd_model_loss_grad(a, theta, x, 3, lab, &la, ga, xa, NULL), DD_OK);
    assert_int_equal(dd_model_loss_grad(b, theta, x, 3, lab, &lb, gb, xb, NULL), DD_OK);
    assert_true(la > 0.1);
    assert_true(fabs(la - lb) <= 1e-12 * fabs(la));
    assert_true(compute_rel_err(gb, ga, P, 1e-9) == 0.0);
    assert_true(compute_rel_err(xb, xa, X, 1e-9) == 0.0);
    // the same init draws: layer l uses RNG stream l in both
    float *tb = dd_alloc_floats(P);
    assert_int_equal(dd_model_init_params(b, tb, "xavier", 1.0f, 5), DD_OK);
    assert_int_equal(dd_model_init_params(a, theta, "xavier", 1.0f, 5), DD_OK);
    assert_memory_equal(tb, theta, P * sizeof *tb);
    dd_free(theta), dd_free(x), dd_free(ga), dd_free(gb), dd_free(xa), dd_free(xb), dd_free(tb);
    dd_model_destroy(a);
    dd_model_destroy(b);
}

static void test_lenet_equivalence(void **state) {
    (void)state;
    check_lenet(DD_BACKEND_REFERENCE);
    check_lenet(DD_BACKEND_ONEDNN);
}

/* ---- errors at line:col ---------------------------------------------------- */

static dd_registry *reg;

static int setup(void **state) {
    (void)state;
    return dd_registry_load(0, &reg) == DD_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    dd_registry_destroy(reg);
    return 0;
}

typedef struct bad_stack {
    const char *layers; // written on line 7 of the pipeline, after "  layers: "
    const char *at;     // the text whose first character the error points at
    const char *message;
} bad_stack;

static const bad_stack bad_stacks[] = {
    {"[{conv: {out: 4, kernel: 3}}, rel, flatten, {linear: 10}]", "rel",
     "invalid value for 'model.layers': item 1: unknown kind 'rel' (expected one of: conv, "
     "linear, relu, tanh, sigmoid, maxpool, avgpool, instancenorm, lrn, flatten)"},
    {"[{conv: {out: 4, kernel: 3, strid: 2}}, flatten, {linear: 10}]", "strid",
     "layers[0] conv: unknown key 'strid' (valid keys: out, kernel, stride, padding)"},
    {"[{conv: {out: 4}}, flatten, {linear: 10}]", "{conv", "layers[0] conv: missing key 'kernel'"},
    {"[{conv: {out: 4, kernel: 3}}, flatten, {linear: ten}]", "ten}",
     "layers[2] linear: out must be an integer, got 'ten'"},
    {"[{conv: {out: 0, kernel: 3}}, flatten, {linear: 10}]", "out",
     "layers[0] conv: out 0 is out of range [1, 65536]"},
    {"[{conv: {out: 4, kernel: 3}}, {relu: 2}, {linear: 10}]", "{relu",
     "layers[1] relu takes no arguments (write 'relu')"},
    {"[{conv: {out: 4, kernel: 3}}, {maxpool: [2]}, {linear: 10}]", "[2]",
     "invalid value for 'model.layers': item 1 (maxpool): expected a value or a mapping, got a "
     "list"},
    {"[{conv: {out: 4, kernel: 3}}, {maxpool: 2, relu: 1}, {linear: 10}]", "{maxpool",
     "invalid value for 'model.layers': item 1: expected a word or a one-key mapping ({kind: "
     "value}), got a mapping with several keys"},
    {"[{conv: {out: 8, kernel: 5, stride: 6}}, {conv: {out: 8, kernel: 5}}, {linear: 10}]",
     "{conv: {out: 8, kernel: 5}}",
     "layers[1] conv: input 8×4×4 does not fit: kernel 5 does not fit the 4×4 input (padding 0) "
     "at layer 1; use a larger input"},
    {"[{conv: {out: 4, kernel: 3}}, {maxpool: 26}, {maxpool: 2}, {linear: 10}]", "{maxpool: 2}",
     "layers[2] maxpool: input 4×1×1 does not fit: kernel 2 does not fit the 1×1 input (padding "
     "0) at layer 2; use a larger input"},
    {"[{conv: {out: 4, kernel: 3}}, flatten, {linear: 12}]", "{linear",
     "layers[2] linear: out 12, but the network must end with 10 outputs (one per class); write "
     "{linear: 10}"},
    {"[{conv: {out: 4, kernel: 3}}, relu]", "relu",
     "layers[1] relu: the network ends with 4×26×26 outputs, but it must end with 10 (one per "
     "class); end it with {linear: 10}"},
};

static void test_errors_at_line_col(void **state) {
    (void)state;
    char dir[] = "/tmp/distill-seq-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/p.yaml", dir);
    for (size_t i = 0; i < sizeof bad_stacks / sizeof *bad_stacks; i++) {
        const bad_stack *b = &bad_stacks[i];
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f,
                "name: t\ndataset:\n  plugin: mnist\n  name: mnist\nmodel:\n  plugin: "
                "sequential\n  layers: %s\n",
                b->layers);
        fclose(f);
        const char *hit = strstr(b->layers, b->at);
        assert_non_null(hit);
        char loc[300];
        snprintf(loc, sizeof loc, "%s:7:%d: ", path, (int)(hit - b->layers) + 11);
        dd_pipeline *p = NULL;
        dd_status s = dd_pipeline_load(path, NULL, reg, &p);
        if (s == DD_OK) fail_msg("%s: loaded", b->layers);
        assert_null(p);
        // the position first, then (for the plugin's errors) the model and input
        const char *msg = dd_error_message();
        if (strncmp(msg, loc, strlen(loc)) != 0 || !strstr(msg, b->message))
            fail_msg("%s:\n  got      '%s'\n  expected '%s...%s'", b->layers, msg, loc, b->message);
        if (strncmp(b->message, "invalid value", 13) != 0 &&
            !strstr(msg, "model 'sequential' (input 1×28×28): layers["))
            fail_msg("%s: no model and input in '%s'", b->layers, msg);
    }
    // the same stack is fine on a larger input (dataset.height/width are applied)
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "name: t\ndataset:\n  plugin: mnist\n  name: mnist\nmodel:\n  plugin: "
            "sequential\n  layers: %s\n",
            bad_stacks[9].layers);
    fclose(f);
    const char *sets[] = {"dataset.height=60", "dataset.width=60", NULL};
    dd_pipeline *p = NULL;
    if (dd_pipeline_load(path, sets, reg, &p) != DD_OK) fail_msg("%s", dd_error_message());
    dd_pipeline_destroy(p);
    unlink(path);
    rmdir(dir);
}

/* When the shape is only known at run time, building the model gives the
 * same message (here with the --set label for where the list came from). */
static void test_errors_at_build(void **state) {
    (void)state;
    const dd_component *c = compute_model_component("sequential");
    assert_non_null(c);
    const char *kv[] = {"layers=[{conv: {out: 4, kernel: 3}}, {maxpool: 26}, {maxpool: 2}, "
                        "{linear: 10}]",
                        NULL};
    dd_options *o = NULL;
    assert_int_equal(dd_options_from_strings(c->params, kv, &o), DD_OK);
    dd_model_config cfg = {sizeof cfg, c, o, 1, 28, 28, 10, DD_BACKEND_REFERENCE};
    dd_model *m = (dd_model *)0x1;
    assert_int_equal(dd_model_create(&cfg, &m), DD_ERR_INVALID);
    assert_null(m);
    if (!strstr(dd_error_message(), "layers[2] maxpool: input 4×1×1 does not fit: kernel 2 does "
                                    "not fit the 1×1 input"))
        fail_msg("%s", dd_error_message());
    // on a larger input the same list builds
    cfg.height = cfg.width = 60;
    assert_int_equal(dd_model_create(&cfg, &m), DD_OK);
    dd_model_destroy(m);
    // no options at all: the plugin says what it needs
    cfg.options = NULL;
    assert_int_equal(dd_model_create(&cfg, &m), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "needs 'layers'"));
    dd_options_destroy(o);
}

/* The example and the shipped pipeline validate. */
static void test_example_pipeline(void **state) {
    (void)state;
    dd_pipeline *p = NULL;
    if (dd_pipeline_load(DD_TEST_SOURCE_DIR "/pipelines/fashion-mnist-sequential.yaml", NULL, reg,
                         &p) != DD_OK)
        fail_msg("%s", dd_error_message());
    dd_pipeline_destroy(p);
    const char *kv[] = {"layers=[{conv: {out: 32, kernel: 3, padding: 1}}, relu, {maxpool: 2}, "
                        "{conv: {out: 64, kernel: 3, padding: 1}}, relu, {maxpool: 2}, flatten, "
                        "{linear: 128}, relu, {linear: 10}]",
                        NULL};
    dd_model *m = compute_model_create("sequential", kv, 1, 28, 28, 10, DD_BACKEND_REFERENCE);
    assert_non_null(m);
    // 320 + 18496 + 3136·128 + 128 + 1290
    assert_int_equal(dd_model_param_count(m), 320 + 18496 + 401536 + 1290);
    dd_model_destroy(m);
}

static void test_describe(void **state) {
    (void)state;
    FILE *f = popen(DD_TEST_CLI " plugins --describe sequential", "r");
    assert_non_null(f);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    assert_int_equal(pclose(f), 0);
    static const char *const words[] = {
        "layers",       "{conv: {out: N, kernel: K, stride: 1, padding: 0}}",
        "{linear: N}",  "relu",
        "tanh",         "sigmoid",
        "{maxpool: K}", "avgpool",
        "instancenorm", "{lrn: N}",
        "flatten"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strstr(buf, words[i])) fail_msg("describe lacks '%s':\n%s", words[i], buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lenet_equivalence),
        cmocka_unit_test(test_random_stacks_reference),
        cmocka_unit_test(test_random_stacks_onednn),
        cmocka_unit_test(test_errors_at_line_col),
        cmocka_unit_test(test_errors_at_build),
        cmocka_unit_test(test_example_pipeline),
        cmocka_unit_test(test_describe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
