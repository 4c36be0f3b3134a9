/* distill — dataset reader for Caltech-UCSD Birds-200-2011: the index files
 * (images, labels, split, boxes, classes) are cross-checked id by id, then the
 * JPEGs are decoded, optionally cropped to the bird's box, and resized. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "distill/plugin.h"

#include "reader_common.h"

#define CUB_DEFAULT_SIZE 224
#define CUB_MAX_CLASSES 10000

/* ImageNet statistics (natural photographs). */
static const float cub_mean[3] = {0.485f, 0.456f, 0.406f};
static const float cub_std[3] = {0.229f, 0.224f, 0.225f};

typedef struct cub_image {
    const char *rel; /* path under images/ (points into the images.txt buffer) */
    int line;        /* line in images.txt */
    int label;       /* 0-based; -1 until seen */
    int is_train;    /* -1 until seen */
    int has_box;
    double box[4]; /* x, y, w, h */
} cub_image;

typedef struct cub_index {
    char *dir;
    rd_buf images_buf;
    rd_lines images_lines;
    cub_image *img;
    size_t n;
    int64_t max_id;
    int32_t *slot_of_id; /* [max_id + 1] → index into img, -1 if absent */
    int n_classes;
    char **class_names;
} cub_index;

static void cub_index_free(cub_index *x) {
    free(x->dir);
    rd_lines_free(&x->images_lines);
    rd_buf_free(&x->images_buf);
    free(x->img);
    free(x->slot_of_id);
    for (int k = 0; k < x->n_classes && x->class_names; k++)
        free(x->class_names[k]);
    free(x->class_names);
    memset(x, 0, sizeof *x);
}

/* Parses a leading positive integer id followed by white space; *rest points after it. */
static dd_status parse_id(const char *path, int line, char *text, int64_t *id, char **rest) {
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || errno || v < 1 || v > 100000000 || (*end != ' ' && *end != '\t'))
        return dd_error_set(DD_ERR_PARSE, "%s:%d: expected '<id> <value>', got '%s'", path, line,
                            text);
    while (*end == ' ' || *end == '\t')
        end++;
    *id = v;
    *rest = end;
    return DD_OK;
}

static dd_status load_lines(const char *dir, const char *name, rd_buf *b, rd_lines *l) {
    char *path = rd_strf("%s/%s", dir, name);
    if (!path) return DD_ERR_NOMEM;
    dd_status st = rd_read_file(path, 0, b);
    free(path);
    if (st != DD_OK) return st;
    st = rd_split_lines(b, l);
    if (st == DD_OK && l->n == 0) st = dd_error_set(DD_ERR_PARSE, "%s: empty file", b->path);
    if (st != DD_OK) {
        rd_lines_free(l);
        rd_buf_free(b);
    }
    return st;
}

static dd_status read_images(cub_index *x) {
    DD_TRY(load_lines(x->dir, "images.txt", &x->images_buf, &x->images_lines));
    const char *path = x->images_buf.path;
    x->n = x->images_lines.n;
    x->img = calloc(x->n, sizeof *x->img);
    int64_t *ids = malloc(sizeof(int64_t) * x->n);
    if (!x->img || !ids) {
        free(ids);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < x->n; i++) {
        char *rest;
        int line = x->images_lines.lineno[i];
        dd_status st = parse_id(path, line, x->images_lines.text[i], &ids[i], &rest);
        if (st == DD_OK && !rd_safe_relpath(rest))
            st = dd_error_set(DD_ERR_PARSE,
                              "%s:%d: image path '%s' is not a relative path "
                              "inside images/",
                              path, line, rest);
        if (st != DD_OK) {
            free(ids);
            return st;
        }
        if (ids[i] > x->max_id) x->max_id = ids[i];
        x->img[i] = (cub_image){.rel = rest, .line = line, .label = -1, .is_train = -1};
    }
    x->slot_of_id = malloc(sizeof(int32_t) * (size_t)(x->max_id + 1));
    if (!x->slot_of_id) {
        free(ids);
        return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int64_t k = 0; k <= x->max_id; k++)
        x->slot_of_id[k] = -1;
    for (size_t i = 0; i < x->n; i++) {
        int32_t prev = x->slot_of_id[ids[i]];
        if (prev >= 0) {
            dd_status st =
                dd_error_set(DD_ERR_PARSE, "%s:%d: image id %lld already used at line %d", path,
                             x->img[i].line, (long long)ids[i], x->img[prev].line);
            free(ids);
            return st;
        }
        x->slot_of_id[ids[i]] = (int32_t)i;
    }
    free(ids);
    return DD_OK;
}

