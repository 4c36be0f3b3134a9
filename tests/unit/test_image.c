/* distill tests — core image utilities: resize, crop, (de)normalization,
 * JPEG codec and its error guard, PNG writer/reader and the PNG grid. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "distill/limits.h"
#include "distill/tensor.h"
#include "readers_gen.h"

static void test_resize_constant(void **state) {
    (void)state;
    const int sizes[][4] = {{37, 23, 10, 7}, {8, 8, 29, 31}, {100, 3, 7, 9},
                            {5, 5, 5, 5},    {1, 1, 4, 3},   {64, 48, 63, 47}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int sw = sizes[t][0], sh = sizes[t][1], dw = sizes[t][2], dh = sizes[t][3];
        uint8_t *src = malloc((size_t)sw * sh * 3), *dst = malloc((size_t)dw * dh * 3);
        for (int i = 0; i < sw * sh; i++) {
            src[3 * i] = 17;
            src[3 * i + 1] = 200;
            src[3 * i + 2] = 255;
        }
        assert_int_equal(dd_image_resize_u8(src, sw, sh, 3, dst, dw, dh), DD_OK);
        for (int i = 0; i < dw * dh; i++) {
            assert_int_equal(dst[3 * i], 17);
            assert_int_equal(dst[3 * i + 1], 200);
            assert_int_equal(dst[3 * i + 2], 255);
        }
        float *fs = malloc(sizeof(float) * (size_t)sw * sh * 2),
              *fd = malloc(sizeof(float) * (size_t)dw * dh * 2);
        for (int i = 0; i < sw * sh; i++) {
            fs[i] = -0.75f;
            fs[sw * sh + i] = 3.5f;
        }
        assert_int_equal(dd_image_resize_f32(fs, sw, sh, 2, fd, dw, dh), DD_OK);
        for (int i = 0; i < dw * dh; i++) {
            assert_float_equal(fd[i], -0.75f, 1e-5);
            assert_float_equal(fd[dw * dh + i], 3.5f, 1e-5);
        }
        free(src);
        free(dst);
        free(fs);
        free(fd);
    }
}

static void test_resize_checkerboard_antialiased(void **state) {
    (void)state;
    enum { N = 96 };
    uint8_t src[N * N];
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            src[y * N + x] = ((x + y) & 1) ? 255 : 0;
    // An even factor: every output pixel sees black and white in equal weight.
    uint8_t even[24 * 24];
    assert_int_equal(dd_image_resize_u8(src, N, N, 1, even, 24, 24), DD_OK);
    for (int i = 0; i < 24 * 24; i++)
        assert_in_range(even[i], 127, 128);
    // A non-integer factor: close to gray (point sampling would give 0 or 255).
    const int odd_sizes[] = {10, 13, 31, 47};
    for (size_t t = 0; t < sizeof odd_sizes / sizeof odd_sizes[0]; t++) {
        int m = odd_sizes[t];
        uint8_t *dst = malloc((size_t)m * m);
        assert_int_equal(dd_image_resize_u8(src, N, N, 1, dst, m, m), DD_OK);
        double sum = 0;
        for (int i = 0; i < m * m; i++) {
            assert_in_range(dst[i], 127 - 20, 128 + 20);
            sum += dst[i];
        }
        assert_float_equal(sum / (m * m), 127.5, 2.0);
        free(dst);
    }
}

static void test_resize_bilinear_upsampling(void **state) {
    (void)state;
    const uint8_t src[2] = {0, 255};
    uint8_t dst[4];
    assert_int_equal(dd_image_resize_u8(src, 2, 1, 1, dst, 4, 1), DD_OK);
    // Output centres map to source x = 0.25, 0.75, 1.25, 1.75 (in pixel units
    // with centres at 0.5, 1.5): clamp, 1/4, 3/4, clamp.
    assert_int_equal(dst[0], 0);
    assert_int_equal(dst[1], 64);
    assert_int_equal(dst[2], 191);
    assert_int_equal(dst[3], 255);
    float fs[2] = {0.0f, 1.0f}, fd[4];
    assert_int_equal(dd_image_resize_f32(fs, 2, 1, 1, fd, 4, 1), DD_OK);
    assert_float_equal(fd[1], 0.25f, 1e-6);
    assert_float_equal(fd[2], 0.75f, 1e-6);
}

static void test_resize_rejects_bad_sizes(void **state) {
    (void)state;
    uint8_t px[4] = {0}, out[4];
    assert_int_equal(dd_image_resize_u8(px, 0, 2, 1, out, 2, 2), DD_ERR_INVALID);
    assert_int_equal(dd_image_resize_u8(px, 2, 2, 1, out, 2, -1), DD_ERR_INVALID);
    assert_int_equal(dd_image_resize_u8(px, 2, 2, 5, out, 2, 2), DD_ERR_INVALID);
}

static void test_crop(void **state) {
    (void)state;
    uint8_t img[5 * 4 * 3];
    for (int i = 0; i < 60; i++)
        img[i] = (uint8_t)i;
    uint8_t out[2 * 3 * 3];
    assert_int_equal(dd_image_crop_u8(img, 5, 4, 3, 2, 1, 2, 3, out), DD_OK);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 2; x++)
            for (int c = 0; c < 3; c++)
                assert_int_equal(out[(y * 2 + x) * 3 + c], img[((y + 1) * 5 + x + 2) * 3 + c]);
    assert_int_equal(dd_image_crop_u8(img, 5, 4, 3, 4, 0, 2, 1, out), DD_ERR_INVALID);
    assert_int_equal(dd_image_crop_u8(img, 5, 4, 3, 0, 0, 0, 1, out), DD_ERR_INVALID);
    assert_int_equal(dd_image_crop_u8(img, 5, 4, 3, -1, 0, 1, 1, out), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "not inside"));
}

static void test_normalize_round_trip(void **state) {
    (void)state;
    enum { W = 16, H = 16 };
    uint8_t src[W * H * 3], back[W * H * 3];
    float chw[3 * W * H];
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++)
            src[3 * i + c] = (uint8_t)((i + 85 * c) & 0xFF);
    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, std[3] = {0.2470f, 0.2435f, 0.2616f};
    dd_image_normalize(src, W, H, 3, mean, std, chw);
    // planar layout and the formula
    assert_float_equal(chw[1 * W * H + 5], (src[3 * 5 + 1] / 255.0f - mean[1]) / std[1], 1e-5);
    dd_image_denormalize(chw, W, H, 3, mean, std, back);
    assert_memory_equal(src, back, sizeof src);
    // clipping and NaN
    float odd[4] = {-100.0f, 100.0f, NAN, 0.5f};
    uint8_t o[4];
    dd_image_denormalize(odd, 4, 1, 1, NULL, NULL, o);
    assert_int_equal(o[0], 0);
    assert_int_equal(o[1], 255);
    assert_int_equal(o[2], 0);
    assert_int_equal(o[3], 128);
}

static void gradient(uint8_t *px, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            px[(y * w + x) * 3] = (uint8_t)(x * 255 / (w - 1));
            px[(y * w + x) * 3 + 1] = (uint8_t)(y * 255 / (h - 1));
            px[(y * w + x) * 3 + 2] = 100;
        }
}

static void test_jpeg_round_trip(void **state) {
    (void)state;
    enum { W = 64, H = 48 };
    uint8_t px[W * H * 3];
    gradient(px, W, H);
    uint8_t *buf = NULL, *dec = NULL;
    size_t len = 0;
    int w = 0, h = 0;
    assert_int_equal(dd_image_encode_jpeg(px, W, H, 3, 95, &buf, &len), DD_OK);
    assert_true(len > 100 && len < (size_t)W * H * 3);
    assert_int_equal(dd_image_decode_jpeg(buf, len, "mem.jpg", &dec, &w, &h), DD_OK);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    double err = 0;
    int worst = 0;
    for (int i = 0; i < W * H * 3; i++) {
        int d = abs((int)dec[i] - (int)px[i]);
        err += d;
        if (d > worst) worst = d;
    }
    assert_true(err / (W * H * 3) < 2.0);
    assert_true(worst < 24);
    free(dec);
    free(buf);

    // Grayscale JPEGs decode to RGB with three equal channels.
    uint8_t gray[W * H];
    for (int i = 0; i < W * H; i++)
        gray[i] = (uint8_t)(i % 251);
    assert_int_equal(dd_image_encode_jpeg(gray, W, H, 1, 90, &buf, &len), DD_OK);
    assert_int_equal(dd_image_decode_jpeg(buf, len, NULL, &dec, &w, &h), DD_OK);
    for (int i = 0; i < W * H; i++) {
        assert_int_equal(dec[3 * i], dec[3 * i + 1]);
        assert_int_equal(dec[3 * i], dec[3 * i + 2]);
    }
    free(dec);
    free(buf);
}

static void test_jpeg_corrupt_never_crashes(void **state) {
    (void)state;
    enum { W = 40, H = 30 };
    uint8_t px[W * H * 3];
    gradient(px, W, H);
    uint8_t *buf = NULL, *dec = NULL;
    size_t len = 0;
    int w, h;
    assert_int_equal(dd_image_encode_jpeg(px, W, H, 3, 90, &buf, &len), DD_OK);

    // truncated at many points: always a parse error naming the file
    for (size_t cut = 0; cut < len; cut += len / 37 + 1) {
        dd_status st = dd_image_decode_jpeg(buf, cut, "cut.jpg", &dec, &w, &h);
        assert_int_equal(st, DD_ERR_PARSE);
        assert_null(dec);
        assert_non_null(strstr(dd_error_message(), "cut.jpg"));
    }
    // truncated with an end-of-image marker appended, so libjpeg sees a
    // premature end of the entropy-coded data rather than of the file: still
    // refused (it used to decode, grey-filled)
    uint8_t *eoi = malloc(len + 2);
    assert_non_null(eoi);
    size_t sos = 2;
    while (sos + 1 < len && !(buf[sos] == 0xFF && buf[sos + 1] == 0xDA))
        sos++;
    assert_true(sos + 40 < len);
    for (size_t cut = sos + 20; cut + 2 < len; cut += (len - sos) / 7 + 1) {
        memcpy(eoi, buf, cut);
        eoi[cut] = 0xFF;
        eoi[cut + 1] = 0xD9;
        dd_status st = dd_image_decode_jpeg(eoi, cut + 2, "eoi.jpg", &dec, &w, &h);
        if (st != DD_ERR_PARSE) fail_msg("cut at %zu of %zu with EOI decoded", cut, len);
        assert_null(dec);
        if (!strstr(dd_error_message(), "eoi.jpg: truncated JPEG"))
            fail_msg("cut at %zu: %s", cut, dd_error_message());
    }
    free(eoi);
    // not a JPEG at all
    const char *text = "<html>not an image</html>";
    assert_int_equal(
        dd_image_decode_jpeg((const uint8_t *)text, strlen(text), "x.jpg", &dec, &w, &h),
        DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), "x.jpg"));
    // corrupted header fields and random byte flips: an error or a decoded image, never a crash
    uint8_t *copy = malloc(len);
    dd_rng rng = dd_rng_make(7, 0);
    int errors = 0;
    for (int trial = 0; trial < 300; trial++) {
        memcpy(copy, buf, len);
        int flips = 1 + (int)dd_rng_below(&rng, 4);
        for (int f = 0; f < flips; f++)
            copy[2 + dd_rng_below(&rng, len - 2)] = (uint8_t)dd_rng_u64(&rng);
        dd_status st = dd_image_decode_jpeg(copy, len, "flip.jpg", &dec, &w, &h);
        if (st == DD_OK) {
            assert_non_null(dec);
            assert_true(w > 0 && h > 0);
            free(dec);
        } else {
            // a flipped size field may also claim a size beyond the limits
            assert_true(st == DD_ERR_PARSE || st == DD_ERR_LIMIT);
            assert_non_null(strstr(dd_error_message(), "flip.jpg"));
            errors++;
        }
    }
    assert_true(errors > 0);
    free(copy);
    free(buf);
}

/* Sets the size fields of the first SOF0 segment of a baseline JPEG. */
static void patch_sof(uint8_t *buf, size_t len, unsigned w, unsigned h) {
    size_t i = 2;
    while (i + 9 < len && !(buf[i] == 0xFF && buf[i + 1] == 0xC0))
        i++;
    assert_true(i + 9 < len);
    buf[i + 5] = (uint8_t)(h >> 8);
    buf[i + 6] = (uint8_t)h;
    buf[i + 7] = (uint8_t)(w >> 8);
    buf[i + 8] = (uint8_t)w;
}

