/* distill (internal) — visibility of the core's internal API. */
#ifndef DD_BASE_EXPORT_H
#define DD_BASE_EXPORT_H

#include "distill/export.h"

/** Marks a function of the core's internal API (declared under core/src):
 * visible in the tests' library (core/internal/libdistill.so.0), kept local
 * in libdistill.so by its version script, so programs and plugins see only
 * the public headers' DD_API functions. */
#define DD_INTERNAL __attribute__((visibility("default")))

#endif
