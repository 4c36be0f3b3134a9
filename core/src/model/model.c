/* distill — the differentiable network runtime: builds a plugin's graph,
 * keeps per-batch-size workspaces, and runs forward, backward and the
 * forward-over-reverse pass (H·v, ∇_x⟨g,v⟩, ∇_y⟨g,v⟩) without allocating. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/heap.h"
#include "distill/log.h"
#include "distill/tensor.h"
#include "compute/dnnl_ops.h"
#include "compute/threads.h"
#include "model/model_impl.h"

#define WS_CACHE 4

/* Buffers for one batch size. act[l] is the input of layer l (act[0] is the
 * caller's x, set per call), act[n] the logits. Flatten aliases its input. */
typedef struct workspace {
    int64_t batch; /* 0 = unused slot */
    uint64_t last_use;
    dd_layer_exec *exec;
    float **act, **aux;
    float *g[2];  /* ping-pong cotangents */
    float *probs; /* softmax of the logits */
    int has_tangent;
    float **tan, **auxd; /* tangents of act (tan[l] NULL = zero) */
    float *gd[2];
} workspace;

struct dd_model {
    dd_graph *g;
    dd_backend backend;
    struct dd_dnnl *dnnl;
    int n_out;
    size_t in_size, max_act;
    int first_param; /* index of the first layer with parameters (n if none) */
    int nthreads;    /* threads of the passes (0: the caller's OpenMP default) */
    uint64_t tick;
    // tick of the last successful dd_model_forward (0 = none); any later
    // pass bumps tick, so dd_model_backward can tell whether the stored
    // activations are still the ones that forward left.
    uint64_t fwd_tick;
    workspace ws[WS_CACHE];
    char *summary;
};

/* ---- workspaces --------------------------------------------------------- */

static void ws_free(dd_model *m, workspace *w) {
    const int n = m->g->n_layers;
    if (w->exec)
        for (int l = 0; l < n; l++)
            dd_layer_exec_fini(&w->exec[l]);
    for (int l = 0; l < n; l++) {
        const dd_layer *L = &m->g->layers[l];
        if (w->act && L->kind != DD_OP_FLATTEN) dd_free(w->act[l + 1]);
        if (w->aux) dd_free(w->aux[l]);
        if (w->tan && L->kind != DD_OP_FLATTEN) dd_free(w->tan[l + 1]);
        if (w->auxd) dd_free(w->auxd[l]);
    }
    free(w->exec);
    free(w->act);
    free(w->aux);
    free(w->tan);
    free(w->auxd);
    for (int i = 0; i < 2; i++) {
        dd_free(w->g[i]);
        dd_free(w->gd[i]);
    }
    dd_free(w->probs);
    memset(w, 0, sizeof *w);
}

static dd_status ws_alloc_tangent(dd_model *m, workspace *w) {
    const int n = m->g->n_layers;
    const size_t B = (size_t)w->batch;
    w->tan = calloc((size_t)n + 1, sizeof *w->tan);
    w->auxd = calloc((size_t)n, sizeof *w->auxd);
    if (!w->tan || !w->auxd) return dd_error_set(DD_ERR_NOMEM, "model: out of memory");
    for (int l = 0; l < n; l++) {
        const dd_layer *L = &m->g->layers[l];
        if (L->kind != DD_OP_FLATTEN) {
            w->tan[l + 1] = dd_alloc_floats(B * dd_layer_out_size(L));
            if (!w->tan[l + 1]) return DD_ERR_NOMEM;
        }
        size_t na = dd_layer_auxd_floats(L, w->batch);
        if (na && !(w->auxd[l] = dd_alloc_floats(na))) return DD_ERR_NOMEM;
    }
    for (int i = 0; i < 2; i++)
        if (!(w->gd[i] = dd_alloc_floats(B * m->max_act))) return DD_ERR_NOMEM;
    w->has_tangent = 1;
    return DD_OK;
}

