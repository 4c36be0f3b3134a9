/* distill fuzzing — the targets (see fuzz_targets.h). Readers run on a valid
 * fixture written once by the test generators; an input's first byte picks
 * which of the fixture's files it replaces, the rest is that file's new
 * content, and the original is put back afterwards. Seeds are the fixture's
 * own files plus inputs with large headers (huge dimensions, deep nesting),
 * so sizes beyond the first few KB are reachable. */
#define _GNU_SOURCE
#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/manifest.h"
#include "distill/host.h"
#include "distill/image.h"
#include "distill/limits.h"
#include "engine/checkpoint.h"
#include "engine/distilled.h"
#include "engine/npz_write.h"
#include "distill/npy.h"
#include "distill/tensor.h"
#include "readers_gen.h"
#include "voc_xml.h"

static char *g_dir;             // this process's scratch directory
static dd_registry *g_registry; // every plugin (pipeline target)

int fz_seed(const char *dir, const char *tag, const void *data, size_t len) {
    char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, tag) < 0) return -1;
    dd_status s = rg_write_file(path, data, len);
    free(path);
    return s == DD_OK ? 0 : -1;
}

static char *path_in(const char *rel) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", g_dir, rel) < 0) abort();
    return p;
}

// Common setup: a scratch directory and limits that keep a hostile header
// from taking the fuzzer's memory (libFuzzer stops at -rss_limit_mb).
static void remove_scratch(void) {
    if (g_dir) rg_rmtree(g_dir);
}

static int base_init(const char *tag) {
    dd_limits_set(4096, 1 << 22, 256 << 20);
    if (g_dir) return 0;
    if (rg_mkdtemp(tag, &g_dir) != DD_OK) return -1;
    atexit(remove_scratch);
    return 0;
}

static int seed_file(const char *dir, const char *tag, const char *path, int prefix) {
    uint8_t *data = NULL;
    size_t len = 0;
    if (rg_read_file(path, &data, &len) != DD_OK) return -1;
    uint8_t *buf = malloc(len + 1);
    if (!buf) return -1;
    size_t off = 0;
    if (prefix >= 0) buf[off++] = (uint8_t)prefix;
    memcpy(buf + off, data, len);
    int r = fz_seed(dir, tag, buf, len + off);
    free(buf);
    free(data);
    return r;
}

/* ---- pipeline YAML --------------------------------------------------------- */

static int pipeline_init(void) {
    if (base_init("fuzz-pipeline")) return -1;
    return dd_registry_load(1, &g_registry) == DD_OK ? 0 : -1;
}

static void pipeline_run(const uint8_t *data, size_t size) {
    char *p = path_in("p.yaml");
    if (rg_write_file(p, data, size) == DD_OK) {
        dd_pipeline *pl = NULL;
        if (dd_pipeline_load(p, NULL, g_registry, &pl) == DD_OK) dd_pipeline_destroy(pl);
    }
    free(p);
}

// n levels of nested flow sequences, then a scalar: depth beyond the loader's cap.
static char *deep_yaml(const char *prefix, int n) {
    size_t plen = strlen(prefix);
    char *s = malloc(plen + 2 * (size_t)n + 8);
    if (!s) return NULL;
    memcpy(s, prefix, plen);
    char *q = s + plen;
    for (int i = 0; i < n; i++)
        *q++ = '[';
    *q++ = '1';
    for (int i = 0; i < n; i++)
        *q++ = ']';
    *q++ = '\n';
    *q = '\0';
    return s;
}

