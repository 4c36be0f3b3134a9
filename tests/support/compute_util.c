/* distill tests (compute) — plugin loading without the registry, fills, norms. */
#include "distill/host.h"
#include "compute_util.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dd_component *component_in(const char *dir, size_t len, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%.*s/%s.so", (int)len, dir, name);
    // Plugins stay loaded for the life of the test process.
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return NULL;
    dd_plugin_entry_fn entry = (dd_plugin_entry_fn)dlsym(h, DD_PLUGIN_ENTRY_SYMBOL);
    if (!entry) return NULL;
    const dd_plugin_descriptor *d = entry();
    for (size_t i = 0; d && i < d->n_components; i++)
        if (d->components[i].kind == DD_COMPONENT_MODEL && !strcmp(d->components[i].name, name))
            return &d->components[i];
    return NULL;
}

const dd_component *compute_model_component(const char *name) {
    const char *pp = getenv("DISTILL_PLUGIN_PATH");
    while (pp && *pp) {
        const char *colon = strchr(pp, ':');
        size_t len = colon ? (size_t)(colon - pp) : strlen(pp);
        const dd_component *c = component_in(pp, len, name);
        if (c) return c;
        pp = colon ? colon + 1 : NULL;
    }
    const char *bin = getenv("DISTILL_BINARY_DIR");
    if (bin) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/plugins-out", bin);
        return component_in(dir, strlen(dir), name);
    }
    return NULL;
}

dd_model *compute_model_create(const char *plugin, const char *const *kv, int c, int h, int w,
                               int n_out, dd_backend backend) {
    const dd_component *comp = compute_model_component(plugin);
    if (!comp) {
        fprintf(stderr, "cannot load model plugin '%s'\n", plugin);
        return NULL;
    }
    dd_options *opts = NULL;
    if (kv) {
        if (dd_options_from_strings(comp->params, kv, &opts) != DD_OK) {
            fprintf(stderr, "options for '%s': %s\n", plugin, dd_error_message());
            return NULL;
        }
    }
    dd_model_config cfg = {sizeof cfg, comp, opts, c, h, w, n_out, backend};
    dd_model *m = NULL;
    if (dd_model_create(&cfg, &m) != DD_OK) {
        fprintf(stderr, "dd_model_create(%s): %s\n", plugin, dd_error_message());
        m = NULL;
    }
    dd_options_destroy(opts);
    return m;
}

void compute_fill_normal(float *x, size_t n, float std, uint64_t seed) {
    dd_rng r = dd_rng_make(seed, 777);
    dd_rng_normal(&r, x, n, 0.0f, std);
}

double compute_norm(const float *a, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * a[i];
    return sqrt(s);
}

double compute_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

double compute_rel_err(const float *a, const float *b, size_t n, double floor) {
    double d = 0.0, nb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        d += e * e;
        nb += (double)b[i] * b[i];
    }
    nb = sqrt(nb);
    return sqrt(d) / (nb > floor ? nb : floor);
}

double compute_rel_err_d(const float *a, const double *b, size_t n, double floor) {
    double d = 0.0, nb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        d += e * e;
        nb += b[i] * b[i];
    }
    nb = sqrt(nb);
    return sqrt(d) / (nb > floor ? nb : floor);
}
