/* distill — oneDNN convolution and inner-product kernels (forward,
 * backward-data, backward-weights), one set of primitives per shape.
 * Callers see plain layouts; reorders to the layouts oneDNN's JIT kernels
 * want are created once and run into a shared arena owned by dd_dnnl. */
#include "compute/dnnl_ops.h"

#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "compute/threads.h"

#define ARENA_ALIGN 64
#define MAX_ARGS 5

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
typedef struct prim {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t p;
    dnnl_memory_t scratch; // NULL if the primitive needs none
    size_t scratch_off;
} prim;

/* One argument of a pass: the caller's plain buffer and, if the primitive
 * wants another layout, an arena buffer plus the reorder between them. */
typedef struct arg_bind {
    int arg;
    int output;
    dnnl_memory_t user;
    dnnl_memory_t inner; // NULL when the primitive takes the user layout
    size_t inner_off;
    prim reorder;
    dnnl_exec_arg_t reorder_args[3];
    int reorder_nargs;
    // Accumulating calls (out += result): an output with an internal layout
    // is reordered with a sum post-op; a plain one goes to an arena slot that
    // is then added to the caller's buffer.
    prim acc_reorder;
    size_t acc_off;
    size_t user_floats;
} arg_bind;

typedef struct kpass {
    prim main;
    arg_bind args[MAX_ARGS];
    int n_args;
    dnnl_exec_arg_t exec[MAX_ARGS + 1];
    int n_exec;
    size_t arena_need;
    const char *impl;
    int ran; // a full call has bound the user buffers
} kpass;

/* Activation / weight layouts tried for one pass. */
typedef struct layout {
    dnnl_format_tag_t act;
    dnnl_format_tag_t wei;
} layout;

struct dd_dnnl_conv {
    dd_dnnl *d;
    dd_dnnl_conv_shape s;
    int64_t out_h, out_w;
    float *zero_bias; // used when forward gets b = NULL
    size_t db_off;    // arena slot for db when backward_weights gets db = NULL
    kpass pass[3];
};

struct dd_dnnl_linear {
    dd_dnnl *d;
    dd_dnnl_linear_shape s;
    float *zero_bias;
    size_t db_off;
    kpass pass[3];
};

static dd_status dnnl_fail(dnnl_status_t st, const char *what) {
    return dd_error_set(DD_ERR_BACKEND, "oneDNN: %s: %s", what, dnnl_status2str(st));
}

#define DNNL_TRY(call, what)                                                                       \
    do {                                                                                           \
        dnnl_status_t dnnl_try_st_ = (call);                                                       \
        if (dnnl_try_st_ != dnnl_success) return dnnl_fail(dnnl_try_st_, what);                    \
    } while (0)

static size_t align_up(size_t n) {
    return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

/* Zero-filled, ARENA_ALIGN-aligned buffer (at least one alignment unit). */
static void *zalloc(size_t bytes) {
    size_t n = align_up(bytes ? bytes : 1);
    void *p = aligned_alloc(ARENA_ALIGN, n);
    if (p) memset(p, 0, n);
    return p;
}

/* ---- engine ------------------------------------------------------------- */

dd_status dd_dnnl_create(dd_dnnl **out) {
    return dd_dnnl_create_flags(out, 0);
}

dd_status dd_dnnl_create_flags(dd_dnnl **out, unsigned flags) {
    *out = NULL;
    if (flags & ~(unsigned)DD_DNNL_PLAIN_LAYOUTS)
        return dd_error_set(DD_ERR_INVALID, "dd_dnnl_create_flags: unknown flags 0x%x", flags);
    dd_dnnl *d = calloc(1, sizeof *d);
    if (!d) return dd_error_set(DD_ERR_NOMEM, "dd_dnnl_create: out of memory");
    d->flags = flags;
    dnnl_status_t st = dnnl_engine_create(&d->engine, dnnl_cpu, 0);
    if (st != dnnl_success) {
        free(d);
        return dnnl_fail(st, "creating the CPU engine");
    }
    st = dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        dnnl_engine_destroy(d->engine);
        free(d);
        return dnnl_fail(st, "creating a stream");
    }
    *out = d;
    return DD_OK;
}

void dd_dnnl_set_threads(dd_dnnl *d, int nthreads) {
    if (d) d->nthreads = nthreads > 0 ? nthreads : 0;
}

void dd_dnnl_destroy(dd_dnnl *d) {
    if (!d) return;
    dnnl_stream_destroy(d->stream);
    dnnl_engine_destroy(d->engine);
    free(d->arena);
    free(d);
}