static dd_status ws_init(dd_model *m, workspace *w, int64_t batch, int nthreads) {
    const int n = m->g->n_layers;
    const size_t B = (size_t)batch;
    memset(w, 0, sizeof *w);
    w->batch = batch;
    w->exec = calloc((size_t)n, sizeof *w->exec);
    w->act = calloc((size_t)n + 1, sizeof *w->act);
    w->aux = calloc((size_t)n, sizeof *w->aux);
    if (!w->exec || !w->act || !w->aux) return dd_error_set(DD_ERR_NOMEM, "model: out of memory");
    for (int l = 0; l < n; l++) {
        const dd_layer *L = &m->g->layers[l];
        DD_TRY(dd_layer_exec_init(&w->exec[l], L, batch, m->backend, m->dnnl, nthreads));
        if (L->kind != DD_OP_FLATTEN &&
            !(w->act[l + 1] = dd_alloc_floats(B * dd_layer_out_size(L))))
            return DD_ERR_NOMEM;
        size_t na = dd_layer_aux_floats(L, batch);
        if (na && !(w->aux[l] = dd_alloc_floats(na))) return DD_ERR_NOMEM;
    }
    for (int i = 0; i < 2; i++)
        if (!(w->g[i] = dd_alloc_floats(B * m->max_act))) return DD_ERR_NOMEM;
    if (!(w->probs = dd_alloc_floats(B * (size_t)m->n_out))) return DD_ERR_NOMEM;
    return DD_OK;
}

// The pass about to run uses the model's thread count: oneDNN's calls (and
// primitives created now) through the engine, the ops' own loops through
// the count a workspace's layers are built with. Returns that count.
static int pass_threads(dd_model *m) {
    if (m->dnnl) dd_dnnl_set_threads(m->dnnl, m->nthreads);
    return dd_threads_resolve(m->nthreads);
}

// Finds (or builds, evicting the least recently used) the workspace for a
// batch size. Allocation happens only the first time a batch size is seen.
static dd_status ws_get(dd_model *m, int64_t batch, int tangent, workspace **out) {
    if (batch <= 0)
        return dd_error_set(DD_ERR_INVALID, "model: batch size %lld must be > 0", (long long)batch);
    const int nthreads = pass_threads(m);
    workspace *w = NULL, *victim = &m->ws[0];
    for (int i = 0; i < WS_CACHE; i++) {
        if (m->ws[i].batch == batch) {
            w = &m->ws[i];
            break;
        }
        if (m->ws[i].batch == 0 || (victim->batch != 0 && m->ws[i].last_use < victim->last_use))
            victim = &m->ws[i];
    }
    if (!w) {
        if (victim->batch) ws_free(m, victim);
        dd_status s = ws_init(m, victim, batch, nthreads);
        if (s != DD_OK) {
            ws_free(m, victim);
            dd_error_prefix("model: workspace for batch %lld", (long long)batch);
            return s;
        }
        w = victim;
    }
    if (tangent && !w->has_tangent) {
        dd_status s = ws_alloc_tangent(m, w);
        if (s != DD_OK) {
            ws_free(m, w);
            dd_error_prefix("model: tangent workspace for batch %lld", (long long)batch);
            return s;
        }
    }
    w->last_use = ++m->tick;
    *out = w;
    return DD_OK;
}

/* ---- creation ----------------------------------------------------------- */

