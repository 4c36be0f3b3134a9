/* distill — the evaluate stage's distilled set when the run did not distill
 * one (see stage_source.h): the set `distill evaluate` read, or the export
 * an earlier run left in the output directory, checked against the dataset,
 * the model and the distill configuration. */
#define _POSIX_C_SOURCE 200809L
#include "run/stage_source.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "distill/log.h"
#include "distill/tensor.h"
#include "run/run.h"

static int near(float a, float b) {
    return fabsf(a - b) <= 1e-6f * fmaxf(1.f, fabsf(b));
}

/* "[0.286, 0.353]" */
static const char *floats_str(const float *x, int n, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%.6g", i ? ", " : "", (double)x[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

/* The images are stored normalised: a set normalised otherwise than the
 * dataset would reach the network in other units than the test images and
 * give a meaningless accuracy, so a mismatch is refused, not warned. */
static dd_status check_norm(const char *label, const dd_distilled *set, const dd_dataset *ds) {
    for (int c = 0; c < set->channels; c++) {
        if (near(set->mean[c], ds->mean[c]) && near(set->std[c], ds->std[c])) continue;
        char m1[128], s1[128], m2[128], s2[128];
        return dd_error_set(
            DD_ERR_INVALID,
            "%s: arrays 'mean' %s and 'std' %s differ from the dataset's normalisation (mean %s, "
            "std %s): the images are stored normalised and would reach the network in other "
            "units than the test images; write them in the dataset's units, x' = (x · std_npz + "
            "mean_npz − mean) / std, or evaluate with a dataset normalised like the set",
            label, floats_str(set->mean, set->channels, m1, sizeof m1),
            floats_str(set->std, set->channels, s1, sizeof s1),
            floats_str(ds->mean, ds->channels, m2, sizeof m2),
            floats_str(ds->std, ds->channels, s2, sizeof s2));
    }
    return DD_OK;
}

static dd_status check_set(const char *label, const dd_distilled *set, const dd_dataset *ds,
                           int n_outputs, const dd_distill_config *cfg) {
    if (set->channels != ds->channels || set->height != ds->height || set->width != ds->width)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: array 'images' holds images of %d×%d×%d (C×H×W), the dataset "
                            "'%s' has %d×%d×%d",
                            label, set->channels, set->height, set->width, ds->name, ds->channels,
                            ds->height, ds->width);
    if (set->soft && set->n_outputs != n_outputs)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: array 'labels' has soft labels of width %d, the model has %d "
                            "outputs",
                            label, set->n_outputs, n_outputs);
    if (!set->soft && set->n_classes > ds->n_classes)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: array 'labels' holds label %d, out of range for the dataset '%s' "
                            "(%d classes: 0..%d)",
                            label, set->n_classes - 1, ds->name, ds->n_classes, ds->n_classes - 1);
    if (set->n_classes != ds->n_classes)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: array 'labels': the set's labels use %d classes, the dataset '%s' "
                            "has %d (every step must hold images of every class)",
                            label, set->n_classes, ds->name, ds->n_classes);
    if (set->images_per_class < 1)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: array 'images': %lld images per step are not a multiple of the "
                            "%d classes",
                            label, (long long)set->per_step, set->n_classes);
    if (set->steps != cfg->steps || set->epochs != cfg->epochs ||
        set->images_per_class != cfg->images_per_class)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: the set has %d steps × %d epochs × %d per class, the pipeline's "
                            "distill section says %d × %d × %d",
                            label, set->steps, set->epochs, set->images_per_class, cfg->steps,
                            cfg->epochs, cfg->images_per_class);
    return DD_OK;
}

dd_status dd_stage_source_set(dd_run *run, const dd_distill_config *cfg, int n_outputs,
                              dd_distilled **set) {
    *set = NULL;
    const dd_run_source *src = run->source;
    dd_distilled *d = NULL;
    const char *label;
    if (src && src->set) {
        label = src->label;
        DD_TRY(check_set(label, src->set, run->train, n_outputs, cfg));
        if (src->has_norm) DD_TRY(check_norm(label, src->set, run->train));
        DD_TRY(dd_distilled_clone(src->set, &d));
    } else {
        // No distill stage in this run: evaluate the set exported by an earlier one.
        char probe[4200];
        struct stat sb;
        snprintf(probe, sizeof probe, "%s/distilled-images.idx", run->out_dir);
        if (stat(probe, &sb) != 0) {
            dd_warn("evaluate: no distilled set (no distill stage and no export in %s); "
                    "evaluating the baselines only",
                    run->out_dir);
            return DD_OK;
        }
        label = run->out_dir;
        DD_TRY(dd_distilled_load(run->out_dir, &d));
    }
    dd_status s = check_set(label, d, run->train, n_outputs, cfg);
    if (s != DD_OK) {
        dd_distilled_destroy(d);
        return s;
    }
    memcpy(d->mean, run->train->mean, sizeof d->mean);
    memcpy(d->std, run->train->std, sizeof d->std);
    dd_info("evaluate: using the distilled set in %s", label);
    *set = d;
    return DD_OK;
}

dd_status dd_stage_source_theta0(const dd_distill_config *cfg, size_t n_params, float **theta0) {
    *theta0 = NULL;
    if (cfg->init_mode != DD_INIT_PRETRAINED_FIXED || !cfg->theta_pool || cfg->theta_pool_size < 1)
        return DD_OK;
    if (!(*theta0 = dd_alloc_floats(n_params))) return dd_nomem();
    memcpy(*theta0, cfg->theta_pool[0], n_params * sizeof(float));
    return DD_OK;
}
