/* distill (internal) — datasets whose pixels are a read-only mapping of a
 * decoded-cache file (dcache.c) rather than an allocation. */
#ifndef DD_DATASET_MAP_H
#define DD_DATASET_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "distill/dataset.h"
#include "base/export.h"

/** A dataset as dd_dataset_create makes it, except that its pixels are
 * map + pixel_offset (n × image bytes must fit in map_len) and not checked
 * against dataset.max_bytes. On success the dataset owns the mapping
 * (dd_dataset_destroy munmaps map, map_len); on failure the caller still
 * does. */
DD_INTERNAL dd_status dd_dataset_create_mapped(const char *name, dd_dtype dtype, int64_t n,
                                               int channels, int height, int width, int n_classes,
                                               void *map, size_t map_len, size_t pixel_offset,
                                               dd_dataset **out);

/** 1 if d's pixels are a mapping (dd_dataset_create_mapped), 0 otherwise. */
DD_INTERNAL int dd_dataset_is_mapped(const dd_dataset *d);

/** Splits decoded straight into a file (the first decode of a set to be
 * mapped): while begun on a thread, dd_dataset_create of at least min_bytes
 * of pixels on that thread puts them in a new file <dir>/.spill.XXXXXX,
 * its blocks reserved (fallocate), mapped read-write at
 * pixel_offset(n, n_classes), and not held to dataset.max_bytes; the
 * kernel writes pages back as the reader fills them, so the split need not
 * fit in RAM. If the file cannot be made the split is allocated as usual.
 * `s` must outlive the matching dd_dataset_spill_end. */
typedef struct dd_dataset_spill {
    const char *dir;
    uint64_t min_bytes;
    size_t (*pixel_offset)(int64_t n, int n_classes);
} dd_dataset_spill;

DD_INTERNAL void dd_dataset_spill_begin(const dd_dataset_spill *s);
DD_INTERNAL void dd_dataset_spill_end(void);

/** 1 if d's pixels live in a spill file not yet committed: its descriptor,
 * its path and where the pixels start. */
DD_INTERNAL int dd_dataset_spill_file(const dd_dataset *d, int *fd, const char **path,
                                      size_t *pixel_offset);
/** After the spill file was renamed into place: the mapping becomes
 * read-only (dd_dataset_is_mapped) and the file is no longer removed on
 * destroy. */
DD_INTERNAL void dd_dataset_spill_committed(dd_dataset *d);

#endif
