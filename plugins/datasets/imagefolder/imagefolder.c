/* distill — dataset reader for the user's own images: a folder tree
 * train/<class>/..., test/<class>/... (or a flat <class>/... split by a seeded
 * test_fraction) of PNG and JPEG files; class names are the folder names. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "distill/limits.h"
#include "distill/log.h"
#include "distill/plugin.h"

#include "reader_common.h"

#define IF_MAX_CLASSES 100000
#define IF_MAX_FILES 50000000

enum { FMT_PNG = 1, FMT_JPEG = 2 };

typedef struct if_file {
    char *path; /* root/<split>/<class>/<name> (owned) */
    int label;
    int w, h, c, fmt; /* from the header */
} if_file;

typedef struct if_split {
    if_file *f;
    size_t n, cap;
} if_split;

typedef struct if_class {
    char *name;
    char *dir;
    char **files; /* sorted file names (owned) */
    size_t n;
} if_class;

typedef struct if_tree {
    if_class *cls;
    size_t n;
    size_t skipped;
    char *skipped_example;
} if_tree;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_class(const void *a, const void *b) {
    return strcmp(((const if_class *)a)->name, ((const if_class *)b)->name);
}

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    char ext[8];
    size_t n = strlen(dot + 1);
    if (n == 0 || n >= sizeof ext) return 0;
    for (size_t i = 0; i < n && i + 1 < sizeof ext; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    ext[n] = '\0';
    return strcmp(ext, "png") == 0 || strcmp(ext, "jpg") == 0 || strcmp(ext, "jpeg") == 0;
}

static void tree_free(if_tree *t) {
    for (size_t k = 0; k < t->n; k++) {
        for (size_t i = 0; i < t->cls[k].n; i++)
            free(t->cls[k].files[i]);
        free(t->cls[k].files);
        free(t->cls[k].name);
        free(t->cls[k].dir);
    }
    free(t->cls);
    free(t->skipped_example);
    memset(t, 0, sizeof *t);
}

static void note_skipped(if_tree *t, const char *path) {
    t->skipped++;
    if (!t->skipped_example) t->skipped_example = rd_strf("%s", path);
}

