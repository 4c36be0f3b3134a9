/* An example objective plugin written against the installed distill SDK
 * only: squared error between softmax(logits) and the one-hot label (the
 * "Brier score"), reporting accuracy and the mean score. */
#include <math.h>
#include <stdlib.h>

#include <distill/distill.h>

static const dd_param_spec params[] = {
    {"scale", DD_PARAM_FLOAT, "1.0", DD_PARAM_HAS_MIN | DD_PARAM_MIN_EXCLUSIVE, 0, 0, NULL,
     "multiplies the loss"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

typedef struct state {
    double scale;
} state;

static dd_status create(const dd_options *opts, const dd_objective_info *info, void **out) {
    state *s = malloc(sizeof *s);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "myobjective: out of memory");
    s->scale = opts ? dd_options_float(opts, "scale") : 1.0;
    *out = s;
    return DD_OK;
}

static void destroy(void *s) {
    free(s);
}

// softmax of one row into p; returns nothing, p has k entries
static void softmax(const float *z, int k, double *p) {
    double m = z[0], sum = 0;
    for (int j = 1; j < k; j++)
        m = z[j] > m ? z[j] : m;
    for (int j = 0; j < k; j++)
        sum += p[j] = exp(z[j] - m);
    for (int j = 0; j < k; j++)
        p[j] /= sum;
}

static dd_status outer_loss(void *st, const float *logits, const int32_t *labels, int64_t batch,
                            int k, double *loss, float *dlogits) {
    const state *s = st;
    double *p = malloc((size_t)k * sizeof *p), total = 0;
    if (!p) return dd_error_set(DD_ERR_NOMEM, "myobjective: out of memory");
    for (int64_t b = 0; b < batch; b++) {
        softmax(logits + b * k, k, p);
        double dot = 0; // sum_j (p_j - y_j) p_j, for the softmax Jacobian
        for (int j = 0; j < k; j++) {
            double e = p[j] - (j == labels[b]);
            total += e * e;
            dot += e * p[j];
        }
        for (int j = 0; j < k; j++) {
            double e = p[j] - (j == labels[b]);
            dlogits[b * k + j] = (float)(s->scale * 2.0 * p[j] * (e - dot) / (double)batch);
        }
    }
    free(p);
    *loss = s->scale * total / (double)batch;
    return DD_OK;
}

static const char *const metric_names[] = {"accuracy", NULL};

static dd_status metrics(void *st, const float *logits, const int32_t *labels, int64_t batch, int k,
                         double *num, double *den) {
    for (int64_t b = 0; b < batch; b++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (logits[b * k + j] > logits[b * k + best]) best = j;
        num[0] += best == labels[b];
        den[0] += 1;
    }
    return DD_OK;
}

static const dd_objective_ops ops = {
    .struct_size = sizeof(dd_objective_ops),
    .create = create,
    .destroy = destroy,
    .outer_loss = outer_loss,
    .metric_names = metric_names,
    .metrics = metrics,
};

static const dd_component components[] = {
    {sizeof(dd_component),
     DD_COMPONENT_OBJECTIVE,
     "myobjective",
     "Brier score of the softmax (example built out of tree)",
     params,
     &ops,
     {0}},
};

static const dd_plugin_descriptor descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "myobjective",
    .version = "1.0.0",
    .description = "example objective plugin built against the installed SDK",
    .n_components = 1,
    .components = components,
};

DD_PLUGIN_DEFINE(descriptor)
