/* distill — leveled logging to stderr. The level is process-wide (set once
 * by the CLI or from DISTILL_LOG on first use). */
#include "distill/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int log_level = -1;

dd_status dd_log_level_parse(const char *name, dd_log_level *out) {
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++) {
        if (name && strcmp(name, names[i]) == 0) {
            *out = (dd_log_level)i;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_INVALID,
                        "unknown log level '%s' (expected error, warn, info, debug or trace)",
                        name ? name : "(null)");
}

dd_log_level dd_log_get_level(void) {
    int l = atomic_load(&log_level);
    if (l < 0) {
        dd_log_level parsed = DD_LOG_INFO;
        const char *env = getenv("DISTILL_LOG");
        if (env && *env && dd_log_level_parse(env, &parsed) != DD_OK) parsed = DD_LOG_INFO;
        int expected = -1;
        atomic_compare_exchange_strong(&log_level, &expected, (int)parsed);
        l = atomic_load(&log_level);
    }
    return (dd_log_level)l;
}

void dd_log_set_level(dd_log_level level) {
    atomic_store(&log_level, (int)level);
}

void dd_log(dd_log_level level, const char *fmt, ...) {
    if (level > dd_log_get_level()) return;
    static const char *const tags[] = {"error", "warning", "info", "debug", "trace"};
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    // One fputs per line so concurrent threads do not interleave mid-line.
    char out[4200];
    if (level == DD_LOG_INFO)
        snprintf(out, sizeof out, "%s\n", line);
    else
        snprintf(out, sizeof out, "%s: %s\n", tags[level], line);
    fputs(out, stderr);
}
