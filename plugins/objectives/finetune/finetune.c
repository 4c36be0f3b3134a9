/* distill — the adaptation objective (Wang et al. 2018, §4.3): distilled
 * images that adapt networks pretrained elsewhere to the target dataset in a
 * few GD steps; the outer loss is the target cross-entropy. */
#include <math.h>
#include <stdlib.h>

#include "distill/distill.h"

typedef struct ft_state {
    int n_classes;
} ft_state;

static dd_status ft_create(const dd_options *opts, const dd_objective_info *info, void **state) {
    (void)opts;
    if (!info || info->n_classes < 2)
        return dd_error_set(DD_ERR_INVALID, "finetune: needs at least 2 classes (got %d)",
                            info ? info->n_classes : 0);
    ft_state *s = calloc(1, sizeof *s);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "finetune: out of memory");
    s->n_classes = info->n_classes;
    *state = s;
    return DD_OK;
}

static void ft_destroy(void *state) {
    free(state);
}

static dd_status check_label(int32_t y, int64_t i, int n_classes) {
    if (y < 0 || y >= n_classes)
        return dd_error_set(DD_ERR_INVALID, "finetune: label %d of sample %lld is outside [0, %d)",
                            (int)y, (long long)i, n_classes);
    return DD_OK;
}

static dd_status ft_outer_loss(void *state, const float *logits, const int32_t *labels,
                               int64_t batch, int n_classes, double *loss, float *dlogits) {
    (void)state;
    if (batch <= 0) return dd_error_set(DD_ERR_INVALID, "finetune: empty batch");
    double total = 0.0;
    for (int64_t i = 0; i < batch; i++) {
        DD_TRY(check_label(labels[i], i, n_classes));
        const float *z = logits + i * n_classes;
        const double lse = dd_log_sum_exp(z, n_classes);
        total += lse - (double)z[labels[i]];
        if (dlogits) {
            float *dz = dlogits + i * n_classes;
            for (int k = 0; k < n_classes; k++)
                dz[k] = (float)((exp((double)z[k] - lse) - (k == labels[i] ? 1.0 : 0.0)) /
                                (double)batch);
        }
    }
    *loss = total / (double)batch;
    return DD_OK;
}

static dd_status ft_metrics(void *state, const float *logits, const int32_t *labels, int64_t batch,
                            int n_classes, double *num, double *den) {
    (void)state;
    for (int64_t i = 0; i < batch; i++) {
        DD_TRY(check_label(labels[i], i, n_classes));
        num[0] += dd_argmax(logits + i * n_classes, n_classes) == labels[i];
        den[0] += 1.0;
    }
    return DD_OK;
}

static const char *const ft_metric_names[] = {"accuracy", NULL};

static const dd_objective_report_key ft_keys[] = {
    {"accuracy_before_mean", 0, DD_REPORT_BEFORE_MEAN},
    {"accuracy_before_std", 0, DD_REPORT_BEFORE_STD},
    {"accuracy_after_mean", 0, DD_REPORT_AFTER_MEAN},
    {"accuracy_after_std", 0, DD_REPORT_AFTER_STD},
    {NULL, 0, 0},
};

static const dd_objective_ops ft_ops = {
    .struct_size = sizeof(dd_objective_ops),
    .create = ft_create,
    .destroy = ft_destroy,
    .outer_loss = ft_outer_loss,
    .metric_names = ft_metric_names,
    .metrics = ft_metrics,
    .flags = DD_OBJECTIVE_NEEDS_PRETRAINED | DD_OBJECTIVE_MEAN_LOSS,
    .default_init_mode = "pretrained-random",
    .report_section = "adaptation",
    .report_keys = ft_keys,
};

static const dd_component ft_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_OBJECTIVE,
    .name = "finetune",
    .description = "adapt pretrained networks to the target dataset in a few distilled steps",
    .params = NULL,
    .ops = &ft_ops,
}};

static const dd_plugin_descriptor ft_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "finetune",
    .version = "1.0.0",
    .description = "adaptation of pretrained networks (paper §4.3)",
    .n_components = 1,
    .components = ft_components,
};

DD_PLUGIN_DEFINE(ft_descriptor)
