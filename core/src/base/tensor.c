/* distill — 64-byte aligned float buffers and small dense NCHW tensors. */
#include "distill/tensor.h"

#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "base/heap.h"

void dd_heap_trim(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void *dd_alloc_aligned(size_t bytes) {
    // aligned_alloc needs a size that is a multiple of the alignment; round up
    // and never ask for zero bytes so a valid pointer always comes back.
    size_t rounded = (bytes + DD_ALIGN - 1) / DD_ALIGN * DD_ALIGN;
    if (rounded < bytes) {
        dd_error_set(DD_ERR_NOMEM, "aligned allocation of %zu bytes overflows", bytes);
        return NULL;
    }
    if (rounded == 0) rounded = DD_ALIGN;
    void *p = aligned_alloc(DD_ALIGN, rounded);
    if (!p) {
        dd_error_set(DD_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

float *dd_alloc_floats(size_t n) {
    if (n > SIZE_MAX / sizeof(float)) {
        dd_error_set(DD_ERR_NOMEM, "allocation of %zu floats overflows", n);
        return NULL;
    }
    return (float *)dd_alloc_aligned(n * sizeof(float));
}

void dd_free(void *p) {
    free(p);
}

dd_status dd_tensor_create(int ndim, const int64_t *dims, dd_tensor **out) {
    *out = NULL;
    if (ndim < 0 || ndim > DD_MAX_DIMS)
        return dd_error_set(DD_ERR_INVALID, "tensor: %d dimensions (at most %d)", ndim,
                            DD_MAX_DIMS);
    if (ndim > 0 && !dims) return dd_error_set(DD_ERR_INVALID, "tensor: dims is NULL");
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return dd_error_set(DD_ERR_INVALID, "tensor: dimension %d is negative (%lld)", i,
                                (long long)dims[i]);
        if (dims[i] != 0 && numel > SIZE_MAX / sizeof(float) / (size_t)dims[i])
            return dd_error_set(DD_ERR_NOMEM, "tensor: size overflows");
        numel *= (size_t)dims[i];
    }
    dd_tensor *t = calloc(1, sizeof *t);
    if (!t) return dd_error_set(DD_ERR_NOMEM, "tensor: out of memory");
    t->data = dd_alloc_floats(numel);
    if (!t->data) {
        free(t);
        return DD_ERR_NOMEM;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->dims[i] = dims[i];
    t->numel = numel;
    *out = t;
    return DD_OK;
}

void dd_tensor_destroy(dd_tensor *t) {
    if (!t) return;
    dd_free(t->data);
    free(t);
}
