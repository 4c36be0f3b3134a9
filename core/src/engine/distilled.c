/* distill — the distilled set: create/clone/destroy, and its files (IDX
 * images and labels, lrs.csv, distilled.json) written and read back. */
#define _POSIX_C_SOURCE 200809L
#include "engine/distilled.h"

#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "engine/npz_write.h"
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

static void json_floats(dd_json *w, const char *key, const float *x, int n) {
    dd_json_key(w, key);
    dd_json_array(w, DD_JSON_INLINE);
    for (int i = 0; i < n; i++)
        dd_json_double(w, (double)x[i], 9);
    dd_json_array_end(w);
}

/* distilled.json: the shape, class names, normalisation and step sizes. */
static dd_status write_json(const dd_distilled *set, const char *const *class_names,
                            const char *dir) {
    dd_fs_atomic a;
    DD_TRY(out_open(&a, dir, "distilled.json"));
    dd_json w;
    dd_json_init_file(&w, a.f);
    dd_json_object(&w, DD_JSON_LINES);
    dd_json_key(&w, "format");
    dd_json_string(&w, "distill-export-1");
    const struct {
        const char *key;
        long long v;
    } ints[] = {{"steps", set->steps},
                {"epochs", set->epochs},
                {"images_per_class", set->images_per_class},
                {"n_classes", set->n_classes},
                {"images_per_step", (long long)set->per_step},
                {"channels", set->channels},
                {"height", set->height},
                {"width", set->width}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        dd_json_key(&w, ints[i].key);
        dd_json_int(&w, ints[i].v);
    }
    dd_json_key(&w, "class_names");
    dd_json_array(&w, DD_JSON_INLINE);
    for (int c = 0; c < set->n_classes; c++) {
        char num[16];
        snprintf(num, sizeof num, "%d", c);
        dd_json_string(&w, class_names ? class_names[c] : num);
    }
    dd_json_array_end(&w);
    dd_json_key(&w, "normalization");
    dd_json_object(&w, DD_JSON_INLINE);
    json_floats(&w, "mean", set->mean, set->channels);
    json_floats(&w, "std", set->std, set->channels);
    dd_json_object_end(&w);
    dd_json_key(&w, "order");
    dd_json_string(&w, "image i belongs to step i / images_per_step; its label is "
                       "(i % images_per_step) % n_classes");
    dd_json_key(&w, "values");
    dd_json_string(&w, "normalised: pixel / 255 = value * std[c] + mean[c]");
    dd_json_key(&w, "files");
    dd_json_object(&w, DD_JSON_INLINE);
    dd_json_key(&w, "images");
    dd_json_string(&w, "distilled-images.idx");
    dd_json_key(&w, "labels");
    dd_json_string(&w, "distilled-labels.idx");
    dd_json_key(&w, "lrs");
    dd_json_string(&w, "lrs.csv");
    if (set->soft) {
        dd_json_key(&w, "soft_labels");
        dd_json_string(&w, "distilled-soft-labels.idx");
    }
    dd_json_object_end(&w);
    json_floats(&w, "lrs", set->lrs, set->steps * set->epochs);
    dd_json_object_end(&w);
    dd_status s = dd_json_finish(&w);
    if (s != DD_OK) {
        dd_fs_atomic_abort(&a);
        return s;
    }
    return dd_fs_atomic_commit(&a);
}

