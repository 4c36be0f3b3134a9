/* Tests of the distillation engine: the full hypergradient (pixels, step
 * sizes, soft labels) against central differences of the unrolled loss, the
 * paper's linear case, checkpoint/resume, NaN detection, cancellation, the
 * distilled set's files, baselines, and a tiny end-to-end distillation.
 * Models are built from components defined here; the objective is the real
 * classification plugin. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <omp.h>

#include "distill/host.h"
#include "engine/baselines.h"
#include "engine/checkpoint.h"
#include "distill/distill.h"
#include "engine/engine.h"
#include "engine/evaluate.h"

/* ---- fixtures: models, objective, data ---------------------------------- */

static dd_status build_linear(dd_graph *g, const dd_options *o, int c, int h, int w, int n_out) {
    return dd_graph_linear(g, n_out);
}

static dd_status build_linear_mse(dd_graph *g, const dd_options *o, int c, int h, int w,
                                  int n_out) {
    dd_graph_set_loss(g, DD_LOSS_MSE);
    return dd_graph_linear(g, n_out);
}

/* conv → relu → maxpool → conv → tanh → linear: every op kind of LeNet
 * plus a smooth nonlinearity, on a 1×6×6 input. */
static dd_status build_tiny_conv(dd_graph *g, const dd_options *o, int c, int h, int w, int n_out) {
    DD_TRY(dd_graph_conv2d(g, 3, 3, 1, 1));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_maxpool(g, 2, 2, 0));
    DD_TRY(dd_graph_conv2d(g, 4, 2, 1, 0));
    DD_TRY(dd_graph_tanh(g));
    return dd_graph_linear(g, n_out);
}

static const dd_model_ops linear_ops = {sizeof(dd_model_ops), build_linear, "xavier", {0}};
static const dd_model_ops linear_mse_ops = {sizeof(dd_model_ops), build_linear_mse, "xavier", {0}};
static const dd_model_ops tiny_conv_ops = {sizeof(dd_model_ops), build_tiny_conv, "xavier", {0}};
static const dd_component linear_comp = {
    sizeof(dd_component), DD_COMPONENT_MODEL, "t-linear", "test linear", NULL, &linear_ops, {0}};
static const dd_component linear_mse_comp = {sizeof(dd_component),
                                             DD_COMPONENT_MODEL,
                                             "t-linear-mse",
                                             "test linear regression",
                                             NULL,
                                             &linear_mse_ops,
                                             {0}};
static const dd_component tiny_conv_comp = {
    sizeof(dd_component), DD_COMPONENT_MODEL, "t-conv", "test conv", NULL, &tiny_conv_ops, {0}};

static dd_model *make_model(const dd_component *comp, int c, int h, int w, int n_out) {
    dd_model_config cfg = {sizeof cfg, comp, NULL, c, h, w, n_out, DD_BACKEND_REFERENCE};
    dd_model *m = NULL;
    dd_status s = dd_model_create(&cfg, &m);
    if (s != DD_OK) fprintf(stderr, "dd_model_create: %s\n", dd_error_message());
    assert_int_equal(s, DD_OK);
    return m;
}

/* The classification objective, loaded from the built plugin. */
static void *g_cls_handle;
static const dd_component *g_cls;

static const dd_component *classification(void) {
    if (g_cls) return g_cls;
    const char *dir = getenv("DISTILL_PLUGIN_PATH");
    char path[4096];
    snprintf(path, sizeof path, "%s/classification.so", dir ? dir : ".");
    g_cls_handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!g_cls_handle) fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    assert_non_null(g_cls_handle);
    dd_plugin_entry_fn entry = (dd_plugin_entry_fn)dlsym(g_cls_handle, DD_PLUGIN_ENTRY_SYMBOL);
    assert_non_null(entry);
    const dd_plugin_descriptor *d = entry();
    assert_int_equal(d->n_components, 1);
    g_cls = &d->components[0];
    assert_string_equal(g_cls->name, "classification");
    return g_cls;
}

/* A regression objective: 0.5 · mean ||z − t_i||² with t_i = targets[label].
 * Labels of the real data are sample indices into the target table. */
typedef struct reg_state {
    const float *targets;
} reg_state;

static const float *g_reg_targets;

static dd_status reg_create(const dd_options *o, const dd_objective_info *info, void **state) {
    reg_state *s = malloc(sizeof *s);
    if (!s) return DD_ERR_NOMEM;
    s->targets = g_reg_targets;
    *state = s;
    return DD_OK;
}

static dd_status reg_loss(void *state, const float *z, const int32_t *lab, int64_t b, int k,
                          double *loss, float *dz) {
    const reg_state *s = state;
    double tot = 0;
    for (int64_t i = 0; i < b; i++) {
        for (int j = 0; j < k; j++) {
            double r = (double)z[i * k + j] - s->targets[(size_t)lab[i] * k + j];
            tot += 0.5 * r * r;
            if (dz) dz[i * k + j] = (float)(r / (double)b);
        }
    }
    *loss = tot / (double)b;
    return DD_OK;
}

static dd_status reg_metrics(void *state, const float *z, const int32_t *lab, int64_t b, int k,
                             double *num, double *den) {
    double l;
    reg_loss(state, z, lab, b, k, &l, NULL);
    num[0] += l * (double)b;
    den[0] += (double)b;
    return DD_OK;
}

static const char *const reg_metric_names[] = {"mse", NULL};
static const dd_objective_ops reg_ops = {.struct_size = sizeof(dd_objective_ops),
                                         .create = reg_create,
                                         .destroy = free,
                                         .outer_loss = reg_loss,
                                         .metric_names = reg_metric_names,
                                         .metrics = reg_metrics};
static const dd_component reg_comp = {sizeof(dd_component),
                                      DD_COMPONENT_OBJECTIVE,
                                      "t-regress",
                                      "test regression",
                                      NULL,
                                      &reg_ops,
                                      {0}};

/* An objective judged against θ0 (outer_loss_ref): each logit should sit
 * at its θ0 value plus ANCHOR_SHIFT on the true class,
 * L = mean_i ½ Σ_j (z_ij − z0_ij − shift·[j = y_i])². Without θ0 (test-set
 * losses) z0 is taken as 0. */
#define ANCHOR_SHIFT 0.5
static dd_status anchor_create(const dd_options *o, const dd_objective_info *info, void **state) {
    (void)o;
    (void)info;
    *state = NULL;
    return DD_OK;
}

static dd_status anchor_loss_ref(void *state, const float *z, const float *z0, const int32_t *lab,
                                 int64_t b, int k, double *loss, float *dz) {
    (void)state;
    double tot = 0;
    for (int64_t i = 0; i < b; i++) {
        for (int j = 0; j < k; j++) {
            const double r = (double)z[i * k + j] - (z0 ? (double)z0[i * k + j] : 0.0) -
                             (j == lab[i] ? ANCHOR_SHIFT : 0.0);
            tot += 0.5 * r * r;
            if (dz) dz[i * k + j] = (float)(r / (double)b);
        }
    }
    *loss = tot / (double)b;
    return DD_OK;
}

