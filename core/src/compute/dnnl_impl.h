/* distill (internal) — the state behind compute/dnnl_ops.h, shared by its
 * pieces: dnnl_pass.c (engine, arena, primitives, passes bound to plain
 * buffers), dnnl_conv.c (convolution), dnnl_linear.c (inner product). Only
 * those files and bench/bench_layouts.c include this; the rest of the core
 * sees dnnl_ops.h, and oneDNN's headers stay inside compute/. */
#ifndef DD_DNNL_IMPL_H
#define DD_DNNL_IMPL_H

#include <stddef.h>

#include <oneapi/dnnl/dnnl.h>

#include "compute/dnnl_ops.h"

#define DD_DNNL_MAX_ARGS 5

struct dd_dnnl {
    unsigned flags; // DD_DNNL_*
    int nthreads;   // of the calls that follow (0: the caller's OpenMP default)
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    // Internal (reordered) tensors and oneDNN scratchpads of the pass being
    // run. Passes run one at a time, so they all share this buffer; it grows
    // only when a primitive is created, never in a call.
    char *arena;
    size_t arena_size;
};

/* A primitive with its own scratchpad slot in the arena. */
typedef struct dd_dnnl_prim {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    dnnl_memory_t scratch; // NULL if the primitive needs none
    size_t scratch_off;
} dd_dnnl_prim;

/* One argument of a pass: the caller's plain buffer and, if the primitive
 * wants another layout, an arena buffer plus the reorder between them. */
typedef struct dd_dnnl_arg {
    int arg;
    int output;
    dnnl_memory_t user;
    dnnl_memory_t inner; // NULL when the primitive takes the user layout
    size_t inner_off;
    dd_dnnl_prim reorder;
    dnnl_exec_arg_t reorder_args[3];
    int reorder_nargs;
    // Accumulating calls (out += result): an output with an internal layout
    // is reordered with a sum post-op; a plain one goes to an arena slot that
    // is then added to the caller's buffer.
    dd_dnnl_prim acc_reorder;
    size_t acc_off;
    size_t user_floats;
} dd_dnnl_arg;

/* One pass (forward, backward-data or backward-weights) of a kernel. */
typedef struct dd_dnnl_kpass {
    dd_dnnl_prim main;
    dd_dnnl_arg args[DD_DNNL_MAX_ARGS];
    int n_args;
    dnnl_exec_arg_t exec[DD_DNNL_MAX_ARGS + 1];
    int n_exec;
    size_t arena_need;
    const char *impl;
    int ran; // a full call has bound the user buffers
} dd_dnnl_kpass;

/* Activation / weight layouts tried for one pass. */
typedef struct dd_dnnl_layout {
    dnnl_format_tag_t act;
    dnnl_format_tag_t wei;
} dd_dnnl_layout;

struct dd_dnnl_conv {
    dd_dnnl *d;
    dd_dnnl_conv_shape s;
    int64_t out_h, out_w;
    float *zero_bias; // used when forward gets b = NULL
    size_t db_off;    // arena slot for db when backward_weights gets db = NULL
    dd_dnnl_kpass pass[3];
};

struct dd_dnnl_linear {
    dd_dnnl *d;
    dd_dnnl_linear_shape s;
    float *zero_bias;
    size_t db_off;
    dd_dnnl_kpass pass[3];
};

/* ---- dnnl_pass.c -------------------------------------------------------- */

/** Sets the error message for a failed oneDNN call; returns DD_ERR_BACKEND. */
dd_status dd_dnnl_fail(dnnl_status_t st, const char *what);

/** Returns from the calling function with dd_dnnl_fail if a oneDNN call fails. */
#define DD_DNNL_TRY(call, what)                                                                    \
    do {                                                                                           \
        dnnl_status_t dd_dnnl_try_st_ = (call);                                                    \
        if (dd_dnnl_try_st_ != dnnl_success) return dd_dnnl_fail(dd_dnnl_try_st_, what);           \
    } while (0)

/** Zero-filled, 64-byte-aligned buffer (at least 64 bytes); free() it. NULL
 * when out of memory. */
DD_INTERNAL void *dd_dnnl_zalloc(size_t bytes);
/** Grows the engine's arena to at least bytes (contents not kept). */
DD_INTERNAL dd_status dd_dnnl_arena_reserve(dd_dnnl *d, size_t bytes);
/** Primitive attributes with a user-provided scratchpad; NULL on failure.
 * The caller destroys them. */
dnnl_primitive_attr_t dd_dnnl_scratchpad_attr(void);
/** Whether an implementation name is a `ref:` fallback (or missing). */
DD_INTERNAL int dd_dnnl_impl_is_ref(const char *impl);

/** Builds a pass from pd (owned from here on, also on failure) and the plain
 * user-side descriptors: which arguments are inputs and outputs depends only
 * on the pass, the same for convolution and inner product. Reserves the
 * pass's arena. On failure dd_dnnl_pass_fini cleans up what was made. */
dd_status dd_dnnl_pass_bind(dd_dnnl *d, dd_dnnl_kpass *ps, dnnl_primitive_desc_t pd,
                            dd_dnnl_pass pass, const dnnl_memory_desc_t *src,
                            const dnnl_memory_desc_t *w, const dnnl_memory_desc_t *b,
                            const dnnl_memory_desc_t *dst);
void dd_dnnl_pass_fini(dd_dnnl_kpass *ps);
/** Runs a pass on the caller's buffers (ptr[i] for the pass's i-th argument:
 * fwd x, w, b, y; bwd_data dy, w, dx; bwd_weights x, dy, dw, db); with acc,
 * outputs are added to instead of overwritten. */
dd_status dd_dnnl_pass_run(dd_dnnl *d, dd_dnnl_kpass *ps, void *const *ptr, int acc);
/** Runs only the pass's main primitive (benchmarks): arena buffers as left
 * by the last call, user buffers as bound by the last call of this pass. */
dd_status dd_dnnl_pass_run_primitive(dd_dnnl *d, dd_dnnl_kpass *ps);

/* ---- dnnl_conv.c -------------------------------------------------------- */

/** Creates c->pass[pass] with the first of the n layouts whose
 * implementation is not a `ref:` fallback (else the last one oneDNN could
 * create). c->d, c->s, c->out_h and c->out_w must be set. */
DD_INTERNAL dd_status dd_dnnl_conv_pass_init(dd_dnnl_conv *c, dd_dnnl_pass pass,
                                             const dd_dnnl_layout *layouts, size_t n);

#endif
