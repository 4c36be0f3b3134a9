/* distill — the engine's configuration from the pipeline's options: init
 * modes by name, the `distill` section, and the all-defaults configuration. */
#define _POSIX_C_SOURCE 200809L
#include "engine/config.h"

#include <stdlib.h>
#include <string.h>

#include "config/schema.h"
#include "distill/plugin.h"

static const char *const init_mode_names[] = {"fixed", "random", "pretrained-fixed",
                                              "pretrained-random"};

dd_status dd_init_mode_parse(const char *s, dd_init_mode *out) {
    for (int i = 0; i < 4; i++) {
        if (s && strcmp(s, init_mode_names[i]) == 0) {
            *out = (dd_init_mode)i;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_INVALID,
                        "unknown init_mode '%s' (expected fixed|random|pretrained-fixed|"
                        "pretrained-random)",
                        s ? s : "(null)");
}

const char *dd_init_mode_str(dd_init_mode m) {
    return (unsigned)m < 4 ? init_mode_names[m] : "?";
}

dd_status dd_distill_config_from_options(const dd_options *o, dd_distill_config *c) {
    memset(c, 0, sizeof *c);
    if (!o) return dd_error_set(DD_ERR_INVALID, "distill: no options for the 'distill' section");
    c->steps = (int)dd_options_int(o, "steps");
    c->epochs = (int)dd_options_int(o, "epochs");
    c->images_per_class = (int)dd_options_int(o, "images_per_class");
    c->nets_per_iteration = (int)dd_options_int(o, "nets_per_iteration");
    c->iterations = dd_options_int(o, "iterations");
    c->batch_real = dd_options_int(o, "batch_real");
    c->real_chunk = dd_options_int(o, "real_chunk");
    c->lr_init = dd_options_float(o, "lr_init");
    c->opt_lr = dd_options_float(o, "optimizer.lr");
    c->opt_lr_lrs = dd_options_float(o, "optimizer.lr_lr");
    c->beta1 = dd_options_float(o, "optimizer.beta1");
    c->beta2 = dd_options_float(o, "optimizer.beta2");
    c->decay_every = dd_options_int(o, "optimizer.decay_every");
    c->decay = dd_options_float(o, "optimizer.decay");
    c->checkpoint_every = dd_options_int(o, "checkpoint_every");
    c->log_every = dd_options_int(o, "log_every");
    c->learn_labels = dd_options_bool(o, "learn_labels");
    c->max_unrolled_images = dd_options_int(o, "max_unrolled_images");
    // Distillation learns the pixels and the step sizes; only the lr search
    // of the baselines freezes them. ε only keeps Adam's division finite.
    c->learn_pixels = 1;
    c->learn_lrs = 1;
    c->eps = 1e-8;
    dd_status s = dd_init_mode_parse(dd_options_string(o, "init_mode"), &c->init_mode);
    if (s != DD_OK) {
        dd_error_prefix("%s", dd_options_where(o, "init_mode"));
        return s;
    }
    const char *v = dd_options_string(o, "image_init");
    c->pixel_init = (v && strcmp(v, "real") == 0) ? DD_PIXEL_INIT_REAL : DD_PIXEL_INIT_NORMAL;
    return DD_OK;
}

/* The default text of `name` in a spec, or NULL. */
static const char *spec_default(const dd_param_spec *spec, const char *name) {
    for (const dd_param_spec *p = spec; p && p->name; p++)
        if (strcmp(p->name, name) == 0) return p->default_value;
    return NULL;
}

dd_status dd_distill_config_from_defaults(dd_distill_config *c) {
    dd_options *o = NULL;
    DD_TRY(dd_options_from_strings(dd_section_spec("distill"), NULL, &o));
    dd_status s = dd_distill_config_from_options(o, c);
    dd_options_destroy(o);
    if (s != DD_OK) return s;
    // The keys of other sections the engine's configuration carries.
    const dd_param_spec *model = dd_section_core_spec(DD_COMPONENT_MODEL);
    const char *scheme = spec_default(model, "init"), *gain = spec_default(model, "gain");
    const char *seed = spec_default(dd_pipeline_top_spec(), "seed");
    if (!scheme || !gain || !seed)
        return dd_error_set(DD_ERR_INVALID, "distill: the model's init/gain or the pipeline's "
                                            "seed has no default in the spec");
    c->init_scheme = scheme; // static text of the spec
    c->init_gain = strtod(gain, NULL);
    c->seed = strtoull(seed, NULL, 10);
    return DD_OK;
}