static int seed_dir_files(const char *dir, const char *src_sub, const char *tag) {
    const char *src = getenv("DISTILL_SOURCE_DIR");
    if (!src) return -1;
    char *base = NULL;
    if (asprintf(&base, "%s/%s", src, src_sub) < 0) return -1;
    char **files = NULL;
    int r = rg_list_files(base, "", &files) == DD_OK ? 0 : -1;
    for (int i = 0; r == 0 && files[i]; i++) {
        if (!strstr(files[i], ".yaml")) continue;
        char *path = NULL, *name = NULL;
        if (asprintf(&path, "%s/%s", base, files[i]) < 0) r = -1;
        if (r == 0 && asprintf(&name, "%s-%d", tag, i) < 0) r = -1;
        if (r == 0) r = seed_file(dir, name, path, -1);
        free(path);
        free(name);
    }
    if (files) rg_free_list(files);
    free(base);
    return r;
}

static int pipeline_seeds(const char *dir) {
    if (seed_dir_files(dir, "pipelines", "pipeline")) return -1;
    char *deep = deep_yaml("dataset: {plugin: mnist}\ndistill:\n  steps: ", 5000);
    int r = deep ? fz_seed(dir, "deep", deep, strlen(deep)) : -1;
    free(deep);
    return r;
}

/* ---- dataset manifest --------------------------------------------------------- */

static int manifest_init(void) {
    return base_init("fuzz-manifest");
}

static void manifest_run(const uint8_t *data, size_t size) {
    dd_manifest *m = NULL;
    if (dd_manifest_parse((const char *)data, size, "fuzz.yaml", &m) == DD_OK)
        dd_manifest_destroy(m);
}

static int manifest_seeds(const char *dir) {
    if (seed_dir_files(dir, "datasets", "manifest")) return -1;
    char *deep = deep_yaml("name: x\nreader: mnist\nfiles: ", 50000);
    int r = deep ? fz_seed(dir, "deep", deep, strlen(deep)) : -1;
    free(deep);
    return r;
}

/* ---- checkpoint ----------------------------------------------------------------- */

static int checkpoint_init(void) {
    return base_init("fuzz-ckpt");
}

static void checkpoint_run(const uint8_t *data, size_t size) {
    char *p = path_in("c.bin");
    dd_ckpt *c = NULL;
    if (rg_write_file(p, data, size) == DD_OK && dd_ckpt_read(p, &c) == DD_OK) {
        static const char *const tags[] = {"config", "pixels", "raw", "iter", "missing"};
        for (size_t i = 0; i < sizeof tags / sizeof *tags; i++) {
            const void *d;
            size_t n;
            float small[4];
            (void)dd_ckpt_get(c, tags[i], &d, &n);
            (void)dd_ckpt_get_exact(c, tags[i], small, sizeof small);
        }
        dd_ckpt_destroy(c);
    }
    free(p);
}

static int checkpoint_seeds(const char *dir) {
    dd_ckpt_writer *w = NULL;
    if (dd_ckpt_writer_create(&w) != DD_OK) return -1;
    float pixels[64], raw[4] = {1, 2, 3, 4};
    for (int i = 0; i < 64; i++)
        pixels[i] = (float)i / 7.0f;
    int64_t iter = 12;
    const char *cfg = "steps: 2\nepochs: 2\n";
    char *p = path_in("seed.bin");
    dd_status s = dd_ckpt_writer_add(w, "config", cfg, strlen(cfg));
    if (s == DD_OK) s = dd_ckpt_writer_add(w, "pixels", pixels, sizeof pixels);
    if (s == DD_OK) s = dd_ckpt_writer_add(w, "raw", raw, sizeof raw);
    if (s == DD_OK) s = dd_ckpt_writer_add(w, "iter", &iter, sizeof iter);
    if (s == DD_OK) s = dd_ckpt_writer_commit(w, p);
    dd_ckpt_writer_destroy(w);
    int r = s == DD_OK ? seed_file(dir, "ckpt", p, -1) : -1;
    free(p);
    return r;
}

/* ---- images ------------------------------------------------------------------------ */

static int image_init(void) {
    return base_init("fuzz-image");
}

static void jpeg_run(const uint8_t *data, size_t size) {
    uint8_t *px = NULL;
    int w, h;
    if (dd_image_decode_jpeg(data, size, "fuzz.jpg", &px, &w, &h) == DD_OK) free(px);
}

