/* distill — layer-level benchmark of the oneDNN kernels (core/src/compute/dnnl_ops.h):
 * per layer and pass, the time of a full call (plain buffers in and out,
 * reorders included), of the oneDNN primitive alone, and of plain NCHW
 * (gemm:jit) for comparison. Exits 1 if any `ref:` implementation runs. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "distill/status.h"
#include "compute/dnnl_ops.h"

typedef struct layer {
    const char *name;
    int is_conv;
    int64_t in_c, in_hw, out_c, kernel, stride, pad; // conv
    int64_t in, out;                                 // linear
} layer;

#define CONV(n, ic, hw, oc, k, s, p)                                                               \
    { n, 1, ic, hw, oc, k, s, p, 0, 0 }
#define FC(n, i, o)                                                                                \
    { n, 0, 0, 0, 0, 0, 0, 0, i, o }

static const layer lenet[] = {CONV("conv1 1->6 k5 28x28", 1, 28, 6, 5, 1, 2),
                              CONV("conv2 6->16 k5 14x14", 6, 14, 16, 5, 1, 0),
                              FC("fc1 400->120", 400, 120), FC("fc2 120->84", 120, 84),
                              FC("fc3 84->10", 84, 10)};
static const layer alexcifarnet[] = {CONV("conv1 3->64 k5 32x32", 3, 32, 64, 5, 1, 2),
                                     CONV("conv2 64->64 k5 16x16", 64, 16, 64, 5, 1, 2),
                                     FC("fc1 4096->384", 4096, 384), FC("fc2 384->192", 384, 192),
                                     FC("fc3 192->10", 192, 10)};
static const layer convnet[] = {CONV("conv1 3->128 k3 32x32", 3, 32, 128, 3, 1, 1),
                                CONV("conv2 128->128 k3 16x16", 128, 16, 128, 3, 1, 1),
                                CONV("conv3 128->128 k3 8x8", 128, 8, 128, 3, 1, 1),
                                FC("fc 2048->10", 2048, 10)};

typedef struct model_def {
    const char *name;
    const layer *layers;
    int n;
    const char *default_batches;
} model_def;

static const model_def models[] = {
    {"lenet", lenet, 5, "10,100,1024"},
    {"alexcifarnet", alexcifarnet, 5, "100"},
    {"convnet", convnet, 4, "10,100"},
};

static int64_t conv_out(const layer *l) {
    return (l->in_hw + 2 * l->pad - l->kernel) / l->stride + 1;
}

static double layer_flops(const layer *l, int64_t batch) {
    if (!l->is_conv) return 2.0 * (double)batch * (double)l->in * (double)l->out;
    int64_t o = conv_out(l);
    return 2.0 * (double)batch * (double)l->out_c * (double)(o * o) * (double)l->in_c *
           (double)(l->kernel * l->kernel);
}

/* One kernel with its buffers; run() dispatches one pass. */
typedef struct kern {
    const layer *l;
    dd_dnnl_conv *conv;
    dd_dnnl_linear *lin;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db;
    int pass;
    int primitive_only;
} kern;

static int run(void *arg) {
    kern *k = arg;
    dd_status st;
    if (k->primitive_only) {
        st = k->conv ? dd_dnnl_conv_run_primitive(k->conv, (dd_dnnl_pass)k->pass)
                     : dd_dnnl_linear_run_primitive(k->lin, (dd_dnnl_pass)k->pass);
    } else if (k->conv) {
        st = k->pass == DD_DNNL_FWD ? dd_dnnl_conv_forward(k->conv, k->x, k->w, k->b, k->y)
             : k->pass == DD_DNNL_BWD_DATA
                 ? dd_dnnl_conv_backward_data(k->conv, k->dy, k->w, k->dx)
                 : dd_dnnl_conv_backward_weights(k->conv, k->x, k->dy, k->dw, k->db);
    } else {
        st = k->pass == DD_DNNL_FWD ? dd_dnnl_linear_forward(k->lin, k->x, k->w, k->b, k->y)
             : k->pass == DD_DNNL_BWD_DATA
                 ? dd_dnnl_linear_backward_data(k->lin, k->dy, k->w, k->dx)
                 : dd_dnnl_linear_backward_weights(k->lin, k->x, k->dy, k->dw, k->db);
    }
    if (st != DD_OK) fprintf(stderr, "bench_layers: %s: %s\n", k->l->name, dd_error_message());
    return st != DD_OK;
}

static float *filled(size_t n, unsigned seed) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p) return NULL;
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

