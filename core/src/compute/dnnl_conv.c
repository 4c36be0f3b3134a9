/* distill — oneDNN convolution kernels (forward, backward-data,
 * backward-weights), one set of primitives per shape: the layouts tried per
 * pass and the primitive descriptors; binding to the plain user buffers and
 * running are dnnl_pass.c's. */
#include "compute/dnnl_impl.h"

#include <stdlib.h>

#include "compute/threads.h"

/* Layouts to try for one pass, best first; the first whose implementation
 * is not a `ref:` fallback wins. "any" lets oneDNN pick (blocked nChw16c /
 * nChw8c activations, blocked weights); the reorders from and to the plain
 * user layouts are included in the timings the order is based on
 * (docs/benchmarks.md, bench_layers). Plain NCHW/OIHW (gemm:jit) is the
 * last resort everywhere: always available, never a ref kernel. */
static size_t conv_candidates(const dd_dnnl_conv_shape *s, dd_dnnl_pass pass, unsigned flags,
                              dd_dnnl_layout *out) {
    const dd_dnnl_layout any = {dnnl_format_tag_any, dnnl_format_tag_any};
    const dd_dnnl_layout nhwc = {dnnl_nhwc, dnnl_format_tag_any};
    const dd_dnnl_layout plain = {dnnl_nchw, dnnl_oihw};
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
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(src, 4, sd, dnnl_f32, act), "source descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(w, 4, wd, dnnl_f32, wei), "weights descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(dst, 4, dd, dnnl_f32, act), "destination descriptor");
    return DD_OK;
}

static dd_status conv_fwd_pd(const dd_dnnl_conv *c, const dd_dnnl_layout *l,
                             const_dnnl_primitive_attr_t attr, dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t src, w, b, dst;
    DD_TRY(conv_mds(c, l->act, l->wei, &src, &w, &b, &dst));
    dnnl_dims_t st = {c->s.stride, c->s.stride}, pad = {c->s.pad, c->s.pad};
    dnnl_convolution_desc_t desc;
    DD_DNNL_TRY(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training,
                                                   dnnl_convolution_direct, &src, &w, &b, &dst, st,
                                                   pad, pad),
                "convolution forward descriptor");
    DD_DNNL_TRY(dnnl_primitive_desc_create(pd, &desc, attr, c->d->engine, NULL),
                "convolution forward primitive");
    return DD_OK;
}

static dd_status conv_pass_pd(const dd_dnnl_conv *c, dd_dnnl_pass pass, const dd_dnnl_layout *l,
                              dnnl_primitive_desc_t *out) {
    *out = NULL;
    dnnl_primitive_attr_t attr = dd_dnnl_scratchpad_attr();
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
            if (ds != dnnl_success) st = dd_dnnl_fail(ds, "convolution backward primitive");
        }
    }
    if (hint) dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

dd_status dd_dnnl_conv_pass_init(dd_dnnl_conv *c, dd_dnnl_pass pass, const dd_dnnl_layout *layouts,
                                 size_t n) {
    dnnl_primitive_desc_t pd = NULL;
    for (size_t i = 0; i < n; i++) {
        dnnl_primitive_desc_t cand = NULL;
        if (conv_pass_pd(c, pass, &layouts[i], &cand) != DD_OK) continue;
        const char *impl = NULL;
        dnnl_primitive_desc_query(cand, dnnl_query_impl_info_str, 0, &impl);
        if (pd) dnnl_primitive_desc_destroy(pd);
        pd = cand;
        if (!dd_dnnl_impl_is_ref(impl)) break;
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
    return dd_dnnl_pass_bind(c->d, &c->pass[pass], pd, pass, &src, &w, &b, &dst);
}

// The three passes' primitives; run with the engine's thread count, which
// some oneDNN implementations fix at creation.
static dd_status conv_passes_init(void *arg) {
    dd_dnnl_conv *c = arg;
    dd_status st = DD_OK;
    for (int p = 0; p < 3 && st == DD_OK; p++) {
        dd_dnnl_layout cand[4];
        size_t n = conv_candidates(&c->s, (dd_dnnl_pass)p, c->d->flags, cand);
        st = dd_dnnl_conv_pass_init(c, (dd_dnnl_pass)p, cand, n);
    }
    if (st == DD_OK) {
        // db scratch for backward_weights(db = NULL) sits after that pass's buffers.
        c->db_off = c->pass[DD_DNNL_BWD_WEIGHTS].arena_need;
        st = dd_dnnl_arena_reserve(c->d, c->db_off + sizeof(float) * (size_t)c->s.out_c);
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
    c->zero_bias = dd_dnnl_zalloc(sizeof(float) * (size_t)s->out_c);
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
        dd_dnnl_pass_fini(&c->pass[p]);
    free(c->zero_bias);
    free(c);
}

static dd_status conv_fwd(dd_dnnl_conv *c, const float *x, const float *w, const float *b, float *y,
                          int acc) {
    void *ptr[] = {(void *)x, (void *)w, (void *)(b ? b : c->zero_bias), y};
    return dd_dnnl_pass_run(c->d, &c->pass[DD_DNNL_FWD], ptr, acc);
}

static dd_status conv_bwd_data(dd_dnnl_conv *c, const float *dy, const float *w, float *dx,
                               int acc) {
    void *ptr[] = {(void *)dy, (void *)w, dx};
    return dd_dnnl_pass_run(c->d, &c->pass[DD_DNNL_BWD_DATA], ptr, acc);
}

static dd_status conv_bwd_weights(dd_dnnl_conv *c, const float *x, const float *dy, float *dw,
                                  float *db, int acc) {
    void *ptr[] = {(void *)x, (void *)dy, dw, db ? (void *)db : (void *)(c->d->arena + c->db_off)};
    return dd_dnnl_pass_run(c->d, &c->pass[DD_DNNL_BWD_WEIGHTS], ptr, acc);
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
    return dd_dnnl_pass_run_primitive(c->d, &c->pass[pass]);
}

const char *dd_dnnl_conv_impl(const dd_dnnl_conv *c, dd_dnnl_pass pass) {
    if (!c || pass < DD_DNNL_FWD || pass > DD_DNNL_BWD_WEIGHTS) return "";
    return c->pass[pass].impl ? c->pass[pass].impl : "";
}
