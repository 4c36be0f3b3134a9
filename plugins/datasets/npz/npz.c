/* distill — dataset reader for the user's own NumPy arrays: a .npz archive
 * (np.savez or np.savez_compressed) or a directory of .npy files holding
 * x_train, y_train, x_test, y_test (docs/readers.md, "npz"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/limits.h"
#include "distill/image.h"
#include "distill/npy.h"
#include "distill/plugin.h"

#include "reader_common.h"

enum { X_TRAIN, Y_TRAIN, X_TEST, Y_TEST, N_ARRAYS };
static const char *const array_keys[N_ARRAYS] = {"x_train", "y_train", "x_test", "y_test"};

/* One array's bytes: the whole .npy member, or only its first bytes (probe). */
typedef struct npz_src {
    const char *root;
    int is_dir;
    const char *names[N_ARRAYS]; /* array names (options), e.g. "x_train" */
} npz_src;

typedef struct npz_member {
    uint8_t *data;
    size_t len;
    char *label; /* "root:x_train.npy" or "root/x_train.npy", for messages */
} npz_member;

static void member_free(npz_member *m) {
    free(m->data);
    free(m->label);
    memset(m, 0, sizeof *m);
}

/* Reads a directory's <name>.npy; with header_only, at most DD_NPY_MAX_HEADER + 12 bytes. */
static dd_status read_npy_file(const char *path, int header_only, npz_member *m) {
    if (!header_only) {
        rd_buf b = {0};
        DD_TRY(rd_read_file(path, 0, &b));
        m->data = b.data;
        m->len = b.len;
        free(b.path);
        return DD_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return dd_error_set(DD_ERR_NOT_FOUND, "%s: cannot open", path);
    size_t cap = DD_NPY_MAX_HEADER + 12;
    m->data = malloc(cap);
    if (!m->data) {
        fclose(f);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    }
    m->len = fread(m->data, 1, cap, f);
    int err = ferror(f);
    fclose(f);
    if (err) return dd_error_set(DD_ERR_IO, "%s: read error", path);
    return DD_OK;
}

/* Finds member "<name>.npy" in the .npz at `path` and reads it (or its first
 * bytes) through the core's zip member reader. */
static dd_status read_npz_member(const char *path, const char *member, int header_only,
                                 npz_member *m) {
    return dd_npz_read_member(path, member, header_only ? DD_NPZ_HEADER_ONLY : 0, &m->data,
                              &m->len);
}

static dd_status get_array(const npz_src *src, int which, int header_only, npz_member *m,
                           dd_npy_array *arr) {
    memset(m, 0, sizeof *m);
    char *member = rd_strf("%s.npy", src->names[which]);
    if (!member) return DD_ERR_NOMEM;
    dd_status st;
    if (src->is_dir) {
        m->label = rd_strf("%s/%s", src->root, member);
        st = m->label ? read_npy_file(m->label, header_only, m) : DD_ERR_NOMEM;
    } else {
        m->label = rd_strf("%s:%s", src->root, member);
        st = m->label ? read_npz_member(src->root, member, header_only, m) : DD_ERR_NOMEM;
    }
    free(member);
    if (st == DD_OK)
        st = header_only ? dd_npy_parse_header(m->label, m->data, m->len, arr)
                         : dd_npy_parse(m->label, m->data, m->len, arr);
    if (st != DD_OK) member_free(m);
    return st;
}

/* Image geometry from an x array's shape and the layout option. */
typedef struct geom {
    int64_t n;
    int c, h, w;
} geom;

static dd_status image_geom(const dd_npy_array *x, const char *label, int nchw, geom *g) {
    if (!(x->kind == 'u' && x->itemsize == 1) && !(x->kind == 'f' && x->itemsize == 4))
        return dd_error_set(DD_ERR_PARSE,
                            "%s: images have dtype '%s'; expected uint8 ('|u1') or float32 "
                            "('<f4')",
                            label, x->descr);
    int64_t h, w, c = 1;
    if (x->ndim == 3) {
        h = x->shape[1], w = x->shape[2];
    } else if (x->ndim == 4) {
        c = nchw ? x->shape[1] : x->shape[3];
        h = nchw ? x->shape[2] : x->shape[1];
        w = nchw ? x->shape[3] : x->shape[2];
    } else {
        return dd_error_set(
            DD_ERR_PARSE, "%s: images have %d dimensions; expected 3 (N, H, W) or 4 (%s)", label,
            x->ndim, nchw ? "N, C, H, W with layout nchw" : "N, H, W, C with layout nhwc");
    }
    if (x->shape[0] == 0) return dd_error_set(DD_ERR_PARSE, "%s: no images (N = 0)", label);
    if (c < 1 || c > DD_MAX_CHANNELS)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: %lld channels (layout %s); expected 1..%d — is the layout option "
                            "right?",
                            label, (long long)c, nchw ? "nchw" : "nhwc", DD_MAX_CHANNELS);
    if (h < 1 || w < 1 || h > DD_IMAGE_MAX_DIM || w > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_PARSE, "%s: image size %lldx%lld is not in 1..%d", label,
                            (long long)h, (long long)w, DD_IMAGE_MAX_DIM);
    g->n = x->shape[0], g->c = (int)c, g->h = (int)h, g->w = (int)w;
    return DD_OK;
}

