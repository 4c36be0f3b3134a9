/* distill (internal) — a small writer of NumPy .npz files: .npy (format 1.0)
 * members in a zip of stored (uncompressed) entries with fixed timestamps, so
 * the same arrays always give the same bytes (docs/output.md, distilled.npz). */
#ifndef DD_NPZ_WRITE_H
#define DD_NPZ_WRITE_H

#include "base/export.h"

#include <stddef.h>
#include <stdint.h>

#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An .npz under construction, held in memory. */
typedef struct dd_npz dd_npz;

/** Caller owns *out (dd_npz_destroy). */
DD_INTERNAL dd_status dd_npz_create(dd_npz **out);
/** Frees the archive; NULL is a no-op. */
DD_INTERNAL void dd_npz_destroy(dd_npz *z);
/** Appends member "<name>.npy": `ndim` (0..8) dimensions `shape`, elements of
 * `descr` ("<f4", "<i8", "<U12", ...; data little-endian, itemsize bytes
 * each) copied from `data`. */
DD_INTERNAL dd_status dd_npz_add(dd_npz *z, const char *name, const char *descr, size_t itemsize,
                                 int ndim, const int64_t *shape, const void *data);
/** Appends a float32 (descr "<f4") array. */
DD_INTERNAL dd_status dd_npz_add_f32(dd_npz *z, const char *name, int ndim, const int64_t *shape,
                                     const float *data);
/** Appends an int64 (descr "<i8") array. */
DD_INTERNAL dd_status dd_npz_add_i64(dd_npz *z, const char *name, int ndim, const int64_t *shape,
                                     const int64_t *data);
/** Appends a 1-D array of fixed-width unicode strings (descr "<U<w>", w the
 * longest name in code points; UTF-8 decoded, invalid bytes become U+FFFD),
 * which numpy.load reads without allow_pickle. */
DD_INTERNAL dd_status dd_npz_add_strings(dd_npz *z, const char *name, const char *const *s,
                                         int64_t n);
/** Writes the zip (local headers, central directory, end record) to `path`
 * atomically (z stays usable). */
DD_INTERNAL dd_status dd_npz_write(dd_npz *z, const char *path);

#ifdef __cplusplus
}
#endif
#endif
