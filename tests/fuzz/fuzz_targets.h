/* distill fuzzing — the table of fuzz targets, one per parser. Each target
 * sets up what it needs once (a valid fixture on disk for the readers), runs
 * one input, and writes its seed corpus from the test generators. The same
 * table serves the libFuzzer entry points (fuzz_entry.c) and the seed writer
 * (fuzz_seeds.c). */
#ifndef DD_FUZZ_TARGETS_H
#define DD_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct fz_target {
    const char *name;
    /** Once per process; 0 on success. */
    int (*init)(void);
    /** One input; errors are the expected outcome, crashes are bugs. */
    void (*run)(const uint8_t *data, size_t size);
    /** Writes seed files into dir (after init); 0 on success. */
    int (*seeds)(const char *dir);
} fz_target;

/** The target named `name`, or NULL. */
const fz_target *fz_find(const char *name);
/** All targets, NULL-terminated. */
const fz_target *const *fz_all(void);

/** Writes one seed file dir/<tag>. */
int fz_seed(const char *dir, const char *tag, const void *data, size_t len);

#endif