static dd_status anchor_loss(void *state, const float *z, const int32_t *lab, int64_t b, int k,
                             double *loss, float *dz) {
    return anchor_loss_ref(state, z, NULL, lab, b, k, loss, dz);
}

static dd_status anchor_metrics(void *state, const float *z, const int32_t *lab, int64_t b, int k,
                                double *num, double *den) {
    double l;
    anchor_loss(state, z, lab, b, k, &l, NULL);
    num[0] += l * (double)b;
    den[0] += (double)b;
    return DD_OK;
}

static const dd_objective_ops anchor_ops = {.struct_size = sizeof(dd_objective_ops),
                                            .create = anchor_create,
                                            .outer_loss = anchor_loss,
                                            .metric_names = reg_metric_names,
                                            .metrics = anchor_metrics,
                                            .outer_loss_ref = anchor_loss_ref};
static const dd_component anchor_comp = {sizeof(dd_component),
                                         DD_COMPONENT_OBJECTIVE,
                                         "t-anchor",
                                         "test objective relative to θ0",
                                         NULL,
                                         &anchor_ops,
                                         {0}};

/* Pixels of a float32 test dataset. */
#define PX(d) ((float *)(d)->pixels)

/* Test datasets are allocated here (not with dd_dataset_create) so that the
 * engine is tested on exactly the fields it reads. */
static char *g_names[8] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"};

static dd_dataset *blobs_alloc(int n, int c, int h, int w, int k) {
    dd_dataset *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->name = "blobs";
    d->n = n;
    d->channels = c;
    d->height = h;
    d->width = w;
    d->n_classes = k;
    d->dtype = DD_DTYPE_F32;
    d->pixels = calloc((size_t)n * c * h * w, sizeof(float));
    d->labels = calloc((size_t)n, sizeof(int32_t));
    d->class_names = g_names;
    for (int i = 0; i < DD_MAX_CHANNELS; i++)
        d->std[i] = 1.f;
    assert_non_null(d->pixels);
    assert_non_null(d->labels);
    return d;
}

static void blobs_free(dd_dataset *d) {
    free(d->pixels);
    free(d->labels);
    free(d);
}

/* Synthetic classification data: class c is prototype_c + noise·N(0,1). */
static dd_dataset *make_blobs(int n, int k, int c, int h, int w, float noise, uint64_t seed,
                              uint64_t proto_seed) {
    dd_dataset *d = blobs_alloc(n, c, h, w, k);
    size_t D = (size_t)c * h * w;
    float *proto = malloc((size_t)k * D * sizeof *proto);
    assert_non_null(proto);
    dd_rng pr = dd_rng_make(proto_seed, 7);
    dd_rng_normal(&pr, proto, (size_t)k * D, 0.f, 1.f);
    dd_rng r = dd_rng_make(seed, 9);
    for (int i = 0; i < n; i++) {
        int y = i % k;
        d->labels[i] = y;
        dd_rng_normal(&r, PX(d) + (size_t)i * D, D, 0.f, noise);
        for (size_t j = 0; j < D; j++)
            PX(d)[(size_t)i * D + j] += proto[(size_t)y * D + j];
    }
    free(proto);
    return d;
}

static char g_tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    if (!g_tmpdir[0]) {
        snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_engine.XXXXXX");
        assert_non_null(mkdtemp(g_tmpdir));
    }
    snprintf(buf, sizeof buf, "%s/%s", g_tmpdir, name);
    return buf;
}

/* ---- hypergradient vs central differences ------------------------------- */

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Directional derivative of the unrolled loss along u (on `param`), by
 * central differences with step h. */
static double fd_dir(dd_engine *e, const float *th0, const dd_dataset *real, float *param,
                     const float *u, size_t n, double h) {
    float *save = malloc(n * sizeof *save);
    assert_non_null(save);
    memcpy(save, param, n * sizeof *save);
    double lp, lm;
    for (size_t i = 0; i < n; i++)
        param[i] = save[i] + (float)h * u[i];
    assert_int_equal(dd_engine_unrolled_loss(e, th0, PX(real), real->labels, real->n, &lp, NULL),
                     DD_OK);
    for (size_t i = 0; i < n; i++)
        param[i] = save[i] - (float)h * u[i];
    assert_int_equal(dd_engine_unrolled_loss(e, th0, PX(real), real->labels, real->n, &lm, NULL),
                     DD_OK);
    memcpy(param, save, n * sizeof *save);
    free(save);
    return (lp - lm) / (2.0 * h);
}

/* Checks ⟨g, u⟩ against FD along random directions u, and single
 * coordinates where |g| is largest. */
static void check_param(const char *what, dd_engine *e, const float *th0, const dd_dataset *real,
                        float *param, const float *grad, size_t n, double h, double tol,
                        uint64_t seed) {
    float *u = calloc(n, sizeof *u);
    assert_non_null(u);
    dd_rng r = dd_rng_make(seed, 77);
    double gnorm = sqrt(dot(grad, grad, n));
    assert_true(gnorm > 0);
    for (int t = 0; t < 3; t++) {
        dd_rng_normal(&r, u, n, 0.f, 1.f);
        double un = sqrt(dot(u, u, n));
        for (size_t i = 0; i < n; i++)
            u[i] = (float)(u[i] / un);
        double an = dot(grad, u, n), fd = fd_dir(e, th0, real, param, u, n, h);
        double err = fabs(an - fd) / (fabs(an) + 1e-3 * gnorm);
        printf("  %-8s dir %d: analytic %+.6e  fd %+.6e  rel.err %.2e\n", what, t, an, fd, err);
        assert_true(err < tol);
    }
    // The three largest coordinates.
    char *used = calloc(n, 1);
    assert_non_null(used);
    for (int t = 0; t < 3 && (size_t)t < n; t++) {
        size_t best = 0;
        double bv = -1;
        for (size_t i = 0; i < n; i++) {
            if (!used[i] && fabs(grad[i]) > bv) {
                bv = fabs(grad[i]);
                best = i;
            }
        }
        used[best] = 1;
        memset(u, 0, n * sizeof *u);
        u[best] = 1.f;
        double fd = fd_dir(e, th0, real, param, u, n, h);
        double err = fabs(grad[best] - fd) / (fabs(grad[best]) + 1e-3 * gnorm);
        printf("  %-8s [%zu]: analytic %+.6e  fd %+.6e  rel.err %.2e\n", what, best,
               (double)grad[best], fd, err);
        assert_true(err < tol);
    }
    free(used);
    free(u);
}