/* Names in `dir` (without "." and ".."), sorted by bytes. */
static dd_status list_dir(const char *dir, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return dd_error_set(DD_ERR_IO, "%s: cannot open directory", dir);
    size_t cap = 0;
    char **v = NULL;
    dd_status st = DD_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (*n >= IF_MAX_FILES) {
            st = dd_error_set(DD_ERR_LIMIT, "%s: more than %d entries", dir, IF_MAX_FILES);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            v = nv;
        }
        if (!(v[*n] = rd_strf("%s", e->d_name))) {
            st = DD_ERR_NOMEM;
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (st != DD_OK) {
        for (size_t i = 0; i < *n; i++)
            free(v[i]);
        free(v);
        *n = 0;
        return st;
    }
    if (*n) qsort(v, *n, sizeof *v, cmp_str);
    *out = v;
    return DD_OK;
}

/* The class folders under `dir` and their image files. */
static dd_status scan_tree(const char *dir, if_tree *t) {
    memset(t, 0, sizeof *t);
    char **names = NULL;
    size_t n = 0;
    DD_TRY(list_dir(dir, &names, &n));
    dd_status st = DD_OK;
    t->cls = calloc(n ? n : 1, sizeof *t->cls);
    if (!t->cls) st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", dir);
    for (size_t i = 0; i < n && st == DD_OK; i++) {
        char *sub = rd_strf("%s/%s", dir, names[i]);
        if (!sub) {
            st = DD_ERR_NOMEM;
            break;
        }
        if (names[i][0] == '.' || !rd_is_dir(sub)) {
            note_skipped(t, sub);
            free(sub);
            continue;
        }
        if (t->n >= IF_MAX_CLASSES) {
            free(sub);
            st = dd_error_set(DD_ERR_LIMIT, "%s: more than %d class folders", dir, IF_MAX_CLASSES);
            break;
        }
        if_class *c = &t->cls[t->n++];
        c->dir = sub;
        if (!(c->name = rd_strf("%s", names[i]))) {
            st = DD_ERR_NOMEM;
            break;
        }
        char **files = NULL;
        size_t nf = 0;
        if ((st = list_dir(sub, &files, &nf)) != DD_OK) break;
        c->files = files;
        for (size_t j = 0; j < nf && st == DD_OK; j++) {
            char *fp = rd_strf("%s/%s", sub, files[j]);
            if (!fp) {
                st = DD_ERR_NOMEM;
                break;
            }
            struct stat sb;
            if (files[j][0] == '.' || !has_image_ext(files[j]) || stat(fp, &sb) != 0 ||
                !S_ISREG(sb.st_mode)) {
                note_skipped(t, fp);
                free(files[j]);
            } else {
                files[c->n++] = files[j];
            }
            free(fp);
        }
        if (st == DD_OK && c->n == 0)
            st = dd_error_set(DD_ERR_PARSE,
                              "%s: empty class folder (no .png, .jpg or .jpeg images)", sub);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (st == DD_OK && t->n == 0)
        st = dd_error_set(DD_ERR_PARSE, "%s: no classes (expected one folder of images per class)",
                          dir);
    if (st == DD_OK) qsort(t->cls, t->n, sizeof *t->cls, cmp_class);
    if (st != DD_OK) tree_free(t);
    return st;
}

/* The class sets of the two splits must be equal. */
static dd_status same_classes(const char *root, const if_tree *a, const if_tree *b) {
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i >= a->n ? 1 : j >= b->n ? -1 : strcmp(a->cls[i].name, b->cls[j].name);
        if (c == 0) {
            i++;
            j++;
            continue;
        }
        const char *name = c < 0 ? a->cls[i].name : b->cls[j].name;
        return dd_error_set(DD_ERR_PARSE,
                            "%s: train and test class sets differ: class '%s' is in %s/ but not "
                            "in %s/ (%s/%s)",
                            root, name, c < 0 ? "train" : "test", c < 0 ? "test" : "train",
                            c < 0 ? "train" : "test", name);
    }
    return DD_OK;
}

/* ---- headers ------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Width, height and stored channel count (1 gray, 3 colour) from a PNG or
 * JPEG header; DD_ERR_PARSE naming the file when it is neither. */
static dd_status read_header(const char *path, int *w, int *h, int *c, int *fmt) {
    rd_buf b;
    DD_TRY(rd_read_file(path, 0, &b));
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    dd_status st = DD_OK;
    const uint8_t *p = b.data;
    *w = *h = *c = 0;
    if (b.len >= 8 && memcmp(p, png_sig, 8) == 0) {
        *fmt = FMT_PNG;
        if (b.len < 33 || memcmp(p + 12, "IHDR", 4) != 0) {
            st = dd_error_set(DD_ERR_PARSE, "%s: undecodable image: truncated PNG header", path);
        } else {
            uint32_t pw = be32(p + 16), ph = be32(p + 20);
            int ct = p[25];
            if (pw == 0 || ph == 0 || pw > DD_IMAGE_MAX_DIM || ph > DD_IMAGE_MAX_DIM)
                st = dd_error_set(DD_ERR_PARSE, "%s: undecodable image: PNG size %ux%u", path, pw,
                                  ph);
            *w = (int)pw;
            *h = (int)ph;
            *c = ct == 0 || ct == 4 ? 1 : 3;
        }
    } else if (b.len >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
        *fmt = FMT_JPEG;
        size_t i = 2;
        while (st == DD_OK) {
            while (i < b.len && p[i] == 0xFF && i + 1 < b.len && p[i + 1] == 0xFF)
                i++;
            if (i + 4 > b.len || p[i] != 0xFF) {
                st =
                    dd_error_set(DD_ERR_PARSE, "%s: undecodable image: no JPEG frame header", path);
                break;
            }
            int m = p[i + 1];
            size_t len = (size_t)p[i + 2] << 8 | p[i + 3];
            if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
                if (len < 8 || i + 2 + len > b.len) {
                    st = dd_error_set(DD_ERR_PARSE, "%s: undecodable image: truncated JPEG", path);
                    break;
                }
                *h = p[i + 5] << 8 | p[i + 6];
                *w = p[i + 7] << 8 | p[i + 8];
                *c = p[i + 9] == 1 ? 1 : 3;
                if (*w == 0 || *h == 0)
                    st = dd_error_set(DD_ERR_PARSE, "%s: undecodable image: JPEG size %dx%d", path,
                                      *w, *h);
                break;
            }
            if (m == 0xD9 || m == 0xDA || len < 2) {
                st =
                    dd_error_set(DD_ERR_PARSE, "%s: undecodable image: no JPEG frame header", path);
                break;
            }
            i += 2 + len;
        }
    } else {
        st = dd_error_set(DD_ERR_PARSE, "%s: undecodable image: neither PNG nor JPEG", path);
    }
    rd_buf_free(&b);
    return st;
}

