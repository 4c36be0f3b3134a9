/* distill (internal) — the one JSON writer: a streaming writer of objects,
 * arrays, keys, strings and numbers into a stream or a string buffer, with
 * the layout the run outputs use and one error flag checked at the end. */
#ifndef DD_JSON_H
#define DD_JSON_H

#include <stdio.h>

#include "base/strbuf.h"
#include "base/export.h"
#include "distill/status.h"

#define DD_JSON_MAX_DEPTH 16

/** How a container lays out its members. */
typedef enum dd_json_layout {
    DD_JSON_INLINE = 0, /**< `{"a": 1, "b": 2}` on the current line */
    DD_JSON_LINES = 1,  /**< one member per line, indented two spaces per level,
                             the closing bracket on a line of its own */
} dd_json_layout;

/** A document being written. Calls after an error do nothing; the first
 * error is reported once, by dd_json_finish. */
typedef struct dd_json {
    FILE *f;      /**< sink: a stream (borrowed), or */
    dd_strbuf *b; /**< a string buffer (borrowed) */
    int depth;    /**< open containers */
    struct {
        char kind;  /**< '{' or '[' */
        char lines; /**< DD_JSON_LINES */
        int count;  /**< members written so far */
    } open[DD_JSON_MAX_DEPTH];
    int key_pending; /**< a key was written; its value is due */
    int same_line;   /**< the next member of a LINES container stays on this line */
    int done;        /**< the top-level value is complete */
    dd_status err;   /**< first error (DD_OK while none) */
    char msg[128];   /**< what it was */
} dd_json;

/** Starts a document written to `f` (which stays the caller's). */
DD_INTERNAL void dd_json_init_file(dd_json *w, FILE *f);
/** Starts a document appended to `b` (which stays the caller's). */
DD_INTERNAL void dd_json_init_buf(dd_json *w, dd_strbuf *b);

/** Opens an object or an array: as the top-level value, as a member of an
 * array, or as the value of the key just written. */
DD_INTERNAL void dd_json_object(dd_json *w, dd_json_layout layout);
DD_INTERNAL void dd_json_array(dd_json *w, dd_json_layout layout);
/** Closes the innermost object / array (an error if it is the other kind,
 * or if a key still waits for its value). */
DD_INTERNAL void dd_json_object_end(dd_json *w);
DD_INTERNAL void dd_json_array_end(dd_json *w);

/** Writes a member's key (inside an object only). */
DD_INTERNAL void dd_json_key(dd_json *w, const char *key);
/** dd_json_key with a printf-formatted key. */
DD_INTERNAL void dd_json_keyf(dd_json *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/** The next member of a LINES container follows the previous one on the
 * same line (", " instead of ",\n" and the indent); no effect elsewhere. */
DD_INTERNAL void dd_json_same_line(dd_json *w);

/** A string value. NULL writes null. Quotes, backslashes and control
 * characters are escaped; valid UTF-8 is copied; each byte that is not part
 * of a valid UTF-8 sequence becomes U+FFFD (written "\ufffd"). */
DD_INTERNAL void dd_json_string(dd_json *w, const char *s);
DD_INTERNAL void dd_json_int(dd_json *w, long long v);
DD_INTERNAL void dd_json_uint(dd_json *w, unsigned long long v);
/** v with `digits` significant digits ("%.*g"); JSON has no NaN or
 * infinity, so a non-finite v writes null. */
DD_INTERNAL void dd_json_double(dd_json *w, double v, int digits);
/** v with `decimals` digits after the point ("%.*f"); non-finite: null. */
DD_INTERNAL void dd_json_fixed(dd_json *w, double v, int decimals);
DD_INTERNAL void dd_json_bool(dd_json *w, int v);
DD_INTERNAL void dd_json_null(dd_json *w);

/** Ends the document with a newline. DD_ERR_INVALID if the structure was
 * misused or is incomplete, DD_ERR_NOMEM if the buffer could not grow,
 * DD_ERR_IO if the stream has an error; the message says which. */
DD_INTERNAL dd_status dd_json_finish(dd_json *w);

#endif
