/* distill (internal) — oneDNN kernels for the linear ops (convolution and
 * inner product): forward, backward-data and backward-weights, created once
 * per shape. Buffers at this boundary are plain: activations NCHW (or N×F),
 * weights OIHW (or O×I), bias [O]; any internal layout (NHWC, blocked
 * weights) and its reorders are private to the implementation. */
#ifndef DD_DNNL_OPS_H
#define DD_DNNL_OPS_H

#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"

/** oneDNN engine + stream. One per dd_model (not thread-safe). */
typedef struct dd_dnnl dd_dnnl;
DD_INTERNAL dd_status dd_dnnl_create(dd_dnnl **out);
DD_INTERNAL void dd_dnnl_destroy(dd_dnnl *d);
/** Frees the arena (internal layouts and scratchpads), which otherwise keeps
 * the size of the largest pass ever created on d. Only when no kernel
 * created on d is left; the next kernel's creation allocates it again. */
DD_INTERNAL void dd_dnnl_release_arena(dd_dnnl *d);

typedef struct dd_dnnl_conv_shape {
    int64_t batch, in_c, in_h, in_w, out_c, kernel, stride, pad;
} dd_dnnl_conv_shape;

/** Which pass, for dd_dnnl_*_impl. */
typedef enum dd_dnnl_pass {
    DD_DNNL_FWD = 0,
    DD_DNNL_BWD_DATA = 1,
    DD_DNNL_BWD_WEIGHTS = 2
} dd_dnnl_pass;

typedef struct dd_dnnl_conv dd_dnnl_conv;
/** Creates the three primitives for one shape (JIT cost ~ms: cache it).
 * Fails with DD_ERR_BACKEND if oneDNN cannot create them. */
DD_INTERNAL dd_status dd_dnnl_conv_create(dd_dnnl *d, const dd_dnnl_conv_shape *s,
                                          dd_dnnl_conv **out);
DD_INTERNAL void dd_dnnl_conv_destroy(dd_dnnl_conv *c);
/** y = conv(x, w) + b. b may be NULL (no bias). Overwrites y. */
DD_INTERNAL dd_status dd_dnnl_conv_forward(dd_dnnl_conv *c, const float *x, const float *w,
                                           const float *b, float *y);
/** dx = conv_transpose(dy, w). Overwrites dx. */
DD_INTERNAL dd_status dd_dnnl_conv_backward_data(dd_dnnl_conv *c, const float *dy, const float *w,
                                                 float *dx);
/** dw = x ⋆ dy, db = Σ dy (db may be NULL). Overwrites dw, db. */
DD_INTERNAL dd_status dd_dnnl_conv_backward_weights(dd_dnnl_conv *c, const float *x,
                                                    const float *dy, float *dw, float *db);
/** oneDNN implementation name of a pass, e.g. "brg:avx2" or "ref:any". */
DD_INTERNAL const char *dd_dnnl_conv_impl(const dd_dnnl_conv *c, dd_dnnl_pass pass);

typedef struct dd_dnnl_linear_shape {
    int64_t batch, in_features, out_features;
} dd_dnnl_linear_shape;

typedef struct dd_dnnl_linear dd_dnnl_linear;
DD_INTERNAL dd_status dd_dnnl_linear_create(dd_dnnl *d, const dd_dnnl_linear_shape *s,
                                            dd_dnnl_linear **out);
DD_INTERNAL void dd_dnnl_linear_destroy(dd_dnnl_linear *l);
/** y[B×O] = x[B×I] · wᵀ + b (b may be NULL). */
DD_INTERNAL dd_status dd_dnnl_linear_forward(dd_dnnl_linear *l, const float *x, const float *w,
                                             const float *b, float *y);
DD_INTERNAL dd_status dd_dnnl_linear_backward_data(dd_dnnl_linear *l, const float *dy,
                                                   const float *w, float *dx);
DD_INTERNAL dd_status dd_dnnl_linear_backward_weights(dd_dnnl_linear *l, const float *x,
                                                      const float *dy, float *dw, float *db);
DD_INTERNAL const char *dd_dnnl_linear_impl(const dd_dnnl_linear *l, dd_dnnl_pass pass);

/* ---- Additions (append-only) ------------------------------------------- */

/** Flags for dd_dnnl_create_flags. */
enum {
    /** Every convolution pass uses plain NCHW/OIHW (gemm:jit), no internal
     * layouts or reorders: the baseline the benchmarks compare against. */
    DD_DNNL_PLAIN_LAYOUTS = 1u,
};

/** dd_dnnl_create with flags (0 = dd_dnnl_create). DD_ERR_INVALID on unknown
 * flags. The flags apply to every kernel created on this engine. */
DD_INTERNAL dd_status dd_dnnl_create_flags(dd_dnnl **out, unsigned flags);

/** Benchmark helper: runs only the pass's oneDNN primitive, without the
 * reorders from/to the plain buffers, on the buffers of the last full call of
 * that pass (which must still be alive). DD_ERR_INVALID before any full call. */
DD_INTERNAL dd_status dd_dnnl_conv_run_primitive(dd_dnnl_conv *c, dd_dnnl_pass pass);
DD_INTERNAL dd_status dd_dnnl_linear_run_primitive(dd_dnnl_linear *l, dd_dnnl_pass pass);

/** Accumulating variants: the same computation as the plain calls, added to
 * the output instead of overwriting it (y += conv(x, w) + b; dx += …;
 * dw += …, db += … with db optional). For the two-term tangents of the
 * forward-over-reverse pass (ẏ = W∗ẋ + Ẇ∗x, …) without a scratch buffer:
 * where the pass uses an internal layout the addition is folded into the
 * reorder back to the plain layout. */
DD_INTERNAL dd_status dd_dnnl_conv_forward_acc(dd_dnnl_conv *c, const float *x, const float *w,
                                               const float *b, float *y);
DD_INTERNAL dd_status dd_dnnl_conv_backward_data_acc(dd_dnnl_conv *c, const float *dy,
                                                     const float *w, float *dx);
DD_INTERNAL dd_status dd_dnnl_conv_backward_weights_acc(dd_dnnl_conv *c, const float *x,
                                                        const float *dy, float *dw, float *db);
DD_INTERNAL dd_status dd_dnnl_linear_forward_acc(dd_dnnl_linear *l, const float *x, const float *w,
                                                 const float *b, float *y);
DD_INTERNAL dd_status dd_dnnl_linear_backward_data_acc(dd_dnnl_linear *l, const float *dy,
                                                       const float *w, float *dx);
DD_INTERNAL dd_status dd_dnnl_linear_backward_weights_acc(dd_dnnl_linear *l, const float *x,
                                                          const float *dy, float *dw, float *db);

/** Threads of the oneDNN calls that follow on this engine: primitive
 * creation (some implementations fix their thread count there) and every
 * pass. 0 (the default) leaves the calling thread's OpenMP setting alone;
 * n > 0 runs each call with OpenMP's per-thread count scoped to n
 * (dd_threads_run). The caller's setting is never left changed. */
DD_INTERNAL void dd_dnnl_set_threads(dd_dnnl *d, int nthreads);

#endif