static dd_status check_labels(const dd_npy_array *y, const char *label, int64_t n,
                              const char *xlabel) {
    if (y->kind != 'u' && y->kind != 'i')
        return dd_error_set(DD_ERR_PARSE, "%s: labels have dtype '%s'; expected an integer type",
                            label, y->descr);
    if (y->ndim != 1)
        return dd_error_set(DD_ERR_PARSE, "%s: labels have %d dimensions; expected 1 (N,)", label,
                            y->ndim);
    if (y->shape[0] != n)
        return dd_error_set(DD_ERR_PARSE, "%s has %lld images but %s has %lld labels", xlabel,
                            (long long)n, label, (long long)y->shape[0]);
    return DD_OK;
}

/* Largest label (and refusal of a negative one). */
static dd_status max_label(const dd_npy_array *y, const char *label, int64_t *mx) {
    for (uint64_t i = 0; i < y->count; i++) {
        int64_t v = dd_npy_int_at(y, i);
        if (v < 0 || v > 65535)
            return dd_error_set(DD_ERR_PARSE,
                                "%s: label %lld of item %llu is out of range (0..65535)", label,
                                (long long)v, (unsigned long long)i);
        if (v > *mx) *mx = v;
    }
    return DD_OK;
}

typedef struct npz_opts {
    int nchw, scale_none, classes;
    int64_t max_images;
    int n_mean, n_std;
    float mean[DD_MAX_CHANNELS], std[DD_MAX_CHANNELS];
    size_t n_names;
} npz_opts;

static dd_status float_list(const dd_options *o, const char *key, float *out, int *n) {
    *n = 0;
    if (!o || !dd_options_is_set(o, key)) return DD_OK;
    size_t len = dd_options_list_len(o, key);
    if (len < 1 || len > DD_MAX_CHANNELS)
        return dd_error_set(DD_ERR_INVALID, "%s: npz: %s needs 1..%d numbers, got %zu",
                            dd_options_where(o, key), key, DD_MAX_CHANNELS, len);
    for (size_t i = 0; i < len; i++) {
        const char *s = dd_options_list_item(o, key, i);
        char *end;
        double v = strtod(s, &end);
        if (end == s || *end || !isfinite(v) || (key[0] == 's' && !(v > 0)))
            return dd_error_set(DD_ERR_INVALID, "%s: npz: %s item '%s' is not a %snumber",
                                dd_options_where(o, key), key, s, key[0] == 's' ? "positive " : "");
        out[i] = (float)v;
    }
    *n = (int)len;
    return DD_OK;
}

static dd_status read_opts(const dd_dataset_request *req, npz_src *src, npz_opts *o) {
    memset(o, 0, sizeof *o);
    const dd_options *op = req->options;
    if (!req->root) return dd_error_set(DD_ERR_INVALID, "npz reader: no dataset.path");
    src->root = req->root;
    src->is_dir = rd_is_dir(req->root);
    if (!src->is_dir && !rd_exists(req->root))
        return dd_error_set(DD_ERR_NOT_FOUND, "%s: no such .npz file or directory", req->root);
    for (int k = 0; k < N_ARRAYS; k++)
        src->names[k] = rd_opt_str(op, array_keys[k], array_keys[k]);
    o->nchw = strcmp(rd_opt_str(op, "layout", "nhwc"), "nchw") == 0;
    o->scale_none = strcmp(rd_opt_str(op, "scale", "unit"), "none") == 0;
    o->classes = (int)rd_opt_int(op, "classes", 0);
    o->max_images = rd_opt_int(op, "max_images", 0);
    o->n_names = op ? dd_options_list_len(op, "class_names") : 0;
    DD_TRY(float_list(op, "mean", o->mean, &o->n_mean));
    DD_TRY(float_list(op, "std", o->std, &o->n_std));
    if (req->height < 0 || req->width < 0)
        return dd_error_set(DD_ERR_INVALID, "npz reader: bad image size %dx%d", req->width,
                            req->height);
    return DD_OK;
}

