/* distill — checkpoint container: tagged records + CRC-32, atomic writes. */
#define _POSIX_C_SOURCE 200809L
#include "engine/checkpoint.h"

#include "base/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct ckpt_rec {
    char tag[DD_CKPT_TAG_LEN];
    const void *data;
    uint64_t bytes;
} ckpt_rec;

struct dd_ckpt_writer {
    ckpt_rec *recs;
    size_t n, cap;
};

struct dd_ckpt {
    char *path;
    unsigned char *buf;
    size_t size;
    ckpt_rec *recs;
    size_t n;
};

uint32_t dd_crc32(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

dd_status dd_ckpt_writer_create(dd_ckpt_writer **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return dd_error_set(DD_ERR_NOMEM, "checkpoint: out of memory");
    return DD_OK;
}

void dd_ckpt_writer_destroy(dd_ckpt_writer *w) {
    if (!w) return;
    free(w->recs);
    free(w);
}

dd_status dd_ckpt_writer_add(dd_ckpt_writer *w, const char *tag, const void *data, size_t bytes) {
    if (strlen(tag) >= DD_CKPT_TAG_LEN)
        return dd_error_set(DD_ERR_INVALID, "checkpoint: tag '%s' is too long", tag);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->recs[i].tag, tag) == 0)
            return dd_error_set(DD_ERR_INVALID, "checkpoint: duplicate tag '%s'", tag);
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        ckpt_rec *r = realloc(w->recs, cap * sizeof *r);
        if (!r) return dd_error_set(DD_ERR_NOMEM, "checkpoint: out of memory");
        w->recs = r;
        w->cap = cap;
    }
    ckpt_rec *r = &w->recs[w->n++];
    memset(r->tag, 0, sizeof r->tag);
    memcpy(r->tag, tag, strlen(tag));
    r->data = data;
    r->bytes = bytes;
    return DD_OK;
}

static dd_status write_all(int fd, const void *data, size_t n, uint32_t *crc, const char *path) {
    const unsigned char *p = data;
    *crc = dd_crc32(*crc, data, n);
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return dd_error_set(DD_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        p += k;
        n -= (size_t)k;
    }
    return DD_OK;
}

static dd_status write_records(int fd, const dd_ckpt_writer *w, const char *tmp) {
    uint32_t crc = 0;
    uint32_t hdr[2] = {DD_CKPT_VERSION, (uint32_t)w->n};
    DD_TRY(write_all(fd, DD_CKPT_MAGIC, 8, &crc, tmp));
    DD_TRY(write_all(fd, hdr, sizeof hdr, &crc, tmp));
    for (size_t i = 0; i < w->n; i++) {
        DD_TRY(write_all(fd, w->recs[i].tag, DD_CKPT_TAG_LEN, &crc, tmp));
        DD_TRY(write_all(fd, &w->recs[i].bytes, sizeof(uint64_t), &crc, tmp));
        if (w->recs[i].bytes) DD_TRY(write_all(fd, w->recs[i].data, w->recs[i].bytes, &crc, tmp));
    }
    uint32_t dummy = 0, final = crc;
    return write_all(fd, &final, sizeof final, &dummy, tmp);
}

dd_status dd_ckpt_writer_commit(dd_ckpt_writer *w, const char *path) {
    // One run writes its checkpoint at a time: temporaries left by a killed
    // earlier write are removed first, so they never pile up.
    dd_fs_atomic_remove_stale(path);
    dd_fs_atomic a;
    DD_TRY(dd_fs_atomic_open(&a, path));
    dd_status s = write_records(fileno(a.f), w, a.tmp);
    if (s != DD_OK) {
        dd_fs_atomic_abort(&a);
        return s;
    }
    return dd_fs_atomic_commit(&a);
}

void dd_ckpt_destroy(dd_ckpt *c) {
    if (!c) return;
    free(c->path);
    free(c->buf);
    free(c->recs);
    free(c);
}

