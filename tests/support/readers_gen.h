/* distill tests — generators for the dataset-reader tests: small datasets in
 * each reader's exact on-disk format, packed the way the upstream archives
 * are, plus file surgery for corrupt variants and plugin-loading helpers.
 * Pixel and label values are pure functions of their indices (rg_*_pixel,
 * rg_*_label), so tests compute what they expect instead of hard-coding it. */
#ifndef DD_READERS_GEN_H
#define DD_READERS_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "distill/host.h"
#include "distill/dataset.h"
#include "distill/plugin.h"
#include "distill/status.h"

/* ---- files ---------------------------------------------------------------- */

/** Creates a fresh temporary directory under $TMPDIR (or /tmp); *out is malloc'ed. */
dd_status rg_mkdtemp(const char *tag, char **out);
/** Removes a directory tree (best effort). */
void rg_rmtree(const char *path);
/** mkdir -p. */
dd_status rg_mkdirs(const char *path);
/** Writes `len` bytes to `path` (creating parent directories). */
dd_status rg_write_file(const char *path, const void *data, size_t len);
/** Writes a NUL-terminated string to `path`. */
dd_status rg_write_text(const char *path, const char *text);
/** Reads a whole file; *data is malloc'ed (NUL-terminated). */
dd_status rg_read_file(const char *path, uint8_t **data, size_t *len);
/** A whole text file, malloc'ed and NUL-terminated; NULL if unreadable. */
char *rg_read_text(const char *path);
/** printf into a new string (malloc'ed); aborts the test program when out of memory. */
char *rg_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Gzips `src` into `dst` (zlib). */
dd_status rg_gzip_file(const char *src, const char *dst);
/** Cuts `path` to `len` bytes. */
dd_status rg_truncate(const char *path, size_t len);
/** Overwrites n bytes at `offset`. */
dd_status rg_patch(const char *path, size_t offset, const void *bytes, size_t n);
/** Appends n bytes. */
dd_status rg_append(const char *path, const void *bytes, size_t n);
/** Replaces the first occurrence of `from` by `to` in a text file; DD_ERR_NOT_FOUND if absent. */
dd_status rg_replace_text(const char *path, const char *from, const char *to);
/** Packs files (paths relative to base_dir, NULL-terminated) into a tar
 * (gzip-compressed if `gzip`) with libarchive. Parent directories get their
 * own entries first, as GNU tar writes them. */
dd_status rg_pack_tar(const char *archive, const char *base_dir, const char *const *files,
                      int gzip);
/** Recursively lists regular files under base_dir/sub as paths relative to base_dir (sorted).
 * *out is a malloc'ed NULL-terminated array of malloc'ed strings; free with rg_free_list. */
dd_status rg_list_files(const char *base_dir, const char *sub, char ***out);
void rg_free_list(char **list);

/* ---- MNIST (IDX) ------------------------------------------------------------ */

/** Pixel p (row-major) of image i of a split (0 train, 1 test). */
uint8_t rg_mnist_pixel(int split, int64_t i, int p);
/** Label of image i of a split. */
uint8_t rg_mnist_label(int split, int64_t i);
/** Writes {train,t10k}-{images-idx3,labels-idx1}-ubyte in `dir` (with `gz`:
 * only the .gz files, as upstream distributes them). */
dd_status rg_write_mnist(const char *dir, int n_train, int n_test, int rows, int cols, int gz);

/* ---- CIFAR-10 (binary) ----------------------------------------------------- */

#define RG_CIFAR_RECORD 3073
/** Byte b (0..3071, planar R,G,B) of record r of file f (0..4 data_batch_{f+1}, 5 test_batch). */
uint8_t rg_cifar_pixel(int f, int r, int b);
uint8_t rg_cifar_label(int f, int r);
/** Writes dir/cifar-10-batches-bin/ with data_batch_1..5.bin (per_batch
 * records each), test_batch.bin (n_test records) and batches.meta.txt. */
dd_status rg_write_cifar10(const char *dir, int per_batch, int n_test);
/** The class names batches.meta.txt lists. */
extern const char *const rg_cifar_classes[10];

/* ---- PASCAL VOC 2007 ------------------------------------------------------- */

typedef struct rg_voc_object {
    const char *name;
    int xmin, ymin, xmax, ymax; /* 1-based inclusive, as in VOC */
    int difficult;
} rg_voc_object;

typedef struct rg_voc_image {
    const char *id;
    int width, height;
    int test; /* 0 trainval, 1 test */
    int n_objects;
    rg_voc_object objects[4];
    uint8_t bg[3]; /* background colour */
    uint8_t fg[3]; /* colour painted inside every object's box */
} rg_voc_image;

/** A small fixed VOC set (trainval and test) exercising the labelling rule:
 * largest object, difficult objects ignored, ties, all-difficult fallback. */
const rg_voc_image *rg_voc_fixture(int *n);
/** Index of the object that gives the label under the documented rule. */
int rg_voc_expected_object(const rg_voc_image *im);
/** VOC class index of a name (-1 if unknown). */
int rg_voc_class_index(const char *name);
/** Writes dir/VOCdevkit/VOC2007/{JPEGImages,Annotations,ImageSets/Main}. */
dd_status rg_write_voc(const char *dir, const rg_voc_image *images, int n);
/** Packs dir's VOC tree into out_dir/VOCtrainval_06-Nov-2007.tar and
 * out_dir/VOCtest_06-Nov-2007.tar (uncompressed, as upstream). */
