/* distill — layout exploration for the oneDNN convolution kernels: for each
 * zoo conv layer and pass, every candidate (activation, weight) layout pair
 * with its implementation and the time of a full call (plain buffers in and
 * out, reorders included). This is the measurement behind conv_candidates()
 * in core/src/compute/dnnl_conv.c; rerun it on a new machine (or with
 * ONEDNN_MAX_CPU_ISA=AVX2) before changing that order. */
#include "compute/dnnl_impl.h" // the kernels' internals: build a pass with one given layout

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

typedef struct bl_layer {
    const char *name;
    int64_t ic, hw, oc, k, s, p;
} bl_layer;

static const bl_layer bl_layers[] = {
    {"lenet.conv1", 1, 28, 6, 5, 1, 2},         {"lenet.conv2", 6, 14, 16, 5, 1, 0},
    {"alexcifarnet.conv1", 3, 32, 64, 5, 1, 2}, {"alexcifarnet.conv2", 64, 16, 64, 5, 1, 2},
    {"convnet.conv1", 3, 32, 128, 3, 1, 1},     {"convnet.conv2", 128, 16, 128, 3, 1, 1},
    {"convnet.conv3", 128, 8, 128, 3, 1, 1},
};

static const dd_dnnl_layout bl_cands[] = {
    {dnnl_nchw, dnnl_oihw},
    {dnnl_nhwc, dnnl_format_tag_any},
    {dnnl_format_tag_any, dnnl_format_tag_any},
    {dnnl_nChw8c, dnnl_format_tag_any},
    {dnnl_nhwc, dnnl_oihw},
};
static const char *const bl_names[] = {"nchw/oihw", "nhwc/any", "any/any", "nChw8c/any",
                                       "nhwc/oihw"};

typedef struct bl_run {
    dd_dnnl_conv *c;
    int pass;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
} bl_run;

static int bl_call(void *arg) {
    bl_run *r = arg;
    dd_status st = r->pass == 0   ? dd_dnnl_conv_forward(r->c, r->x, r->w, r->b, r->y)
                   : r->pass == 1 ? dd_dnnl_conv_backward_data(r->c, r->dy, r->w, r->dx)
                                  : dd_dnnl_conv_backward_weights(r->c, r->x, r->dy, r->dw, r->db);
    return st != DD_OK;
}

static float *bl_buf(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; p && i < n; i++)
        p[i] = (float)((i * 7919) % 1000) / 1000.f - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    long batches[16];
    int nb = bench_parse_list(argc > 1 ? argv[1] : "10,100", batches, 16);
    const char *only = argc > 2 ? argv[2] : NULL;
    if (nb <= 0) {
        fprintf(stderr, "usage: bench_layouts [BATCH,BATCH,...] [LAYER-SUBSTRING]\n");
        return 2;
    }
    dd_dnnl *d = NULL;
    if (dd_dnnl_create(&d) != DD_OK) return 1;
    printf("%-20s %5s %-4s %-11s %-22s %8s %10s %8s\n", "layer", "batch", "pass", "layout",
           "implementation", "reorders", "call ms", "GFLOP/s");
    for (int bi = 0; bi < nb; bi++)
        for (size_t li = 0; li < sizeof bl_layers / sizeof bl_layers[0]; li++) {
            const bl_layer *l = &bl_layers[li];
            if (only && !strstr(l->name, only)) continue;
            int64_t B = batches[bi], oh = (l->hw + 2 * l->p - l->k) / l->s + 1;
            dd_dnnl_conv_shape s = {B, l->ic, l->hw, l->hw, l->oc, l->k, l->s, l->p};
            double fl = 2.0 * B * l->oc * oh * oh * l->ic * l->k * l->k;
            size_t nx = (size_t)(B * l->ic * l->hw * l->hw),
                   nw = (size_t)(l->oc * l->ic * l->k * l->k);
            size_t ny = (size_t)(B * l->oc * oh * oh);
            bl_run r = {NULL,       0,          bl_buf(nx), bl_buf(nw), bl_buf((size_t)l->oc),
                        bl_buf(ny), bl_buf(ny), bl_buf(nx), bl_buf(nw), bl_buf((size_t)l->oc)};
            for (int p = 0; p < 3; p++)
                for (size_t ci = 0; ci < sizeof bl_cands / sizeof bl_cands[0]; ci++) {
                    dd_dnnl_conv *c = calloc(1, sizeof *c);
                    if (!c) return 1;
                    c->d = d, c->s = s, c->out_h = oh, c->out_w = oh;
                    c->zero_bias = dd_dnnl_zalloc(sizeof(float) * (size_t)l->oc);
                    if (dd_dnnl_conv_pass_init(c, (dd_dnnl_pass)p, &bl_cands[ci], 1) != DD_OK) {
                        printf("%-20s %5ld %-4s %-11s (cannot create: %s)\n", l->name, (long)B,
                               p == 0   ? "fwd"
                               : p == 1 ? "bwdd"
                                        : "bwdw",
                               bl_names[ci], dd_error_message());
                        dd_dnnl_conv_destroy(c);
                        continue;
                    }
                    c->db_off = c->pass[2].arena_need;
                    dd_dnnl_arena_reserve(d, c->db_off + sizeof(float) * (size_t)l->oc);
                    const char *impl = c->pass[p].impl;
                    int nre = 0;
                    for (int a = 0; a < c->pass[p].n_args; a++)
                        nre += c->pass[p].args[a].inner != NULL;
                    r.c = c, r.pass = p;
                    // ref: kernels are 100-10000x slower: report, do not time.
                    double t =
                        dd_dnnl_impl_is_ref(impl) ? -1 : bench_time(bl_call, &r, 5, 200, 0.3);
                    printf("%-20s %5ld %-4s %-11s %-22s %8d", l->name, (long)B,
                           p == 0   ? "fwd"
                           : p == 1 ? "bwdd"
                                    : "bwdw",
                           bl_names[ci], impl, nre);
                    if (t > 0)
                        printf(" %10.3f %8.1f\n", t * 1e3, fl / t * 1e-9);
                    else
                        printf(" %10s %8s\n", "-", "-");
                    fflush(stdout);
                    dd_dnnl_conv_destroy(c);
                }
            free(r.x), free(r.w), free(r.b), free(r.y), free(r.dy), free(r.dx), free(r.dw),
                free(r.db);
        }
    dd_dnnl_destroy(d);
    return 0;
}