static dd_status arena_reserve(dd_dnnl *d, size_t bytes) {
    if (bytes <= d->arena_size) return DD_OK;
    // Not zeroed: pages are only touched by the passes that need them.
    char *p = aligned_alloc(ARENA_ALIGN, align_up(bytes));
    if (!p) return dd_error_set(DD_ERR_NOMEM, "oneDNN arena: cannot allocate %zu bytes", bytes);
    free(d->arena);
    d->arena = p;
    d->arena_size = bytes;
    return DD_OK;
}

/* ---- primitives and passes --------------------------------------------- */

static dnnl_primitive_attr_t user_scratchpad_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

static void prim_fini(prim *p) {
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    if (p->p) dnnl_primitive_destroy(p->p);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    memset(p, 0, sizeof *p);
}

/* Takes ownership of pd; places its scratchpad at *off in the arena. */
static dd_status prim_init(dd_dnnl *d, prim *p, dnnl_primitive_desc_t pd, size_t *off) {
    p->pd = pd;
    DNNL_TRY(dnnl_primitive_create(&p->p, pd), "creating a primitive");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (bytes > 0) {
        DNNL_TRY(dnnl_memory_create(&p->scratch, smd, d->engine, DNNL_MEMORY_NONE),
                 "creating a scratchpad memory");
        p->scratch_off = *off;
        *off = align_up(*off + bytes);
    }
    return DD_OK;
}

static dd_status prim_run(dd_dnnl *d, prim *p, dnnl_exec_arg_t *args, int nargs) {
    if (p->scratch) {
        DNNL_TRY(dnnl_memory_set_data_handle(p->scratch, d->arena + p->scratch_off),
                 "setting a scratchpad");
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = p->scratch;
        nargs++;
    }
    DNNL_TRY(dnnl_primitive_execute(p->p, d->stream, nargs, args), "executing a primitive");
    return DD_OK;
}

static void pass_fini(kpass *ps) {
    for (int i = 0; i < ps->n_args; i++) {
        arg_bind *a = &ps->args[i];
        prim_fini(&a->reorder);
        prim_fini(&a->acc_reorder);
        if (a->inner) dnnl_memory_destroy(a->inner);
        if (a->user) dnnl_memory_destroy(a->user);
    }
    prim_fini(&ps->main);
    memset(ps, 0, sizeof *ps);
}

typedef struct arg_spec {
    int arg;
    int output;
    const dnnl_memory_desc_t *user_md;
} arg_spec;

/* Builds a pass from a primitive descriptor (owned from here on): one user
 * memory per argument, an arena buffer and a reorder where the primitive's
 * layout differs from the user's. */
static dd_status pass_init(dd_dnnl *d, kpass *ps, dnnl_primitive_desc_t pd, const arg_spec *spec,
                           int n) {
    size_t off = 0;
    DD_TRY(prim_init(d, &ps->main, pd, &off));
    const char *impl = NULL;
    DNNL_TRY(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl),
             "querying the implementation");
    ps->impl = impl;
    dnnl_primitive_attr_t attr = user_scratchpad_attr(), acc_attr = user_scratchpad_attr();
    dnnl_post_ops_t sum = NULL;
    if (!attr || !acc_attr || dnnl_post_ops_create(&sum) != dnnl_success ||
        dnnl_post_ops_append_sum(sum, 1.0f) != dnnl_success ||
        dnnl_primitive_attr_set_post_ops(acc_attr, sum) != dnnl_success) {
        if (sum) dnnl_post_ops_destroy(sum);
        if (attr) dnnl_primitive_attr_destroy(attr);
        if (acc_attr) dnnl_primitive_attr_destroy(acc_attr);
        return dd_error_set(DD_ERR_BACKEND, "oneDNN: cannot create primitive attributes");
    }
    dnnl_post_ops_destroy(sum);
    dd_status st = DD_OK;
    for (int i = 0; i < n && st == DD_OK; i++) {
        arg_bind *a = &ps->args[ps->n_args++];
        a->arg = spec[i].arg;
        a->output = spec[i].output;
        dnnl_status_t ds =
            dnnl_memory_create(&a->user, spec[i].user_md, d->engine, DNNL_MEMORY_NONE);
        if (ds != dnnl_success) {
            st = dnnl_fail(ds, "creating a user memory");
            break;
        }
        const dnnl_memory_desc_t *want =
            dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a->arg);
        if (!want) {
            st = dd_error_set(DD_ERR_BACKEND, "oneDNN: primitive has no argument %d", a->arg);
            break;
        }
        a->user_floats = dnnl_memory_desc_get_size(spec[i].user_md) / sizeof(float);
        if (dnnl_memory_desc_equal(want, spec[i].user_md)) {
            if (a->output) {
                a->acc_off = off;
                off = align_up(off + a->user_floats * sizeof(float));
            }
            continue;
        }
        ds = dnnl_memory_create(&a->inner, want, d->engine, DNNL_MEMORY_NONE);
        if (ds != dnnl_success) {
            st = dnnl_fail(ds, "creating an internal memory");
            break;
        }
        a->inner_off = off;
        off = align_up(off + dnnl_memory_desc_get_size(want));
        const dnnl_memory_desc_t *from = a->output ? want : spec[i].user_md;
        const dnnl_memory_desc_t *to = a->output ? spec[i].user_md : want;
        dnnl_primitive_desc_t rpd = NULL;
        ds = dnnl_reorder_primitive_desc_create(&rpd, from, d->engine, to, d->engine, attr);
        if (ds != dnnl_success) {
            st = dnnl_fail(ds, "creating a reorder");
            break;
        }
        st = prim_init(d, &a->reorder, rpd, &off);
        if (st != DD_OK) break;
        if (a->output) {
            ds = dnnl_reorder_primitive_desc_create(&rpd, from, d->engine, to, d->engine, acc_attr);
            if (ds != dnnl_success) {
                st = dnnl_fail(ds, "creating an accumulating reorder");
                break;
            }
            st = prim_init(d, &a->acc_reorder, rpd, &off);
            if (st != DD_OK) break;
        }
        a->reorder_args[0].arg = DNNL_ARG_FROM;
        a->reorder_args[0].memory = a->output ? a->inner : a->user;
        a->reorder_args[1].arg = DNNL_ARG_TO;
        a->reorder_args[1].memory = a->output ? a->user : a->inner;
        a->reorder_nargs = 2;
    }
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_attr_destroy(acc_attr);
    if (st != DD_OK) return st;
    for (int i = 0; i < ps->n_args; i++) {
        ps->exec[i].arg = ps->args[i].arg;
        ps->exec[i].memory = ps->args[i].inner ? ps->args[i].inner : ps->args[i].user;
    }
    ps->n_exec = ps->n_args;
    ps->arena_need = off;
    return arena_reserve(d, off);
}