/* The class count: `classes`, else the class_names list, else max label + 1. */
static dd_status class_count(const npz_opts *o, const dd_options *op, int64_t mx, int *k) {
    if (o->classes && o->n_names && (size_t)o->classes != o->n_names)
        return dd_error_set(DD_ERR_INVALID, "%s: npz: classes is %d but class_names has %zu names",
                            dd_options_where(op, "classes"), o->classes, o->n_names);
    int64_t want = o->classes ? o->classes : o->n_names ? (int64_t)o->n_names : mx + 1;
    if (mx >= want)
        return dd_error_set(
            DD_ERR_PARSE, "label %lld is out of range: %s %lld classes (labels 0..%lld)",
            (long long)mx, o->classes ? "the classes option sets" : "class_names has",
            (long long)want, (long long)want - 1);
    if (want < 2)
        return dd_error_set(DD_ERR_PARSE, "npz: only %lld class in the labels", (long long)want);
    *k = (int)want;
    return DD_OK;
}

static dd_status npz_probe(const dd_dataset_request *req, dd_dataset_shape *shape) {
    npz_src src;
    npz_opts o;
    DD_TRY(read_opts(req, &src, &o));
    npz_member mx, my;
    dd_npy_array x, y;
    DD_TRY(get_array(&src, X_TRAIN, 1, &mx, &x));
    geom g;
    dd_status st = image_geom(&x, mx.label, o.nchw, &g);
    // the class count comes from both splits' labels, as load's does
    int64_t m = -1;
    if (st == DD_OK) st = get_array(&src, Y_TRAIN, 0, &my, &y);
    if (st == DD_OK) {
        st = check_labels(&y, my.label, g.n, mx.label);
        if (st == DD_OK) st = max_label(&y, my.label, &m);
        member_free(&my);
    }
    if (st == DD_OK) st = get_array(&src, Y_TEST, 0, &my, &y);
    if (st == DD_OK) {
        st = max_label(&y, my.label, &m);
        member_free(&my);
    }
    if (st == DD_OK) st = class_count(&o, req->options, m, &shape->n_classes);
    member_free(&mx);
    if (st == DD_OK) shape->channels = g.c, shape->height = g.h, shape->width = g.w;
    return st;
}

/* Pixel (n, c, y, x) of an x array in [0, 1] pixel scale (uint8 / 255) or raw float. */
typedef struct split_in {
    npz_member xm, ym;
    dd_npy_array x, y;
    geom g;
} split_in;

static float px(const split_in *s, int nchw, int64_t i, int c, int64_t p) {
    const geom *g = &s->g;
    uint64_t hw = (uint64_t)g->h * g->w;
    uint64_t off = nchw ? ((uint64_t)i * g->c + c) * hw + p : ((uint64_t)i * hw + p) * g->c + c;
    if (s->x.itemsize == 1) return s->x.data[off] * (1.0f / 255.0f);
    return dd_npy_float_at(&s->x, off);
}