dd_status rg_pack_voc(const char *dir, const rg_voc_image *images, int n, const char *out_dir);

/* ---- CUB-200-2011 ------------------------------------------------------------ */

typedef struct rg_cub_image {
    int id;    /* 1-based */
    int label; /* 0-based class */
    int is_train;
    int width, height;
    int box[4]; /* x, y, w, h (0-based pixels) */
    uint8_t bg[3], fg[3];
    char rel[128]; /* path under images/ */
} rg_cub_image;

/** Image i (0-based) of a CUB set with n_classes × per_class images. */
void rg_cub_info(int n_classes, int per_class, int i, rg_cub_image *out);
/** Class directory name of class k, e.g. "001.Class_1". */
void rg_cub_class_dir(int k, char *out, size_t cap);
/** Writes dir/CUB_200_2011/ (images/, images.txt, image_class_labels.txt,
 * train_test_split.txt, bounding_boxes.txt, classes.txt). */
dd_status rg_write_cub(const char *dir, int n_classes, int per_class);
/** Packs dir/CUB_200_2011 into `archive` (tar.gz, as CUB_200_2011.tgz). */
dd_status rg_pack_cub(const char *dir, const char *archive);

/* ---- USPS (LIBSVM text, bzip2) ---------------------------------------------- */

/** Pixel byte p (row-major, 0..255) of image i of a split (0 train, 1 test). */
uint8_t rg_usps_pixel(int split, int64_t i, int p);
/** Class index (0..9) of image i of a split; the file's label is this + 1. */
uint8_t rg_usps_label(int split, int64_t i);
/** Formats line i of a split, `<label> 1:<v1> ... 256:<v256>` with
 * v = 2·b/255 − 1 printed so that round((v + 1)/2 · 255) gives b back. */
dd_status rg_usps_line(int split, int64_t i, char *out, size_t cap);
/** Compresses `src` into `dst` with bzip2 (libarchive, raw format). */
dd_status rg_bzip2_file(const char *src, const char *dst);
/** Writes usps (n_train lines) and usps.t (n_test lines) in `dir` (with
 * `bz2`: only usps.bz2 and usps.t.bz2, as upstream distributes them). */
dd_status rg_write_usps(const char *dir, int n_train, int n_test, int bz2);

/* ---- plugins --------------------------------------------------------------- */

/** Loads one reader plugin (<name>.so from DISTILL_PLUGIN_PATH) into a fresh
 * registry and finds its dataset component. */
dd_status rg_load_reader(const char *plugin, dd_registry **reg, const dd_component **comp);
/** Runs a reader: options from `kv` (NULL-terminated "key=value", may be NULL). */
dd_status rg_read(const dd_component *comp, const char *dataset, const char *root,
                  const char *const *kv, int height, int width, dd_dataset **train,
                  dd_dataset **test);

/* ---- test fixture ------------------------------------------------------------ */

/** One reader loaded into its own registry, plus a fresh temporary directory. */
typedef struct rg_fixture {
    const char *reader; /* plugin name, e.g. "cifar10" */
    dd_registry *reg;
    const dd_component *comp;
    char *dir;
    char path[1024]; /* rg_fixture_path's result */
} rg_fixture;

/** Loads `reader` and creates a temporary directory tagged `tag`; NULL on
 * failure (with dd_error_message() on stderr). */
rg_fixture *rg_fixture_open(const char *reader, const char *tag);
/** Removes the directory tree and frees the fixture (NULL is fine). */
void rg_fixture_close(rg_fixture *f);
/** Writes "<dir>/<sub>/<rel>" (or "<dir>/<rel>" if `sub` is NULL) into f->path and returns it. */
const char *rg_fixture_path(rg_fixture *f, const char *sub, const char *rel);
/** Runs the reader on f->dir and checks that it fails with `status`, a message
 * containing both `a` and `b`, and both splits NULL. 0 if so; otherwise says
 * what happened on stderr and returns -1. */
int rg_expect_read_error(rg_fixture *f, const char *dataset, const char *const *kv, int height,
                         int width, dd_status status, const char *a, const char *b);

/** Image i of d as the consumers see it (normalised, dd_dataset_gather_range)
 * in a buffer of the helper's, valid until its next call. Aborts on error. */
const float *rg_image(const dd_dataset *d, int64_t i);
/** All of d's images, normalised: malloc'ed n × image_size floats (caller
 * frees). Aborts on error. */
float *rg_images(const dd_dataset *d);

/** 1 if image i gathered from d is bit for bit what the readers stored
 * before datasets kept their bytes: dd_image_normalize of the interleaved
 * pixels `hwc` (NULL: d's own stored bytes) with d's mean/std. */
int rg_old_path_image(const dd_dataset *d, int64_t i, const uint8_t *hwc);
/** 1 if d is uint8, holds exactly n × C × H × W bytes, and a batch gathered
 * by index (every image in reverse order, then every third one) is bit for
 * bit the old path (dd_image_normalize) of the stored bytes. */
int rg_old_path_batch(const dd_dataset *d);

#endif