/* ---- options ------------------------------------------------------------- */

typedef struct if_opts {
    int channels; /* 0 = as stored */
    double test_fraction;
    uint64_t seed;
    int n_mean, n_std;
    float mean[DD_MAX_CHANNELS], std[DD_MAX_CHANNELS];
    int64_t max_images;
} if_opts;

static dd_status parse_floats(const dd_options *o, const char *key, float *v, int *n) {
    *n = 0;
    if (!o || !dd_options_has(o, key)) return DD_OK;
    size_t len = dd_options_list_len(o, key);
    if (len > 3)
        return dd_error_set(DD_ERR_INVALID, "%s: imagefolder: %s has %zu values (at most 3)",
                            dd_options_where(o, key), key, len);
    for (size_t i = 0; i < len; i++) {
        const char *s = dd_options_list_item(o, key, i);
        char *end = NULL;
        double d = s ? strtod(s, &end) : 0;
        if (!s || end == s || *end || !isfinite(d) || (strcmp(key, "std") == 0 && d <= 0))
            return dd_error_set(DD_ERR_INVALID, "%s: imagefolder: %s[%zu] '%s' is not a %s",
                                dd_options_where(o, key), key, i, s ? s : "",
                                strcmp(key, "std") == 0 ? "positive number" : "number");
        v[i] = (float)d;
    }
    *n = (int)len;
    return DD_OK;
}

static dd_status get_opts(const dd_dataset_request *req, if_opts *o) {
    memset(o, 0, sizeof *o);
    const dd_options *opt = req->options;
    o->channels = (int)rd_opt_int(opt, "channels", 0);
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return dd_error_set(DD_ERR_INVALID, "imagefolder: channels %d (expected 0, 1 or 3)",
                            o->channels);
    o->test_fraction =
        opt && dd_options_has(opt, "test_fraction") ? dd_options_float(opt, "test_fraction") : 0.0;
    if (!(o->test_fraction >= 0 && o->test_fraction < 1))
        return dd_error_set(DD_ERR_INVALID, "imagefolder: test_fraction %g not in [0, 1)",
                            o->test_fraction);
    o->seed = (uint64_t)rd_opt_int(opt, "seed", 0);
    o->max_images = rd_opt_int(opt, "max_images", 0);
    DD_TRY(parse_floats(opt, "mean", o->mean, &o->n_mean));
    DD_TRY(parse_floats(opt, "std", o->std, &o->n_std));
    if (req->height < 0 || req->width < 0 || req->height > DD_IMAGE_MAX_DIM ||
        req->width > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "imagefolder: bad image size %dx%d", req->width,
                            req->height);
    return DD_OK;
}

/* ---- splits -------------------------------------------------------------- */