static dd_status make_summary(dd_model *m) {
    const dd_graph *g = m->g;
    size_t cap = 256 + (size_t)g->n_layers * 160, len = 0;
    char *s = malloc(cap);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "model: out of memory");
    len += (size_t)snprintf(s + len, cap - len, "input %d×%d×%d\n", g->in_c, g->in_h, g->in_w);
    for (int l = 0; l < g->n_layers; l++) {
        const dd_layer *L = &g->layers[l];
        char extra[64] = "";
        switch (L->kind) {
        case DD_OP_CONV:
            snprintf(extra, sizeof extra, " %d→%d k%d s%d p%d", L->in_c, L->out_c, L->kernel,
                     L->stride, L->pad);
            break;
        case DD_OP_LINEAR:
            snprintf(extra, sizeof extra, " %zu→%d", dd_layer_in_size(L), L->out_c);
            break;
        case DD_OP_MAXPOOL:
        case DD_OP_AVGPOOL:
            snprintf(extra, sizeof extra, " k%d s%d p%d", L->kernel, L->stride, L->pad);
            break;
        case DD_OP_LRN:
            snprintf(extra, sizeof extra, " size %d alpha %g beta %g k %g", L->size, L->alpha,
                     L->beta, L->k);
            break;
        case DD_OP_INSTNORM:
            snprintf(extra, sizeof extra, " eps %g", L->eps);
            break;
        default:
            break;
        }
        len += (size_t)snprintf(s + len, cap - len, "%2d %s%s → %d×%d×%d (%zu params)\n", l,
                                dd_op_name(L->kind), extra, L->out_c, L->out_h, L->out_w,
                                L->n_weight + L->n_bias);
        if (len >= cap) len = cap - 1;
    }
    snprintf(s + len, cap - len, "loss %s, %zu parameters, backend %s\n",
             g->loss == DD_LOSS_MSE ? "mse" : "cross-entropy", g->n_params,
             m->backend == DD_BACKEND_ONEDNN ? "onednn" : "reference");
    m->summary = s;
    return DD_OK;
}

dd_status dd_model_create_from_graph(dd_graph *g, dd_backend backend, dd_model **out) {
    *out = NULL;
    if (!g) return dd_error_set(DD_ERR_INVALID, "model: NULL graph");
    if (g->error != DD_OK) {
        dd_graph_destroy(g);
        return dd_error_set(DD_ERR_INVALID, "model: the graph has a failed layer");
    }
    if (g->n_layers == 0) {
        dd_graph_destroy(g);
        return dd_error_set(DD_ERR_INVALID, "model: the graph has no layers");
    }
    if (backend != DD_BACKEND_ONEDNN && backend != DD_BACKEND_REFERENCE) {
        dd_graph_destroy(g);
        return dd_error_set(DD_ERR_INVALID, "model: unknown backend %d", (int)backend);
    }
    dd_model *m = calloc(1, sizeof *m);
    if (!m) {
        dd_graph_destroy(g);
        return dd_error_set(DD_ERR_NOMEM, "model: out of memory");
    }
    m->g = g;
    m->in_size = (size_t)g->in_c * g->in_h * g->in_w;
    m->n_out = g->cur_c * g->cur_h * g->cur_w;
    m->first_param = g->n_layers;
    m->max_act = m->in_size;
    for (int l = 0; l < g->n_layers; l++) {
        const dd_layer *L = &g->layers[l];
        if (L->n_weight + L->n_bias > 0 && m->first_param == g->n_layers) m->first_param = l;
        if (dd_layer_out_size(L) > m->max_act) m->max_act = dd_layer_out_size(L);
    }
    m->backend = backend;
    dd_status s = DD_OK;
    if (backend == DD_BACKEND_ONEDNN) s = dd_dnnl_create(&m->dnnl);
    if (s == DD_OK) s = make_summary(m);
    if (s != DD_OK) {
        dd_model_destroy(m);
        return s;
    }
    *out = m;
    return DD_OK;
}

// Length of a leading "file:line:col" in msg (followed by ": "), else 0.
static size_t location_len(const char *msg) {
    const char *end = strstr(msg, ": ");
    if (!end) return 0;
    const char *c = end;
    for (int field = 0; field < 2; field++) {
        const char *digits_end = c;
        while (c > msg && c[-1] >= '0' && c[-1] <= '9')
            c--;
        if (c == digits_end || c == msg || c[-1] != ':') return 0;
        c--;
    }
    return c > msg ? (size_t)(end - msg) : 0;
}

