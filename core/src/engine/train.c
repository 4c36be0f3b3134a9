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

// The augmentation draws of epoch e come from this stream + e (the data
// order from streams 1, 2, ...).
#define DD_SGD_AUGMENT_STREAM (1ull << 32)

void dd_sgd_config_defaults(dd_sgd_config *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 1;
    c->batch = 128;
    c->lr = 0.01;
    c->momentum = 0.9;
    c->cosine = 1;
    c->seed = 1;
}

/* Batch image j: source image `src` (C × H × W) shifted by (dy, dx) with
 * zeros outside, mirrored left-right if `mirror`. */
static void augment_image(const float *src, int C, int H, int W, int dy, int dx, int mirror,
                          float *dst) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            const int sy = y + dy;
            for (int x = 0; x < W; x++) {
                const int xx = mirror ? W - 1 - x : x, sx = xx + dx;
                dst[((size_t)c * H + y) * W + x] = sy >= 0 && sy < H && sx >= 0 && sx < W
                                                       ? src[((size_t)c * H + sy) * W + sx]
                                                       : 0.0f;
            }
        }
}

dd_status dd_sgd_train_data(dd_model *m, float *theta, const dd_sgd_data *d,
                            const dd_sgd_config *c) {
    if (c->epochs < 0 || c->batch < 1 || !(c->lr > 0) || c->crop < 0)
        return dd_error_set(DD_ERR_INVALID,
                            "sgd: need epochs >= 0, batch >= 1, lr > 0 and crop >= 0");
    if (d->n < 1) return dd_error_set(DD_ERR_INVALID, "sgd: empty training set");
    const size_t P = dd_model_param_count(m);
    const size_t D = (size_t)d->channels * (size_t)d->height * (size_t)d->width;
    if (D != dd_model_input_size(m))
        return dd_error_set(DD_ERR_INVALID, "sgd: images have %zu values, the model expects %zu", D,
                            dd_model_input_size(m));
    const size_t O = d->labels.soft ? (size_t)d->n_outputs : 0;
    const int64_t B = c->batch < d->n ? c->batch : d->n;
    const int64_t per_epoch = (d->n + B - 1) / B, total = per_epoch * c->epochs;
    const int augment = c->crop > 0 || c->flip;
    // From a dataset, a batch is gathered (normalised) first: into xb, or
    // into raw when it is augmented on the way to xb.
    const int gathered = !d->images;
    float *g = dd_alloc_floats(P), *v = dd_alloc_floats(P), *xb = dd_alloc_floats((size_t)B * D);
    float *raw = gathered && augment ? dd_alloc_floats((size_t)B * D) : NULL;
    int32_t *yb = malloc((size_t)B * sizeof *yb);
    float *sb = O ? dd_alloc_floats((size_t)B * O) : NULL;
    int64_t *perm = malloc((size_t)d->n * sizeof *perm);
    dd_status s = DD_OK;
    if (gathered && !d->dataset) s = dd_error_set(DD_ERR_INVALID, "sgd: no images");
    if (!g || !v || !xb || !yb || !perm || (O && !sb) || (gathered && augment && !raw))
        s = dd_error_set(DD_ERR_NOMEM, "sgd: out of memory");
    const float mu = (float)c->momentum, wd = (float)c->weight_decay;
    int64_t t = 0;
    for (int e = 0; s == DD_OK && e < c->epochs; e++) {
        for (int64_t i = 0; i < d->n; i++)
            perm[i] = i;
        dd_rng r = dd_rng_make(c->seed, (uint64_t)e + 1);
        dd_rng_shuffle(&r, perm, (size_t)d->n);
        dd_rng ar = dd_rng_make(c->seed, DD_SGD_AUGMENT_STREAM + (uint64_t)e);
        double loss_sum = 0.0;
        for (int64_t b = 0; s == DD_OK && b < per_epoch; b++, t++) {
            const int64_t lo = b * B, n = d->n - lo < B ? d->n - lo : B;
            if (gathered) {
                s = dd_dataset_gather(d->dataset, perm + lo, n, augment ? raw : xb);
                if (s != DD_OK) break;
            }
            for (int64_t j = 0; j < n; j++) {
                const int64_t src = perm[lo + j];
                // the image: gathered (into raw when augmenting, else already in xb) or given
                const float *img = !gathered ? d->images + (size_t)src * D
                                   : augment ? raw + (size_t)j * D
                                             : NULL;
                if (augment) {
                    const int span = 2 * c->crop + 1;
                    const int dy = c->crop ? (int)dd_rng_below(&ar, (uint64_t)span) - c->crop : 0;
                    const int dx = c->crop ? (int)dd_rng_below(&ar, (uint64_t)span) - c->crop : 0;
                    const int mirror = c->flip ? (int)dd_rng_below(&ar, 2) : 0;
                    augment_image(img, d->channels, d->height, d->width, dy, dx, mirror,
                                  xb + (size_t)j * D);
                } else if (!gathered) {
                    memcpy(xb + (size_t)j * D, img, D * sizeof(float));
                }
                if (O)
                    memcpy(sb + (size_t)j * O, d->labels.soft + (size_t)src * O, O * sizeof(float));
                else
                    yb[j] = d->labels.hard[src];
            }
            double loss = 0.0;
            dd_labels y = {O ? NULL : yb, O ? sb : NULL};
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
    dd_free(raw);
    dd_free(sb);
    free(yb);
    free(perm);
    return s;
}

dd_status dd_sgd_train(dd_model *m, float *theta, const dd_dataset *train, const dd_sgd_config *c) {
    const dd_sgd_data d = {
        .dataset = train,
        .n = train->n,
        .channels = train->channels,
        .height = train->height,
        .width = train->width,
        .labels = {train->labels, NULL},
    };
    return dd_sgd_train_data(m, theta, &d, c);
}

dd_status dd_pretrain_accuracy(dd_model *m, const float *theta, const dd_dataset *d,
                               double *accuracy) {
    if (d->n < 1) return dd_error_set(DD_ERR_INVALID, "accuracy: empty dataset");
    const int K = dd_model_output_dim(m);
    const size_t D = dd_dataset_image_size(d);
    const int64_t B = d->n < 500 ? d->n : 500;
    float *z = dd_alloc_floats((size_t)B * (size_t)K), *x = dd_alloc_floats((size_t)B * D);
    if (!z || !x) {
        dd_free(z);
        dd_free(x);
        return dd_error_set(DD_ERR_NOMEM, "accuracy: out of memory");
    }
    int64_t correct = 0;
    dd_status s = DD_OK;
    for (int64_t b = 0; s == DD_OK && b < d->n; b += B) {
        const int64_t n = d->n - b < B ? d->n - b : B;
        s = dd_dataset_gather_range(d, b, n, x);
        if (s == DD_OK) s = dd_model_forward_pieces(m, theta, x, n, DD_MODEL_FORWARD_PIECE, z);
        for (int64_t i = 0; s == DD_OK && i < n; i++) {
            correct += dd_argmax(z + (size_t)i * (size_t)K, K) == d->labels[b + i];
        }
    }
    dd_free(z);
    dd_free(x);
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
