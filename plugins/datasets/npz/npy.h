/* distill — a strict parser of NumPy .npy headers (format versions 1.0, 2.0
 * and 3.0), used by the npz dataset reader; self-contained so that a unit
 * test can compile it directly. */
#ifndef DD_NPY_H
#define DD_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "distill/status.h"

#define NPY_MAX_DIMS 8
/** Headers longer than this are refused (numpy writes < 200 bytes). */
#define NPY_MAX_HEADER 65536
/** Arrays announcing more data than this are refused before any allocation. */
#define NPY_MAX_BYTES ((uint64_t)1 << 40)

/** A parsed .npy header, and the data it describes once npy_parse has
 * checked the buffer holds exactly that data. */
typedef struct npy_array {
    char descr[16]; /**< e.g. "<f4", "|u1" */
    char kind;      /**< 'u' unsigned, 'i' signed integer, 'f' IEEE float */
    int itemsize;   /**< bytes per element: 1, 2, 4 or 8 */
    int big_endian; /**< 1 for '>' descriptors of more than one byte */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    uint64_t count;      /**< product of shape (1 for a 0-d array) */
    size_t header_len;   /**< bytes before the data (magic + length + dict) */
    const uint8_t *data; /**< npy_parse only: count × itemsize bytes (borrowed) */
} npy_array;

/** Parses the header at the start of buf[0..len) (len may stop short of the
 * data: only the header is read). Every problem is DD_ERR_PARSE naming `name`:
 * magic, version, header length, dict syntax, keys (exactly 'descr',
 * 'fortran_order', 'shape'), dtype (u/i of 1/2/4/8 bytes, f of 4/8 bytes;
 * little-, big-endian or '|'), fortran_order True, shape overflow, padding. */
dd_status npy_parse_header(const char *name, const uint8_t *buf, size_t len, npy_array *out);

/** npy_parse_header, then checks that buf holds exactly the data the header
 * announces (truncated and trailing data are errors giving both sizes) and
 * sets out->data. */
dd_status npy_parse(const char *name, const uint8_t *buf, size_t len, npy_array *out);

/** Element i of an integer array, converted to int64 (unsigned 64-bit values
 * above INT64_MAX come back as -1). */
int64_t npy_int_at(const npy_array *a, uint64_t i);
/** Element i of a float32/float64 array as float. */
float npy_float_at(const npy_array *a, uint64_t i);

#endif