/* distilled.npz: the same set as NumPy arrays (docs/output.md). */
static dd_status write_npz(const dd_distilled *set, const char *const *class_names,
                           const char *dir) {
    const int64_t N = (int64_t)set->steps * set->per_step;
    char path[4096];
    int pn = snprintf(path, sizeof path, "%s/distilled.npz", dir);
    if (pn < 0 || (size_t)pn >= sizeof path)
        return dd_error_set(DD_ERR_INVALID, "%s/distilled.npz: path too long", dir);
    dd_npz *z;
    DD_TRY(dd_npz_create(&z));
    int64_t *ints = malloc((size_t)(N ? N : 1) * sizeof *ints);
    char **names = calloc((size_t)set->n_classes, sizeof *names);
    dd_status st =
        ints && names ? DD_OK : dd_error_set(DD_ERR_NOMEM, "distilled.npz: out of memory");
    const int64_t ishape[4] = {N, set->channels, set->height, set->width};
    if (st == DD_OK) st = dd_npz_add_f32(z, "images", 4, ishape, set->images);
    if (st == DD_OK && set->soft) {
        const int64_t sshape[2] = {N, set->n_outputs};
        st = dd_npz_add_f32(z, "labels", 2, sshape, set->soft);
    } else if (st == DD_OK) {
        for (int64_t i = 0; i < N; i++)
            ints[i] = set->labels[i % set->per_step];
        st = dd_npz_add_i64(z, "labels", 1, &N, ints);
    }
    if (st == DD_OK) {
        const int64_t lshape[2] = {set->epochs, set->steps};
        st = dd_npz_add_f32(z, "lrs", 2, lshape, set->lrs);
    }
    if (st == DD_OK) {
        for (int64_t i = 0; i < N; i++)
            ints[i] = i / set->per_step;
        st = dd_npz_add_i64(z, "step", 1, &N, ints);
    }
    const int64_t C = set->channels;
    if (st == DD_OK) st = dd_npz_add_f32(z, "mean", 1, &C, set->mean);
    if (st == DD_OK) st = dd_npz_add_f32(z, "std", 1, &C, set->std);
    for (int c = 0; st == DD_OK && c < set->n_classes; c++) {
        char num[16];
        snprintf(num, sizeof num, "%d", c);
        if (!(names[c] = strdup(class_names ? class_names[c] : num)))
            st = dd_error_set(DD_ERR_NOMEM, "distilled.npz: out of memory");
    }
    const int64_t K = set->n_classes;
    if (st == DD_OK) st = dd_npz_add_strings(z, "class_names", (const char *const *)names, K);
    if (st == DD_OK) st = dd_npz_write(z, path);
    for (int c = 0; names && c < set->n_classes; c++)
        free(names[c]);
    free(names);
    free(ints);
    dd_npz_destroy(z);
    return st;
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
    DD_TRY(write_npz(set, class_names, dir));
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

/* distilled-soft-labels.idx, when the set has learned labels: a float32 IDX
 * of N × n_outputs. */
static dd_status read_soft(const char *dir, dd_distilled *d) {
    char sp[4096];
    snprintf(sp, sizeof sp, "%s/distilled-soft-labels.idx", dir);
    FILE *f = fopen(sp, "rb");
    if (!f) return errno == ENOENT ? DD_OK : dd_error_set(DD_ERR_IO, "%s: %s", sp, strerror(errno));
    const uint32_t N = (uint32_t)((int64_t)d->steps * d->per_step);
    unsigned char h[12];
    dd_status s = DD_OK;
    if (fread(h, 1, 12, f) != 12 || h[0] || h[1] || h[2] != 0x0D || h[3] != 2 ||
        rd_be32(h + 4) != N || rd_be32(h + 8) < 1 || rd_be32(h + 8) > 65536)
        s = dd_error_set(DD_ERR_PARSE, "%s: expected a float32 IDX of %u × K soft labels", sp, N);
    const uint32_t K = s == DD_OK ? rd_be32(h + 8) : 0;
    if (s == DD_OK && !(d->soft = dd_alloc_floats((size_t)N * K)))
        s = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", sp);
    if (s == DD_OK) s = read_pixels(f, sp, d->soft, (size_t)N * K);
    if (s == DD_OK) d->n_outputs = (int)K;
    fclose(f);
    return s;
}

dd_status dd_distilled_load(const char *dir, dd_distilled **out) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/distilled-images.idx", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error_set(DD_ERR_NOT_FOUND, "%s: %s", path, strerror(errno));
    dd_status s = load_from(f, path, dir, out);
    fclose(f);
    if (s == DD_OK) s = read_soft(dir, *out);
    if (s != DD_OK) {
        dd_distilled_destroy(*out);
        *out = NULL;
    }
    return s;
}
