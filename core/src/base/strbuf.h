/* distill (internal) — a growable string: printf-style appends, with an
 * out-of-memory flag checked once at the end instead of after every call. */
#ifndef DD_STRBUF_H
#define DD_STRBUF_H

#include <stddef.h>

#include "distill/status.h"

typedef struct dd_strbuf {
    char *s;    /**< NUL-terminated once anything was appended; owned */
    size_t len; /**< bytes before the NUL */
    size_t cap;
    int oom; /**< an append failed: the content is incomplete */
} dd_strbuf;

#define DD_STRBUF_INIT                                                                             \
    { NULL, 0, 0, 0 }

void dd_strbuf_printf(dd_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dd_strbuf_append(dd_strbuf *b, const char *s, size_t n);
/** The content ("" when empty); valid until the next append or free. */
const char *dd_strbuf_str(const dd_strbuf *b);
/** DD_ERR_NOMEM (with a message) if an append failed, else DD_OK. */
dd_status dd_strbuf_status(const dd_strbuf *b);
/** Hands the malloc'ed string to the caller (NULL when empty or after OOM)
 * and resets b. */
char *dd_strbuf_take(dd_strbuf *b);
void dd_strbuf_free(dd_strbuf *b);

#endif
