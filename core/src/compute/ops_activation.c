/* distill — pointwise activations (relu, tanh, sigmoid): forward, VJP, JVP,
 * tangent of VJP. Plain C for both backends.
 * Loops are branch-free over contiguous memory so they vectorise; work only
 * enters an OpenMP region when it is large (PAR_MIN elements). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "compute/ops.h"

#define PAR_MIN DD_OPS_PAR_MIN
#define n_out dd_layer_exec_out_n

/* ---- range runner -------------------------------------------------------- */

// Arguments of every elementwise kernel: up to five inputs, one output.
typedef struct pw_args {
    const float *a, *b, *c, *d, *f;
    float *out;
} pw_args;

typedef void (*pw_fn)(const pw_args *p, size_t lo, size_t hi);

// Runs f over [0, n): directly when n is small or one thread is allowed,
// else split into contiguous, 16-aligned chunks, one per thread.
static void pw_run(int nthreads, pw_fn f, const pw_args *p, size_t n) {
    if (n < PAR_MIN || nthreads <= 1) {
        f(p, 0, n);
        return;
    }
#pragma omp parallel num_threads(nthreads)
    {
        const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
        size_t lo = n * t / nt & ~(size_t)15, hi = t + 1 == nt ? n : n * (t + 1) / nt & ~(size_t)15;
        f(p, lo, hi);
    }
}

static void relu_fwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict x = p->a;
    float *restrict y = p->out;
    for (size_t i = lo; i < hi; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void tanh_fwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict x = p->a;
    float *restrict y = p->out;
    for (size_t i = lo; i < hi; i++)
        y[i] = tanhf(x[i]);
}

static void sigm_fwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict x = p->a;
    float *restrict y = p->out;
    for (size_t i = lo; i < hi; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

// out = g · f'(·): relu's mask from x, tanh and sigmoid through y.
static void relu_bwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict x = p->a, *restrict g = p->b;
    float *restrict dx = p->out;
    for (size_t i = lo; i < hi; i++)
        dx[i] = x[i] > 0.0f ? g[i] : 0.0f;
}

static void tanh_bwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict y = p->a, *restrict g = p->b;
    float *restrict dx = p->out;
    for (size_t i = lo; i < hi; i++)
        dx[i] = g[i] * (1.0f - y[i] * y[i]);
}

static void sigm_bwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict y = p->a, *restrict g = p->b;
    float *restrict dx = p->out;
    for (size_t i = lo; i < hi; i++)
        dx[i] = g[i] * (y[i] * (1.0f - y[i]));
}

// d/dε [dy (1 − y²)] = d̊y (1 − y²) − 2 dy y ẏ
static void tanh_tbwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict y = p->a, *restrict yd = p->b, *restrict dy = p->c, *restrict dyd = p->d;
    float *restrict dxd = p->out;
    for (size_t i = lo; i < hi; i++)
        dxd[i] = dyd[i] * (1.0f - y[i] * y[i]) - 2.0f * dy[i] * y[i] * yd[i];
}

// d/dε [dy y (1 − y)] = d̊y y (1 − y) + dy ẏ (1 − 2y)
static void sigm_tbwd(const pw_args *p, size_t lo, size_t hi) {
    const float *restrict y = p->a, *restrict yd = p->b, *restrict dy = p->c, *restrict dyd = p->d;
    float *restrict dxd = p->out;
    for (size_t i = lo; i < hi; i++)
        dxd[i] = dyd[i] * y[i] * (1.0f - y[i]) + dy[i] * yd[i] * (1.0f - 2.0f * y[i]);
}

void dd_act_forward(const dd_layer_exec *e, const float *x, float *y) {
    const pw_args p = {.a = x, .out = y};
    const dd_op_kind k = e->L->kind;
    const pw_fn f = k == DD_OP_RELU ? relu_fwd : k == DD_OP_TANH ? tanh_fwd : sigm_fwd;
    pw_run(e->nthreads, f, &p, n_out(e));
}

// g · f'(x): the shared body of the VJP, the JVP and relu's tangent VJP.
static void act_times_deriv(const dd_layer_exec *e, const float *x, const float *y, const float *g,
                            float *out) {
    const dd_op_kind k = e->L->kind;
    const pw_args p = {.a = k == DD_OP_RELU ? x : y, .b = g, .out = out};
    const pw_fn f = k == DD_OP_RELU ? relu_bwd : k == DD_OP_TANH ? tanh_bwd : sigm_bwd;
    pw_run(e->nthreads, f, &p, n_out(e));
}

void dd_act_backward(const dd_layer_exec *e, const float *x, const float *y, const float *dy,
                     float *dx) {
    act_times_deriv(e, x, y, dy, dx);
}

void dd_act_jvp(const dd_layer_exec *e, const float *x, const float *y, const float *xd,
                float *yd) {
    if (!xd) {
        memset(yd, 0, n_out(e) * sizeof *yd);
        return;
    }
    act_times_deriv(e, x, y, xd, yd);
}

void dd_act_tbwd(const dd_layer_exec *e, const float *x, const float *y, const float *xd,
                 const float *yd, const float *dy, const float *dyd, float *dxd) {
    (void)xd;
    const dd_op_kind k = e->L->kind;
    if (k == DD_OP_RELU || !yd) {
        // relu is piecewise linear: its second derivative vanishes a.e.
        act_times_deriv(e, x, y, dyd, dxd);
        return;
    }
    const pw_args p = {.a = y, .b = yd, .c = dy, .d = dyd, .out = dxd};
    pw_run(e->nthreads, k == DD_OP_TANH ? tanh_tbwd : sigm_tbwd, &p, n_out(e));
}
