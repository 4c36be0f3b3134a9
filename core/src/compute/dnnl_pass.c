/* distill — the oneDNN plumbing under the convolution and inner-product
 * kernels: the engine and stream, the shared arena, primitives with their
 * scratchpads, and passes (a primitive bound to the caller's plain buffers
 * through reorders created once, run into the arena). */
#include "compute/dnnl_impl.h"

#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "compute/threads.h"

#define ARENA_ALIGN 64

dd_status dd_dnnl_fail(dnnl_status_t st, const char *what) {
    return dd_error_set(DD_ERR_BACKEND, "oneDNN: %s: %s", what, dnnl_status2str(st));
}

static size_t align_up(size_t n) {
    return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

void *dd_dnnl_zalloc(size_t bytes) {
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
        return dd_dnnl_fail(st, "creating the CPU engine");
    }
    st = dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags);
    if (st != dnnl_success) {
        dnnl_engine_destroy(d->engine);
        free(d);
        return dd_dnnl_fail(st, "creating a stream");
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

void dd_dnnl_release_arena(dd_dnnl *d) {
    if (!d) return;
    free(d->arena);
    d->arena = NULL;
    d->arena_size = 0;
}

dd_status dd_dnnl_arena_reserve(dd_dnnl *d, size_t bytes) {
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

dnnl_primitive_attr_t dd_dnnl_scratchpad_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

int dd_dnnl_impl_is_ref(const char *impl) {
    return !impl || strncmp(impl, "ref", 3) == 0;
}

static void prim_fini(dd_dnnl_prim *p) {
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    if (p->p) dnnl_primitive_destroy(p->p);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    memset(p, 0, sizeof *p);
}

/* Takes ownership of pd; places its scratchpad at *off in the arena. */
static dd_status prim_init(dd_dnnl *d, dd_dnnl_prim *p, dnnl_primitive_desc_t pd, size_t *off) {
    p->pd = pd;
    DD_DNNL_TRY(dnnl_primitive_create(&p->p, pd), "creating a primitive");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (bytes > 0) {
        DD_DNNL_TRY(dnnl_memory_create(&p->scratch, smd, d->engine, DNNL_MEMORY_NONE),
                    "creating a scratchpad memory");
        p->scratch_off = *off;
        *off = align_up(*off + bytes);
    }
    return DD_OK;
}

static dd_status prim_run(dd_dnnl *d, dd_dnnl_prim *p, dnnl_exec_arg_t *args, int nargs) {
    if (p->scratch) {
        DD_DNNL_TRY(dnnl_memory_set_data_handle(p->scratch, d->arena + p->scratch_off),
                    "setting a scratchpad");
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = p->scratch;
        nargs++;
    }
    DD_DNNL_TRY(dnnl_primitive_execute(p->p, d->stream, nargs, args), "executing a primitive");
    return DD_OK;
}

void dd_dnnl_pass_fini(dd_dnnl_kpass *ps) {
    for (int i = 0; i < ps->n_args; i++) {
        dd_dnnl_arg *a = &ps->args[i];
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

/* The attributes of the reorders between user and internal layouts: plain,
 * and with a sum post-op (accumulating calls). Both or neither are made. */
static dd_status reorder_attrs(dnnl_primitive_attr_t *attr, dnnl_primitive_attr_t *acc_attr) {
    *attr = dd_dnnl_scratchpad_attr();
    *acc_attr = dd_dnnl_scratchpad_attr();
    dnnl_post_ops_t sum = NULL;
    if (!*attr || !*acc_attr || dnnl_post_ops_create(&sum) != dnnl_success ||
        dnnl_post_ops_append_sum(sum, 1.0f) != dnnl_success ||
        dnnl_primitive_attr_set_post_ops(*acc_attr, sum) != dnnl_success) {
        if (sum) dnnl_post_ops_destroy(sum);
        if (*attr) dnnl_primitive_attr_destroy(*attr);
        if (*acc_attr) dnnl_primitive_attr_destroy(*acc_attr);
        return dd_error_set(DD_ERR_BACKEND, "oneDNN: cannot create primitive attributes");
    }
    dnnl_post_ops_destroy(sum);
    return DD_OK;
}

/* One argument of a pass: its user memory and, where the primitive (pd)
 * wants another layout, an arena buffer at *off and the reorders to or from
 * it. Arena slots are taken from *off in creation order. */
static dd_status arg_init(dd_dnnl *d, dd_dnnl_arg *a, const arg_spec *spec,
                          const_dnnl_primitive_desc_t pd, const_dnnl_primitive_attr_t attr,
                          const_dnnl_primitive_attr_t acc_attr, size_t *off) {
    a->arg = spec->arg;
    a->output = spec->output;
    DD_DNNL_TRY(dnnl_memory_create(&a->user, spec->user_md, d->engine, DNNL_MEMORY_NONE),
                "creating a user memory");
    const dnnl_memory_desc_t *want =
        dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, a->arg);
    if (!want) return dd_error_set(DD_ERR_BACKEND, "oneDNN: primitive has no argument %d", a->arg);
    a->user_floats = dnnl_memory_desc_get_size(spec->user_md) / sizeof(float);
    if (dnnl_memory_desc_equal(want, spec->user_md)) {
        if (a->output) {
            a->acc_off = *off;
            *off = align_up(*off + a->user_floats * sizeof(float));
        }
        return DD_OK;
    }
    DD_DNNL_TRY(dnnl_memory_create(&a->inner, want, d->engine, DNNL_MEMORY_NONE),
                "creating an internal memory");
    a->inner_off = *off;
    *off = align_up(*off + dnnl_memory_desc_get_size(want));
    const dnnl_memory_desc_t *from = a->output ? want : spec->user_md;
    const dnnl_memory_desc_t *to = a->output ? spec->user_md : want;
    dnnl_primitive_desc_t rpd = NULL;
    DD_DNNL_TRY(dnnl_reorder_primitive_desc_create(&rpd, from, d->engine, to, d->engine, attr),
                "creating a reorder");
    DD_TRY(prim_init(d, &a->reorder, rpd, off));
    if (a->output) {
        DD_DNNL_TRY(
            dnnl_reorder_primitive_desc_create(&rpd, from, d->engine, to, d->engine, acc_attr),
            "creating an accumulating reorder");
        DD_TRY(prim_init(d, &a->acc_reorder, rpd, off));
    }
    a->reorder_args[0].arg = DNNL_ARG_FROM;
    a->reorder_args[0].memory = a->output ? a->inner : a->user;
    a->reorder_args[1].arg = DNNL_ARG_TO;
    a->reorder_args[1].memory = a->output ? a->user : a->inner;
    a->reorder_nargs = 2;
    return DD_OK;
}

/* Builds a pass from a primitive descriptor (owned from here on): one user
 * memory per argument, an arena buffer and a reorder where the primitive's
 * layout differs from the user's. */
static dd_status pass_init(dd_dnnl *d, dd_dnnl_kpass *ps, dnnl_primitive_desc_t pd,
                           const arg_spec *spec, int n) {
    size_t off = 0;
    DD_TRY(prim_init(d, &ps->main, pd, &off));
    const char *impl = NULL;
    DD_DNNL_TRY(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl),
                "querying the implementation");
    ps->impl = impl;
    dnnl_primitive_attr_t attr, acc_attr;
    DD_TRY(reorder_attrs(&attr, &acc_attr));
    dd_status st = DD_OK;
    // n_args counts an argument before it is complete, so that
    // dd_dnnl_pass_fini also releases a partly built one.
    for (int i = 0; i < n && st == DD_OK; i++)
        st = arg_init(d, &ps->args[ps->n_args++], &spec[i], pd, attr, acc_attr, &off);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_attr_destroy(acc_attr);
    if (st != DD_OK) return st;
    for (int i = 0; i < ps->n_args; i++) {
        ps->exec[i].arg = ps->args[i].arg;
        ps->exec[i].memory = ps->args[i].inner ? ps->args[i].inner : ps->args[i].user;
    }
    ps->n_exec = ps->n_args;
    ps->arena_need = off;
    return dd_dnnl_arena_reserve(d, off);
}

dd_status dd_dnnl_pass_bind(dd_dnnl *d, dd_dnnl_kpass *ps, dnnl_primitive_desc_t pd,
                            dd_dnnl_pass pass, const dnnl_memory_desc_t *src,
                            const dnnl_memory_desc_t *w, const dnnl_memory_desc_t *b,
                            const dnnl_memory_desc_t *dst) {
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

static void add_into(float *restrict dst, const float *restrict src, size_t n, int nthreads) {
#pragma omp parallel for simd schedule(static) num_threads(nthreads) if (n >= 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* One call of a pass, as run under dd_threads_run. */
typedef struct pass_call {
    dd_dnnl *d;
    dd_dnnl_kpass *ps;
    void *const *ptr;
    int acc;
} pass_call;

static dd_status pass_run_scoped(void *arg) {
    const pass_call *c = arg;
    dd_dnnl *d = c->d;
    dd_dnnl_kpass *ps = c->ps;
    void *const *ptr = c->ptr;
    const int acc = c->acc;
    for (int i = 0; i < ps->n_args; i++) {
        dd_dnnl_arg *a = &ps->args[i];
        void *user = acc && a->output && !a->inner ? d->arena + a->acc_off : ptr[i];
        DD_DNNL_TRY(dnnl_memory_set_data_handle(a->user, user), "setting a data handle");
        if (!a->inner) continue;
        DD_DNNL_TRY(dnnl_memory_set_data_handle(a->inner, d->arena + a->inner_off),
                    "setting a data handle");
        if (!a->output) DD_TRY(prim_run(d, &a->reorder, a->reorder_args, a->reorder_nargs));
    }
    dnnl_exec_arg_t exec[DD_DNNL_MAX_ARGS + 1];
    memcpy(exec, ps->exec, sizeof(dnnl_exec_arg_t) * (size_t)ps->n_exec);
    DD_TRY(prim_run(d, &ps->main, exec, ps->n_exec));
    for (int i = 0; i < ps->n_args; i++) {
        dd_dnnl_arg *a = &ps->args[i];
        if (!a->output) continue;
        if (a->inner)
            DD_TRY(prim_run(d, acc ? &a->acc_reorder : &a->reorder, a->reorder_args,
                            a->reorder_nargs));
    }
    DD_DNNL_TRY(dnnl_stream_wait(d->stream), "waiting for the stream");
    for (int i = 0; i < ps->n_args; i++) {
        dd_dnnl_arg *a = &ps->args[i];
        if (acc && a->output && !a->inner)
            add_into(ptr[i], (const float *)(d->arena + a->acc_off), a->user_floats,
                     dd_threads_resolve(d->nthreads));
    }
    ps->ran = 1;
    return DD_OK;
}

dd_status dd_dnnl_pass_run(dd_dnnl *d, dd_dnnl_kpass *ps, void *const *ptr, int acc) {
    pass_call c = {d, ps, ptr, acc};
    return dd_threads_run(d->nthreads, pass_run_scoped, &c);
}

static dd_status pass_run_primitive_scoped(void *arg) {
    const pass_call *c = arg;
    dd_dnnl *d = c->d;
    dd_dnnl_kpass *ps = c->ps;
    if (!ps->ran)
        return dd_error_set(DD_ERR_INVALID, "oneDNN: primitive-only run before a full call");
    for (int i = 0; i < ps->n_args; i++) {
        dd_dnnl_arg *a = &ps->args[i];
        if (a->inner)
            DD_DNNL_TRY(dnnl_memory_set_data_handle(a->inner, d->arena + a->inner_off),
                        "setting a data handle");
    }
    dnnl_exec_arg_t exec[DD_DNNL_MAX_ARGS + 1];
    memcpy(exec, ps->exec, sizeof(dnnl_exec_arg_t) * (size_t)ps->n_exec);
    DD_TRY(prim_run(d, &ps->main, exec, ps->n_exec));
    DD_DNNL_TRY(dnnl_stream_wait(d->stream), "waiting for the stream");
    return DD_OK;
}

dd_status dd_dnnl_pass_run_primitive(dd_dnnl *d, dd_dnnl_kpass *ps) {
    pass_call c = {d, ps, NULL, 0};
    return dd_threads_run(d->nthreads, pass_run_primitive_scoped, &c);
}
