/* distill — aligned float buffers, small tensors and the counter-based RNG.
 * Tensors are float32, dense NCHW, 64-byte aligned. */
#ifndef DISTILL_TENSOR_H
#define DISTILL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DD_ALIGN 64
#define DD_MAX_DIMS 4

/** 64-byte aligned, zero-filled allocation of n floats (n may be 0). NULL on failure
 * (with the error message set). Free with dd_free. */
DD_API float *dd_alloc_floats(size_t n);
DD_API void *dd_alloc_aligned(size_t bytes);
DD_API void dd_free(void *p);

typedef struct dd_tensor {
    float *data; /**< owned, DD_ALIGN-aligned */
    int ndim;
    int64_t dims[DD_MAX_DIMS]; /**< NCHW order */
    size_t numel;
} dd_tensor;

/** Allocates a zeroed tensor of `ndim` dims. Caller owns *out. */
DD_API dd_status dd_tensor_create(int ndim, const int64_t *dims, dd_tensor **out);
DD_API void dd_tensor_destroy(dd_tensor *t);

/** Counter-based RNG: value i of stream (seed, stream) is a pure function of
 * (seed, stream, counter + i), so results do not depend on thread count or on
 * how a range is split. Copying the struct forks the stream. */
typedef struct dd_rng {
    uint64_t seed;
    uint64_t stream;  /**< independent sub-streams (e.g. one per net) */
    uint64_t counter; /**< advanced by every draw */
} dd_rng;

DD_API dd_rng dd_rng_make(uint64_t seed, uint64_t stream);
/** Uniform 64 random bits for the current counter; advances by 1. */
DD_API uint64_t dd_rng_u64(dd_rng *r);
/** Uniform integer in [0, n). */
DD_API uint64_t dd_rng_below(dd_rng *r, uint64_t n);
/** Fills out[0..n) with U[lo, hi); advances counter by n. */
DD_API void dd_rng_uniform(dd_rng *r, float *out, size_t n, float lo, float hi);
/** Fills out[0..n) with N(mean, std^2); advances counter by n. */
DD_API void dd_rng_normal(dd_rng *r, float *out, size_t n, float mean, float std);
/** In-place Fisher–Yates shuffle of idx[0..n). */
DD_API void dd_rng_shuffle(dd_rng *r, int64_t *idx, size_t n);

#ifdef __cplusplus
}
#endif
#endif
