/* distill — image utilities: antialiased resize, crop, (de)normalization,
 * atomic PNG/JPEG file writing (through base/fs) and the tiled PNG grid.
 * JPEG codec: image_jpeg.c. */
#define _POSIX_C_SOURCE 200809L
#include "distill/image.h"
#include "distill/limits.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fs.h"

/* ---- resize ------------------------------------------------------------ */

/* Contributions of source pixels to each output pixel along one axis. */
typedef struct axis_weights {
    int taps;   /* max source pixels per output pixel */
    int *first; /* [out] first source index */
    int *count; /* [out] number of taps used */
    float *w;   /* [out * taps] normalized weights */
} axis_weights;

static void axis_weights_free(axis_weights *a) {
    free(a->first);
    free(a->count);
    free(a->w);
}

static float triangle(float x) {
    x = fabsf(x);
    return x < 1.0f ? 1.0f - x : 0.0f;
}

static dd_status axis_weights_make(int in, int out, axis_weights *a) {
    memset(a, 0, sizeof *a);
    double scale = (double)in / out;
    // Shrinking widens the triangle by the scale so every source pixel
    // contributes (antialiasing); growing keeps support 1 (bilinear).
    double support = scale > 1.0 ? scale : 1.0;
    a->taps = (int)ceil(support) * 2 + 1;
    a->first = malloc(sizeof(int) * (size_t)out);
    a->count = malloc(sizeof(int) * (size_t)out);
    a->w = malloc(sizeof(float) * (size_t)out * (size_t)a->taps);
    if (!a->first || !a->count || !a->w) {
        axis_weights_free(a);
        return dd_error_set(DD_ERR_NOMEM, "image resize: out of memory for %d→%d weights", in, out);
    }
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)floor(center - support);
        int hi = (int)ceil(center + support);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        float *w = a->w + (size_t)i * a->taps;
        int n = 0;
        double sum = 0.0;
        for (int j = lo; j < hi && n < a->taps; j++) {
            float v = triangle((float)(((j + 0.5) - center) / support));
            w[n++] = v;
            sum += v;
        }
        // Trim zero-weight taps at both ends.
        int start = 0;
        while (start < n - 1 && w[start] == 0.0f)
            start++;
        while (n - 1 > start && w[n - 1] == 0.0f)
            n--;
        if (sum <= 0.0) { // cannot happen for in ≥ 1, but keep the output defined
            w[0] = 1.0f;
            start = 0;
            n = 1;
            sum = 1.0;
            lo = (int)fmin(fmax(floor(center), 0), in - 1);
        }
        for (int k = start; k < n; k++)
            w[k - start] = (float)(w[k] / sum);
        a->first[i] = lo + start;
        a->count[i] = n - start;
    }
    return DD_OK;
}

static dd_status check_dims(const char *what, int w, int h, int c) {
    if (w <= 0 || h <= 0 || w > DD_IMAGE_MAX_DIM || h > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "%s: bad image size %dx%d", what, w, h);
    if (c < 1 || c > 4) return dd_error_set(DD_ERR_INVALID, "%s: bad channel count %d", what, c);
    return DD_OK;
}

/* Separable resize on a generic layout: element (c, y, x) lives at
 * c*cs + y*ys + x*xs. The horizontal pass goes to a float scratch image. */
