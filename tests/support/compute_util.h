/* distill tests (compute) — helpers shared by the compute-core tests:
 * loading a model plugin without the registry, random fills, error norms. */
#ifndef DD_TEST_COMPUTE_UTIL_H
#define DD_TEST_COMPUTE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "distill/host.h"
#include "distill/distill.h"

/** dlopens <plugin-dir>/<name>.so (DISTILL_BINARY_DIR/plugins-out, or
 * DISTILL_PLUGIN_PATH entries) and returns its model component, or NULL. */
const dd_component *compute_model_component(const char *name);

/** Creates a model from a plugin with "key=value" options (NULL-terminated,
 * may be NULL). Returns NULL and prints the error on failure. */
dd_model *compute_model_create(const char *plugin, const char *const *kv, int c, int h, int w,
                               int n_out, dd_backend backend);

/** N(0, std²) fill from a fixed stream. */
void compute_fill_normal(float *x, size_t n, float std, uint64_t seed);

/** ||a − b|| / max(||b||, floor), in double. */
double compute_rel_err(const float *a, const float *b, size_t n, double floor);
double compute_rel_err_d(const float *a, const double *b, size_t n, double floor);
double compute_norm(const float *a, size_t n);
double compute_dot(const float *a, const float *b, size_t n);

#endif
