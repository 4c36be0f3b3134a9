/* distill (internal) — where the evaluate stage's distilled set comes from
 * when the run has no distill stage: the set `distill evaluate` read (a run
 * directory's export or an .npz), or the export in the output directory. */
#ifndef DD_RUN_STAGE_SOURCE_H
#define DD_RUN_STAGE_SOURCE_H

#include "base/export.h"

#include "distill/status.h"
#include "engine/config.h"
#include "engine/distilled.h"

struct dd_run;

/** What `distill evaluate` hands to the run (all borrowed). */
typedef struct dd_run_source {
    const char *label;       /**< the file or directory evaluated, for messages */
    const dd_distilled *set; /**< the set read from it */
    int has_norm;            /**< set->mean/std came from the source (an .npz's arrays) */
    int replace_output;      /**< the output directory may hold an earlier evaluation */
    const char *comment;     /**< written as comment lines at the top of config.yaml */
} dd_run_source;

/** The set to evaluate, checked against the loaded dataset (image shape,
 * classes, normalisation), the model (soft-label width) and the distill
 * configuration (steps, epochs, images per class): a copy of
 * run->source->set, or the export found in run->out_dir, or *set = NULL
 * (warned: the baselines only). Its mean/std are the dataset's. Caller owns
 * *set. Errors name the source file and both shapes. */
DD_INTERNAL dd_status dd_stage_source_set(struct dd_run *run, const dd_distill_config *cfg,
                                          int n_outputs, dd_distilled **set);

/** θ0 of a set evaluated without its distillation, when the init mode
 * needs the distillation's own and the evaluation would not find it:
 * pretrained-fixed distils from the pretrain stage's first distillation
 * member (cfg->theta_pool[0]), while the evaluation, given no θ0, takes the
 * first held-out one. *theta0 = a copy of it (dd_free), or NULL for the other
 * modes (fixed init re-derives θ0 from the seed as the distillation did). */
DD_INTERNAL dd_status dd_stage_source_theta0(const dd_distill_config *cfg, size_t n_params,
                                             float **theta0);

#endif