static dd_status split_add(if_split *s, const char *dir, const char *name, int label) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        if_file *nf = realloc(s->f, cap * sizeof *nf);
        if (!nf) return dd_error_set(DD_ERR_NOMEM, "imagefolder: out of memory");
        s->f = nf;
        s->cap = cap;
    }
    if_file *f = &s->f[s->n];
    memset(f, 0, sizeof *f);
    if (!(f->path = rd_strf("%s/%s", dir, name))) return DD_ERR_NOMEM;
    f->label = label;
    s->n++;
    return DD_OK;
}

static void split_free(if_split *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->f[i].path);
    free(s->f);
    memset(s, 0, sizeof *s);
}

static dd_status split_all(const if_tree *t, if_split *s) {
    for (size_t k = 0; k < t->n; k++)
        for (size_t i = 0; i < t->cls[k].n; i++)
            DD_TRY(split_add(s, t->cls[k].dir, t->cls[k].files[i], (int)k));
    return DD_OK;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Per class: round(fraction × n) images (at least 1, leaving at least 1 for
 * training) chosen by a Fisher-Yates shuffle seeded by (seed, class index);
 * both splits keep the sorted file order. */
static dd_status split_fraction(const if_tree *t, double frac, uint64_t seed, if_split *tr,
                                if_split *te) {
    for (size_t k = 0; k < t->n; k++) {
        const if_class *c = &t->cls[k];
        if (c->n < 2)
            return dd_error_set(DD_ERR_PARSE,
                                "%s: %zu image; a test_fraction split needs at least 2 per class",
                                c->dir, c->n);
        size_t n_test = (size_t)floor(frac * (double)c->n + 0.5);
        if (n_test < 1) n_test = 1;
        if (n_test > c->n - 1) n_test = c->n - 1;
        size_t *perm = malloc(c->n * sizeof *perm);
        unsigned char *is_test = calloc(c->n, 1);
        if (!perm || !is_test) {
            free(perm);
            free(is_test);
            return dd_error_set(DD_ERR_NOMEM, "imagefolder: out of memory");
        }
        for (size_t i = 0; i < c->n; i++)
            perm[i] = i;
        uint64_t x = seed * 0x100000001B3ull + k;
        for (size_t i = c->n - 1; i > 0; i--) {
            size_t j = (size_t)(splitmix(&x) % (i + 1));
            size_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        for (size_t i = 0; i < n_test; i++)
            is_test[perm[i]] = 1;
        dd_status st = DD_OK;
        for (size_t i = 0; i < c->n && st == DD_OK; i++)
            st = split_add(is_test[i] ? te : tr, c->dir, c->files[i], (int)k);
        free(perm);
        free(is_test);
        DD_TRY(st);
    }
    return DD_OK;
}

/* ---- loading ------------------------------------------------------------- */

typedef struct if_job {
    if_split *s;
    int c, h, w; /* target */
    uint8_t *px; /* n × h × w × c (HWC per image) */
} if_job;

static dd_status header_item(void *ctx, int64_t i) {
    if_job *job = ctx;
    if_file *f = &job->s->f[i];
    DD_TRY(read_header(f->path, &f->w, &f->h, &f->c, &f->fmt));
    return dd_limits_check_image(f->path, f->w, f->h);
}

/* Resizes so the image covers h×w (the shorter side, relative to the
 * target's aspect, matches), then crops the centre. */
static dd_status fit(const char *path, const uint8_t *src, int sw, int sh, int c, int w, int h,
                     uint8_t *dst) {
    if (sw == w && sh == h) {
        memcpy(dst, src, (size_t)w * h * c);
        return DD_OK;
    }
    double s = fmax((double)w / sw, (double)h / sh);
    int rw = (int)fmax(w, floor(sw * s + 0.5)), rh = (int)fmax(h, floor(sh * s + 0.5));
    if (rw > DD_IMAGE_MAX_DIM) rw = DD_IMAGE_MAX_DIM;
    if (rh > DD_IMAGE_MAX_DIM) rh = DD_IMAGE_MAX_DIM;
    uint8_t *tmp = malloc((size_t)rw * rh * c);
    if (!tmp) return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    dd_status st = dd_image_resize_u8(src, sw, sh, c, tmp, rw, rh);
    if (st == DD_OK) st = dd_image_crop_u8(tmp, rw, rh, c, (rw - w) / 2, (rh - h) / 2, w, h, dst);
    if (st != DD_OK) dd_error_prefix("%s", path);
    free(tmp);
    return st;
}

static dd_status decode_item(void *ctx, int64_t i) {
    if_job *job = ctx;
    const if_file *f = &job->s->f[i];
    uint8_t *px = NULL, *conv = NULL;
    int w = 0, h = 0, c = 3;
    dd_status st;
    if (f->fmt == FMT_PNG)
        st = dd_image_read_png(f->path, &px, &w, &h, &c);
    else
        st = dd_image_read_jpeg_file(f->path, &px, &w, &h);
    if (st != DD_OK) {
        if (!strstr(dd_error_message(), "undecodable"))
            dd_error_prefix("%s: undecodable image", f->path);
        return st;
    }
    if (w != f->w || h != f->h) {
        free(px);
        return dd_error_set(DD_ERR_PARSE, "%s: undecodable image: header says %dx%d, decoded %dx%d",
                            f->path, f->w, f->h, w, h);
    }
    // A grayscale JPEG is decoded to RGB by replication: keep one plane.
    if (f->fmt == FMT_JPEG && f->c == 1 && c == 3) {
        for (size_t p = 0; p < (size_t)w * h; p++)
            px[p] = px[p * 3];
        c = 1;
    }
    const uint8_t *src = px;
    if (c != job->c) {
        conv = malloc((size_t)w * h * job->c);
        if (!conv) {
            free(px);
            return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", f->path);
        }
        for (size_t p = 0; p < (size_t)w * h; p++) {
            if (job->c == 1) {
                const uint8_t *q = px + p * 3;
                conv[p] = (uint8_t)((299u * q[0] + 587u * q[1] + 114u * q[2] + 500u) / 1000u);
            } else {
                conv[p * 3] = conv[p * 3 + 1] = conv[p * 3 + 2] = px[p];
            }
        }
        src = conv;
    }
    size_t isz = (size_t)job->c * job->h * job->w;
    st = fit(f->path, src, w, h, job->c, job->w, job->h, job->px + (size_t)i * isz);
    free(px);
    free(conv);
    return st;
}

/* Reads every header of split `s` (in parallel) and decides the target shape. */
static dd_status split_shape(const dd_dataset_request *req, const if_opts *o, if_split *s, int *c,
                             int *h, int *w) {
    if_job job = {.s = s};
    DD_TRY(rd_parallel_for((int64_t)s->n, header_item, &job));
    if (*c == 0) {
        *c = o->channels;
        for (size_t i = 0; i < s->n && *c == 0; i++)
            if (s->f[i].c != s->f[0].c) *c = -1;
        if (*c == -1)
            for (size_t i = 1; i < s->n; i++)
                if (s->f[i].c != s->f[0].c)
                    return dd_error_set(DD_ERR_PARSE,
                                        "%s: %d channel(s), but %s has %d; set channels: 1 or 3 "
                                        "to convert",
                                        s->f[i].path, s->f[i].c, s->f[0].path, s->f[0].c);
        if (*c == 0) *c = s->f[0].c;
    }
    if (*h == 0) {
        if (req->height > 0 || req->width > 0) {
            *h = req->height > 0 ? req->height : req->width;
            *w = req->width > 0 ? req->width : req->height;
        } else {
            *h = s->f[0].h;
            *w = s->f[0].w;
        }
    }
    if (req->height <= 0 && req->width <= 0)
        for (size_t i = 0; i < s->n; i++)
            if (s->f[i].w != *w || s->f[i].h != *h)
                return dd_error_set(DD_ERR_PARSE,
                                    "%s: image is %dx%d, but the others are %dx%d (mixed sizes: "
                                    "set dataset.height/width to resize and center-crop)",
                                    s->f[i].path, s->f[i].w, s->f[i].h, *w, *h);
    return DD_OK;
}

static dd_status decode_split(if_split *s, int c, int h, int w, uint8_t **out) {
    *out = NULL;
    // the decoded (HWC) bytes and the dataset's planar copy of them
    DD_TRY(dd_limits_check_dataset(s->n ? s->f[0].path : "imagefolder", (int64_t)s->n, c, h, w, 2));
    size_t isz = (size_t)c * h * w;
    uint8_t *px = malloc(isz * (s->n ? s->n : 1));
    if (!px) return dd_error_set(DD_ERR_NOMEM, "imagefolder: out of memory for %zu images", s->n);
    if_job job = {.s = s, .c = c, .h = h, .w = w, .px = px};
    dd_status st = rd_parallel_for((int64_t)s->n, decode_item, &job);
    if (st != DD_OK) {
        free(px);
        return st;
    }
    *out = px;
    return DD_OK;
}

static dd_status make_dataset(const dd_dataset_request *req, const char *split, const if_tree *t,
                              const if_split *s, const uint8_t *px, int c, int h, int w,
                              const float *mean, const float *std, dd_dataset **out) {
    char **names = malloc(t->n * sizeof *names);
    if (!names) return dd_error_set(DD_ERR_NOMEM, "imagefolder: out of memory");
    for (size_t k = 0; k < t->n; k++)
        names[k] = t->cls[k].name;
    dd_status st = rd_dataset_new(req->dataset ? req->dataset : "imagefolder", split, DD_DTYPE_U8,
                                  (int64_t)s->n, c, h, w, (int)t->n, (const char *const *)names,
                                  mean, std, out);
    free(names);
    DD_TRY(st);
    size_t isz = (size_t)c * h * w;
    for (size_t i = 0; i < s->n; i++) {
        rd_planar_u8(px + i * isz, w, h, c, dd_dataset_u8(*out, (int64_t)i));
        (*out)->labels[i] = s->f[i].label;
    }
    return DD_OK;
}

static void compute_stats(const uint8_t *px, size_t n, int c, int h, int w, float *mean,
                          float *std) {
    size_t hw = (size_t)h * w;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = px + i * hw * c + ch;
            for (size_t q = 0; q < hw; q++) {
                double v = p[q * c] / 255.0;
                sum += v;
                sq += v * v;
            }
        }
        double cnt = (double)n * hw, m = sum / cnt, var = sq / cnt - m * m;
        double sd = var > 0 ? sqrt(var) : 0;
        mean[ch] = (float)m;
        std[ch] = sd > 1e-6 ? (float)sd : 1.0f; // a constant channel: no scaling
    }
}

