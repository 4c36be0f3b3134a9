/* Tests of the K→T poisoning objective (plugins/objectives/poison): its
 * outer loss against the relabelled cross-entropy, its gradient against
 * central differences, the keep-predictions (KL to θ0) variant, its metrics and baseline, and a
 * tiny end-to-end attack on held-out pretrained networks (pool → engine → evaluation →
 * metrics.json) showing the attack rate rises while the other classes stay
 * correct. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "distill/host.h"
#include "distill/distill.h"
#include "engine/engine.h"
#include "engine/evaluate.h"
#include "engine/netpool.h"
#include "data/transform.h"
#include "engine/train.h"
#include "run/stages.h"
#include "report/report.h"

/* ---- fixtures ------------------------------------------------------------ */

static void *g_handle;

static const dd_component *load_objective(const char *name) {
    const char *dir = getenv("DISTILL_PLUGIN_PATH");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", dir ? dir : ".", name);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
    assert_non_null(h);
    g_handle = h; // kept open for the process: the components live in it
    dd_plugin_entry_fn entry = (dd_plugin_entry_fn)dlsym(h, DD_PLUGIN_ENTRY_SYMBOL);
    assert_non_null(entry);
    const dd_plugin_descriptor *d = entry();
    assert_int_equal(d->n_components, 1);
    assert_string_equal(d->components[0].name, name);
    return &d->components[0];
}

static dd_options *poison_options(const dd_component *c, const char *const *kv) {
    dd_options *o = NULL;
    dd_status s = dd_options_from_strings(c->params, kv, &o);
    if (s != DD_OK) fprintf(stderr, "%s\n", dd_error_message());
    assert_int_equal(s, DD_OK);
    return o;
}

static dd_dataset *make_blobs(int n, int k, int d_feat, float noise, uint64_t seed,
                              uint64_t proto_seed) {
    dd_dataset *d = NULL;
    assert_int_equal(dd_dataset_create("blobs", DD_DTYPE_F32, n, 1, 1, d_feat, k, &d), DD_OK);
    float *proto = malloc((size_t)k * d_feat * sizeof *proto);
    assert_non_null(proto);
    dd_rng pr = dd_rng_make(proto_seed, 7);
    dd_rng_normal(&pr, proto, (size_t)k * d_feat, 0.f, 1.f);
    dd_rng r = dd_rng_make(seed, 9);
    for (int i = 0; i < n; i++) {
        const int y = i % k;
        d->labels[i] = y;
        dd_rng_normal(&r, ((float *)d->pixels) + (size_t)i * d_feat, (size_t)d_feat, 0.f, noise);
        for (int j = 0; j < d_feat; j++)
            ((float *)d->pixels)[(size_t)i * d_feat + j] += proto[y * d_feat + j];
    }
    free(proto);
    return d;
}

/* Reference: softmax cross-entropy of logits z (K) for target t. */
static double ce(const float *z, int K, int t) {
    double m = z[0];
    for (int k = 1; k < K; k++)
        m = z[k] > m ? z[k] : m;
    double s = 0;
    for (int k = 0; k < K; k++)
        s += exp((double)z[k] - m);
    return m + log(s) - z[t];
}

/* Checks dz = ∂loss/∂z against central differences of the objective's
 * outer loss (outer_loss_ref with logits z0 when z0 is not NULL): the
 * largest error must be O(h²) and the gradient not trivially zero. */
static void check_dlogits(const dd_objective_ops *ops, void *state, const float *z, const float *z0,
                          const int32_t *y, int B, int K, const float *dz) {
    float *zp = malloc((size_t)B * K * sizeof *zp);
    assert_non_null(zp);
    double max_err = 0, max_g = 0;
    for (int i = 0; i < B * K; i++) {
        const float h = 1e-2f;
        double lp, lm;
        memcpy(zp, z, (size_t)B * K * sizeof *zp);
        zp[i] = z[i] + h;
        assert_int_equal(z0 ? ops->outer_loss_ref(state, zp, z0, y, B, K, &lp, NULL)
                            : ops->outer_loss(state, zp, y, B, K, &lp, NULL),
                         DD_OK);
        zp[i] = z[i] - h;
        assert_int_equal(z0 ? ops->outer_loss_ref(state, zp, z0, y, B, K, &lm, NULL)
                            : ops->outer_loss(state, zp, y, B, K, &lm, NULL),
                         DD_OK);
        max_err = fmax(max_err, fabs((lp - lm) / (2.0 * h) - dz[i]));
        max_g = fmax(max_g, fabs(dz[i]));
    }
    free(zp);
    assert_true(max_g > 1e-2);
    assert_true(max_err < 1e-4);
}

