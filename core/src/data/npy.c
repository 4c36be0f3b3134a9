/* distill — strict .npy header parser: "\x93NUMPY", version 1.0 (u16 header
 * length) or 2.0/3.0 (u32), a Python dict literal with exactly the keys
 * 'descr', 'fortran_order' and 'shape', space padding, a final '\n', the whole
 * header a multiple of 16 bytes (numpy pads to 64; before 1.9 it padded to 16);
 * and one member of a .npz (zip) read with libarchive. */
#include "distill/npy.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/unpack.h"
#include "distill/limits.h"

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

typedef struct cursor {
    const char *p, *end;
    const char *name;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && *c->p == ' ')
        c->p++;
}

static dd_status bad(const cursor *c, const char *base, const char *what) {
    return dd_error_set(DD_ERR_PARSE, "%s: .npy header: %s at byte %zu of the header dict", c->name,
                        what, (size_t)(c->p - base));
}

/* A quoted Python string without escapes ('...' or "..."), into out[cap]. */
static int read_str(cursor *c, char *out, size_t cap) {
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = 0;
    return 1;
}

static int eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int eat_word(cursor *c, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

static dd_status parse_descr(const char *name, const char *d, dd_npy_array *out) {
    size_t n = strlen(d);
    int size = 0;
    if (n == 3 && d[2] >= '1' && d[2] <= '8') size = d[2] - '0';
    char order = n ? d[0] : 0, kind = n > 1 ? d[1] : 0;
    int ok =
        (order == '<' || order == '>' || order == '|') &&
        (((kind == 'u' || kind == 'i') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
         (kind == 'f' && (size == 4 || size == 8))) &&
        (order != '|' || size == 1);
    if (!ok)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: .npy dtype '%s' is not supported (expected uint8 '|u1', float32 "
                            "'<f4', float64 '<f8' or an integer type '<i1'..'<i8', '<u2'..'<u8'; "
                            "big-endian '>' is accepted too)",
                            name, d);
    snprintf(out->descr, sizeof out->descr, "%s", d);
    out->kind = kind;
    out->itemsize = size;
    out->big_endian = order == '>' && size > 1;
    return DD_OK;
}

static dd_status parse_shape(cursor *c, const char *base, dd_npy_array *out) {
    if (!eat(c, '(')) return bad(c, base, "'shape' is not a tuple");
    out->ndim = 0;
    uint64_t count = 1;
    for (;;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            break;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return bad(c, base, "'shape' holds something other than non-negative integers");
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            v = v * 10 + (uint64_t)(*c->p++ - '0');
            if (v > (uint64_t)INT64_MAX / 16) return bad(c, base, "'shape' dimension overflows");
        }
        if (out->ndim == DD_NPY_MAX_DIMS) return bad(c, base, "'shape' has more than 8 dimensions");
        out->shape[out->ndim++] = (int64_t)v;
        if (v && count > DD_NPY_MAX_BYTES / v)
            count = DD_NPY_MAX_BYTES + 1; // saturate: refused below, never multiplied further
        else
            count *= v;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ')') {
            c->p++;
            break;
        }
        return bad(c, base, "'shape' tuple is not closed");
    }
    out->count = count;
    return DD_OK;
}

