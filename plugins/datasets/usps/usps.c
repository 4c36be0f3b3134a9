/* distill — dataset reader for USPS in the LIBSVM multiclass text format
 * (usps / usps.t, bzip2-compressed as distributed), validated line by line. */
#include <archive.h>
#include <archive_entry.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "distill/plugin.h"

#include "reader_common.h"

#define USPS_CLASSES 10
#define USPS_SIDE 16
#define USPS_PIXELS (USPS_SIDE * USPS_SIDE)
/* Values are in [-1, 1]; the slack absorbs the rounding of printed decimals. */
#define USPS_VALUE_SLACK 1.0001
/* The real files decompress to about 20 MB; more than this is not USPS. */
#define USPS_MAX_TEXT ((size_t)256 << 20)
#define USPS_CHUNK ((size_t)1 << 16)

static const char *const usps_class_names[USPS_CLASSES] = {"0", "1", "2", "3", "4",
                                                           "5", "6", "7", "8", "9"};
// MNIST's constants: USPS is the source domain of the usps-to-mnist setting,
// and sharing the target's input scaling leaves the shift in the images.
static const float usps_mean = 0.1307f, usps_std = 0.3081f;

// The one place libarchive's error text becomes a distill error.
static dd_status arch_error(struct archive *a, const char *path, const char *what) {
    const char *msg = archive_error_string(a);
    return dd_error_set(DD_ERR_PARSE, "%s: %s: %s", path, what,
                        msg ? msg : "unknown libarchive error");
}

/* Decompresses the bzip2 file `path` into out (NUL-terminated, out->path set). */
static dd_status read_bz2(const char *path, rd_buf *out) {
    memset(out, 0, sizeof *out);
    struct archive *a = archive_read_new();
    if (!a) return dd_error_set(DD_ERR_NOMEM, "%s: cannot create an archive reader", path);
    archive_read_support_filter_bzip2(a);
    archive_read_support_format_raw(a);
    dd_status st = DD_OK;
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    struct archive_entry *e;
    if (archive_read_open_filename(a, path, USPS_CHUNK) != ARCHIVE_OK) {
        st = arch_error(a, path, "cannot open");
        goto done;
    }
    if (archive_read_next_header(a, &e) != ARCHIVE_OK || archive_filter_count(a) < 2 ||
        archive_filter_code(a, 0) != ARCHIVE_FILTER_BZIP2) {
        st = dd_error_set(DD_ERR_PARSE, "%s: not a bzip2 file", path);
        goto done;
    }
    for (;;) {
        if (cap - len < USPS_CHUNK + 1) {
            size_t ncap = cap ? 2 * cap : 4 * USPS_CHUNK;
            uint8_t *p = realloc(data, ncap);
            if (!p) {
                st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            data = p;
            cap = ncap;
        }
        la_ssize_t got = archive_read_data(a, data + len, USPS_CHUNK);
        if (got < 0) {
            st = arch_error(a, path, "corrupt or truncated bzip2 data");
            goto done;
        }
        if (got == 0) break;
        len += (size_t)got;
        if (len > USPS_MAX_TEXT) {
            st = dd_error_set(DD_ERR_PARSE, "%s: decompresses to more than %zu bytes", path,
                              USPS_MAX_TEXT);
            goto done;
        }
    }
    if (!data && !(data = malloc(1))) {
        st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    data[len] = 0;
    if (!(out->path = rd_strf("%s", path))) {
        st = DD_ERR_NOMEM;
        goto done;
    }
    out->data = data;
    out->len = len;
    data = NULL;
done:
    free(data);
    archive_read_free(a);
    return st;
}

/* Reads root/name as plain text if present, else root/name.bz2. */
static dd_status read_split_file(const char *root, const char *name, rd_buf *out) {
    memset(out, 0, sizeof *out);
    char *plain = rd_strf("%s/%s", root, name);
    char *bz2 = rd_strf("%s/%s.bz2", root, name);
    dd_status st = DD_ERR_NOMEM;
    if (!plain || !bz2) goto done;
    if (rd_exists(plain))
        st = rd_read_file(plain, 0, out);
    else if (rd_exists(bz2))
        st = read_bz2(bz2, out);
    else
        st = dd_error_set(DD_ERR_NOT_FOUND, "%s: no such file (nor %s)", bz2, plain);
done:
    free(plain);
    free(bz2);
    return st;
}

static int is_space(char c) {
    return c == ' ' || c == '\t';
}

/* Parses one line `<label> 1:<v1> ... 256:<v256>` into a class index and 256
 * pixel bytes. Errors name path:lineno. */
static dd_status parse_line(const char *path, int lineno, const char *s, uint8_t *label,
                            uint8_t *pixels) {
    char *end;
    long lab = strtol(s, &end, 10);
    if (end == s || (*end && !is_space(*end)))
        return dd_error_set(DD_ERR_PARSE, "%s:%d: the line does not start with an integer label",
                            path, lineno);
    if (lab < 1 || lab > USPS_CLASSES)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: label %ld is not in 1..%d", path, lineno, lab,
                            USPS_CLASSES);
    *label = (uint8_t)(lab - 1);
    s = end;
    for (int k = 1; k <= USPS_PIXELS; k++) {
        while (is_space(*s))
            s++;
        if (!*s)
            return dd_error_set(DD_ERR_PARSE, "%s:%d: %d values, expected %d", path, lineno, k - 1,
                                USPS_PIXELS);
        long idx = strtol(s, &end, 10);
        if (end == s || *end != ':')
            return dd_error_set(DD_ERR_PARSE,
                                "%s:%d: field %d is not <index>:<value> (expected %d:<value>)",
                                path, lineno, k, k);
        if (idx < 1 || idx > USPS_PIXELS)
            return dd_error_set(DD_ERR_PARSE, "%s:%d: feature index %ld is not in 1..%d", path,
                                lineno, idx, USPS_PIXELS);
        if (idx != k)
            return dd_error_set(DD_ERR_PARSE,
                                "%s:%d: feature index %ld out of order, expected %d (all %d "
                                "values must be present, in order)",
                                path, lineno, idx, k, USPS_PIXELS);
        s = end + 1;
        double v = strtod(s, &end);
        if (end == s || (*end && !is_space(*end)))
            return dd_error_set(DD_ERR_PARSE, "%s:%d: value of feature %d is not a number", path,
                                lineno, k);
        if (!(v >= -USPS_VALUE_SLACK && v <= USPS_VALUE_SLACK))
            return dd_error_set(DD_ERR_PARSE, "%s:%d: value %g of feature %d is not in [-1, 1]",
                                path, lineno, v, k);
        double b = round((v + 1.0) * 0.5 * 255.0);
        pixels[k - 1] = (uint8_t)(b < 0 ? 0 : b > 255 ? 255 : b);
        s = end;
    }
    while (is_space(*s))
        s++;
    if (*s)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: more than %d values", path, lineno, USPS_PIXELS);
    return DD_OK;
}

static dd_status load_split(const dd_dataset_request *req, const char *name, const char *split,
                            int64_t max_images, dd_dataset **out) {
    *out = NULL;
    rd_buf buf = {0};
    rd_lines lines = {0};
    dd_dataset *d = NULL;
    uint8_t *pixels = NULL, *labels = NULL;
    dd_status st;
    if ((st = read_split_file(req->root, name, &buf)) != DD_OK) goto done;
    if ((st = rd_split_lines(&buf, &lines)) != DD_OK) goto done;
    if (lines.n == 0) {
        st = dd_error_set(DD_ERR_PARSE, "%s: empty: no images", buf.path);
        goto done;
    }
    int64_t n = (int64_t)lines.n;
    pixels = malloc((size_t)n * USPS_PIXELS);
    labels = malloc((size_t)n);
    if (!pixels || !labels) {
        st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", buf.path);
        goto done;
    }
    // Every line is validated, even past max_images.
    for (int64_t i = 0; i < n; i++)
        if ((st = parse_line(buf.path, lines.lineno[i], lines.text[i], &labels[i],
                             pixels + (size_t)i * USPS_PIXELS)) != DD_OK)
            goto done;
    if (max_images > 0 && max_images < n) n = max_images;
    int oh = req->height > 0 ? req->height : USPS_SIDE;
    int ow = req->width > 0 ? req->width : USPS_SIDE;
    st = rd_dataset_new(req->dataset, split, DD_DTYPE_U8, n, 1, oh, ow, USPS_CLASSES,
                        usps_class_names, &usps_mean, &usps_std, &d);
    if (st != DD_OK) goto done;
    const int resize = oh != USPS_SIDE || ow != USPS_SIDE;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *src = pixels + (size_t)i * USPS_PIXELS;
        uint8_t *dst = dd_dataset_u8(d, i);
        if (resize) {
            st = dd_image_resize_u8(src, USPS_SIDE, USPS_SIDE, 1, dst, ow, oh);
            if (st != DD_OK) goto done;
        } else {
            memcpy(dst, src, USPS_PIXELS);
        }
        d->labels[i] = labels[i];
    }
    *out = d;
    d = NULL;
    st = DD_OK;
done:
    dd_dataset_destroy(d);
    free(pixels);
    free(labels);
    rd_lines_free(&lines);
    rd_buf_free(&buf);
    return st;
}