// Builds cfg's graph (the layer list and θ's layout, no buffers) and checks
// its output size. Caller owns *out.
static dd_status build_graph(const dd_model_config *cfg, dd_graph **out) {
    *out = NULL;
    if (!cfg || cfg->struct_size < offsetof(dd_model_config, backend) + sizeof cfg->backend)
        return dd_error_set(DD_ERR_INVALID, "model: config is NULL or too old (struct_size)");
    const dd_component *c = cfg->plugin;
    if (!c || c->kind != DD_COMPONENT_MODEL || !c->ops)
        return dd_error_set(DD_ERR_INVALID, "model: config.plugin is not a model component");
    const dd_model_ops *ops = c->ops;
    if (ops->struct_size < offsetof(dd_model_ops, build) + sizeof ops->build || !ops->build)
        return dd_error_set(DD_ERR_PLUGIN, "model '%s': no build function", c->name);
    if (cfg->n_outputs <= 0)
        return dd_error_set(DD_ERR_INVALID, "model '%s': n_outputs %d must be > 0", c->name,
                            cfg->n_outputs);
    dd_graph *g;
    DD_TRY(dd_graph_create(cfg->channels, cfg->height, cfg->width, &g));
    dd_status s =
        ops->build(g, cfg->options, cfg->channels, cfg->height, cfg->width, cfg->n_outputs);
    if (s == DD_OK && g->error != DD_OK) s = dd_error_set(g->error, "a layer failed to build");
    if (s != DD_OK) {
        dd_graph_destroy(g);
        // a plugin that names the pipeline position keeps it first
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", dd_error_message());
        size_t loc = location_len(msg);
        if (loc)
            dd_error_set(s, "%.*s: model '%s' (input %d×%d×%d): %s", (int)loc, msg, c->name,
                         cfg->channels, cfg->height, cfg->width, msg + loc + 2);
        else
            dd_error_prefix("model '%s' (input %d×%d×%d)", c->name, cfg->channels, cfg->height,
                            cfg->width);
        return s;
    }
    int oc, oh, ow;
    dd_graph_shape(g, &oc, &oh, &ow);
    if (oc * oh * ow != cfg->n_outputs) {
        dd_graph_destroy(g);
        return dd_error_set(DD_ERR_PLUGIN, "model '%s': built graph has %d outputs, expected %d",
                            c->name, oc * oh * ow, cfg->n_outputs);
    }
    *out = g;
    return DD_OK;
}

dd_status dd_model_check(const dd_model_config *cfg, size_t *n_params) {
    dd_graph *g = NULL;
    DD_TRY(build_graph(cfg, &g));
    if (n_params) *n_params = g->n_params;
    dd_graph_destroy(g);
    return DD_OK;
}

dd_status dd_model_create(const dd_model_config *cfg, dd_model **out) {
    *out = NULL;
    dd_graph *g = NULL;
    DD_TRY(build_graph(cfg, &g));
    dd_status s = dd_model_create_from_graph(g, cfg->backend, out);
    if (s != DD_OK) dd_error_prefix("model '%s'", cfg->plugin->name);
    return s;
}

dd_status dd_model_clone(const dd_model *m, dd_model **out) {
    *out = NULL;
    const dd_graph *src = m->g;
    dd_graph *g = calloc(1, sizeof *g);
    if (!g) return dd_error_set(DD_ERR_NOMEM, "model: out of memory");
    *g = *src;
    g->layers = malloc((size_t)(src->cap > 0 ? src->cap : 1) * sizeof *g->layers);
    if (!g->layers) {
        free(g);
        return dd_error_set(DD_ERR_NOMEM, "model: out of memory");
    }
    memcpy(g->layers, src->layers, (size_t)src->n_layers * sizeof *g->layers);
    DD_TRY(dd_model_create_from_graph(g, m->backend, out));
    (*out)->nthreads = m->nthreads;
    return DD_OK;
}

size_t dd_model_workspace_bytes(const dd_model *m, int64_t batch) {
    const size_t B = batch > 0 ? (size_t)batch : 0;
    size_t floats = 2 * B * m->max_act + B * (size_t)m->n_out;
    for (int l = 0; l < m->g->n_layers; l++) {
        const dd_layer *L = &m->g->layers[l];
        if (L->kind != DD_OP_FLATTEN) floats += B * dd_layer_out_size(L);
        floats += dd_layer_aux_floats(L, batch);
    }
    return floats * sizeof(float);
}

void dd_model_release_workspaces(dd_model *m) {
    if (!m) return;
    for (int i = 0; i < WS_CACHE; i++)
        if (m->ws[i].batch) ws_free(m, &m->ws[i]);
    m->fwd_tick = 0; // no stored activations any more
    // no kernel is left: the arena sized by the largest batch goes too
    dd_dnnl_release_arena(m->dnnl);
    dd_heap_trim();
}

