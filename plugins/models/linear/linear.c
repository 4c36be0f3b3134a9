/* distill model plugin — a single linear layer (no nonlinearity): the
 * linear-regression / softmax-regression case of the paper's §3.3. */
#include <string.h>

#include "distill/distill.h"

static const dd_param_spec linear_params[] = {
    {"loss", DD_PARAM_ENUM, "mse", 0, 0, 0, "mse|cross_entropy",
     "inner loss: mse (0.5·mean ||Wx+b − y||², the paper's linear case) or cross_entropy"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status linear_build(dd_graph *g, const dd_options *opts, int channels, int height,
                              int width, int n_outputs) {
    (void)channels, (void)height, (void)width;
    const char *loss = opts ? dd_options_string(opts, "loss") : "mse";
    DD_TRY(dd_graph_linear(g, n_outputs));
    dd_graph_set_loss(g, loss && strcmp(loss, "cross_entropy") == 0 ? DD_LOSS_CROSS_ENTROPY
                                                                    : DD_LOSS_MSE);
    return DD_OK;
}

static const dd_model_ops linear_ops = {
    .struct_size = sizeof(dd_model_ops),
    .build = linear_build,
    .default_init = "xavier",
};

static const dd_component linear_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_MODEL,
    .name = "linear",
    .description = "one fully connected layer on the flattened input (linear / softmax regression)",
    .params = linear_params,
    .ops = &linear_ops,
}};

static const dd_plugin_descriptor linear_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "linear",
    .version = "1.0.0",
    .description = "linear model",
    .n_components = 1,
    .components = linear_components,
};

DD_PLUGIN_DEFINE(linear_descriptor)
