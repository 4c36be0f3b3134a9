/* distill — oneDNN inner-product kernels (forward, backward-data,
 * backward-weights), one set of primitives per shape, on the passes of
 * dnnl_pass.c. */
#include "compute/dnnl_impl.h"

#include <stdlib.h>

#include "compute/threads.h"

static dd_status linear_mds(const dd_dnnl_linear *l, dnnl_format_tag_t wei, dnnl_memory_desc_t *src,
                            dnnl_memory_desc_t *w, dnnl_memory_desc_t *b, dnnl_memory_desc_t *dst) {
    dnnl_dims_t sd = {l->s.batch, l->s.in_features};
    dnnl_dims_t wd = {l->s.out_features, l->s.in_features};
    dnnl_dims_t bd = {l->s.out_features};
    dnnl_dims_t dd = {l->s.batch, l->s.out_features};
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(src, 2, sd, dnnl_f32, dnnl_nc), "source descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(w, 2, wd, dnnl_f32, wei), "weights descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(b, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
    DD_DNNL_TRY(dnnl_memory_desc_init_by_tag(dst, 2, dd, dnnl_f32, dnnl_nc),
                "destination descriptor");
    return DD_OK;
}

static dd_status linear_pass_pd(const dd_dnnl_linear *l, dd_dnnl_pass pass, dnnl_format_tag_t wei,
                                dnnl_primitive_desc_t *out) {
    *out = NULL;
    dnnl_memory_desc_t src, w, b, dst;
    DD_TRY(linear_mds(l, wei, &src, &w, &b, &dst));
    dnnl_primitive_attr_t attr = dd_dnnl_scratchpad_attr();
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
    return ds == dnnl_success ? DD_OK : dd_dnnl_fail(ds, "inner product primitive");
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
        if (!dd_dnnl_impl_is_ref(impl)) break;
    }
    if (!pd) {
        dd_error_prefix("inner product %lldx%lld -> %lld", (long long)l->s.batch,
                        (long long)l->s.in_features, (long long)l->s.out_features);
        return DD_ERR_BACKEND;
    }
    dnnl_memory_desc_t src, w, b, dst;
    DD_TRY(linear_mds(l, dnnl_oi, &src, &w, &b, &dst));
    return dd_dnnl_pass_bind(l->d, &l->pass[pass], pd, pass, &src, &w, &b, &dst);
}

// As conv_passes_init.
static dd_status linear_passes_init(void *arg) {
    dd_dnnl_linear *l = arg;
    dd_status st = DD_OK;
    for (int p = 0; p < 3 && st == DD_OK; p++)
        st = linear_pass_init(l, (dd_dnnl_pass)p);
    if (st == DD_OK) {
        l->db_off = l->pass[DD_DNNL_BWD_WEIGHTS].arena_need;
        st = dd_dnnl_arena_reserve(l->d, l->db_off + sizeof(float) * (size_t)l->s.out_features);
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
    l->zero_bias = dd_dnnl_zalloc(sizeof(float) * (size_t)s->out_features);
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
        dd_dnnl_pass_fini(&l->pass[p]);
    free(l->zero_bias);
    free(l);
}

static dd_status linear_fwd(dd_dnnl_linear *l, const float *x, const float *w, const float *b,
                            float *y, int acc) {
    void *ptr[] = {(void *)x, (void *)w, (void *)(b ? b : l->zero_bias), y};
    return dd_dnnl_pass_run(l->d, &l->pass[DD_DNNL_FWD], ptr, acc);
}

static dd_status linear_bwd_data(dd_dnnl_linear *l, const float *dy, const float *w, float *dx,
                                 int acc) {
    void *ptr[] = {(void *)dy, (void *)w, dx};
    return dd_dnnl_pass_run(l->d, &l->pass[DD_DNNL_BWD_DATA], ptr, acc);
}

static dd_status linear_bwd_weights(dd_dnnl_linear *l, const float *x, const float *dy, float *dw,
                                    float *db, int acc) {
    void *ptr[] = {(void *)x, (void *)dy, dw, db ? (void *)db : (void *)(l->d->arena + l->db_off)};
    return dd_dnnl_pass_run(l->d, &l->pass[DD_DNNL_BWD_WEIGHTS], ptr, acc);
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
    return dd_dnnl_pass_run_primitive(l->d, &l->pass[pass]);
}

const char *dd_dnnl_linear_impl(const dd_dnnl_linear *l, dd_dnnl_pass pass) {
    if (!l || pass < DD_DNNL_FWD || pass > DD_DNNL_BWD_WEIGHTS) return "";
    return l->pass[pass].impl ? l->pass[pass].impl : "";
}
