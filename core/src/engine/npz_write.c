/* distill — .npz writer: .npy 1.0 members (numpy's own header layout, padded
 * to 64 bytes) in a zip of stored entries dated 1980-01-01 00:00, so the
 * output is byte-for-byte deterministic. */
#include "engine/npz_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "engine/checkpoint.h"

#define ZIP_DOS_DATE 0x0021 /* 1980-01-01 */
#define ZIP_DOS_TIME 0x0000

typedef struct npz_entry {
    char *name;    /* "<name>.npy" */
    size_t offset; /* of its local header in buf */
    uint32_t crc, size;
} npz_entry;

struct dd_npz {
    unsigned char *buf;
    size_t len, cap;
    npz_entry *entries;
    size_t n;
};

dd_status dd_npz_create(dd_npz **out) {
    *out = calloc(1, sizeof **out);
    return *out ? DD_OK : dd_error_set(DD_ERR_NOMEM, "npz writer: out of memory");
}

void dd_npz_destroy(dd_npz *z) {
    if (!z) return;
    for (size_t i = 0; i < z->n; i++)
        free(z->entries[i].name);
    free(z->entries);
    free(z->buf);
    free(z);
}

static int reserve(dd_npz *z, size_t more) {
    if (z->len + more <= z->cap) return 1;
    size_t cap = z->cap ? z->cap : 4096;
    while (cap < z->len + more)
        cap *= 2;
    unsigned char *b = realloc(z->buf, cap);
    if (!b) return 0;
    z->buf = b;
    z->cap = cap;
    return 1;
}

static void put(dd_npz *z, const void *p, size_t n) {
    memcpy(z->buf + z->len, p, n);
    z->len += n;
}

static void put16(dd_npz *z, unsigned v) {
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(z, b, 2);
}

static void put32(dd_npz *z, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(z, b, 4);
}

/* numpy's header text: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }". */
static int npy_header(char *out, size_t cap, const char *descr, int ndim, const int64_t *shape) {
    char dims[256] = "";
    size_t n = 0;
    for (int i = 0; i < ndim; i++)
        n +=
            (size_t)snprintf(dims + n, sizeof dims - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (ndim == 1) snprintf(dims + n, sizeof dims - n, ",");
    int len =
        snprintf(out, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    if (len < 0 || (size_t)len + 64 >= cap) return -1;
    // pad with spaces so that magic (6) + version (2) + length (2) + text + '\n' is a multiple of
    // 64
    size_t total = 10 + (size_t)len + 1, pad = (64 - total % 64) % 64;
    memset(out + len, ' ', pad);
    out[len + pad] = '\n';
    out[len + pad + 1] = 0;
    return len + (int)pad + 1;
}

dd_status dd_npz_add(dd_npz *z, const char *name, const char *descr, size_t itemsize, int ndim,
                     const int64_t *shape, const void *data) {
    if (ndim < 0 || ndim > 8)
        return dd_error_set(DD_ERR_INVALID, "npz writer: %d dimensions", ndim);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && count > UINT32_MAX / (uint64_t)shape[i]))
            return dd_error_set(DD_ERR_LIMIT, "npz writer: %s: array too large", name);
        count *= (uint64_t)shape[i];
    }
    char header[512];
    int hlen = npy_header(header, sizeof header, descr, ndim, shape);
    if (hlen < 0) return dd_error_set(DD_ERR_INVALID, "npz writer: %s: header too long", name);
    uint64_t size = 10 + (uint64_t)hlen + count * itemsize;
    size_t nlen = strlen(name) + 4;
    if (size > UINT32_MAX - 1024 || z->len + size + nlen + 1024 > UINT32_MAX)
        return dd_error_set(DD_ERR_LIMIT, "npz writer: %s: over the 4 GiB of a zip without zip64",
                            name);
    npz_entry *e = realloc(z->entries, (z->n + 1) * sizeof *e);
    if (!e) return dd_error_set(DD_ERR_NOMEM, "npz writer: out of memory");
    z->entries = e;
    e = &z->entries[z->n];
    if (!(e->name = malloc(nlen + 1)) || !reserve(z, 30 + nlen + (size_t)size)) {
        free(e->name);
        return dd_error_set(DD_ERR_NOMEM, "npz writer: out of memory");
    }
    snprintf(e->name, nlen + 1, "%s.npy", name);
    z->n++;
    e->offset = z->len;
    e->size = (uint32_t)size;
    // local file header; the CRC is filled in once the member is in place
    put32(z, 0x04034b50);
    put16(z, 20), put16(z, 0), put16(z, 0);            // version, flags, stored
    put16(z, ZIP_DOS_TIME), put16(z, ZIP_DOS_DATE);    // fixed timestamp
    put32(z, 0), put32(z, e->size), put32(z, e->size); // crc, sizes
    put16(z, (unsigned)nlen), put16(z, 0);             // name length, no extra
    put(z, e->name, nlen);
    size_t start = z->len;
    static const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    put(z, magic, 8);
    put16(z, (unsigned)hlen);
    put(z, header, (size_t)hlen);
    if (count) put(z, data, count * itemsize);
    e->crc = dd_crc32(0, z->buf + start, e->size);
    unsigned char *c = z->buf + e->offset + 14;
    for (int i = 0; i < 4; i++)
        c[i] = (unsigned char)(e->crc >> (8 * i));
    return DD_OK;
}

