/* distill — dataset reader for MNIST and Fashion-MNIST: the four IDX files
 * (plain or .gz), validated field by field against the file sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "distill/plugin.h"

#include "reader_common.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dimension */
#define MNIST_CLASSES 10

typedef struct mnist_kind {
    const char *name;
    const char *class_names[MNIST_CLASSES];
    float mean, std;
} mnist_kind;

static const mnist_kind kinds[] = {
    {"mnist", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, 0.1307f, 0.3081f},
    {"fashion-mnist",
     {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
      "Ankle boot"},
     0.2860f,
     0.3530f},
};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks an IDX header (magic, dimensions) and that the file holds exactly
 * the data the dimensions announce. dims[0] is the item count. */
static dd_status idx_check(const rd_buf *b, uint32_t magic, int ndim, uint32_t *dims) {
    size_t header = 4 + 4 * (size_t)ndim;
    if (b->len < 4)
        return dd_error_set(DD_ERR_PARSE, "%s: truncated: %zu bytes, too short for an IDX magic",
                            b->path, b->len);
    uint32_t m = be32(b->data);
    if (m != magic) {
        if ((m >> 16) == 0 && (m & 0xFF) == (magic & 0xFF))
            return dd_error_set(DD_ERR_PARSE,
                                "%s: IDX element type 0x%02x, expected 0x08 (unsigned byte)",
                                b->path, (m >> 8) & 0xFF);
        return dd_error_set(
            DD_ERR_PARSE, "%s: bad IDX magic 0x%08x, expected 0x%08x (%s)", b->path, m, magic,
            ndim == 3 ? "unsigned byte images, 3 dimensions" : "unsigned byte labels, 1 dimension");
    }
    if (b->len < header)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: truncated IDX header: %zu bytes, need %zu for %d dimensions",
                            b->path, b->len, header, ndim);
    uint64_t items = 1;
    for (int i = 0; i < ndim; i++) {
        dims[i] = be32(b->data + 4 + 4 * i);
        if (dims[i] == 0)
            return dd_error_set(DD_ERR_PARSE, "%s: IDX dimension %d is 0", b->path, i);
        if (i > 0 && dims[i] > DD_IMAGE_MAX_DIM)
            return dd_error_set(DD_ERR_PARSE, "%s: IDX dimension %d is %u (max %d)", b->path, i,
                                dims[i], DD_IMAGE_MAX_DIM);
        items *= dims[i]; // < 2^32 · 2^15 · 2^15: cannot overflow
    }
    uint64_t want = header + items;
    if (b->len < want) {
        if (ndim == 3)
            return dd_error_set(DD_ERR_PARSE,
                                "%s: truncated: header announces %u images of %ux%u (%llu bytes "
                                "in all), file has %zu bytes",
                                b->path, dims[0], dims[1], dims[2], (unsigned long long)want,
                                b->len);
        return dd_error_set(DD_ERR_PARSE,
                            "%s: truncated: header announces %u labels (%llu bytes in all), file "
                            "has %zu bytes",
                            b->path, dims[0], (unsigned long long)want, b->len);
    }
    if (b->len > want)
        return dd_error_set(
            DD_ERR_PARSE, "%s: %llu unexpected bytes after the %u %s the header announces", b->path,
            (unsigned long long)(b->len - want), dims[0], ndim == 3 ? "images" : "labels");
    return DD_OK;
}

