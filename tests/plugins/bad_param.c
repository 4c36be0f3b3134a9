/* Test-only broken plugin: a parameter whose default violates its own range. */
#include "broken.h"

__attribute__((unused)) static const dd_param_spec bad_params[] = {
    {"steps", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 1, 0, NULL, "default below the minimum"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

__attribute__((unused)) static const dd_param_spec corekey_params[] = {
    {"plugin", DD_PARAM_STRING, "x", 0, 0, 0, NULL, "collides with the core key"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_objective_ops ops = BROKEN_OBJECTIVE_OPS(broken_loss);

static const dd_component components[] = {
    {sizeof(dd_component),
     DD_COMPONENT_OBJECTIVE,
     "paramobj",
     "broken on purpose",
     bad_params,
     &ops,
     {0}},
};

static const dd_plugin_descriptor descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "bad_param",
    .version = "0.0.1",
    .description = "deliberately broken (loader test)",
    .n_components = 1,
    .components = components,
};

DD_PLUGIN_DEFINE(descriptor)
