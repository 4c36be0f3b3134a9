/* distill tests — .npy files written the way numpy writes them (independently
 * of the core's writer), and .npz archives of them, for the npz reader's and
 * `distill evaluate`'s tests. */
#ifndef DD_NPY_GEN_H
#define DD_NPY_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "distill/status.h"

/** A malloc'ed byte buffer (free p). */
typedef struct rg_blob {
    uint8_t *p;
    size_t n;
} rg_blob;

/** A .npy of format `major` (1: u16 header length, 2/3: u32) with the given
 * header dict text, padded with spaces and '\n' to a multiple of `align`,
 * then `bytes` of data. p is NULL when out of memory. */
rg_blob rg_npy_raw(int major, const char *dict, size_t align, const void *data, size_t bytes);
/** A format 1.0 .npy as numpy writes it: dtype `descr` ("<f4"), shape text
 * ("(2, 3)", "(4,)"), header padded to 64 bytes. */
rg_blob rg_npy(const char *descr, const char *shape, const void *data, size_t bytes);
/** A zip of the n members (names[k] holding m[k]), stored or deflated, as
 * Python's zipfile writes it (libarchive). */
dd_status rg_write_zip(const char *path, const char *const *names, const rg_blob *m, int n,
                       int deflate);

#endif
