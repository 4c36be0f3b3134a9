/* distill — the distilled set: create/clone/destroy, and its files (IDX
 * images and labels, lrs.csv, distilled.json) written and read back. */
#define _POSIX_C_SOURCE 200809L
#include "engine/distilled.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "distill/tensor.h"

/* ---- the set ------------------------------------------------------------ */

size_t dd_distilled_image_size(const dd_distilled *d) {
    return (size_t)d->channels * (size_t)d->height * (size_t)d->width;
}

dd_status dd_distilled_create(int steps, int epochs, int images_per_class, int n_classes,
                              int channels, int height, int width, float lr, dd_distilled **out) {
    *out = NULL;
    if (steps < 1 || epochs < 1 || images_per_class < 1 || n_classes < 1 || channels < 1 ||
        channels > DD_MAX_CHANNELS || height < 1 || width < 1)
        return dd_error_set(DD_ERR_INVALID, "distilled set: invalid shape");
    dd_distilled *d = calloc(1, sizeof *d);
    if (!d) return dd_error_set(DD_ERR_NOMEM, "distilled set: out of memory");
    d->steps = steps;
    d->epochs = epochs;
    d->images_per_class = images_per_class;
    d->n_classes = n_classes;
    d->channels = channels;
    d->height = height;
    d->width = width;
    d->per_step = (int64_t)images_per_class * n_classes;
    d->n_outputs = n_classes;
    for (int c = 0; c < DD_MAX_CHANNELS; c++)
        d->std[c] = 1.f;
    d->images = dd_alloc_floats((size_t)steps * (size_t)d->per_step * dd_distilled_image_size(d));
    d->labels = malloc((size_t)d->per_step * sizeof *d->labels);
    d->lrs = dd_alloc_floats((size_t)steps * (size_t)epochs);
    if (!d->images || !d->labels || !d->lrs) {
        dd_distilled_destroy(d);
        return dd_error_set(DD_ERR_NOMEM, "distilled set: out of memory");
    }
    for (int64_t j = 0; j < d->per_step; j++)
        d->labels[j] = (int32_t)(j % n_classes);
    for (int k = 0; k < steps * epochs; k++)
        d->lrs[k] = lr;
    *out = d;
    return DD_OK;
}

void dd_distilled_destroy(dd_distilled *d) {
    if (!d) return;
    dd_free(d->images);
    free(d->labels);
    dd_free(d->soft);
    dd_free(d->lrs);
    free(d);
}

dd_status dd_distilled_clone(const dd_distilled *d, dd_distilled **out) {
    DD_TRY(dd_distilled_create(d->steps, d->epochs, d->images_per_class, d->n_classes, d->channels,
                               d->height, d->width, 0.f, out));
    dd_distilled *c = *out;
    size_t n_img = (size_t)d->steps * (size_t)d->per_step * dd_distilled_image_size(d);
    memcpy(c->images, d->images, n_img * sizeof(float));
    memcpy(c->labels, d->labels, (size_t)d->per_step * sizeof(int32_t));
    memcpy(c->lrs, d->lrs, (size_t)d->steps * (size_t)d->epochs * sizeof(float));
    memcpy(c->mean, d->mean, sizeof c->mean);
    memcpy(c->std, d->std, sizeof c->std);
    c->n_outputs = d->n_outputs;
    if (d->soft) {
        size_t n = (size_t)d->steps * (size_t)d->per_step * (size_t)d->n_outputs;
        c->soft = dd_alloc_floats(n);
        if (!c->soft) {
            dd_distilled_destroy(c);
            *out = NULL;
            return dd_error_set(DD_ERR_NOMEM, "distilled set: out of memory");
        }
        memcpy(c->soft, d->soft, n * sizeof(float));
    }
    return DD_OK;
}

/* ---- writing ------------------------------------------------------------ */

static dd_status out_open(dd_fs_atomic *a, const char *dir, const char *name) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return dd_error_set(DD_ERR_INVALID, "%s/%s: path too long", dir, name);
    return dd_fs_atomic_open(a, path);
}

