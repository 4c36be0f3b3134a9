/* distill — leveled logging and the progress bar.
 * The level comes from DISTILL_LOG (error|warn|info|debug|trace) and the CLI's
 * -v/-q; messages go to stderr. */
#ifndef DISTILL_LOG_H
#define DISTILL_LOG_H

#include <stdint.h>

#include "distill/export.h"
#include "distill/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dd_log_level {
    DD_LOG_ERROR = 0,
    DD_LOG_WARN = 1,
    DD_LOG_INFO = 2,
    DD_LOG_DEBUG = 3,
    DD_LOG_TRACE = 4,
} dd_log_level;

DD_API void dd_log(dd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
DD_API void dd_log_set_level(dd_log_level level);
DD_API dd_log_level dd_log_get_level(void);
/** Parses "error|warn|info|debug|trace"; DD_ERR_INVALID on anything else. */
DD_API dd_status dd_log_level_parse(const char *name, dd_log_level *out);

#define DD_LOG_ERROR_(...) dd_log(DD_LOG_ERROR, __VA_ARGS__)
#define dd_warn(...) dd_log(DD_LOG_WARN, __VA_ARGS__)
#define dd_info(...) dd_log(DD_LOG_INFO, __VA_ARGS__)
#define dd_debug(...) dd_log(DD_LOG_DEBUG, __VA_ARGS__)

/** A progress bar. On a TTY it redraws one line (bar, count, rate, ETA and a
 * caller-supplied status such as "loss 0.31 acc 84.2%"); otherwise it prints
 * a plain line at most every few seconds. Silent below DD_LOG_INFO. */
typedef struct dd_progress dd_progress;

/** Creates a bar for `total` units (0 = unknown total) labelled `label`
 * (copied). `unit` ("it", "B", "img") selects formatting; "B" prints sizes.
 * *out is owned by the caller, released with dd_progress_destroy. */
DD_API dd_status dd_progress_create(const char *label, uint64_t total, const char *unit,
                                    dd_progress **out);
/** Sets the count done so far and an optional status text (copied, may be NULL). */
DD_API void dd_progress_update(dd_progress *p, uint64_t done, const char *status);
/** Prints the final line. Idempotent. */
DD_API void dd_progress_finish(dd_progress *p);
/** Finishes (if needed) and frees; NULL is a no-op. */
DD_API void dd_progress_destroy(dd_progress *p);

#ifdef __cplusplus
}
#endif
#endif
