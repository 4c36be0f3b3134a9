/* distill model plugin — a network written as a list of layers in the
 * pipeline (`layers: [{conv: {out: 32, kernel: 3}}, relu, {maxpool: 2}, ...]`),
 * built from the core's ops; every error names the layer's file:line:col. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/distill.h"

#define KINDS "conv|linear|relu|tanh|sigmoid|maxpool|avgpool|instancenorm|lrn|flatten"

static const dd_param_spec sequential_params[] = {
    {"layers", DD_PARAM_ITEMS, NULL, DD_PARAM_REQUIRED, 0, 0, KINDS,
     "the network, first layer first: {conv: {out: N, kernel: K, stride: 1, padding: 0}}, "
     "{linear: N} or {linear: {out: N}}, relu, tanh, sigmoid, {maxpool: K} or "
     "{maxpool: {kernel: K, stride: K, padding: 0}}, avgpool (same keys), instancenorm or "
     "{instancenorm: {eps: 1e-5}}, {lrn: N} or {lrn: {size: N, alpha: 1e-4, beta: 0.75, k: 1}}, "
     "flatten; the last layer must give as many outputs as the dataset has classes"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

// One layer's arguments as read from its item, with where each came from.
typedef struct layer_args {
    const dd_options *o;
    size_t i;
    const char *kind;
    const char *where; // the item's file:line:col
} layer_args;

enum { MAX_CHANNELS = 1 << 16, MAX_KERNEL = 1024 };

// Parses `text` as an integer in [lo, hi] for `name` of layer a.
static dd_status int_value(const layer_args *a, const char *name, const char *text, const char *at,
                           long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    long x = strtol(text, &end, 10);
    if (!*text || *end || errno == ERANGE)
        return dd_error_set(DD_ERR_INVALID, "%s: layers[%zu] %s: %s must be an integer, got '%s'",
                            at, a->i, a->kind, name, text);
    if (x < lo || x > hi)
        return dd_error_set(DD_ERR_INVALID, "%s: layers[%zu] %s: %s %ld is out of range [%ld, %ld]",
                            at, a->i, a->kind, name, x, lo, hi);
    *out = (int)x;
    return DD_OK;
}

static dd_status float_value(const layer_args *a, const char *name, const char *text,
                             const char *at, double lo, int lo_exclusive, float *out) {
    char *end = NULL;
    errno = 0;
    double x = strtod(text, &end);
    if (!*text || *end || errno == ERANGE || !isfinite(x))
        return dd_error_set(DD_ERR_INVALID, "%s: layers[%zu] %s: %s must be a number, got '%s'", at,
                            a->i, a->kind, name, text);
    if (lo_exclusive ? !(x > lo) : !(x >= lo))
        return dd_error_set(DD_ERR_INVALID, "%s: layers[%zu] %s: %s %g must be %s %g", at, a->i,
                            a->kind, name, x, lo_exclusive ? ">" : ">=", lo);
    *out = (float)x;
    return DD_OK;
}

// Checks that every key of the item's mapping is one of `keys` ("a|b|c").
static dd_status known_keys(const layer_args *a, const char *keys) {
    size_t n = dd_options_item_n_args(a->o, "layers", a->i);
    for (size_t j = 0; j < n; j++) {
        const char *k = dd_options_item_arg_key(a->o, "layers", a->i, j);
        size_t len = strlen(k);
        int ok = 0;
        for (const char *c = keys; *c;) {
            size_t cl = strcspn(c, "|");
            if (cl == len && !strncmp(c, k, len)) ok = 1;
            c += cl;
            if (*c == '|') c++;
        }
        if (!ok) {
            char list[128] = "";
            for (const char *c = keys; *c;) {
                size_t cl = strcspn(c, "|"), ll = strlen(list);
                snprintf(list + ll, sizeof list - ll, "%s%.*s", ll ? ", " : "", (int)cl, c);
                c += cl;
                if (*c == '|') c++;
            }
            return dd_error_set(
                DD_ERR_INVALID, "%s: layers[%zu] %s: unknown key '%s' (valid keys: %s)",
                dd_options_item_arg_where(a->o, "layers", a->i, j), a->i, a->kind, k, list);
        }
    }
    return DD_OK;
}

// The value of key `name` of the item's mapping (and where), or NULL.
static const char *arg(const layer_args *a, const char *name, const char **at) {
    size_t n = dd_options_item_n_args(a->o, "layers", a->i);
    for (size_t j = 0; j < n; j++)
        if (!strcmp(dd_options_item_arg_key(a->o, "layers", a->i, j), name)) {
            *at = dd_options_item_arg_where(a->o, "layers", a->i, j);
            return dd_options_item_arg_value(a->o, "layers", a->i, j);
        }
    return NULL;
}

static dd_status int_arg(const layer_args *a, const char *name, int required, int dflt, long lo,
                         long hi, int *out) {
    const char *at = NULL, *v = arg(a, name, &at);
    if (!v) {
        if (required)
            return dd_error_set(DD_ERR_INVALID, "%s: layers[%zu] %s: missing key '%s'", a->where,
                                a->i, a->kind, name);
        *out = dflt;
        return DD_OK;
    }
    return int_value(a, name, v, at, lo, hi, out);
}

static dd_status float_arg(const layer_args *a, const char *name, float dflt, double lo,
                           int lo_exclusive, float *out) {
    const char *at = NULL, *v = arg(a, name, &at);
    if (!v) {
        *out = dflt;
        return DD_OK;
    }
    return float_value(a, name, v, at, lo, lo_exclusive, out);
}

// The form of the item: a bare word, `{kind: value}` or `{kind: {...}}`.
static int has_map(const layer_args *a) {
    return dd_options_item_n_args(a->o, "layers", a->i) > 0;
}

static dd_status no_arguments(const layer_args *a) {
    if (dd_options_item_value(a->o, "layers", a->i) || has_map(a))
        return dd_error_set(DD_ERR_INVALID, "%s: layers[%zu] %s takes no arguments (write '%s')",
                            a->where, a->i, a->kind, a->kind);
    return DD_OK;
}

// A layer whose scalar shorthand is its main size (`{linear: 10}`,
// `{maxpool: 2}`, `{lrn: 4}`): parses it into *out if present.
static dd_status shorthand(const layer_args *a, const char *name, long lo, long hi, int *out,
                           int *given) {
    const char *v = dd_options_item_value(a->o, "layers", a->i);
    *given = v != NULL;
    if (!v) return DD_OK;
    return int_value(a, name, v, dd_options_item_value_where(a->o, "layers", a->i), lo, hi, out);
}

static dd_status add_pool(dd_graph *g, const layer_args *a, int max) {
    int kernel = 0, given = 0, stride, pad = 0;
    DD_TRY(shorthand(a, "kernel", 1, MAX_KERNEL, &kernel, &given));
    if (given) {
        stride = kernel;
    } else {
        if (!has_map(a))
            return dd_error_set(DD_ERR_INVALID,
                                "%s: layers[%zu] %s needs a kernel size: {%s: K} or {%s: {kernel: "
                                "K, stride: K, padding: 0}}",
                                a->where, a->i, a->kind, a->kind, a->kind);
        DD_TRY(known_keys(a, "kernel|stride|padding"));
        DD_TRY(int_arg(a, "kernel", 1, 0, 1, MAX_KERNEL, &kernel));
        DD_TRY(int_arg(a, "stride", 0, kernel, 1, MAX_KERNEL, &stride));
        DD_TRY(int_arg(a, "padding", 0, 0, 0, MAX_KERNEL - 1, &pad));
    }
    return max ? dd_graph_maxpool(g, kernel, stride, pad)
               : dd_graph_avgpool(g, kernel, stride, pad);
}

// Appends layer a to g; the graph's own errors come back prefixed by the
// caller with the layer's position and input shape.
static dd_status add_layer(dd_graph *g, const layer_args *a, int *linear_out) {
    const char *k = a->kind;
    *linear_out = 0;
    if (!strcmp(k, "relu") || !strcmp(k, "tanh") || !strcmp(k, "sigmoid") ||
        !strcmp(k, "flatten")) {
        DD_TRY(no_arguments(a));
        if (!strcmp(k, "relu")) return dd_graph_relu(g);
        if (!strcmp(k, "tanh")) return dd_graph_tanh(g);
        if (!strcmp(k, "sigmoid")) return dd_graph_sigmoid(g);
        return dd_graph_flatten(g);
    }
    if (!strcmp(k, "conv")) {
        if (!has_map(a))
            return dd_error_set(DD_ERR_INVALID,
                                "%s: layers[%zu] conv needs {conv: {out: N, kernel: K, stride: 1, "
                                "padding: 0}}",
                                a->where, a->i);
        int out, kernel, stride, pad;
        DD_TRY(known_keys(a, "out|kernel|stride|padding"));
        DD_TRY(int_arg(a, "out", 1, 0, 1, MAX_CHANNELS, &out));
        DD_TRY(int_arg(a, "kernel", 1, 0, 1, MAX_KERNEL, &kernel));
        DD_TRY(int_arg(a, "stride", 0, 1, 1, MAX_KERNEL, &stride));
        DD_TRY(int_arg(a, "padding", 0, 0, 0, MAX_KERNEL - 1, &pad));
        return dd_graph_conv2d(g, out, kernel, stride, pad);
    }
    if (!strcmp(k, "linear")) {
        int out = 0, given = 0;
        DD_TRY(shorthand(a, "out", 1, MAX_CHANNELS, &out, &given));
        if (!given) {
            if (!has_map(a))
                return dd_error_set(DD_ERR_INVALID,
                                    "%s: layers[%zu] linear needs its size: {linear: N} or "
                                    "{linear: {out: N}}",
                                    a->where, a->i);
            DD_TRY(known_keys(a, "out"));
            DD_TRY(int_arg(a, "out", 1, 0, 1, MAX_CHANNELS, &out));
        }
        *linear_out = out;
        return dd_graph_linear(g, out);
    }
    if (!strcmp(k, "maxpool") || !strcmp(k, "avgpool")) return add_pool(g, a, k[0] == 'm');
    if (!strcmp(k, "instancenorm")) {
        if (dd_options_item_value(a->o, "layers", a->i))
            return dd_error_set(DD_ERR_INVALID,
                                "%s: layers[%zu] instancenorm: write 'instancenorm' or "
                                "{instancenorm: {eps: E}}",
                                a->where, a->i);
        float eps;
        DD_TRY(known_keys(a, "eps"));
        DD_TRY(float_arg(a, "eps", 1e-5f, 0.0, 1, &eps));
        return dd_graph_instancenorm(g, eps);
    }
    if (!strcmp(k, "lrn")) {
        int size = 0, given = 0;
        float alpha = 1e-4f, beta = 0.75f, kk = 1.0f;
        DD_TRY(shorthand(a, "size", 1, MAX_CHANNELS, &size, &given));
        if (!given) {
            if (!has_map(a))
                return dd_error_set(DD_ERR_INVALID,
                                    "%s: layers[%zu] lrn needs its size: {lrn: N} or {lrn: {size: "
                                    "N, alpha: 1e-4, beta: 0.75, k: 1}}",
                                    a->where, a->i);
            DD_TRY(known_keys(a, "size|alpha|beta|k"));
            DD_TRY(int_arg(a, "size", 1, 0, 1, MAX_CHANNELS, &size));
            DD_TRY(float_arg(a, "alpha", 1e-4f, 0.0, 0, &alpha));
            DD_TRY(float_arg(a, "beta", 0.75f, 0.0, 0, &beta));
            DD_TRY(float_arg(a, "k", 1.0f, 0.0, 1, &kk));
        }
        return dd_graph_lrn(g, size, alpha, beta, kk);
    }
    // the core checked the kinds against the spec's choices
    return dd_error_set(DD_ERR_INVALID, "%s: layers[%zu]: unknown layer '%s' (valid: %s)", a->where,
                        a->i, k, KINDS);
}

static dd_status sequential_build(dd_graph *g, const dd_options *opts, int channels, int height,
                                  int width, int n_outputs) {
    (void)channels, (void)height, (void)width;
    if (!opts) return dd_error_set(DD_ERR_INVALID, "sequential: the model needs 'layers' (a list)");
    size_t n = dd_options_items_len(opts, "layers");
    if (n == 0)
        return dd_error_set(DD_ERR_INVALID, "%s: sequential: 'layers' is empty",
                            dd_options_where(opts, "layers"));
    size_t last_linear = n;
    int last_out = 0;
    for (size_t i = 0; i < n; i++) {
        layer_args a = {opts, i, dd_options_item_kind(opts, "layers", i),
                        dd_options_item_where(opts, "layers", i)};
        int c, h, w, lin = 0;
        dd_graph_shape(g, &c, &h, &w);
        dd_status s = add_layer(g, &a, &lin);
        if (s != DD_OK) {
            const char *msg = dd_error_message();
            // our own errors already start with the position; the graph's do not
            if (strncmp(msg, "graph: ", 7) == 0) {
                // drop the graph's own op name ("graph: maxpool: ..."): the kind says it
                const char *why = strstr(msg + 7, ": ");
                char m[1024];
                snprintf(m, sizeof m, "%s", why ? why + 2 : msg + 7);
                dd_error_set(s, "%s: layers[%zu] %s: input %d×%d×%d does not fit: %s", a.where, i,
                             a.kind, c, h, w, m);
            }
            return s;
        }
        if (lin) last_linear = i, last_out = lin;
    }
    int c, h, w;
    dd_graph_shape(g, &c, &h, &w);
    if ((long)c * h * w != n_outputs) {
        size_t at = last_linear < n ? last_linear : n - 1;
        if (last_linear < n && last_out != n_outputs)
            return dd_error_set(DD_ERR_INVALID,
                                "%s: layers[%zu] linear: out %d, but the network must end with %d "
                                "outputs (one per class); write {linear: %d}",
                                dd_options_item_where(opts, "layers", at), at, last_out, n_outputs,
                                n_outputs);
        return dd_error_set(DD_ERR_INVALID,
                            "%s: layers[%zu] %s: the network ends with %d×%d×%d outputs, but it "
                            "must end with %d (one per class); end it with {linear: %d}",
                            dd_options_item_where(opts, "layers", at), at,
                            dd_options_item_kind(opts, "layers", at), c, h, w, n_outputs,
                            n_outputs);
    }
    dd_graph_set_loss(g, DD_LOSS_CROSS_ENTROPY);
    return DD_OK;
}

static const dd_model_ops sequential_ops = {
    .struct_size = sizeof(dd_model_ops),
    .build = sequential_build,
    .default_init = "xavier",
};

static const dd_component sequential_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_MODEL,
    .name = "sequential",
    .description = "a network written as a list of layers in the pipeline",
    .params = sequential_params,
    .ops = &sequential_ops,
}};

static const dd_plugin_descriptor sequential_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "sequential",
    .version = "1.0.0",
    .description = "any stack of conv, linear, pooling, normalisation and activation layers",
    .n_components = 1,
    .components = sequential_components,
};

DD_PLUGIN_DEFINE(sequential_descriptor)
