/* distill — the streaming JSON writer (see json.h). */
#include "base/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

// Indents: two spaces per open container.
static const char spaces[2 * DD_JSON_MAX_DEPTH + 1] = "                                ";

static void put(dd_json *w, const char *s, size_t n) {
    if (w->f)
        fwrite(s, 1, n, w->f);
    else
        dd_strbuf_append(w->b, s, n);
}

static void puts_(dd_json *w, const char *s) {
    put(w, s, strlen(s));
}

static void fail(dd_json *w, dd_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(dd_json *w, dd_status s, const char *fmt, ...) {
    if (w->err != DD_OK) return;
    w->err = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof w->msg, fmt, ap);
    va_end(ap);
}

void dd_json_init_file(dd_json *w, FILE *f) {
    memset(w, 0, sizeof *w);
    w->f = f;
}

void dd_json_init_buf(dd_json *w, dd_strbuf *b) {
    memset(w, 0, sizeof *w);
    w->b = b;
}

/* The separator before a member of the innermost container: the comma, then
 * a space (inline, or a LINES member asked to stay on the line) or a newline
 * and the member's indent. */
static void member_sep(dd_json *w) {
    const int same_line = w->same_line;
    w->same_line = 0;
    if (w->open[w->depth - 1].count++ > 0) {
        put(w, ",", 1);
        if (!w->open[w->depth - 1].lines || same_line) {
            put(w, " ", 1);
            return;
        }
    }
    if (w->open[w->depth - 1].lines) {
        put(w, "\n", 1);
        put(w, spaces, (size_t)(2 * w->depth));
    }
}

/* Checks that a value may come here and writes what precedes it; 0 if not. */
static int begin_value(dd_json *w) {
    if (w->err != DD_OK) return 0;
    if (w->done) {
        fail(w, DD_ERR_INVALID, "a second value after the complete document");
        return 0;
    }
    if (w->depth == 0) return 1;
    if (w->open[w->depth - 1].kind == '{') {
        if (!w->key_pending) {
            fail(w, DD_ERR_INVALID, "a value in an object without its key");
            return 0;
        }
        w->key_pending = 0;
        return 1;
    }
    member_sep(w);
    return 1;
}

static void end_scalar(dd_json *w) {
    if (w->depth == 0) w->done = 1;
}

static void open_container(dd_json *w, char kind, dd_json_layout layout) {
    if (!begin_value(w)) return;
    if (w->depth == DD_JSON_MAX_DEPTH) {
        fail(w, DD_ERR_INVALID, "nested deeper than %d levels", DD_JSON_MAX_DEPTH);
        return;
    }
    put(w, &kind, 1);
    w->open[w->depth].kind = kind;
    w->open[w->depth].lines = layout == DD_JSON_LINES;
    w->open[w->depth].count = 0;
    w->depth++;
}

static void close_container(dd_json *w, char kind) {
    const char *what = kind == '{' ? "object" : "array";
    if (w->err != DD_OK) return;
    if (w->depth == 0) {
        fail(w, DD_ERR_INVALID, "closing an %s while none is open", what);
        return;
    }
    if (w->open[w->depth - 1].kind != kind) {
        fail(w, DD_ERR_INVALID, "closing an %s while an %s is open", what,
             kind == '{' ? "array" : "object");
        return;
    }
    if (w->key_pending) {
        fail(w, DD_ERR_INVALID, "closing an object after a key without its value");
        return;
    }
    w->depth--;
    w->same_line = 0;
    if (w->open[w->depth].lines) {
        put(w, "\n", 1);
        put(w, spaces, (size_t)(2 * w->depth));
    }
    put(w, kind == '{' ? "}" : "]", 1);
    if (w->depth == 0) w->done = 1;
}

void dd_json_object(dd_json *w, dd_json_layout layout) {
    open_container(w, '{', layout);
}
void dd_json_array(dd_json *w, dd_json_layout layout) {
    open_container(w, '[', layout);
}
void dd_json_object_end(dd_json *w) {
    close_container(w, '{');
}
void dd_json_array_end(dd_json *w) {
    close_container(w, '[');
}