static void add_into(float *restrict dst, const float *restrict src, size_t n, int nthreads) {
#pragma omp parallel for simd schedule(static) num_threads(nthreads) if (n >= 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* One call of a pass, as run under dd_threads_run. */
typedef struct pass_call {
    dd_dnnl *d;
    kpass *ps;
    void *const *ptr;
    int acc;
} pass_call;

static dd_status pass_run_scoped(void *arg) {
    const pass_call *c = arg;
    dd_dnnl *d = c->d;
    kpass *ps = c->ps;
    void *const *ptr = c->ptr;
    const int acc = c->acc;
    for (int i = 0; i < ps->n_args; i++) {
        arg_bind *a = &ps->args[i];
        void *user = acc && a->output && !a->inner ? d->arena + a->acc_off : ptr[i];
        DNNL_TRY(dnnl_memory_set_data_handle(a->user, user), "setting a data handle");
        if (!a->inner) continue;
        DNNL_TRY(dnnl_memory_set_data_handle(a->inner, d->arena + a->inner_off),
                 "setting a data handle");
        if (!a->output) DD_TRY(prim_run(d, &a->reorder, a->reorder_args, a->reorder_nargs));
    }
    dnnl_exec_arg_t exec[MAX_ARGS + 1];
    memcpy(exec, ps->exec, sizeof(dnnl_exec_arg_t) * (size_t)ps->n_exec);
    DD_TRY(prim_run(d, &ps->main, exec, ps->n_exec));
    for (int i = 0; i < ps->n_args; i++) {
        arg_bind *a = &ps->args[i];
        if (!a->output) continue;
        if (a->inner)
            DD_TRY(prim_run(d, acc ? &a->acc_reorder : &a->reorder, a->reorder_args,
                            a->reorder_nargs));
    }
    DNNL_TRY(dnnl_stream_wait(d->stream), "waiting for the stream");
    for (int i = 0; i < ps->n_args; i++) {
        arg_bind *a = &ps->args[i];
        if (acc && a->output && !a->inner)
            add_into(ptr[i], (const float *)(d->arena + a->acc_off), a->user_floats,
                     dd_threads_resolve(d->nthreads));
    }
    ps->ran = 1;
    return DD_OK;
}

/* Runs a pass on the caller's buffers (ptr[i] for args[i], in spec order);
 * with acc, outputs are added to instead of overwritten. */
static dd_status pass_run(dd_dnnl *d, kpass *ps, void *const *ptr, int acc) {
    pass_call c = {d, ps, ptr, acc};
    return dd_threads_run(d->nthreads, pass_run_scoped, &c);
}

static dd_status pass_run_primitive_scoped(void *arg) {
    const pass_call *c = arg;
    dd_dnnl *d = c->d;
    kpass *ps = c->ps;
    if (!ps->ran)
        return dd_error_set(DD_ERR_INVALID, "oneDNN: primitive-only run before a full call");
    for (int i = 0; i < ps->n_args; i++) {
        arg_bind *a = &ps->args[i];
        if (a->inner)
            DNNL_TRY(dnnl_memory_set_data_handle(a->inner, d->arena + a->inner_off),
                     "setting a data handle");
    }
    dnnl_exec_arg_t exec[MAX_ARGS + 1];
    memcpy(exec, ps->exec, sizeof(dnnl_exec_arg_t) * (size_t)ps->n_exec);
    DD_TRY(prim_run(d, &ps->main, exec, ps->n_exec));
    DNNL_TRY(dnnl_stream_wait(d->stream), "waiting for the stream");
    return DD_OK;
}

/* Runs only the pass's main primitive (benchmarks): arena buffers as left
 * by the last call, user buffers as bound by the last call of this pass. */
static dd_status pass_run_primitive(dd_dnnl *d, kpass *ps) {
    pass_call c = {d, ps, NULL, 0};
    return dd_threads_run(d->nthreads, pass_run_primitive_scoped, &c);
}

static int impl_is_ref(const char *impl) {
    return !impl || strncmp(impl, "ref", 3) == 0;
}

/* ---- convolution -------------------------------------------------------- */

/* Layouts to try for one pass, best first; the first whose implementation
 * is not a `ref:` fallback wins. "any" lets oneDNN pick (blocked nChw16c /
 * nChw8c activations, blocked weights); the reorders from and to the plain
 * user layouts are included in the timings the order is based on
 * (docs/benchmarks.md, bench_layers). Plain NCHW/OIHW (gemm:jit) is the
 * last resort everywhere: always available, never a ref kernel. */
static size_t conv_candidates(const dd_dnnl_conv_shape *s, dd_dnnl_pass pass, unsigned flags,
                              layout *out) {
    const layout any = {dnnl_format_tag_any, dnnl_format_tag_any};
    const layout nhwc = {dnnl_nhwc, dnnl_format_tag_any};
    const layout plain = {dnnl_nchw, dnnl_oihw};
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    int avx512 =
        ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core;
    size_t n = 0;
    if (flags & DD_DNNL_PLAIN_LAYOUTS) pass = (dd_dnnl_pass)-1;
    switch ((int)pass) {
    case DD_DNNL_FWD:
        out[n++] = any;
        out[n++] = nhwc;
        break;
    case DD_DNNL_BWD_DATA:
        // With 1-4 input channels the direct kernels' diff_src is mostly
        // padding; the gemm formulation is 2-10x faster.
        if (s->in_c > 4) {
            out[n++] = any;
            out[n++] = nhwc;
        }
        break;
    case DD_DNNL_BWD_WEIGHTS:
        // Input channels that are not a multiple of the SIMD width (but more
        // than a handful) make the blocked kernel fall back to a narrower ISA;
        // NHWC keeps the wide kernel (LeNet conv2: 2x).
        if ((avx512 && s->in_c > 4 && s->in_c % 16 != 0) ||
            (!avx512 && s->in_c % 8 != 0 && s->out_c < 32)) {
            out[n++] = nhwc;
            out[n++] = any;
        } else {
            out[n++] = any;
            out[n++] = nhwc;
        }
        break;
    }
    out[n++] = plain;
    return n;
}

static dd_status conv_mds(const dd_dnnl_conv *c, dnnl_format_tag_t act, dnnl_format_tag_t wei,
                          dnnl_memory_desc_t *src, dnnl_memory_desc_t *w, dnnl_memory_desc_t *b,
                          dnnl_memory_desc_t *dst) {
    const dd_dnnl_conv_shape *s = &c->s;
    dnnl_dims_t sd = {s->batch, s->in_c, s->in_h, s->in_w};
    dnnl_dims_t wd = {s->out_c, s->in_c, s->kernel, s->kernel};
    dnnl_dims_t bd = {s->out_c};
    dnnl_dims_t dd = {s->batch, s->out_c, c->out_h, c->out_w};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, act), "source descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(w, 4, wd, dnnl_f32, wei), "weights descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, act), "destination descriptor");
    return DD_OK;
}

