/* distill (internal) — the four functions of every op (forward, VJP, JVP,
 * tangent of VJP) for one layer at one batch size, on either backend.
 * Parameter pointers (w, wd, dw, dwd) point at the layer's slice of θ (or of
 * a θ-shaped vector): weights then biases. Every output is overwritten. */
#ifndef DD_OPS_H
#define DD_OPS_H

#include "base/export.h"

#include <stddef.h>
#include <stdint.h>

#include "distill/model.h"
#include "distill/tensor.h"
#include "compute/layer.h"

struct dd_dnnl;
struct dd_dnnl_conv;
struct dd_dnnl_linear;

/** A layer bound to a batch size and a backend, with its scratch and (for
 * oneDNN) primitives. Created once, reused by every call. */
typedef struct dd_layer_exec {
    const dd_layer *L;
    int64_t batch;
    dd_backend backend;
    int nthreads;   /**< threads of the op's own loops (its per-thread scratch is sized for them) */
    float *scratch; /**< owned */
    size_t scratch_n;
    float *scratch2; /**< owned; second buffer (oneDNN sums of two terms) */
    size_t scratch2_n;
    struct dd_dnnl_conv *conv;  /**< oneDNN backend only */
    struct dd_dnnl_linear *lin; /**< oneDNN backend only */
} dd_layer_exec;

/** Elementwise work below this many elements stays on the calling thread. */
#define DD_OPS_PAR_MIN ((size_t)1 << 16)

/** Elements of a layer's output over the whole batch. */
static inline size_t dd_layer_exec_out_n(const dd_layer_exec *e) {
    return (size_t)e->batch * dd_layer_out_size(e->L);
}

/** Floats of per-call state the forward keeps for the backward (argmax,
 * LRN denominators, normalised activations), and of its tangent. */
DD_INTERNAL size_t dd_layer_aux_floats(const dd_layer *L, int64_t batch);
DD_INTERNAL size_t dd_layer_auxd_floats(const dd_layer *L, int64_t batch);

/** dnnl may be NULL for the reference backend; its primitives are created
 * with the thread count set on it (dd_dnnl_set_threads). nthreads: the
 * threads of the op's own OpenMP loops (0: the calling thread's OpenMP
 * default, read now). */
DD_INTERNAL dd_status dd_layer_exec_init(dd_layer_exec *e, const dd_layer *L, int64_t batch,
                                         dd_backend backend, struct dd_dnnl *dnnl, int nthreads);
DD_INTERNAL void dd_layer_exec_fini(dd_layer_exec *e);

/** y = f(x; w); fills aux. */
DD_INTERNAL dd_status dd_layer_forward(dd_layer_exec *e, const float *x, const float *w, float *y,
                                       float *aux);
/** dx = J_xᵀ dy, dw = J_wᵀ dy (each optional). */
DD_INTERNAL dd_status dd_layer_backward(dd_layer_exec *e, const float *x, const float *y,
                                        const float *aux, const float *w, const float *dy,
                                        float *dx, float *dw);
/** yd = J_x xd + J_w wd (xd NULL means zero); fills auxd. */
DD_INTERNAL dd_status dd_layer_jvp(dd_layer_exec *e, const float *x, const float *y,
                                   const float *aux, const float *w, const float *xd,
                                   const float *wd, float *yd, float *auxd);
/** Tangent of the VJP along (xd, wd) with cotangent tangent dyd:
 * dxd = d/dε dx, dwd = d/dε dw (each optional). xd NULL means zero. */
DD_INTERNAL dd_status dd_layer_tbwd(dd_layer_exec *e, const float *x, const float *y,
                                    const float *aux, const float *xd, const float *yd,
                                    const float *auxd, const float *w, const float *wd,
                                    const float *dy, const float *dyd, float *dxd, float *dwd);

/* ---- kernels shared between op files (ops_*.c) ---- */

/** C[M×N] += A·B with A(m,k) = A[m*sam + k*sak], B row-major (ldb), C (ldc),
 * on up to nthreads threads (<= 1: the calling thread only). */
