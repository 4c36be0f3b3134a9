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

#endif
