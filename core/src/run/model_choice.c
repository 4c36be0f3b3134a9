/* distill — the pipeline's choice of network (see model_choice.h). */
#include "run/model_choice.h"

#include <string.h>

dd_model_choice dd_model_choice_of(const dd_component *mc, const dd_options *mo) {
    const dd_model_ops *mops = mc->ops;
    dd_model_choice m;
    m.scheme = dd_options_has(mo, "init") ? dd_options_string(mo, "init") : NULL;
    if (!dd_options_is_set(mo, "init") && mops->default_init) m.scheme = mops->default_init;
    if (!m.scheme) m.scheme = "xavier";
    m.gain = dd_options_has(mo, "gain") ? dd_options_float(mo, "gain") : 1.0;
    const char *backend = dd_options_has(mo, "backend") ? dd_options_string(mo, "backend") : NULL;
    m.backend =
        backend && strcmp(backend, "reference") == 0 ? DD_BACKEND_REFERENCE : DD_BACKEND_ONEDNN;
    return m;
}

dd_status dd_model_for_dataset(const dd_component *mc, const dd_options *mo, const dd_dataset *d,
                               dd_backend backend, dd_model **out) {
    dd_model_config cfg = {
        .struct_size = sizeof cfg,
        .plugin = mc,
        .options = mo,
        .channels = d->channels,
        .height = d->height,
        .width = d->width,
        .n_outputs = d->n_classes,
        .backend = backend,
    };
    return dd_model_create(&cfg, out);
}
