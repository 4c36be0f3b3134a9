/* distill (internal) — an objective plugin's component bound to its state
 * for one dataset: what the engine, evaluation and pretraining call. */
#ifndef DD_OBJECTIVE_HANDLE_H
#define DD_OBJECTIVE_HANDLE_H

#include "base/export.h"

#include "distill/dataset.h"
#include "distill/objective.h"
#include "distill/param.h"
#include "distill/plugin.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An objective component bound to its state. */
typedef struct dd_objective_handle {
    const dd_objective_ops *ops;
    void *state;
    int n_metrics;
} dd_objective_handle;

/** Creates the objective's state for a dataset with train->n_classes classes.
 * `opts` may be NULL (the component's defaults are used by the component).
 * Release with dd_objective_handle_release. */
DD_INTERNAL dd_status dd_objective_handle_init(dd_objective_handle *h,
                                               const dd_component *objective,
                                               const dd_options *opts, const dd_dataset *train);
/** Frees the state; safe on a zeroed or released handle. */
DD_INTERNAL void dd_objective_handle_release(dd_objective_handle *h);

#ifdef __cplusplus
}
#endif
#endif
