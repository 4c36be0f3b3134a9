/* distill — a distilled set read from an .npz in the distilled.npz layout
 * (docs/output.md), written by distill or by any other tool: every array's
 * dtype and shape checked, the images grouped by their `step`. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/npy.h"
#include "distill/tensor.h"
#include "engine/distilled.h"

/* One array of the archive: the member's bytes and its parsed header. */
typedef struct npz_arr {
    uint8_t *buf;
    size_t len;
    dd_npy_array a;
    int present;
} npz_arr;

/* "(2, 1, 28, 28)" */
static const char *shape_str(const dd_npy_array *a, char *buf, size_t n) {
    size_t len = 0;
    len += (size_t)snprintf(buf + len, n - len, "(");
    for (int i = 0; i < a->ndim && len < n; i++)
        len +=
            (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (len < n) snprintf(buf + len, n - len, "%s)", a->ndim == 1 ? "," : "");
    return buf;
}

/* Reads `name`.npy; a missing optional member leaves arr->present 0. */
static dd_status read_arr(const char *path, const char *name, int required, npz_arr *arr) {
    memset(arr, 0, sizeof *arr);
    char member[64], label[4200];
    snprintf(member, sizeof member, "%s.npy", name);
    snprintf(label, sizeof label, "%s: array '%s'", path, name);
    dd_status s = dd_npz_read_member(path, member, 0, &arr->buf, &arr->len);
    if (s == DD_ERR_NOT_FOUND) {
        if (!required) return DD_OK;
        return dd_error_set(DD_ERR_PARSE,
                            "%s: no array '%s' (a distilled set needs 'images', 'labels' and "
                            "'lrs'; docs/output.md)",
                            path, name);
    }
    if (s == DD_OK) s = dd_npy_parse(label, arr->buf, arr->len, &arr->a);
    if (s != DD_OK) {
        free(arr->buf);
        arr->buf = NULL;
        return s;
    }
    arr->present = 1;
    return DD_OK;
}

static dd_status bad_shape(const char *path, const char *name, const dd_npy_array *a,
                           const char *want) {
    char sh[128];
    return dd_error_set(DD_ERR_PARSE, "%s: array '%s' has dtype '%s' and shape %s; expected %s",
                        path, name, a->descr, shape_str(a, sh, sizeof sh), want);
}

/* The order of the images: perm[s·M + j] = index in the file of image j of
 * step s (the images of each step in file order). */
static dd_status step_order(const char *path, const npz_arr *step, int64_t N, int S,
                            int64_t **perm_out) {
    const int64_t M = N / S;
    int64_t *perm = malloc((size_t)N * sizeof *perm);
    int64_t *fill = calloc((size_t)S, sizeof *fill);
    dd_status s = perm && fill ? DD_OK : dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    for (int64_t i = 0; s == DD_OK && i < N; i++) {
        int64_t k = step->present ? dd_npy_int_at(&step->a, (uint64_t)i) : i / M;
        if (k < 0 || k >= S)
            s = dd_error_set(DD_ERR_PARSE,
                             "%s: array 'step': image %lld belongs to step %lld, outside 0..%d "
                             "('lrs' has %d steps)",
                             path, (long long)i, (long long)k, S - 1, S);
        else if (fill[k] == M)
            s = dd_error_set(DD_ERR_PARSE,
                             "%s: array 'step': step %lld has more than %lld images (every step "
                             "needs the same count: %lld images / %d steps)",
                             path, (long long)k, (long long)M, (long long)N, S);
        else
            perm[k * M + fill[k]++] = i;
    }
    free(fill);
    if (s != DD_OK) {
        free(perm);
        return s;
    }
    *perm_out = perm;
    return DD_OK;
}

static dd_status check_shapes(const char *path, npz_arr *arr, int *S, int *E) {
    const dd_npy_array *x = &arr[0].a, *y = &arr[1].a, *l = &arr[2].a;
    if (x->kind != 'f' || x->ndim != 4 || x->shape[0] < 1 || x->shape[1] < 1 ||
        x->shape[1] > DD_MAX_CHANNELS || x->shape[2] < 1 || x->shape[3] < 1 ||
        x->shape[0] > 1 << 24 || x->shape[2] > 1 << 16 || x->shape[3] > 1 << 16)
        return bad_shape(path, "images", x,
                         "float32 (N, C, H, W) with 1 ≤ N ≤ 2^24, 1 ≤ C ≤ 4 and H, W ≤ 65536");
    if (l->kind != 'f' || l->ndim != 2 || l->shape[0] < 1 || l->shape[1] < 1 ||
        l->shape[0] * l->shape[1] > 1 << 20)
        return bad_shape(path, "lrs", l, "float32 (epochs, steps)");
    *E = (int)l->shape[0];
    *S = (int)l->shape[1];
    const int64_t N = x->shape[0];
    if (N % *S != 0) {
        char sx[128], sl[128];
        return dd_error_set(DD_ERR_PARSE,
                            "%s: array 'images' has shape %s and 'lrs' shape %s: %lld images do "
                            "not split into %d steps of the same size",
                            path, shape_str(x, sx, sizeof sx), shape_str(l, sl, sizeof sl),
                            (long long)N, *S);
    }
    const int hard = y->ndim == 1 && (y->kind == 'i' || y->kind == 'u');
    const int soft = y->ndim == 2 && y->kind == 'f';
    if (!(hard || soft) || y->shape[0] != N || (soft && y->shape[1] < 1)) {
        char want[160];
        snprintf(want, sizeof want, "integer (%lld,) (hard labels) or float32 (%lld, K) (soft)",
                 (long long)N, (long long)N);
        return bad_shape(path, "labels", y, want);
    }
    const dd_npy_array *st = &arr[3].a;
    if (arr[3].present && !(st->ndim == 1 && st->shape[0] == N && st->kind != 'f')) {
        char want[64];
        snprintf(want, sizeof want, "integer (%lld,)", (long long)N);
        return bad_shape(path, "step", st, want);
    }
    for (int k = 4; k < 6; k++) {
        const dd_npy_array *a = &arr[k].a;
        if (arr[k].present && !(a->kind == 'f' && a->ndim == 1 && a->shape[0] == x->shape[1])) {
            char want[64];
            snprintf(want, sizeof want, "float32 (%lld,) (one value per channel)",
                     (long long)x->shape[1]);
            return bad_shape(path, k == 4 ? "mean" : "std", a, want);
        }
    }
    for (uint64_t k = 0; k < l->count; k++) {
        float v = dd_npy_float_at(l, k);
        if (!isfinite(v) || v <= 0.f)
            return dd_error_set(DD_ERR_PARSE,
                                "%s: array 'lrs': element [%llu, %llu] is %g; step sizes must be "
                                "finite and > 0",
                                path, (unsigned long long)(k / (uint64_t)*S),
                                (unsigned long long)(k % (uint64_t)*S), (double)v);
    }
    return DD_OK;
}

/* Labels: hard ones in 0..65535 and the same at every position of every
 * step; soft ones finite. Sets the class count (largest label + 1, or K). */
static dd_status read_labels(const char *path, const dd_npy_array *y, const int64_t *perm,
                             int64_t N, int S, int *n_classes) {
    const int64_t M = N / S;
    if (y->ndim == 2) {
        for (uint64_t k = 0; k < y->count; k++)
            if (!isfinite(dd_npy_float_at(y, k)))
                return dd_error_set(DD_ERR_PARSE, "%s: array 'labels': row %llu is not finite",
                                    path, (unsigned long long)(k / (uint64_t)y->shape[1]));
        *n_classes = (int)y->shape[1];
        return DD_OK;
    }
    int64_t mx = -1;
    for (int64_t i = 0; i < N; i++) {
        int64_t v = dd_npy_int_at(y, (uint64_t)i);
        if (v < 0 || v > 65535)
            return dd_error_set(DD_ERR_PARSE,
                                "%s: array 'labels': label %lld of image %lld is out of range "
                                "(classes are 0..K−1)",
                                path, (long long)v, (long long)i);
        if (v > mx) mx = v;
    }
    for (int s = 1; s < S; s++)
        for (int64_t j = 0; j < M; j++) {
            int64_t a = dd_npy_int_at(y, (uint64_t)perm[j]);
            int64_t b = dd_npy_int_at(y, (uint64_t)perm[s * M + j]);
            if (a != b)
                return dd_error_set(DD_ERR_PARSE,
                                    "%s: array 'labels': image %lld of step %d has label %lld, "
                                    "image %lld of step 0 has %lld (every step must hold the same "
                                    "labels in the same order)",
                                    path, (long long)j, s, (long long)b, (long long)j,
                                    (long long)a);
        }
    *n_classes = (int)mx + 1;
    return DD_OK;
}

static dd_status fill_set(const char *path, npz_arr *arr, const int64_t *perm, int S, int E,
                          int n_classes, dd_distilled **out) {
    const dd_npy_array *x = &arr[0].a, *y = &arr[1].a, *l = &arr[2].a;
    const int64_t N = x->shape[0], M = N / S;
    // Created as one class of M images per step, then given the class count
    // the labels use; images_per_class stays 0 when M is not a multiple of
    // it (the caller, who knows the dataset, says which is wrong).
    dd_distilled *d = NULL;
    dd_status s = dd_distilled_create(S, E, (int)M, 1, (int)x->shape[1], (int)x->shape[2],
                                      (int)x->shape[3], 0.f, &d);
    if (s != DD_OK) {
        dd_error_prefix("%s", path);
        return s;
    }
    d->n_classes = n_classes;
    d->n_outputs = n_classes;
    d->images_per_class = M % n_classes == 0 ? (int)(M / n_classes) : 0;
    const size_t D = dd_distilled_image_size(d);
    for (int64_t i = 0; i < N; i++)
        for (size_t k = 0; k < D; k++)
            d->images[(size_t)i * D + k] = dd_npy_float_at(x, (uint64_t)perm[i] * D + k);
    for (uint64_t k = 0; k < l->count; k++)
        d->lrs[k] = dd_npy_float_at(l, k);
    if (y->ndim == 1) {
        for (int64_t j = 0; j < M; j++)
            d->labels[j] = (int32_t)dd_npy_int_at(y, (uint64_t)perm[j]);
    } else {
        const size_t K = (size_t)y->shape[1];
        d->n_outputs = (int)K;
        for (int64_t j = 0; j < M; j++)
            d->labels[j] = (int32_t)(j % n_classes);
        if (!(d->soft = dd_alloc_floats((size_t)N * K))) {
            dd_distilled_destroy(d);
            return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
        }
        for (int64_t i = 0; i < N; i++)
            for (size_t k = 0; k < K; k++)
                d->soft[(size_t)i * K + k] = dd_npy_float_at(y, (uint64_t)perm[i] * K + k);
    }
    for (int c = 0; c < d->channels; c++) {
        if (arr[4].present) d->mean[c] = dd_npy_float_at(&arr[4].a, (uint64_t)c);
        if (arr[5].present) d->std[c] = dd_npy_float_at(&arr[5].a, (uint64_t)c);
    }
    *out = d;
    return DD_OK;
}

dd_status dd_distilled_load_npz(const char *path, dd_distilled **out, int *has_norm) {
    *out = NULL;
    if (has_norm) *has_norm = 0;
    static const char *const names[] = {"images", "labels", "lrs", "step", "mean", "std"};
    enum { N_ARR = sizeof names / sizeof *names };
    npz_arr arr[N_ARR];
    memset(arr, 0, sizeof arr);
    dd_status s = DD_OK;
    for (int k = 0; s == DD_OK && k < N_ARR; k++)
        s = read_arr(path, names[k], k < 3, &arr[k]);
    int S = 0, E = 0, n_classes = 0;
    int64_t *perm = NULL;
    if (s == DD_OK) s = check_shapes(path, arr, &S, &E);
    if (s == DD_OK && arr[4].present != arr[5].present)
        s = dd_error_set(DD_ERR_PARSE, "%s: array '%s' without '%s' (give both or neither)", path,
                         arr[4].present ? "mean" : "std", arr[4].present ? "std" : "mean");
    if (s == DD_OK) s = step_order(path, &arr[3], arr[0].a.shape[0], S, &perm);
    if (s == DD_OK) s = read_labels(path, &arr[1].a, perm, arr[0].a.shape[0], S, &n_classes);
    if (s == DD_OK) s = fill_set(path, arr, perm, S, E, n_classes, out);
    if (s == DD_OK && has_norm) *has_norm = arr[4].present;
    free(perm);
    for (int k = 0; k < N_ARR; k++)
        free(arr[k].buf);
    return s;
}
