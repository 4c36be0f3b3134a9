/* distill — dataset reader for PASCAL VOC 2007 as single-label
 * classification: each image gets the class of its largest non-difficult
 * object, optionally cropped to that object's box. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill/dataset.h"
#include "distill/image.h"
#include "distill/limits.h"
#include "distill/plugin.h"

#include "reader_common.h"
#include "voc_xml.h"

#define VOC_CLASSES 20
#define VOC_DEFAULT_SIZE 224

static const char *const voc_classes[VOC_CLASSES] = {
    "aeroplane", "bicycle",     "bird",  "boat",        "bottle", "bus",      "car",
    "cat",       "chair",       "cow",   "diningtable", "dog",    "horse",    "motorbike",
    "person",    "pottedplant", "sheep", "sofa",        "train",  "tvmonitor"};

/* ImageNet statistics: VOC photos are natural images of the same kind. */
static const float voc_mean[3] = {0.485f, 0.456f, 0.406f};
static const float voc_std[3] = {0.229f, 0.224f, 0.225f};

/* The object an image is labelled with. */
typedef struct voc_pick {
    int label;
    int width, height; /* from <size> */
    int box[4];        /* x, y, w, h in 0-based pixels, clipped to the image */
} voc_pick;

static dd_status parse_int(const char *path, const vx_node *parent, const char *key, double *out) {
    const vx_node *n = vx_child(parent, key);
    if (!n)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: <%s> has no <%s>", path, parent->line,
                            parent->name, key);
    char text[64];
    vx_text(n, text, sizeof text);
    char *end = NULL;
    double v = strtod(text, &end);
    if (!text[0] || *end || !isfinite(v) || fabs(v) > 1e7)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: <%s> is '%s', not a number", path, n->line, key,
                            text);
    *out = v;
    return DD_OK;
}

/* <size>: the image's width and height. */
static dd_status read_size(const char *path, const vx_node *root, voc_pick *pick) {
    const vx_node *size = vx_child(root, "size");
    if (!size) return dd_error_set(DD_ERR_PARSE, "%s: <annotation> has no <size>", path);
    double w = 0, h = 0;
    DD_TRY(parse_int(path, size, "width", &w));
    DD_TRY(parse_int(path, size, "height", &h));
    if (w < 1 || h < 1 || w > DD_IMAGE_MAX_DIM || h > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: bad image size %gx%g", path, size->line, w, h);
    // the annotation's size is held to the limits before the JPEG is read
    // (the decoder checks the JPEG's own header again)
    DD_TRY(dd_limits_check_image(path, (int64_t)w, (int64_t)h));
    pick->width = (int)w;
    pick->height = (int)h;
    return DD_OK;
}

/* An <object>'s <name>: one of the 20 classes. */
static dd_status object_label(const char *path, const vx_node *o, int *label) {
    const vx_node *nn = vx_child(o, "name");
    if (!nn) return dd_error_set(DD_ERR_PARSE, "%s:%d: <object> has no <name>", path, o->line);
    char cname[64];
    vx_text(nn, cname, sizeof cname);
    for (int k = 0; k < VOC_CLASSES; k++)
        if (strcmp(cname, voc_classes[k]) == 0) {
            *label = k;
            return DD_OK;
        }
    return dd_error_set(DD_ERR_PARSE,
                        "%s:%d: unknown class '%s' (expected one of the 20 VOC classes: "
                        "aeroplane, bicycle, ..., tvmonitor)",
                        path, nn->line, cname);
}

/* An <object>'s <difficult> flag (0 when absent). */
static dd_status object_difficult(const char *path, const vx_node *o, int *difficult) {
    *difficult = 0;
    const vx_node *dn = vx_child(o, "difficult");
    if (!dn) return DD_OK;
    char dt[16];
    vx_text(dn, dt, sizeof dt);
    if (strcmp(dt, "0") != 0 && strcmp(dt, "1") != 0)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: <difficult> is '%s', expected 0 or 1", path,
                            dn->line, dt);
    *difficult = dt[0] == '1';
    return DD_OK;
}

/* An <object>'s <bndbox> as x, y, w, h in 0-based pixels, clipped to the
 * pick's image size; an empty box is an error. */