dd_status dd_npy_parse_header(const char *name, const uint8_t *buf, size_t len, dd_npy_array *out) {
    memset(out, 0, sizeof *out);
    if (len < 8 || memcmp(buf, npy_magic, 6) != 0)
        return dd_error_set(DD_ERR_PARSE, "%s: not a .npy file (bad magic; expected \\x93NUMPY)",
                            name);
    unsigned major = buf[6], minor = buf[7];
    if (!((major == 1 || major == 2 || major == 3) && minor == 0))
        return dd_error_set(DD_ERR_PARSE,
                            "%s: .npy format version %u.%u is not supported (expected 1.0, 2.0 "
                            "or 3.0)",
                            name, major, minor);
    size_t pre = major == 1 ? 10 : 12;
    if (len < pre) return dd_error_set(DD_ERR_PARSE, "%s: truncated .npy header", name);
    uint64_t hlen = major == 1 ? (uint64_t)buf[8] | (uint64_t)buf[9] << 8
                               : (uint64_t)buf[8] | (uint64_t)buf[9] << 8 |
                                     (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
    if (hlen > DD_NPY_MAX_HEADER)
        return dd_error_set(DD_ERR_PARSE, "%s: .npy header length %llu is over the limit of %d",
                            name, (unsigned long long)hlen, DD_NPY_MAX_HEADER);
    if ((pre + hlen) % 16 != 0)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: .npy header of %llu bytes is not padded to a multiple of 16", name,
                            (unsigned long long)(pre + hlen));
    if (len < pre + hlen)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: truncated .npy header (%llu bytes announced, %zu "
                            "in the file)",
                            name, (unsigned long long)(pre + hlen), len);
    const char *base = (const char *)buf + pre;
    cursor c = {base, base + hlen, name};
    if (hlen == 0 || base[hlen - 1] != '\n')
        return dd_error_set(DD_ERR_PARSE, "%s: .npy header does not end in '\\n'", name);
    c.end = base + hlen - 1;
    for (const char *q = base; q < c.end; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
            return bad(&(cursor){q, c.end, name}, base, "non-printable byte");
    if (!eat(&c, '{')) return bad(&c, base, "not a dict ('{' expected)");
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0;
    for (;;) {
        skip_ws(&c);
        if (eat(&c, '}')) break;
        char key[32];
        if (!read_str(&c, key, sizeof key)) return bad(&c, base, "dict key is not a string");
        if (!eat(&c, ':')) return bad(&c, base, "':' expected after a key");
        skip_ws(&c);
        if (strcmp(key, "descr") == 0) {
            if (seen_descr++) return bad(&c, base, "duplicate key 'descr'");
            char d[16];
            if (!read_str(&c, d, sizeof d))
                return bad(&c, base,
                           "'descr' is not a simple dtype string (structured dtypes "
                           "are not supported)");
            DD_TRY(parse_descr(name, d, out));
        } else if (strcmp(key, "fortran_order") == 0) {
            if (seen_fortran++) return bad(&c, base, "duplicate key 'fortran_order'");
            if (eat_word(&c, "True"))
                return dd_error_set(DD_ERR_PARSE,
                                    "%s: .npy array is in Fortran (column-major) order, which is "
                                    "not supported: save np.ascontiguousarray(a) instead",
                                    name);
            if (!eat_word(&c, "False")) return bad(&c, base, "'fortran_order' is not True/False");
        } else if (strcmp(key, "shape") == 0) {
            if (seen_shape++) return bad(&c, base, "duplicate key 'shape'");
            const char *start = c.p;
            DD_TRY(parse_shape(&c, base, out));
            // "(n)" is not a tuple in Python: a 1-tuple needs its comma
            if (out->ndim == 1 && !memchr(start, ',', (size_t)(c.p - start)))
                return bad(&c, base, "'shape' (n) is not a tuple: a 1-tuple is written (n,)");
        } else {
            return dd_error_set(DD_ERR_PARSE,
                                "%s: .npy header: unknown key '%s' (expected exactly 'descr', "
                                "'fortran_order' and 'shape')",
                                name, key);
        }
        skip_ws(&c);
        if (eat(&c, '}')) break;
        if (!eat(&c, ',')) return bad(&c, base, "',' or '}' expected");
    }
    skip_ws(&c);
    if (c.p != c.end) return bad(&c, base, "bytes after the dict other than space padding");
    if (!seen_descr || !seen_fortran || !seen_shape)
        return dd_error_set(DD_ERR_PARSE, "%s: .npy header lacks the key '%s'", name,
                            !seen_descr     ? "descr"
                            : !seen_fortran ? "fortran_order"
                                            : "shape");
    if (out->count > DD_NPY_MAX_BYTES / (uint64_t)out->itemsize)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: .npy shape announces more than %llu bytes of data: refused", name,
                            (unsigned long long)DD_NPY_MAX_BYTES);
    out->header_len = pre + (size_t)hlen;
    return DD_OK;
}

dd_status dd_npy_parse(const char *name, const uint8_t *buf, size_t len, dd_npy_array *out) {
    DD_TRY(dd_npy_parse_header(name, buf, len, out));
    uint64_t want = out->count * (uint64_t)out->itemsize, have = len - out->header_len;
    if (have < want)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: truncated .npy data: shape and dtype '%s' need %llu bytes, the "
                            "file has %llu",
                            name, out->descr, (unsigned long long)want, (unsigned long long)have);
    if (have > want)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: %llu trailing bytes after the .npy data (shape and dtype '%s' "
                            "need %llu bytes, the file has %llu)",
                            name, (unsigned long long)(have - want), out->descr,
                            (unsigned long long)want, (unsigned long long)have);
    out->data = buf + out->header_len;
    return DD_OK;
}

static uint64_t load_uint(const dd_npy_array *a, uint64_t i) {
    const uint8_t *p = a->data + i * (uint64_t)a->itemsize;
    uint64_t v = 0;
    for (int b = 0; b < a->itemsize; b++) {
        int shift = a->big_endian ? 8 * (a->itemsize - 1 - b) : 8 * b;
        v |= (uint64_t)p[b] << shift;
    }
    return v;
}

