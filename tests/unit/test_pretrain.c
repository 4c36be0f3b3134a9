/* Tests of pretrained pools and the pretrain stage: pool storage (round
 * trip, damaged and foreign member files), source transforms, head
 * transfer, SGD, and a tiny pipeline (generated IDX data, pretrain →
 * distill → evaluate → report with the finetune objective) run twice to
 * show the stored pool is reused, keyed by its configuration. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "distill/host.h"
#include "distill/distill.h"
#include "engine/engine.h"
#include "run/pipeline.h"
#include "engine/netpool.h"
#include "data/transform.h"
#include "engine/train.h"
#include "run/stages.h"
#include "run/run.h"

static char g_tmp[256];

static int setup(void **st) {
    (void)st;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_pretrain_XXXXXX");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int teardown(void **st) {
    (void)st;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static char *tmp_path(const char *name) {
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_tmp, name);
    return buf[i];
}

/* ---- pool storage ---------------------------------------------------------- */

static void test_pool_round_trip(void **st) {
    (void)st;
    dd_netpool *p = NULL, *q = NULL;
    assert_int_equal(dd_netpool_create(3, 1, 50, &p), DD_OK);
    assert_int_equal(dd_netpool_create(0, 0, 50, &q), DD_ERR_INVALID);
    assert_int_equal(dd_netpool_create(2, 3, 50, &q), DD_ERR_INVALID);
    dd_netpool_key("model: x\n", p->key);
    assert_int_equal(strlen(p->key), 64);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 50; j++)
            p->theta[i][j] = (float)(i * 100 + j);
        p->accuracy[i] = 0.5 + 0.1 * i;
    }
    const char *dir = tmp_path("pool1");
    assert_int_equal(mkdir(dir, 0777), 0);
    // Not complete before the index is written.
    assert_int_equal(dd_netpool_create(3, 1, 50, &q), DD_OK);
    memcpy(q->key, p->key, sizeof q->key);
    for (int i = 0; i < 3; i++)
        assert_int_equal(dd_netpool_save_member(p, i, dir), DD_OK);
    assert_int_equal(dd_netpool_load(q, dir), DD_ERR_NOT_FOUND);
    assert_int_equal(dd_netpool_write_index(p, dir, "config\n"), DD_OK);
    assert_int_equal(dd_netpool_load(q, dir), DD_OK);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(q->theta[i], p->theta[i], 50 * sizeof(float));
        assert_true(q->accuracy[i] == p->accuracy[i]);
    }
    size_t n;
    const float *const *tr = dd_netpool_train_members(q, &n);
    assert_int_equal(n, 2);
    assert_ptr_equal(tr[1], q->theta[1]);
    const float *const *ho = dd_netpool_heldout_members(q, &n);
    assert_int_equal(n, 1);
    assert_ptr_equal(ho[0], q->theta[2]);
    // Another configuration's member is refused, naming the file.
    dd_netpool_key("model: y\n", q->key);
    assert_int_equal(dd_netpool_load_member(q, 0, dir), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "member-000.theta"));
    dd_netpool_destroy(q);
    // Another parameter count is refused.
    assert_int_equal(dd_netpool_create(3, 1, 49, &q), DD_OK);
    assert_int_equal(dd_netpool_load_member(q, 1, dir), DD_ERR_INVALID);
    dd_netpool_destroy(q);
    // A damaged member is refused (CRC), a missing one is NOT_FOUND.
    char path[600];
    snprintf(path, sizeof path, "%s/member-002.theta", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 60, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
    assert_int_equal(dd_netpool_create(3, 1, 50, &q), DD_OK);
    assert_int_not_equal(dd_netpool_load_member(q, 2, dir), DD_OK);
    assert_int_equal(dd_netpool_load_member(q, 2, tmp_path("nowhere")), DD_ERR_NOT_FOUND);
    dd_netpool_destroy(q);
    dd_netpool_destroy(p);
    dd_netpool_destroy(NULL);
}

/* ---- transforms, SGD, head transfer ------------------------------------------ */

