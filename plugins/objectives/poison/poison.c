/* distill — the K→T poisoning objective (Wang et al. 2018, §3.4, Eq. 10):
 * distilled images that, after a few GD steps from a pretrained network,
 * make it classify class K as T while every other class stays as it was. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distill/distill.h"

typedef struct poison_state {
    int n_classes;
    int attack, target;         /* K and T */
    double weight;              /* weight of class-K images in the outer loss */
    int keep_predictions;       /* other classes: match θ0's predictions (1) or the labels (0) */
    double guard, guard_margin; /* weight and margin of the target-logit guard (0: off) */
} poison_state;

static const dd_param_spec poison_params[] = {
    {"attack_class", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "class K whose images the attack wants classified as target_class"},
    {"target_class", DD_PARAM_INT, "1", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "class T that class-K images should be classified as"},
    {"attack_weight", DD_PARAM_FLOAT, "1", DD_PARAM_HAS_MIN | DD_PARAM_MIN_EXCLUSIVE, 0, 0, NULL,
     "weight of the class-K images in the outer loss (1 = the plain relabelled cross-entropy)"},
    {"keep", DD_PARAM_ENUM, "predictions", 0, 0, 0, "predictions|labels",
     "what the other classes are held to: the pretrained network's own predictions (KL "
     "divergence from them) or the true labels (cross-entropy, the paper's Eq. 10)"},
    {"guard", DD_PARAM_FLOAT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "weight of a penalty softplus(z_T - z_c + guard_margin) on the other classes' images, c the "
     "class the pretrained network predicts: keeps T's logit below it with a margin (0 = off)"},
    {"guard_margin", DD_PARAM_FLOAT, "2", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "logit margin the guard asks for between the predicted class and T"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status poison_create(const dd_options *opts, const dd_objective_info *info,
                               void **state) {
    if (!info || info->n_classes < 2)
        return dd_error_set(DD_ERR_INVALID, "poison: needs at least 2 classes (got %d)",
                            info ? info->n_classes : 0);
    const int64_t k = opts ? dd_options_int(opts, "attack_class") : 0;
    const int64_t t = opts ? dd_options_int(opts, "target_class") : 1;
    if (k >= info->n_classes || t >= info->n_classes || k == t)
        return dd_error_set(
            DD_ERR_INVALID,
            "%s: poison: attack_class %lld and target_class %lld must be different "
            "classes of the %d in the dataset",
            opts ? dd_options_where(opts, k >= info->n_classes ? "attack_class" : "target_class")
                 : "poison",
            (long long)k, (long long)t, info->n_classes);
    poison_state *s = calloc(1, sizeof *s);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "poison: out of memory");
    s->n_classes = info->n_classes;
    s->attack = (int)k;
    s->target = (int)t;
    s->weight = opts ? dd_options_float(opts, "attack_weight") : 1.0;
    s->keep_predictions = opts ? strcmp(dd_options_string(opts, "keep"), "predictions") == 0 : 1;
    s->guard = opts ? dd_options_float(opts, "guard") : 0.0;
    s->guard_margin = opts ? dd_options_float(opts, "guard_margin") : 2.0;
    *state = s;
    return DD_OK;
}

static void poison_destroy(void *state) {
    free(state);
}

static dd_status check_label(int32_t y, int64_t i, int n_classes) {
    if (y < 0 || y >= n_classes)
        return dd_error_set(DD_ERR_INVALID, "poison: label %d of sample %lld is outside [0, %d)",
                            (int)y, (long long)i, n_classes);
    return DD_OK;
}

/* The outer loss L = Σ_i w_i ℓ_i / Σ_i w_i over the real batch, class-K
 * samples weighted by attack_weight:
 *  - class K: ℓ = CE(z, T), the relabelled cross-entropy of Eq. 10;
 *  - other classes, keep: labels or without logits0: ℓ = CE(z, y), Eq. 10
 *    as in the paper;
 *  - other classes, keep: predictions with logits0: ℓ = KL(p0 ‖ p), p0 the
 *    pretrained network's softmax. It asks the step to leave those
 *    predictions alone, right or wrong, instead of rewarding it for fixing
 *    the network's own mistakes — which a step can only do for the networks
 *    it was distilled on;
 *  - plus, with logits0 and guard > 0, on images of classes other than K
 *    and T: guard · softplus(z_T − z_c + guard_margin), c = argmax z0. */
static dd_status poison_loss(const poison_state *s, const float *logits, const float *logits0,
                             const int32_t *labels, int64_t batch, int n_classes, double *loss,
                             float *dlogits) {
    if (batch <= 0) return dd_error_set(DD_ERR_INVALID, "poison: empty batch");
    double wsum = 0.0;
    for (int64_t i = 0; i < batch; i++) {
        DD_TRY(check_label(labels[i], i, n_classes));
        wsum += labels[i] == s->attack ? s->weight : 1.0;
    }
    double total = 0.0;
    for (int64_t i = 0; i < batch; i++) {
        const int is_k = labels[i] == s->attack;
        const double w = (is_k ? s->weight : 1.0) / wsum;
        const float *z = logits + i * n_classes;
        const double lse = dd_log_sum_exp(z, n_classes);
        float *dz = dlogits ? dlogits + i * n_classes : NULL;
        if (is_k || !logits0 || !s->keep_predictions) {
            const int t = is_k ? s->target : labels[i];
            total += w * (lse - (double)z[t]);
            if (dz)
                for (int k = 0; k < n_classes; k++)
                    dz[k] = (float)(w * (exp((double)z[k] - lse) - (k == t ? 1.0 : 0.0)));
        } else {
            const float *z0 = logits0 + i * n_classes;
            const double lse0 = dd_log_sum_exp(z0, n_classes);
            for (int k = 0; k < n_classes; k++) {
                const double lp0 = (double)z0[k] - lse0, lp = (double)z[k] - lse;
                const double p0 = exp(lp0);
                total += w * p0 * (lp0 - lp);
                if (dz) dz[k] = (float)(w * (exp(lp) - p0));
            }
        }
        // The guard: on images of other classes than T that θ0 does not
        // already call T, T's logit should stay guard_margin below that of
        // θ0's prediction c. A margin on the networks the images are
        // distilled on leaves room for the networks they are not.
        if (!is_k && logits0 && s->guard > 0 && labels[i] != s->target) {
            const float *z0 = logits0 + i * n_classes;
            const int c = dd_argmax(z0, n_classes);
            if (c != s->target) {
                const double u = (double)z[s->target] - (double)z[c] + s->guard_margin;
                const double sp = u > 30 ? u : log1p(exp(u)), sg = 1.0 / (1.0 + exp(-u));
                total += w * s->guard * sp;
                if (dz) {
                    dz[s->target] += (float)(w * s->guard * sg);
                    dz[c] -= (float)(w * s->guard * sg);
                }
            }
        }
    }
    *loss = total;
    return DD_OK;
}

static dd_status poison_outer_loss(void *state, const float *logits, const int32_t *labels,
                                   int64_t batch, int n_classes, double *loss, float *dlogits) {
    return poison_loss(state, logits, NULL, labels, batch, n_classes, loss, dlogits);
}

static dd_status poison_outer_loss_ref(void *state, const float *logits, const float *logits0,
                                       const int32_t *labels, int64_t batch, int n_classes,
                                       double *loss, float *dlogits) {
    const poison_state *s = state;
    return poison_loss(s, logits, logits0, labels, batch, n_classes, loss, dlogits);
}

/* Metrics: 0 success = class-K images predicted T; 1 accuracy on the other
 * classes; 2 overall accuracy (true labels); 3 collateral = images of the
 * other classes (T's own excluded) predicted T — how much of the damage to
 * the other classes is the attack spilling over rather than noise. */
static dd_status poison_metrics(void *state, const float *logits, const int32_t *labels,
                                int64_t batch, int n_classes, double *num, double *den) {
    const poison_state *s = state;
    for (int64_t i = 0; i < batch; i++) {
        DD_TRY(check_label(labels[i], i, n_classes));
        const int best = dd_argmax(logits + i * n_classes, n_classes);
        if (labels[i] == s->attack) {
            num[0] += best == s->target;
            den[0] += 1.0;
        } else {
            num[1] += best == labels[i];
            den[1] += 1.0;
            if (labels[i] != s->target) {
                num[3] += best == s->target;
                den[3] += 1.0;
            }
        }
        num[2] += best == labels[i];
        den[2] += 1.0;
    }
    return DD_OK;
}

/* Baseline: every slot holds a random real class-K image labelled T. */
static dd_status poison_baseline(void *state, int index, const dd_dataset *train, int steps,
                                 int64_t per_step, uint64_t seed, float *images, int32_t *labels) {
    const poison_state *s = state;
    if (index != 0) return dd_error_set(DD_ERR_INVALID, "poison: no baseline %d", index);
    int64_t count = 0;
    for (int64_t i = 0; i < train->n; i++)
        count += train->labels[i] == s->attack;
    if (count == 0)
        return dd_error_set(DD_ERR_INVALID, "poison: the training set has no image of class %d",
                            s->attack);
    const size_t D = dd_dataset_image_size(train);
    dd_rng r = dd_rng_make(seed, 1);
    for (int64_t slot = 0; slot < (int64_t)steps * per_step; slot++) {
        int64_t want = (int64_t)dd_rng_below(&r, (uint64_t)count), seen = 0, pick = 0;
        for (int64_t i = 0; i < train->n; i++) {
            if (train->labels[i] == s->attack && seen++ == want) {
                pick = i;
                break;
            }
        }
        DD_TRY(dd_dataset_gather_range(train, pick, 1, images + (size_t)slot * D));
    }
    for (int64_t j = 0; j < per_step; j++)
        labels[j] = s->target;
    return DD_OK;
}

static const char *const poison_metric_names[] = {"success", "other_classes_accuracy", "accuracy",
                                                  "collateral", NULL};

static const dd_objective_report_key poison_keys[] = {
    {"success_mean", 0, DD_REPORT_AFTER_MEAN},
    {"success_std", 0, DD_REPORT_AFTER_STD},
    {"success_before", 0, DD_REPORT_BEFORE_MEAN},
    {"other_classes_accuracy_before", 1, DD_REPORT_BEFORE_MEAN},
    {"other_classes_accuracy_after", 1, DD_REPORT_AFTER_MEAN},
    {"other_classes_accuracy_after_std", 1, DD_REPORT_AFTER_STD},
    {"accuracy_before", 2, DD_REPORT_BEFORE_MEAN},
    {"accuracy_after", 2, DD_REPORT_AFTER_MEAN},
    {"collateral_before", 3, DD_REPORT_BEFORE_MEAN},
    {"collateral_after", 3, DD_REPORT_AFTER_MEAN},
    {NULL, 0, 0},
};

static const char *const poison_baselines[] = {"relabel", NULL};

static const dd_objective_ops poison_ops = {
    .struct_size = sizeof(dd_objective_ops),
    .create = poison_create,
    .destroy = poison_destroy,
    .outer_loss = poison_outer_loss,
    .metric_names = poison_metric_names,
    .metrics = poison_metrics,
    .flags = DD_OBJECTIVE_NEEDS_PRETRAINED,
    .default_init_mode = "pretrained-random",
    .report_section = "attack",
    .report_keys = poison_keys,
    .baseline_names = poison_baselines,
    .build_baseline = poison_baseline,
    .outer_loss_ref = poison_outer_loss_ref,
};

static const dd_component poison_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_OBJECTIVE,
    .name = "poison",
    .description = "K→T attack: class attack_class classified as target_class, other classes kept",
    .params = poison_params,
    .ops = &poison_ops,
}};

static const dd_plugin_descriptor poison_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "poison",
    .version = "1.0.0",
    .description = "K→T poisoning objective (paper §3.4, Eq. 10)",
    .n_components = 1,
    .components = poison_components,
};

DD_PLUGIN_DEFINE(poison_descriptor)