dd_status dd_npz_add_f32(dd_npz *z, const char *name, int ndim, const int64_t *shape,
                         const float *data) {
    return dd_npz_add(z, name, "<f4", 4, ndim, shape, data); // x86-64: little-endian already
}

dd_status dd_npz_add_i64(dd_npz *z, const char *name, int ndim, const int64_t *shape,
                         const int64_t *data) {
    return dd_npz_add(z, name, "<i8", 8, ndim, shape, data);
}

/* Next code point of a UTF-8 string; invalid sequences give U+FFFD. */
static uint32_t utf8_next(const unsigned char **p) {
    const unsigned char *s = *p;
    uint32_t c = s[0];
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0) {
        *p = s + 1;
        return 0xFFFD;
    }
    c &= n ? 0x3Fu >> n : 0x7F;
    for (int i = 1; i <= n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *p = s + i;
            return 0xFFFD;
        }
        c = c << 6 | (s[i] & 0x3F);
    }
    *p = s + n + 1;
    return c;
}

dd_status dd_npz_add_strings(dd_npz *z, const char *name, const char *const *s, int64_t n) {
    if (n < 0 || n > 1000000)
        return dd_error_set(DD_ERR_INVALID, "npz writer: %s: %lld strings", name, (long long)n);
    size_t w = 1;
    for (int64_t i = 0; i < n; i++) {
        size_t k = 0;
        for (const unsigned char *p = (const unsigned char *)s[i]; *p; k++)
            utf8_next(&p);
        if (k > w) w = k;
    }
    if (w > 4096) return dd_error_set(DD_ERR_INVALID, "npz writer: %s: string too long", name);
    unsigned char *data = calloc((size_t)n ? (size_t)n : 1, w * 4);
    if (!data) return dd_error_set(DD_ERR_NOMEM, "npz writer: out of memory");
    for (int64_t i = 0; i < n; i++) {
        unsigned char *q = data + (size_t)i * w * 4;
        for (const unsigned char *p = (const unsigned char *)s[i]; *p; q += 4) {
            uint32_t c = utf8_next(&p);
            q[0] = (unsigned char)c, q[1] = (unsigned char)(c >> 8);
            q[2] = (unsigned char)(c >> 16), q[3] = (unsigned char)(c >> 24);
        }
    }
    char descr[16];
    snprintf(descr, sizeof descr, "<U%zu", w);
    dd_status st = dd_npz_add(z, name, descr, w * 4, 1, &n, data);
    free(data);
    return st;
}

dd_status dd_npz_write(dd_npz *z, const char *path) {
    // the central directory is appended to the buffer, written, then taken back
    size_t body = z->len, cd_size = 0;
    for (size_t i = 0; i < z->n; i++)
        cd_size += 46 + strlen(z->entries[i].name);
    if (!reserve(z, cd_size + 22)) return dd_error_set(DD_ERR_NOMEM, "npz writer: out of memory");
    for (size_t i = 0; i < z->n; i++) {
        const npz_entry *e = &z->entries[i];
        size_t nlen = strlen(e->name);
        put32(z, 0x02014b50);
        put16(z, 20), put16(z, 20), put16(z, 0), put16(z, 0); // made by, needed, flags, stored
        put16(z, ZIP_DOS_TIME), put16(z, ZIP_DOS_DATE);
        put32(z, e->crc), put32(z, e->size), put32(z, e->size);
        put16(z, (unsigned)nlen), put16(z, 0), put16(z, 0); // name, extra, comment lengths
        put16(z, 0), put16(z, 0), put32(z, 0);              // disk, internal, external attrs
        put32(z, (uint32_t)e->offset);
        put(z, e->name, nlen);
    }
    put32(z, 0x06054b50);
    put16(z, 0), put16(z, 0), put16(z, (unsigned)z->n), put16(z, (unsigned)z->n);
    put32(z, (uint32_t)cd_size), put32(z, (uint32_t)body), put16(z, 0);
    dd_status st = dd_fs_write_file(path, z->buf, z->len);
    z->len = body;
    return st;
}