static void hypergrad_fd(const dd_component *comp, const dd_component *objective, int learn_labels,
                         uint64_t seed) {
    const int K = 3, C = 1, H = 6, W = 6;
    dd_dataset *real = make_blobs(24, K, C, H, W, 0.8f, seed, 5);
    dd_model *m = make_model(comp, C, H, W, K);
    dd_objective_handle obj;
    assert_int_equal(
        dd_objective_handle_init(&obj, objective ? objective : classification(), NULL, real),
        DD_OK);
    dd_distill_config cfg;
    assert_int_equal(dd_distill_config_from_defaults(&cfg), DD_OK);
    cfg.steps = 3;
    cfg.epochs = 2;
    cfg.images_per_class = 1;
    cfg.batch_real = real->n;
    cfg.lr_init = 0.3;
    cfg.seed = seed;
    cfg.learn_labels = learn_labels;
    dd_engine *e;
    assert_int_equal(dd_engine_create(m, &obj, real, &cfg, &e), DD_OK);
    // Distinct step sizes so that a mix-up of k would show.
    float *raw = dd_engine_raw_lrs(e);
    for (int k = 0; k < 6; k++)
        raw[k] = dd_lr_to_raw(0.15f + 0.05f * (float)k);
    if (learn_labels) {
        float *soft = dd_engine_soft_labels(e);
        dd_rng r = dd_rng_make(seed, 3);
        for (int i = 0; i < 3 * K * K; i++)
            soft[i] = 0.2f + 0.6f * (float)(dd_rng_u64(&r) % 1000) / 1000.f;
    }
    const float *th0 = dd_engine_theta0(e);
    assert_non_null(th0);
    const size_t np = (size_t)3 * K * C * H * W;
    float *gp = calloc(np, sizeof *gp), *gr = calloc(6, sizeof *gr);
    float *gl = calloc((size_t)3 * K * K, sizeof *gl);
    double loss, acc;
    assert_int_equal(dd_engine_hypergradient(e, th0, PX(real), real->labels, real->n, &loss, &acc,
                                             gp, gr, learn_labels ? gl : NULL),
                     DD_OK);
    double l2;
    assert_int_equal(dd_engine_unrolled_loss(e, th0, PX(real), real->labels, real->n, &l2, NULL),
                     DD_OK);
    assert_true(fabs(loss - l2) < 1e-6 * (1 + fabs(loss)));
    printf("%s: loss %.6f acc %.3f\n", comp->name, loss, acc);
    // ReLU and max-pool kinks: keep the steps small enough not to cross one.
    const double h = comp == &linear_comp ? 1e-2 : 2e-3;
    check_param("pixels", e, th0, real, dd_engine_pixels(e), gp, np, h, 2e-2, seed);
    check_param("raw_lrs", e, th0, real, raw, gr, 6, h, 2e-2, seed + 1);
    if (learn_labels)
        check_param("labels", e, th0, real, dd_engine_soft_labels(e), gl, (size_t)3 * K * K, h,
                    2e-2, seed + 2);
    free(gp);
    free(gr);
    free(gl);
    dd_engine_destroy(e);
    dd_objective_handle_release(&obj);
    dd_model_destroy(m);
    blobs_free(real);
}

static void test_hypergrad_linear(void **st) {
    hypergrad_fd(&linear_comp, NULL, 0, 11);
}

static void test_hypergrad_linear_soft_labels(void **st) {
    hypergrad_fd(&linear_comp, NULL, 1, 12);
}

static void test_hypergrad_conv(void **st) {
    hypergrad_fd(&tiny_conv_comp, NULL, 0, 13);
}

/* An objective with outer_loss_ref: the engine hands it the real batch's
 * logits at θ0 (a constant of the distilled data), and the hypergradient
 * still matches differences of the unrolled loss. Had the engine passed
 * logits that move with the pixels (e.g. at θ_K), the two would differ. */
static void test_hypergrad_reference_logits(void **st) {
    (void)st;
    // The linear model: no ReLU whose switching would make the unrolled loss
    // jump under this quadratic loss's larger steps.
    hypergrad_fd(&linear_comp, &anchor_comp, 0, 14);
    // With (almost) zero step sizes θ_K = θ0, so z = z0 and the loss is
    // exactly ½ shift² per sample: the logits0 the engine passes are θ0's.
    const int K = 3;
    dd_dataset *real = make_blobs(24, K, 1, 6, 6, 0.8f, 14, 5);
    dd_model *m = make_model(&tiny_conv_comp, 1, 6, 6, K);
    dd_objective_handle obj;
    assert_int_equal(dd_objective_handle_init(&obj, &anchor_comp, NULL, real), DD_OK);
    dd_distill_config cfg;
    assert_int_equal(dd_distill_config_from_defaults(&cfg), DD_OK);
    cfg.steps = 2;
    cfg.epochs = 1;
    cfg.batch_real = real->n;
    cfg.seed = 14;
    dd_engine *e;
    assert_int_equal(dd_engine_create(m, &obj, real, &cfg, &e), DD_OK);
    for (int k = 0; k < 2; k++)
        dd_engine_raw_lrs(e)[k] = -60.f; // softplus(-60) ≈ 1e-26
    double loss;
    assert_int_equal(dd_engine_unrolled_loss(e, dd_engine_theta0(e), PX(real), real->labels,
                                             real->n, &loss, NULL),
                     DD_OK);
    assert_true(fabs(loss - 0.5 * ANCHOR_SHIFT * ANCHOR_SHIFT) < 1e-6);
    dd_engine_destroy(e);
    dd_objective_handle_release(&obj);
    dd_model_destroy(m);
    blobs_free(real);
}

/* ---- threads: the same hypergradient on any number of workers ---------- */

/* The hypergradient of one fixed θ0 with `threads` workers and real slices
 * of `chunk` images (0: the engine's choice). */
static void hypergrad_with(const dd_component *objective, int threads, int64_t chunk, float *gp,
                           float *gr, double *loss) {
    const int K = 3;
    dd_dataset *real = make_blobs(40, K, 1, 6, 6, 0.8f, 31, 5);
    dd_model *m = make_model(&tiny_conv_comp, 1, 6, 6, K);
    dd_objective_handle obj;
    assert_int_equal(dd_objective_handle_init(&obj, objective, NULL, real), DD_OK);
    dd_distill_config cfg;
    assert_int_equal(dd_distill_config_from_defaults(&cfg), DD_OK);
    cfg.steps = 3;
    cfg.epochs = 2;
    cfg.images_per_class = 3; // 9 images a step: uneven ranges on 2 and 4 workers
    cfg.batch_real = real->n;
    cfg.lr_init = 0.2;
    cfg.seed = 31;
    cfg.nthreads = threads;
    cfg.real_chunk = chunk;
    dd_engine *e;
    assert_int_equal(dd_engine_create(m, &obj, real, &cfg, &e), DD_OK);
    double acc;
    assert_int_equal(dd_engine_hypergradient(e, dd_engine_theta0(e), PX(real), real->labels,
                                             real->n, loss, &acc, gp, gr, NULL),
                     DD_OK);
    dd_engine_destroy(e);
    dd_objective_handle_release(&obj);
    dd_model_destroy(m);
    blobs_free(real);
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double scale = 0, diff = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs((double)a[i]));
        diff = fmax(diff, fabs((double)a[i] - (double)b[i]));
    }
    return diff / scale;
}

/* Workers split each step's images and the real batch; the results differ
 * from one worker's only by the order float sums are taken in. The bound:
 * each element is a sum of a few dozen float products per step over 6
 * steps, so differences of order 10 × 6 × 2^-24 · cond (measured: below
 * 1e-6); 1e-5 leaves room for the conditioning of the reverse pass and
 * still catches a dropped or doubled chunk (an error of order 1/9 or more). */