static dd_status fill_split(const dd_dataset_request *req, const npz_opts *o, const split_in *s,
                            const char *split, int k, const char *const *names, const float *mean,
                            const float *std, dd_dataset **out) {
    int64_t n = s->g.n;
    if (o->max_images > 0 && o->max_images < n) n = o->max_images;
    const int C = s->g.c, H = s->g.h, W = s->g.w;
    // uint8 images stay bytes (normalised when gathered); float32 ones are
    // stored normalised
    const dd_dtype dtype = s->x.itemsize == 1 ? DD_DTYPE_U8 : DD_DTYPE_F32;
    DD_TRY(rd_dataset_new(req->dataset ? req->dataset : "npz", split, dtype, n, C, H, W, k, names,
                          mean, std, out));
    dd_dataset *d = *out;
    size_t hw = (size_t)H * W;
    for (int64_t i = 0; i < n; i++) {
        if (s->x.itemsize == 1 && !o->nchw) {
            rd_planar_u8(s->x.data + (size_t)i * C * hw, W, H, C, dd_dataset_u8(d, i));
        } else if (s->x.itemsize == 1) {
            memcpy(dd_dataset_u8(d, i), s->x.data + (size_t)i * C * hw, (size_t)C * hw);
        } else {
            float *dst = dd_dataset_f32(d, i);
            for (int c = 0; c < C; c++) {
                float m = mean[c], inv = 1.0f / std[c];
                for (size_t p = 0; p < hw; p++) {
                    float v = px(s, o->nchw, i, c, (int64_t)p);
                    if (!isfinite(v)) {
                        dd_dataset_destroy(d);
                        *out = NULL;
                        return dd_error_set(DD_ERR_PARSE, "%s: image %lld has a non-finite value",
                                            s->xm.label, (long long)i);
                    }
                    // scale: none: already in the network's units; mean/std only describe them
                    dst[c * hw + p] = o->scale_none ? v : (v - m) * inv;
                }
            }
        }
        d->labels[i] = (int32_t)dd_npy_int_at(&s->y, (uint64_t)i);
    }
    return DD_OK;
}

static dd_status npz_load(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test) {
    *train = *test = NULL;
    npz_src src;
    npz_opts o;
    DD_TRY(read_opts(req, &src, &o));
    split_in sp[2];
    memset(sp, 0, sizeof sp);
    char **names = NULL;
    int k = 0;
    dd_status st = DD_OK;
    int64_t mx = -1;
    for (int s = 0; s < 2 && st == DD_OK; s++) {
        st = get_array(&src, s ? X_TEST : X_TRAIN, 0, &sp[s].xm, &sp[s].x);
        if (st == DD_OK) st = image_geom(&sp[s].x, sp[s].xm.label, o.nchw, &sp[s].g);
        if (st == DD_OK) st = get_array(&src, s ? Y_TEST : Y_TRAIN, 0, &sp[s].ym, &sp[s].y);
        if (st == DD_OK) st = check_labels(&sp[s].y, sp[s].ym.label, sp[s].g.n, sp[s].xm.label);
        if (st == DD_OK) st = max_label(&sp[s].y, sp[s].ym.label, &mx);
    }
    if (st != DD_OK) goto done;
    const geom *a = &sp[0].g, *b = &sp[1].g;
    if (a->c != b->c || a->h != b->h || a->w != b->w || sp[0].x.itemsize != sp[1].x.itemsize) {
        st = dd_error_set(DD_ERR_PARSE,
                          "%s (%dx%dx%d, '%s') and %s (%dx%dx%d, '%s') differ in "
                          "image shape or dtype",
                          sp[0].xm.label, a->c, a->h, a->w, sp[0].x.descr, sp[1].xm.label, b->c,
                          b->h, b->w, sp[1].x.descr);
        goto done;
    }
    if ((req->height && req->height != a->h) || (req->width && req->width != a->w)) {
        st = dd_error_set(DD_ERR_UNSUPPORTED,
                          "npz reader: the arrays hold %dx%d images; resizing "
                          "to %dx%d is not supported (leave dataset.height/width unset)",
                          a->w, a->h, req->width, req->height);
        goto done;
    }
    if ((st = class_count(&o, req->options, mx, &k)) != DD_OK) goto done;
    if (o.scale_none && sp[0].x.itemsize == 1) {
        st = dd_error_set(DD_ERR_INVALID,
                          "%s: npz: scale: none applies to float32 images; %s "
                          "holds uint8",
                          dd_options_where(req->options, "scale"), sp[0].xm.label);
        goto done;
    }
    const int C = a->c;
    if ((o.n_mean && o.n_mean != 1 && o.n_mean != C) || (o.n_std && o.n_std != 1 && o.n_std != C)) {
        st = dd_error_set(DD_ERR_INVALID, "npz: mean/std need 1 or %d values (one per channel)", C);
        goto done;
    }
    float mean[DD_MAX_CHANNELS], std[DD_MAX_CHANNELS];
    for (int c = 0; c < C; c++) {
        mean[c] = 0.0f;
        std[c] = 1.0f;
    }
    if (!o.scale_none && (!o.n_mean || !o.n_std)) {
        // per-channel statistics of the training images in [0, 1] pixel scale
        uint64_t hw = (uint64_t)a->h * a->w;
        for (int c = 0; c < C; c++) {
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < a->n; i++)
                for (uint64_t p = 0; p < hw; p++) {
                    double v = px(&sp[0], o.nchw, i, c, (int64_t)p);
                    s1 += v, s2 += v * v;
                }
            double cnt = (double)a->n * (double)hw, m = s1 / cnt, var = s2 / cnt - m * m;
            mean[c] = (float)m;
            std[c] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
        }
    }
    for (int c = 0; c < C; c++) {
        if (o.n_mean) mean[c] = o.mean[o.n_mean == 1 ? 0 : c];
        if (o.n_std) std[c] = o.std[o.n_std == 1 ? 0 : c];
    }
    if (!(names = calloc((size_t)k, sizeof *names))) {
        st = dd_error_set(DD_ERR_NOMEM, "npz reader: out of memory");
        goto done;
    }
    for (int c = 0; c < k && st == DD_OK; c++) {
        names[c] = o.n_names
                       ? rd_strf("%s", dd_options_list_item(req->options, "class_names", (size_t)c))
                       : rd_strf("%d", c);
        if (!names[c]) st = DD_ERR_NOMEM;
    }
    if (st == DD_OK)
        st = fill_split(req, &o, &sp[0], "train", k, (const char *const *)names, mean, std, train);
    if (st == DD_OK)
        st = fill_split(req, &o, &sp[1], "test", k, (const char *const *)names, mean, std, test);