int64_t dd_npy_int_at(const dd_npy_array *a, uint64_t i) {
    uint64_t v = load_uint(a, i);
    if (a->kind == 'u') return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
    int bits = 8 * a->itemsize;
    if (bits < 64 && (v >> (bits - 1)) & 1) v |= ~(uint64_t)0 << bits; // sign-extend
    return (int64_t)v;
}

float dd_npy_float_at(const dd_npy_array *a, uint64_t i) {
    uint64_t v = load_uint(a, i);
    if (a->itemsize == 4) {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    double d;
    memcpy(&d, &v, 8);
    return (float)d;
}

/* ---- .npz members ---------------------------------------------------------- */

/* The size the zip announces is checked against the limit before anything is
 * allocated, and the data read must match it. */
dd_status dd_npz_read_member(const char *path, const char *member, unsigned flags, uint8_t **data,
                             size_t *len_out) {
    *data = NULL;
    *len_out = 0;
    const int header_only = (flags & DD_NPZ_HEADER_ONLY) != 0;
    struct archive *a = archive_read_new();
    if (!a) return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", path);
    archive_read_support_format_zip(a);
    dd_status st = DD_OK;
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        st = dd_archive_error(a, path, "not a readable .npz (zip) file");
        goto done;
    }
    struct archive_entry *e;
    int r, found = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!name || strcmp(name, member) != 0) continue;
        found = 1;
        uint64_t want = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
        const uint64_t limit = (uint64_t)dd_limits_max_bytes();
        if (!header_only && want > limit) {
            st = dd_error_set(DD_ERR_LIMIT,
                              "%s:%s: member of %llu bytes is above the memory limit of %llu "
                              "(dataset.max_bytes)",
                              path, member, (unsigned long long)want, (unsigned long long)limit);
            goto done;
        }
        // The buffer grows with the data actually read, never with the size
        // the zip claims: a 1 KB file announcing gigabytes allocates nothing
        // large.
        size_t cap = header_only ? DD_NPY_MAX_HEADER + 12 : 65536;
        if (!header_only && want && want < cap) cap = (size_t)want;
        size_t len = 0;
        uint8_t *buf = malloc(cap + 1);
        if (!buf) {
            st = dd_error_set(DD_ERR_NOMEM, "%s:%s: out of memory", path, member);
            goto done;
        }
        for (;;) {
            if (len == cap) {
                if (header_only) break;
                if (want && len == want) {
                    uint8_t extra;
                    la_ssize_t more = archive_read_data(a, &extra, 1);
                    if (more == 0) break;
                    free(buf);
                    if (more < 0) {
                        st = dd_archive_error(a, path, member);
                    } else { // more data than the zip's size field announces
                        st = dd_error_set(DD_ERR_ARCHIVE,
                                          "%s:%s: member holds more than the %llu "
                                          "bytes its header announces",
                                          path, member, (unsigned long long)want);
                    }
                    goto done;
                }
                size_t ncap = 2 * cap;
                if (want && ncap > want) ncap = (size_t)want;
                if (!want && ncap > limit) {
                    free(buf);
                    st = dd_error_set(DD_ERR_LIMIT,
                                      "%s:%s: member decompresses to more than the memory "
                                      "limit of %llu bytes (dataset.max_bytes)",
                                      path, member, (unsigned long long)limit);
                    goto done;
                }
                uint8_t *nb = realloc(buf, ncap + 1);
                if (!nb) {
                    free(buf);
                    st = dd_error_set(DD_ERR_NOMEM, "%s:%s: out of memory", path, member);
                    goto done;
                }
                buf = nb;
                cap = ncap;
            }
            la_ssize_t got = archive_read_data(a, buf + len, cap - len);
            if (got < 0) {
                free(buf);
                st = dd_archive_error(a, path, member);
                goto done;
            }
            if (got == 0) break;
            len += (size_t)got;
        }
        if (!header_only && want && len != want) {
            free(buf);
            st = dd_error_set(DD_ERR_ARCHIVE, "%s:%s: member cut short: %zu of %llu bytes", path,
                              member, len, (unsigned long long)want);
            goto done;
        }
        *data = buf;
        *len_out = len;
        break;
    }
    if (!found && r != ARCHIVE_OK && r != ARCHIVE_EOF)
        st = dd_archive_error(a, path, "corrupt .npz (zip) file");
    else if (!found)
        st = dd_error_set(DD_ERR_NOT_FOUND, "%s: the .npz has no member '%s'", path, member);
done:
    archive_read_free(a);
    return st;
}