static void test_threads_same_hypergradient(void **st) {
    (void)st;
    const size_t np = (size_t)3 * 9 * 36;
    const dd_component *objectives[] = {classification(), &anchor_comp};
    for (int o = 0; o < 2; o++) {
        float *gp1 = calloc(np, sizeof *gp1), *gpt = calloc(np, sizeof *gpt);
        float gr1[6], grt[6];
        double l1, lt;
        hypergrad_with(objectives[o], 1, 0, gp1, gr1, &l1);
        const int threads[] = {2, 3, 4, 1};
        const int64_t chunks[] = {0, 0, 7, 7};
        for (int t = 0; t < 4; t++) {
            hypergrad_with(objectives[o], threads[t], chunks[t], gpt, grt, &lt);
            double dp = max_rel_diff(gp1, gpt, np), dr = max_rel_diff(gr1, grt, 6);
            printf("  %s, %d thread(s), real_chunk %lld: loss %.9f vs %.9f, pixels %.2e, lrs "
                   "%.2e\n",
                   objectives[o]->name, threads[t], (long long)chunks[t], l1, lt, dp, dr);
            assert_true(fabs(l1 - lt) <= 1e-6 * fabs(l1));
            assert_true(dp < 1e-5);
            assert_true(dr < 1e-5);
        }
        free(gp1);
        free(gpt);
    }
}

/* ---- the paper's linear case (§3.3) ------------------------------------ */

/* Linear regression y = w·x + b with squared loss in `feat` features: one GD
 * step on M learned points (learned targets and step size) from random θ0.
 * With the bias, the parameter space has feat + 1 dimensions and xavier
 * draws only w at random, so M ≥ feat + 1 points can map every θ0 to the
 * least-squares optimum, and M < feat cannot (the component of θ0 outside
 * the span of the M points survives the step). Returns the mean unrolled
 * loss over fresh held-out θ0. */
static double linear_case(int feat, int M, int iters) {
    const int N = 64;
    dd_dataset real = {0};
    real.n = N;
    real.channels = feat;
    real.height = real.width = 1;
    real.n_classes = 1;
    char *names[1] = {"y"};
    real.class_names = names;
    real.dtype = DD_DTYPE_F32;
    real.pixels = calloc((size_t)N * feat, sizeof(float));
    real.labels = calloc(N, sizeof(int32_t));
    float *targets = calloc(N, sizeof(float));
    dd_rng r = dd_rng_make(99, 1);
    dd_rng_normal(&r, PX(&real), (size_t)N * feat, 0.f, 1.f);
    float wstar[16];
    dd_rng_normal(&r, wstar, (size_t)feat, 0.f, 1.f);
    for (int i = 0; i < N; i++) {
        real.labels[i] = i;
        double t = 0.7; // bias of the optimum
        for (int j = 0; j < feat; j++)
            t += wstar[j] * PX(&real)[(size_t)i * feat + j];
        targets[i] = (float)t;
    }
    g_reg_targets = targets;
    dd_model *m = make_model(&linear_mse_comp, feat, 1, 1, 1);
    dd_objective_handle obj;
    assert_int_equal(dd_objective_handle_init(&obj, &reg_comp, NULL, &real), DD_OK);
    dd_distill_config cfg;
    assert_int_equal(dd_distill_config_from_defaults(&cfg), DD_OK);
    cfg.steps = 1;
    cfg.epochs = 1;
    cfg.images_per_class = M;
    cfg.batch_real = N;
    cfg.iterations = iters;
    cfg.lr_init = 0.1;
    cfg.init_mode = DD_INIT_RANDOM;
    cfg.nets_per_iteration = 8;
    cfg.learn_labels = 1;
    cfg.opt_lr = 0.02;
    cfg.opt_lr_lrs = cfg.opt_lr; // the step sizes at the pixels' rate, as tuned
    cfg.beta1 = 0.9;
    cfg.decay_every = iters / 3;
    cfg.seed = 5;
    dd_engine *e;
    assert_int_equal(dd_engine_create(m, &obj, &real, &cfg, &e), DD_OK);
    {
        // Targets start from N(0,1) rather than the (meaningless) one-hot.
        dd_rng t = dd_rng_make(3, 3);
        dd_rng_normal(&t, dd_engine_soft_labels(e), (size_t)M, 0.f, 1.f);
    }
    dd_status s = dd_engine_run(e);
    if (s != DD_OK) fprintf(stderr, "%s\n", dd_error_message());
    assert_int_equal(s, DD_OK);
    float *th = calloc(dd_model_param_count(m), sizeof(float));
    double mean = 0;
    for (int n = 0; n < 20; n++) {
        assert_int_equal(dd_model_init_params(m, th, "xavier", 1.f, 1000 + n), DD_OK);
        double l;
        assert_int_equal(dd_engine_unrolled_loss(e, th, PX(&real), real.labels, N, &l, NULL),
                         DD_OK);
        mean += l / 20;
    }
    printf("linear case: %d features, M = %d points: held-out loss %.3e (lr %.4f)\n", feat, M, mean,
           (double)dd_lr_from_raw(dd_engine_raw_lrs(e)[0]));
    free(th);
    dd_engine_destroy(e);
    dd_objective_handle_release(&obj);
    dd_model_destroy(m);
    free(real.pixels);
    free(real.labels);
    free(targets);
    return mean;
}

static void test_linear_case(void **st) {
    const int feat = 4;
    double enough = linear_case(feat, feat + 1, 3000);
    double too_few = linear_case(feat, feat - 1, 3000);
    assert_true(enough < 1e-3);
    assert_true(too_few > 0.05);
    assert_true(too_few > 100 * enough);
}

/* ---- checkpoints, resume, NaN ------------------------------------------- */

typedef struct small_run {
    dd_dataset *train;
    dd_model *m;
    dd_objective_handle obj;
    dd_distill_config cfg;
} small_run;

static void small_setup(small_run *r, dd_init_mode mode) {
    r->train = make_blobs(60, 3, 1, 6, 6, 1.0f, 21, 22);
    r->m = make_model(&tiny_conv_comp, 1, 6, 6, 3);
    assert_int_equal(dd_objective_handle_init(&r->obj, classification(), NULL, r->train), DD_OK);
    assert_int_equal(dd_distill_config_from_defaults(&r->cfg), DD_OK);
    r->cfg.steps = 2;
    r->cfg.epochs = 2;
    r->cfg.batch_real = 16;
    r->cfg.iterations = 8;
    r->cfg.lr_init = 0.1;
    r->cfg.init_mode = mode;
    r->cfg.nets_per_iteration = 2;
    r->cfg.decay_every = 3;
    r->cfg.seed = 4;
}

static void small_teardown(small_run *r) {
    dd_objective_handle_release(&r->obj);
    dd_model_destroy(r->m);
    blobs_free(r->train);
}

/* Random init, several networks per iteration: each network is computed
 * alone and they are added in order, so any thread count gives the same
 * bits. */