typedef struct if_layout {
    char *train_dir, *test_dir; /* test_dir NULL: flat tree split by test_fraction */
    if_tree train, test;
    if_split s_train, s_test;
} if_layout;

static void layout_free(if_layout *l) {
    free(l->train_dir);
    free(l->test_dir);
    tree_free(&l->train);
    tree_free(&l->test);
    split_free(&l->s_train);
    split_free(&l->s_test);
}

static dd_status scan_layout(const dd_dataset_request *req, const if_opts *o, if_layout *l) {
    memset(l, 0, sizeof *l);
    const char *root = req->root;
    if (!root) return dd_error_set(DD_ERR_INVALID, "imagefolder: no root directory");
    if (!rd_is_dir(root)) return dd_error_set(DD_ERR_NOT_FOUND, "%s: not a directory", root);
    char *tr = rd_strf("%s/train", root), *te = rd_strf("%s/test", root);
    if (!tr || !te) {
        free(tr);
        free(te);
        return DD_ERR_NOMEM;
    }
    int has_tr = rd_is_dir(tr), has_te = rd_is_dir(te);
    dd_status st = DD_OK;
    if (o->test_fraction > 0) {
        if (has_tr || has_te)
            st = dd_error_set(DD_ERR_INVALID,
                              "%s: has a %s/ folder; test_fraction splits a flat <class>/ tree "
                              "(set test_fraction: 0 to use train/ and test/)",
                              root, has_tr ? "train" : "test");
        free(tr);
        free(te);
        if (st == DD_OK && !(l->train_dir = rd_strf("%s", root))) st = DD_ERR_NOMEM;
        if (st == DD_OK) st = scan_tree(root, &l->train);
        if (st == DD_OK)
            st = split_fraction(&l->train, o->test_fraction, o->seed, &l->s_train, &l->s_test);
    } else {
        l->train_dir = tr;
        l->test_dir = te;
        if (!has_tr || !has_te)
            st = dd_error_set(DD_ERR_NOT_FOUND,
                              "%s: no %s/ folder (expected train/<class>/ and test/<class>/, or "
                              "set test_fraction to split a flat <class>/ tree)",
                              root, has_tr ? "test" : "train");
        if (st == DD_OK) st = scan_tree(tr, &l->train);
        if (st == DD_OK) st = scan_tree(te, &l->test);
        if (st == DD_OK) st = same_classes(root, &l->train, &l->test);
        if (st == DD_OK) st = split_all(&l->train, &l->s_train);
        if (st == DD_OK) st = split_all(&l->test, &l->s_test);
    }
    if (st == DD_OK) {
        size_t skipped = l->train.skipped + l->test.skipped;
        const char *ex =
            l->train.skipped_example ? l->train.skipped_example : l->test.skipped_example;
        if (skipped)
            dd_info("imagefolder: skipped %zu entries that are not class folders or .png/.jpg/"
                    ".jpeg images (e.g. %s)",
                    skipped, ex);
    }
    if (st != DD_OK) layout_free(l);
    return st;
}