/* A 1 KB JPEG whose header claims a huge size is refused from its header,
 * before anything is decoded (it used to decode for seconds into gigabytes),
 * and the message names the option that raises the limit. */
static void test_jpeg_size_limits(void **state) {
    (void)state;
    enum { W = 16, H = 16 };
    uint8_t px[W * H * 3];
    gradient(px, W, H);
    uint8_t *buf = NULL, *dec = NULL;
    size_t len = 0;
    int w = 0, h = 0;
    assert_int_equal(dd_image_encode_jpeg(px, W, H, 3, 90, &buf, &len), DD_OK);
    assert_true(len < 2048);

    patch_sof(buf, len, 32768, 32768);
    assert_int_equal(dd_image_decode_jpeg(buf, len, "huge.jpg", &dec, &w, &h), DD_ERR_LIMIT);
    assert_null(dec);
    assert_non_null(strstr(dd_error_message(), "huge.jpg"));
    assert_non_null(strstr(dd_error_message(), "dataset.max_image_dim"));

    patch_sof(buf, len, 12000, 12000); // within the side limit, above the pixel limit
    assert_int_equal(dd_image_decode_jpeg(buf, len, "wide.jpg", &dec, &w, &h), DD_ERR_LIMIT);
    assert_non_null(strstr(dd_error_message(), "dataset.max_image_pixels"));

    // a lowered limit refuses an ordinary image; restoring the defaults accepts it
    patch_sof(buf, len, W, H);
    dd_limits_set(8, 0, 0);
    assert_int_equal(dd_image_decode_jpeg(buf, len, "small.jpg", &dec, &w, &h), DD_ERR_LIMIT);
    dd_limits_set(0, 0, 0);
    assert_int_equal(dd_image_decode_jpeg(buf, len, "small.jpg", &dec, &w, &h), DD_OK);
    free(dec);
    free(buf);
}

