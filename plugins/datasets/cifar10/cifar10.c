/* distill — dataset reader for CIFAR-10, binary version: records of one label
 * byte and 3×32×32 planar RGB bytes in data_batch_1..5.bin and test_batch.bin,
 * class names in batches.meta.txt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "distill/plugin.h"

#include "reader_common.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_TRAIN_BATCHES 5

static const float cifar_mean[3] = {0.4914f, 0.4822f, 0.4465f};
static const float cifar_std[3] = {0.2470f, 0.2435f, 0.2616f};

/* The archive unpacks to cifar-10-batches-bin/; accept the files at the root too. */
static char *batch_dir(const char *root) {
    char *sub = rd_strf("%s/cifar-10-batches-bin", root);
    if (sub && !rd_is_dir(sub)) {
        free(sub);
        return rd_strf("%s", root);
    }
    return sub;
}

static dd_status read_class_names(const char *dir, char **names) {
    char *path = rd_strf("%s/batches.meta.txt", dir);
    if (!path) return DD_ERR_NOMEM;
    rd_buf b;
    dd_status st = rd_read_file(path, 0, &b);
    free(path);
    if (st != DD_OK) return st;
    rd_lines lines;
    if ((st = rd_split_lines(&b, &lines)) != DD_OK) {
        rd_buf_free(&b);
        return st;
    }
    if (lines.n != CIFAR_CLASSES) {
        st = dd_error_set(DD_ERR_PARSE, "%s: %zu class names, expected %d (one per line)", b.path,
                          lines.n, CIFAR_CLASSES);
    } else {
        for (int k = 0; k < CIFAR_CLASSES && st == DD_OK; k++) {
            names[k] = rd_strf("%s", lines.text[k]);
            if (!names[k]) st = DD_ERR_NOMEM;
        }
    }
    rd_lines_free(&lines);
    rd_buf_free(&b);
    return st;
}

/* Validates one batch file; *records gets its record count. */
static dd_status check_batch(const rd_buf *b, int64_t *records) {
    if (b->len == 0) return dd_error_set(DD_ERR_PARSE, "%s: empty batch file", b->path);
    if (b->len % CIFAR_RECORD != 0)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: size %zu is not a multiple of the %d-byte record (1 label + "
                            "3x32x32 pixels): truncated or not a CIFAR-10 binary batch",
                            b->path, b->len, CIFAR_RECORD);
    int64_t n = (int64_t)(b->len / CIFAR_RECORD);
    for (int64_t i = 0; i < n; i++) {
        uint8_t label = b->data[(size_t)i * CIFAR_RECORD];
        if (label >= CIFAR_CLASSES)
            return dd_error_set(
                DD_ERR_PARSE, "%s: record %lld (byte offset %zu) has label %u, not in 0..%d",
                b->path, (long long)i, (size_t)i * CIFAR_RECORD, label, CIFAR_CLASSES - 1);
    }
    *records = n;
    return DD_OK;
}

/* Reads and checks a split's batch files into bufs (zeroed by the caller, freed
 * by it even on error); counts[f] gets each file's record count, *total their sum. */
static dd_status read_batches(const char *dir, const char *const *files, int n_files, rd_buf *bufs,
                              int64_t *counts, int64_t *total) {
    *total = 0;
    for (int f = 0; f < n_files; f++) {
        char *path = rd_strf("%s/%s", dir, files[f]);
        if (!path) return DD_ERR_NOMEM;
        dd_status st = rd_read_file(path, 1, &bufs[f]);
        free(path);
        DD_TRY(st);
        DD_TRY(check_batch(&bufs[f], &counts[f]));
        *total += counts[f];
    }
    return DD_OK;
}

/* One record's pixels (planar R, G, B planes of 32×32) as a planar oh×ow
 * image in dst. hwc and resized are scratch buffers for resizing (CIFAR_PIXELS
 * and oh×ow×3 bytes); unused, and may be NULL, when the output is 32×32. */
static dd_status record_to_image(const uint8_t *px, int oh, int ow, uint8_t *hwc, uint8_t *resized,
                                 uint8_t *dst) {
    if (oh == CIFAR_SIDE && ow == CIFAR_SIDE) {
        memcpy(dst, px, CIFAR_PIXELS);
        return DD_OK;
    }
    for (int p = 0; p < CIFAR_SIDE * CIFAR_SIDE; p++)
        for (int c = 0; c < 3; c++)
            hwc[p * 3 + c] = px[c * CIFAR_SIDE * CIFAR_SIDE + p];
    DD_TRY(dd_image_resize_u8(hwc, CIFAR_SIDE, CIFAR_SIDE, 3, resized, ow, oh));
    rd_planar_u8(resized, ow, oh, 3, dst);
    return DD_OK;
}

