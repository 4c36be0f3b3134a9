/* distill (internal) — progress bar configuration for tests and tools that
 * need a fixed stream, mode or clock (dd_progress_create picks them from
 * stderr, isatty and the monotonic clock). */
#ifndef DD_PROGRESS_H
#define DD_PROGRESS_H

#include "base/export.h"

#include <stdio.h>

#include "distill/log.h"

typedef struct dd_progress_config {
    FILE *out;       /**< NULL: stderr */
    int tty;         /**< 1: redraw one line; 0: plain lines; -1: isatty(out) */
    double interval; /**< seconds between plain lines (<= 0: 5 s; TTY redraws every 0.1 s) */
    int width;       /**< TTY line width (<= 0: $COLUMNS or 80) */
    double (*clock)(void *ctx); /**< seconds, monotonic (NULL: CLOCK_MONOTONIC) */
    void *clock_ctx;
    int force; /**< print even below DD_LOG_INFO */
} dd_progress_config;

DD_INTERNAL dd_status dd_progress_create_config(const char *label, uint64_t total, const char *unit,
                                                const dd_progress_config *cfg, dd_progress **out);

/** Formats a duration as "h:mm:ss" or "m:ss" into buf. */
DD_INTERNAL void dd_format_duration(double seconds, char *buf, size_t n);
/** Formats a count in `unit`: bytes as "1.5 MiB", others as plain numbers. */
DD_INTERNAL void dd_format_amount(double x, const char *unit, char *buf, size_t n);

#endif
