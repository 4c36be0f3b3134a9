/* distill — baselines: random real images, class averages, k-means centroids. */
#include "engine/baselines.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute/threads.h"

static const char *const baseline_names[DD_BASELINE_COUNT] = {"random", "average", "kmeans",
                                                              "best_of_random"};

dd_status dd_baseline_parse(const char *name, dd_baseline_kind *out) {
    for (int i = 0; i < DD_BASELINE_COUNT; i++) {
        if (name && strcmp(name, baseline_names[i]) == 0) {
            *out = (dd_baseline_kind)i;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_INVALID,
                        "unknown baseline '%s' (expected random|average|kmeans|best_of_random)",
                        name ? name : "(null)");
}

const char *dd_baseline_name(dd_baseline_kind k) {
    return (unsigned)k < DD_BASELINE_COUNT ? baseline_names[k] : "?";
}

static double sqdist(const float *a, const float *b, size_t d) {
    double s = 0.0;
    for (size_t i = 0; i < d; i++) {
        double t = (double)a[i] - (double)b[i];
        s += t * t;
    }
    return s;
}

/* Scratch of one k-means run. */
typedef struct kmeans_work {
    double *dmin;    // n: squared distance of each point to its nearest centre
    int32_t *assign; // n
    double *sums;    // k × d
    int64_t *count;  // k
} kmeans_work;

static void kmeans_work_free(kmeans_work *w) {
    free(w->dmin);
    free(w->assign);
    free(w->sums);
    free(w->count);
}

static double sum_of(const double *v, int64_t n) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++)
        total += v[i];
    return total;
}

/* The next k-means++ centre: index i drawn with probability ∝ dmin[i]. */
static int64_t kmeanspp_pick(const double *dmin, int64_t n, dd_rng *r) {
    double total = sum_of(dmin, n);
    if (!(total > 0.0)) // fewer distinct points than k
        return (int64_t)dd_rng_below(r, (uint64_t)n);
    double u = (double)(dd_rng_u64(r) >> 11) * 0x1.0p-53 * total, acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        acc += dmin[i];
        if (acc > u) return i;
    }
    return n - 1;
}

/* k-means++: first centre uniform, then each with probability ∝ D(x)².
 * Leaves dmin[i] = the squared distance of point i to its nearest centre. */
static void kmeanspp_seed(const float *x, int64_t n, size_t d, int k, dd_rng *r, int nt,
                          float *centroids, double *dmin) {
    int64_t first = (int64_t)dd_rng_below(r, (uint64_t)n);
    memcpy(centroids, x + (size_t)first * d, d * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++)
        dmin[i] = sqdist(x + (size_t)i * d, centroids, d);
    for (int c = 1; c < k; c++) {
        int64_t pick = kmeanspp_pick(dmin, n, r);
        float *cc = centroids + (size_t)c * d;
        memcpy(cc, x + (size_t)pick * d, d * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; i++) {
            double t = sqdist(x + (size_t)i * d, cc, d);
            if (t < dmin[i]) dmin[i] = t;
        }
    }
}

/* Lloyd's assignment step: each point to its nearest centroid (the first of
 * equals), its squared distance in dmin. Returns how many points moved. */
static int64_t kmeans_assign(const float *x, int64_t n, size_t d, int k, const float *centroids,
                             int nt, double *dmin, int32_t *assign) {
    int64_t changed = 0;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(+ : changed)
    for (int64_t i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        int best = 0;
        double bd = DBL_MAX;
        for (int c = 0; c < k; c++) {
            double t = sqdist(xi, centroids + (size_t)c * d, d);
            if (t < bd) {
                bd = t;
                best = c;
            }
        }
        dmin[i] = bd;
        if (assign[i] != best) changed++;
        assign[i] = best;
    }
    return changed;
}

/* Lloyd's update step: each centroid to the mean of its points; an empty
 * cluster is re-seeded with the worst-fitted point. */
static void kmeans_update(const float *x, int64_t n, size_t d, int k, kmeans_work *w,
                          float *centroids) {
    memset(w->sums, 0, (size_t)k * d * sizeof *w->sums);
    memset(w->count, 0, (size_t)k * sizeof *w->count);
    for (int64_t i = 0; i < n; i++) {
        double *sc = w->sums + (size_t)w->assign[i] * d;
        const float *xi = x + (size_t)i * d;
        for (size_t j = 0; j < d; j++)
            sc[j] += xi[j];
        w->count[w->assign[i]]++;
    }
    for (int c = 0; c < k; c++) {
        float *cc = centroids + (size_t)c * d;
        if (w->count[c] > 0) {
            for (size_t j = 0; j < d; j++)
                cc[j] = (float)(w->sums[(size_t)c * d + j] / w->count[c]);
        } else {
            int64_t far = 0;
            for (int64_t i = 1; i < n; i++)
                if (w->dmin[i] > w->dmin[far]) far = i;
            memcpy(cc, x + (size_t)far * d, d * sizeof(float));
            w->dmin[far] = 0.0;
        }
    }
}

