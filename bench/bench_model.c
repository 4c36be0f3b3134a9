/* distill — model-level benchmark (issue #3 item 8): for LeNet and
 * AlexCifarNet through the public model API, the time of one forward+backward
 * (dd_model_loss_grad, gradient w.r.t. θ, as the engine's unrolled steps) and
 * of one Hessian-vector product (dd_model_hvp with H v, ∇_x⟨g, v⟩ and g, as
 * the engine's reverse pass), their ratio, and the achieved GFLOP/s of the
 * conv layers inside the model vs the same convolutions run by oneDNN alone.
 * Conv FLOPs and times inside the model come from oneDNN's verbose output of
 * real runs; the run fails (exit 1) if any `ref:` implementation executes. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.h>

#include "distill/host.h"
#include "bench_util.h"
#include "distill/distill.h"
#include "compute/dnnl_ops.h"

/* ---- oneDNN verbose capture ------------------------------------------------ */

#define MAX_CONVS 32

typedef struct conv_seen {
    dd_dnnl_conv_shape s;
    int pass;
    int count;
} conv_seen;

typedef struct vstats {
    int n_exec, n_ref;
    double conv_flops, conv_ms; // convolution primitives
    double reorder_ms;          // reorders (layout changes around the convs)
    double ip_flops, ip_ms;     // inner products
    double other_ms;            // anything else oneDNN ran
    conv_seen convs[MAX_CONVS];
    int n_convs;
} vstats;

static long desc_field(const char *desc, const char *key) {
    size_t k = strlen(key);
    for (const char *p = strstr(desc, key); p; p = strstr(p + 1, key)) {
        if (p[k] >= '0' && p[k] <= '9') return strtol(p + k, NULL, 10);
    }
    return -1;
}

static void parse_line(vstats *v, char *line, const char *what) {
    if (strncmp(line, "onednn_verbose,exec,", 20) != 0) return;
    char *field[16];
    int n = 0;
    for (char *p = line; n < 16;) {
        field[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = '\0';
        p = c + 1;
    }
    if (n < 6) return;
    v->n_exec++;
    const char *prim = field[3], *impl = field[4], *prop = field[5];
    const char *desc = field[n - 2];
    double ms = strtod(field[n - 1], NULL);
    if (strncmp(impl, "ref", 3) == 0) {
        v->n_ref++;
        fprintf(stderr, "%s: ref implementation: %s %s %s %s\n", what, prim, impl, prop, desc);
    }
    if (strcmp(prim, "convolution") == 0) {
        long mb = desc_field(desc, "mb"), ic = desc_field(desc, "ic"), oc = desc_field(desc, "oc");
        long ih = desc_field(desc, "ih"), iw = desc_field(desc, "iw"), oh = desc_field(desc, "oh");
        long ow = desc_field(desc, "ow"), kh = desc_field(desc, "kh"), kw = desc_field(desc, "kw");
        long sh = desc_field(desc, "sh"), ph = desc_field(desc, "ph");
        v->conv_flops += 2.0 * mb * oc * oh * ow * ic * kh * kw;
        v->conv_ms += ms;
        int pass = strstr(prop, "backward_data")      ? DD_DNNL_BWD_DATA
                   : strstr(prop, "backward_weights") ? DD_DNNL_BWD_WEIGHTS
                                                      : DD_DNNL_FWD;
        dd_dnnl_conv_shape s = {mb, ic, ih, iw, oc, kh, sh < 1 ? 1 : sh, ph < 0 ? 0 : ph};
        int i;
        for (i = 0; i < v->n_convs; i++)
            if (v->convs[i].pass == pass && memcmp(&v->convs[i].s, &s, sizeof s) == 0) break;
        if (i == v->n_convs && i < MAX_CONVS) v->convs[v->n_convs++] = (conv_seen){s, pass, 0};
        if (i < MAX_CONVS) v->convs[i].count++;
    } else if (strcmp(prim, "reorder") == 0) {
        v->reorder_ms += ms;
    } else if (strcmp(prim, "inner_product") == 0) {
        long mb = desc_field(desc, "mb"), ic = desc_field(desc, "ic"), oc = desc_field(desc, "oc");
        v->ip_flops += 2.0 * mb * ic * oc;
        v->ip_ms += ms;
    } else {
        v->other_ms += ms;
    }
}

/* Runs fn(arg) once with verbose output captured and parsed into *v. */
static int capture(const char *what, int (*fn)(void *), void *arg, vstats *v) {
    memset(v, 0, sizeof *v);
    FILE *tmp = tmpfile();
    if (!tmp) return -1;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
        if (saved >= 0) close(saved);
        fclose(tmp);
        return -1;
    }
    dnnl_set_verbose(1);
    int rc = fn(arg);
    fflush(stdout);
    dnnl_set_verbose(0);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(tmp);
    char line[8192];
    while (fgets(line, sizeof line, tmp))
        parse_line(v, line, what);
    fclose(tmp);
    return rc;
}

