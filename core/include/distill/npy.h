/* distill — NumPy files: a strict parser of .npy headers (format versions
 * 1.0, 2.0 and 3.0) and the reading of one member of a .npz (zip) archive.
 * Used by the npz dataset reader and by the core's reader of distilled.npz. */
#ifndef DISTILL_NPY_H
#define DISTILL_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DD_NPY_MAX_DIMS 8
/** Headers longer than this are refused (numpy writes < 200 bytes). */
#define DD_NPY_MAX_HEADER 65536
/** Arrays announcing more data than this are refused before any allocation. */
#define DD_NPY_MAX_BYTES ((uint64_t)1 << 40)

/** A parsed .npy header, and the data it describes once dd_npy_parse has
 * checked the buffer holds exactly that data. */
typedef struct dd_npy_array {
    char descr[16]; /**< e.g. "<f4", "|u1" */
    char kind;      /**< 'u' unsigned, 'i' signed integer, 'f' IEEE float */
    int itemsize;   /**< bytes per element: 1, 2, 4 or 8 */
    int big_endian; /**< 1 for '>' descriptors of more than one byte */
    int ndim;
    int64_t shape[DD_NPY_MAX_DIMS];
    uint64_t count;      /**< product of shape (1 for a 0-d array) */
    size_t header_len;   /**< bytes before the data (magic + length + dict) */
    const uint8_t *data; /**< dd_npy_parse only: count × itemsize bytes (borrowed) */
} dd_npy_array;

/** Parses the header at the start of buf[0..len) (len may stop short of the
 * data: only the header is read). Every problem is DD_ERR_PARSE naming `name`:
 * magic, version, header length, dict syntax, keys (exactly 'descr',
 * 'fortran_order', 'shape'), dtype (u/i of 1/2/4/8 bytes, f of 4/8 bytes;
 * little-, big-endian or '|'), fortran_order True, shape overflow, padding. */
DD_API dd_status dd_npy_parse_header(const char *name, const uint8_t *buf, size_t len,
                                     dd_npy_array *out);

/** dd_npy_parse_header, then checks that buf holds exactly the data the header
 * announces (truncated and trailing data are errors giving both sizes) and
 * sets out->data. */
DD_API dd_status dd_npy_parse(const char *name, const uint8_t *buf, size_t len, dd_npy_array *out);

/** Element i of an integer array, converted to int64 (unsigned 64-bit values
 * above INT64_MAX come back as -1). */
DD_API int64_t dd_npy_int_at(const dd_npy_array *a, uint64_t i);
/** Element i of a float32/float64 array as float. */
DD_API float dd_npy_float_at(const dd_npy_array *a, uint64_t i);

/** dd_npz_read_member flag: read only the first DD_NPY_MAX_HEADER + 12
 * bytes of the member (enough for dd_npy_parse_header). */
#define DD_NPZ_HEADER_ONLY 1

/** Reads the member named `member` (e.g. "images.npy") of the zip archive
 * at `path` (stored or deflated, as np.savez and np.savez_compressed write
 * it) into a malloc'ed buffer: *data (caller frees with free()) of *len
 * bytes. Without DD_NPZ_HEADER_ONLY the whole member is read, refused above
 * dd_limits_max_bytes() (DD_ERR_LIMIT) before anything large is allocated;
 * the data read must match the size the zip announces (DD_ERR_ARCHIVE).
 * Errors name `path` and `member`: DD_ERR_ARCHIVE (not a zip, corrupt),
 * DD_ERR_NOT_FOUND (no such member), DD_ERR_NOMEM. */
DD_API dd_status dd_npz_read_member(const char *path, const char *member, unsigned flags,
                                    uint8_t **data, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
