/* distill model plugin — ConvNet-D (the standard network of later
 * dataset-distillation papers): depth × [conv(width)-3 → instance norm →
 * relu → avgpool2] → fc(classes). */
#include <string.h>

#include "distill/distill.h"

static const dd_param_spec convnet_params[] = {
    {"width", DD_PARAM_INT, "128", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 1, 4096, NULL,
     "channels of every conv layer"},
    {"depth", DD_PARAM_INT, "3", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 1, 8, NULL,
     "number of conv blocks (each halves the resolution)"},
    {"norm", DD_PARAM_ENUM, "instancenorm", 0, 0, 0, "instancenorm|none",
     "normalization after each conv"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status convnet_build(dd_graph *g, const dd_options *opts, int channels, int height,
                               int width, int n_outputs) {
    (void)channels;
    int w = opts ? (int)dd_options_int(opts, "width") : 128;
    int depth = opts ? (int)dd_options_int(opts, "depth") : 3;
    const char *norm = opts ? dd_options_string(opts, "norm") : "instancenorm";
    if ((height >> depth) < 1 || (width >> depth) < 1)
        return dd_error_set(DD_ERR_INVALID,
                            "convnet: depth %d halves the resolution %d times; the %d×%d input "
                            "is too small (need at least %d×%d)",
                            depth, depth, height, width, 1 << depth, 1 << depth);
    for (int i = 0; i < depth; i++) {
        DD_TRY(dd_graph_conv2d(g, w, 3, 1, 1));
        if (!norm || strcmp(norm, "none") != 0) DD_TRY(dd_graph_instancenorm(g, 1e-5f));
        DD_TRY(dd_graph_relu(g));
        DD_TRY(dd_graph_avgpool(g, 2, 2, 0));
    }
    DD_TRY(dd_graph_flatten(g));
    DD_TRY(dd_graph_linear(g, n_outputs));
    dd_graph_set_loss(g, DD_LOSS_CROSS_ENTROPY);
    return DD_OK;
}

static const dd_model_ops convnet_ops = {
    .struct_size = sizeof(dd_model_ops),
    .build = convnet_build,
    .default_init = "kaiming",
};

static const dd_component convnet_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_MODEL,
    .name = "convnet",
    .description = "ConvNet-3: 3 × [conv128-3, instance norm, relu, avgpool2] → fc",
    .params = convnet_params,
    .ops = &convnet_ops,
}};

static const dd_plugin_descriptor convnet_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "convnet",
    .version = "1.0.0",
    .description = "ConvNet of later dataset-distillation papers",
    .n_components = 1,
    .components = convnet_components,
};

DD_PLUGIN_DEFINE(convnet_descriptor)