/* ---- loss, gradient, metrics, baseline ------------------------------------ */

static void test_loss_is_relabelled_cross_entropy(void **st) {
    (void)st;
    const dd_component *c = load_objective("poison");
    const dd_objective_ops *ops = c->ops;
    assert_true(DD_OBJECTIVE_HAS(ops, build_baseline));
    assert_true(ops->flags & DD_OBJECTIVE_NEEDS_PRETRAINED);
    assert_string_equal(ops->report_section, "attack");
    const char *kv[] = {"attack_class=2", "target_class=4", NULL};
    dd_options *o = poison_options(c, kv);
    dd_objective_info info = {sizeof info, 5, NULL};
    void *state = NULL;
    assert_int_equal(ops->create(o, &info, &state), DD_OK);
    enum { B = 6, K = 5 };
    float z[B * K], dz[B * K];
    int32_t y[B] = {2, 0, 2, 4, 1, 3};
    dd_rng r = dd_rng_make(3, 1);
    dd_rng_normal(&r, z, B * K, 0.f, 2.f);
    double loss = 0, want = 0;
    assert_int_equal(ops->outer_loss(state, z, y, B, K, &loss, dz), DD_OK);
    for (int i = 0; i < B; i++)
        want += ce(z + i * K, K, y[i] == 2 ? 4 : y[i]);
    want /= B;
    assert_true(fabs(loss - want) < 1e-9 * (1 + fabs(want)));
    // Labels outside the classes are refused, K == T is refused.
    int32_t bad[B] = {0, 1, 7, 0, 0, 0};
    assert_int_equal(ops->outer_loss(state, z, bad, B, K, &loss, dz), DD_ERR_INVALID);
    ops->destroy(state);
    dd_options_destroy(o);
    const char *same[] = {"attack_class=3", "target_class=3", NULL};
    o = poison_options(c, same);
    assert_int_equal(ops->create(o, &info, &state), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "different"));
    dd_options_destroy(o);
    const char *range[] = {"attack_class=5", NULL};
    o = poison_options(c, range);
    assert_int_equal(ops->create(o, &info, &state), DD_ERR_INVALID);
    dd_options_destroy(o);
}

static void test_gradient_vs_finite_differences(void **st) {
    (void)st;
    const dd_component *c = load_objective("poison");
    const dd_objective_ops *ops = c->ops;
    const char *kv[] = {"attack_class=0", "target_class=3", "attack_weight=2.5", NULL};
    dd_options *o = poison_options(c, kv);
    dd_objective_info info = {sizeof info, 4, NULL};
    void *state = NULL;
    assert_int_equal(ops->create(o, &info, &state), DD_OK);
    enum { B = 9, K = 4 };
    float z[B * K], dz[B * K];
    int32_t y[B] = {0, 1, 2, 3, 0, 0, 2, 1, 3};
    dd_rng r = dd_rng_make(11, 2);
    dd_rng_normal(&r, z, B * K, 0.f, 1.5f);
    double loss;
    assert_int_equal(ops->outer_loss(state, z, y, B, K, &loss, dz), DD_OK);
    // Central differences of a smooth function: O(h²) error.
    check_dlogits(ops, state, z, NULL, y, B, K, dz);
    // attack_weight changes the loss: class-K samples count 2.5 times.
    double wsum = 2.5 * 3 + 6, want = 0;
    for (int i = 0; i < B; i++)
        want += (y[i] == 0 ? 2.5 : 1.0) * ce(z + i * K, K, y[i] == 0 ? 3 : y[i]);
    assert_true(fabs(loss - want / wsum) < 1e-6);
    ops->destroy(state);
    dd_options_destroy(o);
}

/* keep: predictions — the other classes are held to θ0's softmax p0 by
 * KL(p0 ‖ p), class K still to T by cross-entropy; keep: labels — the
 * reference logits are ignored (Eq. 10). */