static void kern_free(kern *k) {
    dd_dnnl_conv_destroy(k->conv);
    dd_dnnl_linear_destroy(k->lin);
    free(k->x), free(k->w), free(k->b), free(k->y), free(k->dy), free(k->dx), free(k->dw),
        free(k->db);
    memset(k, 0, sizeof *k);
}

static int kern_init(kern *k, dd_dnnl *d, const layer *l, int64_t batch) {
    memset(k, 0, sizeof *k);
    k->l = l;
    size_t nx, nw, ny, nb;
    dd_status st;
    if (l->is_conv) {
        int64_t o = conv_out(l);
        dd_dnnl_conv_shape s = {batch,    l->in_c,   l->in_hw,  l->in_hw,
                                l->out_c, l->kernel, l->stride, l->pad};
        st = dd_dnnl_conv_create(d, &s, &k->conv);
        nx = (size_t)(batch * l->in_c * l->in_hw * l->in_hw);
        nw = (size_t)(l->out_c * l->in_c * l->kernel * l->kernel);
        ny = (size_t)(batch * l->out_c * o * o);
        nb = (size_t)l->out_c;
    } else {
        dd_dnnl_linear_shape s = {batch, l->in, l->out};
        st = dd_dnnl_linear_create(d, &s, &k->lin);
        nx = (size_t)(batch * l->in), nw = (size_t)(l->in * l->out), ny = (size_t)(batch * l->out);
        nb = (size_t)l->out;
    }
    if (st != DD_OK) {
        fprintf(stderr, "bench_layers: %s: %s\n", l->name, dd_error_message());
        return -1;
    }
    k->x = filled(nx, 1), k->w = filled(nw, 2), k->b = filled(nb, 3), k->dy = filled(ny, 4);
    k->y = filled(ny, 5), k->dx = filled(nx, 6), k->dw = filled(nw, 7), k->db = filled(nb, 8);
    if (!k->x || !k->w || !k->b || !k->dy || !k->y || !k->dx || !k->dw || !k->db) {
        fprintf(stderr, "bench_layers: out of memory\n");
        kern_free(k);
        return -1;
    }
    return 0;
}

static const char *impl_of(const kern *k, int pass) {
    return k->conv ? dd_dnnl_conv_impl(k->conv, (dd_dnnl_pass)pass)
                   : dd_dnnl_linear_impl(k->lin, (dd_dnnl_pass)pass);
}

static int run_all_passes(void *arg) {
    kern *k = arg;
    int rc = 0;
    for (int p = 0; p < 3 && !rc; p++) {
        k->pass = p;
        k->primitive_only = 0;
        rc = run(k);
    }
    return rc;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_layers [--model lenet|alexcifarnet|convnet|all] [--batch N,N,...]\n"
               "                    [--min-time SECONDS] [--reps N] [--no-plain]\n"
               "Times every conv/linear pass of a model's layers: the full call (plain\n"
               "buffers, reorders included), the oneDNN primitive alone, and plain NCHW.\n"
               "Default: lenet at batch 10,100,1024 and alexcifarnet at batch 100.\n"
               "Exits 1 if any oneDNN `ref:` implementation runs.\n");
}