dd_status dd_kmeans(const float *x, int64_t n, size_t d, int k, int max_iter, dd_rng *r,
                    int nthreads, float *centroids, int32_t *assign_out, double *inertia) {
    if (k < 1 || n < 1)
        return dd_error_set(DD_ERR_INVALID, "k-means: need k >= 1 and points (k=%d, n=%lld)", k,
                            (long long)n);
    kmeans_work w = {malloc((size_t)n * sizeof *w.dmin), malloc((size_t)n * sizeof *w.assign),
                     malloc((size_t)k * d * sizeof *w.sums), malloc((size_t)k * sizeof *w.count)};
    if (!w.dmin || !w.assign || !w.sums || !w.count) {
        kmeans_work_free(&w);
        return dd_error_set(DD_ERR_NOMEM, "k-means: out of memory (n=%lld, d=%zu)", (long long)n,
                            d);
    }
    const int nt = dd_threads_resolve(nthreads);
    kmeanspp_seed(x, n, d, k, r, nt, centroids, w.dmin);
    for (int64_t i = 0; i < n; i++)
        w.assign[i] = -1;
    double total = 0.0;
    for (int it = 0; it < (max_iter > 0 ? max_iter : 1); it++) {
        int64_t changed = kmeans_assign(x, n, d, k, centroids, nt, w.dmin, w.assign);
        total = sum_of(w.dmin, n);
        if (changed == 0) break;
        kmeans_update(x, n, d, k, &w, centroids);
    }
    if (assign_out) memcpy(assign_out, w.assign, (size_t)n * sizeof *w.assign);
    if (inertia) *inertia = total;
    kmeans_work_free(&w);
    return DD_OK;
}

/* Indices of the training images of each class: idx[off[c] .. off[c+1]). */
static dd_status class_index(const dd_dataset *t, int64_t **idx, int64_t **off) {
    const int K = t->n_classes;
    *idx = malloc((size_t)(t->n > 0 ? t->n : 1) * sizeof **idx);
    *off = calloc((size_t)K + 1, sizeof **off);
    if (!*idx || !*off) {
        free(*idx);
        free(*off);
        return dd_error_set(DD_ERR_NOMEM, "baselines: out of memory");
    }
    for (int64_t i = 0; i < t->n; i++)
        if (t->labels[i] >= 0 && t->labels[i] < K) (*off)[t->labels[i] + 1]++;
    for (int c = 0; c < K; c++)
        (*off)[c + 1] += (*off)[c];
    int64_t *fill = malloc((size_t)K * sizeof *fill);
    if (!fill) {
        free(*idx);
        free(*off);
        return dd_error_set(DD_ERR_NOMEM, "baselines: out of memory");
    }
    memcpy(fill, *off, (size_t)K * sizeof *fill);
    for (int64_t i = 0; i < t->n; i++)
        if (t->labels[i] >= 0 && t->labels[i] < K) (*idx)[fill[t->labels[i]]++] = i;
    free(fill);
    for (int c = 0; c < K; c++)
        if ((*off)[c + 1] == (*off)[c]) {
            free(*idx);
            free(*off);
            return dd_error_set(DD_ERR_INVALID, "baselines: class %d (%s) has no training images",
                                c, t->class_names ? t->class_names[c] : "?");
        }
    return DD_OK;
}

/* What the three builders share: the training set by class and the set
 * being filled. */
typedef struct baseline_ctx {
    const dd_dataset *train;
    dd_distilled *d;
    const int64_t *idx, *off; // class_index
    size_t D;                 // floats per image
    int K, ipc, per_class;    // classes, images per class per step, steps × ipc
} baseline_ctx;

/* Where the q-th image of class c goes (q = s × ipc + r < per_class): step
 * s, image r × K + c, so that image j of a step has class j % K. */
static float *baseline_slot(const baseline_ctx *b, int c, int q) {
    const int st = q / b->ipc, r = q % b->ipc;
    return b->d->images + ((size_t)st * (size_t)b->d->per_step + (size_t)r * b->K + c) * b->D;
}

/* Each slot: a uniformly drawn training image of its class. */
static dd_status build_random(const baseline_ctx *b, uint64_t seed) {
    dd_rng r = dd_rng_make(seed, DD_STREAM_BASELINE_RANDOM);
    for (int c = 0; c < b->K; c++) {
        const int64_t nc = b->off[c + 1] - b->off[c];
        for (int q = 0; q < b->per_class; q++) {
            int64_t i = b->idx[b->off[c] + (int64_t)dd_rng_below(&r, (uint64_t)nc)];
            DD_TRY(dd_dataset_gather_range(b->train, i, 1, baseline_slot(b, c, q)));
        }
    }
    return DD_OK;
}

