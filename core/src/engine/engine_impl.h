/* distill (internal) — the engine's state, shared by the files of the
 * engine (engine.c: the algorithm; engine_io.c: checkpoints and export).
 * Nothing outside core/src/engine/ includes this. */
#ifndef DD_ENGINE_IMPL_H
#define DD_ENGINE_IMPL_H

#include "engine/engine.h"
#include "engine/team.h"

/* distill.real_chunk 0: real-batch slices of at most this many images (a
 * slice's activations then stay in cache: 64–128-image slices measured
 * 10–18 % faster real-batch passes than 256–512-image ones for LeNet and
 * AlexCifarNet, at a fraction of the memory; docs/benchmarks.md), and
 * fewer while a slice's activations would pass DD_ENGINE_SLICE_BYTES. */
#define DD_ENGINE_SLICE_IMAGES 64
#define DD_ENGINE_SLICE_BYTES ((size_t)128 << 20)

/* Several workers keep every adjoint a_0 … a_K (a late chunk's backup may
 * still read a_{k+1} while a_{k−1} is written) when they take at most this
 * much; beyond it, two adjoints and no backups. */
#define DD_ENGINE_ADJOINT_BYTES ((size_t)64 << 20)

/* Everything one hypergradient needs beside the engine's learned state: the
 * unrolled θs and adjoints, the real batch's logits, and the team's result
 * buffers (hypergrad.c): one pool for the distilled-batch steps (chunk
 * gradients, H·v and input cotangents), one for the real slices (gradient,
 * logits and the fused slices' loss and metrics), each with as many
 * buffers as its steps have chunks plus one per worker (team.h). `workers`
 * models run the chunks. */
typedef struct dd_netctx {
    struct dd_engine *e;
    int workers;
    dd_model **models; /* workers (borrowed) */
    int cd;            /* chunks of a distilled batch */
    int cr, cr_max;    /* slices of the real batch (this call, at most) */
    int64_t bc;        /* images per slice (the largest) */
    int fused;         /* objective loss is a per-sample mean: one pass per slice */
    int across_ranks;  /* MPI: this rank computes its share [rlo, rhi) of the real batch */
    int64_t rlo, rhi;
    float *thetas; /* (K + 1) × P */
    int own_thetas;
    float *as; /* adjoints a_k: K + 1 of them (as_full), else 2 */
    int as_full;
    int no_backup;                     /* several workers with two adjoints: no backups */
    float *logits, *logits0, *dlogits; /* B × outputs */
    float *dbufs, *rbufs;              /* distilled-step and real-slice buffers */
    size_t dbuf_floats, rbuf_floats;
    double *closs, *cnum, *cden; /* per real buffer (fused slices) */
    int *last_fwd;               /* per worker: slice its model last forwarded, −1 */
    /* the call */
    const float *theta0, *x;
    const int32_t *y;
    int64_t batch;
    int want_grad, want_metric, stop;
    float *gp, *graw, *gsoft;
    double loss, num, den;
    double t_mark[2];
    double t_unroll, t_outer, t_reverse;
    long long backups;
} dd_netctx;

DD_INTERNAL dd_status dd_netctx_init(dd_netctx *n, struct dd_engine *e, int workers,
                                     dd_model **models, float *thetas, int across_ranks);
DD_INTERNAL void dd_netctx_free(dd_netctx *n);
/** One hypergradient (want_grad) or outer loss from theta0 on a real batch
 * of at most B images: adds into gp / graw / gsoft (each optional); loss,
 * first metric's num/den (want_metric) in n. */
DD_INTERNAL dd_status dd_netctx_run(dd_netctx *n, const float *theta0, const float *x,
                                    const int32_t *y, int64_t batch, int want_grad, int want_metric,
                                    float *gp, float *graw, float *gsoft);

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
    float *thetas; // (K + 1) × P, the split context's
    float *g_pix, *g_raw, *g_soft;

    int64_t B;
    float *xr;
    int ref_logits; /* the objective compares with θ0's logits (outer_loss_ref) */
    int32_t *yr;
    int64_t *perm;
    int64_t perm_epoch;

    /* workers: one model each ([0] = model, the others clones, owned) */
    int workers;
    dd_model **wmodels;
    dd_netctx split; /* one θ0 at a time, every worker on it (workers > 0 once made) */
    int has_split;
    dd_netctx *per_net; /* nets_per_iteration > 1: one context per worker */
    int n_per_net;
    float **w_theta_rand;                 /* per worker */
    float *net_gp, *net_graw, *net_gsoft; /* per net of an iteration */
    double *net_sums;                     /* per net: loss, num, den */
    dd_status *net_status;

    int64_t iter;
    dd_distill_stats stats;
    int64_t hist_cap;
};

#endif