static void test_threads_random_bit_identical(void **st) {
    (void)st;
    const size_t np = (size_t)2 * 3 * 36;
    float *ref = calloc(np, sizeof *ref);
    float ref_raw[4];
    for (int threads = 1; threads <= 3; threads++) {
        small_run r;
        small_setup(&r, DD_INIT_RANDOM);
        r.cfg.nets_per_iteration = 4;
        r.cfg.iterations = 3;
        r.cfg.nthreads = threads;
        dd_engine *e;
        assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &r.cfg, &e), DD_OK);
        assert_int_equal(dd_engine_run(e), DD_OK);
        if (threads == 1) {
            memcpy(ref, dd_engine_pixels(e), np * sizeof *ref);
            memcpy(ref_raw, dd_engine_raw_lrs(e), sizeof ref_raw);
        } else {
            assert_memory_equal(ref, dd_engine_pixels(e), np * sizeof *ref);
            assert_memory_equal(ref_raw, dd_engine_raw_lrs(e), sizeof ref_raw);
        }
        dd_engine_destroy(e);
        small_teardown(&r);
    }
    free(ref);
}

static void resume_case(dd_init_mode mode) {
    small_run r;
    small_setup(&r, mode);
    const size_t np = (size_t)2 * 3 * 36;
    // Uninterrupted.
    dd_engine *a;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &r.cfg, &a), DD_OK);
    assert_int_equal(dd_engine_run(a), DD_OK);
    // Half, checkpoint, then a fresh engine resumes.
    char ck[512];
    snprintf(ck, sizeof ck, "%s", tmp_path(mode == DD_INIT_FIXED ? "fixed.ckpt" : "random.ckpt"));
    dd_distill_config half = r.cfg;
    half.iterations = 4;
    half.checkpoint_path = ck;
    dd_engine *b;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &half, &b), DD_OK);
    assert_int_equal(dd_engine_run(b), DD_OK);
    dd_engine_destroy(b);
    dd_distill_config rest = r.cfg;
    rest.checkpoint_path = ck;
    rest.resume = 1;
    rest.seed = r.cfg.seed;
    dd_engine *c;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &rest, &c), DD_OK);
    // Scramble c's fresh state: everything must come from the checkpoint.
    dd_engine_pixels(c)[0] += 1.f;
    assert_int_equal(dd_engine_run(c), DD_OK);
    assert_int_equal(dd_engine_stats(c)->iterations, 8);
    assert_memory_equal(dd_engine_pixels(a), dd_engine_pixels(c), np * sizeof(float));
    assert_memory_equal(dd_engine_raw_lrs(a), dd_engine_raw_lrs(c), 4 * sizeof(float));
    assert_memory_equal(dd_engine_stats(a)->loss_history, dd_engine_stats(c)->loss_history,
                        8 * sizeof(double));
    // The step sizes after each iteration (the report's curves) too: row 7
    // is the final step sizes.
    const float *lh = dd_engine_stats(c)->lr_history;
    assert_memory_equal(dd_engine_stats(a)->lr_history, lh, 8 * 4 * sizeof(float));
    for (int k = 0; k < 4; k++)
        assert_float_equal(lh[7 * 4 + k], dd_lr_from_raw(dd_engine_raw_lrs(c)[k]), 0);
    assert_true(lh[0] != lh[7 * 4]);
    // And the run really learned something (the state moved).
    dd_engine *fresh;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &r.cfg, &fresh), DD_OK);
    assert_memory_not_equal(dd_engine_pixels(a), dd_engine_pixels(fresh), np * sizeof(float));
    dd_engine_destroy(fresh);
    // A checkpoint of another configuration is refused with a clear message.
    dd_distill_config other = rest;
    other.steps = 3;
    dd_engine *d;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &other, &d), DD_OK);
    assert_int_equal(dd_engine_run(d), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "steps"));
    dd_engine_destroy(d);
    dd_engine_destroy(a);
    dd_engine_destroy(c);
    small_teardown(&r);
}

static void test_resume_fixed(void **st) {
    resume_case(DD_INIT_FIXED);
}

static void test_resume_random(void **st) {
    resume_case(DD_INIT_RANDOM);
}

/* A checkpoint written before the step sizes were recorded per iteration
 * (no 'lr_history' record) still resumes: those iterations' entries are NaN,
 * the later ones are recorded, and the learned state is the same. */
static void test_resume_without_lr_history(void **st) {
    small_run r;
    small_setup(&r, DD_INIT_FIXED);
    char ck[512], old[512];
    snprintf(ck, sizeof ck, "%s", tmp_path("new.ckpt"));
    snprintf(old, sizeof old, "%s", tmp_path("old.ckpt"));
    dd_distill_config half = r.cfg;
    half.iterations = 4;
    half.checkpoint_path = ck;
    dd_engine *b;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &half, &b), DD_OK);
    assert_int_equal(dd_engine_run(b), DD_OK);
    dd_engine_destroy(b);
    // The same checkpoint without the record, as an older build wrote it.
    static const char *const tags[] = {"signature", "counters", "seconds", "pixels",
                                       "pixels.m",  "pixels.v", "raw_lrs", "raw_lrs.m",
                                       "raw_lrs.v", "theta0",   "loss",    "metric"};
    dd_ckpt *c;
    assert_int_equal(dd_ckpt_read(ck, &c), DD_OK);
    dd_ckpt_writer *w;
    assert_int_equal(dd_ckpt_writer_create(&w), DD_OK);
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        const void *p;
        size_t n;
        assert_int_equal(dd_ckpt_get(c, tags[i], &p, &n), DD_OK);
        assert_int_equal(dd_ckpt_writer_add(w, tags[i], p, n), DD_OK);
    }
    assert_int_equal(dd_ckpt_writer_commit(w, old), DD_OK);
    dd_ckpt_writer_destroy(w);
    dd_ckpt_destroy(c);
    dd_distill_config rest = r.cfg;
    rest.resume = 1;
    dd_engine *from_new, *from_old;
    rest.checkpoint_path = ck;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &rest, &from_new), DD_OK);
    assert_int_equal(dd_engine_run(from_new), DD_OK);
    rest.checkpoint_path = old;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &rest, &from_old), DD_OK);
    assert_int_equal(dd_engine_run(from_old), DD_OK);
    assert_memory_equal(dd_engine_raw_lrs(from_new), dd_engine_raw_lrs(from_old),
                        4 * sizeof(float));
    const float *hn = dd_engine_stats(from_new)->lr_history;
    const float *ho = dd_engine_stats(from_old)->lr_history;
    for (int i = 0; i < 8 * 4; i++) {
        if (i < 4 * 4) {
            assert_true(isnan(ho[i]));
            assert_false(isnan(hn[i]));
        } else {
            assert_float_equal(ho[i], hn[i], 0);
        }
    }
    dd_engine_destroy(from_new);
    dd_engine_destroy(from_old);
    small_teardown(&r);
}