static void cap_split(if_split *s, int64_t max_images) {
    if (max_images <= 0 || (size_t)max_images >= s->n) return;
    for (size_t i = (size_t)max_images; i < s->n; i++)
        free(s->f[i].path);
    s->n = (size_t)max_images;
}

static dd_status if_load(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test) {
    *train = *test = NULL;
    if_opts o;
    DD_TRY(get_opts(req, &o));
    if_layout l;
    DD_TRY(scan_layout(req, &o, &l));
    cap_split(&l.s_train, o.max_images);
    cap_split(&l.s_test, o.max_images);
    int c = 0, h = 0, w = 0;
    uint8_t *ptr = NULL, *pte = NULL;
    dd_status st = split_shape(req, &o, &l.s_train, &c, &h, &w);
    // The test split must agree with the training split's shape unless converted.
    int c2 = o.channels ? c : 0, h2 = h, w2 = w;
    if (st == DD_OK && l.s_test.n) st = split_shape(req, &o, &l.s_test, &c2, &h2, &w2);
    if (st == DD_OK && c2 != c && l.s_test.n)
        st = dd_error_set(DD_ERR_PARSE,
                          "%s: test images have %d channel(s), training images %d; set channels: "
                          "1 or 3 to convert",
                          l.s_test.f[0].path, c2, c);
    if (st == DD_OK && l.s_test.n == 0)
        st = dd_error_set(DD_ERR_PARSE, "%s: no test images", req->root);
    if (st == DD_OK && (o.n_mean && o.n_mean != c))
        st = dd_error_set(DD_ERR_INVALID, "imagefolder: mean has %d values for %d channel(s)",
                          o.n_mean, c);
    if (st == DD_OK && (o.n_std && o.n_std != c))
        st = dd_error_set(DD_ERR_INVALID, "imagefolder: std has %d values for %d channel(s)",
                          o.n_std, c);
    if (st == DD_OK) st = decode_split(&l.s_train, c, h, w, &ptr);
    if (st == DD_OK) st = decode_split(&l.s_test, c, h, w, &pte);
    float mean[DD_MAX_CHANNELS] = {0}, std[DD_MAX_CHANNELS] = {1, 1, 1, 1};
    if (st == DD_OK) {
        compute_stats(ptr, l.s_train.n, c, h, w, mean, std);
        if (o.n_mean) memcpy(mean, o.mean, sizeof mean);
        if (o.n_std) memcpy(std, o.std, sizeof std);
    }
    if (st == DD_OK)
        st = make_dataset(req, "train", &l.train, &l.s_train, ptr, c, h, w, mean, std, train);
    if (st == DD_OK)
        st = make_dataset(req, "test", &l.train, &l.s_test, pte, c, h, w, mean, std, test);
    if (st != DD_OK) {
        dd_dataset_destroy(*train);
        dd_dataset_destroy(*test);
        *train = *test = NULL;
    }
    free(ptr);
    free(pte);
    layout_free(&l);
    return st;
}