static dd_status conv_fwd_pd(const dd_dnnl_conv *c, const layout *l,
                             const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t src, w, b, dst;
    DD_TRY(conv_mds(c, l->act, l->wei, &src, &w, &b, &dst));
    dnnl_dims_t st = {c->s.stride, c->s.stride}, pad = {c->s.pad, c->s.pad};
    dnnl_convolution_desc_t desc;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training,
                                                dnnl_convolution_direct, &src, &w, &b, &dst, st,
                                                pad, pad),
             "convolution forward descriptor");
    DNNL_TRY(dnnl_primitive_desc_create(pd, &desc, attr, c->d->engine, NULL),
             "convolution forward primitive");
    return DD_OK;
}

/* Binds a pass's primitive to the plain user-side descriptors: which
 * arguments are inputs (0) and outputs (1) depends only on the pass, the
 * same for convolution and inner product. */
static dd_status pass_bind(dd_dnnl *d, kpass *ps, dnnl_primitive_desc_t pd, dd_dnnl_pass pass,
                           const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *w,
                           const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *dst) {
    if (pass == DD_DNNL_FWD) {
        arg_spec spec[] = {{DNNL_ARG_SRC, 0, src},
                           {DNNL_ARG_WEIGHTS, 0, w},
                           {DNNL_ARG_BIAS, 0, b},
                           {DNNL_ARG_DST, 1, dst}};
        return pass_init(d, ps, pd, spec, 4);
    }
    if (pass == DD_DNNL_BWD_DATA) {
        arg_spec spec[] = {
            {DNNL_ARG_DIFF_DST, 0, dst}, {DNNL_ARG_WEIGHTS, 0, w}, {DNNL_ARG_DIFF_SRC, 1, src}};
        return pass_init(d, ps, pd, spec, 3);
    }
    arg_spec spec[] = {{DNNL_ARG_SRC, 0, src},
                       {DNNL_ARG_DIFF_DST, 0, dst},
                       {DNNL_ARG_DIFF_WEIGHTS, 1, w},
                       {DNNL_ARG_DIFF_BIAS, 1, b}};
    return pass_init(d, ps, pd, spec, 4);
}

