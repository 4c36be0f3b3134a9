/* distill model plugin — LeNet as in the dataset-distillation paper:
 * conv6-5 (pad 2 on 28×28) → relu → maxpool2 → conv16-5 → relu → maxpool2 →
 * fc120 → relu → fc84 → relu → fc(classes). */
#include <string.h>

#include "distill/distill.h"

static const dd_param_spec lenet_params[] = {
    {"activation", DD_PARAM_ENUM, "relu", 0, 0, 0, "relu|tanh|sigmoid",
     "nonlinearity after every conv and hidden fc layer"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status act(dd_graph *g, const char *a) {
    if (!strcmp(a, "tanh")) return dd_graph_tanh(g);
    if (!strcmp(a, "sigmoid")) return dd_graph_sigmoid(g);
    return dd_graph_relu(g);
}

static dd_status lenet_build(dd_graph *g, const dd_options *opts, int channels, int height,
                             int width, int n_outputs) {
    (void)channels;
    const char *a = opts ? dd_options_string(opts, "activation") : "relu";
    if (!a) a = "relu";
    if (height < 16 || width < 16)
        return dd_error_set(DD_ERR_INVALID,
                            "lenet needs an input of at least 16×16 (got %d×%d); it is built "
                            "for 28×28 (MNIST) or 32×32 (CIFAR-10)",
                            height, width);
    // The paper pads the first conv by 2 on 28×28 inputs so the feature map
    // stays 28×28; 32×32 inputs are used unpadded (the classic LeNet-5).
    int pad = (height < 32 || width < 32) ? 2 : 0;
    DD_TRY(dd_graph_conv2d(g, 6, 5, 1, pad));
    DD_TRY(act(g, a));
    DD_TRY(dd_graph_maxpool(g, 2, 2, 0));
    DD_TRY(dd_graph_conv2d(g, 16, 5, 1, 0));
    DD_TRY(act(g, a));
    DD_TRY(dd_graph_maxpool(g, 2, 2, 0));
    DD_TRY(dd_graph_flatten(g));
    DD_TRY(dd_graph_linear(g, 120));
    DD_TRY(act(g, a));
    DD_TRY(dd_graph_linear(g, 84));
    DD_TRY(act(g, a));
    DD_TRY(dd_graph_linear(g, n_outputs));
    dd_graph_set_loss(g, DD_LOSS_CROSS_ENTROPY);
    return DD_OK;
}

static const dd_model_ops lenet_ops = {
    .struct_size = sizeof(dd_model_ops),
    .build = lenet_build,
    .default_init = "xavier",
};

static const dd_component lenet_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_MODEL,
    .name = "lenet",
    .description = "LeNet (conv6-5, conv16-5, fc120, fc84) as in Wang et al. 2018",
    .params = lenet_params,
    .ops = &lenet_ops,
}};

static const dd_plugin_descriptor lenet_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "lenet",
    .version = "1.0.0",
    .description = "LeNet for 28×28 / 32×32 inputs",
    .n_components = 1,
    .components = lenet_components,
};

DD_PLUGIN_DEFINE(lenet_descriptor)
