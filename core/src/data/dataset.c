/* distill — allocation of in-memory datasets (distill/dataset.h), the object
 * every dataset reader returns. */
#include "distill/dataset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/limits.h"
#include "distill/tensor.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

dd_status dd_dataset_create(const char *name, int64_t n, int channels, int height, int width,
                            int n_classes, dd_dataset **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_dataset_create: NULL argument");
    *out = NULL;
    const char *shown = name ? name : "dataset";
    if (n < 0 || channels < 1 || channels > DD_MAX_CHANNELS || height < 1 || width < 1 ||
        n_classes < 1)
        return dd_error_set(
            DD_ERR_INVALID, "dataset %s: bad shape n=%lld %dx%dx%d, %d classes (channels 1..%d)",
            shown, (long long)n, channels, height, width, n_classes, DD_MAX_CHANNELS);
    size_t per = (size_t)channels * (size_t)height * (size_t)width;
    if ((uint64_t)height * (uint64_t)width > SIZE_MAX / DD_MAX_CHANNELS ||
        (n > 0 && (uint64_t)n > SIZE_MAX / sizeof(float) / per))
        return dd_error_set(DD_ERR_NOMEM, "dataset %s: %lld images of %zu floats overflow", shown,
                            (long long)n, per);
    DD_TRY(dd_limits_check_dataset(shown, n, channels, height, width, sizeof(float)));
    dd_dataset *d = calloc(1, sizeof *d);
    if (!d) return dd_error_set(DD_ERR_NOMEM, "dataset %s: out of memory", shown);
    d->n = n;
    d->channels = channels;
    d->height = height;
    d->width = width;
    d->n_classes = n_classes;
    d->name = dup_str(shown);
    d->images = dd_alloc_floats((size_t)n * per);
    d->labels = calloc(n > 0 ? (size_t)n : 1, sizeof(int32_t));
    d->class_names = calloc((size_t)n_classes, sizeof(char *));
    int ok = d->name && d->images && d->labels && d->class_names;
    for (int k = 0; ok && k < n_classes; k++) {
        char buf[24];
        snprintf(buf, sizeof buf, "%d", k);
        ok = (d->class_names[k] = dup_str(buf)) != NULL;
    }
    if (!ok) {
        dd_dataset_destroy(d);
        return dd_error_set(DD_ERR_NOMEM, "dataset %s: out of memory for %lld images of %zu floats",
                            shown, (long long)n, per);
    }
    for (int c = 0; c < DD_MAX_CHANNELS; c++)
        d->std[c] = 1.0f;
    *out = d;
    return DD_OK;
}

void dd_dataset_destroy(dd_dataset *d) {
    if (!d) return;
    for (int k = 0; d->class_names && k < d->n_classes; k++)
        free(d->class_names[k]);
    free(d->class_names);
    free(d->labels);
    dd_free(d->images);
    free(d->name);
    free(d);
}

dd_status dd_dataset_set_class_name(dd_dataset *d, int k, const char *name) {
    if (!d || !name)
        return dd_error_set(DD_ERR_INVALID, "dd_dataset_set_class_name: NULL argument");
    if (k < 0 || k >= d->n_classes)
        return dd_error_set(DD_ERR_INVALID, "dataset %s: class %d not in 0..%d", d->name, k,
                            d->n_classes - 1);
    char *s = dup_str(name);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "dataset %s: out of memory", d->name);
    free(d->class_names[k]);
    d->class_names[k] = s;
    return DD_OK;
}

size_t dd_dataset_image_size(const dd_dataset *d) {
    return d ? (size_t)d->channels * (size_t)d->height * (size_t)d->width : 0;
}
