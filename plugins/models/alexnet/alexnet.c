/* distill model plugin — AlexNet (the torchvision layout, without dropout):
 * conv64-11/4 → relu → maxpool3/2 → conv192-5 → relu → maxpool3/2 →
 * conv384-3 → relu → conv256-3 → relu → conv256-3 → relu → maxpool3/2 →
 * fc(hidden) → relu → fc(hidden) → relu → fc(classes). Any input of at least
 * 63×63; 224×224 is the standard size. */
#include "distill/distill.h"

static const dd_param_spec alexnet_params[] = {
    {"width", DD_PARAM_FLOAT, "1.0", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 0.01, 4.0, NULL,
     "multiplier of the conv channel counts (64, 192, 384, 256, 256)"},
    {"hidden", DD_PARAM_INT, "4096", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 1, 65536, NULL,
     "units of the two hidden fully connected layers"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static int scaled(int c, double m) {
    int v = (int)(c * m + 0.5);
    return v < 1 ? 1 : v;
}

static dd_status alexnet_build(dd_graph *g, const dd_options *opts, int channels, int height,
                               int width, int n_outputs) {
    (void)channels;
    double m = opts ? dd_options_float(opts, "width") : 1.0;
    int hidden = opts ? (int)dd_options_int(opts, "hidden") : 4096;
    if (height < 63 || width < 63)
        return dd_error_set(DD_ERR_INVALID,
                            "alexnet needs an input of at least 63×63 (got %d×%d); 224×224 is "
                            "the standard size",
                            height, width);
    DD_TRY(dd_graph_conv2d(g, scaled(64, m), 11, 4, 2));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_maxpool(g, 3, 2, 0));
    DD_TRY(dd_graph_conv2d(g, scaled(192, m), 5, 1, 2));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_maxpool(g, 3, 2, 0));
    DD_TRY(dd_graph_conv2d(g, scaled(384, m), 3, 1, 1));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_conv2d(g, scaled(256, m), 3, 1, 1));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_conv2d(g, scaled(256, m), 3, 1, 1));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_maxpool(g, 3, 2, 0));
    DD_TRY(dd_graph_flatten(g));
    DD_TRY(dd_graph_linear(g, hidden));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_linear(g, hidden));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_linear(g, n_outputs));
    dd_graph_set_loss(g, DD_LOSS_CROSS_ENTROPY);
    return DD_OK;
}

static const dd_model_ops alexnet_ops = {
    .struct_size = sizeof(dd_model_ops),
    .build = alexnet_build,
    .default_init = "kaiming",
};

static const dd_component alexnet_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_MODEL,
    .name = "alexnet",
    .description = "AlexNet (5 conv, 3 fc; any input >= 63×63, default 224×224)",
    .params = alexnet_params,
    .ops = &alexnet_ops,
}};

static const dd_plugin_descriptor alexnet_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "alexnet",
    .version = "1.0.0",
    .description = "AlexNet for ImageNet-sized inputs",
    .n_components = 1,
    .components = alexnet_components,
};

DD_PLUGIN_DEFINE(alexnet_descriptor)
