/* distill — resource limits (see distill/limits.h). Process-wide values,
 * written by the load stage before any reader runs and read by decoders on
 * every thread; relaxed atomics keep the reads well defined. */
#include "distill/limits.h"

#include <stdatomic.h>
#include <unistd.h>

#include "distill/image.h"

static _Atomic int64_t max_dim = DD_LIMIT_DEFAULT_MAX_IMAGE_DIM;
static _Atomic int64_t max_pixels = DD_LIMIT_DEFAULT_MAX_IMAGE_PIXELS;
static _Atomic int64_t max_bytes = DD_LIMIT_DEFAULT_MAX_BYTES;

void dd_limits_set(int64_t dim, int64_t pixels, int64_t bytes) {
    if (dim <= 0) dim = DD_LIMIT_DEFAULT_MAX_IMAGE_DIM;
    if (dim > DD_IMAGE_MAX_DIM) dim = DD_IMAGE_MAX_DIM;
    if (pixels <= 0) pixels = DD_LIMIT_DEFAULT_MAX_IMAGE_PIXELS;
    if (bytes < 0) bytes = DD_LIMIT_DEFAULT_MAX_BYTES;
    atomic_store_explicit(&max_dim, dim, memory_order_relaxed);
    atomic_store_explicit(&max_pixels, pixels, memory_order_relaxed);
    atomic_store_explicit(&max_bytes, bytes, memory_order_relaxed);
}

int64_t dd_limits_max_bytes(void) {
    int64_t b = atomic_load_explicit(&max_bytes, memory_order_relaxed);
    if (b > 0) return b;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return INT64_C(16) << 30; // unknown: 16 GiB
    return (int64_t)((double)pages * (double)page * 0.75);
}

dd_status dd_limits_check_image(const char *what, int64_t width, int64_t height) {
    const char *w = what ? what : "<image>";
    if (width <= 0 || height <= 0)
        return dd_error_set(DD_ERR_PARSE, "%s: image size %lldx%lld is empty", w, (long long)width,
                            (long long)height);
    int64_t dim = atomic_load_explicit(&max_dim, memory_order_relaxed);
    if (width > dim || height > dim)
        return dd_error_set(DD_ERR_LIMIT,
                            "%s: image size %lldx%lld exceeds the limit of %lld pixels per side "
                            "(dataset.max_image_dim; raise it to load this image)",
                            w, (long long)width, (long long)height, (long long)dim);
    int64_t px = atomic_load_explicit(&max_pixels, memory_order_relaxed);
    if (width * height > px)
        return dd_error_set(DD_ERR_LIMIT,
                            "%s: image size %lldx%lld = %lld pixels exceeds the limit of %lld "
                            "(dataset.max_image_pixels; raise it to load this image)",
                            w, (long long)width, (long long)height, (long long)(width * height),
                            (long long)px);
    return DD_OK;
}

dd_status dd_limits_check_dataset(const char *what, int64_t n, int channels, int height, int width,
                                  size_t elem_size) {
    const char *w = what ? what : "dataset";
    if (n < 0 || channels < 1 || height < 1 || width < 1 || elem_size < 1)
        return dd_error_set(DD_ERR_INVALID, "%s: bad shape %lld×%d×%d×%d", w, (long long)n,
                            channels, height, width);
    // every factor is below 2^31, so the product is computed in double first
    double bytes = (double)n * channels * height * width * (double)elem_size;
    int64_t limit = dd_limits_max_bytes();
    if (bytes > (double)limit)
        return dd_error_set(DD_ERR_LIMIT,
                            "%s: %lld images of %d×%d×%d take %.2f GiB decoded, above the limit "
                            "of %.2f GiB (dataset.max_bytes; 0 = 3/4 of physical memory; raise it, "
                            "or lower dataset.height/width)",
                            w, (long long)n, channels, height, width, bytes / (1 << 30),
                            (double)limit / (1 << 30));
    return DD_OK;
}