static void png_run(const uint8_t *data, size_t size) {
    char *p = path_in("f.png");
    uint8_t *px = NULL;
    int w, h, c;
    if (rg_write_file(p, data, size) == DD_OK && dd_image_read_png(p, &px, &w, &h, &c) == DD_OK)
        free(px);
    free(p);
}

static void fill(uint8_t *px, int n) {
    for (int i = 0; i < n; i++)
        px[i] = (uint8_t)(i * 37 + (i >> 5));
}

static int jpeg_seeds(const char *dir) {
    uint8_t px[40 * 24 * 3];
    fill(px, (int)sizeof px);
    int r = 0;
    for (int k = 0; k < 3 && r == 0; k++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int ch = k == 0 ? 1 : 3, q = k == 2 ? 60 : 95; // gray, 4:4:4, 4:2:0
        if (dd_image_encode_jpeg(px, 40, 24, ch, q, &buf, &len) != DD_OK) return -1;
        char tag[16];
        snprintf(tag, sizeof tag, "jpeg-%d", k);
        r = fz_seed(dir, tag, buf, len);
        // the same stream claiming 32768×32768 pixels in its SOF0 header
        for (size_t i = 2; r == 0 && k == 1 && i + 9 < len; i++) {
            if (buf[i] != 0xFF || buf[i + 1] != 0xC0) continue;
            buf[i + 5] = buf[i + 7] = 0x80;
            buf[i + 6] = buf[i + 8] = 0x00;
            r = fz_seed(dir, "jpeg-huge", buf, len);
            break;
        }
        free(buf);
    }
    return r;
}

static int png_seeds(const char *dir) {
    uint8_t px[33 * 17 * 3];
    fill(px, (int)sizeof px);
    char *g = path_in("g.png"), *c = path_in("c.png");
    int r = dd_image_write_png(g, 33, 17, 1, px) == DD_OK &&
                    dd_image_write_png(c, 33, 17, 3, px) == DD_OK
                ? 0
                : -1;
    if (r == 0) r = seed_file(dir, "png-gray", g, -1);
    if (r == 0) r = seed_file(dir, "png-rgb", c, -1);
    free(g);
    free(c);
    return r;
}

/* ---- VOC annotation XML ---------------------------------------------------------------- */

static void voc_xml_run(const uint8_t *data, size_t size) {
    vx_node *root = NULL;
    if (vx_parse("fuzz.xml", (const char *)data, size, &root) == DD_OK) {
        char text[64];
        for (const vx_node *n = root->first_child; n; n = n->next)
            vx_text(n, text, sizeof text);
        vx_free(root);
    }
}

static int voc_xml_seeds(const char *dir) {
    int n = 0;
    const rg_voc_image *images = rg_voc_fixture(&n);
    if (rg_write_voc(g_dir, images, n) != DD_OK) return -1;
    char **files = NULL;
    if (rg_list_files(g_dir, "VOCdevkit/VOC2007/Annotations", &files) != DD_OK) return -1;
    int r = 0;
    for (int i = 0; r == 0 && files[i]; i++) {
        char *p = path_in(files[i]), tag[32];
        snprintf(tag, sizeof tag, "xml-%d", i);
        r = seed_file(dir, tag, p, -1);
        free(p);
    }
    rg_free_list(files);
    // deep element nesting
    size_t depth = 20000, len = 0;
    char *deep = malloc(depth * 7 + 64);
    if (!deep) return -1;
    len += (size_t)sprintf(deep, "<annotation>");
    for (size_t i = 0; i < depth; i++)
        len += (size_t)sprintf(deep + len, "<a>");
    if (r == 0) r = fz_seed(dir, "xml-deep", deep, len);
    free(deep);
    return r;
}

/* ---- dataset readers on a fixture ---------------------------------------------------------- */