static void test_keep_predictions(void **st) {
    (void)st;
    const dd_component *c = load_objective("poison");
    const dd_objective_ops *ops = c->ops;
    assert_true(DD_OBJECTIVE_HAS(ops, outer_loss_ref));
    assert_non_null(ops->outer_loss_ref);
    enum { B = 8, K = 4 };
    float z[B * K], z0[B * K], dz[B * K];
    int32_t y[B] = {0, 1, 2, 3, 0, 2, 1, 3};
    dd_rng r = dd_rng_make(21, 4);
    dd_rng_normal(&r, z, B * K, 0.f, 1.5f);
    dd_rng_normal(&r, z0, B * K, 0.f, 1.5f);
    dd_objective_info info = {sizeof info, K, NULL};

    const char *kv[] = {"attack_class=0", "target_class=2", "attack_weight=3", NULL};
    dd_options *o = poison_options(c, kv); // keep defaults to predictions
    void *state = NULL;
    assert_int_equal(ops->create(o, &info, &state), DD_OK);
    double loss;
    assert_int_equal(ops->outer_loss_ref(state, z, z0, y, B, K, &loss, dz), DD_OK);
    // Reference value: Σ w_i ℓ_i / Σ w_i.
    double want = 0, wsum = 0;
    for (int i = 0; i < B; i++) {
        const double w = y[i] == 0 ? 3.0 : 1.0;
        wsum += w;
        if (y[i] == 0) {
            want += w * ce(z + i * K, K, 2);
        } else {
            // KL(p0 ‖ p) = Σ_k p0_k (log p0_k − log p_k), from cross-entropies.
            double kl = 0;
            for (int k = 0; k < K; k++) {
                const double lp0 = -ce(z0 + i * K, K, k), lp = -ce(z + i * K, K, k);
                kl += exp(lp0) * (lp0 - lp);
            }
            want += w * kl;
        }
    }
    assert_true(fabs(loss - want / wsum) < 1e-6);
    const double loss_kl = loss;
    // Gradient against central differences (logits0 held fixed).
    check_dlogits(ops, state, z, z0, y, B, K, dz);
    // Unchanged predictions cost nothing: with z0 = z only class K counts,
    // and the other classes' gradient vanishes.
    assert_int_equal(ops->outer_loss_ref(state, z, z, y, B, K, &loss, dz), DD_OK);
    want = 3.0 * (ce(z, K, 2) + ce(z + 4 * K, K, 2)) / wsum;
    assert_true(fabs(loss - want) < 1e-6);
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K && y[i] != 0; k++)
            assert_true(fabsf(dz[i * K + k]) < 1e-6f);
    ops->destroy(state);
    dd_options_destroy(o);

    // The guard adds guard · softplus(z_T − z_c + m), c = argmax z0, on
    // images of classes other than K and T whose θ0 prediction is not T.
    const char *kg[] = {"attack_class=0", "target_class=2",   "attack_weight=3",
                        "guard=0.7",      "guard_margin=1.5", NULL};
    o = poison_options(c, kg);
    assert_int_equal(ops->create(o, &info, &state), DD_OK);
    double lg;
    assert_int_equal(ops->outer_loss_ref(state, z, z0, y, B, K, &lg, dz), DD_OK);
    double extra = 0;
    for (int i = 0; i < B; i++) {
        if (y[i] == 0 || y[i] == 2) continue;
        int cz = 0;
        for (int k = 1; k < K; k++)
            if (z0[i * K + k] > z0[i * K + cz]) cz = k;
        if (cz != 2) extra += 0.7 * log1p(exp(z[i * K + 2] - z[i * K + cz] + 1.5));
    }
    assert_true(extra > 0);
    assert_true(fabs(lg - extra / wsum - loss_kl) < 1e-6);
    check_dlogits(ops, state, z, z0, y, B, K, dz);
    ops->destroy(state);
    dd_options_destroy(o);

    // keep: labels — outer_loss_ref is outer_loss, whatever logits0 holds.
    const char *kl[] = {"attack_class=0", "target_class=2", "keep=labels", NULL};
    o = poison_options(c, kl);
    assert_int_equal(ops->create(o, &info, &state), DD_OK);
    double l_ref, l_plain;
    float dz2[B * K];
    assert_int_equal(ops->outer_loss_ref(state, z, z0, y, B, K, &l_ref, dz), DD_OK);
    assert_int_equal(ops->outer_loss(state, z, y, B, K, &l_plain, dz2), DD_OK);
    assert_true(l_ref == l_plain);
    assert_memory_equal(dz, dz2, sizeof dz);
    ops->destroy(state);
    dd_options_destroy(o);
}