static void test_checkpoint_corrupt(void **st) {
    const char *p = tmp_path("c.ckpt");
    float data[4] = {1, 2, 3, 4};
    // a temporary left by a checkpoint write that was killed, and a file
    // that only looks like one: the commit removes the first, keeps the second
    char stale[4200], other[4200];
    snprintf(stale, sizeof stale, "%s.tmp.Ab12Cd", p);
    snprintf(other, sizeof other, "%s.tmp.keep", p);
    for (int i = 0; i < 2; i++) {
        FILE *t = fopen(i ? other : stale, "wb");
        assert_non_null(t);
        fclose(t);
    }
    dd_ckpt_writer *w;
    assert_int_equal(dd_ckpt_writer_create(&w), DD_OK);
    assert_int_equal(dd_ckpt_writer_add(w, "x", data, sizeof data), DD_OK);
    assert_int_equal(dd_ckpt_writer_commit(w, p), DD_OK);
    dd_ckpt_writer_destroy(w);
    assert_int_not_equal(access(stale, F_OK), 0);
    assert_int_equal(access(other, F_OK), 0);
    remove(other);
    dd_ckpt *c;
    assert_int_equal(dd_ckpt_read(p, &c), DD_OK);
    float back[4];
    assert_int_equal(dd_ckpt_get_exact(c, "x", back, sizeof back), DD_OK);
    assert_memory_equal(back, data, sizeof data);
    assert_int_equal(dd_ckpt_get_exact(c, "x", back, 8), DD_ERR_PARSE);
    assert_int_equal(dd_ckpt_get_exact(c, "y", back, 8), DD_ERR_PARSE);
    dd_ckpt_destroy(c);
    // Flip one byte of the payload.
    FILE *f = fopen(p, "r+b");
    assert_non_null(f);
    fseek(f, 8 + 8 + 16 + 8 + 5, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    assert_int_equal(dd_ckpt_read(p, &c), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), "CRC"));
    // Truncated.
    assert_int_equal(truncate(p, 10), 0);
    assert_int_equal(dd_ckpt_read(p, &c), DD_ERR_PARSE);
    assert_int_equal(dd_ckpt_read(tmp_path("missing.ckpt"), &c), DD_ERR_NOT_FOUND);
}

static void test_nan_stops(void **st) {
    small_run r;
    small_setup(&r, DD_INIT_FIXED);
    char ck[512];
    snprintf(ck, sizeof ck, "%s", tmp_path("nan.ckpt"));
    r.cfg.iterations = 2;
    r.cfg.checkpoint_path = ck;
    dd_engine *a;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &r.cfg, &a), DD_OK);
    assert_int_equal(dd_engine_run(a), DD_OK);
    dd_engine_destroy(a);
    // Continue with absurd step sizes: the loss blows up.
    r.cfg.iterations = 6;
    r.cfg.checkpoint_every = 1;
    dd_engine *b;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &r.cfg, &b), DD_OK);
    assert_int_equal(dd_engine_load(b, ck), DD_OK);
    for (int k = 0; k < 4; k++)
        dd_engine_raw_lrs(b)[k] = 1e38f; // θ overflows to Inf
    dd_status s = dd_engine_run(b);
    assert_int_equal(s, DD_ERR_NUMERIC);
    printf("NaN message: %s\n", dd_error_message());
    assert_non_null(strstr(dd_error_message(), "iteration 3"));
    dd_engine_destroy(b);
    // The checkpoint on disk is still the good state of iteration 2.
    dd_ckpt *c;
    assert_int_equal(dd_ckpt_read(ck, &c), DD_OK);
    int64_t counters[3];
    assert_int_equal(dd_ckpt_get_exact(c, "counters", counters, sizeof counters), DD_OK);
    assert_int_equal(counters[0], 2);
    float raw[4];
    assert_int_equal(dd_ckpt_get_exact(c, "raw_lrs", raw, sizeof raw), DD_OK);
    assert_true(raw[0] < 10.f);
    dd_ckpt_destroy(c);
    small_teardown(&r);
}

/* The classification objective with a counter on outer_loss (one call per
 * iteration with a fixed init) that raises the cancel flag at call 3, as a
 * signal handler would during the third iteration. */
static dd_objective_ops g_counting_ops;
static dd_status (*g_inner_loss)(void *, const float *, const int32_t *, int64_t, int, double *,
                                 float *);
static int g_outer_calls;
static volatile sig_atomic_t g_cancel_flag;

static dd_status counting_loss(void *state, const float *z, const int32_t *y, int64_t b, int k,
                               double *loss, float *dz) {
    if (++g_outer_calls == 3) g_cancel_flag = 1;
    return g_inner_loss(state, z, y, b, k, loss, dz);
}

static void test_cancel_stops(void **st) {
    small_run r;
    small_setup(&r, DD_INIT_FIXED);
    const size_t np = (size_t)2 * 3 * 36;
    dd_engine *a;
    assert_int_equal(dd_engine_create(r.m, &r.obj, r.train, &r.cfg, &a), DD_OK);
    assert_int_equal(dd_engine_run(a), DD_OK);
    // Cancelled during iteration 3: it finishes, the checkpoint is written.
    g_counting_ops = *r.obj.ops;
    g_inner_loss = r.obj.ops->outer_loss;
    g_counting_ops.outer_loss = counting_loss;
    dd_objective_handle counted = r.obj;
    counted.ops = &g_counting_ops;
    char ck[512];
    snprintf(ck, sizeof ck, "%s", tmp_path("cancel.ckpt"));
    dd_distill_config c = r.cfg;
    c.checkpoint_path = ck;
    c.cancel = &g_cancel_flag;
    g_outer_calls = 0;
    g_cancel_flag = 0;
    dd_engine *b;
    assert_int_equal(dd_engine_create(r.m, &counted, r.train, &c, &b), DD_OK);
    assert_int_equal(dd_engine_run(b), DD_ERR_INTERRUPTED);
    printf("cancel message: %s\n", dd_error_message());
    assert_non_null(strstr(dd_error_message(), "interrupted at iteration 3"));
    assert_non_null(strstr(dd_error_message(), "--resume"));
    assert_int_equal(g_outer_calls, 3);
    assert_int_equal(dd_engine_stats(b)->iterations, 3);
    dd_engine_destroy(b);
    dd_ckpt *ckpt;
    assert_int_equal(dd_ckpt_read(ck, &ckpt), DD_OK);
    int64_t counters[3];
    assert_int_equal(dd_ckpt_get_exact(ckpt, "counters", counters, sizeof counters), DD_OK);
    assert_int_equal(counters[0], 3);
    dd_ckpt_destroy(ckpt);
    // With the flag down again, resuming finishes exactly as the uncancelled run.
    g_cancel_flag = 0;
    c.resume = 1;
    dd_engine *d;
    assert_int_equal(dd_engine_create(r.m, &counted, r.train, &c, &d), DD_OK);
    assert_int_equal(dd_engine_run(d), DD_OK);
    assert_int_equal(g_outer_calls, 8);
    assert_memory_equal(dd_engine_pixels(a), dd_engine_pixels(d), np * sizeof(float));
    assert_memory_equal(dd_engine_raw_lrs(a), dd_engine_raw_lrs(d), 4 * sizeof(float));
    dd_engine_destroy(d);
    dd_engine_destroy(a);
    small_teardown(&r);
}