static dd_status conv_pass_pd(const dd_dnnl_conv *c, dd_dnnl_pass pass, const layout *l,
                              dnnl_primitive_desc_t *out) {
    *out = NULL;
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    if (!attr) return dd_error_set(DD_ERR_BACKEND, "oneDNN: cannot create primitive attributes");
    dnnl_primitive_desc_t hint = NULL;
    dd_status st = conv_fwd_pd(c, l, attr, pass == DD_DNNL_FWD ? out : &hint);
    if (st == DD_OK && pass != DD_DNNL_FWD) {
        dnnl_memory_desc_t src, w, b, dst;
        st = conv_mds(c, l->act, l->wei, &src, &w, &b, &dst);
        dnnl_dims_t sd = {c->s.stride, c->s.stride}, pad = {c->s.pad, c->s.pad};
        dnnl_convolution_desc_t desc;
        dnnl_status_t ds = dnnl_success;
        if (st == DD_OK) {
            ds = pass == DD_DNNL_BWD_DATA
                     ? dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct,
                                                                &src, &w, &dst, sd, pad, pad)
                     : dnnl_convolution_backward_weights_desc_init(
                           &desc, dnnl_convolution_direct, &src, &w, &b, &dst, sd, pad, pad);
            if (ds == dnnl_success)
                ds = dnnl_primitive_desc_create(out, &desc, attr, c->d->engine, hint);
            if (ds != dnnl_success) st = dnnl_fail(ds, "convolution backward primitive");
        }
    }
    if (hint) dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

static dd_status conv_pass_init(dd_dnnl_conv *c, dd_dnnl_pass pass, const layout *conv_layouts,
                                size_t n_layouts) {
    dnnl_primitive_desc_t pd = NULL;
    for (size_t i = 0; i < n_layouts; i++) {
        dnnl_primitive_desc_t cand = NULL;
        if (conv_pass_pd(c, pass, &conv_layouts[i], &cand) != DD_OK) continue;
        const char *impl = NULL;
        dnnl_primitive_desc_query(cand, dnnl_query_impl_info_str, 0, &impl);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = cand;
        if (!impl_is_ref(impl)) break;
    }
    if (!pd) {
        dd_error_prefix("convolution %lldx%lldx%lldx%lld -> %lld k%lld s%lld p%lld",
                        (long long)c->s.batch, (long long)c->s.in_c, (long long)c->s.in_h,
                        (long long)c->s.in_w, (long long)c->s.out_c, (long long)c->s.kernel,
                        (long long)c->s.stride, (long long)c->s.pad);
        return DD_ERR_BACKEND;
    }
    // User-side descriptors are always plain.
    dnnl_memory_desc_t src, w, b, dst;
    DD_TRY(conv_mds(c, dnnl_nchw, dnnl_oihw, &src, &w, &b, &dst));
    return pass_bind(c->d, &c->pass[pass], pd, pass, &src, &w, &b, &dst);
}

