/* distill — growable strings (see strbuf.h). */
#include "base/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(dd_strbuf *b, size_t extra) {
    if (b->oom) return 0;
    if (b->s && b->len + extra < b->cap) return 1;
    size_t cap = 2 * (b->cap + extra + 64);
    char *ns = realloc(b->s, cap);
    if (!ns) {
        b->oom = 1;
        return 0;
    }
    if (!b->s) ns[0] = '\0';
    b->s = ns;
    b->cap = cap;
    return 1;
}

void dd_strbuf_printf(dd_strbuf *b, const char *fmt, ...) {
    for (;;) {
        if (!reserve(b, 0)) return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->s[b->len] = '\0';
        if (!reserve(b, (size_t)n + 1)) return;
    }
}

void dd_strbuf_append(dd_strbuf *b, const char *s, size_t n) {
    if (!reserve(b, n + 1)) return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

const char *dd_strbuf_str(const dd_strbuf *b) {
    return b->s ? b->s : "";
}

dd_status dd_strbuf_status(const dd_strbuf *b) {
    return b->oom ? dd_error_set(DD_ERR_NOMEM, "out of memory") : DD_OK;
}

char *dd_strbuf_take(dd_strbuf *b) {
    char *s = b->oom ? NULL : b->s;
    if (b->oom) free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
    return s;
}

void dd_strbuf_free(dd_strbuf *b) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}