typedef struct reader_fixture {
    const char *plugin, *dataset;
    const char *root;  // the reader's root relative to the fixture (NULL: the fixture itself)
    int height, width; // requested size (VOC, CUB need one)
    int (*write)(const char *dir); // the valid fixture
    const char *const *files;      // the files an input may replace (relative to the fixture)
} reader_fixture;

static int write_mnist(const char *dir) {
    return rg_write_mnist(dir, 20, 10, 28, 28, 0) == DD_OK ? 0 : -1;
}
static int write_cifar(const char *dir) {
    return rg_write_cifar10(dir, 4, 4) == DD_OK ? 0 : -1;
}
static int write_usps(const char *dir) {
    return rg_write_usps(dir, 12, 6, 0) == DD_OK ? 0 : -1;
}
static int write_voc(const char *dir) {
    int n = 0;
    const rg_voc_image *images = rg_voc_fixture(&n);
    return rg_write_voc(dir, images, n) == DD_OK ? 0 : -1;
}
static int write_cub(const char *dir) {
    return rg_write_cub(dir, 3, 2) == DD_OK ? 0 : -1;
}

/* A .npy file: header dict padded with spaces to a multiple of 64 bytes,
 * then data_len bytes of data (which need not match the shape). */
static int write_npy(const char *path, const char *descr, int ndim, const int64_t *shape,
                     const void *data, size_t data_len) {
    char dict[256], dims[128] = "";
    size_t len = 0;
    for (int i = 0; i < ndim; i++)
        len += (size_t)snprintf(dims + len, sizeof dims - len, "%lld,%s", (long long)shape[i],
                                i + 1 < ndim ? " " : "");
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                      descr, dims);
    size_t header = 10 + (size_t)dl + 1, padded = (header + 63) / 64 * 64;
    uint8_t *buf = calloc(1, padded + data_len);
    if (!buf) return -1;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)((padded - 10) & 0xFF);
    buf[9] = (uint8_t)((padded - 10) >> 8);
    memcpy(buf + 10, dict, (size_t)dl);
    memset(buf + 10 + dl, ' ', padded - 10 - (size_t)dl - 1);
    buf[padded - 1] = '\n';
    if (data_len) memcpy(buf + padded, data, data_len);
    dd_status s = rg_write_file(path, buf, padded + data_len);
    free(buf);
    return s == DD_OK ? 0 : -1;
}

static uint8_t g_px[20 * 4 * 4];
static int64_t g_lab[20];

static void npy_data(void) {
    for (size_t i = 0; i < sizeof g_px; i++)
        g_px[i] = (uint8_t)(i * 29);
    for (int i = 0; i < 20; i++)
        g_lab[i] = i % 3;
}

static int write_npy_dir(const char *dir) {
    npy_data();
    const int64_t xs[] = {20, 4, 4}, xt[] = {10, 4, 4}, ys[] = {20}, yt[] = {10};
    const struct {
        const char *name, *descr;
        int ndim;
        const int64_t *shape;
        const void *data;
        size_t len;
    } f[] = {{"x_train.npy", "|u1", 3, xs, g_px, 320},
             {"y_train.npy", "<i8", 1, ys, g_lab, 160},
             {"x_test.npy", "|u1", 3, xt, g_px, 160},
             {"y_test.npy", "<i8", 1, yt, g_lab, 80}};
    int r = 0;
    for (size_t i = 0; r == 0 && i < sizeof f / sizeof *f; i++) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, f[i].name) < 0) return -1;
        r = write_npy(p, f[i].descr, f[i].ndim, f[i].shape, f[i].data, f[i].len);
        free(p);
    }
    return r;
}