// The three passes' primitives; run with the engine's thread count, which
// some oneDNN implementations fix at creation.
static dd_status conv_passes_init(void *arg) {
    dd_dnnl_conv *c = arg;
    dd_status st = DD_OK;
    for (int p = 0; p < 3 && st == DD_OK; p++) {
        layout cand[4];
        size_t n = conv_candidates(&c->s, (dd_dnnl_pass)p, c->d->flags, cand);
        st = conv_pass_init(c, (dd_dnnl_pass)p, cand, n);
    }
    if (st == DD_OK) {
        // db scratch for backward_weights(db = NULL) sits after that pass's buffers.
        c->db_off = c->pass[DD_DNNL_BWD_WEIGHTS].arena_need;
        st = arena_reserve(c->d, c->db_off + sizeof(float) * (size_t)c->s.out_c);
    }
    return st;
}

dd_status dd_dnnl_conv_create(dd_dnnl *d, const dd_dnnl_conv_shape *s, dd_dnnl_conv **out) {
    *out = NULL;
    if (!d || !s || s->batch < 1 || s->in_c < 1 || s->in_h < 1 || s->in_w < 1 || s->out_c < 1 ||
        s->kernel < 1 || s->stride < 1 || s->pad < 0 || s->in_h + 2 * s->pad < s->kernel ||
        s->in_w + 2 * s->pad < s->kernel)
        return dd_error_set(DD_ERR_INVALID, "dd_dnnl_conv_create: invalid convolution shape");
    dd_dnnl_conv *c = calloc(1, sizeof *c);
    if (!c) return dd_error_set(DD_ERR_NOMEM, "dd_dnnl_conv_create: out of memory");
    c->d = d;
    c->s = *s;
    c->out_h = (s->in_h + 2 * s->pad - s->kernel) / s->stride + 1;
    c->out_w = (s->in_w + 2 * s->pad - s->kernel) / s->stride + 1;
    c->zero_bias = zalloc(sizeof(float) * (size_t)s->out_c);
    dd_status st = c->zero_bias ? dd_threads_run(d->nthreads, conv_passes_init, c) : DD_ERR_NOMEM;
    if (st != DD_OK) {
        dd_dnnl_conv_destroy(c);
        return st;
    }
    *out = c;
    return DD_OK;
}

void dd_dnnl_conv_destroy(dd_dnnl_conv *c) {
    if (!c) return;
    for (int p = 0; p < 3; p++)
        pass_fini(&c->pass[p]);
    free(c->zero_bias);
    free(c);
}

static dd_status conv_fwd(dd_dnnl_conv *c, const float *x, const float *w, const float *b, float *y,
                          int acc) {
    void *ptr[] = {(void *)x, (void *)w, (void *)(b ? b : c->zero_bias), y};
    return pass_run(c->d, &c->pass[DD_DNNL_FWD], ptr, acc);
}

static dd_status conv_bwd_data(dd_dnnl_conv *c, const float *dy, const float *w, float *dx,
                               int acc) {
    void *ptr[] = {(void *)dy, (void *)w, dx};
    return pass_run(c->d, &c->pass[DD_DNNL_BWD_DATA], ptr, acc);
}

static dd_status conv_bwd_weights(dd_dnnl_conv *c, const float *x, const float *dy, float *dw,
                                  float *db, int acc) {
    void *ptr[] = {(void *)x, (void *)dy, dw, db ? (void *)db : (void *)(c->d->arena + c->db_off)};
    return pass_run(c->d, &c->pass[DD_DNNL_BWD_WEIGHTS], ptr, acc);
}

dd_status dd_dnnl_conv_forward(dd_dnnl_conv *c, const float *x, const float *w, const float *b,
                               float *y) {
    return conv_fwd(c, x, w, b, y, 0);
}

dd_status dd_dnnl_conv_backward_data(dd_dnnl_conv *c, const float *dy, const float *w, float *dx) {
    return conv_bwd_data(c, dy, w, dx, 0);
}

dd_status dd_dnnl_conv_backward_weights(dd_dnnl_conv *c, const float *x, const float *dy, float *dw,
                                        float *db) {
    return conv_bwd_weights(c, x, dy, dw, db, 0);
}

dd_status dd_dnnl_conv_forward_acc(dd_dnnl_conv *c, const float *x, const float *w, const float *b,
                                   float *y) {
    return conv_fwd(c, x, w, b, y, 1);
}

dd_status dd_dnnl_conv_backward_data_acc(dd_dnnl_conv *c, const float *dy, const float *w,
                                         float *dx) {
    return conv_bwd_data(c, dy, w, dx, 1);
}

