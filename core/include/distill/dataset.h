/* distill — datasets in memory and the dataset-reader plugin interface. */
#ifndef DISTILL_DATASET_H
#define DISTILL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/param.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DD_MAX_CHANNELS 4

/** Element type of a dataset's stored pixels. */
typedef enum dd_dtype {
    /** Raw 8-bit pixels; the normalised value of pixel p of channel c is
     * (p/255 - mean[c]) / std[c], computed as dd_image_normalize does. */
    DD_DTYPE_U8 = 1,
    /** 32-bit floats, already normalised (read as they are). */
    DD_DTYPE_F32 = 2,
} dd_dtype;

/** One split of a dataset, in the type its pixels are stored in (planar CHW
 * per image). Consumers read normalised float32 images through
 * dd_dataset_gather / dd_dataset_gather_range, never `pixels` directly;
 * readers fill `pixels` (dd_dataset_u8 / dd_dataset_f32). The image writer
 * undoes the normalisation with mean/std. The pixels are either allocated
 * (dd_dataset_create) or a read-only mapping of the core's decoded cache
 * (docs/datasets.md); dd_dataset_destroy releases either, and a mapped set
 * is never written. */
typedef struct dd_dataset {
    char *name; /**< e.g. "fashion-mnist/train" (owned) */
    int64_t n;  /**< number of images */
    int channels, height, width;
    int n_classes;
    dd_dtype dtype;              /**< type of `pixels` */
    void *pixels;                /**< n × channels × height × width of dtype (owned, aligned;
                                      read-only when the set is mapped) */
    int32_t *labels;             /**< n labels in [0, n_classes) (owned) */
    char **class_names;          /**< n_classes strings (owned) */
    float mean[DD_MAX_CHANNELS]; /**< per channel, in [0, 1] pixel scale */
    float std[DD_MAX_CHANNELS];
} dd_dataset;

/** Allocates a dataset of n images of `dtype` with zeroed pixels/labels,
 * class names "0".."K-1", mean 0 and std 1. Checks the stored bytes against
 * dataset.max_bytes (distill/limits.h). Caller owns *out (dd_dataset_destroy). */
DD_API dd_status dd_dataset_create(const char *name, dd_dtype dtype, int64_t n, int channels,
                                   int height, int width, int n_classes, dd_dataset **out);
DD_API void dd_dataset_destroy(dd_dataset *d);
/** Replaces class name k (copied). */
DD_API dd_status dd_dataset_set_class_name(dd_dataset *d, int k, const char *name);
/** Size of one image in elements (channels × height × width). */
DD_API size_t dd_dataset_image_size(const dd_dataset *d);
/** Bytes of one element of `dtype` (1 or 4; 0 if unknown). */
DD_API size_t dd_dtype_size(dd_dtype dtype);
/** Bytes the dataset's pixels take: n × image_size × dd_dtype_size(dtype). */
DD_API size_t dd_dataset_bytes(const dd_dataset *d);
/** Image i's stored pixels for a reader to fill (CHW), or NULL if the
 * dataset is not of that dtype, i is out of range or the set is mapped from
 * the decoded cache (read-only). Owned by the dataset. */
DD_API uint8_t *dd_dataset_u8(dd_dataset *d, int64_t i);
DD_API float *dd_dataset_f32(dd_dataset *d, int64_t i);

/** Writes images idx[0 .. n) of `d`, normalised, as float32 CHW to `out`
 * (n × image_size floats, caller's). U8 values are bit-identical to
 * dd_image_normalize of the same pixels. DD_ERR_INVALID (naming the index)
 * if an index is outside [0, d->n). */
DD_API dd_status dd_dataset_gather(const dd_dataset *d, const int64_t *idx, int64_t n, float *out);
/** The same for images first .. first+n-1. */
DD_API dd_status dd_dataset_gather_range(const dd_dataset *d, int64_t first, int64_t n, float *out);
/** A new dataset holding images idx[0 .. n) of `src` in src's dtype, with
 * their labels, src's class names and mean/std. Caller owns *out. */
DD_API dd_status dd_dataset_subset(const dd_dataset *src, const int64_t *idx, int64_t n,
                                   const char *name, dd_dataset **out);

/** Reader flags (dd_dataset_ops.flags). */
enum {
    /** The reader reads the user's own data at dataset.path (required): there
     * is no manifest and nothing is downloaded; the fetch stage only checks
     * the path. */
    DD_DATASET_LOCAL = 1u << 0,
    /** With DD_DATASET_LOCAL: when dataset.path is an archive file (.tar,
     * .tar.gz, .tgz, .zip, ...), the core unpacks it into the cache with
     * fetch's protections and the reader gets the unpacked directory. */
    DD_DATASET_UNPACK_PATH = 1u << 1,
};

/** Shape of a dataset's images, as a reader's probe reports it. */
typedef struct dd_dataset_shape {
    int channels, height, width;
    int n_classes;
} dd_dataset_shape;

/** What the core asks a reader for. */
typedef struct dd_dataset_request {
    size_t struct_size;
    const char *dataset;       /**< manifest name, e.g. "fashion-mnist" */
    const char *root;          /**< directory holding the fetched, unpacked files */
    const dd_options *options; /**< the reader's validated options */
    int height, width;         /**< requested size; 0 = native */
} dd_dataset_request;

typedef struct dd_dataset_ops {
    size_t struct_size;
    /** Manifest names this reader handles, NULL-terminated (required). */
    const char *const *datasets;
    /** Reads both splits from req->root. On error, names the file and what is
     * wrong. Caller owns *train and *test. (required) */
    dd_status (*load)(const dd_dataset_request *req, dd_dataset **train, dd_dataset **test);
    /** DD_DATASET_* flags; 0 for a reader of manifest datasets (fetched). */
    unsigned flags;
    /** Optional: the input shape and class count of the training split
     * without decoding every image (header/first file), so a pipeline can
     * check its network when it is validated. Same request as load. */
    dd_status (*probe)(const dd_dataset_request *req, dd_dataset_shape *shape);
    void *reserved[2];
} dd_dataset_ops;

#ifdef __cplusplus
}
#endif
#endif