static dd_status if_probe(const dd_dataset_request *req, dd_dataset_shape *shape) {
    memset(shape, 0, sizeof *shape);
    if_opts o;
    DD_TRY(get_opts(req, &o));
    if_layout l;
    DD_TRY(scan_layout(req, &o, &l));
    dd_status st = DD_OK;
    if (l.s_train.n == 0) st = dd_error_set(DD_ERR_PARSE, "%s: no training images", req->root);
    int w = 0, h = 0, c = 0, fmt = 0;
    if (st == DD_OK) st = read_header(l.s_train.f[0].path, &w, &h, &c, &fmt);
    if (st == DD_OK) {
        shape->channels = o.channels ? o.channels : c;
        if (req->height > 0 || req->width > 0) {
            h = req->height > 0 ? req->height : req->width;
            w = req->width > 0 ? req->width : req->height;
        }
        shape->height = h;
        shape->width = w;
        shape->n_classes = (int)l.train.n;
    }
    layout_free(&l);
    return st;
}

static const char *const if_datasets[] = {"imagefolder", NULL};

static const dd_param_spec if_params[] = {
    {"channels", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX, 0, 3, NULL,
     "0 = as stored (all images must agree); 1 converts to grayscale, 3 to RGB"},
    {"test_fraction", DD_PARAM_FLOAT, "0",
     DD_PARAM_HAS_MIN | DD_PARAM_HAS_MAX | DD_PARAM_MAX_EXCLUSIVE, 0, 1, NULL,
     "0 = the tree has train/ and test/; in (0, 1): split a flat <class>/ tree, per class, "
     "seeded by 'seed'"},
    {"seed", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL, "seed of the test_fraction split"},
    {"mean", DD_PARAM_LIST, NULL, 0, 0, 0, NULL,
     "per-channel mean overriding the one computed on the training split"},
    {"std", DD_PARAM_LIST, NULL, 0, 0, 0, NULL,
     "per-channel std overriding the one computed on the training split"},
    {"max_images", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "read only the first N images of each split (0 = all), for quick runs"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_dataset_ops if_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = if_datasets,
    .load = if_load,
    .flags = DD_DATASET_LOCAL | DD_DATASET_UNPACK_PATH,
    .probe = if_probe,
};

static const dd_component if_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_DATASET,
    .name = "imagefolder",
    .description = "your own images: train/<class>/*, test/<class>/* of PNG/JPEG files "
                   "(dataset.path: a directory, .tar, .tar.gz or .zip)",
    .params = if_params,
    .ops = &if_ops,
}};

static const dd_plugin_descriptor if_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "imagefolder",
    .version = "1.0.0",
    .description = "image-folder reader (PNG via libpng, JPEG via libjpeg-turbo)",
    .n_components = 1,
    .components = if_components,
};
DD_PLUGIN_DEFINE(if_descriptor)
