/* distill (internal) — checkpoint files: a small tagged binary container
 * (magic, version, records, CRC-32) written atomically (temp file, fsync,
 * rename, fsync of the directory). Format documented in docs/output.md. */
#ifndef DD_CHECKPOINT_H
#define DD_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"

#define DD_CKPT_MAGIC "DDCKPT\r\n"
#define DD_CKPT_VERSION 1u
#define DD_CKPT_TAG_LEN 16

/** Records to write; data is borrowed until dd_ckpt_writer_commit returns. */
typedef struct dd_ckpt_writer dd_ckpt_writer;

DD_INTERNAL dd_status dd_ckpt_writer_create(dd_ckpt_writer **out);
DD_INTERNAL void dd_ckpt_writer_destroy(dd_ckpt_writer *w);
/** Adds a record (tag at most 15 characters, unique). */
DD_INTERNAL dd_status dd_ckpt_writer_add(dd_ckpt_writer *w, const char *tag, const void *data,
                                         size_t bytes);
/** Writes all records to `path` atomically: readers see the old file or the
 * complete new one, never a torn write. */
DD_INTERNAL dd_status dd_ckpt_writer_commit(dd_ckpt_writer *w, const char *path);

/** A checkpoint read fully into memory and validated (magic, version, sizes,
 * CRC). */
typedef struct dd_ckpt dd_ckpt;

DD_INTERNAL dd_status dd_ckpt_read(const char *path, dd_ckpt **out);
DD_INTERNAL void dd_ckpt_destroy(dd_ckpt *c);
/** Finds a record; DD_ERR_PARSE naming the file and tag if absent. */
DD_INTERNAL dd_status dd_ckpt_get(const dd_ckpt *c, const char *tag, const void **data,
                                  size_t *bytes);
/** Copies a record of exactly `bytes` bytes; DD_ERR_PARSE if absent or sized
 * differently. */
DD_INTERNAL dd_status dd_ckpt_get_exact(const dd_ckpt *c, const char *tag, void *dst, size_t bytes);

/** CRC-32 (IEEE 802.3), continuing from `crc` (start with 0). */
DD_INTERNAL uint32_t dd_crc32(uint32_t crc, const void *data, size_t n);

#endif
