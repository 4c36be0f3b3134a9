/* Shared pieces of the deliberately broken test-only plugins: a valid
 * objective vtable each of them can use or spoil in one place. */
#ifndef DD_TEST_BROKEN_H
#define DD_TEST_BROKEN_H

#include <stddef.h>

#include "distill/distill.h"

__attribute__((unused)) static dd_status broken_create(const dd_options *o,
                                                       const dd_objective_info *i, void **state) {
    *state = NULL;
    return DD_OK;
}

__attribute__((unused)) static dd_status broken_loss(void *s, const float *z, const int32_t *y,
                                                     int64_t b, int k, double *loss, float *dz) {
    *loss = 0;
    for (int64_t i = 0; i < b * k; i++)
        dz[i] = 0;
    return DD_OK;
}

__attribute__((unused)) static dd_status broken_metrics(void *s, const float *z, const int32_t *y,
                                                        int64_t b, int k, double *num,
                                                        double *den) {
    den[0] += (double)b;
    return DD_OK;
}

static const char *const broken_metric_names[] = {"zero", NULL};

#define BROKEN_OBJECTIVE_OPS(outer)                                                                \
    {                                                                                              \
        .struct_size = sizeof(dd_objective_ops), .create = broken_create, .outer_loss = (outer),   \
        .metric_names = broken_metric_names, .metrics = broken_metrics                             \
    }

#endif
