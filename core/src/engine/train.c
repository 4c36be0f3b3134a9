/* distill — minibatch SGD, accuracy and head transfer (see train.h). */
#define _POSIX_C_SOURCE 200809L
#include "engine/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/log.h"
#include "distill/objective.h"
#include "distill/tensor.h"
#include "model/graph.h"
#include "model/model_impl.h"

/* ---- SGD ------------------------------------------------------------------ */

void dd_sgd_config_defaults(dd_sgd_config *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 1;
    c->batch = 128;
    c->lr = 0.01;
    c->momentum = 0.9;
    c->cosine = 1;
    c->seed = 1;
}

dd_status dd_sgd_train(dd_model *m, float *theta, const dd_dataset *train, const dd_sgd_config *c) {
    if (c->epochs < 0 || c->batch < 1 || !(c->lr > 0))
        return dd_error_set(DD_ERR_INVALID, "sgd: need epochs >= 0, batch >= 1 and lr > 0");
    if (train->n < 1) return dd_error_set(DD_ERR_INVALID, "sgd: empty training set");
    const size_t P = dd_model_param_count(m), D = dd_dataset_image_size(train);
    if (D != dd_model_input_size(m))
        return dd_error_set(DD_ERR_INVALID, "sgd: images have %zu values, the model expects %zu", D,
                            dd_model_input_size(m));
    const int64_t B = c->batch < train->n ? c->batch : train->n;
    const int64_t per_epoch = (train->n + B - 1) / B, total = per_epoch * c->epochs;
    float *g = dd_alloc_floats(P), *v = dd_alloc_floats(P), *xb = dd_alloc_floats((size_t)B * D);
    int32_t *yb = malloc((size_t)B * sizeof *yb);
    int64_t *perm = malloc((size_t)train->n * sizeof *perm);
    dd_status s = DD_OK;
    if (!g || !v || !xb || !yb || !perm) s = dd_error_set(DD_ERR_NOMEM, "sgd: out of memory");
    const float mu = (float)c->momentum, wd = (float)c->weight_decay;
    int64_t t = 0;
    for (int e = 0; s == DD_OK && e < c->epochs; e++) {
        for (int64_t i = 0; i < train->n; i++)
            perm[i] = i;
        dd_rng r = dd_rng_make(c->seed, (uint64_t)e + 1);
        dd_rng_shuffle(&r, perm, (size_t)train->n);
        double loss_sum = 0.0;
        for (int64_t b = 0; s == DD_OK && b < per_epoch; b++, t++) {
            const int64_t lo = b * B, n = train->n - lo < B ? train->n - lo : B;
            for (int64_t j = 0; j < n; j++) {
                memcpy(xb + (size_t)j * D, train->images + (size_t)perm[lo + j] * D,
                       D * sizeof(float));
                yb[j] = train->labels[perm[lo + j]];
            }
            double loss = 0.0;
            dd_labels y = {yb, NULL};
            s = dd_model_loss_grad(m, theta, xb, n, y, &loss, g, NULL, NULL);
            if (s != DD_OK) break;
            if (!isfinite(loss)) {
                s = dd_error_set(
                    DD_ERR_NUMERIC, "%s: the training loss became %s in epoch %d (lower the lr)",
                    c->label ? c->label : "sgd", isnan(loss) ? "NaN" : "infinite", e + 1);
                break;
            }
            loss_sum += loss;
            const double frac = (double)t / (double)total;
            const float lr =
                (float)(c->cosine ? c->lr * 0.5 * (1.0 + cos(3.14159265358979323846 * frac))
                                  : c->lr);
            for (size_t k = 0; k < P; k++) {
                v[k] = mu * v[k] + g[k] + wd * theta[k];
                theta[k] -= lr * v[k];
            }
        }
        if (s == DD_OK)
            dd_debug("%s: epoch %d/%d mean loss %.4f", c->label ? c->label : "sgd", e + 1,
                     c->epochs, loss_sum / (double)per_epoch);
    }
    dd_free(g);
    dd_free(v);
    dd_free(xb);
    free(yb);
    free(perm);
    return s;
}

dd_status dd_pretrain_accuracy(dd_model *m, const float *theta, const dd_dataset *d,
                               double *accuracy) {
    if (d->n < 1) return dd_error_set(DD_ERR_INVALID, "accuracy: empty dataset");
    const int K = dd_model_output_dim(m);
    const size_t D = dd_dataset_image_size(d);
    const int64_t B = d->n < 500 ? d->n : 500;
    float *z = dd_alloc_floats((size_t)B * (size_t)K);
    if (!z) return dd_error_set(DD_ERR_NOMEM, "accuracy: out of memory");
    int64_t correct = 0;
    dd_status s = DD_OK;
    for (int64_t b = 0; s == DD_OK && b < d->n; b += B) {
        const int64_t n = d->n - b < B ? d->n - b : B;
        s = dd_model_forward(m, theta, d->images + (size_t)b * D, n, z);
        for (int64_t i = 0; s == DD_OK && i < n; i++) {
            correct += dd_argmax(z + (size_t)i * (size_t)K, K) == d->labels[b + i];
        }
    }
    dd_free(z);
    if (s == DD_OK) *accuracy = (double)correct / (double)d->n;
    return s;
}

/* ---- head transfer --------------------------------------------------------- */

static int last_param_layer(const dd_graph *g) {
    for (int i = g->n_layers - 1; i >= 0; i--)
        if (g->layers[i].n_weight + g->layers[i].n_bias > 0) return i;
    return -1;
}

dd_status dd_pretrain_transfer(dd_model *src, const float *theta_src, dd_model *dst,
                               const char *scheme, float gain, uint64_t seed, float *theta_dst) {
    const dd_graph *gs = dd_model_graph(src), *gd = dd_model_graph(dst);
    const int ls = last_param_layer(gs), ld = last_param_layer(gd);
    int ok = ls >= 0 && ls == ld && gs->n_layers == gd->n_layers;
    for (int i = 0; ok && i < ls; i++)
        ok = gs->layers[i].kind == gd->layers[i].kind &&
             gs->layers[i].param_off == gd->layers[i].param_off &&
             gs->layers[i].n_weight == gd->layers[i].n_weight &&
             gs->layers[i].n_bias == gd->layers[i].n_bias;
    if (!ok)
        return dd_error_set(DD_ERR_INVALID,
                            "pretrain: the pool's networks and the target network differ before "
                            "their last layer; only the classifier head can be replaced");
    DD_TRY(dd_model_init_params(dst, theta_dst, scheme, gain, seed));
    memcpy(theta_dst, theta_src, gs->layers[ls].param_off * sizeof(float));
    return DD_OK;
}