/* PNG headers are held to the same limits before their pixels are allocated. */
static void test_png_size_limits(void **state) {
    (void)state;
    char *dir;
    assert_int_equal(rg_mkdtemp("pnglim", &dir), DD_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/g.png", dir);
    uint8_t gray[20 * 10];
    memset(gray, 7, sizeof gray);
    assert_int_equal(dd_image_write_png(path, 20, 10, 1, gray), DD_OK);
    uint8_t *back = NULL;
    int w, h, c;
    dd_limits_set(0, 199, 0);
    assert_int_equal(dd_image_read_png(path, &back, &w, &h, &c), DD_ERR_LIMIT);
    assert_null(back);
    assert_non_null(strstr(dd_error_message(), "dataset.max_image_pixels"));
    dd_limits_set(0, 200, 0);
    assert_int_equal(dd_image_read_png(path, &back, &w, &h, &c), DD_OK);
    free(back);
    dd_limits_set(0, 0, 0);
    remove(path);
    rg_rmtree(dir);
    free(dir);
}

/* A decoded split larger than dataset.max_bytes is refused before it is allocated. */
static void test_dataset_size_limit(void **state) {
    (void)state;
    dd_dataset *d = NULL;
    dd_limits_set(0, 0, 1 << 20);
    assert_int_equal(dd_dataset_create("big/train", DD_DTYPE_F32, 1000, 3, 32, 32, 10, &d),
                     DD_ERR_LIMIT);
    assert_null(d);
    assert_non_null(strstr(dd_error_message(), "big/train"));
    assert_non_null(strstr(dd_error_message(), "dataset.max_bytes"));
    assert_int_equal(dd_dataset_create("small/train", DD_DTYPE_F32, 10, 3, 32, 32, 10, &d), DD_OK);
    dd_dataset_destroy(d);
    // The limit counts the stored bytes: 300 images of 3×32×32 take 0.9 MiB
    // as uint8 (allowed) and 3.5 MiB as float32 (refused).
    assert_int_equal(dd_dataset_create("u8/train", DD_DTYPE_U8, 300, 3, 32, 32, 10, &d), DD_OK);
    assert_int_equal(dd_dataset_bytes(d), (size_t)300 * 3 * 32 * 32);
    dd_dataset_destroy(d);
    assert_int_equal(dd_dataset_create("f32/train", DD_DTYPE_F32, 300, 3, 32, 32, 10, &d),
                     DD_ERR_LIMIT);
    dd_limits_set(0, 0, 0);
    assert_true(dd_limits_max_bytes() > (1 << 20));
}

/* The accessor: uint8 images gathered as dd_image_normalize would store them
 * (every byte value, every channel), float32 ones as they are; bad indices
 * are errors; a subset keeps the stored type and bytes. */
static void test_dataset_accessor(void **state) {
    (void)state;
    dd_dataset *d = NULL;
    assert_int_equal(dd_dataset_create("u8", DD_DTYPE_U8, 4, 3, 8, 8, 2, &d), DD_OK);
    assert_int_equal(d->dtype, DD_DTYPE_U8);
    assert_int_equal(dd_dataset_bytes(d), (size_t)4 * 3 * 8 * 8);
    const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2470f, 0.2435f, 0.2616f};
    for (int c = 0; c < 3; c++)
        d->mean[c] = mean[c], d->std[c] = sd[c];
    for (int i = 0; i < 4; i++) {
        uint8_t *px = dd_dataset_u8(d, i);
        assert_non_null(px);
        for (int k = 0; k < 192; k++)
            px[k] = (uint8_t)((i * 192 + k * 7) % 256); // 768 values: every byte in every channel
        d->labels[i] = i % 2;
    }
    assert_null(dd_dataset_f32(d, 0));
    assert_null(dd_dataset_u8(d, 4));
    float got[4 * 192], want[192];
    const int64_t idx[4] = {3, 0, 2, 1};
    assert_int_equal(dd_dataset_gather(d, idx, 4, got), DD_OK);
    for (int j = 0; j < 4; j++) {
        uint8_t hwc[192];
        const uint8_t *chw = dd_dataset_u8(d, idx[j]);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 64; p++)
                hwc[p * 3 + c] = chw[c * 64 + p];
        dd_image_normalize(hwc, 8, 8, 3, mean, sd, want);
        assert_memory_equal(got + j * 192, want, sizeof want);
    }
    float range[2 * 192];
    assert_int_equal(dd_dataset_gather_range(d, 2, 2, range), DD_OK);
    assert_memory_equal(range, got + 2 * 192, 192 * sizeof(float)); // image 2 = idx[2]
    assert_memory_equal(range + 192, got, 192 * sizeof(float));     // image 3 = idx[0]
    const int64_t bad[2] = {1, 4};
    assert_int_equal(dd_dataset_gather(d, bad, 2, got), DD_ERR_INVALID);
    assert_non_null(strstr(dd_error_message(), "image 4"));
    assert_int_equal(dd_dataset_gather_range(d, 3, 2, got), DD_ERR_INVALID);
    assert_int_equal(dd_dataset_gather_range(d, -1, 1, got), DD_ERR_INVALID);
    dd_dataset *sub = NULL;
    const int64_t pick[2] = {2, 2};
    assert_int_equal(dd_dataset_subset(d, pick, 2, "u8/sub", &sub), DD_OK);
    assert_int_equal(sub->dtype, DD_DTYPE_U8);
    assert_int_equal(dd_dataset_bytes(sub), (size_t)2 * 192);
    assert_memory_equal(dd_dataset_u8(sub, 1), dd_dataset_u8(d, 2), 192);
    assert_int_equal(sub->labels[0], 0);
    assert_true(sub->mean[1] == mean[1] && sub->std[2] == sd[2]);
    dd_dataset_destroy(sub);
    dd_dataset_destroy(d);

    // float32: stored normalised, gathered as they are
    assert_int_equal(dd_dataset_create("f32", DD_DTYPE_F32, 3, 1, 2, 2, 2, &d), DD_OK);
    assert_int_equal(dd_dataset_bytes(d), (size_t)3 * 4 * sizeof(float));
    for (int k = 0; k < 12; k++)
        ((float *)d->pixels)[k] = -1.5f + 0.37f * (float)k;
    d->mean[0] = 0.5f, d->std[0] = 0.25f; // describe them; not applied
    const int64_t two[2] = {2, 0};
    assert_int_equal(dd_dataset_gather(d, two, 2, got), DD_OK);
    assert_memory_equal(got, dd_dataset_f32(d, 2), 4 * sizeof(float));
    assert_memory_equal(got + 4, dd_dataset_f32(d, 0), 4 * sizeof(float));
    dd_dataset_destroy(d);
    assert_int_equal(dd_dataset_create("x", (dd_dtype)7, 1, 1, 1, 1, 1, &d), DD_ERR_INVALID);
    assert_null(d);
}