/* Pixels of a float32 test dataset. */
#define PX(d) ((float *)(d)->pixels)

static dd_dataset *random_set(int n, int c, int h, int w, int k, uint64_t seed) {
    dd_dataset *d = NULL;
    assert_int_equal(dd_dataset_create("rand", DD_DTYPE_F32, n, c, h, w, k, &d), DD_OK);
    dd_rng r = dd_rng_make(seed, 1);
    dd_rng_normal(&r, PX(d), (size_t)n * c * h * w, 0.f, 1.f);
    for (int i = 0; i < n; i++)
        d->labels[i] = i % k;
    d->mean[0] = 0.3f;
    d->std[0] = 0.4f;
    return d;
}

static void test_transforms(void **st) {
    (void)st;
    dd_dataset *d = random_set(20, 1, 5, 5, 4, 1), *a = NULL, *b = NULL;
    dd_transform t;
    assert_int_equal(dd_transform_parse("invert", &t), DD_OK);
    assert_int_equal(dd_transform_parse("upside-down", &t), DD_ERR_INVALID);
    // invert: pixel p → 1 − p in normalised units; twice is the identity.
    assert_int_equal(dd_dataset_transformed(d, DD_TRANSFORM_INVERT, NULL, 0, 0, 1, &a), DD_OK);
    const float p0 = PX(d)[7] * 0.4f + 0.3f, q0 = PX(a)[7] * 0.4f + 0.3f;
    assert_true(fabsf(p0 + q0 - 1.f) < 1e-5f);
    assert_int_equal(dd_dataset_transformed(a, DD_TRANSFORM_INVERT, NULL, 0, 0, 1, &b), DD_OK);
    for (int i = 0; i < 20 * 25; i++)
        assert_true(fabsf(PX(b)[i] - PX(d)[i]) < 1e-5f);
    dd_dataset_destroy(a);
    dd_dataset_destroy(b);
    // On stored bytes, invert is 255 − p, computed on the bytes (no float
    // round trip), and the transformed set stays uint8.
    dd_dataset *u = NULL;
    assert_int_equal(dd_dataset_create("bytes", DD_DTYPE_U8, 3, 1, 2, 2, 2, &u), DD_OK);
    for (int i = 0; i < 12; i++)
        ((uint8_t *)u->pixels)[i] = (uint8_t)(i * 20);
    u->mean[0] = 0.3f;
    u->std[0] = 0.4f;
    assert_int_equal(dd_dataset_transformed(u, DD_TRANSFORM_INVERT, NULL, 0, 0, 1, &a), DD_OK);
    assert_int_equal(a->dtype, DD_DTYPE_U8);
    for (int i = 0; i < 12; i++)
        assert_int_equal(((uint8_t *)a->pixels)[i], 255 - i * 20);
    float xa[12];
    assert_int_equal(dd_dataset_gather_range(a, 0, 3, xa), DD_OK);
    for (int i = 0; i < 12; i++)
        assert_true(fabsf(xa[i] * 0.4f + 0.3f - (1.f - (float)(i * 20) / 255.f)) < 1e-5f);
    dd_dataset_destroy(a);
    dd_dataset_destroy(u);
    // rotate90: four quarter turns are the identity, one is not.
    dd_dataset *cur = d;
    for (int k = 0; k < 4; k++) {
        dd_dataset *nx = NULL;
        assert_int_equal(dd_dataset_transformed(cur, DD_TRANSFORM_ROTATE90, NULL, 0, 0, 1, &nx),
                         DD_OK);
        if (k == 0) assert_memory_not_equal(PX(nx), PX(d), 25 * sizeof(float));
        if (cur != d) dd_dataset_destroy(cur);
        cur = nx;
    }
    assert_memory_equal(PX(cur), PX(d), 20 * 25 * sizeof(float));
    dd_dataset_destroy(cur);
    // hflip moves column 0 to column 4.
    assert_int_equal(dd_dataset_transformed(d, DD_TRANSFORM_HFLIP, NULL, 0, 0, 1, &a), DD_OK);
    assert_true(PX(a)[4] == PX(d)[0]);
    dd_dataset_destroy(a);
    // Class subset and a bounded random subset keep labels and order.
    const int32_t keep[2] = {1, 3};
    assert_int_equal(dd_dataset_transformed(d, DD_TRANSFORM_NONE, keep, 2, 0, 1, &a), DD_OK);
    assert_int_equal(a->n, 10);
    for (int i = 0; i < a->n; i++)
        assert_true(a->labels[i] == 1 || a->labels[i] == 3);
    assert_int_equal(a->n_classes, 4);
    dd_dataset_destroy(a);
    assert_int_equal(dd_dataset_transformed(d, DD_TRANSFORM_NONE, NULL, 0, 7, 1, &a), DD_OK);
    assert_int_equal(a->n, 7);
    dd_dataset_destroy(a);
    const int32_t bad[1] = {4};
    assert_int_equal(dd_dataset_transformed(d, DD_TRANSFORM_NONE, bad, 1, 0, 1, &a),
                     DD_ERR_INVALID);
    dd_dataset_destroy(d);
    d = random_set(4, 1, 3, 5, 2, 1);
    assert_int_equal(dd_dataset_transformed(d, DD_TRANSFORM_ROTATE90, NULL, 0, 0, 1, &a),
                     DD_ERR_INVALID);
    dd_dataset_destroy(d);
}

