/* distill (internal) — error helpers shared by the core's files. */
#ifndef DD_BASE_ERROR_H
#define DD_BASE_ERROR_H

#include "distill/status.h"

/** The one out-of-memory error: DD_ERR_NOMEM with "out of memory". */
static inline dd_status dd_nomem(void) {
    return dd_error_set(DD_ERR_NOMEM, "out of memory");
}

#endif