static int write_npz_file(const char *dir) {
    npy_data();
    const int64_t xs[] = {20, 4, 4}, xt[] = {10, 4, 4}, ys[] = {20}, yt[] = {10};
    dd_npz *z = NULL;
    if (dd_npz_create(&z) != DD_OK) return -1;
    dd_status s = dd_npz_add(z, "x_train", "|u1", 1, 3, xs, g_px);
    if (s == DD_OK) s = dd_npz_add_i64(z, "y_train", 1, ys, g_lab);
    if (s == DD_OK) s = dd_npz_add(z, "x_test", "|u1", 1, 3, xt, g_px);
    if (s == DD_OK) s = dd_npz_add_i64(z, "y_test", 1, yt, g_lab);
    char *p = NULL;
    if (s == DD_OK && asprintf(&p, "%s/d.npz", dir) < 0) s = DD_ERR_NOMEM;
    if (s == DD_OK) s = dd_npz_write(z, p);
    free(p);
    dd_npz_destroy(z);
    return s == DD_OK ? 0 : -1;
}

/* A small image tree: train/{a,b}/ and test/{a,b}/, PNG and JPEG. */
static int write_image_tree(const char *dir) {
    static const char *const rel[] = {"train/a/0.png", "train/a/1.jpg", "train/b/0.png",
                                      "test/a/0.png", "test/b/0.jpg"};
    uint8_t px[8 * 8 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 13);
    for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, rel[i]) < 0) return -1;
        char *slash = strrchr(p, '/');
        *slash = '\0';
        dd_status s = rg_mkdirs(p);
        *slash = '/';
        if (s == DD_OK)
            s = strstr(p, ".png") ? dd_image_write_png(p, 8, 8, 3, px)
                                  : dd_image_write_jpeg_file(p, px, 8, 8, 3, 90);
        free(p);
        if (s != DD_OK) return -1;
    }
    return 0;
}

static const char *const tree_files[] = {"train/a/0.png", "train/a/1.jpg", "test/b/0.jpg", NULL};

