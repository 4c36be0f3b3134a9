/* distill — JPEG decode/encode through libjpeg-turbo. libjpeg's fatal errors
 * longjmp back here and become dd_status; its messages never reach stderr. */
#define _POSIX_C_SOURCE 200809L
#include "distill/image.h"
#include "distill/limits.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>

#include "base/fs.h"

typedef struct jpeg_guard {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    char warning[JMSG_LENGTH_MAX];
    int truncated;
} jpeg_guard;

static void guard_error_exit(j_common_ptr cinfo) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    cinfo->err->format_message(cinfo, g->message);
    longjmp(g->jump, 1);
}

static void guard_emit_message(j_common_ptr cinfo, int level) {
    jpeg_guard *g = (jpeg_guard *)cinfo->err;
    if (level >= 0) return; // trace messages
    cinfo->err->num_warnings++;
    // libjpeg pads a truncated stream with gray and only warns; we refuse it,
    // whether the data ends with the file (JWRN_JPEG_EOF) or at a marker,
    // e.g. an end-of-image appended to a cut file (JWRN_HIT_MARKER).
    if (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER)
        g->truncated = 1;
    if (!g->warning[0]) cinfo->err->format_message(cinfo, g->warning);
}

static void guard_output_message(j_common_ptr cinfo) {
    (void)cinfo;
}

static struct jpeg_error_mgr *guard_init(jpeg_guard *g) {
    memset(g, 0, sizeof *g);
    jpeg_std_error(&g->pub);
    g->pub.error_exit = guard_error_exit;
    g->pub.emit_message = guard_emit_message;
    g->pub.output_message = guard_output_message;
    return &g->pub;
}

static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int width, int inverted) {
    for (int x = 0; x < width; x++) {
        unsigned c = in[4 * x], m = in[4 * x + 1], y = in[4 * x + 2], k = in[4 * x + 3];
        // Adobe writes inverted CMYK: stored value = 255 - ink.
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        out[3 * x] = (uint8_t)((c * k + 127) / 255);
        out[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
        out[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

dd_status dd_image_decode_jpeg(const uint8_t *buf, size_t len, const char *name, uint8_t **pixels,
                               int *width, int *height) {
    const char *volatile what = name ? name : "<memory>";
    *pixels = NULL;
    if (!buf || len < 4)
        return dd_error_set(DD_ERR_PARSE, "%s: not a JPEG file (%zu bytes)", what, len);
    if (buf[0] != 0xFF || buf[1] != 0xD8)
        return dd_error_set(DD_ERR_PARSE, "%s: not a JPEG file (no SOI marker)", what);
    if (len > ULONG_MAX) return dd_error_set(DD_ERR_PARSE, "%s: JPEG too large", what);

    struct jpeg_decompress_struct cinfo;
    jpeg_guard guard;
    uint8_t *volatile out = NULL;
    uint8_t *volatile row4 = NULL;
    cinfo.err = guard_init(&guard);
    if (setjmp(guard.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row4);
        return dd_error_set(DD_ERR_PARSE, "%s: corrupt JPEG: %s", what, guard.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    // The header's size is checked before anything is decoded: a 1 KB file
    // may claim 32768×32768 pixels (3 GB, seconds of decoding).
    dd_status lim = dd_limits_check_image(what, cinfo.image_width, cinfo.image_height);
    if (lim != DD_OK) {
        jpeg_destroy_decompress(&cinfo);
        return lim;
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    if (cinfo.output_components != (cmyk ? 4 : 3)) {
        int oc = cinfo.output_components;
        jpeg_destroy_decompress(&cinfo);
        return dd_error_set(DD_ERR_PARSE, "%s: unexpected %d output components", what, oc);
    }
    out = malloc((size_t)w * h * 3);
    if (cmyk) row4 = malloc((size_t)w * 4);
    if (!out || (cmyk && !row4)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row4);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory for a %dx%d image", what, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        unsigned y = cinfo.output_scanline;
        JSAMPROW row = cmyk ? row4 : out + (size_t)y * w * 3;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) break;
        if (cmyk) cmyk_to_rgb(row4, out + (size_t)y * w * 3, w, cinfo.saw_Adobe_marker);
    }
    int complete = cinfo.output_scanline == cinfo.output_height;
    if (complete) jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row4);
    if (!complete || guard.truncated) {
        free(out);
        return dd_error_set(DD_ERR_PARSE, "%s: truncated JPEG (%s)", what,
                            guard.warning[0] ? guard.warning : "missing scanlines");
    }
    *pixels = out;
    *width = w;
    *height = h;
    return DD_OK;
}

dd_status dd_image_read_jpeg_file(const char *path, uint8_t **pixels, int *width, int *height) {
    *pixels = NULL;
    // base/fs reports every open failure as DD_ERR_IO; readers tell a
    // missing image apart from an unreadable one.
    if (access(path, F_OK) != 0 && errno == ENOENT)
        return dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    char *buf;
    size_t len;
    DD_TRY(dd_fs_read_file(path, (size_t)1 << 30, &buf, &len));
    dd_status st = dd_image_decode_jpeg((const uint8_t *)buf, len, path, pixels, width, height);
    free(buf);
    return st;
}

dd_status dd_image_encode_jpeg(const uint8_t *pixels, int width, int height, int channels,
                               int quality, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (!pixels) return dd_error_set(DD_ERR_INVALID, "encode JPEG: NULL pixels");
    if (channels != 1 && channels != 3)
        return dd_error_set(DD_ERR_UNSUPPORTED, "encode JPEG: 1 or 3 channels, not %d", channels);
    if (width <= 0 || height <= 0 || width > DD_IMAGE_MAX_DIM || height > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "encode JPEG: bad size %dx%d", width, height);
    if (quality < 1 || quality > 100)
        return dd_error_set(DD_ERR_INVALID, "encode JPEG: quality %d not in 1..100", quality);

    struct jpeg_compress_struct cinfo;
    jpeg_guard guard;
    // Written by libjpeg through its address, so it is in memory at longjmp time.
    unsigned char *mem = NULL;
    unsigned long mem_size = 0;
    cinfo.err = guard_init(&guard);
    if (setjmp(guard.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(mem);
        return dd_error_set(DD_ERR_INVALID, "encode JPEG: %s", guard.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &mem, &mem_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    // At high quality keep full-resolution chroma (4:4:4): sharp colour edges
    // survive, which the fixtures of the reader tests rely on.
    if (channels == 3 && quality >= 90) {
        cinfo.comp_info[0].h_samp_factor = 1;
        cinfo.comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        // libjpeg's API is not const-correct; it only reads the row.
        JSAMPROW row =
            (JSAMPROW)(uintptr_t)(pixels + (size_t)cinfo.next_scanline * width * channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *buf = mem;
    *len = mem_size;
    return DD_OK;
}