static dd_status resize_generic(const void *src, int is_u8, int sw, int sh, int ch, size_t s_cs,
                                size_t s_ys, size_t s_xs, void *dst, int dw, int dh, size_t d_cs,
                                size_t d_ys, size_t d_xs) {
    axis_weights ax, ay;
    DD_TRY(axis_weights_make(sw, dw, &ax));
    dd_status st = axis_weights_make(sh, dh, &ay);
    if (st != DD_OK) {
        axis_weights_free(&ax);
        return st;
    }
    // tmp: ch planes of sh × dw floats
    float *tmp = malloc(sizeof(float) * (size_t)ch * sh * dw);
    if (!tmp) {
        axis_weights_free(&ax);
        axis_weights_free(&ay);
        return dd_error_set(DD_ERR_NOMEM, "image resize: out of memory");
    }
    const uint8_t *s8 = src;
    const float *sf = src;
    for (int c = 0; c < ch; c++) {
        for (int y = 0; y < sh; y++) {
            float *trow = tmp + ((size_t)c * sh + y) * dw;
            size_t base = c * s_cs + y * s_ys;
            for (int x = 0; x < dw; x++) {
                const float *w = ax.w + (size_t)x * ax.taps;
                int f = ax.first[x], n = ax.count[x];
                float acc = 0.0f;
                if (is_u8)
                    for (int k = 0; k < n; k++)
                        acc += w[k] * s8[base + (size_t)(f + k) * s_xs];
                else
                    for (int k = 0; k < n; k++)
                        acc += w[k] * sf[base + (size_t)(f + k) * s_xs];
                trow[x] = acc;
            }
        }
    }
    uint8_t *d8 = dst;
    float *df = dst;
    for (int c = 0; c < ch; c++) {
        const float *plane = tmp + (size_t)c * sh * dw;
        for (int y = 0; y < dh; y++) {
            const float *w = ay.w + (size_t)y * ay.taps;
            int f = ay.first[y], n = ay.count[y];
            for (int x = 0; x < dw; x++) {
                float acc = 0.0f;
                for (int k = 0; k < n; k++)
                    acc += w[k] * plane[(size_t)(f + k) * dw + x];
                size_t o = c * d_cs + y * d_ys + x * d_xs;
                if (is_u8) {
                    float r = roundf(acc);
                    d8[o] = (uint8_t)(r < 0.0f ? 0.0f : r > 255.0f ? 255.0f : r);
                } else {
                    df[o] = acc;
                }
            }
        }
    }
    free(tmp);
    axis_weights_free(&ax);
    axis_weights_free(&ay);
    return DD_OK;
}

dd_status dd_image_resize_u8(const uint8_t *src, int src_w, int src_h, int channels, uint8_t *dst,
                             int dst_w, int dst_h) {
    DD_TRY(check_dims("image resize (source)", src_w, src_h, channels));
    DD_TRY(check_dims("image resize (target)", dst_w, dst_h, channels));
    if (src_w == dst_w && src_h == dst_h) {
        memcpy(dst, src, (size_t)src_w * src_h * channels);
        return DD_OK;
    }
    size_t c = (size_t)channels;
    return resize_generic(src, 1, src_w, src_h, channels, 1, (size_t)src_w * c, c, dst, dst_w,
                          dst_h, 1, (size_t)dst_w * c, c);
}

dd_status dd_image_resize_f32(const float *src, int src_w, int src_h, int channels, float *dst,
                              int dst_w, int dst_h) {
    DD_TRY(check_dims("image resize (source)", src_w, src_h, channels));
    DD_TRY(check_dims("image resize (target)", dst_w, dst_h, channels));
    if (src_w == dst_w && src_h == dst_h) {
        memcpy(dst, src, sizeof(float) * (size_t)src_w * src_h * channels);
        return DD_OK;
    }
    return resize_generic(src, 0, src_w, src_h, channels, (size_t)src_w * src_h, (size_t)src_w, 1,
                          dst, dst_w, dst_h, (size_t)dst_w * dst_h, (size_t)dst_w, 1);
}

/* ---- crop and normalization --------------------------------------------- */