static void test_metrics_and_baseline(void **st) {
    (void)st;
    const dd_component *c = load_objective("poison");
    const dd_objective_ops *ops = c->ops;
    const char *kv[] = {"attack_class=1", "target_class=0", NULL};
    dd_options *o = poison_options(c, kv);
    dd_objective_info info = {sizeof info, 3, NULL};
    void *state = NULL;
    assert_int_equal(ops->create(o, &info, &state), DD_OK);
    // Predictions (argmax): 0, 0, 1, 2, 2, 0, 0 for labels 1, 1, 1, 2, 0, 2, 2.
    const float z[7 * 3] = {5, 0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 5, 5, 0, 0, 5, 0, 0};
    const int32_t y[7] = {1, 1, 1, 2, 0, 2, 2};
    double num[4] = {0}, den[4] = {0};
    assert_int_equal(ops->metrics(state, z, y, 7, 3, num, den), DD_OK);
    assert_true(num[0] == 2 && den[0] == 3); // class 1 predicted as 0: 2 of 3
    assert_true(num[1] == 1 && den[1] == 4); // other classes correct: 1 of 4
    assert_true(num[2] == 2 && den[2] == 7); // overall accuracy
    assert_true(num[3] == 2 && den[3] == 3); // class-2 images predicted as T = 0: 2 of 3
    // Baseline: real class-1 images, every one labelled 0.
    dd_dataset *train = make_blobs(30, 3, 4, 0.1f, 1, 2);
    float images[2 * 3 * 4];
    int32_t labels[3];
    assert_int_equal(ops->build_baseline(state, 0, train, 2, 3, 99, images, labels), DD_OK);
    for (int j = 0; j < 3; j++)
        assert_int_equal(labels[j], 0);
    for (int slot = 0; slot < 6; slot++) {
        int found = 0;
        for (int64_t i = 0; i < train->n && !found; i++)
            found = train->labels[i] == 1 && memcmp(((float *)train->pixels) + i * 4,
                                                    images + slot * 4, 4 * sizeof(float)) == 0;
        assert_true(found);
    }
    dd_dataset_destroy(train);
    ops->destroy(state);
    dd_options_destroy(o);
}

/* ---- end to end ------------------------------------------------------------ */

static dd_status build_mlp(dd_graph *g, const dd_options *o, int c, int h, int w, int n_out) {
    (void)o;
    (void)c;
    (void)h;
    (void)w;
    DD_TRY(dd_graph_linear(g, 16));
    DD_TRY(dd_graph_relu(g));
    return dd_graph_linear(g, n_out);
}
static const dd_model_ops mlp_ops = {.struct_size = sizeof(dd_model_ops), .build = build_mlp};
static const dd_component mlp_comp = {.struct_size = sizeof(dd_component),
                                      .kind = DD_COMPONENT_MODEL,
                                      .name = "t-mlp",
                                      .description = "test MLP",
                                      .ops = &mlp_ops};