static dd_status load_split(const dd_dataset_request *req, const char *dir,
                            const char *const *files, int n_files, const char *split,
                            const char *const *class_names, int64_t max_images, dd_dataset **out) {
    *out = NULL;
    rd_buf bufs[CIFAR_TRAIN_BATCHES];
    int64_t counts[CIFAR_TRAIN_BATCHES], total = 0;
    memset(bufs, 0, sizeof bufs);
    dd_dataset *d = NULL;
    uint8_t *hwc = NULL, *resized = NULL;
    dd_status st = read_batches(dir, files, n_files, bufs, counts, &total);
    if (st != DD_OK) goto done;
    int64_t n = max_images > 0 && max_images < total ? max_images : total;
    int oh = req->height > 0 ? req->height : CIFAR_SIDE;
    int ow = req->width > 0 ? req->width : CIFAR_SIDE;
    st = rd_dataset_new(req->dataset ? req->dataset : "cifar10", split, DD_DTYPE_U8, n, 3, oh, ow,
                        CIFAR_CLASSES, class_names, cifar_mean, cifar_std, &d);
    if (st != DD_OK) goto done;
    if (oh != CIFAR_SIDE || ow != CIFAR_SIDE) {
        hwc = malloc(CIFAR_PIXELS);
        resized = malloc((size_t)oh * ow * 3);
        if (!hwc || !resized) {
            st = dd_error_set(DD_ERR_NOMEM, "cifar10 reader: out of memory");
            goto done;
        }
    }
    int64_t i = 0;
    for (int f = 0; f < n_files && i < n; f++) {
        for (int64_t r = 0; r < counts[f] && i < n; r++, i++) {
            const uint8_t *rec = bufs[f].data + (size_t)r * CIFAR_RECORD;
            d->labels[i] = rec[0];
            st = record_to_image(rec + 1, oh, ow, hwc, resized, dd_dataset_u8(d, i));
            if (st != DD_OK) goto done;
        }
    }
    *out = d;
    d = NULL;
done:
    dd_dataset_destroy(d);
    free(hwc);
    free(resized);
    for (int f = 0; f < n_files; f++)
        rd_buf_free(&bufs[f]);
    return st;
}

static dd_status cifar_load(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test) {
    *train = *test = NULL;
    if (!req->root) return dd_error_set(DD_ERR_INVALID, "cifar10 reader: no root directory");
    if (req->height < 0 || req->width < 0 || req->height > DD_IMAGE_MAX_DIM ||
        req->width > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "cifar10 reader: bad image size %dx%d", req->width,
                            req->height);
    int64_t max_images = rd_opt_int(req->options, "max_images", 0);
    char *dir = batch_dir(req->root);
    if (!dir) return DD_ERR_NOMEM;
    char *names[CIFAR_CLASSES] = {0};
    dd_status st = read_class_names(dir, names);
    static const char *const train_files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                              "data_batch_3.bin", "data_batch_4.bin",
                                              "data_batch_5.bin"};
    static const char *const test_files[] = {"test_batch.bin"};
    if (st == DD_OK)
        st = load_split(req, dir, train_files, CIFAR_TRAIN_BATCHES, "train",
                        (const char *const *)names, max_images, train);
    if (st == DD_OK)
        st = load_split(req, dir, test_files, 1, "test", (const char *const *)names, max_images,
                        test);
    if (st != DD_OK) {
        dd_dataset_destroy(*train);
        *train = NULL;
    }
    for (int k = 0; k < CIFAR_CLASSES; k++)
        free(names[k]);
    free(dir);
    return st;
}

static const char *const cifar_datasets[] = {"cifar10", NULL};

static const dd_param_spec cifar_params[] = {
    {"max_images", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "read only the first N images of each split (0 = all), for quick runs"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_dataset_ops cifar_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = cifar_datasets,
    .load = cifar_load,
};

static const dd_component cifar_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_DATASET,
    .name = "cifar10",
    .description = "CIFAR-10, binary version (3x32x32, 10 classes)",
    .params = cifar_params,
    .ops = &cifar_ops,
}};

static const dd_plugin_descriptor cifar_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "cifar10",
    .version = "1.0.0",
    .description = "CIFAR-10 binary-batch reader",
    .n_components = 1,
    .components = cifar_components,
};

DD_PLUGIN_DEFINE(cifar_descriptor)
