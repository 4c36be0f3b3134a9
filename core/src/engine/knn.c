/* distill — nearest-neighbour classification (see knn.h). */
#include "engine/knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "distill/tensor.h"

/* Test images a kNN pass reads (and normalises) at a time. */
#define KNN_TEST_CHUNK 1000

dd_status dd_knn_distance_parse(const char *name, dd_knn_distance *out) {
    if (name && strcmp(name, "euclidean") == 0) {
        *out = DD_KNN_EUCLIDEAN;
        return DD_OK;
    }
    if (name && strcmp(name, "cosine") == 0) {
        *out = DD_KNN_COSINE;
        return DD_OK;
    }
    return dd_error_set(DD_ERR_INVALID, "unknown kNN distance '%s' (expected euclidean|cosine)",
                        name ? name : "(null)");
}

const char *dd_knn_distance_name(dd_knn_distance d) {
    return d == DD_KNN_COSINE ? "cosine" : "euclidean";
}

static double distance(const float *a, const float *b, size_t d, dd_knn_distance kind,
                       double norm_a, double norm_b) {
    if (kind == DD_KNN_COSINE) {
        double dot = 0;
        for (size_t i = 0; i < d; i++)
            dot += (double)a[i] * b[i];
        double den = norm_a * norm_b;
        return den > 0 ? 1.0 - dot / den : 1.0;
    }
    double s = 0;
    for (size_t i = 0; i < d; i++) {
        double t = (double)a[i] - b[i];
        s += t * t;
    }
    return s;
}

static double norm(const float *a, size_t d) {
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += (double)a[i] * a[i];
    return sqrt(s);
}

// One query: keeps the k best (distance, index) in ascending order.
static int32_t predict_one(const float *ref, const int32_t *ref_labels, int64_t n_ref,
                           const double *ref_norm, int n_classes, const float *q, size_t d, int k,
                           dd_knn_distance kind, double *best_d, int64_t *best_i, double *votes,
                           double *vote_dist) {
    int have = 0;
    double qn = kind == DD_KNN_COSINE ? norm(q, d) : 0;
    for (int64_t j = 0; j < n_ref; j++) {
        double dj = distance(q, ref + (size_t)j * d, d, kind, qn, ref_norm ? ref_norm[j] : 0);
        if (have == k && !(dj < best_d[k - 1])) continue; // ties keep the earlier reference
        int pos = have < k ? have++ : k - 1;
        while (pos > 0 && dj < best_d[pos - 1]) {
            best_d[pos] = best_d[pos - 1];
            best_i[pos] = best_i[pos - 1];
            pos--;
        }
        best_d[pos] = dj;
        best_i[pos] = j;
    }
    for (int c = 0; c < n_classes; c++)
        votes[c] = vote_dist[c] = 0;
    for (int i = 0; i < have; i++) {
        votes[ref_labels[best_i[i]]] += 1;
        vote_dist[ref_labels[best_i[i]]] += best_d[i];
    }
    int32_t win = -1;
    for (int c = 0; c < n_classes; c++) {
        if (votes[c] == 0) continue;
        if (win < 0 || votes[c] > votes[win] ||
            (votes[c] == votes[win] && vote_dist[c] < vote_dist[win]))
            win = c;
    }
    return win < 0 ? 0 : win;
}

dd_status dd_knn_predict(const float *ref, const int32_t *ref_labels, int64_t n_ref, int n_classes,
                         const float *query, int64_t n, size_t d, int k, dd_knn_distance dist,
                         int32_t *pred) {
    if (!ref || !ref_labels || !query || !pred || n_ref < 1 || n < 0 || d < 1 || n_classes < 1)
        return dd_error_set(DD_ERR_INVALID, "knn: bad arguments");
    if (k < 1 || k > n_ref)
        return dd_error_set(DD_ERR_INVALID,
                            "knn: k = %d must be between 1 and the %lld reference images", k,
                            (long long)n_ref);
    for (int64_t j = 0; j < n_ref; j++)
        if (ref_labels[j] < 0 || ref_labels[j] >= n_classes)
            return dd_error_set(DD_ERR_INVALID, "knn: reference label %d out of range",
                                ref_labels[j]);
    double *ref_norm = NULL;
    if (dist == DD_KNN_COSINE) {
        ref_norm = malloc((size_t)n_ref * sizeof *ref_norm);
        if (!ref_norm) return dd_nomem();
        for (int64_t j = 0; j < n_ref; j++)
            ref_norm[j] = norm(ref + (size_t)j * d, d);
    }
    int failed = 0;
#pragma omp parallel
    {
        double *best_d = malloc((size_t)k * sizeof *best_d);
        int64_t *best_i = malloc((size_t)k * sizeof *best_i);
        double *votes = malloc((size_t)n_classes * 2 * sizeof *votes);
        if (!best_d || !best_i || !votes) {
#pragma omp atomic write
            failed = 1;
        } else {
#pragma omp for schedule(static)
            for (int64_t i = 0; i < n; i++)
                pred[i] =
                    predict_one(ref, ref_labels, n_ref, ref_norm, n_classes, query + (size_t)i * d,
                                d, k, dist, best_d, best_i, votes, votes + n_classes);
        }
        free(best_d);
        free(best_i);
        free(votes);
    }
    free(ref_norm);
    return failed ? dd_nomem() : DD_OK;
}

dd_status dd_knn_accuracy(const dd_distilled *set, const dd_dataset *test, int k,
                          dd_knn_distance dist, double *accuracy) {
    const size_t d = dd_distilled_image_size(set);
    if (d != dd_dataset_image_size(test))
        return dd_error_set(DD_ERR_INVALID, "knn: the set's images have %zu values, the test's %zu",
                            d, dd_dataset_image_size(test));
    const int64_t n_ref = (int64_t)set->steps * set->per_step;
    int32_t *labels = malloc((size_t)n_ref * sizeof *labels);
    int32_t *pred = malloc((size_t)(test->n > 0 ? test->n : 1) * sizeof *pred);
    if (!labels || !pred) {
        free(labels);
        free(pred);
        return dd_nomem();
    }
    for (int64_t j = 0; j < n_ref; j++) {
        int64_t slot = j % set->per_step;
        int32_t y = set->labels[slot];
        if (set->soft) { // the learned label's argmax
            const float *s = set->soft + (size_t)j * set->n_outputs;
            y = 0;
            for (int c = 1; c < set->n_outputs && c < test->n_classes; c++)
                if (s[c] > s[y]) y = c;
        }
        labels[j] = y;
    }
    // The test split is read in chunks through the dataset's accessor.
    const int64_t chunk = test->n < KNN_TEST_CHUNK ? test->n : KNN_TEST_CHUNK;
    float *q = dd_alloc_floats((size_t)(chunk > 0 ? chunk : 1) * d);
    dd_status st = q ? DD_OK : dd_nomem();
    for (int64_t b = 0; st == DD_OK && b < test->n; b += chunk) {
        const int64_t n = test->n - b < chunk ? test->n - b : chunk;
        st = dd_dataset_gather_range(test, b, n, q);
        if (st == DD_OK)
            st = dd_knn_predict(set->images, labels, n_ref, test->n_classes, q, n, d, k, dist,
                                pred + b);
    }
    dd_free(q);
    if (st == DD_OK) {
        int64_t right = 0;
        for (int64_t i = 0; i < test->n; i++)
            right += pred[i] == test->labels[i];
        *accuracy = test->n > 0 ? (double)right / (double)test->n : 0;
    }
    free(labels);
    free(pred);
    return st;
}
