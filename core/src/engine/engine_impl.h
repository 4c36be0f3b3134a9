/* distill (internal) — the engine's state, shared by the files of the
 * engine (engine.c: the algorithm; engine_io.c: checkpoints and export).
 * Nothing outside core/src/engine/ includes this. */
#ifndef DD_ENGINE_IMPL_H
#define DD_ENGINE_IMPL_H

#include "engine/engine.h"

struct dd_engine {
    dd_model *model;
    const dd_objective_handle *obj;
    const dd_dataset *train;
    dd_distill_config cfg;

    int S, E, K, n_out, n_classes;
    int64_t M;
    size_t D, P;

    float *pixels, *raw, *soft; // learned
    int32_t *labels;
    float *m_pix, *v_pix, *m_raw, *v_raw, *m_soft, *v_soft; // Adam moments
    int64_t adam_t;

    float *theta0; // fixed init θ0
    float *thetas; // (K + 1) × P
    float *a, *hv, *grad, *mixed_x, *mixed_y;
    float *g_pix, *g_raw, *g_soft;
    float *theta_rand; // θ0 sample for random init

    int64_t B;
    float *xr, *logits, *dlogits;
    float *logits0; /* the real batch's logits at θ0, for outer_loss_ref (else NULL) */
    int32_t *yr;
    int64_t *perm;
    int64_t perm_epoch;
    double *num, *den;

    int64_t iter;
    dd_distill_stats stats;
    int64_t hist_cap;
};

#endif