/* ---- the distilled set's files ------------------------------------------ */

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_distilled_save_load(void **st) {
    // 3 channels (4-D IDX) with soft labels, and 1 channel (3-D IDX).
    for (int ch = 3; ch >= 1; ch -= 2) {
        dd_distilled *d, *back;
        assert_int_equal(dd_distilled_create(2, 3, 2, 3, ch, 4, 5, 0.f, &d), DD_OK);
        const size_t n = (size_t)2 * 6 * (size_t)ch * 20;
        dd_rng r = dd_rng_make(7, (uint64_t)ch);
        dd_rng_normal(&r, d->images, n, 0.f, 1.f);
        for (int k = 0; k < 6; k++)
            d->lrs[k] = 0.01f * (float)(k + 1) + 1e-4f;
        if (ch == 3) {
            assert_non_null(d->soft = dd_alloc_floats((size_t)2 * 6 * 3));
            dd_rng_normal(&r, d->soft, (size_t)2 * 6 * 3, 0.f, 1.f);
        }
        const char *names[] = {"a\"b", "c", "d"};
        char dir[512];
        snprintf(dir, sizeof dir, "%s", tmp_path(ch == 3 ? "set3" : "set1"));
        assert_int_equal(mkdir(dir, 0777), 0);
        assert_int_equal(dd_distilled_save(d, names, dir), DD_OK);
        char path[600];
        snprintf(path, sizeof path, "%s/distilled-soft-labels.idx", dir);
        assert_int_equal(access(path, F_OK) == 0, ch == 3);
        assert_int_equal(dd_distilled_load(dir, &back), DD_OK);
        assert_int_equal(back->steps, 2);
        assert_int_equal(back->epochs, 3);
        assert_int_equal(back->images_per_class, 2);
        assert_int_equal(back->n_classes, 3);
        assert_int_equal(back->channels, ch);
        assert_int_equal(back->height, 4);
        assert_int_equal(back->width, 5);
        assert_memory_equal(back->images, d->images, n * sizeof(float));
        assert_memory_equal(back->labels, d->labels, 6 * sizeof(int32_t));
        // lrs.csv holds 9 significant digits: the floats come back exactly.
        assert_memory_equal(back->lrs, d->lrs, 6 * sizeof(float));
        dd_distilled_destroy(back);
        dd_distilled_destroy(d);
    }
    // Bad files: a clear error, never a crash.
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", tmp_path("set1"));
    dd_distilled *back = NULL;
    snprintf(path, sizeof path, "%s/distilled-images.idx", dir);
    assert_int_equal(truncate(path, 4 + 12 + 40), 0);
    assert_int_equal(dd_distilled_load(dir, &back), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), "truncated data"));
    snprintf(path, sizeof path, "%s/distilled-labels.idx", dir);
    const unsigned char wrong[8 + 12] = {0, 0, 8, 1, 0, 0, 0, 12, 1, 0, 2};
    write_bytes(path, wrong, sizeof wrong);
    assert_int_equal(dd_distilled_load(dir, &back), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), "label 0 is 1"));
    snprintf(path, sizeof path, "%s/distilled-images.idx", dir);
    const unsigned char empty[4 + 12] = {0, 0, 0x0D, 3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 5};
    write_bytes(path, empty, sizeof empty);
    assert_int_equal(dd_distilled_load(dir, &back), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), "no images"));
    snprintf(path, sizeof path, "%s/lrs.csv", dir);
    assert_int_equal(unlink(path), 0);
    snprintf(dir, sizeof dir, "%s", tmp_path("set3"));
    snprintf(path, sizeof path, "%s/lrs.csv", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(dd_distilled_load(dir, &back), DD_ERR_NOT_FOUND);
    assert_int_equal(dd_distilled_load(tmp_path("nowhere"), &back), DD_ERR_NOT_FOUND);
    assert_null(back);
}

/* ---- baselines ----------------------------------------------------------- */

static void test_kmeans_blobs(void **st) {
    // Three tight blobs far apart in 2-D; k-means++ must find their centres.
    const float centre[3][2] = {{0, 0}, {10, 0}, {0, 10}};
    float x[300 * 2];
    dd_rng r = dd_rng_make(1, 1);
    dd_rng_normal(&r, x, 600, 0.f, 0.3f);
    for (int i = 0; i < 300; i++) {
        x[2 * i] += centre[i % 3][0];
        x[2 * i + 1] += centre[i % 3][1];
    }
    float cent[6];
    int32_t asg[300];
    double inertia;
    dd_rng kr = dd_rng_make(2, 2);
    assert_int_equal(dd_kmeans(x, 300, 2, 3, 50, &kr, 0, cent, asg, &inertia), DD_OK);
    for (int c = 0; c < 3; c++) {
        double best = 1e9;
        for (int j = 0; j < 3; j++) {
            double dx = cent[2 * j] - centre[c][0], dy = cent[2 * j + 1] - centre[c][1];
            if (dx * dx + dy * dy < best) best = dx * dx + dy * dy;
        }
        assert_true(best < 0.1 * 0.1);
    }
    for (int i = 3; i < 300; i++)
        assert_int_equal(asg[i], asg[i % 3]);
    assert_true(inertia < 300 * 2 * 0.3 * 0.3 * 1.5);
}

static void test_baselines(void **st) {
    dd_dataset *t = make_blobs(90, 3, 1, 4, 4, 0.5f, 31, 32);
    const size_t D = 16;
    dd_distilled *avg, *rnd, *km;
    assert_int_equal(dd_baseline_build(DD_BASELINE_AVERAGE, t, 2, 3, 2, 0.05f, 1, 0, &avg), DD_OK);
    assert_int_equal(dd_baseline_build(DD_BASELINE_RANDOM, t, 2, 3, 2, 0.05f, 1, 0, &rnd), DD_OK);
    assert_int_equal(dd_baseline_build(DD_BASELINE_KMEANS, t, 2, 3, 2, 0.05f, 1, 0, &km), DD_OK);
    assert_int_equal(avg->per_step, 6);
    assert_int_equal(avg->lrs[5], 0.05f);
    for (int s = 0; s < 2; s++) {
        for (int j = 0; j < 6; j++) {
            int c = j % 3;
            assert_int_equal(avg->labels[j], c);
            // average: the class mean
            double mean0 = 0;
            int cnt = 0;
            for (int i = 0; i < 90; i++)
                if (t->labels[i] == c) {
                    mean0 += PX(t)[(size_t)i * D];
                    cnt++;
                }
            mean0 /= cnt;
            assert_true(fabs(avg->images[((size_t)s * 6 + j) * D] - mean0) < 1e-5);
            // random: a real image of class c
            const float *img = rnd->images + ((size_t)s * 6 + j) * D;
            int found = 0;
            for (int i = 0; i < 90 && !found; i++)
                found = t->labels[i] == c && memcmp(img, PX(t) + (size_t)i * D, D * 4) == 0;
            assert_true(found);
            // k-means: a centroid near the class's cluster (closer to its own
            // class mean than to any other class's images on average)
            const float *kc = km->images + ((size_t)s * 6 + j) * D;
            double own = 0, other = 0;
            int no = 0, nt = 0;
            for (int i = 0; i < 90; i++) {
                double dd = 0;
                for (size_t q = 0; q < D; q++) {
                    double df = kc[q] - PX(t)[(size_t)i * D + q];
                    dd += df * df;
                }
                if (t->labels[i] == c) {
                    own += dd;
                    no++;
                } else {
                    other += dd;
                    nt++;
                }
            }
            assert_true(own / no < 0.5 * other / nt);
        }
    }
    // The 4 k-means centroids of a class are distinct.
    assert_memory_not_equal(km->images, km->images + 6 * D, D * 4);
    dd_baseline_kind k;
    assert_int_equal(dd_baseline_parse("kmeans", &k), DD_OK);
    assert_int_equal(k, DD_BASELINE_KMEANS);
    assert_int_equal(dd_baseline_parse("median", &k), DD_ERR_INVALID);
    dd_distilled_destroy(avg);
    dd_distilled_destroy(rnd);
    dd_distilled_destroy(km);
    blobs_free(t);
}