static dd_status read_classes(cub_index *x) {
    rd_buf b;
    rd_lines l;
    DD_TRY(load_lines(x->dir, "classes.txt", &b, &l));
    dd_status st = DD_OK;
    if (l.n > CUB_MAX_CLASSES)
        st = dd_error_set(DD_ERR_PARSE, "%s: %zu classes (max %d)", b.path, l.n, CUB_MAX_CLASSES);
    if (st == DD_OK && !(x->class_names = calloc(l.n, sizeof(char *))))
        st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", b.path);
    for (size_t k = 0; k < l.n && st == DD_OK; k++) {
        int64_t id;
        char *name;
        st = parse_id(b.path, l.lineno[k], l.text[k], &id, &name);
        if (st != DD_OK) break;
        if (id != (int64_t)k + 1) {
            st = dd_error_set(DD_ERR_PARSE,
                              "%s:%d: class id %lld, expected %zu (ids run 1..K in "
                              "order)",
                              b.path, l.lineno[k], (long long)id, k + 1);
            break;
        }
        // "001.Black_footed_Albatross" → "Black_footed_Albatross"
        const char *dot = strchr(name, '.');
        const char *shown = name;
        if (dot && dot > name && strspn(name, "0123456789") == (size_t)(dot - name) && dot[1])
            shown = dot + 1;
        if (!(x->class_names[k] = rd_strf("%s", shown))) st = DD_ERR_NOMEM;
        x->n_classes = (int)k + 1;
    }
    rd_lines_free(&l);
    rd_buf_free(&b);
    return st;
}

/* Reads one per-image index file; `parse` fills one image from the rest of the line. */
typedef dd_status (*cub_field_fn)(const cub_index *x, const char *path, int line, char *rest,
                                  cub_image *img);

static dd_status field_label(const cub_index *x, const char *path, int line, char *rest,
                             cub_image *img) {
    char *end;
    errno = 0;
    long v = strtol(rest, &end, 10);
    if (end == rest || *end || errno)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: class id '%s' is not an integer", path, line,
                            rest);
    if (v < 1 || v > x->n_classes)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: class id %ld not in 1..%d (classes.txt)", path,
                            line, v, x->n_classes);
    img->label = (int)v - 1;
    return DD_OK;
}

static dd_status field_split(const cub_index *x, const char *path, int line, char *rest,
                             cub_image *img) {
    if (strcmp(rest, "0") != 0 && strcmp(rest, "1") != 0)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: is_training_image is '%s', expected 0 or 1", path,
                            line, rest);
    img->is_train = rest[0] == '1';
    return DD_OK;
}

static dd_status field_box(const cub_index *x, const char *path, int line, char *rest,
                           cub_image *img) {
    char *p = rest;
    for (int k = 0; k < 4; k++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || fabs(v) > 1e7)
            return dd_error_set(DD_ERR_PARSE, "%s:%d: expected '<id> <x> <y> <width> <height>'",
                                path, line);
        img->box[k] = v;
        p = end;
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: trailing text '%s' after the box", path, line, p);
    if (img->box[2] <= 0 || img->box[3] <= 0 || img->box[0] < 0 || img->box[1] < 0)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: bad box x=%g y=%g width=%g height=%g", path, line,
                            img->box[0], img->box[1], img->box[2], img->box[3]);
    img->has_box = 1;
    return DD_OK;
}