static void be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static dd_status write_idx_f32(const char *dir, const char *name, const float *x, int ndim,
                               const uint32_t *dims) {
    dd_fs_atomic a;
    DD_TRY(out_open(&a, dir, name));
    unsigned char magic[4] = {0, 0, 0x0D, (unsigned char)ndim};
    fwrite(magic, 1, 4, a.f);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        be32(a.f, dims[i]);
        n *= dims[i];
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        be32(a.f, u);
    }
    return dd_fs_atomic_commit(&a);
}

/* The M hard labels once per step, as uint8 IDX. */
static dd_status write_labels(const dd_distilled *set, const char *dir, uint32_t n) {
    dd_fs_atomic a;
    DD_TRY(out_open(&a, dir, "distilled-labels.idx"));
    unsigned char magic[4] = {0, 0, 0x08, 1};
    fwrite(magic, 1, 4, a.f);
    be32(a.f, n);
    for (int s = 0; s < set->steps; s++)
        for (int64_t j = 0; j < set->per_step; j++)
            fputc((unsigned char)set->labels[j], a.f);
    return dd_fs_atomic_commit(&a);
}

static dd_status write_lrs_csv(const dd_distilled *set, const char *dir) {
    dd_fs_atomic a;
    DD_TRY(out_open(&a, dir, "lrs.csv"));
    fprintf(a.f, "k,epoch,step,lr\n");
    for (int e = 0; e < set->epochs; e++)
        for (int s = 0; s < set->steps; s++) {
            int k = e * set->steps + s;
            fprintf(a.f, "%d,%d,%d,%.9g\n", k, e, s, (double)set->lrs[k]);
        }
    return dd_fs_atomic_commit(&a);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* distilled.json: the shape, class names, normalisation and step sizes. */
static dd_status write_json(const dd_distilled *set, const char *const *class_names,
                            const char *dir) {
    dd_fs_atomic a;
    DD_TRY(out_open(&a, dir, "distilled.json"));
    FILE *f = a.f;
    fprintf(f, "{\n  \"format\": \"distill-export-1\",\n");
    fprintf(f, "  \"steps\": %d,\n  \"epochs\": %d,\n  \"images_per_class\": %d,\n", set->steps,
            set->epochs, set->images_per_class);
    fprintf(f, "  \"n_classes\": %d,\n  \"images_per_step\": %lld,\n", set->n_classes,
            (long long)set->per_step);
    fprintf(f, "  \"channels\": %d,\n  \"height\": %d,\n  \"width\": %d,\n", set->channels,
            set->height, set->width);
    fprintf(f, "  \"class_names\": [");
    for (int c = 0; c < set->n_classes; c++) {
        if (c) fputs(", ", f);
        char num[16];
        snprintf(num, sizeof num, "%d", c);
        json_str(f, class_names ? class_names[c] : num);
    }
    fprintf(f, "],\n  \"normalization\": {\"mean\": [");
    for (int c = 0; c < set->channels; c++)
        fprintf(f, "%s%.9g", c ? ", " : "", (double)set->mean[c]);
    fprintf(f, "], \"std\": [");
    for (int c = 0; c < set->channels; c++)
        fprintf(f, "%s%.9g", c ? ", " : "", (double)set->std[c]);
    fprintf(f, "]},\n");
    fprintf(f, "  \"order\": \"image i belongs to step i / images_per_step; its label is "
               "(i %% images_per_step) %% n_classes\",\n");
    fprintf(f, "  \"values\": \"normalised: pixel / 255 = value * std[c] + mean[c]\",\n");
    fprintf(f,
            "  \"files\": {\"images\": \"distilled-images.idx\", \"labels\": "
            "\"distilled-labels.idx\", \"lrs\": \"lrs.csv\"%s},\n",
            set->soft ? ", \"soft_labels\": \"distilled-soft-labels.idx\"" : "");
    fprintf(f, "  \"lrs\": [");
    for (int k = 0; k < set->steps * set->epochs; k++)
        fprintf(f, "%s%.9g", k ? ", " : "", (double)set->lrs[k]);
    fprintf(f, "]\n}\n");
    return dd_fs_atomic_commit(&a);
}

dd_status dd_distilled_save(const dd_distilled *set, const char *const *class_names,
                            const char *dir) {
    const uint32_t N = (uint32_t)((int64_t)set->steps * set->per_step);
    uint32_t dims[4];
    int nd;
    if (set->channels == 1) {
        dims[0] = N, dims[1] = (uint32_t)set->height, dims[2] = (uint32_t)set->width, nd = 3;
    } else {
        dims[0] = N, dims[1] = (uint32_t)set->channels, dims[2] = (uint32_t)set->height;
        dims[3] = (uint32_t)set->width, nd = 4;
    }
    DD_TRY(write_idx_f32(dir, "distilled-images.idx", set->images, nd, dims));
    if (set->n_classes <= 256) DD_TRY(write_labels(set, dir, N));
    if (set->soft) {
        uint32_t sd[2] = {N, (uint32_t)set->n_outputs};
        DD_TRY(write_idx_f32(dir, "distilled-soft-labels.idx", set->soft, 2, sd));
    }
    DD_TRY(write_lrs_csv(set, dir));
    return write_json(set, class_names, dir);
}

/* ---- reading ------------------------------------------------------------ */

static uint32_t rd_be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Step sizes are read into a fixed buffer: no run has this many steps. */
#define MAX_LRS 4096

/* The float32 IDX header of distilled-images.idx: dims[0] images of C×H×W. */
static dd_status read_images_header(FILE *f, const char *path, uint32_t dims[4], int *C, int *H,
                                    int *W) {
    unsigned char hdr[4 + 16];
    if (fread(hdr, 1, 4, f) != 4 || hdr[0] || hdr[1] || hdr[2] != 0x0D || hdr[3] < 3 || hdr[3] > 4)
        return dd_error_set(DD_ERR_PARSE, "%s: not a float32 IDX file of 3 or 4 dimensions", path);
    const int nd = hdr[3];
    if (fread(hdr + 4, 4, (size_t)nd, f) != (size_t)nd)
        return dd_error_set(DD_ERR_PARSE, "%s: truncated header", path);
    for (int i = 0; i < nd; i++)
        dims[i] = rd_be32(hdr + 4 + 4 * i);
    if (dims[0] == 0) return dd_error_set(DD_ERR_PARSE, "%s: no images", path);
    *C = 1;
    if (nd == 3)
        *H = (int)dims[1], *W = (int)dims[2];
    else
        *C = (int)dims[1], *H = (int)dims[2], *W = (int)dims[3];
    return DD_OK;
}

/* lrs.csv gives the step sizes, and with them steps and epochs. */
static dd_status read_lrs_csv(const char *dir, float lrs[MAX_LRS], int *K, int *steps,
                              int *epochs) {
    char lp[4096];
    snprintf(lp, sizeof lp, "%s/lrs.csv", dir);
    FILE *lf = fopen(lp, "r");
    if (!lf) return dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", lp, strerror(errno));
    dd_status s = DD_OK;
    char line[256];
    int lineno = 0;
    *K = *steps = *epochs = 0;
    while (s == DD_OK && fgets(line, sizeof line, lf)) {
        lineno++;
        if (lineno == 1) continue;
        int k, e, st;
        float lr;
        if (sscanf(line, "%d,%d,%d,%f", &k, &e, &st, &lr) != 4 || k != *K || *K >= MAX_LRS) {
            s = dd_error_set(DD_ERR_PARSE, "%s:%d: expected 'k,epoch,step,lr'", lp, lineno);
        } else {
            lrs[(*K)++] = lr;
            if (st + 1 > *steps) *steps = st + 1;
            if (e + 1 > *epochs) *epochs = e + 1;
        }
    }
    fclose(lf);
    if (s == DD_OK && (*K == 0 || *K != *steps * *epochs))
        s = dd_error_set(DD_ERR_PARSE, "%s: inconsistent steps/epochs", lp);
    return s;
}

/* The n uint8 labels; they give the class count (a step's labels are
 * 0..n_classes−1 repeated). Caller frees *out. */
static dd_status read_labels(const char *dir, uint32_t n, int32_t **out, int *n_classes) {
    char lp[4096];
    snprintf(lp, sizeof lp, "%s/distilled-labels.idx", dir);
    *out = NULL;
    *n_classes = 0;
    FILE *lf = fopen(lp, "rb");
    if (!lf) return dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", lp, strerror(errno));
    unsigned char lh[8];
    dd_status s = DD_OK;
    int32_t *lab = NULL;
    if (fread(lh, 1, 8, lf) != 8 || lh[2] != 0x08 || lh[3] != 1 || rd_be32(lh + 4) != n)
        s = dd_error_set(DD_ERR_PARSE, "%s: expected %u uint8 labels", lp, n);
    if (s == DD_OK && !(lab = malloc(n * sizeof *lab)))
        s = dd_error_set(DD_ERR_NOMEM, "import: out of memory");
    for (uint32_t i = 0; s == DD_OK && i < n; i++) {
        int ch = fgetc(lf);
        if (ch == EOF) s = dd_error_set(DD_ERR_PARSE, "%s: truncated", lp);
        lab[i] = ch;
        if (ch + 1 > *n_classes) *n_classes = ch + 1;
    }
    fclose(lf);
    if (s != DD_OK) {
        free(lab);
        return s;
    }
    *out = lab;
    return DD_OK;
}

/* The n big-endian float32 values after the header. */
static dd_status read_pixels(FILE *f, const char *path, float *x, size_t n) {
    unsigned char b[4];
    for (size_t i = 0; i < n; i++) {
        if (fread(b, 1, 4, f) != 4) return dd_error_set(DD_ERR_PARSE, "%s: truncated data", path);
        uint32_t u = rd_be32(b);
        memcpy(&x[i], &u, 4);
    }
    return DD_OK;
}

/* Reads the rest once the images file is open at its start. */
static dd_status load_from(FILE *f, const char *path, const char *dir, dd_distilled **out) {
    uint32_t dims[4] = {0, 1, 1, 1};
    int C = 1, H = 0, W = 0, steps = 0, epochs = 0, K = 0, n_classes = 0;
    float lrs[MAX_LRS];
    int32_t *lab = NULL;
    DD_TRY(read_images_header(f, path, dims, &C, &H, &W));
    DD_TRY(read_lrs_csv(dir, lrs, &K, &steps, &epochs));
    DD_TRY(read_labels(dir, dims[0], &lab, &n_classes));
    dd_distilled *d = NULL;
    dd_status s;
    if (dims[0] % (uint32_t)steps != 0 || (dims[0] / (uint32_t)steps) % (uint32_t)n_classes)
        s = dd_error_set(DD_ERR_PARSE, "%s: %u images do not split into %d steps of %d classes",
                         path, dims[0], steps, n_classes);
    else
        s = dd_distilled_create(steps, epochs, (int)(dims[0] / (uint32_t)steps) / n_classes,
                                n_classes, C, H, W, 0.f, &d);
    for (int64_t j = 0; s == DD_OK && j < d->per_step; j++)
        if (lab[j] != d->labels[j])
            s = dd_error_set(DD_ERR_PARSE, "%s: label %lld is %d, expected %d", dir, (long long)j,
                             lab[j], d->labels[j]);
    free(lab);
    if (s == DD_OK) {
        memcpy(d->lrs, lrs, (size_t)K * sizeof(float));
        s = read_pixels(f, path, d->images, (size_t)dims[0] * C * H * W);
    }
    if (s != DD_OK) {
        dd_distilled_destroy(d);
        return s;
    }
    *out = d;
    return DD_OK;
}

dd_status dd_distilled_load(const char *dir, dd_distilled **out) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/distilled-images.idx", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    dd_status s = load_from(f, path, dir, out);
    fclose(f);
    return s;
}