/* Images a class average reads per gather. */
#define AVERAGE_CHUNK 256

/* Every slot of a class: the class's mean image. */
static dd_status build_average(const baseline_ctx *b) {
    const size_t D = b->D;
    double *acc = calloc(D, sizeof *acc);
    float *x = dd_alloc_floats(AVERAGE_CHUNK * D);
    dd_status s = acc && x ? DD_OK : dd_error_set(DD_ERR_NOMEM, "baselines: out of memory");
    for (int c = 0; s == DD_OK && c < b->K; c++) {
        memset(acc, 0, D * sizeof *acc);
        for (int64_t p = b->off[c]; s == DD_OK && p < b->off[c + 1]; p += AVERAGE_CHUNK) {
            const int64_t n = b->off[c + 1] - p < AVERAGE_CHUNK ? b->off[c + 1] - p : AVERAGE_CHUNK;
            s = dd_dataset_gather(b->train, b->idx + p, n, x);
            for (int64_t q = 0; s == DD_OK && q < n; q++) {
                const float *xi = x + (size_t)q * D;
                for (size_t j = 0; j < D; j++)
                    acc[j] += xi[j];
            }
        }
        const double inv = 1.0 / (double)(b->off[c + 1] - b->off[c]);
        for (int q = 0; q < b->per_class; q++) {
            float *dst = baseline_slot(b, c, q);
            for (size_t j = 0; j < D; j++)
                dst[j] = (float)(acc[j] * inv);
        }
    }
    free(acc);
    dd_free(x);
    return s;
}

/* The slots of a class: its k-means centroids, k = per_class, each class
 * with its own random stream. */
static dd_status build_kmeans(const baseline_ctx *b, uint64_t seed, int nthreads) {
    const size_t D = b->D;
    int64_t maxn = 0;
    for (int c = 0; c < b->K; c++)
        if (b->off[c + 1] - b->off[c] > maxn) maxn = b->off[c + 1] - b->off[c];
    float *buf = malloc((size_t)maxn * D * sizeof *buf);
    float *cent = malloc((size_t)b->per_class * D * sizeof *cent);
    dd_status s = DD_OK;
    if (!buf || !cent) s = dd_error_set(DD_ERR_NOMEM, "baselines: out of memory for k-means");
    for (int c = 0; s == DD_OK && c < b->K; c++) {
        const int64_t nc = b->off[c + 1] - b->off[c];
        // k-means runs on one class's images at a time, normalised
        s = dd_dataset_gather(b->train, b->idx + b->off[c], nc, buf);
        if (s != DD_OK) break;
        dd_rng r = dd_rng_make(seed, DD_STREAM_KMEANS + 0x100u * (uint64_t)(c + 1));
        s = dd_kmeans(buf, nc, D, b->per_class, 100, &r, nthreads, cent, NULL, NULL);
        for (int q = 0; s == DD_OK && q < b->per_class; q++)
            memcpy(baseline_slot(b, c, q), cent + (size_t)q * D, D * sizeof(float));
    }
    free(cent);
    free(buf);
    return s;
}

dd_status dd_baseline_build(dd_baseline_kind kind, const dd_dataset *train, int steps, int epochs,
                            int images_per_class, float lr, uint64_t seed, int nthreads,
                            dd_distilled **out) {
    *out = NULL;
    dd_distilled *d;
    DD_TRY(dd_distilled_create(steps, epochs, images_per_class, train->n_classes, train->channels,
                               train->height, train->width, lr, &d));
    memcpy(d->mean, train->mean, sizeof d->mean);
    memcpy(d->std, train->std, sizeof d->std);
    int64_t *idx, *off;
    dd_status s = class_index(train, &idx, &off);
    if (s != DD_OK) {
        dd_distilled_destroy(d);
        return s;
    }
    const baseline_ctx b = {train,
                            d,
                            idx,
                            off,
                            dd_dataset_image_size(train),
                            train->n_classes,
                            images_per_class,
                            steps * images_per_class};
    if (kind == DD_BASELINE_RANDOM)
        s = build_random(&b, seed);
    else if (kind == DD_BASELINE_AVERAGE)
        s = build_average(&b);
    else if (kind == DD_BASELINE_KMEANS)
        s = build_kmeans(&b, seed, nthreads);
    else
        s = dd_error_set(DD_ERR_INVALID, "baselines: unknown kind %d", (int)kind);
    free(idx);
    free(off);
    if (s != DD_OK) {
        dd_distilled_destroy(d);
        return s;
    }
    *out = d;
    return DD_OK;
}
