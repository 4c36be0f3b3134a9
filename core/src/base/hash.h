/* distill (internal) — SHA-256 (FIPS 180-4) and MD5 (RFC 1321) digests used
 * to verify downloaded dataset files. */
#ifndef DD_HASH_H
#define DD_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"

#define DD_SHA256_SIZE 32
#define DD_MD5_SIZE 16

/** Incremental SHA-256 state; plain data, no cleanup needed. */
typedef struct dd_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} dd_sha256;

/** Incremental MD5 state; plain data, no cleanup needed. */
typedef struct dd_md5 {
    uint32_t h[4];
    uint64_t bytes;
    uint8_t block[64];
    size_t fill;
} dd_md5;

DD_INTERNAL void dd_sha256_init(dd_sha256 *c);
DD_INTERNAL void dd_sha256_update(dd_sha256 *c, const void *data, size_t n);
/** Writes the 32-byte digest to `out`; `c` must be re-initialised before reuse. */
DD_INTERNAL void dd_sha256_final(dd_sha256 *c, uint8_t out[DD_SHA256_SIZE]);

DD_INTERNAL void dd_md5_init(dd_md5 *c);
DD_INTERNAL void dd_md5_update(dd_md5 *c, const void *data, size_t n);
/** Writes the 16-byte digest to `out`; `c` must be re-initialised before reuse. */
DD_INTERNAL void dd_md5_final(dd_md5 *c, uint8_t out[DD_MD5_SIZE]);

/** Lower-case hex of `n` bytes into `out`, which holds at least 2n+1 chars. */
DD_INTERNAL void dd_hex(const uint8_t *bytes, size_t n, char *out);

/** Digests of a whole file, read in blocks. Either output may be NULL.
 * DD_ERR_IO (naming the path) if it cannot be opened or read. */
DD_INTERNAL dd_status dd_hash_file(const char *path, uint8_t sha256[DD_SHA256_SIZE],
                                   uint8_t md5[DD_MD5_SIZE], uint64_t *size);

#endif
