/* distill — resource limits against hostile or mistaken input: the image
 * size a decoder accepts and the memory a decoded dataset may take. They are
 * checked before any large allocation, and every refusal names the pipeline
 * option that raises the limit. The load stage sets them from the pipeline's
 * dataset.max_image_dim, dataset.max_image_pixels and dataset.max_bytes;
 * programs using the library directly get the defaults below. */
#ifndef DISTILL_LIMITS_H
#define DISTILL_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Defaults: 16384 pixels per side, 8192×8192 pixels per image, and a
 * decoded split of at most 3/4 of the machine's physical memory (0 = that). */
#define DD_LIMIT_DEFAULT_MAX_IMAGE_DIM 16384
#define DD_LIMIT_DEFAULT_MAX_IMAGE_PIXELS (8192LL * 8192LL)
#define DD_LIMIT_DEFAULT_MAX_BYTES 0

/** Sets the limits (process-wide; set them before loading). max_image_dim is
 * capped by DD_IMAGE_MAX_DIM; values ≤ 0 restore a default. */
DD_API void dd_limits_set(int64_t max_image_dim, int64_t max_image_pixels, int64_t max_bytes);

/** DD_OK if an image of width×height may be decoded; else DD_ERR_LIMIT naming
 * `what` (a file), the size, the limit and the option that raises it. */
DD_API dd_status dd_limits_check_image(const char *what, int64_t width, int64_t height);

/** DD_OK if a decoded split of n images of channels×height×width elements of
 * `elem_size` bytes fits dataset.max_bytes; else an error naming `what`. */
DD_API dd_status dd_limits_check_dataset(const char *what, int64_t n, int channels, int height,
                                         int width, size_t elem_size);

/** The decoded-split limit in effect, in bytes (the default resolved). */
DD_API int64_t dd_limits_max_bytes(void);

#ifdef __cplusplus
}
#endif
#endif