void dd_model_destroy(dd_model *m) {
    if (!m) return;
    for (int i = 0; i < WS_CACHE; i++)
        if (m->ws[i].batch) ws_free(m, &m->ws[i]);
    dd_dnnl_destroy(m->dnnl);
    dd_graph_destroy(m->g);
    free(m->summary);
    free(m);
}

size_t dd_model_param_count(const dd_model *m) {
    return m->g->n_params;
}
int dd_model_output_dim(const dd_model *m) {
    return m->n_out;
}
size_t dd_model_input_size(const dd_model *m) {
    return m->in_size;
}
dd_loss_kind dd_model_loss(const dd_model *m) {
    return m->g->loss;
}
const char *dd_model_summary(const dd_model *m) {
    return m->summary;
}
const dd_graph *dd_model_graph(const dd_model *m) {
    return m->g;
}
dd_backend dd_model_backend(const dd_model *m) {
    return m->backend;
}
int dd_model_threads(const dd_model *m) {
    return m->nthreads;
}
int dd_model_set_threads(dd_model *m, int nthreads) {
    const int prev = m->nthreads;
    m->nthreads = nthreads > 0 ? nthreads : 0;
    return prev;
}

/* ---- init --------------------------------------------------------------- */

dd_status dd_model_init_params(dd_model *m, float *theta, const char *scheme, float gain,
                               uint64_t seed) {
    if (!scheme) scheme = "xavier";
    int uniform, kaiming;
    if (!strcmp(scheme, "xavier") || !strcmp(scheme, "xavier-normal")) {
        uniform = 0, kaiming = 0;
    } else if (!strcmp(scheme, "xavier-uniform")) {
        uniform = 1, kaiming = 0;
    } else if (!strcmp(scheme, "kaiming") || !strcmp(scheme, "kaiming-normal")) {
        uniform = 0, kaiming = 1;
    } else if (!strcmp(scheme, "kaiming-uniform")) {
        uniform = 1, kaiming = 1;
    } else {
        return dd_error_set(DD_ERR_INVALID,
                            "unknown init scheme '%s' (expected xavier, xavier-normal, "
                            "xavier-uniform, kaiming, kaiming-normal or kaiming-uniform)",
                            scheme);
    }
    if (!isfinite(gain) || gain < 0.0f)
        return dd_error_set(DD_ERR_INVALID, "init: gain %g must be finite and >= 0", gain);
    for (int l = 0; l < m->g->n_layers; l++) {
        const dd_layer *L = &m->g->layers[l];
        float *w = theta + L->param_off, *b = w + L->n_weight;
        if (L->kind == DD_OP_INSTNORM) {
            for (size_t i = 0; i < L->n_weight; i++)
                w[i] = 1.0f;
            memset(b, 0, L->n_bias * sizeof *b);
            continue;
        }
        if (L->n_weight == 0) continue;
        // Var(w) = 2 / (fan_in + fan_out) (Xavier) or 2 / fan_in (Kaiming, ReLU gain),
        // times gain²; a uniform U[−a, a] has variance a²/3.
        double var = kaiming ? 2.0 / (double)L->fan_in : 2.0 / (double)(L->fan_in + L->fan_out);
        double std = (double)gain * sqrt(var);
        dd_rng r = dd_rng_make(seed, (uint64_t)l);
        if (uniform) {
            float a = (float)(std * sqrt(3.0));
            dd_rng_uniform(&r, w, L->n_weight, -a, a);
        } else {
            dd_rng_normal(&r, w, L->n_weight, 0.0f, (float)std);
        }
        memset(b, 0, L->n_bias * sizeof *b);
    }
    return DD_OK;
}

/* ---- passes ------------------------------------------------------------- */

static dd_status check_args(const dd_model *m, const float *theta, const float *x, int64_t batch) {
    if (!theta || !x) return dd_error_set(DD_ERR_INVALID, "model: theta and x must not be NULL");
    if (batch <= 0)
        return dd_error_set(DD_ERR_INVALID, "model: batch size %lld must be > 0", (long long)batch);
    (void)m;
    return DD_OK;
}