static const char *const mnist_files[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", NULL};
static const char *const cifar_files[] = {"cifar-10-batches-bin/data_batch_1.bin",
                                          "cifar-10-batches-bin/test_batch.bin",
                                          "cifar-10-batches-bin/batches.meta.txt", NULL};
static const char *const usps_files[] = {"usps", "usps.t", NULL};
static const char *const voc_files[] = {"VOCdevkit/VOC2007/ImageSets/Main/trainval.txt",
                                        "VOCdevkit/VOC2007/Annotations/000001.xml",
                                        "VOCdevkit/VOC2007/JPEGImages/000001.jpg", NULL};
static const char *const cub_files[] = {
    "CUB_200_2011/images.txt",           "CUB_200_2011/image_class_labels.txt",
    "CUB_200_2011/train_test_split.txt", "CUB_200_2011/bounding_boxes.txt",
    "CUB_200_2011/classes.txt",          NULL};

static const char *const npy_files[] = {"x_train.npy", "y_train.npy", "x_test.npy", "y_test.npy",
                                        NULL};
static const char *const npz_files[] = {"d.npz", NULL};

static const reader_fixture readers[] = {
    {"mnist", "mnist", NULL, 0, 0, write_mnist, mnist_files},
    {"cifar10", "cifar10", NULL, 0, 0, write_cifar, cifar_files},
    {"usps", "usps", NULL, 0, 0, write_usps, usps_files},
    {"pascal-voc", "voc2007", NULL, 32, 32, write_voc, voc_files},
    {"cub200", "cub200", NULL, 32, 32, write_cub, cub_files},
    {"npz", "npz", NULL, 0, 0, write_npy_dir, npy_files},
    {"npz", "npz", "d.npz", 0, 0, write_npz_file, npz_files},
    {"imagefolder", "imagefolder", NULL, 0, 0, write_image_tree, tree_files},
};

static const reader_fixture *g_reader;
static const dd_component *g_comp;
static uint8_t **g_orig; // original content of each replaceable file
static size_t *g_orig_len, g_n_files;

static int reader_init_at(size_t index) {
    g_reader = &readers[index];
    if (!g_reader || base_init("fuzz-reader")) return -1;
    if (rg_load_reader(g_reader->plugin, &g_registry, &g_comp) != DD_OK) return -1;
    if (g_reader->write(g_dir)) return -1;
    while (g_reader->files[g_n_files])
        g_n_files++;
    g_orig = calloc(g_n_files, sizeof *g_orig);
    g_orig_len = calloc(g_n_files, sizeof *g_orig_len);
    if (!g_orig || !g_orig_len) return -1;
    for (size_t i = 0; i < g_n_files; i++) {
        char *p = path_in(g_reader->files[i]);
        dd_status s = rg_read_file(p, &g_orig[i], &g_orig_len[i]);
        free(p);
        if (s != DD_OK) return -1;
    }
    return 0;
}

static void reader_run(const uint8_t *data, size_t size) {
    if (size < 1) return;
    size_t k = data[0] % g_n_files;
    char *p = path_in(g_reader->files[k]);
    if (rg_write_file(p, data + 1, size - 1) == DD_OK) {
        dd_dataset *train = NULL, *test = NULL;
        char *root = g_reader->root ? path_in(g_reader->root) : NULL;
        dd_status st = rg_read(g_comp, g_reader->dataset, root ? root : g_dir, NULL,
                               g_reader->height, g_reader->width, &train, &test);
        free(root);
        if (st == DD_OK) {
            // what an accepted file gives the consumers: every image, read
            // through the accessor
            const dd_dataset *sp[2] = {train, test};
            for (int s = 0; s < 2; s++) {
                float *x = malloc(dd_dataset_image_size(sp[s]) * sizeof *x);
                for (int64_t i = 0; x && i < sp[s]->n; i++)
                    if (dd_dataset_gather_range(sp[s], i, 1, x) != DD_OK) abort();
                free(x);
            }
            dd_dataset_destroy(train);
            dd_dataset_destroy(test);
        }
        (void)rg_write_file(p, g_orig[k], g_orig_len[k]);
    }
    free(p);
}

static int reader_seeds(const char *dir) {
    int r = 0;
    for (size_t i = 0; r == 0 && i < g_n_files; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "file-%zu", i);
        char *p = path_in(g_reader->files[i]);
        r = seed_file(dir, tag, p, (int)i);
        free(p);
    }
    // an IDX image file whose header claims 30000×30000 images
    if (r == 0 && strcmp(g_reader->plugin, "mnist") == 0) {
        uint8_t hdr[1 + 16 + 64] = {0, 0, 0, 8, 3, 0, 0, 0, 20, 0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30};
        r = fz_seed(dir, "idx-huge", hdr, sizeof hdr);
    }
    return r;
}

#define READER_TARGET(fn, index)                                                                   \
    static int fn##_init(void) {                                                                   \
        return reader_init_at(index);                                                              \
    }

READER_TARGET(idx, 0)
READER_TARGET(cifar10, 1)
READER_TARGET(usps, 2)
READER_TARGET(voc, 3)
READER_TARGET(cub, 4)
READER_TARGET(npz_dir, 5)
READER_TARGET(npz_zip, 6)
READER_TARGET(imagefolder, 7)

/* ---- .npy headers ------------------------------------------------------------------------- */

static void npy_run(const uint8_t *data, size_t size) {
    dd_npy_array a;
    if (dd_npy_parse("fuzz.npy", data, size, &a) == DD_OK && a.count > 0) {
        if (a.kind == 'f')
            (void)dd_npy_float_at(&a, a.count - 1);
        else
            (void)dd_npy_int_at(&a, a.count - 1);
    }
}

static int npy_seeds(const char *dir) {
    if (write_npy_dir(g_dir)) return -1;
    int r = 0;
    for (int i = 0; r == 0 && npy_files[i]; i++) {
        char *p = path_in(npy_files[i]), tag[32];
        snprintf(tag, sizeof tag, "npy-%d", i);
        r = seed_file(dir, tag, p, -1);
        free(p);
    }
    // a float array, and a header announcing 2^40 bytes with no data behind it
    const int64_t two[] = {2}, huge[] = {1 << 20, 1 << 20};
    const float f[] = {1.5f, -2};
    char *g = path_in("f.npy"), *h = path_in("huge.npy");
    if (r == 0) r = write_npy(g, "<f4", 1, two, f, sizeof f);
    if (r == 0) r = seed_file(dir, "npy-f32", g, -1);
    if (r == 0) r = write_npy(h, "|u1", 2, huge, NULL, 0);
    if (r == 0) r = seed_file(dir, "npy-huge", h, -1);
    free(g);
    free(h);
    return r;
}

