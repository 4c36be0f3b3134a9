/* distill — the classification objective: the outer loss is the mean
 * softmax cross-entropy of the unrolled network on a real batch; it reports
 * top-1 accuracy. */
#include <math.h>
#include <stdlib.h>

#include "distill/distill.h"

typedef struct cls_state {
    int n_classes;
    double label_smoothing;
} cls_state;

static const dd_param_spec cls_params[] = {
    {"label_smoothing", DD_PARAM_FLOAT, "0", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 0.0, 0.5, NULL,
     "label smoothing of the outer cross-entropy (0 = plain cross-entropy)"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status cls_create(const dd_options *opts, const dd_objective_info *info, void **state) {
    if (!info || info->n_classes < 2)
        return dd_error_set(DD_ERR_INVALID, "classification: needs at least 2 classes (got %d)",
                            info ? info->n_classes : 0);
    cls_state *s = calloc(1, sizeof *s);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "classification: out of memory");
    s->n_classes = info->n_classes;
    s->label_smoothing = opts ? dd_options_float(opts, "label_smoothing") : 0.0;
    *state = s;
    return DD_OK;
}

static void cls_destroy(void *state) {
    free(state);
}

static dd_status check_label(int32_t y, int64_t i, int n_classes) {
    if (y < 0 || y >= n_classes)
        return dd_error_set(DD_ERR_INVALID,
                            "classification: label %d of sample %lld is outside [0, %d)", (int)y,
                            (long long)i, n_classes);
    return DD_OK;
}

static dd_status cls_outer_loss(void *state, const float *logits, const int32_t *labels,
                                int64_t batch, int n_classes, double *loss, float *dlogits) {
    const cls_state *s = state;
    if (batch <= 0) return dd_error_set(DD_ERR_INVALID, "classification: empty batch");
    const double smooth = s ? s->label_smoothing : 0.0;
    const double off = smooth / n_classes, on = 1.0 - smooth + off;
    double total = 0.0;
    for (int64_t i = 0; i < batch; i++) {
        DD_TRY(check_label(labels[i], i, n_classes));
        const float *z = logits + i * n_classes;
        float *dz = dlogits ? dlogits + i * n_classes : NULL;
        const double lse = dd_log_sum_exp(z, n_classes);
        // Loss of the (possibly smoothed) target distribution t: Σ_k t_k (lse − z_k).
        for (int k = 0; k < n_classes; k++) {
            const double t = (k == labels[i]) ? on : off;
            if (t != 0.0) total += t * (lse - z[k]);
            if (dz) dz[k] = (float)((exp((double)z[k] - lse) - t) / (double)batch);
        }
    }
    *loss = total / (double)batch;
    return DD_OK;
}

static dd_status cls_metrics(void *state, const float *logits, const int32_t *labels, int64_t batch,
                             int n_classes, double *num, double *den) {
    (void)state;
    int64_t correct = 0;
    for (int64_t i = 0; i < batch; i++) {
        DD_TRY(check_label(labels[i], i, n_classes));
        correct += dd_argmax(logits + i * n_classes, n_classes) == labels[i];
    }
    num[0] += (double)correct;
    den[0] += (double)batch;
    return DD_OK;
}

static const char *const cls_metric_names[] = {"accuracy", NULL};

static const dd_objective_ops cls_ops = {
    .struct_size = sizeof(dd_objective_ops),
    .create = cls_create,
    .destroy = cls_destroy,
    .outer_loss = cls_outer_loss,
    .metric_names = cls_metric_names,
    .metrics = cls_metrics,
    .flags = DD_OBJECTIVE_MEAN_LOSS,
    .default_init_mode = NULL,
};

static const dd_component cls_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_OBJECTIVE,
    .name = "classification",
    .description = "cross-entropy of the unrolled network on real data; reports accuracy",
    .params = cls_params,
    .ops = &cls_ops,
}};

static const dd_plugin_descriptor cls_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "classification",
    .version = "1.0.0",
    .description = "classification objective (cross-entropy, accuracy)",
    .n_components = 1,
    .components = cls_components,
};

DD_PLUGIN_DEFINE(cls_descriptor)