dd_status dd_image_crop_u8(const uint8_t *src, int width, int height, int channels, int x, int y,
                           int crop_w, int crop_h, uint8_t *dst) {
    DD_TRY(check_dims("image crop", width, height, channels));
    if (crop_w <= 0 || crop_h <= 0 || x < 0 || y < 0 || x > width - crop_w || y > height - crop_h)
        return dd_error_set(DD_ERR_INVALID,
                            "image crop: rectangle %dx%d at (%d,%d) is not inside the %dx%d image",
                            crop_w, crop_h, x, y, width, height);
    size_t row = (size_t)crop_w * channels;
    for (int r = 0; r < crop_h; r++)
        memcpy(dst + (size_t)r * row, src + ((size_t)(y + r) * width + x) * channels, row);
    return DD_OK;
}

void dd_image_normalize(const uint8_t *src, int width, int height, int channels, const float *mean,
                        const float *std, float *dst) {
    size_t hw = (size_t)width * height;
    for (int c = 0; c < channels; c++) {
        float m = mean ? mean[c] : 0.0f;
        float inv = 1.0f / (std ? std[c] : 1.0f);
        float *plane = dst + (size_t)c * hw;
        for (size_t i = 0; i < hw; i++)
            plane[i] = (src[i * channels + c] * (1.0f / 255.0f) - m) * inv;
    }
}

static uint8_t to_u8(float v) {
    if (!(v > 0.0f)) return 0; // also NaN
    if (v >= 255.0f) return 255;
    return (uint8_t)lrintf(v);
}

void dd_image_denormalize(const float *src, int width, int height, int channels, const float *mean,
                          const float *std, uint8_t *dst) {
    size_t hw = (size_t)width * height;
    for (int c = 0; c < channels; c++) {
        float m = mean ? mean[c] : 0.0f;
        float s = std ? std[c] : 1.0f;
        const float *plane = src + (size_t)c * hw;
        for (size_t i = 0; i < hw; i++)
            dst[i * channels + c] = to_u8(255.0f * (plane[i] * s + m));
    }
}

/* ---- file output (atomic: base/fs) ----------------------------------------- */

dd_status dd_image_write_jpeg_file(const char *path, const uint8_t *pixels, int width, int height,
                                   int channels, int quality) {
    uint8_t *buf = NULL;
    size_t len = 0;
    dd_status st = dd_image_encode_jpeg(pixels, width, height, channels, quality, &buf, &len);
    if (st != DD_OK) {
        dd_error_prefix("%s", path);
        return st;
    }
    st = dd_fs_write_file(path, buf, len);
    free(buf);
    return st;
}

/* ---- PNG ----------------------------------------------------------------- */

dd_status dd_image_write_png(const char *path, int width, int height, int channels,
                             const uint8_t *pixels) {
    if (!path || !pixels) return dd_error_set(DD_ERR_INVALID, "write png: NULL argument");
    if (channels != 1 && channels != 3)
        return dd_error_set(DD_ERR_UNSUPPORTED, "%s: PNG writer takes 1 or 3 channels, not %d",
                            path, channels);
    if (width <= 0 || height <= 0 || width > DD_IMAGE_MAX_DIM * 4 || height > DD_IMAGE_MAX_DIM * 4)
        return dd_error_set(DD_ERR_INVALID, "%s: bad PNG size %dx%d", path, width, height);
    dd_fs_atomic out;
    DD_TRY(dd_fs_atomic_open(&out, path));
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)width;
    img.height = (png_uint_32)height;
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    if (!png_image_write_to_stdio(&img, out.f, 0, pixels, 0, NULL)) {
        dd_status st = dd_error_set(DD_ERR_IO, "%s: libpng: %s", path, img.message);
        png_image_free(&img);
        dd_fs_atomic_abort(&out);
        return st;
    }
    png_image_free(&img);
    return dd_fs_atomic_commit(&out);
}