static dd_status ckpt_parse(dd_ckpt *c) {
    const char *path = c->path;
    if (c->size < 8 + 8 + 4 || memcmp(c->buf, DD_CKPT_MAGIC, 8) != 0)
        return dd_error_set(DD_ERR_PARSE, "%s: not a distill checkpoint (bad magic)", path);
    uint32_t stored;
    memcpy(&stored, c->buf + c->size - 4, 4);
    if (dd_crc32(0, c->buf, c->size - 4) != stored)
        return dd_error_set(DD_ERR_PARSE, "%s: checkpoint is corrupt (CRC mismatch)", path);
    uint32_t hdr[2];
    memcpy(hdr, c->buf + 8, sizeof hdr);
    if (hdr[0] != DD_CKPT_VERSION)
        return dd_error_set(DD_ERR_PARSE, "%s: checkpoint version %u, this build reads %u", path,
                            hdr[0], DD_CKPT_VERSION);
    size_t off = 16, end = c->size - 4;
    if (hdr[1] > (end - off) / (DD_CKPT_TAG_LEN + 8))
        return dd_error_set(DD_ERR_PARSE, "%s: checkpoint claims %u records", path, hdr[1]);
    c->recs = calloc(hdr[1] ? hdr[1] : 1, sizeof *c->recs);
    if (!c->recs) return dd_error_set(DD_ERR_NOMEM, "checkpoint: out of memory");
    for (uint32_t i = 0; i < hdr[1]; i++) {
        if (end - off < DD_CKPT_TAG_LEN + 8)
            return dd_error_set(DD_ERR_PARSE, "%s: truncated record %u", path, i);
        ckpt_rec *r = &c->recs[i];
        memcpy(r->tag, c->buf + off, DD_CKPT_TAG_LEN);
        memcpy(&r->bytes, c->buf + off + DD_CKPT_TAG_LEN, 8);
        off += DD_CKPT_TAG_LEN + 8;
        if (r->tag[DD_CKPT_TAG_LEN - 1] != '\0' || r->bytes > end - off)
            return dd_error_set(DD_ERR_PARSE, "%s: malformed record %u", path, i);
        r->data = c->buf + off;
        off += r->bytes;
    }
    if (off != end) return dd_error_set(DD_ERR_PARSE, "%s: trailing bytes after records", path);
    c->n = hdr[1];
    return DD_OK;
}

dd_status dd_ckpt_read(const char *path, dd_ckpt **out) {
    *out = NULL;
    dd_ckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return dd_error_set(DD_ERR_NOMEM, "checkpoint: out of memory");
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        dd_status s = dd_error_set(errno == ENOENT ? DD_ERR_NOT_FOUND : DD_ERR_IO, "%s: %s", path,
                                   strerror(errno));
        dd_ckpt_destroy(c);
        return s;
    }
    dd_status s = DD_OK;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        s = dd_error_set(DD_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else {
        c->size = (size_t)st.st_size;
        c->buf = malloc(c->size ? c->size : 1);
        if (!c->buf)
            s = dd_error_set(DD_ERR_NOMEM, "%s: out of memory reading checkpoint", path);
        else if (fread(c->buf, 1, c->size, f) != c->size)
            s = dd_error_set(DD_ERR_IO, "%s: short read", path);
    }
    fclose(f);
    if (s == DD_OK) s = ckpt_parse(c);
    if (s != DD_OK) {
        dd_ckpt_destroy(c);
        return s;
    }
    *out = c;
    return DD_OK;
}

dd_status dd_ckpt_get(const dd_ckpt *c, const char *tag, const void **data, size_t *bytes) {
    for (size_t i = 0; i < c->n; i++) {
        if (strncmp(c->recs[i].tag, tag, DD_CKPT_TAG_LEN) == 0) {
            *data = c->recs[i].data;
            *bytes = (size_t)c->recs[i].bytes;
            return DD_OK;
        }
    }
    return dd_error_set(DD_ERR_PARSE, "%s: checkpoint has no record '%s'", c->path, tag);
}

dd_status dd_ckpt_get_exact(const dd_ckpt *c, const char *tag, void *dst, size_t bytes) {
    const void *p;
    size_t n;
    DD_TRY(dd_ckpt_get(c, tag, &p, &n));
    if (n != bytes)
        return dd_error_set(DD_ERR_PARSE,
                            "%s: checkpoint record '%s' has %zu bytes, this run expects %zu "
                            "(different configuration?)",
                            c->path, tag, n, bytes);
    if (bytes) memcpy(dst, p, bytes);
    return DD_OK;
}
