/* distill (internal) — the network a pipeline asks for: the model plugin's
 * init scheme (its own default unless model.init is set), gain and compute
 * backend, and the model built for a dataset's shape. The pretrain stage and
 * the distill/evaluate stages choose them the same way, here. */
#ifndef DD_MODEL_CHOICE_H
#define DD_MODEL_CHOICE_H

#include "base/export.h"
#include "distill/dataset.h"
#include "distill/host.h"
#include "distill/model.h"

typedef struct dd_model_choice {
    const char *scheme; /**< borrowed: the option's text or the plugin's static default */
    double gain;
    dd_backend backend;
} dd_model_choice;

/** The choice the model section `mo` of plugin `mc` makes. */
DD_INTERNAL dd_model_choice dd_model_choice_of(const dd_component *mc, const dd_options *mo);

/** Builds plugin `mc` with options `mo` for images shaped like `d`'s and
 * d->n_classes outputs. Caller owns *out. */
DD_INTERNAL dd_status dd_model_for_dataset(const dd_component *mc, const dd_options *mo,
                                           const dd_dataset *d, dd_backend backend, dd_model **out);

#endif