dd_status dd_image_read_png(const char *path, uint8_t **pixels, int *width, int *height,
                            int *channels) {
    *pixels = NULL;
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (access(path, F_OK) != 0)
        return dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    if (!png_image_begin_read_from_file(&img, path))
        return dd_error_set(DD_ERR_PARSE, "%s: libpng: %s", path, img.message);
    int c = (img.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
    img.format = c == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    // the header's size is checked before the pixels are allocated
    dd_status lim = dd_limits_check_image(path, img.width, img.height);
    if (lim != DD_OK) {
        png_image_free(&img);
        return lim;
    }
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf) {
        png_image_free(&img);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        dd_status st = dd_error_set(DD_ERR_PARSE, "%s: libpng: %s", path, img.message);
        png_image_free(&img);
        free(buf);
        return st;
    }
    *pixels = buf;
    *width = (int)img.width;
    *height = (int)img.height;
    *channels = c;
    png_image_free(&img);
    return DD_OK;
}

dd_status dd_image_grid_png(const char *path, const float *images, int n, int channels, int height,
                            int width, const float *mean, const float *std, int rows, int cols,
                            int scale) {
    if (!path || (!images && n > 0))
        return dd_error_set(DD_ERR_INVALID, "image grid: NULL argument");
    if (channels != 1 && channels != 3)
        return dd_error_set(DD_ERR_UNSUPPORTED, "%s: image grid takes 1 or 3 channels, not %d",
                            path, channels);
    if (n <= 0 || height <= 0 || width <= 0 || scale < 1 || rows < 0 || cols < 0 ||
        height > DD_IMAGE_MAX_DIM || width > DD_IMAGE_MAX_DIM || scale > 64)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: image grid: bad arguments (n=%d, %dx%d, scale %d, %dx%d grid)",
                            path, n, width, height, scale, rows, cols);
    if (rows == 0 && cols == 0) {
        cols = (int)ceil(sqrt((double)n));
        rows = (n + cols - 1) / cols;
    } else if (rows == 0) {
        rows = (n + cols - 1) / cols;
    } else if (cols == 0) {
        cols = (n + rows - 1) / rows;
    }
    if ((int64_t)rows * cols < n)
        return dd_error_set(DD_ERR_INVALID, "%s: image grid: %d images do not fit %dx%d cells",
                            path, n, rows, cols);
    int tw = width * scale, th = height * scale;
    int64_t gw = (int64_t)cols * tw + (int64_t)(cols - 1) * DD_IMAGE_GRID_SEP;
    int64_t gh = (int64_t)rows * th + (int64_t)(rows - 1) * DD_IMAGE_GRID_SEP;
    if (gw > DD_IMAGE_MAX_DIM * 4 || gh > DD_IMAGE_MAX_DIM * 4)
        return dd_error_set(DD_ERR_INVALID, "%s: image grid too large (%lldx%lld)", path,
                            (long long)gw, (long long)gh);
    size_t c = (size_t)channels;
    uint8_t *grid = malloc((size_t)gw * gh * c);
    uint8_t *tile = malloc((size_t)width * height * c);
    if (!grid || !tile) {
        free(grid);
        free(tile);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory for the image grid", path);
    }
    memset(grid, 255, (size_t)gw * gh * c);
    size_t img_size = c * height * width;
    for (int cell = 0; cell < rows * cols; cell++) {
        int r = cell / cols, col = cell % cols;
        size_t x0 = (size_t)col * (tw + DD_IMAGE_GRID_SEP);
        size_t y0 = (size_t)r * (th + DD_IMAGE_GRID_SEP);
        if (cell < n)
            dd_image_denormalize(images + (size_t)cell * img_size, width, height, channels, mean,
                                 std, tile);
        else
            memset(tile, 0, (size_t)width * height * c);
        for (int y = 0; y < th; y++) {
            uint8_t *out = grid + ((y0 + y) * (size_t)gw + x0) * c;
            const uint8_t *in = tile + (size_t)(y / scale) * width * c;
            for (int x = 0; x < tw; x++)
                memcpy(out + (size_t)x * c, in + (size_t)(x / scale) * c, c);
        }
    }
    free(tile);
    dd_status st = dd_image_write_png(path, (int)gw, (int)gh, channels, grid);
    free(grid);
    return st;
}