/* ---- tiny end-to-end ----------------------------------------------------- */

static void test_end_to_end(void **st) {
    // 4 classes of noisy prototypes; 1 step × 2 epochs × 1 image per class.
    dd_dataset *train = make_blobs(400, 4, 1, 6, 6, 1.0f, 41, 40);
    dd_dataset *test = make_blobs(200, 4, 1, 6, 6, 1.0f, 42, 40);
    dd_model *m = make_model(&tiny_conv_comp, 1, 6, 6, 4);
    dd_objective_handle obj;
    assert_int_equal(dd_objective_handle_init(&obj, classification(), NULL, train), DD_OK);
    dd_distill_config cfg;
    assert_int_equal(dd_distill_config_from_defaults(&cfg), DD_OK);
    cfg.steps = 1;
    cfg.epochs = 2;
    cfg.batch_real = 100;
    cfg.iterations = 400;
    cfg.lr_init = 0.05;
    cfg.opt_lr = 0.03;
    cfg.opt_lr_lrs = cfg.opt_lr; // the step sizes at the pixels' rate, as tuned
    cfg.decay_every = 100;
    cfg.seed = 3;
    dd_engine *e;
    assert_int_equal(dd_engine_create(m, &obj, train, &cfg, &e), DD_OK);
    assert_int_equal(dd_engine_run(e), DD_OK);
    dd_distilled *set;
    assert_int_equal(dd_engine_export(e, &set), DD_OK);
    dd_eval_config ec;
    dd_eval_config_defaults(&ec);
    ec.seed = cfg.seed;
    ec.theta0 = dd_engine_theta0(e);
    dd_eval_stats ours, untrained, rnd_stats;
    assert_int_equal(dd_evaluate_set(m, &obj, test, set, NULL, &ec, &ours), DD_OK);
    assert_int_equal(dd_evaluate_set(m, &obj, test, NULL, NULL, &ec, &untrained), DD_OK);
    // θ0 re-derived from the seed equals the engine's.
    ec.theta0 = NULL;
    dd_eval_stats again;
    assert_int_equal(dd_evaluate_set(m, &obj, test, set, NULL, &ec, &again), DD_OK);
    assert_true(again.mean == ours.mean);
    // Random real images with step sizes optimised the same way.
    dd_distilled *rnd;
    assert_int_equal(dd_baseline_build(DD_BASELINE_RANDOM, train, 1, 2, 1, 0.05f, 3, 0, &rnd),
                     DD_OK);
    dd_lr_search search;
    dd_lr_search_defaults(&search);
    search.max_iterations = 40;
    dd_lr_search_result res;
    assert_int_equal(dd_evaluate_optimize_lrs(m, &obj, train, &cfg, &search, rnd, &res), DD_OK);
    assert_true(rnd->lrs[0] != 0.05f);
    assert_true(res.iterations >= 1 && res.iterations <= 40);
    assert_int_equal(dd_evaluate_set(m, &obj, test, rnd, NULL, &ec, &rnd_stats), DD_OK);
    printf("e2e: untrained %.3f, distilled %.3f (lrs %.3f %.3f), random real %.3f; final batch "
           "acc %.3f, %.4f s/it\n",
           untrained.mean, ours.mean, (double)set->lrs[0], (double)set->lrs[1], rnd_stats.mean,
           dd_engine_stats(e)->last_metric, dd_engine_stats(e)->seconds_per_iteration);
    assert_true(ours.mean > 0.8);
    assert_true(ours.mean > untrained.mean + 0.3);
    dd_distilled_destroy(rnd);
    dd_distilled_destroy(set);
    dd_engine_destroy(e);
    dd_objective_handle_release(&obj);
    dd_model_destroy(m);
    blobs_free(train);
    blobs_free(test);
}

static void test_classification_objective(void **st) {
    const dd_component *c = classification();
    const dd_objective_ops *ops = c->ops;
    dd_dataset *d = make_blobs(3, 3, 1, 1, 1, 0.f, 1, 1);
    dd_objective_handle h;
    assert_int_equal(dd_objective_handle_init(&h, c, NULL, d), DD_OK);
    assert_int_equal(h.n_metrics, 1);
    assert_string_equal(ops->metric_names[0], "accuracy");
    float z[6] = {2, 0, -1, 0.5f, 0.5f, 3};
    int32_t y[2] = {0, 1};
    double loss, num = 0, den = 0;
    float dz[6];
    assert_int_equal(ops->outer_loss(h.state, z, y, 2, 3, &loss, dz), DD_OK);
    double l0 = log(exp(2) + exp(0) + exp(-1)) - 2, l1 = log(2 * exp(0.5) + exp(3)) - 0.5;
    assert_true(fabs(loss - (l0 + l1) / 2) < 1e-9);
    // dlogits by central differences of the loss
    for (int i = 0; i < 6; i++) {
        float zp[6], zm[6];
        memcpy(zp, z, sizeof z);
        memcpy(zm, z, sizeof z);
        zp[i] += 1e-3f;
        zm[i] -= 1e-3f;
        double lp, lm;
        ops->outer_loss(h.state, zp, y, 2, 3, &lp, NULL);
        ops->outer_loss(h.state, zm, y, 2, 3, &lm, NULL);
        assert_true(fabs((lp - lm) / 2e-3 - dz[i]) < 1e-4);
    }
    assert_int_equal(ops->metrics(h.state, z, y, 2, 3, &num, &den), DD_OK);
    assert_true(num == 1 && den == 2);
    int32_t bad[2] = {0, 7};
    assert_int_equal(ops->outer_loss(h.state, z, bad, 2, 3, &loss, dz), DD_ERR_INVALID);
    dd_objective_handle_release(&h);
    blobs_free(d);
}

int main(void) {
    // Tiny problems: a second thread only adds barrier waits (and, on a
    // loaded machine, stalls of whole scheduler slices).
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification_objective),
        cmocka_unit_test(test_hypergrad_linear),
        cmocka_unit_test(test_hypergrad_linear_soft_labels),
        cmocka_unit_test(test_hypergrad_conv),
        cmocka_unit_test(test_hypergrad_reference_logits),
        cmocka_unit_test(test_linear_case),
        cmocka_unit_test(test_threads_same_hypergradient),
        cmocka_unit_test(test_threads_random_bit_identical),
        cmocka_unit_test(test_checkpoint_corrupt),
        cmocka_unit_test(test_resume_fixed),
        cmocka_unit_test(test_resume_random),
        cmocka_unit_test(test_resume_without_lr_history),
        cmocka_unit_test(test_nan_stops),
        cmocka_unit_test(test_cancel_stops),
        cmocka_unit_test(test_distilled_save_load),
        cmocka_unit_test(test_kmeans_blobs),
        cmocka_unit_test(test_baselines),
        cmocka_unit_test(test_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