static dd_status usps_load(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test) {
    *train = *test = NULL;
    if (!req->dataset || strcmp(req->dataset, "usps") != 0)
        return dd_error_set(DD_ERR_INVALID, "usps reader: unknown dataset '%s' (expected usps)",
                            req->dataset ? req->dataset : "(null)");
    if (!req->root) return dd_error_set(DD_ERR_INVALID, "usps reader: no root directory");
    if (req->height < 0 || req->width < 0 || req->height > DD_IMAGE_MAX_DIM ||
        req->width > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "usps reader: bad image size %dx%d", req->width,
                            req->height);
    int64_t max_images = rd_opt_int(req->options, "max_images", 0);
    DD_TRY(load_split(req, "usps", "train", max_images, train));
    dd_status st = load_split(req, "usps.t", "test", max_images, test);
    if (st != DD_OK) {
        dd_dataset_destroy(*train);
        *train = NULL;
    }
    return st;
}

static const char *const usps_datasets[] = {"usps", NULL};

static const dd_param_spec usps_params[] = {
    {"max_images", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "read only the first N images of each split (0 = all), for quick runs"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_dataset_ops usps_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = usps_datasets,
    .load = usps_load,
};

static const dd_component usps_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_DATASET,
    .name = "usps",
    .description = "USPS digits from the LIBSVM text files (1x16x16, 10 classes)",
    .params = usps_params,
    .ops = &usps_ops,
}};

static const dd_plugin_descriptor usps_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "usps",
    .version = "1.0.0",
    .description = "LIBSVM-format reader for USPS",
    .n_components = 1,
    .components = usps_components,
};

DD_PLUGIN_DEFINE(usps_descriptor)
