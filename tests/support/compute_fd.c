/* distill tests (compute) — central-difference checks of dd_model_hvp. */
#include "distill/host.h"
#include "compute_fd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "compute_util.h"
#include "model/model_impl.h"

int compute_check_hvp(dd_model *m, int64_t batch, int soft, double eps, uint64_t seed,
                      compute_hvp_errors *out) {
    const size_t P = dd_model_param_count(m), D = dd_model_input_size(m);
    const int K = dd_model_output_dim(m);
    const size_t X = (size_t)batch * D, Y = (size_t)batch * K;
    float *theta = dd_alloc_floats(P), *v = dd_alloc_floats(P), *tp = dd_alloc_floats(P);
    float *x = dd_alloc_floats(X), *ysoft = dd_alloc_floats(Y);
    float *hv = dd_alloc_floats(P), *mx = dd_alloc_floats(X), *my = dd_alloc_floats(Y);
    float *g = dd_alloc_floats(P), *g0 = dd_alloc_floats(P);
    float *gp = dd_alloc_floats(P), *gm = dd_alloc_floats(P);
    float *gxp = dd_alloc_floats(X), *gxm = dd_alloc_floats(X);
    double *fd = calloc(P > X ? (P > Y ? P : Y) : (X > Y ? X : Y), sizeof *fd);
    int32_t *yhard = calloc((size_t)batch, sizeof *yhard);
    int rc = -1;
    if (!theta || !v || !tp || !x || !ysoft || !hv || !mx || !my || !g || !g0 || !gp || !gm ||
        !gxp || !gxm || !fd || !yhard)
        goto done;
    if (dd_model_init_params(m, theta, "xavier", 1.0f, seed) != DD_OK) goto done;
    // Non-zero biases so no layer sits at a symmetric point.
    dd_rng r = dd_rng_make(seed, 99);
    for (size_t i = 0; i < P; i++)
        if (theta[i] == 0.0f) dd_rng_uniform(&r, &theta[i], 1, -0.05f, 0.05f);
    compute_fill_normal(x, X, 1.0f, seed + 1);
    for (int64_t b = 0; b < batch; b++) {
        yhard[b] = (int32_t)dd_rng_below(&r, (uint64_t)K);
        float s = 0.0f;
        for (int k = 0; k < K; k++) {
            float u;
            dd_rng_uniform(&r, &u, 1, 0.05f, 1.0f);
            ysoft[b * K + k] = u;
            s += u;
        }
        for (int k = 0; k < K; k++)
            ysoft[b * K + k] /= s;
    }
    dd_labels y = soft ? (dd_labels){NULL, ysoft} : (dd_labels){yhard, NULL};
    double rms = compute_norm(theta, P) / sqrt((double)P);
    compute_fill_normal(v, P, (float)rms, seed + 2);

    double loss_h = 0.0, loss_g = 0.0;
    if (dd_model_hvp(m, theta, x, batch, y, v, hv, mx, soft ? my : NULL, g, &loss_h) != DD_OK) {
        fprintf(stderr, "hvp: %s\n", dd_error_message());
        goto done;
    }
    if (dd_model_loss_grad(m, theta, x, batch, y, &loss_g, g0, NULL, NULL) != DD_OK) goto done;
    out->grad_match = compute_rel_err(g, g0, P, 1e-12);
    out->loss_match = fabs(loss_h - loss_g);
    out->hv_norm = compute_norm(hv, P);

    // Shrink the step until θ ± eps·v lie on the same linear piece of every
    // relu / max-pool as θ: across a kink a difference quotient measures the
    // jump, not the derivative.
    if (dd_model_forward(m, theta, x, batch, NULL) != DD_OK) goto done;
    const uint64_t base = dd_model_pattern_hash(m, batch);
    out->kink_free = 0;
    for (int attempt = 0; attempt < 6; attempt++, eps /= 3.0) {
        for (size_t i = 0; i < P; i++)
            tp[i] = (float)(theta[i] + eps * v[i]);
        if (dd_model_loss_grad(m, tp, x, batch, y, NULL, gp, gxp, NULL) != DD_OK) goto done;
        uint64_t hp = dd_model_pattern_hash(m, batch);
        for (size_t i = 0; i < P; i++)
            tp[i] = (float)(theta[i] - eps * v[i]);
        if (dd_model_loss_grad(m, tp, x, batch, y, NULL, gm, gxm, NULL) != DD_OK) goto done;
        uint64_t hm = dd_model_pattern_hash(m, batch);
        if (hp == base && hm == base) {
            out->kink_free = 1;
            break;
        }
    }
    out->eps_used = eps;
    for (size_t i = 0; i < P; i++)
        fd[i] = ((double)gp[i] - gm[i]) / (2.0 * eps);
    out->hv = compute_rel_err_d(hv, fd, P, 1e-12);
    for (size_t i = 0; i < X; i++)
        fd[i] = ((double)gxp[i] - gxm[i]) / (2.0 * eps);
    out->mixed_x = compute_rel_err_d(mx, fd, X, 1e-12);

    out->mixed_y = -1.0;
    if (soft) {
        // ∇_y⟨g, v⟩ by central differences in each label entry.
        const double h = 1e-2;
        for (size_t j = 0; j < Y; j++) {
            float keep = ysoft[j];
            double lo, hi;
            ysoft[j] = (float)(keep + h);
            if (dd_model_loss_grad(m, theta, x, batch, y, NULL, gp, NULL, NULL) != DD_OK) goto done;
            hi = compute_dot(gp, v, P);
            ysoft[j] = (float)(keep - h);
            if (dd_model_loss_grad(m, theta, x, batch, y, NULL, gp, NULL, NULL) != DD_OK) goto done;
            lo = compute_dot(gp, v, P);
            ysoft[j] = keep;
            fd[j] = (hi - lo) / (2.0 * h);
        }
        out->mixed_y = compute_rel_err_d(my, fd, Y, 1e-12);
    }
    rc = 0;
done:
    dd_free(theta), dd_free(v), dd_free(tp), dd_free(x), dd_free(ysoft), dd_free(hv), dd_free(mx);
    dd_free(my), dd_free(g), dd_free(g0), dd_free(gp), dd_free(gm), dd_free(gxp), dd_free(gxm);
    free(fd);
    free(yhard);
    return rc;
}