int main(int argc, char **argv) {
    const char *model = NULL, *batch_list = NULL;
    double min_time = 0.3;
    int min_reps = 7, plain = 1;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"min-time", required_argument, 0, 't'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"no-plain", no_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:b:t:r:ph", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 'b':
            batch_list = optarg;
            break;
        case 't':
            min_time = atof(optarg);
            break;
        case 'r':
            min_reps = atoi(optarg);
            break;
        case 'p':
            plain = 0;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || min_reps < 1 || min_time < 0) {
        usage(stderr);
        return 2;
    }
    dd_dnnl *d = NULL, *dp = NULL;
    if (dd_dnnl_create(&d) != DD_OK || dd_dnnl_create_flags(&dp, DD_DNNL_PLAIN_LAYOUTS) != DD_OK) {
        fprintf(stderr, "bench_layers: %s\n", dd_error_message());
        return 1;
    }
    const char *threads = getenv("OMP_NUM_THREADS");
    printf("# bench_layers: OMP_NUM_THREADS=%s, median of >= %d reps and >= %.2f s per entry\n",
           threads ? threads : "(unset)", min_reps, min_time);
    printf("# call = dd_dnnl_* on plain NCHW/OIHW buffers (reorders included); onednn = the\n"
           "# primitive alone in its own layouts; plain = the same pass forced to NCHW/OIHW.\n");
    int total_ref = 0, failed = 0;
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        const model_def *md = &models[mi];
        if (model ? (strcmp(model, "all") != 0 && strcmp(model, md->name) != 0)
                  : strcmp(md->name, "convnet") == 0)
            continue;
        long batches[16];
        int nb = bench_parse_list(batch_list ? batch_list : md->default_batches, batches, 16);
        if (nb <= 0) {
            usage(stderr);
            return 2;
        }
        for (int bi = 0; bi < nb; bi++) {
            int64_t batch = batches[bi];
            printf("\n## %s, batch %lld\n", md->name, (long long)batch);
            printf("%-24s %-4s %-22s %10s %8s %10s %8s %10s %8s\n", "layer", "pass",
                   "implementation", "call ms", "GFLOP/s", "onednn ms", "GFLOP/s", "plain ms",
                   "GFLOP/s");
            double sum_call[2] = {0, 0}, sum_prim[2] = {0, 0}, sum_plain[2] = {0, 0},
                   flops[2] = {0, 0};
            for (int li = 0; li < md->n; li++) {
                const layer *l = &md->layers[li];
                kern k, kp;
                if (kern_init(&k, d, l, batch) != 0) {
                    failed = 1;
                    continue;
                }
                int have_plain = plain && l->is_conv && kern_init(&kp, dp, l, batch) == 0;
                char what[160];
                snprintf(what, sizeof what, "%s batch %lld %s", md->name, (long long)batch,
                         l->name);
                int n_exec = 0, n_ref = 0;
                if (bench_check_ref(what, run_all_passes, &k, &n_exec, &n_ref) != 0 ||
                    n_exec == 0) {
                    fprintf(stderr, "bench_layers: %s: verbose check failed\n", what);
                    failed = 1;
                }
                total_ref += n_ref;
                double fl = layer_flops(l, batch);
                for (int p = 0; p < 3; p++) {
                    k.pass = p;
                    k.primitive_only = 0;
                    double tc = bench_time(run, &k, min_reps, 1000, min_time);
                    k.primitive_only = 1;
                    double tp = bench_time(run, &k, min_reps, 1000, min_time);
                    double tq = -1;
                    if (have_plain) {
                        kp.pass = p;
                        kp.primitive_only = 0;
                        tq = bench_time(run, &kp, min_reps, 1000, min_time);
                    }
                    if (tc < 0 || tp < 0) failed = 1;
                    const char *impl = impl_of(&k, p);
                    if (strncmp(impl, "ref", 3) == 0) total_ref++;
                    printf("%-24s %-4s %-22s %10.3f %8.1f %10.3f %8.1f", l->name,
                           p == 0   ? "fwd"
                           : p == 1 ? "bwdd"
                                    : "bwdw",
                           impl, tc * 1e3, fl / tc * 1e-9, tp * 1e3, fl / tp * 1e-9);
                    if (tq > 0)
                        printf(" %10.3f %8.1f\n", tq * 1e3, fl / tq * 1e-9);
                    else
                        printf(" %10s %8s\n", "-", "-");
                    int ci = l->is_conv ? 0 : 1;
                    sum_call[ci] += tc;
                    sum_prim[ci] += tp;
                    sum_plain[ci] += tq > 0 ? tq : tc;
                    flops[ci] += fl;
                }
                kern_free(&k);
                if (have_plain) kern_free(&kp);
            }
            printf("%-24s %-4s %-22s %10.3f %8.1f %10.3f %8.1f %10.3f %8.1f\n",
                   "conv total (3 passes)", "", "", sum_call[0] * 1e3,
                   flops[0] / sum_call[0] * 1e-9, sum_prim[0] * 1e3, flops[0] / sum_prim[0] * 1e-9,
                   sum_plain[0] * 1e3, flops[0] / sum_plain[0] * 1e-9);
            printf("%-24s %-4s %-22s %10.3f %8.1f %10.3f %8.1f\n", "linear total (3 passes)", "",
                   "", sum_call[1] * 1e3, flops[1] / sum_call[1] * 1e-9, sum_prim[1] * 1e3,
                   flops[1] / sum_prim[1] * 1e-9);
            fflush(stdout);
        }
    }
    dd_dnnl_destroy(d);
    dd_dnnl_destroy(dp);
    if (total_ref > 0) {
        fprintf(stderr, "bench_layers: FAIL: %d oneDNN ref: implementation(s) ran\n", total_ref);
        return 1;
    }
    printf("\n# no oneDNN ref: implementation ran (checked with verbose output)\n");
    return failed;
}