static void test_end_to_end_attack(void **st) {
    (void)st;
    enum { K = 4, F = 12, NETS = 12, HOLDOUT = 6 };
    dd_dataset *train = make_blobs(800, K, F, 0.8f, 1, 5);
    dd_dataset *test = make_blobs(800, K, F, 0.8f, 2, 5);
    dd_model_config mc = {sizeof mc, &mlp_comp, NULL, 1, 1, F, K, DD_BACKEND_REFERENCE};
    dd_model *m = NULL;
    assert_int_equal(dd_model_create(&mc, &m), DD_OK);

    // A pool of pretrained networks: the last HOLDOUT are only evaluated.
    dd_netpool *pool = NULL;
    assert_int_equal(dd_netpool_create(NETS, HOLDOUT, dd_model_param_count(m), &pool), DD_OK);
    for (int i = 0; i < NETS; i++) {
        assert_int_equal(dd_model_init_params(m, pool->theta[i], "xavier", 1.f, 100 + i), DD_OK);
        dd_sgd_config sc;
        dd_sgd_config_defaults(&sc);
        sc.epochs = 4;
        sc.batch = 32;
        sc.lr = 0.05;
        sc.seed = 200 + i;
        assert_int_equal(dd_sgd_train(m, pool->theta[i], train, &sc), DD_OK);
        assert_int_equal(dd_pretrain_accuracy(m, pool->theta[i], test, &pool->accuracy[i]), DD_OK);
        assert_true(pool->accuracy[i] > 0.85);
    }

    const dd_component *pc = load_objective("poison");
    const char *kv[] = {"attack_class=0", "target_class=1", NULL};
    dd_options *o = poison_options(pc, kv);
    dd_objective_handle obj;
    assert_int_equal(dd_objective_handle_init(&obj, pc, o, train), DD_OK);

    dd_distill_config cfg;
    assert_int_equal(dd_distill_config_from_defaults(&cfg), DD_OK);
    cfg.steps = 1;
    cfg.epochs = 1;
    cfg.images_per_class = 1;
    cfg.iterations = 300;
    cfg.batch_real = 200;
    cfg.lr_init = 0.1;
    cfg.opt_lr = 0.05;
    cfg.opt_lr_lrs = cfg.opt_lr; // the step sizes at the pixels' rate, as tuned
    cfg.seed = 4;
    cfg.nets_per_iteration = 3;
    // Without a pool a pretrained mode is refused, and so is a random init
    // for an objective that needs pretrained networks.
    dd_engine *e = NULL;
    cfg.init_mode = DD_INIT_PRETRAINED_RANDOM;
    assert_int_equal(dd_engine_create(m, &obj, train, &cfg, &e), DD_ERR_INVALID);
    cfg.init_mode = DD_INIT_RANDOM;
    assert_int_equal(dd_engine_create(m, &obj, train, &cfg, &e), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "pretrained"));
    cfg.init_mode = DD_INIT_PRETRAINED_RANDOM;
    cfg.theta_pool = dd_netpool_train_members(pool, &cfg.theta_pool_size);
    assert_int_equal(cfg.theta_pool_size, NETS - HOLDOUT);
    assert_int_equal(dd_engine_create(m, &obj, train, &cfg, &e), DD_OK);
    assert_int_equal(dd_engine_run(e), DD_OK);
    dd_distilled *set = NULL;
    assert_int_equal(dd_engine_export(e, &set), DD_OK);
    dd_engine_destroy(e);

    dd_eval_settings es;
    dd_eval_settings_defaults(&es);
    es.n_baselines = 0;
    es.search.max_iterations = 20;
    es.nets = 100; // capped to the held-out members
    es.eval_pool = dd_netpool_heldout_members(pool, &es.eval_pool_size);
    dd_eval_report ev;
    assert_int_equal(dd_evaluate_run(m, &obj, train, test, set, NULL, &cfg, &es, &ev), DD_OK);
    assert_int_equal(ev.nets, HOLDOUT);
    assert_int_equal(ev.distilled.nets, HOLDOUT);
    assert_int_equal(ev.distilled.n_metrics, 4);
    const double succ_before = ev.untrained.metric_mean[0],
                 succ_after = ev.distilled.metric_mean[0];
    const double other_before = ev.untrained.metric_mean[1],
                 other_after = ev.distilled.metric_mean[1];
    fprintf(stderr, "attack: success %.3f -> %.3f, other classes %.3f -> %.3f, relabel %.3f/%.3f\n",
            succ_before, succ_after, other_before, other_after, ev.extra[0].stats.metric_mean[0],
            ev.extra[0].stats.metric_mean[1]);
    assert_true(succ_before < 0.1);
    assert_true(succ_after > 0.6);
    assert_true(other_after > other_before - 0.08);
    assert_int_equal(ev.n_extra, 1);
    assert_string_equal(ev.extra[0].name, "relabel");
    assert_int_equal(ev.extra[0].set->labels[0], 1);

    // metrics.json carries the objective's section with its declared keys.
    char dir[] = "/tmp/test_poison_XXXXXX";
    assert_non_null(mkdtemp(dir));
    dd_report_info ri = {.out_dir = dir,
                         .run_name = "t",
                         .objective = "poison",
                         .set = set,
                         .distill = &cfg,
                         .eval = &ev};
    assert_int_equal(dd_report_write(&ri), DD_OK);
    char path[512], buf[16384];
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    const char *sec = strstr(buf, "\"attack\": {");
    assert_non_null(sec);
    char want[128];
    snprintf(want, sizeof want, "\"success_mean\": %.10g", succ_after);
    assert_non_null(strstr(sec, want));
    assert_non_null(strstr(sec, "\"other_classes_accuracy_before\""));
    assert_non_null(strstr(sec, "\"other_classes_accuracy_after\""));
    assert_non_null(strstr(sec, "\"nets\": 6"));
    assert_non_null(strstr(sec, "\"relabel\": {\"success_mean\""));
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);

    dd_eval_report_release(&ev);
    dd_distilled_destroy(set);
    dd_objective_handle_release(&obj);
    dd_options_destroy(o);
    dd_netpool_destroy(pool);
    dd_model_destroy(m);
    dd_dataset_destroy(train);
    dd_dataset_destroy(test);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_is_relabelled_cross_entropy),
        cmocka_unit_test(test_gradient_vs_finite_differences),
        cmocka_unit_test(test_keep_predictions),
        cmocka_unit_test(test_metrics_and_baseline),
        cmocka_unit_test(test_end_to_end_attack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