/* Captures `reps` runs and keeps the one with the median conv + reorder
 * time (single runs are at the mercy of the scheduler); ref counts add up. */
static int capture_median(const char *what, int (*fn)(void *), void *arg, int reps, vstats *out) {
    enum { R = 9 };
    static vstats v[R];
    double key[R], sorted[R];
    if (reps > R) reps = R;
    int n_ref = 0;
    for (int i = 0; i < reps; i++) {
        if (capture(what, fn, arg, &v[i]) != 0) return -1;
        n_ref += v[i].n_ref;
        key[i] = sorted[i] = v[i].conv_ms + v[i].reorder_ms;
    }
    double med = bench_median(sorted, (size_t)reps);
    int pick = 0;
    for (int i = 0; i < reps; i++)
        if (key[i] >= med) {
            pick = i;
            break;
        }
    *out = v[pick];
    out->n_ref = n_ref;
    return 0;
}

/* ---- the model runs ---------------------------------------------------------- */

typedef struct run_ctx {
    dd_model *m;
    int64_t batch;
    float *theta, *x, *v, *grad, *hv, *mixed_x;
    int32_t *labels;
} run_ctx;

static int run_fwd_bwd(void *arg) {
    run_ctx *c = arg;
    double loss;
    dd_labels y = {c->labels, NULL};
    dd_status s = dd_model_loss_grad(c->m, c->theta, c->x, c->batch, y, &loss, c->grad, NULL, NULL);
    if (s != DD_OK) fprintf(stderr, "bench_model: loss_grad: %s\n", dd_error_message());
    return s != DD_OK;
}

static int run_hvp(void *arg) {
    run_ctx *c = arg;
    double loss;
    dd_labels y = {c->labels, NULL};
    dd_status s = dd_model_hvp(c->m, c->theta, c->x, c->batch, y, c->v, c->hv, c->mixed_x, NULL,
                               c->grad, &loss);
    if (s != DD_OK) fprintf(stderr, "bench_model: hvp: %s\n", dd_error_message());
    return s != DD_OK;
}

/* oneDNN alone: the convolutions the model ran, each in a tight loop through
 * its primitive only (no reorders, no framework), times its count. */
typedef struct alone_ctx {
    dd_dnnl_conv *c;
    int pass;
} alone_ctx;

static int run_alone(void *arg) {
    alone_ctx *a = arg;
    return dd_dnnl_conv_run_primitive(a->c, (dd_dnnl_pass)a->pass) != DD_OK;
}

static double conv_alone_seconds(const vstats *v, int min_reps, double min_time, double *flops) {
    dd_dnnl *d = NULL;
    if (dd_dnnl_create(&d) != DD_OK) return -1;
    double total = 0;
    *flops = 0;
    for (int i = 0; i < v->n_convs && total >= 0; i++) {
        const dd_dnnl_conv_shape *s = &v->convs[i].s;
        dd_dnnl_conv *c = NULL;
        if (dd_dnnl_conv_create(d, s, &c) != DD_OK) {
            total = -1;
            break;
        }
        int64_t oh = (s->in_h + 2 * s->pad - s->kernel) / s->stride + 1;
        int64_t ow = (s->in_w + 2 * s->pad - s->kernel) / s->stride + 1;
        size_t nx = (size_t)(s->batch * s->in_c * s->in_h * s->in_w);
        size_t nw = (size_t)(s->out_c * s->in_c * s->kernel * s->kernel);
        size_t ny = (size_t)(s->batch * s->out_c * oh * ow);
        float *x = calloc(nx, 4), *w = calloc(nw, 4), *y = calloc(ny, 4),
              *b = calloc((size_t)s->out_c, 4);
        dd_status st = DD_ERR_NOMEM;
        if (x && w && y && b) {
            int p = v->convs[i].pass;
            st = p == DD_DNNL_FWD        ? dd_dnnl_conv_forward(c, x, w, b, y)
                 : p == DD_DNNL_BWD_DATA ? dd_dnnl_conv_backward_data(c, y, w, x)
                                         : dd_dnnl_conv_backward_weights(c, x, y, w, b);
        }
        if (st == DD_OK) {
            alone_ctx a = {c, v->convs[i].pass};
            double t = bench_time(run_alone, &a, min_reps, 1000, min_time);
            total = t < 0 ? -1 : total + t * v->convs[i].count;
            *flops += 2.0 *
                      (double)(s->batch * s->out_c * oh * ow * s->in_c * s->kernel * s->kernel) *
                      v->convs[i].count;
        } else {
            total = -1;
        }
        free(x), free(w), free(y), free(b);
        dd_dnnl_conv_destroy(c);
    }
    dd_dnnl_destroy(d);
    return total;
}