static dd_status load_split(const dd_dataset_request *req, const mnist_kind *kind,
                            const char *prefix, const char *split, int64_t max_images,
                            dd_dataset **out) {
    *out = NULL;
    rd_buf img = {0}, lab = {0};
    dd_dataset *d = NULL;
    char *img_path = rd_strf("%s/%s-images-idx3-ubyte", req->root, prefix);
    char *lab_path = rd_strf("%s/%s-labels-idx1-ubyte", req->root, prefix);
    dd_status st = DD_ERR_NOMEM;
    if (!img_path || !lab_path) goto done;
    if ((st = rd_read_file(img_path, 1, &img)) != DD_OK) goto done;
    if ((st = rd_read_file(lab_path, 1, &lab)) != DD_OK) goto done;
    uint32_t idims[3] = {0}, ldims[1] = {0};
    if ((st = idx_check(&img, IDX_MAGIC_IMAGES, 3, idims)) != DD_OK) goto done;
    if ((st = idx_check(&lab, IDX_MAGIC_LABELS, 1, ldims)) != DD_OK) goto done;
    if (idims[0] != ldims[0]) {
        st = dd_error_set(DD_ERR_PARSE, "%s has %u images but %s has %u labels", img.path, idims[0],
                          lab.path, ldims[0]);
        goto done;
    }
    int64_t n = idims[0];
    const uint8_t *labels = lab.data + 8;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] >= MNIST_CLASSES) {
            st = dd_error_set(DD_ERR_PARSE, "%s: label %u of item %lld is not in 0..%d", lab.path,
                              labels[i], (long long)i, MNIST_CLASSES - 1);
            goto done;
        }
    if (max_images > 0 && max_images < n) n = max_images;
    int rows = (int)idims[1], cols = (int)idims[2];
    int oh = req->height > 0 ? req->height : rows;
    int ow = req->width > 0 ? req->width : cols;
    st = rd_dataset_new(kind->name, split, DD_DTYPE_U8, n, 1, oh, ow, MNIST_CLASSES,
                        kind->class_names, &kind->mean, &kind->std, &d);
    if (st != DD_OK) goto done;
    const int resize = oh != rows || ow != cols;
    const uint8_t *pixels = img.data + 16;
    const size_t in_size = (size_t)rows * cols;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = pixels + (size_t)i * in_size;
        uint8_t *dst = dd_dataset_u8(d, i);
        if (resize) {
            if ((st = dd_image_resize_u8(src, cols, rows, 1, dst, ow, oh)) != DD_OK) goto done;
        } else {
            memcpy(dst, src, in_size);
        }
        d->labels[i] = labels[i];
    }
    *out = d;
    d = NULL;
    st = DD_OK;
done:
    dd_dataset_destroy(d);
    rd_buf_free(&img);
    rd_buf_free(&lab);
    free(img_path);
    free(lab_path);
    return st;
}

static dd_status mnist_load(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test) {
    *train = *test = NULL;
    const mnist_kind *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (req->dataset && strcmp(req->dataset, kinds[i].name) == 0) kind = &kinds[i];
    if (!kind)
        return dd_error_set(DD_ERR_INVALID,
                            "mnist reader: unknown dataset '%s' (expected mnist or fashion-mnist)",
                            req->dataset ? req->dataset : "(null)");
    if (!req->root) return dd_error_set(DD_ERR_INVALID, "mnist reader: no root directory");
    if (req->height < 0 || req->width < 0 || req->height > DD_IMAGE_MAX_DIM ||
        req->width > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "mnist reader: bad image size %dx%d", req->width,
                            req->height);
    int64_t max_images = rd_opt_int(req->options, "max_images", 0);
    DD_TRY(load_split(req, kind, "train", "train", max_images, train));
    dd_status st = load_split(req, kind, "t10k", "test", max_images, test);
    if (st != DD_OK) {
        dd_dataset_destroy(*train);
        *train = NULL;
    }
    return st;
}

static const char *const mnist_datasets[] = {"mnist", "fashion-mnist", NULL};

static const dd_param_spec mnist_params[] = {
    {"max_images", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "read only the first N images of each split (0 = all), for quick runs"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_dataset_ops mnist_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = mnist_datasets,
    .load = mnist_load,
};

static const dd_component mnist_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_DATASET,
    .name = "mnist",
    .description = "MNIST and Fashion-MNIST from the IDX files (1x28x28, 10 classes)",
    .params = mnist_params,
    .ops = &mnist_ops,
}};

static const dd_plugin_descriptor mnist_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "mnist",
    .version = "1.0.0",
    .description = "IDX reader for MNIST and Fashion-MNIST",
    .n_components = 1,
    .components = mnist_components,
};

DD_PLUGIN_DEFINE(mnist_descriptor)