/* ---- distilled.npz (the input of distill evaluate) ---------------------------------- */

static int distilled_npz_init(void) {
    return base_init("fuzz-dnpz");
}

static void distilled_npz_run(const uint8_t *data, size_t size) {
    char *p = path_in("in.npz");
    dd_distilled *d = NULL;
    int has_norm;
    if (rg_write_file(p, data, size) == DD_OK && dd_distilled_load_npz(p, &d, &has_norm) == DD_OK)
        dd_distilled_destroy(d);
    free(p);
}

/* distill's own distilled.npz, with hard and with soft labels. */
static int distilled_npz_seeds(const char *dir) {
    int r = 0;
    for (int soft = 0; r == 0 && soft < 2; soft++) {
        dd_distilled *d = NULL;
        if (dd_distilled_create(2, 2, 1, 3, 1, 4, 4, 0.01f, &d) != DD_OK) return -1;
        for (size_t i = 0; i < (size_t)d->steps * (size_t)d->per_step * 16; i++)
            d->images[i] = (float)i / 10.f;
        if (soft && !(d->soft = dd_alloc_floats((size_t)d->steps * (size_t)d->per_step * 3)))
            r = -1;
        for (size_t i = 0; r == 0 && soft && i < (size_t)d->steps * (size_t)d->per_step * 3; i++)
            d->soft[i] = (float)(i % 3) / 3.f;
        char *sub = path_in(soft ? "dsoft" : "dhard");
        if (r == 0 && (rg_mkdirs(sub) != DD_OK || dd_distilled_save(d, NULL, sub) != DD_OK)) r = -1;
        char *npz = NULL;
        if (r == 0 && asprintf(&npz, "%s/distilled.npz", sub) < 0) r = -1;
        if (r == 0) r = seed_file(dir, soft ? "distilled-soft" : "distilled-hard", npz, -1);
        free(npz);
        free(sub);
        dd_distilled_destroy(d);
    }
    return r;
}

static const fz_target targets[] = {
    {"pipeline", pipeline_init, pipeline_run, pipeline_seeds},
    {"manifest", manifest_init, manifest_run, manifest_seeds},
    {"checkpoint", checkpoint_init, checkpoint_run, checkpoint_seeds},
    {"jpeg", image_init, jpeg_run, jpeg_seeds},
    {"png", image_init, png_run, png_seeds},
    {"voc_xml", image_init, voc_xml_run, voc_xml_seeds},
    {"idx", idx_init, reader_run, reader_seeds},
    {"cifar10", cifar10_init, reader_run, reader_seeds},
    {"usps", usps_init, reader_run, reader_seeds},
    {"voc", voc_init, reader_run, reader_seeds},
    {"cub", cub_init, reader_run, reader_seeds},
    {"npy", image_init, npy_run, npy_seeds},
    {"npz_dir", npz_dir_init, reader_run, reader_seeds},
    {"npz_zip", npz_zip_init, reader_run, reader_seeds},
    {"imagefolder", imagefolder_init, reader_run, reader_seeds},
    {"distilled_npz", distilled_npz_init, distilled_npz_run, distilled_npz_seeds},
};

static const fz_target *all[sizeof targets / sizeof *targets + 1];

const fz_target *fz_find(const char *name) {
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++)
        if (strcmp(targets[i].name, name) == 0) return &targets[i];
    return NULL;
}

const fz_target *const *fz_all(void) {
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++)
        all[i] = &targets[i];
    return all;
}