static dd_status read_field(cub_index *x, const char *file, cub_field_fn fn) {
    rd_buf b;
    rd_lines l;
    DD_TRY(load_lines(x->dir, file, &b, &l));
    dd_status st = DD_OK;
    int *seen_line = calloc(x->n, sizeof(int));
    if (!seen_line) st = dd_error_set(DD_ERR_NOMEM, "%s: out of memory", b.path);
    for (size_t i = 0; i < l.n && st == DD_OK; i++) {
        int64_t id;
        char *rest;
        int line = l.lineno[i];
        if ((st = parse_id(b.path, line, l.text[i], &id, &rest)) != DD_OK) break;
        int32_t slot = id <= x->max_id ? x->slot_of_id[id] : -1;
        if (slot < 0) {
            st = dd_error_set(DD_ERR_PARSE, "%s:%d: image id %lld is not in images.txt", b.path,
                              line, (long long)id);
            break;
        }
        if (seen_line[slot]) {
            st = dd_error_set(DD_ERR_PARSE, "%s:%d: image id %lld already listed at line %d",
                              b.path, line, (long long)id, seen_line[slot]);
            break;
        }
        seen_line[slot] = line;
        st = fn(x, b.path, line, rest, &x->img[slot]);
    }
    for (size_t i = 0; i < x->n && st == DD_OK; i++)
        if (!seen_line[i])
            st = dd_error_set(DD_ERR_PARSE,
                              "%s: %zu entries for %zu images; none for the image at images.txt "
                              "line %d (%s)",
                              b.path, l.n, x->n, x->img[i].line, x->img[i].rel);
    free(seen_line);
    rd_lines_free(&l);
    rd_buf_free(&b);
    return st;
}

typedef struct cub_job {
    const cub_index *x;
    const size_t *members; /* indices into x->img for this split */
    int crop;
    int out_h, out_w;
    dd_dataset *d;
} cub_job;

static dd_status cub_item(void *ctx, int64_t i) {
    cub_job *job = ctx;
    const cub_image *img = &job->x->img[job->members[i]];
    char *path = rd_strf("%s/images/%s", job->x->dir, img->rel);
    if (!path) return DD_ERR_NOMEM;
    int box[4];
    if (job->crop) {
        box[0] = (int)floor(img->box[0]);
        box[1] = (int)floor(img->box[1]);
        box[2] = (int)ceil(img->box[0] + img->box[2]) - box[0];
        box[3] = (int)ceil(img->box[1] + img->box[3]) - box[1];
    }
    dd_status st = rd_load_jpeg(path, job->crop ? box : NULL, 0, 0, job->out_w, job->out_h,
                                dd_dataset_u8(job->d, i));
    if (st == DD_OK)
        job->d->labels[i] = img->label;
    else
        dd_error_prefix("%s:%d", job->x->images_buf.path, img->line);
    free(path);
    return st;
}

static dd_status load_split(const dd_dataset_request *req, const cub_index *x, int train, int crop,
                            int64_t max_images, dd_dataset **out) {
    *out = NULL;
    size_t *members = malloc(sizeof(size_t) * (x->n ? x->n : 1));
    if (!members) return dd_error_set(DD_ERR_NOMEM, "cub200 reader: out of memory");
    size_t n = 0;
    for (size_t i = 0; i < x->n; i++)
        if (x->img[i].is_train == train) members[n++] = i;
    if (max_images > 0 && (size_t)max_images < n) n = (size_t)max_images;
    int oh, ow;
    rd_target_size(req, CUB_DEFAULT_SIZE, &oh, &ow);
    dd_dataset *d = NULL;
    dd_status st = DD_OK;
    if (n == 0)
        st = dd_error_set(DD_ERR_PARSE, "%s/train_test_split.txt: no %s images", x->dir,
                          train ? "training" : "test");
    if (st == DD_OK)
        st = rd_dataset_new(req->dataset ? req->dataset : "cub200", train ? "train" : "test",
                            DD_DTYPE_U8, (int64_t)n, 3, oh, ow, x->n_classes,
                            (const char *const *)x->class_names, cub_mean, cub_std, &d);
    if (st == DD_OK) {
        cub_job job = {x, members, crop, oh, ow, d};
        st = rd_parallel_for((int64_t)n, cub_item, &job);
    }
    if (st == DD_OK) {
        *out = d;
        d = NULL;
    }
    dd_dataset_destroy(d);
    free(members);
    return st;
}

