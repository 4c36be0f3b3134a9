/* distill — pools of pretrained networks in memory and on disk. */
#define _POSIX_C_SOURCE 200809L
#include "engine/netpool.h"
#include "base/error.h"
#include "base/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/checkpoint.h"
#include "distill/tensor.h"
#include "base/hash.h"
#include "base/json.h"

dd_status dd_netpool_create(int n, int holdout, size_t n_params, dd_netpool **out) {
    *out = NULL;
    if (n < 1 || holdout < 0 || holdout > n || n_params == 0)
        return dd_error_set(DD_ERR_INVALID,
                            "pool: need n >= 1 members, 0 <= holdout <= n and parameters "
                            "(n=%d, holdout=%d, parameters=%zu)",
                            n, holdout, n_params);
    dd_netpool *p = calloc(1, sizeof *p);
    if (!p) return dd_error_set(DD_ERR_NOMEM, "pool: out of memory");
    p->n = n;
    p->holdout = holdout;
    p->n_params = n_params;
    p->theta = calloc((size_t)n, sizeof *p->theta);
    p->accuracy = malloc((size_t)n * sizeof *p->accuracy);
    if (!p->theta || !p->accuracy) goto nomem;
    for (int i = 0; i < n; i++) {
        p->accuracy[i] = -1.0;
        if (!(p->theta[i] = dd_alloc_floats(n_params))) goto nomem;
    }
    *out = p;
    return DD_OK;
nomem:
    dd_netpool_destroy(p);
    return dd_error_set(DD_ERR_NOMEM, "pool: out of memory (%d members of %zu parameters)", n,
                        n_params);
}

void dd_netpool_destroy(dd_netpool *p) {
    if (!p) return;
    if (p->theta)
        for (int i = 0; i < p->n; i++)
            dd_free(p->theta[i]);
    free(p->theta);
    free(p->accuracy);
    free(p);
}

const float *const *dd_netpool_train_members(const dd_netpool *p, size_t *count) {
    *count = (size_t)(p->n - p->holdout);
    return (const float *const *)p->theta;
}

const float *const *dd_netpool_heldout_members(const dd_netpool *p, size_t *count) {
    *count = (size_t)p->holdout;
    return (const float *const *)(p->theta + (p->n - p->holdout));
}

void dd_netpool_key(const char *text, char key[65]) {
    dd_sha256 c;
    uint8_t d[DD_SHA256_SIZE];
    dd_sha256_init(&c);
    dd_sha256_update(&c, text, strlen(text));
    dd_sha256_final(&c, d);
    dd_hex(d, sizeof d, key);
}

static void member_path(char *buf, size_t n, const char *dir, int i) {
    snprintf(buf, n, "%s/member-%03d.theta", dir, i);
}

dd_status dd_netpool_save_member(const dd_netpool *p, int i, const char *dir) {
    char path[4200];
    member_path(path, sizeof path, dir, i);
    const uint64_t head[2] = {(uint64_t)p->n_params, (uint64_t)i};
    dd_ckpt_writer *w;
    DD_TRY(dd_ckpt_writer_create(&w));
    dd_status s = dd_ckpt_writer_add(w, "pool-member", head, sizeof head);
    if (s == DD_OK) s = dd_ckpt_writer_add(w, "accuracy", &p->accuracy[i], sizeof(double));
    if (s == DD_OK) s = dd_ckpt_writer_add(w, "theta", p->theta[i], p->n_params * sizeof(float));
    if (s == DD_OK) s = dd_ckpt_writer_add(w, "key", p->key, sizeof p->key);
    if (s == DD_OK) s = dd_ckpt_writer_commit(w, path);
    dd_ckpt_writer_destroy(w);
    return s;
}

dd_status dd_netpool_load_member(dd_netpool *p, int i, const char *dir) {
    char path[4200];
    member_path(path, sizeof path, dir, i);
    dd_ckpt *c;
    DD_TRY(dd_ckpt_read(path, &c));
    uint64_t head[2] = {0, 0};
    char key[65];
    dd_status s = dd_ckpt_get_exact(c, "pool-member", head, sizeof head);
    if (s == DD_OK && (head[0] != (uint64_t)p->n_params || head[1] != (uint64_t)i))
        s = dd_error_set(DD_ERR_INVALID,
                         "%s: member %llu with %llu parameters, expected member %d with %zu", path,
                         (unsigned long long)head[1], (unsigned long long)head[0], i, p->n_params);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "key", key, sizeof key);
    if (s == DD_OK && p->key[0] && strncmp(key, p->key, sizeof key) != 0)
        s = dd_error_set(DD_ERR_INVALID,
                         "%s: made by another configuration (key %.16s, expected %.16s)", path, key,
                         p->key);
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "accuracy", &p->accuracy[i], sizeof(double));
    if (s == DD_OK) s = dd_ckpt_get_exact(c, "theta", p->theta[i], p->n_params * sizeof(float));
    dd_ckpt_destroy(c);
    return s;
}

static dd_status write_text_atomic(const char *dir, const char *name, const char *text) {
    char *path = dd_fs_join(dir, name);
    if (!path) return dd_nomem();
    dd_status s = dd_fs_write_file(path, text, strlen(text));
    free(path);
    return s;
}

dd_status dd_netpool_write_index(const dd_netpool *p, const char *dir, const char *config_text) {
    DD_TRY(write_text_atomic(dir, "config.yaml", config_text ? config_text : ""));
    double sum = 0.0;
    for (int i = 0; i < p->n; i++)
        sum += p->accuracy[i];
    dd_strbuf b = DD_STRBUF_INIT;
    dd_json w;
    dd_json_init_buf(&w, &b);
    dd_json_object(&w, DD_JSON_LINES);
    dd_json_key(&w, "key");
    dd_json_string(&w, p->key);
    dd_json_key(&w, "nets");
    dd_json_int(&w, p->n);
    dd_json_key(&w, "parameters");
    dd_json_uint(&w, p->n_params);
    dd_json_key(&w, "mean_test_accuracy");
    dd_json_fixed(&w, sum / p->n, 6);
    dd_json_key(&w, "test_accuracy");
    dd_json_array(&w, DD_JSON_INLINE);
    for (int i = 0; i < p->n; i++)
        dd_json_fixed(&w, p->accuracy[i], 6);
    dd_json_array_end(&w);
    dd_json_object_end(&w);
    dd_status s = dd_json_finish(&w);
    if (s != DD_OK)
        dd_error_prefix("%s/accuracies.json", dir);
    else
        s = write_text_atomic(dir, "accuracies.json", dd_strbuf_str(&b));
    dd_strbuf_free(&b);
    return s;
}

dd_status dd_netpool_load(dd_netpool *p, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/accuracies.json", dir);
    if (access(path, F_OK) != 0)
        return dd_error_set(DD_ERR_NOT_FOUND, "%s: no complete pool here", dir);
    for (int i = 0; i < p->n; i++)
        DD_TRY(dd_netpool_load_member(p, i, dir));
    return DD_OK;
}