static void bind_input(dd_model *m, workspace *w, const float *x) {
    // act[0] is the caller's input; flatten layers alias their input.
    w->act[0] = (float *)x;
    for (int l = 0; l < m->g->n_layers; l++)
        if (m->g->layers[l].kind == DD_OP_FLATTEN) w->act[l + 1] = w->act[l];
}

static dd_status run_forward(dd_model *m, workspace *w, const float *theta, const float *x) {
    bind_input(m, w, x);
    const int n = m->g->n_layers;
    for (int l = 0; l < n; l++) {
        const dd_layer *L = &m->g->layers[l];
        if (l + 1 < n && dd_relu_maxpool_fusable(L, &m->g->layers[l + 1])) {
            // relu then max-pool in one pass. The relu's output act[l + 1]
            // is left stale: no VJP, JVP or tangent VJP reads it (relu's
            // derivative comes from its input, max-pool's from its argmax).
            dd_relu_maxpool_forward(&w->exec[l + 1], w->act[l], w->act[l + 2], w->aux[l + 1]);
            l++;
            continue;
        }
        DD_TRY(dd_layer_forward(&w->exec[l], w->act[l], theta + L->param_off, w->act[l + 1],
                                w->aux[l]));
    }
    return DD_OK;
}

static dd_status run_tangent_forward(dd_model *m, workspace *w, const float *theta,
                                     const float *v) {
    w->tan[0] = NULL; // the input does not move with θ
    for (int l = 0; l < m->g->n_layers; l++) {
        const dd_layer *L = &m->g->layers[l];
        if (L->kind == DD_OP_FLATTEN) {
            w->tan[l + 1] = w->tan[l];
            continue;
        }
        if (l < m->first_param) {
            // no parameter below: the tangent is still exactly zero
            w->tan[l + 1] = NULL;
            continue;
        }
        if (!w->tan[l + 1]) return dd_error_set(DD_ERR_INVALID, "model: internal tangent buffer");
        DD_TRY(dd_layer_jvp(&w->exec[l], w->act[l], w->act[l + 1], w->aux[l], theta + L->param_off,
                            w->tan[l], v + L->param_off, w->tan[l + 1], w->auxd[l]));
    }
    return DD_OK;
}

// Backward from cotangent dy_top (and, with tangents, from its tangent
// dyd_top) down to the input. Each output pointer is optional.
static dd_status run_backward(dd_model *m, workspace *w, const float *theta, const float *v,
                              const float *dy_top, const float *dyd_top, float *grad, float *grad_x,
                              float *hv, float *mixed_x) {
    const int want_x = grad_x || mixed_x;
    const float *dy = dy_top, *dyd = dyd_top;
    for (int l = m->g->n_layers - 1; l >= 0; l--) {
        const dd_layer *L = &m->g->layers[l];
        if (l < m->first_param && !want_x) break;
        // Only the bottom layer writes into the caller's buffers; elsewhere
        // pick the ping-pong buffer not holding dy (flatten aliases).
        const int need_dx = l > m->first_param || want_x;
        float *dx = NULL, *dxd = NULL;
        if (l == 0) {
            dx = grad_x;
            dxd = mixed_x;
            // the bottom layer's tangent cotangent needs dy for the mixed term
        } else if (need_dx) {
            if (L->kind == DD_OP_FLATTEN) {
                dx = (float *)dy;
                dxd = (float *)dyd;
            } else {
                dx = dy == w->g[0] ? w->g[1] : w->g[0];
                if (dyd) dxd = dyd == w->gd[0] ? w->gd[1] : w->gd[0];
            }
        }
        // relu then max-pool: one pass per cotangent (and per tangent
        // cotangent) writes the relu's input cotangent, into the buffer the
        // pool would have used (the relu's usual one holds dy). Same values
        // as the two VJPs in turn (relu's tangent VJP is its VJP of d̊y).
        if (l >= 1 && dd_relu_maxpool_fusable(&m->g->layers[l - 1], L)) {
            const int r = l - 1;
            if (r < m->first_param && !want_x) break;
            float *rdx, *rdxd = NULL;
            if (r == 0) {
                rdx = grad_x;
                rdxd = mixed_x;
            } else {
                rdx = dy == w->g[0] ? w->g[1] : w->g[0];
                if (dyd) rdxd = dyd == w->gd[0] ? w->gd[1] : w->gd[0];
            }
            if (rdx) dd_relu_maxpool_backward(&w->exec[l], w->aux[l], w->act[l + 1], dy, rdx);
            if (dyd && rdxd)
                dd_relu_maxpool_backward(&w->exec[l], w->aux[l], w->act[l + 1], dyd, rdxd);
            if (r == 0) break;
            dy = rdx;
            dyd = rdxd;
            l--;
            continue;
        }
        const float *wt = theta + L->param_off;
        float *dw = grad && L->n_weight + L->n_bias ? grad + L->param_off : NULL;
        DD_TRY(dd_layer_backward(&w->exec[l], w->act[l], w->act[l + 1], w->aux[l], wt, dy, dx, dw));
        if (dyd) {
            float *dwd = hv && L->n_weight + L->n_bias ? hv + L->param_off : NULL;
            DD_TRY(dd_layer_tbwd(&w->exec[l], w->act[l], w->act[l + 1], w->aux[l], w->tan[l],
                                 w->tan[l + 1], w->auxd[l], wt, v + L->param_off, dy, dyd,
                                 l == 0 ? mixed_x : dxd, dwd));
        }
        if (l == 0) break;
        dy = dx;
        dyd = dxd;
    }
    return DD_OK;
}