static void fill_normal(float *p, size_t n, uint64_t seed, float scale) {
    dd_rng r = dd_rng_make(seed, 0);
    dd_rng_normal(&r, p, n, 0.0f, scale);
}

typedef struct model_spec {
    const char *name;
    int c, h, w;
    const char *default_batches;
} model_spec;

static const model_spec specs[] = {
    {"lenet", 1, 28, 28, "10,100,1024"},
    {"alexcifarnet", 3, 32, 32, "100"},
    {"convnet", 3, 32, 32, "10,100"},
    {"alexnet", 3, 224, 224, "10"},
};

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: bench_model [--model NAME[,NAME...]] [--batch N,N,...] [--min-time S] [--reps N]\n"
        "                   [--backend onednn|reference]\n"
        "Default: lenet at batch 10,100,1024 and alexcifarnet at batch 100 (onednn).\n"
        "Models: lenet alexcifarnet convnet alexnet (plugins found through the registry,\n"
        "DISTILL_PLUGIN_PATH or the build tree). Exits 1 if any oneDNN ref: kernel runs.\n");
}

int main(int argc, char **argv) {
    const char *model_list = "lenet,alexcifarnet", *batch_list = NULL;
    double min_time = 1.0;
    int min_reps = 11;
    dd_backend backend = DD_BACKEND_ONEDNN;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"batch", required_argument, 0, 'b'},
                                         {"min-time", required_argument, 0, 't'},
                                         {"reps", required_argument, 0, 'r'},
                                         {"backend", required_argument, 0, 'k'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:b:t:r:k:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            model_list = optarg;
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
        case 'k':
            if (strcmp(optarg, "onednn") == 0)
                backend = DD_BACKEND_ONEDNN;
            else if (strcmp(optarg, "reference") == 0)
                backend = DD_BACKEND_REFERENCE;
            else {
                usage(stderr);
                return 2;
            }
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
    dd_registry *reg = NULL;
    if (dd_registry_load(1, &reg) != DD_OK) {
        fprintf(stderr, "bench_model: %s\n", dd_error_message());
        return 1;
    }
    const char *threads = getenv("OMP_NUM_THREADS");
    printf("# bench_model: backend %s, OMP_NUM_THREADS=%s, medians of >= %d reps and >= %.1f s\n",
           backend == DD_BACKEND_ONEDNN ? "onednn" : "reference", threads ? threads : "(unset)",
           min_reps, min_time);
    printf("# f+b = dd_model_loss_grad (∇θ); HVP = dd_model_hvp (Hv, ∇x<g,v>, g).\n"
           "# conv GF/s in model = conv FLOPs / (conv primitives + reorders) time inside one f+b,\n"
           "# from oneDNN verbose (median of 5 captured runs); alone = the same convolutions,\n"
           "# primitive only, in a tight loop. Right block: the same for one HVP.\n");
    printf("%-13s %6s %9s %9s %8s | %10s %8s %6s %8s %8s | %9s %8s %8s\n", "model", "batch",
           "f+b ms", "HVP ms", "HVP/f+b", "conv GFLOP", "conv ms", "conv%", "GF/s in", "alone",
           "HVP GFLOP", "conv ms", "GF/s in");
    int total_ref = 0, failed = 0;
    char names[256];
    snprintf(names, sizeof names, "%s", model_list);
    for (char *save = NULL, *name = strtok_r(names, ",", &save); name;
         name = strtok_r(NULL, ",", &save)) {
        const model_spec *sp = NULL;
        for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
            if (strcmp(specs[i].name, name) == 0) sp = &specs[i];
        if (!sp) {
            fprintf(stderr, "bench_model: unknown model '%s'\n", name);
            usage(stderr);
            return 2;
        }
        const dd_component *comp = NULL;
        if (dd_registry_find(reg, DD_COMPONENT_MODEL, name, &comp) != DD_OK) {
            fprintf(stderr, "bench_model: %s\n", dd_error_message());
            failed = 1;
            continue;
        }
        long batches[16];
        int nb = bench_parse_list(batch_list ? batch_list : sp->default_batches, batches, 16);
        if (nb <= 0) {
            usage(stderr);
            return 2;
        }
        for (int bi = 0; bi < nb; bi++) {
            int64_t B = batches[bi];
            dd_model_config cfg = {sizeof cfg, comp, NULL, sp->c, sp->h, sp->w, 10, backend};
            run_ctx c = {0};
            c.batch = B;
            if (dd_model_create(&cfg, &c.m) != DD_OK) {
                fprintf(stderr, "bench_model: %s: %s\n", name, dd_error_message());
                failed = 1;
                continue;
            }
            size_t P = dd_model_param_count(c.m), X = (size_t)B * dd_model_input_size(c.m);
            c.theta = malloc(P * 4), c.v = malloc(P * 4), c.grad = malloc(P * 4),
            c.hv = malloc(P * 4);
            c.x = malloc(X * 4), c.mixed_x = malloc(X * 4), c.labels = malloc((size_t)B * 4);
            if (!c.theta || !c.v || !c.grad || !c.hv || !c.x || !c.mixed_x || !c.labels ||
                dd_model_init_params(c.m, c.theta, "xavier", 1.0f, 1) != DD_OK) {
                fprintf(stderr, "bench_model: %s: setup failed: %s\n", name, dd_error_message());
                failed = 1;
            } else {
                fill_normal(c.x, X, 2, 1.0f);
                fill_normal(c.v, P, 3, 0.01f);
                for (int64_t i = 0; i < B; i++)
                    c.labels[i] = (int32_t)(i % 10);
                // Interleave the two measurements so load changes hit both alike.
                enum { CAP = 200 };
                double tf[CAP], th[CAP];
                int n = 0;
                int rc = run_fwd_bwd(&c) || run_hvp(&c); // warm-up: workspaces, JIT
                double start = bench_now();
                while (!rc && n < CAP && (n < min_reps || bench_now() - start < min_time)) {
                    double a = bench_now();
                    rc |= run_fwd_bwd(&c);
                    double b = bench_now();
                    rc |= run_hvp(&c);
                    double e = bench_now();
                    tf[n] = b - a;
                    th[n] = e - b;
                    n++;
                }
                char what[96];
                snprintf(what, sizeof what, "%s batch %lld", name, (long long)B);
                vstats vf, vh;
                rc |= capture_median(what, run_fwd_bwd, &c, 5, &vf) != 0;
                rc |= capture_median(what, run_hvp, &c, 5, &vh) != 0;
                total_ref += vf.n_ref + vh.n_ref;
                if (rc) {
                    failed = 1;
                } else {
                    double mf = bench_median(tf, (size_t)n), mh = bench_median(th, (size_t)n);
                    double in_ms = vf.conv_ms + vf.reorder_ms;
                    double alone_flops = 0, alone = -1;
                    if (backend == DD_BACKEND_ONEDNN)
                        alone = conv_alone_seconds(&vf, 5, min_time / 10, &alone_flops);
                    double hin = vh.conv_ms + vh.reorder_ms;
                    printf(
                        "%-13s %6lld %9.3f %9.3f %8.2f | %10.3f %8.3f %5.0f%% %8.1f %8.1f | %9.3f "
                        "%8.3f %8.1f\n",
                        name, (long long)B, mf * 1e3, mh * 1e3, mh / mf, vf.conv_flops * 1e-9,
                        in_ms, 100.0 * in_ms / (mf * 1e3),
                        in_ms > 0 ? vf.conv_flops / in_ms * 1e-6 : 0.0,
                        alone > 0 ? alone_flops / alone * 1e-9 : 0.0, vh.conv_flops * 1e-9, hin,
                        hin > 0 ? vh.conv_flops / hin * 1e-6 : 0.0);
                    fflush(stdout);
                }
            }
            free(c.theta), free(c.v), free(c.grad), free(c.hv), free(c.x), free(c.mixed_x),
                free(c.labels);
            dd_model_destroy(c.m);
        }
    }
    dd_registry_destroy(reg);
    if (total_ref > 0) {
        fprintf(stderr, "bench_model: FAIL: %d oneDNN ref: implementation(s) ran\n", total_ref);
        return 1;
    }
    if (backend == DD_BACKEND_ONEDNN)
        printf(
            "# no oneDNN ref: implementation ran (verbose check of one f+b and one HVP per row)\n");
    return failed;
}