void dd_json_same_line(dd_json *w) {
    w->same_line = 1;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if p does not start
 * one: no stray continuation bytes, overlong forms, surrogates or code
 * points above U+10FFFF. p is NUL-terminated, so a truncated sequence stops
 * at the NUL, which is not a continuation byte. */
static size_t utf8_len(const unsigned char *p) {
    const unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

static void put_quoted(dd_json *w, const char *s) {
    const unsigned char *p = (const unsigned char *)s, *run = p;
    put(w, "\"", 1);
    while (*p) {
        const size_t n = *p >= 0x20 && *p != '"' && *p != '\\' ? utf8_len(p) : 0;
        if (n > 0) {
            p += n;
            continue;
        }
        put(w, (const char *)run, (size_t)(p - run));
        char esc[8];
        switch (*p) {
        case '"':
            puts_(w, "\\\"");
            break;
        case '\\':
            puts_(w, "\\\\");
            break;
        case '\b':
            puts_(w, "\\b");
            break;
        case '\f':
            puts_(w, "\\f");
            break;
        case '\n':
            puts_(w, "\\n");
            break;
        case '\r':
            puts_(w, "\\r");
            break;
        case '\t':
            puts_(w, "\\t");
            break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                puts_(w, esc);
            } else {
                puts_(w, "\\ufffd");
            }
        }
        run = ++p;
    }
    put(w, (const char *)run, (size_t)(p - run));
    put(w, "\"", 1);
}

void dd_json_key(dd_json *w, const char *key) {
    if (w->err != DD_OK) return;
    if (w->depth == 0 || w->open[w->depth - 1].kind != '{') {
        fail(w, DD_ERR_INVALID, "key '%s' outside an object", key ? key : "(null)");
        return;
    }
    if (w->key_pending) {
        fail(w, DD_ERR_INVALID, "key '%s' after a key without its value", key ? key : "(null)");
        return;
    }
    if (!key) {
        fail(w, DD_ERR_INVALID, "a NULL key");
        return;
    }
    member_sep(w);
    put_quoted(w, key);
    put(w, ": ", 2);
    w->key_pending = 1;
}

void dd_json_keyf(dd_json *w, const char *fmt, ...) {
    if (w->err != DD_OK) return;
    char small[128], *key = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fail(w, DD_ERR_INVALID, "key format '%s' failed", fmt);
        return;
    }
    if ((size_t)n >= sizeof small) {
        if (!(key = malloc((size_t)n + 1))) {
            fail(w, DD_ERR_NOMEM, "out of memory");
            return;
        }
        va_start(ap, fmt);
        vsnprintf(key, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    dd_json_key(w, key);
    if (key != small) free(key);
}

void dd_json_string(dd_json *w, const char *s) {
    if (!s) {
        dd_json_null(w);
        return;
    }
    if (!begin_value(w)) return;
    put_quoted(w, s);
    end_scalar(w);
}

static void put_number(dd_json *w, const char *fmt, int prec, double v) {
    if (!begin_value(w)) return;
    if (!isfinite(v)) {
        puts_(w, "null");
    } else {
        // Room for "%.17f" of DBL_MAX: 309 digits, the point, 17 decimals.
        char num[400];
        snprintf(num, sizeof num, fmt, prec, v);
        puts_(w, num);
    }
    end_scalar(w);
}

void dd_json_double(dd_json *w, double v, int digits) {
    put_number(w, "%.*g", digits < 1 ? 1 : digits > 17 ? 17 : digits, v);
}

void dd_json_fixed(dd_json *w, double v, int decimals) {
    put_number(w, "%.*f", decimals < 0 ? 0 : decimals > 17 ? 17 : decimals, v);
}

void dd_json_int(dd_json *w, long long v) {
    if (!begin_value(w)) return;
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    puts_(w, num);
    end_scalar(w);
}

void dd_json_uint(dd_json *w, unsigned long long v) {
    if (!begin_value(w)) return;
    char num[32];
    snprintf(num, sizeof num, "%llu", v);
    puts_(w, num);
    end_scalar(w);
}

void dd_json_bool(dd_json *w, int v) {
    if (!begin_value(w)) return;
    puts_(w, v ? "true" : "false");
    end_scalar(w);
}

void dd_json_null(dd_json *w) {
    if (!begin_value(w)) return;
    puts_(w, "null");
    end_scalar(w);
}

dd_status dd_json_finish(dd_json *w) {
    if (w->err == DD_OK && w->depth > 0)
        fail(w, DD_ERR_INVALID, "%d container(s) left open", w->depth);
    if (w->err == DD_OK && !w->done) fail(w, DD_ERR_INVALID, "an empty document");
    if (w->err == DD_OK) put(w, "\n", 1);
    if (w->err == DD_OK && w->b && w->b->oom) fail(w, DD_ERR_NOMEM, "out of memory");
    if (w->err == DD_OK && w->f && ferror(w->f)) fail(w, DD_ERR_IO, "write error");
    return w->err == DD_OK ? DD_OK : dd_error_set(w->err, "json: %s", w->msg);
}