dd_status dd_model_forward(dd_model *m, const float *theta, const float *x, int64_t batch,
                           float *logits) {
    DD_TRY(check_args(m, theta, x, batch));
    workspace *w;
    DD_TRY(ws_get(m, batch, 0, &w));
    DD_TRY(run_forward(m, w, theta, x));
    if (logits) memcpy(logits, w->act[m->g->n_layers], (size_t)batch * m->n_out * sizeof *logits);
    m->fwd_tick = w->last_use;
    return DD_OK;
}

dd_status dd_model_forward_pieces(dd_model *m, const float *theta, const float *x, int64_t batch,
                                  int64_t piece, float *logits) {
    if (piece < 1) piece = batch;
    const size_t D = m->in_size, O = (size_t)m->n_out;
    for (int64_t b = 0; b < batch; b += piece) {
        const int64_t n = batch - b < piece ? batch - b : piece;
        DD_TRY(dd_model_forward(m, theta, x + (size_t)b * D, n, logits + (size_t)b * O));
    }
    return DD_OK;
}

dd_status dd_model_backward(dd_model *m, const float *theta, int64_t batch, const float *dlogits,
                            float *grad_theta, float *grad_x) {
    if (!theta || !dlogits)
        return dd_error_set(DD_ERR_INVALID, "model: backward: theta and dlogits must not be NULL");
    workspace *w = NULL;
    for (int i = 0; i < WS_CACHE; i++)
        if (m->ws[i].batch == batch && batch > 0) w = &m->ws[i];
    // ws_get bumps tick on every pass, so the workspace is the forward's only
    // if nothing ran since.
    if (!w || m->fwd_tick == 0 || w->last_use != m->fwd_tick || m->tick != m->fwd_tick)
        return dd_error_set(DD_ERR_INVALID,
                            "model: backward at batch %lld needs dd_model_forward at that batch "
                            "size immediately before it (another pass ran in between, or none)",
                            (long long)batch);
    if (!grad_theta && !grad_x) return DD_OK;
    pass_threads(m);
    return run_backward(m, w, theta, NULL, dlogits, NULL, grad_theta, grad_x, NULL, NULL);
}