static void test_jpeg_file_errors(void **state) {
    (void)state;
    char *dir;
    assert_int_equal(rg_mkdtemp("img", &dir), DD_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/missing.jpg", dir);
    uint8_t *px = NULL;
    int w, h;
    assert_int_equal(dd_image_read_jpeg_file(path, &px, &w, &h), DD_ERR_NOT_FOUND);
    assert_non_null(strstr(dd_error_message(), path));
    snprintf(path, sizeof path, "%s/empty.jpg", dir);
    assert_int_equal(rg_write_file(path, "", 0), DD_OK);
    assert_int_equal(dd_image_read_jpeg_file(path, &px, &w, &h), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), path));
    // written with the atomic writer, then read back
    uint8_t img[8 * 6 * 3];
    gradient(img, 8, 6);
    snprintf(path, sizeof path, "%s/ok.jpg", dir);
    assert_int_equal(dd_image_write_jpeg_file(path, img, 8, 6, 3, 95), DD_OK);
    assert_int_equal(dd_image_read_jpeg_file(path, &px, &w, &h), DD_OK);
    assert_int_equal(w, 8);
    assert_int_equal(h, 6);
    free(px);
    rg_rmtree(dir);
    free(dir);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void test_png_write_read(void **state) {
    (void)state;
    char *dir;
    assert_int_equal(rg_mkdtemp("png", &dir), DD_OK);
    char path[512];
    enum { W = 13, H = 7 };
    uint8_t rgb[W * H * 3], gray[W * H];
    for (int i = 0; i < W * H * 3; i++)
        rgb[i] = (uint8_t)(i * 13 + 5);
    for (int i = 0; i < W * H; i++)
        gray[i] = (uint8_t)(255 - i);

    snprintf(path, sizeof path, "%s/rgb.png", dir);
    assert_int_equal(dd_image_write_png(path, W, H, 3, rgb), DD_OK);
    uint8_t *back = NULL;
    int w, h, c;
    assert_int_equal(dd_image_read_png(path, &back, &w, &h, &c), DD_OK);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    assert_int_equal(c, 3);
    assert_memory_equal(back, rgb, sizeof rgb);
    free(back);
    // overwrite in place with a grayscale image
    assert_int_equal(dd_image_write_png(path, W, H, 1, gray), DD_OK);
    assert_int_equal(dd_image_read_png(path, &back, &w, &h, &c), DD_OK);
    assert_int_equal(c, 1);
    assert_memory_equal(back, gray, sizeof gray);
    free(back);
    // no temporary file left behind, and readable like an ordinary file
    assert_int_equal(count_entries(dir), 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    // errors name the path
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
    assert_int_equal(dd_image_write_png(path, W, H, 3, rgb), DD_ERR_IO);
    assert_non_null(strstr(dd_error_message(), path));
    snprintf(path, sizeof path, "%s/x.png", dir);
    assert_int_equal(dd_image_write_png(path, W, H, 2, rgb), DD_ERR_UNSUPPORTED);
    snprintf(path, sizeof path, "%s/bad.png", dir);
    assert_int_equal(rg_write_text(path, "\x89PNG\r\n\x1a\nnot really"), DD_OK);
    assert_int_equal(dd_image_read_png(path, &back, &w, &h, &c), DD_ERR_PARSE);
    assert_non_null(strstr(dd_error_message(), path));
    rg_rmtree(dir);
    free(dir);
}

static void test_grid_png(void **state) {
    (void)state;
    char *dir;
    assert_int_equal(rg_mkdtemp("grid", &dir), DD_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    enum { N = 3, C = 1, H = 4, W = 5, S = 2 };
    const float mean = 0.2860f, std = 0.3530f;
    float imgs[N * C * H * W];
    uint8_t want[N][H * W];
    for (int n = 0; n < N; n++)
        for (int p = 0; p < H * W; p++) {
            uint8_t v = (uint8_t)(n * 80 + p * 9);
            want[n][p] = v;
            imgs[n * H * W + p] = (v / 255.0f - mean) / std;
        }
    imgs[0] = 100.0f; // clipped to 255
    want[0][0] = 255;
    imgs[1] = -100.0f; // clipped to 0
    want[0][1] = 0;
    assert_int_equal(dd_image_grid_png(path, imgs, N, C, H, W, &mean, &std, 0, 0, S), DD_OK);
    uint8_t *g = NULL;
    int gw, gh, gc;
    assert_int_equal(dd_image_read_png(path, &g, &gw, &gh, &gc), DD_OK);
    // 3 images → 2×2 cells of (W·S)×(H·S) with separators between them
    assert_int_equal(gc, 1);
    assert_int_equal(gw, 2 * W * S + DD_IMAGE_GRID_SEP);
    assert_int_equal(gh, 2 * H * S + DD_IMAGE_GRID_SEP);
    for (int cell = 0; cell < 4; cell++) {
        int x0 = (cell % 2) * (W * S + DD_IMAGE_GRID_SEP),
            y0 = (cell / 2) * (H * S + DD_IMAGE_GRID_SEP);
        for (int y = 0; y < H * S; y++)
            for (int x = 0; x < W * S; x++) {
                int v = g[(y0 + y) * gw + x0 + x];
                int expect = cell < N ? want[cell][(y / S) * W + x / S] : 0;
                assert_int_equal(v, expect);
            }
    }
    for (int y = 0; y < gh; y++)
        for (int s = 0; s < DD_IMAGE_GRID_SEP; s++)
            assert_int_equal(g[y * gw + W * S + s], 255);
    free(g);

    // explicit layout, RGB, and a grid too small for the images
    float rgb[2 * 3 * 2 * 2];
    for (int i = 0; i < 24; i++)
        rgb[i] = (float)i / 23.0f;
    assert_int_equal(dd_image_grid_png(path, rgb, 2, 3, 2, 2, NULL, NULL, 2, 1, 1), DD_OK);
    assert_int_equal(dd_image_read_png(path, &g, &gw, &gh, &gc), DD_OK);
    assert_int_equal(gc, 3);
    assert_int_equal(gw, 2);
    assert_int_equal(gh, 2 * 2 + DD_IMAGE_GRID_SEP);
    // second image, channel 2, pixel (1,1) sits in the bottom cell
    int v = g[((2 + DD_IMAGE_GRID_SEP + 1) * gw + 1) * 3 + 2];
    assert_int_equal(v, (int)lrintf(255.0f * (float)(12 + 2 * 4 + 3) / 23.0f));
    free(g);
    assert_int_equal(dd_image_grid_png(path, rgb, 2, 3, 2, 2, NULL, NULL, 1, 1, 1), DD_ERR_INVALID);
    assert_int_equal(dd_image_grid_png(path, rgb, 2, 2, 2, 2, NULL, NULL, 0, 0, 1),
                     DD_ERR_UNSUPPORTED);
    rg_rmtree(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_constant),
        cmocka_unit_test(test_resize_checkerboard_antialiased),
        cmocka_unit_test(test_resize_bilinear_upsampling),
        cmocka_unit_test(test_resize_rejects_bad_sizes),
        cmocka_unit_test(test_crop),
        cmocka_unit_test(test_normalize_round_trip),
        cmocka_unit_test(test_jpeg_round_trip),
        cmocka_unit_test(test_jpeg_corrupt_never_crashes),
        cmocka_unit_test(test_jpeg_size_limits),
        cmocka_unit_test(test_png_size_limits),
        cmocka_unit_test(test_dataset_size_limit),
        cmocka_unit_test(test_dataset_accessor),
        cmocka_unit_test(test_jpeg_file_errors),
        cmocka_unit_test(test_png_write_read),
        cmocka_unit_test(test_grid_png),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