static dd_status build_mlp(dd_graph *g, const dd_options *o, int c, int h, int w, int n_out) {
    (void)o;
    (void)c;
    (void)h;
    (void)w;
    DD_TRY(dd_graph_linear(g, 8));
    DD_TRY(dd_graph_relu(g));
    return dd_graph_linear(g, n_out);
}
static const dd_model_ops mlp_ops = {.struct_size = sizeof(dd_model_ops), .build = build_mlp};
static const dd_component mlp_comp = {.struct_size = sizeof(dd_component),
                                      .kind = DD_COMPONENT_MODEL,
                                      .name = "t-mlp",
                                      .description = "test MLP",
                                      .ops = &mlp_ops};

static void test_sgd_and_transfer(void **st) {
    (void)st;
    // Separable data: the label is the sign pattern of two features.
    dd_dataset *d = random_set(400, 1, 1, 6, 4, 3);
    for (int i = 0; i < 400; i++)
        d->labels[i] = (PX(d)[i * 6] > 0) * 2 + (PX(d)[i * 6 + 1] > 0);
    dd_model_config mc = {sizeof mc, &mlp_comp, NULL, 1, 1, 6, 4, DD_BACKEND_REFERENCE};
    dd_model *m = NULL, *m3 = NULL;
    assert_int_equal(dd_model_create(&mc, &m), DD_OK);
    float *th = dd_alloc_floats(dd_model_param_count(m));
    assert_int_equal(dd_model_init_params(m, th, "xavier", 1.f, 5), DD_OK);
    double before, after;
    assert_int_equal(dd_pretrain_accuracy(m, th, d, &before), DD_OK);
    dd_sgd_config sc;
    dd_sgd_config_defaults(&sc);
    sc.epochs = 20;
    sc.batch = 32;
    sc.lr = 0.1;
    assert_int_equal(dd_sgd_train(m, th, d, &sc), DD_OK);
    assert_int_equal(dd_pretrain_accuracy(m, th, d, &after), DD_OK);
    assert_true(after > 0.9);
    assert_true(after > before + 0.3);
    sc.lr = 1e6; // diverges: a clear error, never NaN parameters silently
    assert_int_equal(dd_sgd_train(m, th, d, &sc), DD_ERR_NUMERIC);
    // Transfer into a 3-class model: hidden layer copied, head new.
    assert_int_equal(dd_model_init_params(m, th, "xavier", 1.f, 5), DD_OK);
    mc.n_outputs = 3;
    assert_int_equal(dd_model_create(&mc, &m3), DD_OK);
    float *t3 = dd_alloc_floats(dd_model_param_count(m3));
    assert_int_equal(dd_pretrain_transfer(m, th, m3, "xavier", 1.f, 9, t3), DD_OK);
    assert_memory_equal(t3, th, (6 * 8 + 8) * sizeof(float));
    assert_int_equal(dd_model_param_count(m3), 6 * 8 + 8 + 8 * 3 + 3);
    dd_free(t3);
    dd_free(th);
    dd_model_destroy(m3);
    dd_model_destroy(m);
    dd_dataset_destroy(d);
}