dd_status dd_model_loss_grad(dd_model *m, const float *theta, const float *x, int64_t batch,
                             dd_labels y, double *loss, float *grad_theta, float *grad_x,
                             float *logits) {
    DD_TRY(check_args(m, theta, x, batch));
    DD_TRY(dd_loss_check_labels(batch, m->n_out, y));
    workspace *w;
    DD_TRY(ws_get(m, batch, 0, &w));
    DD_TRY(run_forward(m, w, theta, x));
    const float *z = w->act[m->g->n_layers];
    if (logits) memcpy(logits, z, (size_t)batch * m->n_out * sizeof *logits);
    const int need_bwd = grad_theta || grad_x;
    DD_TRY(dd_loss_forward(m->g->loss, batch, m->n_out, z, y, loss, need_bwd ? w->g[0] : NULL,
                           w->probs));
    if (!need_bwd) return DD_OK;
    return run_backward(m, w, theta, NULL, w->g[0], NULL, grad_theta, grad_x, NULL, NULL);
}

dd_status dd_model_backward_from(dd_model *m, const float *theta, const float *x, int64_t batch,
                                 const float *dlogits, float *grad_theta, float *grad_x) {
    DD_TRY(check_args(m, theta, x, batch));
    if (!dlogits) return dd_error_set(DD_ERR_INVALID, "model: dlogits must not be NULL");
    workspace *w;
    DD_TRY(ws_get(m, batch, 0, &w));
    DD_TRY(run_forward(m, w, theta, x));
    if (!grad_theta && !grad_x) return DD_OK;
    return run_backward(m, w, theta, NULL, dlogits, NULL, grad_theta, grad_x, NULL, NULL);
}

dd_status dd_model_hvp(dd_model *m, const float *theta, const float *x, int64_t batch, dd_labels y,
                       const float *v, float *hv, float *mixed_x, float *mixed_y, float *grad,
                       double *loss) {
    DD_TRY(check_args(m, theta, x, batch));
    if (!v) return dd_error_set(DD_ERR_INVALID, "model: hvp: v must not be NULL");
    DD_TRY(dd_loss_check_labels(batch, m->n_out, y));
    if (mixed_y && !y.soft)
        return dd_error_set(DD_ERR_INVALID, "model: hvp: mixed_y needs soft labels");
    workspace *w;
    DD_TRY(ws_get(m, batch, 1, &w));
    DD_TRY(run_forward(m, w, theta, x));
    DD_TRY(run_tangent_forward(m, w, theta, v));
    const int L = m->g->n_layers;
    const float *z = w->act[L];
    DD_TRY(dd_loss_forward(m->g->loss, batch, m->n_out, z, y, loss, w->g[0], w->probs));
    if (w->tan[L]) {
        dd_loss_tangent(m->g->loss, batch, m->n_out, y, w->probs, w->tan[L], w->gd[0], mixed_y);
    } else {
        // the network has no parameters: every tangent is zero
        memset(w->gd[0], 0, (size_t)batch * m->n_out * sizeof(float));
        if (mixed_y) memset(mixed_y, 0, (size_t)batch * m->n_out * sizeof *mixed_y);
    }
    if (!hv && !mixed_x && !grad) return DD_OK;
    return run_backward(m, w, theta, v, w->g[0], w->gd[0], grad, NULL, hv, mixed_x);
}

uint64_t dd_model_pattern_hash(const dd_model *m, int64_t batch) {
    const workspace *w = NULL;
    for (int i = 0; i < WS_CACHE; i++)
        if (m->ws[i].batch == batch) w = &m->ws[i];
    if (!w) return 0;
    uint64_t h = 1469598103934665603ull; // FNV-1a over the pattern
    for (int l = 0; l < m->g->n_layers; l++) {
        const dd_layer *L = &m->g->layers[l];
        if (L->kind == DD_OP_RELU) {
            const size_t n = (size_t)batch * dd_layer_in_size(L);
            for (size_t i = 0; i < n; i++)
                h = (h ^ (uint64_t)(w->act[l][i] > 0.0f)) * 1099511628211ull;
        } else if (L->kind == DD_OP_MAXPOOL) {
            const size_t n = (size_t)batch * dd_layer_out_size(L);
            const int32_t *a = (const int32_t *)w->aux[l];
            for (size_t i = 0; i < n; i++)
                h = (h ^ (uint64_t)(uint32_t)a[i]) * 1099511628211ull;
        }
    }
    return h;
}
