/* Test-only plugin "testkit": one small component of each kind (dataset
 * "testdata", model "testnet", objective "testobj") for the pipeline, CLI and
 * loader tests. Built into the tests' own plugin dir, never installed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "distill/distill.h"

/* ---- dataset: synthetic images, no files needed -------------------------- */

static const char *const testdata_names[] = {"testdata", "testdata-alt", NULL};

static const dd_param_spec testdata_params[] = {
    {"classes", DD_PARAM_INT, "3", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 2, 10, NULL,
     "number of classes"},
    {"per_class", DD_PARAM_INT, "4", DD_PARAM_HAS_MIN, 1, 0, NULL, "training images per class"},
    {"noise", DD_PARAM_FLOAT, "0.1", DD_PARAM_HAS_MIN, 0, 0, NULL, "noise added to each pixel"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status make_split(const char *name, int classes, int per_class, double noise, int size,
                            dd_dataset **out) {
    int64_t n = (int64_t)classes * per_class;
    DD_TRY(dd_dataset_create(name, DD_DTYPE_F32, n, 1, size, size, classes, out));
    dd_dataset *d = *out;
    size_t img = dd_dataset_image_size(d);
    for (int64_t i = 0; i < n; i++) {
        int label = (int)(i % classes);
        d->labels[i] = label;
        for (size_t k = 0; k < img; k++) {
            // class c lights up row band c; deterministic "noise" from the index
            double v = ((int)(k / (size_t)size) % classes == label) ? 1.0 : 0.0;
            v += noise * sin((double)(i * 131 + (int64_t)k * 7));
            dd_dataset_f32(d, i)[k] = (float)v;
        }
    }
    return DD_OK;
}

static dd_status testdata_load(const dd_dataset_request *req, dd_dataset **train,
                               dd_dataset **test) {
    *train = *test = NULL;
    int classes = (int)dd_options_int(req->options, "classes");
    int per_class = (int)dd_options_int(req->options, "per_class");
    double noise = dd_options_float(req->options, "noise");
    int size = req->height > 0 ? req->height : 8;
    DD_TRY(make_split("testdata/train", classes, per_class, noise, size, train));
    dd_status s = make_split("testdata/test", classes, 2, noise, size, test);
    if (s != DD_OK) {
        dd_dataset_destroy(*train);
        *train = NULL;
    }
    return s;
}

static const dd_dataset_ops testdata_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = testdata_names,
    .load = testdata_load,
};

/* ---- model: linear → relu → linear ---------------------------------------- */

static const dd_param_spec testnet_params[] = {
    {"hidden", DD_PARAM_INT, "8", DD_PARAM_HAS_MIN, 1, 0, NULL, "hidden units"},
    {"activation", DD_PARAM_ENUM, "relu", 0, 0, 0, "relu|tanh", "hidden activation"},
    {"head.bias", DD_PARAM_BOOL, "true", 0, 0, 0, NULL, "(test) a nested key; has no effect"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status testnet_build(dd_graph *g, const dd_options *opts, int c, int h, int w,
                               int n_out) {
    DD_TRY(dd_graph_linear(g, (int)dd_options_int(opts, "hidden")));
    if (strcmp(dd_options_string(opts, "activation"), "tanh") == 0)
        DD_TRY(dd_graph_tanh(g));
    else
        DD_TRY(dd_graph_relu(g));
    return dd_graph_linear(g, n_out);
}

static const dd_model_ops testnet_ops = {
    .struct_size = sizeof(dd_model_ops),
    .build = testnet_build,
};

/* ---- objective: softmax cross-entropy, accuracy --------------------------- */

static const dd_param_spec testobj_params[] = {
    {"weight", DD_PARAM_FLOAT, "1.0", DD_PARAM_HAS_MIN | DD_PARAM_MIN_EXCLUSIVE, 0, 0, NULL,
     "scale of the loss"},
    {"targets", DD_PARAM_LIST, "a, b", 0, 0, 0, NULL, "(test) a list parameter"},
    {"data_dir", DD_PARAM_STRING, NULL, DD_PARAM_PATH, 0, 0, NULL, "(test) a path parameter"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static dd_status testobj_create(const dd_options *opts, const dd_objective_info *info,
                                void **state) {
    double *w = malloc(sizeof *w);
    if (!w) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    *w = dd_options_float(opts, "weight");
    *state = w;
    return DD_OK;
}

static void testobj_destroy(void *state) {
    free(state);
}

static dd_status testobj_loss(void *state, const float *logits, const int32_t *labels,
                              int64_t batch, int k, double *loss, float *dlogits) {
    double w = *(const double *)state, total = 0;
    for (int64_t b = 0; b < batch; b++) {
        const float *z = logits + b * k;
        double m = z[0], sum = 0;
        for (int j = 1; j < k; j++)
            m = z[j] > m ? z[j] : m;
        for (int j = 0; j < k; j++)
            sum += exp(z[j] - m);
        total += -(z[labels[b]] - m - log(sum));
        for (int j = 0; j < k; j++)
            dlogits[b * k + j] =
                (float)(w * (exp(z[j] - m) / sum - (j == labels[b])) / (double)batch);
    }
    *loss = w * total / (double)batch;
    return DD_OK;
}

static const char *const testobj_metrics[] = {"accuracy", NULL};

static dd_status testobj_metric(void *state, const float *logits, const int32_t *labels,
                                int64_t batch, int k, double *num, double *den) {
    for (int64_t b = 0; b < batch; b++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (logits[b * k + j] > logits[b * k + best]) best = j;
        num[0] += best == labels[b];
        den[0] += 1;
    }
    return DD_OK;
}

static const dd_objective_ops testobj_ops = {
    .struct_size = sizeof(dd_objective_ops),
    .create = testobj_create,
    .destroy = testobj_destroy,
    .outer_loss = testobj_loss,
    .metric_names = testobj_metrics,
    .metrics = testobj_metric,
};

static const dd_component components[] = {
    {sizeof(dd_component),
     DD_COMPONENT_DATASET,
     "testdata",
     "synthetic striped images (tests)",
     testdata_params,
     &testdata_ops,
     {0}},
    {sizeof(dd_component),
     DD_COMPONENT_MODEL,
     "testnet",
     "two linear layers (tests)",
     testnet_params,
     &testnet_ops,
     {0}},
    {sizeof(dd_component),
     DD_COMPONENT_OBJECTIVE,
     "testobj",
     "cross-entropy (tests)",
     testobj_params,
     &testobj_ops,
     {0}},
};

static const dd_plugin_descriptor descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "testkit",
    .version = "1.0.0",
    .description = "test-only components of every kind",
    .n_components = sizeof components / sizeof *components,
    .components = components,
};

DD_PLUGIN_DEFINE(descriptor)