dd_status dd_dnnl_conv_backward_weights_acc(dd_dnnl_conv *c, const float *x, const float *dy,
                                            float *dw, float *db) {
    return conv_bwd_weights(c, x, dy, dw, db, 1);
}

dd_status dd_dnnl_conv_run_primitive(dd_dnnl_conv *c, dd_dnnl_pass pass) {
    if (!c || pass < DD_DNNL_FWD || pass > DD_DNNL_BWD_WEIGHTS)
        return dd_error_set(DD_ERR_INVALID, "dd_dnnl_conv_run_primitive: bad pass");
    return pass_run_primitive(c->d, &c->pass[pass]);
}

const char *dd_dnnl_conv_impl(const dd_dnnl_conv *c, dd_dnnl_pass pass) {
    if (!c || pass < DD_DNNL_FWD || pass > DD_DNNL_BWD_WEIGHTS) return "";
    return c->pass[pass].impl ? c->pass[pass].impl : "";
}

/* ---- inner product ------------------------------------------------------ */

static dd_status linear_mds(const dd_dnnl_linear *l, dnnl_format_tag_t wei, dnnl_memory_desc_t *src,
                            dnnl_memory_desc_t *w, dnnl_memory_desc_t *b, dnnl_memory_desc_t *dst) {
    dnnl_dims_t sd = {l->s.batch, l->s.in_features};
    dnnl_dims_t wd = {l->s.out_features, l->s.in_features};
    dnnl_dims_t bd = {l->s.out_features};
    dnnl_dims_t dd = {l->s.batch, l->s.out_features};
    DNNL_TRY(dnnl_memory_desc_init_by_tag(src, 2, sd, dnnl_f32, dnnl_nc), "source descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(w, 2, wd, dnnl_f32, wei), "weights descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
    DNNL_TRY(dnnl_memory_desc_init_by_tag(dst, 2, dd, dnnl_f32, dnnl_nc), "destination descriptor");
    return DD_OK;
}

static dd_status linear_pass_pd(const dd_dnnl_linear *l, dd_dnnl_pass pass, dnnl_format_tag_t wei,
                                dnnl_primitive_desc_t *out) {
    *out = NULL;
    dnnl_memory_desc_t src, w, b, dst;
    DD_TRY(linear_mds(l, wei, &src, &w, &b, &dst));
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    if (!attr) return dd_error_set(DD_ERR_BACKEND, "oneDNN: cannot create primitive attributes");
    dnnl_inner_product_desc_t fd, bd;
    dnnl_primitive_desc_t hint = NULL;
    dnnl_status_t ds =
        dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &src, &w, &b, &dst);
    if (ds == dnnl_success)
        ds = dnnl_primitive_desc_create(pass == DD_DNNL_FWD ? out : &hint, &fd, attr, l->d->engine,
                                        NULL);
    if (ds == dnnl_success && pass != DD_DNNL_FWD) {
        ds = pass == DD_DNNL_BWD_DATA
                 ? dnnl_inner_product_backward_data_desc_init(&bd, &src, &w, &dst)
                 : dnnl_inner_product_backward_weights_desc_init(&bd, &src, &w, &b, &dst);
        if (ds == dnnl_success) ds = dnnl_primitive_desc_create(out, &bd, attr, l->d->engine, hint);
    }
    if (hint) dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
    return ds == dnnl_success ? DD_OK : dnnl_fail(ds, "inner product primitive");
}

static dd_status linear_pass_init(dd_dnnl_linear *l, dd_dnnl_pass pass) {
    static const dnnl_format_tag_t weis[] = {dnnl_oi};
    dnnl_primitive_desc_t pd = NULL;
    for (size_t i = 0; i < sizeof weis / sizeof weis[0]; i++) {
        dnnl_primitive_desc_t cand = NULL;
        if (linear_pass_pd(l, pass, weis[i], &cand) != DD_OK) continue;
        const char *impl = NULL;
        dnnl_primitive_desc_query(cand, dnnl_query_impl_info_str, 0, &impl);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = cand;
        if (!impl_is_ref(impl)) break;
    }
    if (!pd) {
        dd_error_prefix("inner product %lldx%lld -> %lld", (long long)l->s.batch,
                        (long long)l->s.in_features, (long long)l->s.out_features);
        return DD_ERR_BACKEND;
    }
    dnnl_memory_desc_t src, w, b, dst;
    DD_TRY(linear_mds(l, dnnl_oi, &src, &w, &b, &dst));
    return pass_bind(l->d, &l->pass[pass], pd, pass, &src, &w, &b, &dst);
}