static dd_status object_box(const char *path, const vx_node *o, const voc_pick *pick, int box[4]) {
    const vx_node *bb = vx_child(o, "bndbox");
    if (!bb) return dd_error_set(DD_ERR_PARSE, "%s:%d: <object> has no <bndbox>", path, o->line);
    double x0, y0, x1, y1;
    DD_TRY(parse_int(path, bb, "xmin", &x0));
    DD_TRY(parse_int(path, bb, "ymin", &y0));
    DD_TRY(parse_int(path, bb, "xmax", &x1));
    DD_TRY(parse_int(path, bb, "ymax", &y1));
    // VOC boxes are 1-based and inclusive; convert to 0-based [x0, x1).
    int ix0 = (int)lround(x0) - 1, iy0 = (int)lround(y0) - 1;
    int ix1 = (int)lround(x1), iy1 = (int)lround(y1);
    if (ix0 < 0) ix0 = 0;
    if (iy0 < 0) iy0 = 0;
    if (ix1 > pick->width) ix1 = pick->width;
    if (iy1 > pick->height) iy1 = pick->height;
    if (ix1 <= ix0 || iy1 <= iy0)
        return dd_error_set(DD_ERR_PARSE,
                            "%s:%d: bounding box (%g,%g)-(%g,%g) is empty or outside the %dx%d "
                            "image",
                            path, bb->line, x0, y0, x1, y1, pick->width, pick->height);
    box[0] = ix0;
    box[1] = iy0;
    box[2] = ix1 - ix0;
    box[3] = iy1 - iy0;
    return DD_OK;
}

/* The labelling rule over the <object>s: the largest non-difficult one; if
 * every object is difficult, the largest of all. Needs pick's image size. */
static dd_status pick_object(const char *path, const vx_node *root, voc_pick *pick) {
    // pass 0: non-difficult objects only; pass 1: all objects
    double best_area[2] = {-1, -1};
    int best_label[2] = {-1, -1}, best_box[2][4];
    int n_objects = 0;
    for (const vx_node *o = root->first_child; o; o = o->next) {
        if (strcmp(o->name, "object") != 0) continue;
        n_objects++;
        int label = -1, difficult = 0, box[4] = {0};
        DD_TRY(object_label(path, o, &label));
        DD_TRY(object_difficult(path, o, &difficult));
        DD_TRY(object_box(path, o, pick, box));
        double area = (double)box[2] * box[3];
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 0 && difficult) continue;
            if (area > best_area[pass]) { // strict: ties keep the earlier object
                best_area[pass] = area;
                best_label[pass] = label;
                memcpy(best_box[pass], box, sizeof box);
            }
        }
    }
    if (n_objects == 0) return dd_error_set(DD_ERR_PARSE, "%s: annotation has no <object>", path);
    int use = best_label[0] >= 0 ? 0 : 1;
    pick->label = best_label[use];
    memcpy(pick->box, best_box[use], sizeof pick->box);
    return DD_OK;
}

/* Parses one annotation and applies the labelling rule. */
static dd_status voc_annotation(const char *path, voc_pick *pick) {
    rd_buf b;
    DD_TRY(rd_read_file(path, 0, &b));
    vx_node *root = NULL;
    dd_status st = vx_parse(b.path, (const char *)b.data, b.len, &root);
    rd_buf_free(&b);
    if (st != DD_OK) return st;
    if (strcmp(root->name, "annotation") != 0)
        st = dd_error_set(DD_ERR_PARSE, "%s:%d: root element is <%s>, expected <annotation>", path,
                          root->line, root->name);
    if (st == DD_OK) st = read_size(path, root, pick);
    if (st == DD_OK) st = pick_object(path, root, pick);
    vx_free(root);
    return st;
}

typedef struct voc_job {
    const char *voc_dir; /* .../VOCdevkit/VOC2007 */
    const char *list_path;
    const rd_lines *ids;
    int crop;
    int out_h, out_w;
    dd_dataset *d;
} voc_job;

static dd_status voc_item(void *ctx, int64_t i) {
    voc_job *job = ctx;
    const char *id = job->ids->text[i];
    int line = job->ids->lineno[i];
    // trainval.txt lines are bare ids; other ImageSets lists add " 1"/"-1" flags.
    char idbuf[128];
    size_t len = strcspn(id, " \t");
    if (len == 0 || len >= sizeof idbuf || memchr(id, '/', len) || (len <= 2 && id[0] == '.'))
        return dd_error_set(DD_ERR_PARSE, "%s:%d: '%s' is not an image id", job->list_path, line,
                            id);
    memcpy(idbuf, id, len);
    idbuf[len] = '\0';
    char *xml = rd_strf("%s/Annotations/%s.xml", job->voc_dir, idbuf);
    char *jpg = rd_strf("%s/JPEGImages/%s.jpg", job->voc_dir, idbuf);
    dd_status st = DD_ERR_NOMEM;
    if (!xml || !jpg) goto done;
    voc_pick pick;
    if ((st = voc_annotation(xml, &pick)) != DD_OK) goto done;
    st = rd_load_jpeg(jpg, job->crop ? pick.box : NULL, pick.width, pick.height, job->out_w,
                      job->out_h, dd_dataset_u8(job->d, i));
    if (st != DD_OK) goto done;
    job->d->labels[i] = pick.label;
done:
    if (st != DD_OK) dd_error_prefix("%s:%d: image %s", job->list_path, line, idbuf);
    free(xml);
    free(jpg);
    return st;
}

