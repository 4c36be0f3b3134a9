/* distill model plugin — AlexCifarNet, the CIFAR-10 network of the
 * dataset-distillation paper: conv64-5 → relu → maxpool3/2 → LRN → conv64-5 →
 * relu → LRN → maxpool3/2 → fc384 → relu → fc192 → relu → fc(classes). */
#include "distill/distill.h"

static dd_status alexcifarnet_build(dd_graph *g, const dd_options *opts, int channels, int height,
                                    int width, int n_outputs) {
    (void)opts, (void)channels;
    if (height < 8 || width < 8)
        return dd_error_set(DD_ERR_INVALID,
                            "alexcifarnet needs an input of at least 8×8 (got %d×%d); it is built "
                            "for 32×32 (CIFAR-10)",
                            height, width);
    // LRN as in the reference implementation: size 4, alpha 0.001/9, beta 0.75, k 1.
    const float alpha = 0.001f / 9.0f;
    DD_TRY(dd_graph_conv2d(g, 64, 5, 1, 2));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_maxpool(g, 3, 2, 1));
    DD_TRY(dd_graph_lrn(g, 4, alpha, 0.75f, 1.0f));
    DD_TRY(dd_graph_conv2d(g, 64, 5, 1, 2));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_lrn(g, 4, alpha, 0.75f, 1.0f));
    DD_TRY(dd_graph_maxpool(g, 3, 2, 1));
    DD_TRY(dd_graph_flatten(g));
    DD_TRY(dd_graph_linear(g, 384));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_linear(g, 192));
    DD_TRY(dd_graph_relu(g));
    DD_TRY(dd_graph_linear(g, n_outputs));
    dd_graph_set_loss(g, DD_LOSS_CROSS_ENTROPY);
    return DD_OK;
}

static const dd_model_ops alexcifarnet_ops = {
    .struct_size = sizeof(dd_model_ops),
    .build = alexcifarnet_build,
    .default_init = "xavier",
};

static const dd_component alexcifarnet_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_MODEL,
    .name = "alexcifarnet",
    .description = "AlexCifarNet (2×conv64-5 with LRN, fc384, fc192) for CIFAR-10",
    .params = NULL,
    .ops = &alexcifarnet_ops,
}};

static const dd_plugin_descriptor alexcifarnet_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "alexcifarnet",
    .version = "1.0.0",
    .description = "AlexCifarNet for 32×32 inputs",
    .n_components = 1,
    .components = alexcifarnet_components,
};

DD_PLUGIN_DEFINE(alexcifarnet_descriptor)
