/* distill — baselines: random real images, class averages, k-means centroids. */
#include "engine/baselines.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute/threads.h"

static const char *const baseline_names[] = {"random", "average", "kmeans"};

dd_status dd_baseline_parse(const char *name, dd_baseline_kind *out) {
    for (int i = 0; i < 3; i++) {
        if (name && strcmp(name, baseline_names[i]) == 0) {
            *out = (dd_baseline_kind)i;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_INVALID, "unknown baseline '%s' (expected random|average|kmeans)",
                        name ? name : "(null)");
}

const char *dd_baseline_name(dd_baseline_kind k) {
    return (unsigned)k < 3 ? baseline_names[k] : "?";
}

static double sqdist(const float *a, const float *b, size_t d) {
    double s = 0.0;
    for (size_t i = 0; i < d; i++) {
        double t = (double)a[i] - (double)b[i];
        s += t * t;
    }
    return s;
}

dd_status dd_kmeans(const float *x, int64_t n, size_t d, int k, int max_iter, dd_rng *r,
                    int nthreads, float *centroids, int32_t *assign_out, double *inertia) {
    if (k < 1 || n < 1)
        return dd_error_set(DD_ERR_INVALID, "k-means: need k >= 1 and points (k=%d, n=%lld)", k,
                            (long long)n);
    double *dmin = malloc((size_t)n * sizeof *dmin);
    int32_t *assign = malloc((size_t)n * sizeof *assign);
    double *sums = malloc((size_t)k * d * sizeof *sums);
    int64_t *count = malloc((size_t)k * sizeof *count);
    if (!dmin || !assign || !sums || !count) {
        free(dmin);
        free(assign);
        free(sums);
        free(count);
        return dd_error_set(DD_ERR_NOMEM, "k-means: out of memory (n=%lld, d=%zu)", (long long)n,
                            d);
    }
    const int nt = dd_threads_resolve(nthreads);
    // k-means++: first centre uniform, then each with probability ∝ D(x)².
    int64_t first = (int64_t)dd_rng_below(r, (uint64_t)n);
    memcpy(centroids, x + (size_t)first * d, d * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++)
        dmin[i] = sqdist(x + (size_t)i * d, centroids, d);
    for (int c = 1; c < k; c++) {
        double total = 0.0;
        for (int64_t i = 0; i < n; i++)
            total += dmin[i];
        int64_t pick = 0;
        if (total > 0.0) {
            double u = (double)(dd_rng_u64(r) >> 11) * 0x1.0p-53 * total, acc = 0.0;
            pick = n - 1;
            for (int64_t i = 0; i < n; i++) {
                acc += dmin[i];
                if (acc > u) {
                    pick = i;
                    break;
                }
            }
        } else {
            pick = (int64_t)dd_rng_below(r, (uint64_t)n); // fewer distinct points than k
        }
        float *cc = centroids + (size_t)c * d;
        memcpy(cc, x + (size_t)pick * d, d * sizeof(float));
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; i++) {
            double t = sqdist(x + (size_t)i * d, cc, d);
            if (t < dmin[i]) dmin[i] = t;
        }
    }
    for (int64_t i = 0; i < n; i++)
        assign[i] = -1;
    double total = 0.0;
    for (int it = 0; it < (max_iter > 0 ? max_iter : 1); it++) {
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
        total = 0.0;
        for (int64_t i = 0; i < n; i++)
            total += dmin[i];
        if (changed == 0) break;
        memset(sums, 0, (size_t)k * d * sizeof *sums);
        memset(count, 0, (size_t)k * sizeof *count);
        for (int64_t i = 0; i < n; i++) {
            double *sc = sums + (size_t)assign[i] * d;
            const float *xi = x + (size_t)i * d;
            for (size_t j = 0; j < d; j++)
                sc[j] += xi[j];
            count[assign[i]]++;
        }
        for (int c = 0; c < k; c++) {
            float *cc = centroids + (size_t)c * d;
            if (count[c] > 0) {
                for (size_t j = 0; j < d; j++)
                    cc[j] = (float)(sums[(size_t)c * d + j] / count[c]);
            } else {
                // Re-seed an empty cluster with the worst-fitted point.
                int64_t far = 0;
                for (int64_t i = 1; i < n; i++)
                    if (dmin[i] > dmin[far]) far = i;
                memcpy(cc, x + (size_t)far * d, d * sizeof(float));
                dmin[far] = 0.0;
            }
        }
    }
    if (assign_out) memcpy(assign_out, assign, (size_t)n * sizeof *assign);
    if (inertia) *inertia = total;
    free(dmin);
    free(assign);
    free(sums);
    free(count);
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

dd_status dd_baseline_build(dd_baseline_kind kind, const dd_dataset *train, int steps, int epochs,
                            int images_per_class, float lr, uint64_t seed, int nthreads,
                            dd_distilled **out) {
    *out = NULL;
    dd_distilled *d;
    DD_TRY(dd_distilled_create(steps, epochs, images_per_class, train->n_classes, train->channels,
                               train->height, train->width, lr, &d));
    memcpy(d->mean, train->mean, sizeof d->mean);
    memcpy(d->std, train->std, sizeof d->std);
    const size_t D = dd_dataset_image_size(train);
    const int K = train->n_classes;
    const int per_class = steps * images_per_class;
    int64_t *idx, *off;
    dd_status s = class_index(train, &idx, &off);
    if (s != DD_OK) {
        dd_distilled_destroy(d);
        return s;
    }
    // Slot (step s, image j) with class c = j % K takes the class's
    // (s × ipc + j / K)-th chosen image.
#define SLOT(st, c, r) (d->images + ((size_t)(st) * (size_t)d->per_step + (size_t)(r)*K + (c)) * D)
    float *buf = NULL;
    int32_t *asg = NULL;
    if (kind == DD_BASELINE_RANDOM) {
        dd_rng r = dd_rng_make(seed, DD_STREAM_BASELINE_RANDOM);
        for (int c = 0; c < K; c++) {
            const int64_t nc = off[c + 1] - off[c];
            for (int q = 0; q < per_class; q++) {
                int64_t i = idx[off[c] + (int64_t)dd_rng_below(&r, (uint64_t)nc)];
                memcpy(SLOT(q / images_per_class, c, q % images_per_class),
                       train->images + (size_t)i * D, D * sizeof(float));
            }
        }
    } else if (kind == DD_BASELINE_AVERAGE) {
        double *acc = calloc(D, sizeof *acc);
        if (!acc) s = dd_error_set(DD_ERR_NOMEM, "baselines: out of memory");
        for (int c = 0; s == DD_OK && c < K; c++) {
            memset(acc, 0, D * sizeof *acc);
            for (int64_t p = off[c]; p < off[c + 1]; p++) {
                const float *xi = train->images + (size_t)idx[p] * D;
                for (size_t j = 0; j < D; j++)
                    acc[j] += xi[j];
            }
            const double inv = 1.0 / (double)(off[c + 1] - off[c]);
            for (int q = 0; q < per_class; q++) {
                float *dst = SLOT(q / images_per_class, c, q % images_per_class);
                for (size_t j = 0; j < D; j++)
                    dst[j] = (float)(acc[j] * inv);
            }
        }
        free(acc);
    } else if (kind == DD_BASELINE_KMEANS) {
        int64_t maxn = 0;
        for (int c = 0; c < K; c++)
            if (off[c + 1] - off[c] > maxn) maxn = off[c + 1] - off[c];
        buf = malloc((size_t)maxn * D * sizeof *buf);
        float *cent = malloc((size_t)per_class * D * sizeof *cent);
        if (!buf || !cent) s = dd_error_set(DD_ERR_NOMEM, "baselines: out of memory for k-means");
        for (int c = 0; s == DD_OK && c < K; c++) {
            const int64_t nc = off[c + 1] - off[c];
            for (int64_t p = 0; p < nc; p++)
                memcpy(buf + (size_t)p * D, train->images + (size_t)idx[off[c] + p] * D,
                       D * sizeof(float));
            dd_rng r = dd_rng_make(seed, DD_STREAM_KMEANS + 0x100u * (uint64_t)(c + 1));
            s = dd_kmeans(buf, nc, D, per_class, 100, &r, nthreads, cent, NULL, NULL);
            for (int q = 0; s == DD_OK && q < per_class; q++)
                memcpy(SLOT(q / images_per_class, c, q % images_per_class), cent + (size_t)q * D,
                       D * sizeof(float));
        }
        free(cent);
    } else {
        s = dd_error_set(DD_ERR_INVALID, "baselines: unknown kind %d", (int)kind);
    }
#undef SLOT
    free(buf);
    free(asg);
    free(idx);
    free(off);
    if (s != DD_OK) {
        dd_distilled_destroy(d);
        return s;
    }
    *out = d;
    return DD_OK;
}
