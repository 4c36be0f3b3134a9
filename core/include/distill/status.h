/* distill — status codes and the thread-local error message.
 * Every fallible function returns dd_status; the function that detects the
 * error sets the message once, callers may add context with dd_error_prefix. */
#ifndef DISTILL_STATUS_H
#define DISTILL_STATUS_H

#include <stdarg.h>

#include "distill/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Result of every fallible distill call. DD_OK is zero. */
typedef enum dd_status {
    DD_OK = 0,
    DD_ERR_INVALID,     /**< bad argument or bad user input (config, option value) */
    DD_ERR_NOMEM,       /**< allocation failed */
    DD_ERR_IO,          /**< file system error (open, read, write, rename) */
    DD_ERR_PARSE,       /**< malformed file: YAML, IDX, XML, manifest, checkpoint */
    DD_ERR_NOT_FOUND,   /**< missing file, plugin, dataset, key */
    DD_ERR_PLUGIN,      /**< plugin refused: ABI, symbol, duplicate, NULL member */
    DD_ERR_NETWORK,     /**< download failed on every mirror */
    DD_ERR_CHECKSUM,    /**< content does not match its declared checksum */
    DD_ERR_ARCHIVE,     /**< corrupt or hostile archive */
    DD_ERR_NUMERIC,     /**< NaN/Inf or divergence */
    DD_ERR_UNSUPPORTED, /**< valid request the implementation cannot do */
    DD_ERR_INTERRUPTED, /**< stopped by a signal; work so far was saved */
    DD_ERR_BACKEND,     /**< oneDNN (or another compute backend) failed */
    DD_ERR_USAGE,       /**< command-line usage error (CLI exits with 2) */
    DD_ERR_LIMIT,       /**< input beyond a resource limit (distill/limits.h) */
} dd_status;

/** Short constant name of a status ("invalid argument", ...). Never NULL. */
DD_API const char *dd_status_str(dd_status s);

/** Sets this thread's error message (printf format) and returns `s`, so a
 * failing function can `return dd_error_set(DD_ERR_IO, "%s: %s", path, why);`. */
DD_API dd_status dd_error_set(dd_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
DD_API dd_status dd_error_setv(dd_status s, const char *fmt, va_list ap);

/** Prepends context to this thread's message: "<context>: <old message>". */
DD_API void dd_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** This thread's last message ("" if none). Valid until the next set/clear. */
DD_API const char *dd_error_message(void);

/** Status recorded with the last dd_error_set on this thread. */
DD_API dd_status dd_error_status(void);

DD_API void dd_error_clear(void);

/** Propagate a failing status unchanged. */
#define DD_TRY(expr)                                                                               \
    do {                                                                                           \
        dd_status dd_try_s_ = (expr);                                                              \
        if (dd_try_s_ != DD_OK) return dd_try_s_;                                                  \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