static dd_status load_split(const dd_dataset_request *req, const char *voc_dir, const char *list,
                            const char *split, int crop, int64_t max_images, dd_dataset **out) {
    *out = NULL;
    char *path = rd_strf("%s/ImageSets/Main/%s.txt", voc_dir, list);
    if (!path) return DD_ERR_NOMEM;
    rd_buf b;
    dd_status st = rd_read_file(path, 0, &b);
    free(path);
    if (st != DD_OK) return st;
    rd_lines ids = {0};
    dd_dataset *d = NULL;
    if ((st = rd_split_lines(&b, &ids)) != DD_OK) goto done;
    if (ids.n == 0) {
        st = dd_error_set(DD_ERR_PARSE, "%s: empty image list", b.path);
        goto done;
    }
    int64_t n = (int64_t)ids.n;
    if (max_images > 0 && max_images < n) n = max_images;
    int oh, ow;
    rd_target_size(req, VOC_DEFAULT_SIZE, &oh, &ow);
    st = rd_dataset_new(req->dataset ? req->dataset : "pascal-voc", split, DD_DTYPE_U8, n, 3, oh,
                        ow, VOC_CLASSES, voc_classes, voc_mean, voc_std, &d);
    if (st != DD_OK) goto done;
    voc_job job = {voc_dir, b.path, &ids, crop, oh, ow, d};
    if ((st = rd_parallel_for(n, voc_item, &job)) != DD_OK) goto done;
    *out = d;
    d = NULL;
done:
    dd_dataset_destroy(d);
    rd_lines_free(&ids);
    rd_buf_free(&b);
    return st;
}

static dd_status voc_load(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test) {
    *train = *test = NULL;
    if (!req->root) return dd_error_set(DD_ERR_INVALID, "pascal-voc reader: no root directory");
    if (req->height < 0 || req->width < 0 || req->height > DD_IMAGE_MAX_DIM ||
        req->width > DD_IMAGE_MAX_DIM)
        return dd_error_set(DD_ERR_INVALID, "pascal-voc reader: bad image size %dx%d", req->width,
                            req->height);
    const char *crop = rd_opt_str(req->options, "crop", "none");
    int do_crop;
    if (strcmp(crop, "none") == 0)
        do_crop = 0;
    else if (strcmp(crop, "object") == 0)
        do_crop = 1;
    else
        return dd_error_set(DD_ERR_INVALID, "pascal-voc reader: crop '%s' (expected none|object)",
                            crop);
    int64_t max_images = rd_opt_int(req->options, "max_images", 0);
    char *voc_dir = rd_strf("%s/VOCdevkit/VOC2007", req->root);
    if (!voc_dir) return DD_ERR_NOMEM;
    dd_status st = DD_OK;
    if (!rd_is_dir(voc_dir))
        st = dd_error_set(DD_ERR_NOT_FOUND,
                          "%s: no such directory (expected the VOC2007 trainval and test "
                          "archives unpacked under %s)",
                          voc_dir, req->root);
    if (st == DD_OK) st = load_split(req, voc_dir, "trainval", "train", do_crop, max_images, train);
    if (st == DD_OK) st = load_split(req, voc_dir, "test", "test", do_crop, max_images, test);
    if (st != DD_OK) {
        dd_dataset_destroy(*train);
        *train = NULL;
    }
    free(voc_dir);
    return st;
}

static const char *const voc_datasets[] = {"pascal-voc", "voc2007", NULL};

static const dd_param_spec voc_params[] = {
    {"crop", DD_PARAM_ENUM, "none", 0, 0, 0, "none|object",
     "none: the whole image; object: crop to the box of the object that gives the label"},
    {"max_images", DD_PARAM_INT, "0", DD_PARAM_HAS_MIN, 0, 0, NULL,
     "read only the first N images of each split (0 = all), for quick runs"},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

static const dd_dataset_ops voc_ops = {
    .struct_size = sizeof(dd_dataset_ops),
    .datasets = voc_datasets,
    .load = voc_load,
};

static const dd_component voc_components[] = {{
    .struct_size = sizeof(dd_component),
    .kind = DD_COMPONENT_DATASET,
    .name = "pascal-voc",
    .description = "PASCAL VOC 2007 as 20-class single-label classification (class of the "
                   "largest non-difficult object)",
    .params = voc_params,
    .ops = &voc_ops,
}};

static const dd_plugin_descriptor voc_descriptor = {
    .abi_version = DD_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(dd_plugin_descriptor),
    .name = "pascal-voc",
    .version = "1.0.0",
    .description = "PASCAL VOC 2007 reader (JPEG images, XML annotations)",
    .n_components = 1,
    .components = voc_components,
};

DD_PLUGIN_DEFINE(voc_descriptor)