/* ---- the stage in a pipeline --------------------------------------------------- */

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* MNIST-format IDX files of a learnable toy problem: class c is a bright
 * 6×6 square at a class-specific place, on noise. */
static void write_idx(const char *dir, const char *prefix, int n, uint64_t seed) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    FILE *fl = fopen(path, "wb");
    assert_non_null(fi);
    assert_non_null(fl);
    put_be32(fi, 0x803);
    put_be32(fi, (uint32_t)n);
    put_be32(fi, 28);
    put_be32(fi, 28);
    put_be32(fl, 0x801);
    put_be32(fl, (uint32_t)n);
    dd_rng r = dd_rng_make(seed, 3);
    unsigned char img[28 * 28];
    for (int i = 0; i < n; i++) {
        const int c = (int)dd_rng_below(&r, 10);
        for (int p = 0; p < 28 * 28; p++)
            img[p] = (unsigned char)dd_rng_below(&r, 90);
        const int y0 = 2 + (c / 5) * 12, x0 = 1 + (c % 5) * 5;
        for (int y = y0; y < y0 + 6; y++)
            for (int x = x0; x < x0 + 6 && x < 28; x++)
                img[y * 28 + x] = 230;
        fwrite(img, 1, sizeof img, fi);
        fputc(c, fl);
    }
    fclose(fi);
    fclose(fl);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int count_pools(const char *root) {
    DIR *d = opendir(root);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static dd_status run_pipeline(const dd_registry *reg, const char *yaml, const char *out,
                              const char *const *overrides) {
    dd_pipeline *p = NULL;
    dd_status s = dd_pipeline_load(yaml, overrides, reg, &p);
    if (s != DD_OK) return s;
    dd_run_options ro = {.struct_size = sizeof ro, .out_dir = out, .offline = 1};
    s = dd_run_pipeline(reg, p, &ro);
    if (s != DD_OK) fprintf(stderr, "run %s: %s\n", out, dd_error_message());
    dd_pipeline_destroy(p);
    return s;
}

static void test_pretrain_stage_pipeline(void **st) {
    (void)st;
    char data[512], yaml[512];
    snprintf(data, sizeof data, "%s", tmp_path("idx"));
    assert_int_equal(mkdir(data, 0777), 0);
    write_idx(data, "train", 600, 1);
    write_idx(data, "t10k", 300, 2);
    snprintf(yaml, sizeof yaml, "%s", tmp_path("adapt.yaml"));
    FILE *f = fopen(yaml, "w");
    assert_non_null(f);
    fprintf(f,
            "name: tiny-adapt\nseed: 3\nstages: [load, pretrain, distill, evaluate, report]\n"
            "dataset: {plugin: mnist, name: mnist, path: %s, verify: false}\n"
            "model: {plugin: linear, loss: cross_entropy, backend: reference}\n"
            "objective: {plugin: finetune}\n"
            "pretrain: {nets: 5, holdout: 3, epochs: 1, lr: 0.005, batch: 32, transform: hflip,\n"
            "           pool_dir: %s}\n"
            "distill: {steps: 2, epochs: 1, iterations: 60, batch_real: 200, lr_init: 0.1,\n"
            "          nets_per_iteration: 2, checkpoint_every: 0}\n"
            "evaluate: {nets: 10, baselines: [random], lr_search: 5, full_training_epochs: 1,\n"
            "           full_training_lr: 0.05}\n"
            "report: {png: false}\n",
            data, tmp_path("pools"));
    fclose(f);
    dd_registry *reg = NULL;
    assert_int_equal(dd_registry_load(1, &reg), DD_OK);
    dd_status s = run_pipeline(reg, yaml, tmp_path("run1"), NULL);
    if (s != DD_OK) fprintf(stderr, "%s\n", dd_error_message());
    assert_int_equal(s, DD_OK);
    assert_int_equal(count_pools(tmp_path("pools")), 1);
    // The pool directory: member files, config.yaml, accuracies.json.
    DIR *d = opendir(tmp_path("pools"));
    struct dirent *e;
    char pool_dir[800] = "";
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(pool_dir, sizeof pool_dir, "%s/%s", tmp_path("pools"), e->d_name);
    closedir(d);
    char path[900];
    snprintf(path, sizeof path, "%s/member-004.theta", pool_dir);
    struct stat sb1, sb2;
    assert_int_equal(stat(path, &sb1), 0);
    snprintf(path, sizeof path, "%s/config.yaml", pool_dir);
    const char *cfg = read_all(path);
    assert_non_null(cfg);
    assert_non_null(strstr(cfg, "transform: hflip"));
    snprintf(path, sizeof path, "%s/accuracies.json", pool_dir);
    assert_non_null(read_all(path));
    assert_non_null(strstr(read_all(path), "\"nets\": 5"));

    // metrics.json: the objective's section, on the 3 held-out members.
    snprintf(path, sizeof path, "%s/metrics.json", tmp_path("run1"));
    const char *mj = read_all(path);
    assert_non_null(mj);
    const char *sec = strstr(mj, "\"adaptation\": {");
    assert_non_null(sec);
    assert_non_null(strstr(sec, "\"accuracy_before_mean\""));
    assert_non_null(strstr(sec, "\"accuracy_after_mean\""));
    assert_non_null(strstr(sec, "\"accuracy_after_std\""));
    assert_non_null(strstr(sec, "\"nets\": 3"));
    assert_non_null(strstr(mj, "\"full_training\": {"));
    assert_non_null(strstr(mj, "\"init_mode\": \"pretrained-random\""));
    double before = -1, after = -1;
    sscanf(strstr(sec, "\"accuracy_before_mean\": ") + 24, "%lf", &before);
    sscanf(strstr(sec, "\"accuracy_after_mean\": ") + 23, "%lf", &after);
    fprintf(stderr, "tiny adaptation: accuracy %.3f -> %.3f\n", before, after);
    assert_true(after > before + 0.1);

    // Same configuration, another run: the pool is reused, not retrained.
    const char *distill_only[] = {"distill.iterations=5", "evaluate.full_training_epochs=0", NULL};
    assert_int_equal(run_pipeline(reg, yaml, tmp_path("run2"), distill_only), DD_OK);
    snprintf(path, sizeof path, "%s/member-004.theta", pool_dir);
    assert_int_equal(stat(path, &sb2), 0);
    assert_true(sb1.st_mtim.tv_sec == sb2.st_mtim.tv_sec &&
                sb1.st_mtim.tv_nsec == sb2.st_mtim.tv_nsec);
    assert_int_equal(count_pools(tmp_path("pools")), 1);
    // The split is not part of the key; the training configuration is.
    const char *other[] = {"pretrain.holdout=2", "pretrain.epochs=2", "distill.iterations=2",
                           "evaluate.full_training_epochs=0", NULL};
    assert_int_equal(run_pipeline(reg, yaml, tmp_path("run3"), other), DD_OK);
    assert_int_equal(count_pools(tmp_path("pools")), 2);
    // holdout >= nets leaves nothing to distill from: a clear error.
    const char *bad[] = {"pretrain.holdout=5", NULL};
    assert_int_equal(run_pipeline(reg, yaml, tmp_path("run4"), bad), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "holdout"));
    dd_registry_destroy(reg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_round_trip),
        cmocka_unit_test(test_transforms),
        cmocka_unit_test(test_sgd_and_transfer),
        cmocka_unit_test(test_pretrain_stage_pipeline),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
