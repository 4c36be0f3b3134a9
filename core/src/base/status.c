/* distill — status names and the thread-local error message. */
#include "distill/status.h"

#include <stdio.h>
#include <string.h>

#define DD_ERROR_CAP 4096

static _Thread_local char error_buf[DD_ERROR_CAP];
static _Thread_local dd_status error_status = DD_OK;

const char *dd_status_str(dd_status s) {
    switch (s) {
    case DD_OK:
        return "ok";
    case DD_ERR_INVALID:
        return "invalid input";
    case DD_ERR_NOMEM:
        return "out of memory";
    case DD_ERR_IO:
        return "I/O error";
    case DD_ERR_PARSE:
        return "parse error";
    case DD_ERR_NOT_FOUND:
        return "not found";
    case DD_ERR_PLUGIN:
        return "plugin error";
    case DD_ERR_NETWORK:
        return "network error";
    case DD_ERR_CHECKSUM:
        return "checksum mismatch";
    case DD_ERR_ARCHIVE:
        return "archive error";
    case DD_ERR_NUMERIC:
        return "numerical error";
    case DD_ERR_UNSUPPORTED:
        return "unsupported";
    case DD_ERR_INTERRUPTED:
        return "interrupted";
    case DD_ERR_BACKEND:
        return "compute backend error";
    case DD_ERR_USAGE:
        return "usage error";
    case DD_ERR_LIMIT:
        return "resource limit exceeded";
    }
    return "unknown status";
}

dd_status dd_error_setv(dd_status s, const char *fmt, va_list ap) {
    vsnprintf(error_buf, sizeof error_buf, fmt, ap);
    error_status = s;
    return s;
}

dd_status dd_error_set(dd_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dd_error_setv(s, fmt, ap);
    va_end(ap);
    return s;
}

void dd_error_prefix(const char *fmt, ...) {
    char prefix[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t plen = strlen(prefix), olen = strlen(error_buf);
    if (plen + 2 >= DD_ERROR_CAP) return;
    if (olen + plen + 2 >= DD_ERROR_CAP) olen = DD_ERROR_CAP - plen - 3;
    memmove(error_buf + plen + 2, error_buf, olen);
    error_buf[plen + 2 + olen] = '\0';
    memcpy(error_buf, prefix, plen);
    error_buf[plen] = ':';
    error_buf[plen + 1] = ' ';
}

const char *dd_error_message(void) {
    return error_buf;
}

dd_status dd_error_status(void) {
    return error_status;
}

void dd_error_clear(void) {
    error_buf[0] = '\0';
    error_status = DD_OK;
}
