/* distill — image utilities shared by the core and the dataset readers:
 * JPEG decode/encode (libjpeg-turbo), antialiased resize, crop, (de)normalization
 * and PNG writing (libpng), including the tiled grid the report shows. */
#ifndef DISTILL_IMAGE_H
#define DISTILL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest width or height any image function accepts (guards against hostile headers). */
#define DD_IMAGE_MAX_DIM 32768

/** Decodes a JPEG held in memory to 8-bit RGB, interleaved HWC (row-major,
 * 3 bytes per pixel). Grayscale and CMYK/YCCK JPEGs are converted to RGB.
 * A corrupt or truncated stream returns DD_ERR_PARSE with `what` (a file name
 * for the message; NULL → "<memory>") and libjpeg's reason; it never exits.
 * On success *pixels is malloc'ed (caller frees with free()), *width and
 * *height are set. On failure *pixels is NULL. */
DD_API dd_status dd_image_decode_jpeg(const uint8_t *buf, size_t len, const char *what,
                                      uint8_t **pixels, int *width, int *height);

/** Reads and decodes a JPEG file (see dd_image_decode_jpeg). DD_ERR_NOT_FOUND
 * if the file is missing, DD_ERR_IO if unreadable, DD_ERR_PARSE if corrupt;
 * every message names `path`. */
DD_API dd_status dd_image_read_jpeg_file(const char *path, uint8_t **pixels, int *width,
                                         int *height);

/** Encodes interleaved 8-bit pixels (channels 1 = gray, 3 = RGB) as a baseline
 * JPEG of the given quality (1..100); quality ≥ 90 keeps full-resolution
 * chroma (4:4:4), lower qualities subsample it (4:2:0). *buf is malloc'ed (caller frees with
 * free()), *len its size. */
DD_API dd_status dd_image_encode_jpeg(const uint8_t *pixels, int width, int height, int channels,
                                      int quality, uint8_t **buf, size_t *len);

/** Encodes (dd_image_encode_jpeg) and writes a JPEG file atomically. */
DD_API dd_status dd_image_write_jpeg_file(const char *path, const uint8_t *pixels, int width,
                                          int height, int channels, int quality);

/** Resizes interleaved 8-bit HWC pixels (any channel count 1..4) from
 * src_w×src_h to dst_w×dst_h. Along an axis that shrinks, each output pixel is
 * a triangle-filter average whose support is widened by the scale factor
 * (antialiased: a 1-px checkerboard shrunk by an even factor becomes flat
 * gray); along an axis that grows, it is bilinear. Weights are renormalized at
 * the borders, so a constant image stays constant. Same size copies.
 * `dst` holds dst_w*dst_h*channels bytes and must not overlap `src`. */
DD_API dd_status dd_image_resize_u8(const uint8_t *src, int src_w, int src_h, int channels,
                                    uint8_t *dst, int dst_w, int dst_h);

/** The same filter on float planes (CHW: `channels` planes of src_h×src_w). */
DD_API dd_status dd_image_resize_f32(const float *src, int src_w, int src_h, int channels,
                                     float *dst, int dst_w, int dst_h);

/** Copies the rectangle [x, x+crop_w) × [y, y+crop_h) of an interleaved HWC
 * image into `dst` (crop_w*crop_h*channels bytes). DD_ERR_INVALID if the
 * rectangle is empty or not inside the image. */
DD_API dd_status dd_image_crop_u8(const uint8_t *src, int width, int height, int channels, int x,
                                  int y, int crop_w, int crop_h, uint8_t *dst);

/** Interleaved uint8 HWC → planar float CHW:
 * dst[c][y][x] = (src[y][x][c] / 255 - mean[c]) / std[c].
 * mean/std hold `channels` values; NULL means 0 / 1. */
DD_API void dd_image_normalize(const uint8_t *src, int width, int height, int channels,
                               const float *mean, const float *std, float *dst);

/** Inverse of dd_image_normalize: planar float CHW → interleaved uint8 HWC,
 * value = round(255 * (v * std[c] + mean[c])) clipped to [0, 255]. NaN maps to 0. */
DD_API void dd_image_denormalize(const float *src, int width, int height, int channels,
                                 const float *mean, const float *std, uint8_t *dst);

/** Writes interleaved 8-bit pixels (channels 1 = gray, 3 = RGB) as a PNG.
 * Atomic: the data goes to a temporary file in the same directory, which is
 * renamed over `path` only when complete. Errors name `path`. */
DD_API dd_status dd_image_write_png(const char *path, int width, int height, int channels,
                                    const uint8_t *pixels);

/** Reads an 8-bit gray, gray+alpha, RGB or RGBA PNG (palette and 16-bit are
 * converted to 8-bit; alpha is dropped). *pixels is malloc'ed interleaved HWC
 * (caller frees with free()), *channels is 1 or 3. */
DD_API dd_status dd_image_read_png(const char *path, uint8_t **pixels, int *width, int *height,
                                   int *channels);

/** Separator between tiles of dd_image_grid_png, in output pixels. */
#define DD_IMAGE_GRID_SEP 2

/** Tiles `n` normalized images (float CHW each, `channels` 1 or 3, h×w, as in
 * dd_dataset) into a rows×cols grid and writes it as a PNG (atomically):
 * each image is de-normalized with mean/std (NULL → 0 / 1) and clipped to
 * [0, 255], upscaled by `scale` (nearest neighbour, ≥ 1), and tiles are
 * separated by DD_IMAGE_GRID_SEP white pixels. Images fill the grid row by
 * row; unused cells are black. rows = cols = 0 picks a near-square grid;
 * one of them 0 is derived from the other. DD_ERR_INVALID if rows*cols < n. */
DD_API dd_status dd_image_grid_png(const char *path, const float *images, int n, int channels,
                                   int height, int width, const float *mean, const float *std,
                                   int rows, int cols, int scale);

#ifdef __cplusplus
}
#endif
#endif