done:
    if (names)
        for (int c = 0; c < k; c++)
            free(names[c]);
    free(names);
    for (int s = 0; s < 2; s++) {
        member_free(&sp[s].xm);
        member_free(&sp[s].ym);
    }
    if (st != DD_OK) {
        dd_dataset_destroy(*train);
        dd_dataset_destroy(*test);
        *train = *test = NULL;
    }
    return st;
}

static const char *const npz_datasets[] = {"npz", NULL};

static const dd_param_spec npz_params[] = {
    {"layout", DD_PARAM_ENUM, "nhwc", 0, 0, 0, "nhwc|nchw",
     "axis order of 4-D image arrays: nhwc (N, H, W, C; NumPy/TensorFlow) or nchw (N, C, H, "
     "W; PyTorch); a 3-D array (N, H, W) is one channel"},
    {"scale", DD_PARAM_ENUM, "unit", 0, 0, 0, "unit|none",
     "float32 images: unit = pixel values in [0, 1], normalized like uint8 images; none = "
     "already normalized, kept as they are (mean/std then only describe them, default 0/1)"},
    {"mean", DD_PARAM_LIST, NULL, 0, 0, 0, NULL,
     "per-channel mean in [0, 1] pixel scale (1 value or one per channel); default: measured "
     "on the training images"},
    {"std", DD_PARAM_LIST, NULL, 0, 0, 0, NULL,
     "per-channel standard deviation (1 value or one per channel); default: measured on the "
     "training images"},
    {"classes", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "number of classes (0 = the length of class_names, else the largest label + 1)"},
    {"class_names", DD_PARAM_LIST, NULL, 0, 0, 0, NULL, "class names in label order"},
    {"max_images", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "read only the first N images of each split (0 = all), for quick runs"},
    {"x_train", DD_PARAM_STRING, "x_train", 0, 0, 0, NULL, "array name of the training images"},
    {"y_train", DD_PARAM_STRING, "y_train", 0, 0, 0, NULL, "array name of the training labels"},
    {"x_test", DD_PARAM_STRING, "x_test", 0, 0, 0, NULL, "array name of the test images"},
    {"y_test", DD_PARAM_STRING, "y_test", 0, 0, 0, NULL, "array name of the test labels"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_dataset_ops npz_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = npz_datasets,
    .load = npz_load,
    .flags = DD_DATASET_LOCAL,
    .probe = npz_probe,
};

static const dd_component npz_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_DATASET,
    .name = "npz",
    .description = "the user's NumPy arrays: a .npz file or a directory of .npy files with "
                   "x_train, y_train, x_test, y_test (uint8 or float32 images, integer labels)",
    .params = npz_params,
    .ops = &npz_ops,
}};

static const dd_plugin_descriptor npz_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "npz",
    .version = "1.0.0",
    .description = "NumPy .npz / .npy dataset reader",
    .n_components = 1,
    .components = npz_components,
};

DD_PLUGIN_DEFINE(npz_descriptor)