void dd_gemm_acc(int M, int N, int K, const float *A, ptrdiff_t sam, ptrdiff_t sak, const float *B,
                 int ldb, float *C, int ldc, int nthreads);
/** C[M×N] += A·Bᵀ with A[M×K] (lda) and B[N×K] (ldb), threads as dd_gemm_acc. */
void dd_gemm_nt_acc(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                    int ldc, int nthreads);

/* per-family implementations, dispatched by ops_dispatch.c */
dd_status dd_dense_exec_init(dd_layer_exec *e, struct dd_dnnl *dnnl);
void dd_dense_exec_fini(dd_layer_exec *e);
dd_status dd_dense_forward(dd_layer_exec *e, const float *x, const float *w, float *y);
dd_status dd_dense_backward(dd_layer_exec *e, const float *x, const float *w, const float *dy,
                            float *dx, float *dw);
dd_status dd_dense_jvp(dd_layer_exec *e, const float *x, const float *w, const float *xd,
                       const float *wd, float *yd);
dd_status dd_dense_tbwd(dd_layer_exec *e, const float *x, const float *xd, const float *w,
                        const float *wd, const float *dy, const float *dyd, float *dxd, float *dwd);

void dd_act_forward(const dd_layer_exec *e, const float *x, float *y);
void dd_act_backward(const dd_layer_exec *e, const float *x, const float *y, const float *dy,
                     float *dx);
void dd_act_jvp(const dd_layer_exec *e, const float *x, const float *y, const float *xd, float *yd);
void dd_act_tbwd(const dd_layer_exec *e, const float *x, const float *y, const float *xd,
                 const float *yd, const float *dy, const float *dyd, float *dxd);

void dd_pool_forward(const dd_layer_exec *e, const float *x, float *y, float *aux);
void dd_pool_backward(const dd_layer_exec *e, const float *aux, const float *dy, float *dx);
void dd_pool_jvp(const dd_layer_exec *e, const float *aux, const float *xd, float *yd);
/** Whether relu then this max-pool can run backward as one pass (kernel 2,
 * stride 2, no padding, windows tiling the input). */
int dd_relu_maxpool_fusable(const dd_layer *relu, const dd_layer *pool);
/** dx = relu VJP of the max-pool VJP of dy, in one pass over dx; aux and y
 * are the max-pool's argmax and output. */
/** The max-pool's forward (y, argmax in aux) of relu(x), without writing
 * relu(x): same values and argmax as the two forwards in turn. */
void dd_relu_maxpool_forward(const dd_layer_exec *pool, const float *x, float *y, float *aux);
void dd_relu_maxpool_backward(const dd_layer_exec *pool, const float *aux, const float *y,
                              const float *dy, float *dx);

size_t dd_lrn_scratch_floats(const dd_layer *L);
void dd_lrn_forward(const dd_layer_exec *e, const float *x, float *y, float *aux);
void dd_lrn_backward(const dd_layer_exec *e, const float *x, const float *aux, const float *dy,
                     float *dx);
void dd_lrn_jvp(const dd_layer_exec *e, const float *x, const float *aux, const float *xd,
                float *yd, float *auxd);
void dd_lrn_tbwd(const dd_layer_exec *e, const float *x, const float *aux, const float *xd,
                 const float *auxd, const float *dy, const float *dyd, float *dxd);

void dd_inorm_forward(const dd_layer_exec *e, const float *x, const float *w, float *y, float *aux);
void dd_inorm_backward(const dd_layer_exec *e, const float *aux, const float *w, const float *dy,
                       float *dx, float *dw);
void dd_inorm_jvp(const dd_layer_exec *e, const float *aux, const float *w, const float *xd,
                  const float *wd, float *yd, float *auxd);
void dd_inorm_tbwd(const dd_layer_exec *e, const float *aux, const float *xd, const float *auxd,
                   const float *w, const float *wd, const float *dy, const float *dyd, float *dxd,
                   float *dwd);

#endif
