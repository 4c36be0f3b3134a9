/* distill — binding an objective component: checks its required members,
 * creates its state for the dataset's classes, counts its metrics. */
#include "engine/objective_handle.h"

#include <string.h>

dd_status dd_objective_handle_init(dd_objective_handle *h, const dd_component *objective,
                                   const dd_options *opts, const dd_dataset *train) {
    memset(h, 0, sizeof *h);
    if (!objective || objective->kind != DD_COMPONENT_OBJECTIVE || !objective->ops)
        return dd_error_set(DD_ERR_INVALID, "engine: not an objective component");
    const dd_objective_ops *ops = objective->ops;
    if (!ops->create || !ops->outer_loss || !ops->metrics || !ops->metric_names)
        return dd_error_set(DD_ERR_PLUGIN, "objective '%s': missing a required member",
                            objective->name);
    dd_objective_info info = {sizeof info, train->n_classes,
                              (const char *const *)train->class_names};
    void *state = NULL;
    dd_status s = ops->create(opts, &info, &state);
    if (s != DD_OK) {
        dd_error_prefix("objective '%s'", objective->name);
        return s;
    }
    h->ops = ops;
    h->state = state;
    while (ops->metric_names[h->n_metrics])
        h->n_metrics++;
    return DD_OK;
}

void dd_objective_handle_release(dd_objective_handle *h) {
    if (!h) return;
    if (h->ops && h->ops->destroy) h->ops->destroy(h->state);
    memset(h, 0, sizeof *h);
}