// As conv_passes_init.
static dd_status linear_passes_init(void *arg) {
    dd_dnnl_linear *l = arg;
    dd_status st = DD_OK;
    for (int p = 0; p < 3 && st == DD_OK; p++)
        st = linear_pass_init(l, (dd_dnnl_pass)p);
    if (st == DD_OK) {
        l->db_off = l->pass[DD_DNNL_BWD_WEIGHTS].arena_need;
        st = arena_reserve(l->d, l->db_off + sizeof(float) * (size_t)l->s.out_features);
    }
    return st;
}

dd_status dd_dnnl_linear_create(dd_dnnl *d, const dd_dnnl_linear_shape *s, dd_dnnl_linear **out) {
    *out = NULL;
    if (!d || !s || s->batch < 1 || s->in_features < 1 || s->out_features < 1)
        return dd_error_set(DD_ERR_INVALID, "dd_dnnl_linear_create: invalid shape");
    dd_dnnl_linear *l = calloc(1, sizeof *l);
    if (!l) return dd_error_set(DD_ERR_NOMEM, "dd_dnnl_linear_create: out of memory");
    l->d = d;
    l->s = *s;
    l->zero_bias = zalloc(sizeof(float) * (size_t)s->out_features);
    dd_status st = l->zero_bias ? dd_threads_run(d->nthreads, linear_passes_init, l) : DD_ERR_NOMEM;
    if (st != DD_OK) {
        dd_dnnl_linear_destroy(l);
        return st;
    }
    *out = l;
    return DD_OK;
}

void dd_dnnl_linear_destroy(dd_dnnl_linear *l) {
    if (!l) return;
    for (int p = 0; p < 3; p++)
        pass_fini(&l->pass[p]);
    free(l->zero_bias);
    free(l);
}

static dd_status linear_fwd(dd_dnnl_linear *l, const float *x, const float *w, const float *b,
                            float *y, int acc) {
    void *ptr[] = {(void *)x, (void *)w, (void *)(b ? b : l->zero_bias), y};
    return pass_run(l->d, &l->pass[DD_DNNL_FWD], ptr, acc);
}

static dd_status linear_bwd_data(dd_dnnl_linear *l, const float *dy, const float *w, float *dx,
                                 int acc) {
    void *ptr[] = {(void *)dy, (void *)w, dx};
    return pass_run(l->d, &l->pass[DD_DNNL_BWD_DATA], ptr, acc);
}

static dd_status linear_bwd_weights(dd_dnnl_linear *l, const float *x, const float *dy, float *dw,
                                    float *db, int acc) {
    void *ptr[] = {(void *)x, (void *)dy, dw, db ? (void *)db : (void *)(l->d->arena + l->db_off)};
    return pass_run(l->d, &l->pass[DD_DNNL_BWD_WEIGHTS], ptr, acc);
}

dd_status dd_dnnl_linear_forward(dd_dnnl_linear *l, const float *x, const float *w, const float *b,
                                 float *y) {
    return linear_fwd(l, x, w, b, y, 0);
}

dd_status dd_dnnl_linear_backward_data(dd_dnnl_linear *l, const float *dy, const float *w,
                                       float *dx) {
    return linear_bwd_data(l, dy, w, dx, 0);
}

dd_status dd_dnnl_linear_backward_weights(dd_dnnl_linear *l, const float *x, const float *dy,
                                          float *dw, float *db) {
    return linear_bwd_weights(l, x, dy, dw, db, 0);
}

dd_status dd_dnnl_linear_forward_acc(dd_dnnl_linear *l, const float *x, const float *w,
                                     const float *b, float *y) {
    return linear_fwd(l, x, w, b, y, 1);
}

dd_status dd_dnnl_linear_backward_data_acc(dd_dnnl_linear *l, const float *dy, const float *w,
                                           float *dx) {
    return linear_bwd_data(l, dy, w, dx, 1);
}

dd_status dd_dnnl_linear_backward_weights_acc(dd_dnnl_linear *l, const float *x, const float *dy,
                                              float *dw, float *db) {
    return linear_bwd_weights(l, x, dy, dw, db, 1);
}

dd_status dd_dnnl_linear_run_primitive(dd_dnnl_linear *l, dd_dnnl_pass pass) {
    if (!l || pass < DD_DNNL_FWD || pass > DD_DNNL_BWD_WEIGHTS)
        return dd_error_set(DD_ERR_INVALID, "dd_dnnl_linear_run_primitive: bad pass");
    return pass_run_primitive(l->d, &l->pass[pass]);
}

const char *dd_dnnl_linear_impl(const dd_dnnl_linear *l, dd_dnnl_pass pass) {
    if (!l || pass < DD_DNNL_FWD || pass > DD_DNNL_BWD_WEIGHTS) return "";
    return l->pass[pass].impl ? l->pass[pass].impl : "";
}
