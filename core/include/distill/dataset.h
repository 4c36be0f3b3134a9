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

/** One split of a dataset, fully in memory. Images are normalized:
 * value = (pixel/255 - mean[c]) / std[c]; the image writer undoes it. */
typedef struct dd_dataset {
    char *name; /**< e.g. "fashion-mnist/train" (owned) */
    int64_t n;  /**< number of images */
    int channels, height, width;
    int n_classes;
    float *images;      /**< n × channels × height × width (owned, aligned) */
    int32_t *labels;    /**< n labels in [0, n_classes) (owned) */
    char **class_names; /**< n_classes strings (owned) */
    float mean[DD_MAX_CHANNELS];
    float std[DD_MAX_CHANNELS];
} dd_dataset;

/** Allocates a dataset with zeroed images/labels, class names "0".."K-1",
 * mean 0 and std 1. Caller owns *out (dd_dataset_destroy). */
DD_API dd_status dd_dataset_create(const char *name, int64_t n, int channels, int height, int width,
                                   int n_classes, dd_dataset **out);
DD_API void dd_dataset_destroy(dd_dataset *d);
/** Replaces class name k (copied). */
DD_API dd_status dd_dataset_set_class_name(dd_dataset *d, int k, const char *name);
/** Size of one image in floats. */
DD_API size_t dd_dataset_image_size(const dd_dataset *d);

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
