/* distill — inner losses on the logits (softmax cross-entropy with hard or
 * soft labels, mean squared error): value, gradient, and the tangent of the
 * gradient (for H·v) and of ∇_y (for learned labels). */
#include <math.h>
#include <string.h>

#include "model/model_impl.h"

dd_status dd_loss_check_labels(int64_t batch, int K, dd_labels y) {
    if ((y.hard == NULL) == (y.soft == NULL))
        return dd_error_set(DD_ERR_INVALID,
                            "labels: exactly one of hard or soft labels must be given");
    if (y.hard) {
        for (int64_t b = 0; b < batch; b++)
            if (y.hard[b] < 0 || y.hard[b] >= K)
                return dd_error_set(DD_ERR_INVALID,
                                    "labels: sample %lld has label %d, outside [0, %d)",
                                    (long long)b, (int)y.hard[b], K);
    }
    return DD_OK;
}

static inline float target(dd_labels y, int64_t b, int K, int k) {
    if (y.soft) return y.soft[(size_t)b * K + k];
    return y.hard[b] == k ? 1.0f : 0.0f;
}

dd_status dd_loss_forward(dd_loss_kind kind, int64_t batch, int K, const float *z, dd_labels y,
                          double *loss, float *dz, float *probs) {
    const float invB = 1.0f / (float)batch;
    double total = 0.0;
    for (int64_t b = 0; b < batch; b++) {
        const float *zb = z + (size_t)b * K;
        float *db = dz ? dz + (size_t)b * K : NULL;
        if (kind == DD_LOSS_MSE) {
            double l = 0.0;
            for (int k = 0; k < K; k++) {
                float r = zb[k] - target(y, b, K, k);
                l += 0.5 * (double)r * r;
                if (db) db[k] = r * invB;
            }
            total += l;
            continue;
        }
        float mx = zb[0];
        for (int k = 1; k < K; k++)
            mx = zb[k] > mx ? zb[k] : mx;
        double se = 0.0;
        for (int k = 0; k < K; k++)
            se += exp((double)zb[k] - mx);
        const double lse = mx + log(se);
        float *pb = probs + (size_t)b * K;
        double l = 0.0, sy = 0.0;
        for (int k = 0; k < K; k++) {
            pb[k] = (float)exp((double)zb[k] - lse);
            float t = target(y, b, K, k);
            if (t != 0.0f) l += (double)t * (lse - zb[k]);
            sy += t;
        }
        total += l;
        // ∂/∂z of −Σ t_k log p_k = (Σ t) p − t
        if (db)
            for (int k = 0; k < K; k++)
                db[k] = ((float)sy * pb[k] - target(y, b, K, k)) * invB;
    }
    if (!isfinite(total))
        return dd_error_set(DD_ERR_NUMERIC, "loss: non-finite loss (%g); the network diverged",
                            total);
    if (loss) *loss = total / (double)batch;
    return DD_OK;
}

void dd_loss_tangent(dd_loss_kind kind, int64_t batch, int K, dd_labels y, const float *probs,
                     const float *zd, float *dzd, float *mixed_y) {
    const float invB = 1.0f / (float)batch;
    for (int64_t b = 0; b < batch; b++) {
        const float *zb = zd + (size_t)b * K;
        float *db = dzd + (size_t)b * K;
        float *my = mixed_y ? mixed_y + (size_t)b * K : NULL;
        if (kind == DD_LOSS_MSE) {
            // d̊z = ż / B;  ∇_y ℓ = −(z − t)/B so its tangent is −ż / B
            for (int k = 0; k < K; k++) {
                db[k] = zb[k] * invB;
                if (my) my[k] = -zb[k] * invB;
            }
            continue;
        }
        const float *pb = probs + (size_t)b * K;
        double pz = 0.0, sy = 0.0;
        for (int k = 0; k < K; k++) {
            pz += (double)pb[k] * zb[k];
            sy += target(y, b, K, k);
        }
        // ṗ = p ⊙ (ż − ⟨p, ż⟩);  d̊z = (Σ t) ṗ / B;  ∇_y ℓ = −log p / B
        for (int k = 0; k < K; k++) {
            float c = zb[k] - (float)pz;
            db[k] = (float)sy * pb[k] * c * invB;
            if (my) my[k] = -c * invB;
        }
    }
}