static dd_status cub_load(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test) {
    *train = *test = NULL;
    if (!req->root) return dd_error_set(DD_ERR_INVALID, "cub200 reader: no root directory");
    if (req->height < 0 || req->width < 0 || req->height > DD_IMAGE_MAX_DIM ||
        req->width > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "cub200 reader: bad image size %dx%d", req->width,
                            req->height);
    const char *crop = rd_opt_str(req->options, "crop", "none");
    int do_crop;
    if (strcmp(crop, "none") == 0)
        do_crop = 0;
    else if (strcmp(crop, "bbox") == 0)
        do_crop = 1;
    else
        return dd_error_set(DD_ERR_INVALID, "cub200 reader: crop '%s' (expected none|bbox)", crop);
    int64_t max_images = rd_opt_int(req->options, "max_images", 0);
    cub_index x;
    memset(&x, 0, sizeof x);
    dd_status st = DD_OK;
    if (!(x.dir = rd_strf("%s/CUB_200_2011", req->root))) return DD_ERR_NOMEM;
    if (!rd_is_dir(x.dir))
        st = dd_error_set(DD_ERR_NOT_FOUND,
                          "%s: no such directory (expected CUB_200_2011.tgz unpacked under %s)",
                          x.dir, req->root);
    if (st == DD_OK) st = read_classes(&x);
    if (st == DD_OK) st = read_images(&x);
    if (st == DD_OK) st = read_field(&x, "image_class_labels.txt", field_label);
    if (st == DD_OK) st = read_field(&x, "train_test_split.txt", field_split);
    if (st == DD_OK) {
        // Boxes are needed only to crop, but a box file that is present must be consistent.
        char *bpath = rd_strf("%s/bounding_boxes.txt", x.dir);
        if (!bpath)
            st = DD_ERR_NOMEM;
        else if (do_crop || rd_exists(bpath))
            st = read_field(&x, "bounding_boxes.txt", field_box);
        free(bpath);
    }
    if (st == DD_OK) st = load_split(req, &x, 1, do_crop, max_images, train);
    if (st == DD_OK) st = load_split(req, &x, 0, do_crop, max_images, test);
    if (st != DD_OK) {
        dd_dataset_destroy(*train);
        *train = NULL;
    }
    cub_index_free(&x);
    return st;
}

static const char *const cub_datasets[] = {"cub200", "cub-200-2011", NULL};

static const dd_param_spec cub_params[] = {
    {"crop", DD_PARAM_ENUM, "none", 0, 0, 0, "none|bbox",
     "none: the whole photograph; bbox: crop to the bird's bounding box"},
    {"max_images", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "read only the first N images of each split (0 = all), for quick runs"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_dataset_ops cub_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = cub_datasets,
    .load = cub_load,
};

static const dd_component cub_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_DATASET,
    .name = "cub200",
    .description = "Caltech-UCSD Birds-200-2011 (200 classes, optional bounding-box crop)",
    .params = cub_params,
    .ops = &cub_ops,
}};

static const dd_plugin_descriptor cub_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "cub200",
    .version = "1.0.0",
    .description = "CUB-200-2011 reader (index files + JPEG images)",
    .n_components = 1,
    .components = cub_components,
};

DD_PLUGIN_DEFINE(cub_descriptor)
